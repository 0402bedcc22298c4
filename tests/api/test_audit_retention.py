"""The audit trail is append-only, and entries older than the retention period
are purged: by the purge itself, and on a schedule inside a served app.

Entries are written straight into the table with old timestamps, as if they
had been there for months. Tests that count what a purge removed first purge
at the same cut-off, so that nothing older is left over from elsewhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from structlog.testing import capture_logs
from structlog.typing import EventDict

from signal_admin.app import create_app
from signal_admin.persistence.audit_retention import (
    PURGE_MARKER,
    purge_audit_entries,
)
from signal_admin.persistence.database import Database
from signal_admin.persistence.ids import new_id
from signal_admin.persistence.models import AuditEntry
from signal_admin.persistence.schema import upgrade_to_head
from signal_admin.persistence.types import utc_now
from tests.conftest import make_settings
from tests.helpers import client_of

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
# How many times to look again, a hundredth of a second apart, for something
# that happens in the background, before giving up on it.
LOOKS = 1_000
UPDATE = "UPDATE audit_entries SET action = 'pipeline.deleted' WHERE id = :id"
DELETE = "DELETE FROM audit_entries WHERE id = :id"
WAITING_PURGES = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND wait_event_type = 'Lock' AND query LIKE 'DELETE FROM audit_entries%'"
)


def needs_postgresql(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip(
            "only PostgreSQL guards DELETE and has advisory locks; "
            "set TEST_DATABASE_URL"
        )


@pytest.fixture
async def database(migrated_database: str) -> AsyncIterator[Database]:
    """The suite's database, reached the way the service reaches it."""
    db = Database(migrated_database)
    yield db
    await db.dispose()


async def add_entries(db: Database, *ages: timedelta) -> list[str]:
    """One audit entry written `age` ago for each of `ages`; their ids."""
    now = utc_now()
    org_id = new_id("org")
    entries = [
        AuditEntry(
            id=new_id("log"),
            org_id=org_id,
            action="pipeline.updated",
            resource_type="pipeline",
            resource_id=new_id("pip"),
            timestamp=now - age,
        )
        for age in ages
    ]
    async with db.transaction() as session:
        session.add_all(entries)
    return [entry.id for entry in entries]


async def present(db: Database, ids: list[str]) -> list[str]:
    """Those of `ids` whose entries are still stored, in the same order."""
    async with db.read() as session:
        stored = set(
            await session.scalars(select(AuditEntry.id).where(AuditEntry.id.in_(ids)))
        )
    return [entry_id for entry_id in ids if entry_id in stored]


async def until_gone(db: Database, ids: list[str]) -> None:
    for _ in range(LOOKS):
        if not await present(db, ids):
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"entries {ids} were never purged")


async def until_logged(logs: list[EventDict], event: str) -> None:
    for _ in range(LOOKS):
        if any(entry["event"] == event for entry in logs):
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"{event} was never logged")


async def action_of(db: Database, entry_id: str) -> str | None:
    async with db.read() as session:
        return await session.scalar(
            select(AuditEntry.action).where(AuditEntry.id == entry_id)
        )


@asynccontextmanager
async def rolled_back(db: Database) -> AsyncIterator[AsyncConnection]:
    """A connection in a transaction that is rolled back at the end, so that a
    statement the trigger should have refused changes nothing even if it
    went through."""
    async with db.engine.connect() as connection:
        transaction = await connection.begin()
        try:
            yield connection
        finally:
            await transaction.rollback()


def purge_tasks() -> set[asyncio.Task[Any]]:
    return {task for task in asyncio.all_tasks() if task.get_name() == "audit-purge"}


