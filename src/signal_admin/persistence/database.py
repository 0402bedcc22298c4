"""Engines, sessions and transactions.

Every operation runs in one transaction opened here. Writes on SQLite begin with
`BEGIN IMMEDIATE`, so two writers queue for the database lock instead of both
reading a value and then colliding; on PostgreSQL, resolvers lock the rows they
change with `SELECT … FOR UPDATE`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from signal_admin.errors import ServiceUnavailable

_WRITE_OPTION = "signal_write"


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine = _create_engine(url, echo=echo)
        self._reads = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writes = async_sessionmaker(
            self.engine.execution_options(**{_WRITE_OPTION: True}),
            expire_on_commit=False,
        )

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A short read-only session."""
        async with _unavailable_as_503(), self._reads() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A write transaction, committed when the block ends without error and
        rolled back otherwise."""
        async with (
            _unavailable_as_503(),
            self._writes() as session,
            session.begin(),
        ):
            yield session

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
        return create_async_engine(
            url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20
        )
    engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
    event.listen(engine.sync_engine, "connect", _configure_sqlite_connection)
    event.listen(engine.sync_engine, "begin", _begin_sqlite_transaction)
    return engine


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
    try:
        yield
    except (OperationalError, ConnectionRefusedError, OSError) as error:
        if isinstance(error, OperationalError) and _is_sqlite_lock(error):
            raise
        raise ServiceUnavailable() from error


def _is_sqlite_lock(error: OperationalError) -> bool:
    return "database is locked" in str(error.orig)
