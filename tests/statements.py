"""Count the SQL statements one test's own requests run.

The app's engine also serves background work that started with the app (the
re-encryption watch, the live-socket session check). Those tasks were created
before a block below was entered, so they do not see its context variable, and
their statements are left out of the count however the timing falls.
"""

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import Any

from fastapi import FastAPI
from sqlalchemy import event

_counting: ContextVar[list[str] | None] = ContextVar("counting", default=None)


def _is_select(statement: str) -> bool:
    return statement.lstrip().upper().startswith("SELECT")


@contextmanager
def executed_statements(
    app: FastAPI, *, selects_only: bool = False
) -> Iterator[list[str]]:
    """Every SQL statement (or every SELECT) the requests made inside the
    block run, in a list that fills in as they run."""
    engine = app.state.services.db.engine.sync_engine
    statements: list[str] = []

    def record(*args: Any) -> None:
        statement = str(args[2])
        if _counting.get() is not statements:
            return
        if not selects_only or _is_select(statement):
            statements.append(statement)

    token = _counting.set(statements)
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)
        _counting.reset(token)


def counted_selects(app: FastAPI) -> AbstractContextManager[list[str]]:
    """The SELECT statements the requests made inside the block run."""
    return executed_statements(app, selects_only=True)


def selects(statements: list[str]) -> list[str]:
    return [each for each in statements if _is_select(each)]
