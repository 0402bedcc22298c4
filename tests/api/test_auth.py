"""Signing in and out: login, lockout, refresh rotation and reuse, logout and
the caller's own profile."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from httpx import AsyncClient, Response

from signal_admin.config import Settings
from tests.factories import PASSWORD, Factory, Member, error_code, unique_email
from tests.helpers import (
    audit_entries,
    bearer,
    claims_of,
    client_of,
    dedicated_app,
    forged_token,
    set_user,
)

LOGIN = "/v1/admin/auth/login"
REFRESH = "/v1/admin/auth/refresh"
LOGOUT = "/v1/admin/auth/logout"
ME = "/v1/admin/me"
WRONG_PASSWORD = "not the right password"
NEW_PASSWORD = "a brand new passphrase"


async def _login(
    client: AsyncClient, email: str, password: str = PASSWORD
) -> dict[str, Any]:
    response = await client.post(LOGIN, json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    pair: dict[str, Any] = response.json()
    return pair


async def _fail_logins(client: AsyncClient, email: str, times: int) -> None:
    for _ in range(times):
        response = await client.post(
            LOGIN, json={"email": email, "password": WRONG_PASSWORD}
        )
        assert error_code(response) == "INVALID_CREDENTIALS"


# Login


async def test_login_answers_a_bearer_token_pair(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org(sign_in=False)

    response = await client.post(
        LOGIN, json={"email": org.owner.email, "password": PASSWORD}
    )

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900


async def test_login_opens_a_session_the_access_token_uses(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org(sign_in=False)
    pair = await _login(client, org.owner.email)

    response = await client.get(ME, headers=bearer(pair["access_token"]))

    assert response.status_code == 200
    assert response.json()["id"] == org.owner.id


async def test_login_ignores_case_and_spaces_around_the_email(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org(sign_in=False)

    response = await client.post(
        LOGIN, json={"email": f"  {org.owner.email.upper()} ", "password": PASSWORD}
    )

    assert response.status_code == 200


async def test_wrong_password_answers_invalid_credentials(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org(sign_in=False)

    response = await client.post(
        LOGIN, json={"email": org.owner.email, "password": WRONG_PASSWORD}
    )

    assert response.status_code == 401
    assert error_code(response) == "INVALID_CREDENTIALS"


async def test_unknown_email_answers_invalid_credentials(client: AsyncClient) -> None:
    response = await client.post(
        LOGIN, json={"email": unique_email("nobody"), "password": PASSWORD}
    )

    assert response.status_code == 401
    assert error_code(response) == "INVALID_CREDENTIALS"


async def test_email_no_account_can_have_answers_invalid_credentials(
    client: AsyncClient,
) -> None:
    response = await client.post(
        LOGIN, json={"email": "nul\x00@example.com", "password": PASSWORD}
    )

    assert response.status_code == 401
    assert error_code(response) == "INVALID_CREDENTIALS"


async def test_unknown_email_and_wrong_password_answer_the_same_message(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org(sign_in=False)

    unknown = await client.post(
        LOGIN, json={"email": unique_email("nobody"), "password": WRONG_PASSWORD}
    )
    wrong = await client.post(
        LOGIN, json={"email": org.owner.email, "password": WRONG_PASSWORD}
    )

    assert unknown.json() == wrong.json()


async def test_disabled_user_cannot_log_in(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor", sign_in=False)
    await set_user(factory.app, editor.id, status="disabled")

    response = await client.post(
        LOGIN, json={"email": editor.email, "password": PASSWORD}
    )

    assert response.status_code == 401
    assert error_code(response) == "INVALID_CREDENTIALS"


async def test_five_failures_lock_the_account_even_for_the_right_password(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org(sign_in=False)
    await _fail_logins(client, org.owner.email, 5)

    response = await client.post(
        LOGIN, json={"email": org.owner.email, "password": PASSWORD}
    )

    assert response.status_code == 401
    assert error_code(response) == "ACCOUNT_LOCKED"


async def test_four_failures_do_not_lock_the_account(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org(sign_in=False)
    await _fail_logins(client, org.owner.email, 4)

    response = await client.post(
        LOGIN, json={"email": org.owner.email, "password": PASSWORD}
    )

    assert response.status_code == 200


async def test_failures_for_an_unknown_email_lock_it_too(client: AsyncClient) -> None:
    email = unique_email("nobody")
    await _fail_logins(client, email, 5)

    response = await client.post(LOGIN, json={"email": email, "password": PASSWORD})

    assert error_code(response) == "ACCOUNT_LOCKED"


async def test_success_resets_the_failure_count(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org(sign_in=False)
    await _fail_logins(client, org.owner.email, 4)
    await _login(client, org.owner.email)
    await _fail_logins(client, org.owner.email, 4)

    response = await client.post(
        LOGIN, json={"email": org.owner.email, "password": PASSWORD}
    )

    assert response.status_code == 200


async def test_lock_lifts_after_the_lockout_interval(
    migrated_database: str, redis_url: str | None, factory: Factory
) -> None:
    org = await factory.org(sign_in=False)
    async with (
        dedicated_app(migrated_database, redis_url, lockout_seconds=1) as app,
        client_of(app) as http,
    ):
        await _fail_logins(http, org.owner.email, 5)
        locked = await http.post(
            LOGIN, json={"email": org.owner.email, "password": PASSWORD}
        )
        await asyncio.sleep(1.1)

        response = await http.post(
            LOGIN, json={"email": org.owner.email, "password": PASSWORD}
        )

    assert error_code(locked) == "ACCOUNT_LOCKED"
    assert response.status_code == 200


async def test_eleventh_login_attempt_in_a_minute_is_rate_limited(
    migrated_database: str, redis_url: str | None, factory: Factory
) -> None:
    org = await factory.org(sign_in=False)
    default_limit = Settings.model_fields["login_attempts_per_minute"].default
    async with (
        dedicated_app(
            migrated_database, redis_url, login_attempts_per_minute=default_limit
        ) as app,
        client_of(app) as http,
    ):
        for _ in range(default_limit):
            await _login(http, org.owner.email)

        response = await http.post(
            LOGIN, json={"email": org.owner.email, "password": PASSWORD}
        )

    assert default_limit == 10
    assert response.status_code == 429
    assert error_code(response) == "RATE_LIMITED"
    assert int(response.headers["Retry-After"]) >= 1


async def test_login_rate_limit_counts_attempts_for_unknown_emails(
    migrated_database: str, redis_url: str | None
) -> None:
    email = unique_email("nobody")
    async with (
        dedicated_app(migrated_database, redis_url, login_attempts_per_minute=3) as app,
        client_of(app) as http,
    ):
        for _ in range(3):
            await http.post(LOGIN, json={"email": email, "password": WRONG_PASSWORD})

        response = await http.post(
            LOGIN, json={"email": email, "password": WRONG_PASSWORD}
        )

    assert response.status_code == 429
    assert error_code(response) == "RATE_LIMITED"


async def test_login_is_audited_in_the_users_org(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org(sign_in=False)

    await _login(client, org.owner.email)

    entries = await audit_entries(factory.app, org.id, "auth.login")
    assert len(entries) == 1
    assert entries[0].user_id == org.owner.id
    assert entries[0].user_email == org.owner.email
    assert entries[0].resource_id == org.owner.id


async def test_failed_login_is_audited_in_the_users_org(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org(sign_in=False)

    await _fail_logins(client, org.owner.email, 1)

    entries = await audit_entries(factory.app, org.id, "auth.login_failed")
    assert len(entries) == 1
    assert entries[0].user_id == org.owner.id
    assert WRONG_PASSWORD not in str(entries[0].metadata_)


async def test_login_records_when_the_user_last_signed_in(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org(sign_in=False)
    pair = await _login(client, org.owner.email)

    response = await client.get(ME, headers=bearer(pair["access_token"]))

    assert response.json()["last_login_at"] is not None


# Refresh


async def test_refresh_answers_a_new_pair_in_the_same_session(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        REFRESH, json={"refresh_token": org.owner.refresh_token}
    )

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["refresh_token"] != org.owner.refresh_token
    assert (
        claims_of(body["access_token"])["sid"]
        == claims_of(org.owner.access_token)["sid"]
    )


async def test_refreshed_access_token_works(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pair = (
        await client.post(REFRESH, json={"refresh_token": org.owner.refresh_token})
    ).json()

    response = await client.get(ME, headers=bearer(pair["access_token"]))

    assert response.status_code == 200


async def test_spent_refresh_token_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    await client.post(REFRESH, json={"refresh_token": org.owner.refresh_token})

    response = await client.post(
        REFRESH, json={"refresh_token": org.owner.refresh_token}
    )

    assert response.status_code == 401
    assert error_code(response) == "INVALID_REFRESH_TOKEN"


async def test_refresh_ignores_an_expired_access_token_in_the_header(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    now = int(time.time())
    expired = forged_token(org.owner.access_token, iat=now - 1000, exp=now - 60)

    response = await client.post(
        REFRESH,
        json={"refresh_token": org.owner.refresh_token},
        headers=bearer(expired),
    )

    assert response.status_code == 200


async def test_reuse_within_the_grace_window_revokes_nothing(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pair = (
        await client.post(REFRESH, json={"refresh_token": org.owner.refresh_token})
    ).json()

    reuse = await client.post(REFRESH, json={"refresh_token": org.owner.refresh_token})

    assert error_code(reuse) == "INVALID_REFRESH_TOKEN"
    assert (
        await client.get(ME, headers=bearer(pair["access_token"]))
    ).status_code == 200
    assert (
        await client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
    ).status_code == 200
    assert await audit_entries(factory.app, org.id, "auth.token_reuse_detected") == []


async def _reuse_after_grace(
    migrated_database: str, redis_url: str | None, member: Member
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Refresh once, then present the spent token again after the (zero)
    grace window; answer the rotated pair and the reuse's body."""
    async with (
        dedicated_app(
            migrated_database, redis_url, refresh_reuse_grace_seconds=0
        ) as app,
        client_of(app) as http,
    ):
        rotated = await http.post(REFRESH, json={"refresh_token": member.refresh_token})
        await asyncio.sleep(0.01)
        reuse = await http.post(REFRESH, json={"refresh_token": member.refresh_token})
    assert rotated.status_code == 200
    assert reuse.status_code == 401
    return rotated.json(), reuse.json()


