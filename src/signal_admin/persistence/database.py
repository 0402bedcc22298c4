"""Engines, sessions and transactions.

Every write runs in one transaction opened here. Writes on SQLite begin with
`BEGIN IMMEDIATE`, so two writers queue for the database lock instead of both
reading a value and then colliding; on PostgreSQL, resolvers lock the rows they
change with `SELECT … FOR UPDATE`.

Rows are locked in one order, so two writers never wait for each other in a
circle: a template first (every write to a template, its revisions, its
attachments or their secrets locks it before anything else), then a pipeline,
then attachments. Should PostgreSQL still break a transaction off (a deadlock,
a serialization failure) or a row turn out changed since it was read, the
operation fails with `TransactionConflict`, which answers 503 with
`Retry-After`; operations marked `retried_on_conflict` first start over, a few
times, on their own.

Reads on PostgreSQL run without a transaction: at PostgreSQL's default
isolation (READ COMMITTED) every statement sees the rows committed before it
started whether or not a transaction surrounds it, so the BEGIN and ROLLBACK
around a read would cost two round trips and change nothing. On SQLite a read
keeps its transaction, which gives its statements one snapshot.

Pooled connections are not pinged before use. A connection the server closed
(a restart, an idle timeout) is known to be closed as soon as the event loop
reads the end of its socket, so checking that flag on checkout costs nothing
and replaces it with a new connection; one that dies while a statement runs
makes the pool discard every connection opened before, and that one request
answers 503.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, ParamSpec, TypeVar

import structlog
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    OperationalError,
)
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from signal_admin.errors import (
    DomainError,
    ServiceUnavailable,
    TransactionConflict,
    ValidationFailed,
)

log = structlog.get_logger(__name__)

_WRITE_OPTION = "signal_write"
# How many times in all a `retried_on_conflict` operation runs.
CONFLICT_ATTEMPTS = 3
# SQLSTATEs of a transaction PostgreSQL broke off to settle a clash:
# serialization_failure and deadlock_detected.
_CONFLICT_STATES = frozenset({"40001", "40P01"})
_UNIQUE_VIOLATION = "23505"
# SQLSTATE class 22: the database refused a value it was given (text with a
# NUL character, a number out of range, …).
_DATA_EXCEPTION = "22"

P = ParamSpec("P")
R = TypeVar("R")
# Called with a committed session's `info`.
AfterCommit = Callable[[dict[str, Any]], Awaitable[None]]


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine = _create_engine(url, echo=echo)
        self._read_engine = (
            self.engine
            if self.is_sqlite
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        self._reads = async_sessionmaker(self._read_engine, expire_on_commit=False)
        self._writes = async_sessionmaker(
            self.engine.execution_options(**{_WRITE_OPTION: True}),
            expire_on_commit=False,
        )
        self._after_commit: list[AfterCommit] = []

    def after_commit(self, hook: AfterCommit) -> None:
        """Run `hook` with the `info` of every write session that commits,
        once it has committed (to publish what it wrote, say). A hook never
        fails the operation: its errors are logged."""
        self._after_commit.append(hook)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A short read-only session; nothing it writes is ever committed."""
        async with _unavailable_as_503(), self._reads() as session:
            yield session

    @asynccontextmanager
    async def read_rows(self) -> AsyncIterator[AsyncConnection]:
        """A connection for Core statements that read, like `read()` but
        without an ORM session, for reads that build no objects: the caller
        lookup runs on every request."""
        async with _unavailable_as_503(), self._read_engine.connect() as connection:
            yield connection

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A write transaction, committed when the block ends without error and
        rolled back otherwise."""
        async with (
            _unavailable_as_503(),
            _conflict_as_retryable(),
            self._writes() as session,
            session.begin(),
        ):
            yield session
        for hook in self._after_commit:
            try:
                await hook(session.info)
            except Exception:
                log.exception("db.after_commit_failed")

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except (OSError, DBAPIError):
            return False
        return True

    async def dispose(self) -> None:
        await self.engine.dispose()


def _create_engine(url: str, *, echo: bool) -> AsyncEngine:
    if not url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo, pool_size=10, max_overflow=20)
        event.listen(engine.sync_engine, "checkout", _refuse_closed_connection)
        return engine
    engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
    event.listen(engine.sync_engine, "connect", _configure_sqlite_connection)
    event.listen(engine.sync_engine, "begin", _begin_sqlite_transaction)
    return engine


def _refuse_closed_connection(
    dbapi_connection: Any, _record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
) -> None:
    # The pool answers DisconnectionError by opening a fresh connection.
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


def _configure_sqlite_connection(
    dbapi_connection: Any, _record: ConnectionPoolEntry
) -> None:
    # Let SQLAlchemy emit BEGIN itself, so writes can ask for BEGIN IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
    # SQLite's own lower() folds ASCII only; case-insensitive name filters must
    # find "ÉCOLE" with "école" as PostgreSQL does.
    dbapi_connection.create_function("lower", 1, _lower, deterministic=True)


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _begin_sqlite_transaction(connection: Connection) -> None:
    if connection.get_execution_options().get(_WRITE_OPTION):
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.exec_driver_sql("BEGIN")


@asynccontextmanager
async def _unavailable_as_503() -> AsyncIterator[None]:
    """An unreachable database answers 503; a value the database refuses
    answers 422, as a last guard behind the validation of every input."""
    try:
        yield
    except (OperationalError, ConnectionRefusedError, OSError) as error:
        if isinstance(error, OperationalError) and _is_sqlite_lock(error):
            raise
        raise ServiceUnavailable() from error
    except DBAPIError as error:
        # A connection lost in the middle of a statement.
        if error.connection_invalidated:
            raise ServiceUnavailable() from error
        if str(getattr(error.orig, "sqlstate", "")).startswith(_DATA_EXCEPTION):
            raise _refused_value(error) from error
        raise
    except UnicodeEncodeError as error:
        # SQLite's driver refuses text that is not UTF-8 before sending it.
        raise _refused_value(error) from error


def _refused_value(error: Exception) -> ValidationFailed:
    log.warning(
        "db.value_refused",
        sqlstate=getattr(getattr(error, "orig", None), "sqlstate", None),
        error=type(error).__name__,
    )
    return ValidationFailed(
        "The input holds a value the database cannot store, such as text with "
        "a NUL character."
    )


def _is_sqlite_lock(error: OperationalError) -> bool:
    return "database is locked" in str(error.orig)


@asynccontextmanager
async def _conflict_as_retryable() -> AsyncIterator[None]:
    """A transaction broken off by a concurrent one, or a versioned row that
    changed between its read and its write, becomes `TransactionConflict`."""
    try:
        yield
    except StaleDataError as error:
        log.info("db.transaction_conflict", cause="stale_row")
        raise TransactionConflict() from error
    except DBAPIError as error:
        state = getattr(error.orig, "sqlstate", None)
        if state in _CONFLICT_STATES:
            log.info("db.transaction_conflict", cause="sqlstate", sqlstate=state)
            raise TransactionConflict() from error
        raise


def retried_on_conflict(
    operation: Callable[P, Awaitable[R]],
) -> Callable[P, Awaitable[R]]:
    """Run `operation` again from the start when its transaction ends in
    `TransactionConflict`, up to `CONFLICT_ATTEMPTS` times in all. Only for an
    operation whose one write transaction is all it changes, so that a failed
    attempt leaves nothing behind."""

    @functools.wraps(operation)
    async def retrying(*args: P.args, **kwargs: P.kwargs) -> R:
        for attempt in range(1, CONFLICT_ATTEMPTS):
            try:
                return await operation(*args, **kwargs)
            except TransactionConflict:
                log.info("db.transaction_retried", attempt=attempt)
                # A short random pause, so that the colliding writers do not
                # meet again at once.
                await asyncio.sleep(random.uniform(0, 0.05 * attempt))
        return await operation(*args, **kwargs)

    return retrying


async def flush_unique(session: AsyncSession, clash: DomainError) -> None:
    """Flush `session`, answering `clash` when a concurrent writer took a
    unique value first. Any other refusal (a missing value, a broken foreign
    key) is a fault of the service and propagates as it is."""
    try:
        await session.flush()
    except IntegrityError as error:
        if is_unique_violation(error):
            raise clash from error
        raise


def is_unique_violation(error: IntegrityError) -> bool:
    """Whether a failed write broke a unique constraint (rather than, say, a
    foreign key to a row deleted meanwhile)."""
    if getattr(error.orig, "sqlstate", None) == _UNIQUE_VIOLATION:
        return True
    return "UNIQUE constraint failed" in str(error.orig)
