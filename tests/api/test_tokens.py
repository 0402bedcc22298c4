"""Bearer tokens: what verification refuses, and how a token is cut off when
its user or session changes."""

from __future__ import annotations

import time

import pytest
from httpx import AsyncClient

from signal_admin.security.tokens import REQUIRED_CLAIMS
from tests.factories import Factory, error_code
from tests.helpers import (
    bearer,
    claims_of,
    forged_token,
    revoke_session,
    set_user,
    unsigned_token,
)

ME = "/v1/admin/me"
REFRESH = "/v1/admin/auth/refresh"
OTHER_KEY = "another-secret-that-is-at-least-32-bytes-long"


async def test_own_token_is_accepted(client: AsyncClient, factory: Factory) -> None:
    org = await factory.org()

    response = await client.get(ME, headers=org.owner.headers)

    assert response.status_code == 200


async def test_token_with_alg_none_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.get(
        ME, headers=bearer(unsigned_token(org.owner.access_token))
    )

    assert response.status_code == 401
    assert error_code(response) == "INVALID_TOKEN"


async def test_token_signed_with_another_key_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    token = forged_token(org.owner.access_token, key=OTHER_KEY)

    response = await client.get(ME, headers=bearer(token))

    assert response.status_code == 401
    assert error_code(response) == "INVALID_TOKEN"


async def test_token_signed_with_another_hmac_algorithm_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    token = forged_token(org.owner.access_token, algorithm="HS512")

    response = await client.get(ME, headers=bearer(token))

    assert response.status_code == 401
    assert error_code(response) == "INVALID_TOKEN"


async def test_expired_access_token_answers_expired_token(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    now = int(time.time())
    token = forged_token(org.owner.access_token, iat=now - 1000, exp=now - 60)

    response = await client.get(ME, headers=bearer(token))

    assert response.status_code == 401
    assert error_code(response) == "EXPIRED_TOKEN"


@pytest.mark.parametrize("claim", REQUIRED_CLAIMS)
async def test_token_missing_a_required_claim_is_refused(
    client: AsyncClient, factory: Factory, claim: str
) -> None:
    org = await factory.org()
    token = forged_token(org.owner.access_token, without=[claim])

    response = await client.get(ME, headers=bearer(token))

    assert response.status_code == 401
    assert error_code(response) == "INVALID_TOKEN"


@pytest.mark.parametrize(("claim", "value"), [("iss", "someone-else"), ("aud", "x")])
async def test_token_for_another_issuer_or_audience_is_refused(
    client: AsyncClient, factory: Factory, claim: str, value: str
) -> None:
    org = await factory.org()
    token = forged_token(org.owner.access_token, **{claim: value})

    response = await client.get(ME, headers=bearer(token))

    assert response.status_code == 401
    assert error_code(response) == "INVALID_TOKEN"


async def test_token_naming_an_unknown_user_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    token = forged_token(org.owner.access_token, sub="usr_01HZZZZZZZZZZZZZZZZZZZZZZZ")

    response = await client.get(ME, headers=bearer(token))

    assert response.status_code == 401
    assert error_code(response) == "INVALID_TOKEN"


async def test_token_naming_another_users_session_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")
    token = forged_token(
        org.owner.access_token, sid=claims_of(editor.access_token)["sid"]
    )

    response = await client.get(ME, headers=bearer(token))

    assert response.status_code == 401
    assert error_code(response) == "INVALID_TOKEN"


async def test_garbage_token_is_refused(client: AsyncClient) -> None:
    response = await client.get(ME, headers=bearer("not.a.jwt"))

    assert response.status_code == 401
    assert error_code(response) == "INVALID_TOKEN"


async def test_authorization_header_of_another_scheme_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.get(
        ME, headers={"Authorization": f"Basic {org.owner.access_token}"}
    )

    assert response.status_code == 401
    assert error_code(response) == "INVALID_TOKEN"


async def test_refresh_token_used_as_access_token_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.get(ME, headers=bearer(org.owner.refresh_token))

    assert response.status_code == 401
    assert error_code(response) == "INVALID_TOKEN"


async def test_access_token_used_as_refresh_token_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        REFRESH, json={"refresh_token": org.owner.access_token}
    )

    assert response.status_code == 401
    assert error_code(response) == "INVALID_REFRESH_TOKEN"


async def test_expired_refresh_token_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    now = int(time.time())
    token = forged_token(org.owner.refresh_token, iat=now - 1000, exp=now - 60)

    response = await client.post(REFRESH, json={"refresh_token": token})

    assert response.status_code == 401
    assert error_code(response) == "INVALID_REFRESH_TOKEN"


async def test_refresh_token_with_an_unknown_jti_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    token = forged_token(org.owner.refresh_token, jti="never-issued")

    response = await client.post(REFRESH, json={"refresh_token": token})

    assert response.status_code == 401
    assert error_code(response) == "INVALID_REFRESH_TOKEN"


async def test_token_of_a_disabled_user_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")
    await set_user(factory.app, editor.id, status="disabled")

    response = await client.get(ME, headers=editor.headers)

    assert response.status_code == 401
    assert error_code(response) == "INVALID_TOKEN"


async def test_refresh_token_of_a_disabled_user_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")
    await set_user(factory.app, editor.id, status="disabled")

    response = await client.post(REFRESH, json={"refresh_token": editor.refresh_token})

    assert response.status_code == 401
    assert error_code(response) == "INVALID_REFRESH_TOKEN"


async def test_token_of_a_revoked_session_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    await revoke_session(factory.app, claims_of(org.owner.access_token)["sid"])

    response = await client.get(ME, headers=org.owner.headers)

    assert response.status_code == 401
    assert error_code(response) == "INVALID_TOKEN"


async def test_refresh_token_of_a_revoked_session_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    await revoke_session(factory.app, claims_of(org.owner.refresh_token)["sid"])

    response = await client.post(
        REFRESH, json={"refresh_token": org.owner.refresh_token}
    )

    assert response.status_code == 401
    assert error_code(response) == "INVALID_REFRESH_TOKEN"


async def test_role_is_read_from_the_database_on_every_request(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")
    await set_user(factory.app, editor.id, role="viewer")

    response = await client.post(
        "/v1/admin/pipelines",
        json={"name": "Shop", "type": "web"},
        headers=editor.headers,
    )

    assert claims_of(editor.access_token)["role"] == "editor"
    assert response.status_code == 403
    assert error_code(response) == "FORBIDDEN"


async def test_access_token_carries_the_documented_claims(factory: Factory) -> None:
    org = await factory.org()

    claims = claims_of(org.owner.access_token)

    assert claims["type"] == "access"
    assert claims["sub"] == org.owner.id
    assert claims["org_id"] == org.id
    assert claims["role"] == "owner"
    assert claims["iss"] == claims["aud"] == "signal-admin"
    assert claims["exp"] - claims["iat"] == 900
    assert claims["sid"].startswith("ses_")


async def test_refresh_token_carries_the_documented_claims(factory: Factory) -> None:
    org = await factory.org()

    claims = claims_of(org.owner.refresh_token)

    assert claims["type"] == "refresh"
    assert "role" not in claims
    assert claims["exp"] - claims["iat"] == 7 * 86_400
    assert claims["sid"] == claims_of(org.owner.access_token)["sid"]
