"""A database that cannot be reached answers 503, never a 500."""

from collections.abc import AsyncIterator

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient

from signal_admin.app import create_app
from signal_admin.security.tokens import TokenService
from tests.conftest import TEST_JWT_SECRET, make_settings
from tests.factories import error_code

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
