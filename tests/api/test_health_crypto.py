"""`GET /health/crypto`: whether the configured encryption keys open what is
stored, in single-key and dual-key mode.

The answer looks at every stored value of the service, so each test runs on
a database of its own (a SQLite file, or a PostgreSQL database made for it
and dropped after) holding only what the test wrote.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from signal_admin.persistence.schema import upgrade_to_head
from tests.factories import Factory, Org
from tests.helpers import client_of, dedicated_app

HEALTH = "/health/crypto"
RE_ENCRYPT = "/v1/admin/crypto/re-encrypt"


@pytest.fixture
async def own_database(database_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated database for this test alone, of the suite's kind."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        own = f"sqlite+aiosqlite:///{tmp_path / 'health.db'}"
        await _migrate(own)
        yield own
        return

    name = f"{url.database}_health_{uuid.uuid4().hex[:8]}"
    server = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with server.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        own = url.set(database=name).render_as_string(hide_password=False)
        await _migrate(own)
        yield own
    finally:
        async with server.connect() as connection:
            await connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        await server.dispose()


async def _migrate(url: str) -> None:
    engine = create_async_engine(url)
    await upgrade_to_head(engine)
    await engine.dispose()


@pytest.fixture
def replica(own_database: str, redis_url: str | None) -> Any:
    """Apps on the test's own database, each with the keys it is given."""

    @asynccontextmanager
    async def start(
        key: str, previous: str | None = None
    ) -> AsyncIterator[tuple[FastAPI, AsyncClient]]:
        async with (
            dedicated_app(
                own_database,
                redis_url,
                encryption_key=key,
                encryption_key_previous=previous,
            ) as app,
            client_of(app) as http,
        ):
            yield app, http

    return start


def _key() -> str:
    return secrets.token_hex(32)


async def _secrets_under(replica: Any, key: str) -> Org:
    """An organisation whose pipeline key secret, template secret and stored
    idempotent answer are sealed by `key`."""
    async with replica(key) as (app, http):
        factory = Factory(app, http)
        org = await factory.org()
        await factory.pipeline(org.owner)
        template = await http.post(
            "/v1/admin/integration-templates",
            json={
                "name": "Hook",
                "vendor": "webhook",
                "secret_fields": ["signing_secret"],
                "config": {"signing_secret": "s3cr3t", "defaults": {"action": "pass"}},
            },
            headers=org.owner.headers,
        )
        answer = await http.post(
            "/v1/admin/pipelines",
            json={"name": "Kept answer", "type": "web"},
            headers={**org.owner.headers, "Idempotency-Key": "health-1"},
        )
    assert template.status_code == 201, template.text
    assert answer.status_code == 201, answer.text
    return org


async def test_one_key_that_opens_everything_is_healthy(replica: Any) -> None:
    key = _key()
    await _secrets_under(replica, key)

    async with replica(key) as (_, http):
        response = await http.get(HEALTH)

    assert response.status_code == 200
    assert response.json() == {
        "status": "healthy",
        "dual_key_mode": False,
        "checks": {"key_valid": True, "round_trip": True, "previous_key_valid": None},
    }


async def test_an_empty_database_is_healthy(replica: Any) -> None:
    async with replica(_key()) as (_, http):
        response = await http.get(HEALTH)

    assert response.status_code == 200
    assert response.json()["status"] == "healthy"


async def test_dual_key_mode_with_the_right_previous_key_is_healthy(
    replica: Any,
) -> None:
    old, new = _key(), _key()
    await _secrets_under(replica, old)

    async with replica(new, previous=old) as (_, http):
        response = await http.get(HEALTH)

    assert response.status_code == 200
    assert response.json() == {
        "status": "healthy",
        "dual_key_mode": True,
        "checks": {"key_valid": True, "round_trip": True, "previous_key_valid": True},
    }


async def test_a_previous_key_that_opens_nothing_stored_is_unhealthy(
    replica: Any,
) -> None:
    old, new, wrong = _key(), _key(), _key()
    await _secrets_under(replica, old)

    async with replica(new, previous=wrong) as (_, http):
        response = await http.get(HEALTH)

    assert response.status_code == 503
    assert response.json() == {
        "status": "unhealthy",
        "dual_key_mode": True,
        "checks": {
            "key_valid": True,
            "round_trip": True,
            "previous_key_valid": False,
        },
    }


async def test_removing_the_previous_key_too_early_is_unhealthy(
    replica: Any,
) -> None:
    old, new = _key(), _key()
    await _secrets_under(replica, old)

    async with replica(new) as (_, http):
        response = await http.get(HEALTH)

    assert response.status_code == 503
    assert response.json() == {
        "status": "unhealthy",
        "dual_key_mode": False,
        "checks": {
            "key_valid": False,
            "round_trip": True,
            "previous_key_valid": None,
        },
    }


async def test_after_re_encryption_the_new_key_alone_is_healthy(replica: Any) -> None:
    old, new = _key(), _key()
    org = await _secrets_under(replica, old)
    async with replica(new, previous=old) as (_, http):
        started = await http.post(RE_ENCRYPT, headers=org.owner.headers)
        finished = await _until_finished(http, org.owner.headers)

    async with replica(new) as (_, http):
        response = await http.get(HEALTH)

    assert started.status_code == 202
    assert finished["status"] == "completed"
    assert response.status_code == 200
    assert response.json()["status"] == "healthy"


async def test_health_needs_no_token(replica: Any) -> None:
    async with replica(_key()) as (_, http):
        response = await http.get(HEALTH, headers={"Authorization": "Bearer nonsense"})

    assert response.status_code == 200
    assert set(response.json()) == {"status", "dual_key_mode", "checks"}


async def _until_finished(http: AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    async with asyncio.timeout(60):
        while True:
            response = await http.get(RE_ENCRYPT, headers=headers)
            progress: dict[str, Any] = response.json()
            if progress["status"] in {"completed", "failed"}:
                return progress
            await asyncio.sleep(0.02)
