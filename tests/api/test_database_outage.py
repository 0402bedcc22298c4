"""A database that cannot be reached answers 503, never a 500, and the service
recovers by itself when it is back."""

from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from signal_admin.app import create_app
from signal_admin.security.tokens import TokenService
from tests.conftest import TEST_JWT_SECRET, make_settings
from tests.factories import Factory, error_code
from tests.helpers import client_of, dedicated_app

UNREACHABLE = "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"


@pytest.fixture
async def outage_client(redis_url: str | None) -> AsyncIterator[AsyncClient]:
    app = create_app(make_settings(UNREACHABLE, redis_url))
    async with (
        LifespanManager(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client,
    ):
        yield client


async def test_readiness_answers_503_when_the_database_is_down(
    outage_client: AsyncClient,
) -> None:
    response = await outage_client.get("/health/ready")

    assert response.status_code == 503
    assert response.json()["database"] == "down"


async def test_login_answers_service_unavailable_when_the_database_is_down(
    outage_client: AsyncClient,
) -> None:
    response = await outage_client.post(
        "/v1/admin/auth/login",
        json={"email": "someone@example.com", "password": "long enough password"},
    )

    assert response.status_code == 503
    assert error_code(response) == "SERVICE_UNAVAILABLE"


async def test_authenticated_calls_answer_service_unavailable_when_the_database_is_down(
    outage_client: AsyncClient,
) -> None:
    tokens = TokenService(TEST_JWT_SECRET, access_ttl=900, refresh_ttl=900, leeway=5)
    token = tokens.issue_access(
        user_id="usr_x", org_id="org_x", session_id="ses_x", role="owner"
    ).token

    response = await outage_client.get(
        "/v1/admin/pipelines", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 503
    assert error_code(response) == "SERVICE_UNAVAILABLE"


async def _terminate_backends_since(admin: AsyncConnection, since: datetime) -> None:
    """Make the server close every connection opened after `since` (as a restart
    would) and wait until they are gone."""
    others = (
        "datname = current_database() AND pid <> pg_backend_pid() "
        "AND backend_start >= :since"
    )
    await admin.execute(
        text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {others}"),
        {"since": since},
    )
    while await admin.scalar(
        text(f"SELECT count(*) FROM pg_stat_activity WHERE {others}"),
        {"since": since},
    ):
        pass


async def test_requests_recover_when_the_server_closes_pooled_connections(
    migrated_database: str, redis_url: str | None
) -> None:
    if not migrated_database.startswith("postgresql"):
        pytest.skip("needs PostgreSQL to close the connections; set TEST_DATABASE_URL")
    # Outside a transaction, so that each look at pg_stat_activity is fresh.
    admin_engine = create_async_engine(migrated_database, isolation_level="AUTOCOMMIT")
    async with admin_engine.connect() as admin:
        since = await admin.scalar(text("SELECT clock_timestamp()"))
        async with (
            dedicated_app(migrated_database, redis_url) as app,
            client_of(app) as http,
        ):
            org = await Factory(app, http).org()
            before = await http.get("/v1/admin/pipelines", headers=org.owner.headers)
            await _terminate_backends_since(admin, since)

            # The service learns that its pooled connections are gone when it
            # reads their end; a request that comes first meets a dead one.
            first = await http.get("/v1/admin/pipelines", headers=org.owner.headers)
            then = await http.get("/v1/admin/pipelines", headers=org.owner.headers)
            ready = await http.get("/health/ready")
    await admin_engine.dispose()

    assert before.status_code == 200
    assert first.status_code in (200, 503)
    assert then.status_code == 200
    assert ready.status_code == 200