class TestAppendOnly:
    async def test_an_update_of_an_entry_is_refused(self, database: Database) -> None:
        [entry_id] = await add_entries(database, HOUR)

        with pytest.raises(DBAPIError, match="append-only: UPDATE refused"):
            async with database.engine.begin() as connection:
                await connection.execute(text(UPDATE), {"id": entry_id})

        assert await action_of(database, entry_id) == "pipeline.updated"

    async def test_a_delete_without_the_purge_marker_is_refused(
        self, database: Database, migrated_database: str
    ) -> None:
        needs_postgresql(migrated_database)
        [entry_id] = await add_entries(database, 400 * DAY)

        with pytest.raises(DBAPIError, match="append-only: DELETE refused"):
            async with database.engine.begin() as connection:
                await connection.execute(text(DELETE), {"id": entry_id})

        assert await present(database, [entry_id]) == [entry_id]

    async def test_truncating_the_audit_trail_is_refused(
        self, database: Database, migrated_database: str
    ) -> None:
        needs_postgresql(migrated_database)
        [entry_id] = await add_entries(database, HOUR)

        async with rolled_back(database) as connection:
            with pytest.raises(DBAPIError, match="append-only: TRUNCATE refused"):
                await connection.execute(text("TRUNCATE audit_entries"))

        assert await present(database, [entry_id]) == [entry_id]

    async def test_a_delete_in_a_transaction_with_the_purge_marker_goes_through(
        self, database: Database, migrated_database: str
    ) -> None:
        needs_postgresql(migrated_database)
        [entry_id] = await add_entries(database, 400 * DAY)

        async with database.engine.begin() as connection:
            await connection.execute(text(f"SET LOCAL {PURGE_MARKER} = 'on'"))
            await connection.execute(text(DELETE), {"id": entry_id})

        assert await present(database, [entry_id]) == []

    async def test_the_purge_marker_ends_with_its_transaction(
        self, database: Database, migrated_database: str
    ) -> None:
        needs_postgresql(migrated_database)
        [entry_id] = await add_entries(database, 400 * DAY)

        async with database.engine.connect() as connection:
            async with connection.begin():
                await connection.execute(text(f"SET LOCAL {PURGE_MARKER} = 'on'"))
            with pytest.raises(DBAPIError, match="append-only: DELETE refused"):
                async with connection.begin():
                    await connection.execute(text(DELETE), {"id": entry_id})

        assert await present(database, [entry_id]) == [entry_id]

    async def test_the_purge_marker_does_not_let_an_update_through(
        self, database: Database, migrated_database: str
    ) -> None:
        needs_postgresql(migrated_database)
        [entry_id] = await add_entries(database, HOUR)

        async with rolled_back(database) as connection:
            await connection.execute(text(f"SET LOCAL {PURGE_MARKER} = 'on'"))
            with pytest.raises(DBAPIError, match="append-only: UPDATE refused"):
                await connection.execute(text(UPDATE), {"id": entry_id})

        assert await action_of(database, entry_id) == "pipeline.updated"


