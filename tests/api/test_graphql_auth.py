"""Signing in and out and the caller's profile, over GraphQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response

from signal_admin.app import create_app
from tests.conftest import make_settings
from tests.factories import PASSWORD, Factory

GRAPHQL = "/v1/admin/graphql"

LOGIN = """
mutation ($input: LoginInput!) {
  login(input: $input) {
    tokenPair { accessToken refreshToken tokenType expiresIn }
    userErrors { field code message }
  }
}
"""
REFRESH = """
mutation ($token: String!) {
  refreshToken(input: {refreshToken: $token}) {
    tokenPair { accessToken refreshToken }
    userErrors { code }
  }
}
"""
LOGOUT = """
mutation ($token: String!) {
  logout(input: {refreshToken: $token}) { userErrors { code } }
}
"""
ME = "{ me { id orgId email name role status lastLoginAt createdAt updatedAt } }"
UPDATE_ME = """
mutation ($input: UpdateMeInput!) {
  updateMe(input: $input) {
    user { id name }
    userErrors { field code message }
  }
}
"""


async def graphql(
    client: AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    token: str | None = None,
) -> Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await client.post(
        GRAPHQL, json={"query": query, "variables": variables}, headers=headers
    )


def error_codes(response: Response) -> list[str]:
    return [error["extensions"]["code"] for error in response.json()["errors"]]


async def test_login_answers_a_token_pair(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org(sign_in=False)

    response = await graphql(
        client, LOGIN, {"input": {"email": org.owner.email, "password": PASSWORD}}
    )

    assert response.status_code == 200
    login = response.json()["data"]["login"]
    assert login["userErrors"] == []
    assert login["tokenPair"]["tokenType"] == "Bearer"
    assert login["tokenPair"]["expiresIn"] == 900
    assert login["tokenPair"]["accessToken"]
    assert login["tokenPair"]["refreshToken"]


async def test_login_with_a_wrong_password_is_a_user_error(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org(sign_in=False)

    response = await graphql(
        client, LOGIN, {"input": {"email": org.owner.email, "password": "wrong one"}}
    )

    login = response.json()["data"]["login"]
    assert login["tokenPair"] is None
    assert [error["code"] for error in login["userErrors"]] == ["INVALID_CREDENTIALS"]


async def test_refresh_token_spends_the_token_for_a_new_pair(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await graphql(client, REFRESH, {"token": org.owner.refresh_token})

    refreshed = response.json()["data"]["refreshToken"]
    assert refreshed["userErrors"] == []
    assert refreshed["tokenPair"]["refreshToken"] != org.owner.refresh_token
    me = await graphql(client, ME, token=refreshed["tokenPair"]["accessToken"])
    assert me.json()["data"]["me"]["id"] == org.owner.id


async def test_a_reused_refresh_token_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    await graphql(client, REFRESH, {"token": org.owner.refresh_token})

    response = await graphql(client, REFRESH, {"token": org.owner.refresh_token})

    refreshed = response.json()["data"]["refreshToken"]
    assert refreshed["tokenPair"] is None
    assert refreshed["userErrors"] == [{"code": "INVALID_REFRESH_TOKEN"}]


async def test_refresh_token_runs_with_an_expired_access_token_alongside(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await graphql(
        client, REFRESH, {"token": org.owner.refresh_token}, token="not-a-token"
    )

    assert response.json()["data"]["refreshToken"]["userErrors"] == []


async def test_logout_revokes_the_session(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await graphql(
        client, LOGOUT, {"token": org.owner.refresh_token}, token=org.owner.access_token
    )

    assert response.json()["data"]["logout"] == {"userErrors": []}
    after = await graphql(client, ME, token=org.owner.access_token)
    assert error_codes(after) == ["INVALID_TOKEN"]


async def test_me_answers_the_signed_in_user(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await graphql(client, ME, token=org.owner.access_token)

    me = response.json()["data"]["me"]
    assert me["id"] == org.owner.id
    assert me["orgId"] == org.id
    assert me["email"] == org.owner.email
    assert me["role"] == "OWNER"
    assert me["status"] == "ACTIVE"
    assert me["createdAt"].endswith("Z")


async def test_update_me_changes_the_name(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await graphql(
        client, UPDATE_ME, {"input": {"name": "Ada"}}, token=org.owner.access_token
    )

    updated = response.json()["data"]["updateMe"]
    assert updated == {"user": {"id": org.owner.id, "name": "Ada"}, "userErrors": []}


async def test_update_me_with_a_wrong_current_password_is_a_user_error(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    change = {"currentPassword": "not my password", "newPassword": "a new password!"}

    response = await graphql(
        client, UPDATE_ME, {"input": change}, token=org.owner.access_token
    )

    updated = response.json()["data"]["updateMe"]
    assert updated["user"] is None
    assert [(e["field"], e["code"]) for e in updated["userErrors"]] == [
        (["currentPassword"], "INVALID")
    ]


async def test_anonymous_callers_may_not_read_pipelines(client: AsyncClient) -> None:
    response = await graphql(client, "{ pipelines { totalCount } }")

    assert response.status_code == 401
    assert error_codes(response) == ["UNAUTHORIZED"]
    assert "data" not in response.json()


async def test_anonymous_callers_may_not_introspect(client: AsyncClient) -> None:
    response = await graphql(client, "{ __schema { types { name } } }")

    assert error_codes(response) == ["UNAUTHORIZED"]


async def test_anonymous_callers_may_ask_for_the_typename(client: AsyncClient) -> None:
    response = await graphql(client, "{ __typename }")

    assert response.json()["data"] == {"__typename": "Query"}


async def test_a_broken_token_is_refused_with_its_code(client: AsyncClient) -> None:
    response = await graphql(client, ME, token="not-a-token")

    assert response.status_code == 401
    assert error_codes(response) == ["INVALID_TOKEN"]


async def test_a_broken_token_answers_200_under_application_json(
    client: AsyncClient,
) -> None:
    response = await client.post(
        GRAPHQL,
        json={"query": ME},
        headers={"Authorization": "Bearer not-a-token", "Accept": "application/json"},
    )

    assert response.status_code == 200
    assert error_codes(response) == ["INVALID_TOKEN"]


async def test_authenticated_callers_may_introspect(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await graphql(
        client, '{ __type(name: "Pipeline") { name } }', token=org.owner.access_token
    )

    assert response.json()["data"] == {"__type": {"name": "Pipeline"}}


@pytest.fixture
async def login_limited_app(
    database_url: str, redis_url: str | None
) -> AsyncIterator[FastAPI]:
    settings = make_settings(database_url, redis_url, login_attempts_per_minute=1)
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


async def test_login_over_the_per_email_limit_answers_429(
    login_limited_app: FastAPI, factory: Factory
) -> None:
    org = await factory.org(sign_in=False)
    credentials = {"input": {"email": org.owner.email, "password": "wrong one"}}
    transport = ASGITransport(app=login_limited_app)
    async with AsyncClient(transport=transport, base_url="http://testserver") as http:
        await graphql(http, LOGIN, credentials)

        response = await graphql(http, LOGIN, credentials)

    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert error_codes(response) == ["RATE_LIMITED"]
    assert response.json()["data"] == {"login": None}
