"""Test set-up: one migrated database and one app for the whole run.

Tests run on SQLite and in-process parts by default, and on PostgreSQL and
Redis when TEST_DATABASE_URL and TEST_REDIS_URL are set. Tests stay
independent by each creating its own organisation.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from signal_admin.app import create_app
from signal_admin.config import Settings
from signal_admin.persistence.schema import upgrade_to_head
from tests.factories import Factory

TEST_JWT_SECRET = "test-jwt-secret-that-is-long-enough-0123456789"
TEST_ENCRYPTION_KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    path: Path = tmp_path_factory.mktemp("db") / "signal-admin.db"
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(scope="session")
def redis_url() -> str | None:
    return os.environ.get("TEST_REDIS_URL") or None


def make_settings(
    database_url: str, redis_url: str | None, **overrides: object
) -> Settings:
    """Settings for a test app. The rate limit is high so that the suite, which
    signs in from one address many times, is not limited by accident; tests of
    the limiter build their own app with a small one."""
    values: dict[str, object] = {
        "database_url": database_url,
        "redis_url": redis_url,
        "jwt_secret": TEST_JWT_SECRET,
        "encryption_key": TEST_ENCRYPTION_KEY,
        "rate_limit_per_minute": 100_000,
        "login_attempts_per_minute": 100_000,
        "log_level": "info",
    }
    values.update(overrides)
    return Settings.model_validate(values)


@pytest.fixture(scope="session")
async def migrated_database(database_url: str, redis_url: str | None) -> str:
    engine = create_async_engine(database_url)
    if engine.dialect.name == "postgresql":
        async with engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
    await upgrade_to_head(engine)
    await engine.dispose()
    if redis_url:
        redis = Redis.from_url(redis_url)
        await redis.flushdb()
        await redis.aclose()
    return database_url


@pytest.fixture(scope="session")
def settings(migrated_database: str, redis_url: str | None) -> Settings:
    return make_settings(migrated_database, redis_url)


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(
        transport=ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        yield http


@pytest.fixture
def factory(app: FastAPI, client: AsyncClient) -> Factory:
    return Factory(app, client)


pytest_plugins = ["tests.servers"]
