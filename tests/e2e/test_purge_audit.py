"""`signal-admin purge-audit` as an operator runs it: old audit entries go,
the rest stay, and every refusal is one line."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from signal_admin.cli import OUT_OF_DATE
from signal_admin.persistence.audit_retention import PURGE_LOCK_KEY
from signal_admin.persistence.database import Database
from tests.api.test_audit_retention import DAY, HOUR, add_entries, present
from tests.e2e.test_cli import DATABASE_FILE, CommandLine, assert_failed_in_one_line

REMOVED = re.compile(
    r"^removed (?P<count>\d+) audit entr(y|ies) older than (?P<days>\d+) days? "
    r"\(before \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\)"
)


@pytest.fixture(scope="module")
def migrated_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database at head, migrated once and copied for each test."""
    folder = tmp_path_factory.mktemp("migrated")
    migrated = CommandLine(folder).run("migrate")
    assert migrated.returncode == 0, migrated.stderr
    return folder / DATABASE_FILE


@pytest.fixture
def cli(tmp_path: Path, migrated_file: Path) -> CommandLine:
    """The command line on a database of its own, at head."""
    for suffix in ("", "-wal", "-shm"):
        source = migrated_file.with_name(migrated_file.name + suffix)
        if source.exists():
            shutil.copy(source, tmp_path / source.name)
    return CommandLine(tmp_path)


@pytest.fixture
async def database(cli: CommandLine) -> AsyncIterator[Database]:
    db = Database(cli.env["DATABASE_URL"])
    yield db
    await db.dispose()


async def run(cli: CommandLine, *args: str, **settings: str) -> tuple[int, str, str]:
    result = await asyncio.to_thread(cli.run, "purge-audit", *args, **settings)
    return result.returncode, result.stdout, result.stderr


async def test_removes_entries_older_than_ninety_days_by_default(
    cli: CommandLine, database: Database
) -> None:
    old = await add_entries(database, 90 * DAY + HOUR, 3 * 365 * DAY)
    recent = await add_entries(database, 90 * DAY - HOUR, HOUR)

    status, output, errors = await run(cli)

    assert status == 0, errors
    assert errors == ""
    assert len(output.splitlines()) == 1
    summary = REMOVED.match(output)
    assert summary is not None, output
    assert summary["count"] == "2"
    assert summary["days"] == "90"
    assert await present(database, old + recent) == recent


async def test_older_than_days_sets_the_cut_off(
    cli: CommandLine, database: Database
) -> None:
    old = await add_entries(database, 7 * DAY + HOUR)
    recent = await add_entries(database, 7 * DAY - HOUR)

    status, output, errors = await run(cli, "--older-than-days", "7")

    assert status == 0, errors
    assert output.startswith("removed 1 audit entry older than 7 days")
    assert await present(database, old + recent) == recent


async def test_the_retention_setting_is_the_default_cut_off(
    cli: CommandLine, database: Database
) -> None:
    old = await add_entries(database, 30 * DAY + HOUR)
    recent = await add_entries(database, 30 * DAY - HOUR)

    status, output, errors = await run(cli, AUDIT_RETENTION_DAYS="30")

    assert status == 0, errors
    assert output.startswith("removed 1 audit entry older than 30 days")
    assert await present(database, old + recent) == recent


@pytest.mark.parametrize("days", ["0", "-5", "ten", "1.5"])
async def test_refuses_fewer_than_one_whole_day(
    cli: CommandLine, database: Database, days: str
) -> None:
    old = await add_entries(database, 400 * DAY)

    result = await asyncio.to_thread(cli.run, "purge-audit", "--older-than-days", days)

    assert result.returncode == 2
    reason = assert_failed_in_one_line(result)
    assert "--older-than-days" in reason
    assert "at least 1" in reason
    assert await present(database, old) == old


async def test_refuses_a_retention_setting_below_one_day(
    cli: CommandLine, database: Database
) -> None:
    old = await add_entries(database, 400 * DAY)

    result = await asyncio.to_thread(cli.run, "purge-audit", AUDIT_RETENTION_DAYS="0")

    assert result.returncode == 1
    assert "AUDIT_RETENTION_DAYS" in assert_failed_in_one_line(result)
    assert await present(database, old) == old


def test_refuses_a_database_behind_the_migrations(tmp_path: Path) -> None:
    result = CommandLine(tmp_path).run("purge-audit")

    assert result.returncode == 1
    assert assert_failed_in_one_line(result).endswith(OUT_OF_DATE)


def test_reports_an_unreachable_database_in_one_line(tmp_path: Path) -> None:
    result = CommandLine(tmp_path).run(
        "purge-audit",
        DATABASE_URL="postgresql+asyncpg://postgres:pw@127.0.0.1:1/none",
    )

    reason = assert_failed_in_one_line(result)
    assert "cannot use the database" in reason
    assert ":pw@" not in reason


async def test_purges_the_suite_database_through_its_guard(
    tmp_path: Path, migrated_database: str
) -> None:
    """On PostgreSQL the DELETE passes the append-only trigger only because
    the purge marks its transactions."""
    cli = CommandLine(tmp_path)
    database = Database(migrated_database)
    old = await add_entries(database, 90 * DAY + HOUR)
    recent = await add_entries(database, 90 * DAY - HOUR)

    status, output, errors = await run(cli, DATABASE_URL=migrated_database)
    left = await present(database, old + recent)
    await database.dispose()

    assert status == 0, errors
    assert REMOVED.match(output), output
    assert left == recent


async def test_says_so_and_removes_nothing_while_another_process_purges(
    tmp_path: Path, migrated_database: str
) -> None:
    if not migrated_database.startswith("postgresql"):
        pytest.skip("advisory locks need PostgreSQL; set TEST_DATABASE_URL")
    cli = CommandLine(tmp_path)
    database = Database(migrated_database)
    old = await add_entries(database, 400 * DAY)

    # Another replica in the middle of a purge holds the purge's lock.
    async with database.engine.connect() as replica, replica.begin():
        await replica.execute(select(func.pg_advisory_xact_lock(PURGE_LOCK_KEY)))
        status, output, errors = await run(cli, DATABASE_URL=migrated_database)
        left = await present(database, old)
    _, afterwards, _ = await run(cli, DATABASE_URL=migrated_database)
    await database.dispose()

    assert status == 0, errors
    assert output.startswith("removed 0 audit entries older than 90 days")
    assert output.rstrip().endswith(
        "stopped because another process is purging the audit trail"
    )
    assert left == old
    assert "another process" not in afterwards