async def test_reused_refresh_token_is_refused(
    migrated_database: str, redis_url: str | None, factory: Factory
) -> None:
    org = await factory.org()

    _, reuse = await _reuse_after_grace(migrated_database, redis_url, org.owner)

    assert reuse["error"]["code"] == "INVALID_REFRESH_TOKEN"


async def test_reused_refresh_token_revokes_every_session(
    migrated_database: str, redis_url: str | None, factory: Factory, client: AsyncClient
) -> None:
    org = await factory.org()
    other_session = await _login(client, org.owner.email)

    rotated, _ = await _reuse_after_grace(migrated_database, redis_url, org.owner)

    for access_token in (rotated["access_token"], other_session["access_token"]):
        response = await client.get(ME, headers=bearer(access_token))
        assert error_code(response) == "INVALID_TOKEN"
    for refresh_token in (rotated["refresh_token"], other_session["refresh_token"]):
        response = await client.post(REFRESH, json={"refresh_token": refresh_token})
        assert error_code(response) == "INVALID_REFRESH_TOKEN"


async def test_reused_refresh_token_is_audited(
    migrated_database: str, redis_url: str | None, factory: Factory
) -> None:
    org = await factory.org()

    await _reuse_after_grace(migrated_database, redis_url, org.owner)

    entries = await audit_entries(factory.app, org.id, "auth.token_reuse_detected")
    assert len(entries) == 1
    assert entries[0].user_id == org.owner.id
    assert entries[0].resource_id == org.owner.id


