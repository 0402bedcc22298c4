"""Secrets name the row that owns them.

A secret belongs to one revision (the value of one of its secret fields) or
one pipeline (its key secret, or the previous key's during a grace period).
`secrets.owner_id` records which, so that a revision or a pipeline reads and
deletes only its own secrets, whatever ids a stored document names.

Existing secrets get their owner from the pipelines that refer to them, then
from the secret fields of revisions in the same organisation; a secret no row
refers to keeps a null owner and is never read or deleted through one.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
REFERENCE = "$secret"

secrets = sa.table(
    "secrets",
    sa.column("id", sa.String),
    sa.column("org_id", sa.String),
    sa.column("owner_id", sa.String),
)
pipelines = sa.table(
    "pipelines",
    sa.column("id", sa.String),
    sa.column("key_secret_id", sa.String),
    sa.column("previous_key_secret_id", sa.String),
)
revisions = sa.table(
    "integration_revisions",
    sa.column("id", sa.String),
    sa.column("org_id", sa.String),
    sa.column("template_id", sa.String),
    sa.column("config", JSON_DOCUMENT),
)
templates = sa.table(
    "integration_templates",
    sa.column("id", sa.String),
    sa.column("secret_fields", JSON_DOCUMENT),
)


def upgrade() -> None:
    with op.batch_alter_table("secrets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner_id", sa.String(length=40), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_secrets_owner_id"), ["owner_id"], unique=False
        )
    _own_pipeline_secrets()
    _own_revision_secrets()


def downgrade() -> None:
    with op.batch_alter_table("secrets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_secrets_owner_id"))
    op.execute("ALTER TABLE secrets DROP COLUMN owner_id")


def _own_pipeline_secrets() -> None:
    owner = (
        sa.select(pipelines.c.id)
        .where(
            sa.or_(
                pipelines.c.key_secret_id == secrets.c.id,
                pipelines.c.previous_key_secret_id == secrets.c.id,
            )
        )
        .limit(1)
        .scalar_subquery()
    )
    op.execute(
        secrets.update()
        .where(secrets.c.owner_id.is_(None), sa.exists(owner))
        .values(owner_id=owner)
    )


def _own_revision_secrets() -> None:
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(
            revisions.c.id,
            revisions.c.org_id,
            revisions.c.config,
            templates.c.secret_fields,
        ).join(templates, templates.c.id == revisions.c.template_id)
    )
    owned = [
        {"owner": revision_id, "org": org_id, "secret": secret_id}
        for revision_id, org_id, config, secret_fields in rows
        for secret_id in _referenced(config, secret_fields)
    ]
    if owned:
        connection.execute(
            secrets.update()
            .where(
                secrets.c.id == sa.bindparam("secret"),
                secrets.c.org_id == sa.bindparam("org"),
                secrets.c.owner_id.is_(None),
            )
            .values(owner_id=sa.bindparam("owner")),
            owned,
        )


def _referenced(config: Any, secret_fields: Any) -> list[str]:
    """The secret ids a revision's secret fields hold, as the service wrote
    them: `{"$secret": "<id>"}` at the top level of the config."""
    found = []
    for field in secret_fields or []:
        value = (config or {}).get(field)
        if (
            isinstance(value, dict)
            and set(value) == {REFERENCE}
            and isinstance(value[REFERENCE], str)
        ):
            found.append(value[REFERENCE])
    return found
