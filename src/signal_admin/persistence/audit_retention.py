"""Retention of the audit trail: entries older than the retention period are
removed, by `signal-admin purge-audit` or on a schedule inside `serve`.

This is the one place that deletes audit entries. Each batch is its own short
transaction, so a purge of millions of rows never holds locks for long, and
each sets the purge marker without which PostgreSQL's trigger refuses the
DELETE (migration 0006).

On PostgreSQL each batch first takes a transaction-level advisory lock, without
waiting: when replicas purge at the same moment, one does the work and the
others stop at once and say so. SQLite serves one process, whose write
transactions queue anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from signal_admin.errors import DomainError
from signal_admin.persistence.database import Database
from signal_admin.persistence.models import AuditEntry
from signal_admin.persistence.types import format_timestamp, utc_now

log = structlog.get_logger(__name__)

# The transaction-local setting the trigger of migration 0006 reads.
PURGE_MARKER = "signal_admin.audit_purge"
# The advisory lock key of the purge, a fixed bigint no other job uses: the
# ASCII of "SAAUDITP".
PURGE_LOCK_KEY = 0x5341_4155_4449_5450
BATCH_SIZE = 1000
# A cut-off further back than the calendar reaches: nothing is that old.
EARLIEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class AuditPurge:
    """What one purge did: how many entries it removed, older than which
    instant, and whether it stopped because another process was purging."""

    removed: int
    cut_off: datetime
    another_running: bool = False


async def purge_audit_entries(
    db: Database,
    *,
    older_than_days: int,
    batch_size: int = BATCH_SIZE,
    stopping: asyncio.Event | None = None,
) -> AuditPurge:
    """Remove every audit entry older than `older_than_days` days, in batches
    of at most `batch_size`, unless another process is purging already. When
    `stopping` is set, the purge ends after the batch under way."""
    cut_off = _cut_off(utc_now(), older_than_days)
    removed = 0
    while stopping is None or not stopping.is_set():
        batch = await _remove_batch(db, cut_off, batch_size)
        if batch is None:
            return AuditPurge(removed, cut_off, another_running=True)
        removed += batch
        if batch < batch_size:
            break
    return AuditPurge(removed, cut_off)


@asynccontextmanager
async def scheduled_audit_purges(
    db: Database, *, older_than_days: int, interval: float
) -> AsyncIterator[None]:
    """Purge at once, then every `interval` seconds, until the block ends.
    The end waits for the batch under way rather than cancelling it: a write
    transaction cut off halfway can leave SQLite locked for a while."""
    stopping = asyncio.Event()
    task = asyncio.create_task(
        _purge_on_schedule(
            db, older_than_days=older_than_days, interval=interval, stopping=stopping
        ),
        name="audit-purge",
    )
    try:
        yield
    finally:
        stopping.set()
        # Waits for the task without taking on its cancellation, so that a
        # cancellation of the caller itself still reaches the caller.
        await asyncio.wait({task})


async def _purge_on_schedule(
    db: Database, *, older_than_days: int, interval: float, stopping: asyncio.Event
) -> None:
    while not stopping.is_set():
        await _purge_once(db, older_than_days, stopping)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval)


async def _purge_once(
    db: Database, older_than_days: int, stopping: asyncio.Event
) -> None:
    """One scheduled purge, logged; a failure waits for the next one."""
    try:
        purge = await purge_audit_entries(
            db, older_than_days=older_than_days, stopping=stopping
        )
    except (DomainError, SQLAlchemyError, OSError) as error:
        # An unreachable or failing database: the next run tries again.
        log.warning("audit.purge_failed", error=_described(error))
        return
    except Exception:
        # A bug must not end the schedule or the app: log it in full and try
        # again next time.
        log.exception("audit.purge_failed")
        return
    if purge.another_running:
        log.info("audit.purge_skipped", removed=purge.removed, reason="another_running")
        return
    log.info(
        "audit.purged",
        removed=purge.removed,
        older_than_days=older_than_days,
        cut_off=format_timestamp(purge.cut_off),
    )


async def _remove_batch(db: Database, cut_off: datetime, batch_size: int) -> int | None:
    """Remove up to `batch_size` entries older than `cut_off` in one
    transaction; None, having removed nothing, when another process holds
    the purge's lock."""
    postgresql = db.engine.dialect.name == "postgresql"
    oldest = (
        select(AuditEntry.id).where(AuditEntry.timestamp < cut_off).limit(batch_size)
    )
    async with db.transaction() as session:
        connection = await session.connection()
        if postgresql:
            locked = await connection.scalar(
                select(func.pg_try_advisory_xact_lock(PURGE_LOCK_KEY))
            )
            if not locked:
                return None
            await connection.execute(text(f"SET LOCAL {PURGE_MARKER} = 'on'"))
        result = await connection.execute(
            delete(AuditEntry).where(AuditEntry.id.in_(oldest.scalar_subquery()))
        )
        return result.rowcount


def _described(error: BaseException) -> str:
    """The error's class and the first line of its message, or of its cause's
    (a database error's text goes on with the statement it refused)."""
    cause = error.__cause__ or error
    original = getattr(cause, "orig", None)
    if isinstance(original, BaseException):
        cause = original
    first_line = next(iter(str(cause).splitlines()), "")
    return f"{type(cause).__name__}: {first_line}"


def _cut_off(now: datetime, older_than_days: int) -> datetime:
    try:
        return now - timedelta(days=older_than_days)
    except OverflowError:
        return EARLIEST