async def test_reuse_leaves_other_users_signed_in(
    migrated_database: str, redis_url: str | None, factory: Factory, client: AsyncClient
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")

    await _reuse_after_grace(migrated_database, redis_url, org.owner)

    assert (await client.get(ME, headers=editor.headers)).status_code == 200


async def _race_refreshes(client: AsyncClient, refresh_token: str) -> list[Response]:
    return list(
        await asyncio.gather(
            *(
                client.post(REFRESH, json={"refresh_token": refresh_token})
                for _ in range(20)
            )
        )
    )


async def test_parallel_refreshes_with_one_token_have_exactly_one_winner(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    responses = await _race_refreshes(client, org.owner.refresh_token)

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [401] * 19
    losers = [r for r in responses if r.status_code == 401]
    assert {error_code(r) for r in losers} == {"INVALID_REFRESH_TOKEN"}


async def test_parallel_refreshes_with_one_token_revoke_nothing(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    responses = await _race_refreshes(client, org.owner.refresh_token)

    winner = next(r for r in responses if r.status_code == 200).json()
    me = await client.get(ME, headers=bearer(winner["access_token"]))
    again = await client.post(REFRESH, json={"refresh_token": winner["refresh_token"]})
    assert me.status_code == 200
    assert again.status_code == 200
    assert await audit_entries(factory.app, org.id, "auth.token_reuse_detected") == []


# Logout


async def test_logout_answers_no_content(client: AsyncClient, factory: Factory) -> None:
    org = await factory.org()

    response = await client.post(
        LOGOUT,
        json={"refresh_token": org.owner.refresh_token},
        headers=org.owner.headers,
    )

    assert response.status_code == 204
    assert response.content == b""


async def test_logout_revokes_the_sessions_access_token(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    await client.post(
        LOGOUT,
        json={"refresh_token": org.owner.refresh_token},
        headers=org.owner.headers,
    )

    response = await client.get(ME, headers=org.owner.headers)

    assert response.status_code == 401
    assert error_code(response) == "INVALID_TOKEN"


async def test_logout_revokes_the_sessions_refresh_token(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    await client.post(
        LOGOUT,
        json={"refresh_token": org.owner.refresh_token},
        headers=org.owner.headers,
    )

    response = await client.post(
        REFRESH, json={"refresh_token": org.owner.refresh_token}
    )

    assert error_code(response) == "INVALID_REFRESH_TOKEN"


async def test_logout_leaves_the_callers_other_sessions_open(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    other_session = await _login(client, org.owner.email)

    await client.post(
        LOGOUT,
        json={"refresh_token": org.owner.refresh_token},
        headers=org.owner.headers,
    )

    response = await client.get(ME, headers=bearer(other_session["access_token"]))
    assert response.status_code == 200


async def test_logout_with_someone_elses_refresh_token_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")

    response = await client.post(
        LOGOUT,
        json={"refresh_token": editor.refresh_token},
        headers=org.owner.headers,
    )

    assert response.status_code == 401
    assert error_code(response) == "INVALID_REFRESH_TOKEN"
    assert (await client.get(ME, headers=editor.headers)).status_code == 200


async def test_logout_needs_a_token(client: AsyncClient, factory: Factory) -> None:
    org = await factory.org()

    response = await client.post(
        LOGOUT, json={"refresh_token": org.owner.refresh_token}
    )

    assert response.status_code == 401
    assert error_code(response) == "UNAUTHORIZED"


async def test_logout_is_audited(client: AsyncClient, factory: Factory) -> None:
    org = await factory.org()

    await client.post(
        LOGOUT,
        json={"refresh_token": org.owner.refresh_token},
        headers=org.owner.headers,
    )

    entries = await audit_entries(factory.app, org.id, "auth.logout")
    assert [entry.user_id for entry in entries] == [org.owner.id]


# The caller's profile


async def test_get_me_answers_the_current_user(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")

    response = await client.get(ME, headers=editor.headers)

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == editor.id
    assert body["org_id"] == org.id
    assert body["email"] == editor.email
    assert body["role"] == "editor"
    assert body["status"] == "active"


async def test_patch_me_changes_the_name(client: AsyncClient, factory: Factory) -> None:
    org = await factory.org()

    response = await client.patch(
        ME, json={"name": "Ada Lovelace"}, headers=org.owner.headers
    )

    assert response.status_code == 200
    assert response.json()["name"] == "Ada Lovelace"
    assert (await client.get(ME, headers=org.owner.headers)).json()["name"] == (
        "Ada Lovelace"
    )


async def test_patch_me_with_an_empty_name_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.patch(ME, json={"name": "  "}, headers=org.owner.headers)

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"


async def test_patch_me_with_a_name_no_database_can_hold_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.patch(
        ME, json={"name": "Ada\x00"}, headers=org.owner.headers
    )

    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "name"


async def test_patch_me_naming_nothing_answers_missing_field(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.patch(ME, json={}, headers=org.owner.headers)

    assert response.status_code == 400
    assert error_code(response) == "MISSING_FIELD"


async def test_password_change_with_wrong_current_password_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.patch(
        ME,
        json={"current_password": WRONG_PASSWORD, "new_password": NEW_PASSWORD},
        headers=org.owner.headers,
    )

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    assert response.json()["error"]["details"][0]["field"] == "current_password"


async def test_password_shorter_than_twelve_characters_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.patch(
        ME,
        json={"current_password": PASSWORD, "new_password": "elevenchars"},
        headers=org.owner.headers,
    )

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    assert response.json()["error"]["details"][0]["field"] == "new_password"


async def test_password_of_twelve_characters_is_accepted(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.patch(
        ME,
        json={"current_password": PASSWORD, "new_password": "twelve chars"},
        headers=org.owner.headers,
    )

    assert response.status_code == 200


async def test_new_password_without_the_current_one_answers_missing_field(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.patch(
        ME, json={"new_password": NEW_PASSWORD}, headers=org.owner.headers
    )

    assert response.status_code == 400
    assert error_code(response) == "MISSING_FIELD"
    assert response.json()["error"]["details"][0]["field"] == "current_password"


async def test_changed_password_signs_in(client: AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    await client.patch(
        ME,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=org.owner.headers,
    )

    old = await client.post(
        LOGIN, json={"email": org.owner.email, "password": PASSWORD}
    )
    new = await client.post(
        LOGIN, json={"email": org.owner.email, "password": NEW_PASSWORD}
    )

    assert error_code(old) == "INVALID_CREDENTIALS"
    assert new.status_code == 200


async def test_password_change_revokes_the_other_sessions(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    other_session = await _login(client, org.owner.email)

    await client.patch(
        ME,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=org.owner.headers,
    )

    response = await client.get(ME, headers=bearer(other_session["access_token"]))
    assert error_code(response) == "INVALID_TOKEN"


async def test_password_change_keeps_the_callers_session(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    await _login(client, org.owner.email)

    await client.patch(
        ME,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=org.owner.headers,
    )

    assert (await client.get(ME, headers=org.owner.headers)).status_code == 200
    refreshed = await client.post(
        REFRESH, json={"refresh_token": org.owner.refresh_token}
    )
    assert refreshed.status_code == 200


async def test_password_change_is_audited_without_the_password(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    await client.patch(
        ME,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=org.owner.headers,
    )

    entries = await audit_entries(factory.app, org.id, "user.password_changed")
    assert len(entries) == 1
    assert NEW_PASSWORD not in str(entries[0].changes)
    assert NEW_PASSWORD not in str(entries[0].metadata_)
