"""The order of the first checks every REST call passes: authenticate, charge
the rate limit, then read the body."""

from collections.abc import AsyncIterator

import jwt
import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient

from signal_admin.app import create_app
from tests.conftest import TEST_JWT_SECRET, make_settings
from tests.factories import Factory, Member, error_code


@pytest.fixture
async def strict_client(
    migrated_database: str, redis_url: str | None
) -> AsyncIterator[AsyncClient]:
    """A client of an app that allows three requests a minute per caller."""
    app = create_app(
        make_settings(migrated_database, redis_url, rate_limit_per_minute=3)
    )
    async with (
        LifespanManager(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client,
    ):
        yield client


async def _signed_in(client: AsyncClient, factory: Factory) -> Member:
    org = await factory.org(sign_in=False)
    response = await client.post(
        "/v1/admin/auth/login",
        json={"email": org.owner.email, "password": org.owner.password},
    )
    org.owner.access_token = response.json()["access_token"]
    return org.owner


async def test_a_malformed_body_without_a_token_is_unauthorized(
    client: AsyncClient,
) -> None:
    response = await client.post(
        "/v1/admin/pipelines",
        content=b'{"name":',
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 401
    assert error_code(response) == "UNAUTHORIZED"


async def test_malformed_bodies_are_charged_to_the_caller(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        "/v1/admin/pipelines",
        content=b'{"name":',
        headers={**org.owner.headers, "Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert error_code(response) == "INVALID_JSON"
    assert "X-RateLimit-Remaining" in response.headers


async def test_a_rate_limited_caller_is_refused_before_the_body_is_read(
    strict_client: AsyncClient, factory: Factory
) -> None:
    member = await _signed_in(strict_client, factory)
    headers = {**member.headers, "Content-Type": "application/json"}
    for _ in range(3):
        await strict_client.get("/v1/admin/me", headers=member.headers)

    response = await strict_client.post(
        "/v1/admin/pipelines", content=b"{not json", headers=headers
    )

    assert response.status_code == 429
    assert error_code(response) == "RATE_LIMITED"
    assert int(response.headers["Retry-After"]) >= 1


async def test_a_refused_token_still_costs_a_request(
    client: AsyncClient,
) -> None:
    response = await client.get(
        "/v1/admin/me", headers={"Authorization": "Bearer not-a-token"}
    )

    assert response.status_code == 401
    assert error_code(response) == "INVALID_TOKEN"
    assert "X-RateLimit-Remaining" in response.headers


async def test_a_body_that_is_not_utf8_is_invalid_json(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        "/v1/admin/pipelines",
        content=b'{"name": "\xff\xfe", "type": "web"}',
        headers={**org.owner.headers, "Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert error_code(response) == "INVALID_JSON"


async def test_a_trailing_slash_is_not_redirected(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)

    response = await client.get(
        f"/v1/admin/pipelines/{pipeline['id']}%2F", headers=org.owner.headers
    )

    assert response.status_code == 404
    assert error_code(response) == "NOT_FOUND"


async def test_a_token_with_an_expiry_beyond_any_date_is_invalid(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    claims = jwt.decode(org.owner.access_token, options={"verify_signature": False})
    forged = jwt.encode({**claims, "exp": 1e308}, TEST_JWT_SECRET, algorithm="HS256")

    response = await client.get(
        "/v1/admin/me", headers={"Authorization": f"Bearer {forged}"}
    )

    assert response.status_code == 401
    assert error_code(response) == "INVALID_TOKEN"


async def test_more_than_fifty_label_filters_are_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.get(
        "/v1/admin/pipelines",
        params=[("label", str(n)) for n in range(1000)],
        headers=org.owner.headers,
    )

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    assert response.json()["error"]["details"][0]["field"] == "labels"


async def test_name_filter_folds_case_beyond_ascii(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    await factory.pipeline(org.owner, name="ÉCOLE Site")
    await factory.pipeline(org.owner, name="Other")

    response = await client.get(
        "/v1/admin/pipelines", params={"q": "école"}, headers=org.owner.headers
    )

    assert [p["name"] for p in response.json()["data"]] == ["ÉCOLE Site"]


async def test_an_overlong_login_is_refused_as_bad_credentials(
    client: AsyncClient,
) -> None:
    response = await client.post(
        "/v1/admin/graphql",
        json={
            "query": "mutation($e: String!, $p: String!) { login(input: "
            "{email: $e, password: $p}) { userErrors { code } } }",
            "variables": {"e": "a" * 5000 + "@example.com", "p": "p" * 100_000},
        },
        headers={"Accept": "application/json"},
    )

    errors = response.json().get("errors") or []
    user_errors = (response.json().get("data") or {}).get("login") or {}
    codes = [e["extensions"]["code"] for e in errors] + [
        e["code"] for e in user_errors.get("userErrors", [])
    ]
    assert codes == ["INVALID_CREDENTIALS"]


async def test_a_viewer_is_refused_whatever_the_body_holds(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    viewer = await factory.member(org, "viewer")

    response = await client.post(
        "/v1/admin/pipelines", json={"name": ""}, headers=viewer.headers
    )

    assert response.status_code == 403
    assert error_code(response) == "FORBIDDEN"


async def test_an_editor_is_refused_deletion_before_the_pipeline_is_looked_up(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")

    response = await client.delete(
        "/v1/admin/pipelines/pip_does_not_exist", headers=editor.headers
    )

    assert response.status_code == 403
    assert error_code(response) == "FORBIDDEN"
