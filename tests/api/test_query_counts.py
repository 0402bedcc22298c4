"""SQL statement counts: a list page costs the same whatever its size."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import event

from tests.factories import Factory


@contextmanager
def counted_selects(app: FastAPI) -> Iterator[list[str]]:
    """Collect the SELECT statements the app's engine runs inside the block."""
    engine = app.state.services.db.engine.sync_engine
    statements: list[str] = []

    def record(*args: Any) -> None:
        statement = str(args[2])
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_pipeline_list_page_costs_two_selects_whatever_its_size(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    for _ in range(12):
        await factory.pipeline(org.owner)

    with counted_selects(app) as small:
        small_page = await client.get(
            "/v1/admin/pipelines", params={"limit": 2}, headers=org.owner.headers
        )
    with counted_selects(app) as large:
        large_page = await client.get(
            "/v1/admin/pipelines", params={"limit": 12}, headers=org.owner.headers
        )

    assert len(small_page.json()["data"]) == 2
    assert len(large_page.json()["data"]) == 12
    # One to authenticate the caller, one for the page.
    assert len(small) == len(large) == 2
