"""The Alembic migrations build exactly the schema the models describe."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from signal_admin.persistence.models import Base
from signal_admin.persistence.schema import head_revision, is_up_to_date


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
