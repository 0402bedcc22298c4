"""The Alembic migrations build exactly the schema the models describe."""

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine

from signal_admin.persistence.models import Base
from signal_admin.persistence.schema import (
    alembic_config,
    head_revision,
    is_up_to_date,
    upgrade_to_head,
)
from signal_admin.persistence.types import utc_now


async def test_migrated_schema_matches_the_models(migrated_database: str) -> None:
    engine = create_async_engine(migrated_database)

    async with engine.connect() as connection:
        differences = await connection.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}),
                Base.metadata,
            )
        )
    await engine.dispose()

    assert differences == []


async def test_migrated_database_is_at_head(migrated_database: str) -> None:
    engine = create_async_engine(migrated_database)

    up_to_date = await is_up_to_date(engine)
    await engine.dispose()

    assert head_revision() is not None
    assert up_to_date


async def test_upgrading_gives_existing_secrets_their_owners(tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'before.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(
            lambda sync: command.upgrade(alembic_config(sync), "0004")
        )
        await connection.run_sync(_write_rows_of_before_owners)

    await upgrade_to_head(engine)
    async with engine.connect() as connection:
        owners = dict((await connection.execute(text(OWNERS))).all())
    await engine.dispose()

    assert owners == {
        "sec_key": "pip_1",
        "sec_previous_key": "pip_1",
        "sec_field": "rev_1",
        "sec_other_org": None,
        "sec_unreferenced": None,
    }


OWNERS = "SELECT id, owner_id FROM secrets"


def _write_rows_of_before_owners(connection: Connection) -> None:
    """Two organisations' rows as a database before secret owners held them:
    a pipeline with its key and previous key secrets, and a revision whose
    secret field names its own secret and whose plain field names a secret of
    another organisation."""
    tables = Base.metadata.tables
    for org_id in ("org_1", "org_2"):
        connection.execute(
            tables["organizations"].insert(), {"id": org_id, "name": org_id}
        )
    secrets = [
        ("sec_key", "org_1"),
        ("sec_previous_key", "org_1"),
        ("sec_field", "org_1"),
        ("sec_other_org", "org_2"),
        ("sec_unreferenced", "org_1"),
    ]
    connection.execute(
        text(
            "INSERT INTO secrets (id, org_id, ciphertext, key_id, created_at, "
            "updated_at) VALUES (:id, :org_id, 'x', 'k', :now, :now)"
        ),
        [{"id": sid, "org_id": org, "now": utc_now()} for sid, org in secrets],
    )
    connection.execute(
        tables["pipelines"].insert(),
        {
            "id": "pip_1",
            "org_id": "org_1",
            "name": "Shop",
            "slug": "shop",
            "type": "web",
            "pipeline_key": "dk_1",
            "key_secret_id": "sec_key",
            "previous_key_secret_id": "sec_previous_key",
            "pipeline_key_secret_prefix": "sk_1234",
            "js_builder_config": {},
            "identity_config": {},
        },
    )
    connection.execute(
        tables["integration_templates"].insert(),
        {
            "id": "tmpl_1",
            "org_id": "org_1",
            "name": "Hook",
            "vendor": "webhook",
            "secret_fields": ["signing_secret"],
            "latest_revision": 1,
        },
    )
    connection.execute(
        tables["integration_revisions"].insert(),
        {
            "id": "rev_1",
            "template_id": "tmpl_1",
            "org_id": "org_1",
            "revision_number": 1,
            "config": {
                "signing_secret": {"$secret": "sec_field"},
                "url": {"$secret": "sec_other_org"},
            },
            "delivery_mode": "server_side",
        },
    )