class TestPurgeAuditEntries:
    async def test_removes_entries_older_than_the_cut_off_and_keeps_the_rest(
        self, database: Database
    ) -> None:
        await purge_audit_entries(database, older_than_days=30)
        old = await add_entries(database, 30 * DAY + HOUR, 400 * DAY)
        recent = await add_entries(database, 30 * DAY - HOUR, HOUR)

        purge = await purge_audit_entries(database, older_than_days=30)

        assert purge.removed == 2
        assert not purge.another_running
        assert await present(database, old + recent) == recent

    async def test_takes_as_many_batches_as_there_are_old_entries(
        self, database: Database
    ) -> None:
        await purge_audit_entries(database, older_than_days=30)
        old = await add_entries(database, *[40 * DAY] * 5)

        purge = await purge_audit_entries(database, older_than_days=30, batch_size=2)

        assert purge.removed == 5
        assert await present(database, old) == []

    async def test_removes_nothing_when_nothing_is_that_old(
        self, database: Database
    ) -> None:
        recent = await add_entries(database, HOUR)

        purge = await purge_audit_entries(database, older_than_days=10**12)

        assert purge.removed == 0
        assert await present(database, recent) == recent

    async def test_of_two_purges_at_once_one_does_the_work_and_the_other_returns(
        self, database: Database, migrated_database: str
    ) -> None:
        needs_postgresql(migrated_database)
        await purge_audit_entries(database, older_than_days=30)
        old = await add_entries(database, *[40 * DAY] * 3)
        engine = create_async_engine(migrated_database)
        # Outside a transaction, so that each look at pg_stat_activity is fresh.
        watching = engine.execution_options(isolation_level="AUTOCOMMIT")

        async with engine.connect() as holder, watching.connect() as watcher:
            # Holding one of the old rows keeps the first purge inside its
            # transaction, with the purge's lock taken, until the hold ends.
            hold = await holder.begin()
            await holder.execute(
                text("SELECT id FROM audit_entries WHERE id = :id FOR UPDATE"),
                {"id": old[0]},
            )
            first = asyncio.create_task(
                purge_audit_entries(database, older_than_days=30)
            )
            try:
                await _until_a_purge_waits(watcher)
                # A second purge that waited for the first, instead of
                # returning, would wait for ever on the held row: give up.
                async with asyncio.timeout(60):
                    second = await purge_audit_entries(database, older_than_days=30)
                still_there = await present(database, old)
            finally:
                await hold.rollback()
            done = await first
        await engine.dispose()

        assert second.removed == 0
        assert second.another_running
        assert still_there == old
        assert done.removed == 3
        assert not done.another_running
        assert await present(database, old) == []


class TestScheduledPurge:
    async def test_a_served_app_purges_at_start_and_then_every_interval(
        self, database: Database, migrated_database: str, redis_url: str | None
    ) -> None:
        stale = await add_entries(database, 90 * DAY + HOUR)
        kept = await add_entries(database, 90 * DAY - HOUR)
        application = create_app(
            make_settings(migrated_database, redis_url, audit_purge_interval=0.05)
        )
        before = purge_tasks()

        with capture_logs() as logs:
            async with LifespanManager(application), client_of(application) as http:
                await until_gone(database, stale)
                later = await add_entries(database, 91 * DAY)
                await until_gone(database, later)
                health = await http.get("/health")
                running = purge_tasks() - before

        assert await present(database, kept) == kept
        assert health.status_code == 200
        purged = [entry for entry in logs if entry["event"] == "audit.purged"]
        assert purged
        assert {entry["older_than_days"] for entry in purged} == {90}
        assert sum(entry["removed"] for entry in purged) >= 2
        assert len(running) == 1
        assert purge_tasks() - before == set()

    async def test_a_failed_purge_leaves_the_app_serving_and_the_next_one_runs(
        self, tmp_path: Path
    ) -> None:
        # A database without the audit table yet: every purge fails until the
        # schema is migrated under the running app.
        url = f"sqlite+aiosqlite:///{tmp_path / 'later.db'}"
        application = create_app(make_settings(url, None, audit_purge_interval=0.05))

        with capture_logs() as logs:
            async with LifespanManager(application), client_of(application) as http:
                await until_logged(logs, "audit.purge_failed")
                engine = create_async_engine(url)
                await upgrade_to_head(engine)
                await engine.dispose()
                db = application.state.services.db
                stale = await add_entries(db, 100 * DAY)
                await until_gone(db, stale)
                health = await http.get("/health")

        failure = next(
            entry for entry in logs if entry["event"] == "audit.purge_failed"
        )
        assert failure["log_level"] == "warning"
        assert "no such table: audit_entries" in failure["error"]
        assert health.status_code == 200
        assert any(
            entry["event"] == "audit.purged" and entry["removed"] == 1 for entry in logs
        )


async def _until_a_purge_waits(watcher: AsyncConnection) -> None:
    for _ in range(LOOKS):
        if await watcher.scalar(text(WAITING_PURGES)):
            return
        await asyncio.sleep(0.01)
    pytest.fail("the first purge never reached the held row")
