"""Users over REST: create and invite, read, list, change, delete and reinvite,
accepting an invitation, with every guard rail of roles, sessions cut off, org
isolation and the audit trail."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from signal_admin.persistence.models import AuthSession, User
from signal_admin.persistence.types import utc_now
from signal_admin.security.tokens import digest
from tests.factories import PASSWORD, Factory, Member, error_code, unique_email
from tests.helpers import TIMESTAMP, audit_entries, bearer, set_user
from tests.statements import counted_selects

USERS = "/v1/admin/users"
ACCEPT_INVITE = "/v1/admin/auth/accept-invite"
LOGIN = "/v1/admin/auth/login"
REFRESH = "/v1/admin/auth/refresh"
ME = "/v1/admin/me"
INVITE_TOKEN = re.compile(r"^inv_[0-9A-Za-z]{40}$")
NEW_PASSWORD = "a password chosen on accepting"


def _url(user: dict[str, Any] | Member, suffix: str = "") -> str:
    user_id = user.id if isinstance(user, Member) else user["id"]
    return f"{USERS}/{user_id}{suffix}"


async def _create(client: AsyncClient, member: Member, **fields: Any) -> dict[str, Any]:
    body = {"email": unique_email("new"), "name": "New Person", "role": "editor"}
    response = await client.post(USERS, json={**body, **fields}, headers=member.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _accept(client: AsyncClient, token: str, **fields: Any) -> Response:
    return await client.post(
        ACCEPT_INVITE,
        json={"invite_token": token, "password": NEW_PASSWORD, **fields},
    )


async def _stored(app: FastAPI, user_id: str) -> User:
    async with app.state.services.db.read() as session:
        return await session.get_one(User, user_id)


async def _open_sessions(app: FastAPI, user_id: str) -> int:
    async with app.state.services.db.read() as session:
        rows = await session.scalars(
            select(AuthSession.id).where(
                AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
            )
        )
        return len(list(rows))


async def _ids(client: AsyncClient, member: Member, **params: Any) -> list[str]:
    response = await client.get(USERS, params=params, headers=member.headers)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]]


async def _roles(client: AsyncClient, member: Member) -> dict[str, str]:
    response = await client.get(USERS, headers=member.headers)
    return {item["id"]: item["role"] for item in response.json()["data"]}


# Create


async def test_create_with_a_password_answers_an_active_user(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        USERS,
        json={
            "email": "  New.Person@Example.COM ",
            "name": "New Person",
            "role": "editor",
            "password": PASSWORD,
        },
        headers=org.owner.headers,
    )

    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("usr_")
    assert body["org_id"] == org.id
    assert body["email"] == "new.person@example.com"
    assert body["status"] == "active"
    assert body["role"] == "editor"
    assert body["invite_token"] is None
    assert body["last_login_at"] is None
    assert body["version"] == 1
    assert TIMESTAMP.match(body["created_at"])
    assert response.headers["ETag"] == '"v1"'


async def test_a_user_created_with_a_password_signs_in(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _create(client, org.owner, password=PASSWORD)

    response = await client.post(
        LOGIN, json={"email": created["email"], "password": PASSWORD}
    )

    assert response.status_code == 200


async def test_create_without_a_password_invites_with_a_one_time_token(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    created = await _create(client, org.owner)

    assert created["status"] == "invited"
    assert INVITE_TOKEN.match(created["invite_token"])
    read = await client.get(_url(created), headers=org.owner.headers)
    listed = await client.get(USERS, headers=org.owner.headers)
    assert "invite_token" not in read.json()
    assert created["invite_token"] not in read.text + listed.text


async def test_invite_token_is_stored_only_as_its_hash(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    created = await _create(client, org.owner)

    stored = await _stored(app, created["id"])
    assert stored.invite_token_hash == digest(created["invite_token"])
    assert stored.password_hash is None
    entries = await audit_entries(app, org.id)
    assert created["invite_token"] not in json.dumps([e.changes for e in entries])


async def test_invite_token_lasts_the_invite_ttl(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    before = utc_now()

    created = await _create(client, org.owner)

    stored = await _stored(app, created["id"])
    ttl = timedelta(seconds=app.state.services.settings.invite_token_ttl)
    assert ttl == timedelta(days=7)
    assert stored.invite_expires_at is not None
    assert before + ttl <= stored.invite_expires_at <= utc_now() + ttl


async def test_create_never_makes_an_owner(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    email = unique_email("owner")

    response = await client.post(
        USERS,
        json={"email": email, "name": "Second", "role": "owner"},
        headers=org.owner.headers,
    )

    assert response.status_code == 403
    assert error_code(response) == "FORBIDDEN"
    assert "owner" in response.json()["error"]["message"]
    assert len(await _ids(client, org.owner)) == 1


async def test_email_taken_in_any_case_answers_already_exists(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _create(client, org.owner)

    response = await client.post(
        USERS,
        json={"email": created["email"].upper(), "name": "Twin", "role": "viewer"},
        headers=org.owner.headers,
    )

    assert response.status_code == 409
    assert error_code(response) == "ALREADY_EXISTS"


async def test_email_taken_in_another_org_answers_already_exists(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    other = await factory.org()

    response = await client.post(
        USERS,
        json={"email": other.owner.email, "name": "Twin", "role": "viewer"},
        headers=org.owner.headers,
    )

    assert response.status_code == 409
    assert error_code(response) == "ALREADY_EXISTS"


async def test_concurrent_creates_with_one_email_have_exactly_one_winner(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    body = {"email": unique_email("race"), "name": "Racer", "role": "viewer"}

    responses = await asyncio.gather(
        *(client.post(USERS, json=body, headers=org.owner.headers) for _ in range(5))
    )

    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409]


async def test_create_lists_every_invalid_field_at_once(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        USERS,
        json={
            "email": "not-an-email",
            "name": "x" * 201,
            "role": "boss",
            "password": "short",
        },
        headers=org.owner.headers,
    )

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    fields = {detail["field"] for detail in response.json()["error"]["details"]}
    assert fields == {"email", "name", "role", "password"}


async def test_create_without_required_fields_answers_missing_field(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(USERS, json={}, headers=org.owner.headers)

    assert response.status_code == 400
    assert error_code(response) == "MISSING_FIELD"
    fields = {detail["field"] for detail in response.json()["error"]["details"]}
    assert fields == {"email", "name", "role"}


@pytest.mark.parametrize(
    ("fields_json", "field"),
    [
        (b'{"email": "a\\u0000b@example.com"}', "email"),
        (b'{"name": "N\\ud800"}', "name"),
        (b'{"password": "twelve chars \\udc00"}', "password"),
    ],
)
async def test_create_refuses_text_no_database_can_hold(
    client: AsyncClient, factory: Factory, fields_json: bytes, field: str
) -> None:
    org = await factory.org()
    body = {"email": unique_email("text"), "name": "N", "role": "viewer"}

    response = await client.post(
        USERS,
        content=json.dumps({**body, **json.loads(fields_json)}).encode(),
        headers={**org.owner.headers, "Content-Type": "application/json"},
    )

    assert response.status_code == 422
    assert [d["field"] for d in response.json()["error"]["details"]] == [field]


async def test_create_repeated_with_an_idempotency_key_answers_the_first_answer(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    body = {"email": unique_email("idem"), "name": "Once", "role": "viewer"}
    headers = {**org.owner.headers, "Idempotency-Key": "invite-once"}

    first = await client.post(USERS, json=body, headers=headers)
    second = await client.post(USERS, json=body, headers=headers)

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(await _ids(client, org.owner)) == 2


async def test_create_is_audited_as_created_without_the_password(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    created = await _create(client, org.owner, password=PASSWORD)

    entries = await audit_entries(app, org.id, "user.created")
    [entry] = [e for e in entries if e.resource_id == created["id"]]
    assert entry.user_id == org.owner.id
    assert entry.changes == {
        "email": {"old": None, "new": created["email"]},
        "name": {"old": None, "new": "New Person"},
        "role": {"old": None, "new": "editor"},
        "status": {"old": None, "new": "active"},
    }
    assert PASSWORD not in json.dumps([entry.changes, entry.metadata_])


async def test_an_invitation_is_audited_as_invited(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    created = await _create(client, org.owner)

    [entry] = await audit_entries(app, org.id, "user.invited")
    assert entry.resource_id == created["id"]
    assert entry.changes["status"] == {"old": None, "new": "invited"}


# Permissions


@pytest.mark.parametrize("role", ["editor", "viewer"])
@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("POST", "", {"email": "x@example.com", "name": "X", "role": "viewer"}),
        ("GET", "/{id}", None),
        ("PATCH", "/{id}", {"name": "Renamed"}),
        ("DELETE", "/{id}", None),
        ("POST", "/{id}/reinvite", None),
    ],
)
async def test_roles_that_may_not_manage_users_are_refused(
    client: AsyncClient,
    factory: Factory,
    role: str,
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
) -> None:
    org = await factory.org()
    member = await factory.member(org, role)
    invited = await factory.invite(org.owner)

    response = await client.request(
        method,
        USERS + suffix.format(id=invited["id"]),
        json=body,
        headers=member.headers,
    )

    assert response.status_code == 403
    assert error_code(response) == "FORBIDDEN"
    assert "read and manage users" in response.json()["error"]["message"]


async def test_an_admin_manages_users(client: AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    admin = await factory.member(org, "admin")

    created = await _create(client, admin, role="admin")
    patched = await client.patch(
        _url(created), json={"role": "viewer"}, headers=admin.headers
    )
    deleted = await client.delete(_url(created), headers=admin.headers)

    assert patched.json()["role"] == "viewer"
    assert deleted.status_code == 204


# Read and list


async def test_get_answers_the_user_with_its_etag(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _create(client, org.owner, password=PASSWORD)

    response = await client.get(_url(created), headers=org.owner.headers)

    assert response.status_code == 200
    assert response.headers["ETag"] == '"v1"'
    assert response.json() == {
        key: value for key, value in created.items() if key != "invite_token"
    }


@pytest.mark.parametrize("user_id", ["not-an-id", "usr_a%00b", "x" * 300])
async def test_an_id_this_service_cannot_have_issued_answers_not_found(
    client: AsyncClient, factory: Factory, user_id: str
) -> None:
    org = await factory.org()

    response = await client.get(f"{USERS}/{user_id}", headers=org.owner.headers)

    assert response.status_code == 404
    assert error_code(response) == "NOT_FOUND"


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("PATCH", "", {"name": "Taken over"}),
        ("DELETE", "", None),
        ("POST", "/reinvite", None),
    ],
)
async def test_another_orgs_user_answers_not_found(
    app: FastAPI,
    client: AsyncClient,
    factory: Factory,
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
) -> None:
    org = await factory.org()
    other = await factory.org()
    invited = await factory.invite(other.owner)

    response = await client.request(
        method, _url(invited, suffix), json=body, headers=org.owner.headers
    )

    assert response.status_code == 404
    assert error_code(response) == "NOT_FOUND"
    stored = await _stored(app, invited["id"])
    assert (stored.name, stored.deleted_at, stored.version) == (
        invited["name"],
        None,
        1,
    )


async def test_list_answers_the_orgs_users_oldest_first(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    first = await _create(client, org.owner)
    second = await _create(client, org.owner, password=PASSWORD)
    await factory.org()

    response = await client.get(USERS, headers=org.owner.headers)

    assert response.status_code == 200
    body = response.json()
    assert [item["id"] for item in body["data"]] == [
        org.owner.id,
        first["id"],
        second["id"],
    ]
    assert body["next_cursor"] is None
    assert body["has_more"] is False


async def test_list_filters_by_role_status_and_name(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    viewer = await _create(client, org.owner, role="viewer", name="Ada Lovelace")
    admin = await _create(client, org.owner, role="admin", password=PASSWORD)

    assert await _ids(client, org.owner, role="viewer") == [viewer["id"]]
    assert await _ids(client, org.owner, status="active") == [org.owner.id, admin["id"]]
    assert await _ids(client, org.owner, q="LOVE") == [viewer["id"]]
    assert await _ids(client, org.owner, role="admin", status="invited") == []


async def test_list_with_an_unknown_role_answers_validation_error(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.get(
        USERS, params={"role": "boss"}, headers=org.owner.headers
    )

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"


async def test_list_pages_with_a_cursor(client: AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    created = [(await _create(client, org.owner))["id"] for _ in range(3)]

    first = await client.get(USERS, params={"limit": 2}, headers=org.owner.headers)
    cursor = first.json()["next_cursor"]
    second = await client.get(
        USERS, params={"limit": 2, "cursor": cursor}, headers=org.owner.headers
    )

    assert first.json()["has_more"] is True
    ids = [item["id"] for page in (first, second) for item in page.json()["data"]]
    assert ids == [org.owner.id, *created]
    assert second.json()["next_cursor"] is None


async def test_list_page_costs_two_selects_whatever_its_size(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    for _ in range(6):
        await _create(client, org.owner)

    with counted_selects(app) as small:
        await client.get(USERS, params={"limit": 2}, headers=org.owner.headers)
    with counted_selects(app) as large:
        await client.get(USERS, params={"limit": 7}, headers=org.owner.headers)

    # One to authenticate the caller, one for the page.
    assert len(small) == len(large) == 2


# Change


async def test_patch_changes_name_role_and_status(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _create(client, org.owner, password=PASSWORD)

    response = await client.patch(
        _url(created),
        json={"name": "Renamed", "role": "admin", "status": "disabled"},
        headers={**org.owner.headers, "If-Match": '"v1"'},
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["role"], body["status"]) == (
        "Renamed",
        "admin",
        "disabled",
    )
    assert body["version"] == 2
    assert response.headers["ETag"] == '"v2"'


async def test_patch_with_a_stale_if_match_answers_precondition_failed(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _create(client, org.owner)
    await client.patch(_url(created), json={"name": "B"}, headers=org.owner.headers)

    response = await client.patch(
        _url(created),
        json={"name": "C"},
        headers={**org.owner.headers, "If-Match": '"v1"'},
    )

    assert response.status_code == 412
    assert error_code(response) == "PRECONDITION_FAILED"


async def test_patch_is_audited_with_the_changed_fields(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _create(client, org.owner, password=PASSWORD)

    await client.patch(
        _url(created),
        json={"name": "Renamed", "role": "editor"},
        headers=org.owner.headers,
    )

    [entry] = await audit_entries(app, org.id, "user.updated")
    assert entry.resource_id == created["id"]
    assert entry.changes == {"name": {"old": "New Person", "new": "Renamed"}}


async def test_patch_naming_a_field_with_null_answers_validation_error(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _create(client, org.owner)

    response = await client.patch(
        _url(created), json={"name": None, "role": "viewer"}, headers=org.owner.headers
    )

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"


async def test_a_status_cannot_be_set_back_to_invited(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _create(client, org.owner, password=PASSWORD)

    response = await client.patch(
        _url(created), json={"status": "invited"}, headers=org.owner.headers
    )

    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "status"


async def test_an_invited_user_becomes_active_only_by_accepting(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    invited = await factory.invite(org.owner)

    response = await client.patch(
        _url(invited), json={"status": "active"}, headers=org.owner.headers
    )

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"


# Guard rails


async def test_nobody_changes_their_own_role(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org, "admin")

    by_admin = await client.patch(
        _url(admin), json={"role": "viewer"}, headers=admin.headers
    )
    by_owner = await client.patch(
        _url(org.owner), json={"role": "admin"}, headers=org.owner.headers
    )

    for response in (by_admin, by_owner):
        assert response.status_code == 403
        assert error_code(response) == "FORBIDDEN"
        assert "own role" in response.json()["error"]["message"]
    assert (await _stored(app, admin.id)).role == "admin"
    assert (await _stored(app, org.owner.id)).role == "owner"


async def test_a_user_changes_their_own_name(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org, "admin")

    response = await client.patch(
        _url(admin),
        json={"name": "Me, renamed", "role": "admin"},
        headers=admin.headers,
    )

    assert response.status_code == 200
    assert response.json()["name"] == "Me, renamed"


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("PATCH", "", {"name": "Demoted"}),
        ("PATCH", "", {"role": "viewer"}),
        ("PATCH", "", {"status": "disabled"}),
        ("DELETE", "", None),
        ("POST", "/reinvite", None),
    ],
)
async def test_an_admin_cannot_modify_or_remove_the_owner(
    app: FastAPI,
    client: AsyncClient,
    factory: Factory,
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
) -> None:
    org = await factory.org()
    admin = await factory.member(org, "admin")
    before = await _stored(app, org.owner.id)

    response = await client.request(
        method, _url(org.owner, suffix), json=body, headers=admin.headers
    )

    assert response.status_code == 403
    assert error_code(response) == "FORBIDDEN"
    stored = await _stored(app, org.owner.id)
    assert (stored.name, stored.role, stored.status, stored.deleted_at) == (
        before.name,
        "owner",
        "active",
        None,
    )
    assert stored.version == before.version


async def test_an_admin_cannot_make_someone_owner(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org, "admin")
    editor = await factory.member(org, "editor")

    response = await client.patch(
        _url(editor), json={"role": "owner"}, headers=admin.headers
    )

    assert response.status_code == 403
    assert "Only the owner" in response.json()["error"]["message"]
    assert (await _roles(client, org.owner))[editor.id] == "editor"


async def test_making_someone_owner_makes_the_previous_owner_an_admin(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")

    response = await client.patch(
        _url(editor), json={"role": "owner"}, headers=org.owner.headers
    )

    assert response.status_code == 200
    assert response.json()["role"] == "owner"
    roles = await _roles(client, editor)
    assert roles == {org.owner.id: "admin", editor.id: "owner"}


async def test_ownership_transfer_is_audited_for_both_users(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")

    await client.patch(_url(editor), json={"role": "owner"}, headers=org.owner.headers)

    entries = await audit_entries(app, org.id, "user.updated")
    changes = {entry.resource_id: entry.changes for entry in entries}
    assert changes == {
        org.owner.id: {"role": {"old": "owner", "new": "admin"}},
        editor.id: {"role": {"old": "editor", "new": "owner"}},
    }
    assert len({entry.request_id for entry in entries}) == 1


async def test_the_previous_owner_loses_owner_rights_at_the_next_request(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")
    await client.patch(_url(editor), json={"role": "owner"}, headers=org.owner.headers)

    by_previous = await client.patch(
        "/v1/admin/org", json={"name": "Renamed"}, headers=org.owner.headers
    )
    by_new = await client.patch(
        "/v1/admin/org", json={"name": "Renamed"}, headers=editor.headers
    )

    assert by_previous.status_code == 403
    assert by_new.status_code == 200


@pytest.mark.parametrize("status", ["invited", "disabled"])
async def test_ownership_passes_only_to_an_active_user(
    client: AsyncClient, factory: Factory, status: str
) -> None:
    org = await factory.org()
    invited = await factory.invite(org.owner, "admin")
    if status == "disabled":
        await client.patch(
            _url(invited), json={"status": "disabled"}, headers=org.owner.headers
        )

    response = await client.patch(
        _url(invited), json={"role": "owner"}, headers=org.owner.headers
    )

    assert response.status_code == 403
    assert "active user" in response.json()["error"]["message"]
    assert (await _roles(client, org.owner))[org.owner.id] == "owner"


async def test_ownership_cannot_pass_to_a_user_disabled_in_the_same_change(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")

    response = await client.patch(
        _url(editor),
        json={"role": "owner", "status": "disabled"},
        headers=org.owner.headers,
    )

    assert response.status_code == 403
    assert (await _roles(client, org.owner))[org.owner.id] == "owner"


async def test_concurrent_transfers_leave_exactly_one_owner(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")
    viewer = await factory.member(org, "viewer")

    responses = await asyncio.gather(
        *(
            client.patch(_url(m), json={"role": "owner"}, headers=org.owner.headers)
            for m in (editor, viewer)
        )
    )

    assert sorted(r.status_code for r in responses) == [200, 403]
    roles = await _roles(client, org.owner)
    assert list(roles.values()).count("owner") == 1
    assert roles[org.owner.id] == "admin"


async def test_the_database_refuses_a_second_owner(
    app: FastAPI, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org, "admin", sign_in=False)

    with pytest.raises(IntegrityError):
        await set_user(app, admin.id, role="owner")


async def test_the_owner_cannot_be_disabled(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.patch(
        _url(org.owner), json={"status": "disabled"}, headers=org.owner.headers
    )

    assert response.status_code == 403
    assert "cannot be disabled or deleted" in response.json()["error"]["message"]
    assert (await client.get(ME, headers=org.owner.headers)).status_code == 200


async def test_the_owner_cannot_be_deleted(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.delete(_url(org.owner), headers=org.owner.headers)

    assert response.status_code == 403
    assert "cannot be disabled or deleted" in response.json()["error"]["message"]
    assert await _ids(client, org.owner) == [org.owner.id]


# Sessions


async def _second_session(client: AsyncClient, member: Member) -> dict[str, Any]:
    response = await client.post(
        LOGIN, json={"email": member.email, "password": member.password}
    )
    pair: dict[str, Any] = response.json()
    return pair


async def _is_cut_off(
    client: AsyncClient, member: Member, other: dict[str, Any]
) -> bool:
    """Whether every token of `member`'s two sessions is refused."""
    answers = [
        await client.get(ME, headers=member.headers),
        await client.get(ME, headers=bearer(other["access_token"])),
        await client.post(REFRESH, json={"refresh_token": member.refresh_token}),
        await client.post(REFRESH, json={"refresh_token": other["refresh_token"]}),
    ]
    return all(answer.status_code == 401 for answer in answers)


async def test_disabling_a_user_revokes_every_session_at_once(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")
    other = await _second_session(client, editor)

    await client.patch(
        _url(editor), json={"status": "disabled"}, headers=org.owner.headers
    )

    assert await _open_sessions(app, editor.id) == 0
    assert await _is_cut_off(client, editor, other)


async def test_reenabling_a_user_does_not_revive_their_old_sessions(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")
    other = await _second_session(client, editor)
    await client.patch(
        _url(editor), json={"status": "disabled"}, headers=org.owner.headers
    )

    enabled = await client.patch(
        _url(editor), json={"status": "active"}, headers=org.owner.headers
    )

    assert enabled.json()["status"] == "active"
    assert await _is_cut_off(client, editor, other)
    assert (await _second_session(client, editor))["access_token"]


async def test_a_disabled_user_cannot_sign_in(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor", sign_in=False)
    await client.patch(
        _url(editor), json={"status": "disabled"}, headers=org.owner.headers
    )

    response = await client.post(
        LOGIN, json={"email": editor.email, "password": PASSWORD}
    )

    assert error_code(response) == "INVALID_CREDENTIALS"


async def test_changing_a_role_keeps_the_sessions_and_applies_at_once(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org, "admin")

    await client.patch(_url(admin), json={"role": "viewer"}, headers=org.owner.headers)

    me = await client.get(ME, headers=admin.headers)
    users = await client.get(USERS, headers=admin.headers)
    assert me.json()["role"] == "viewer"
    assert users.status_code == 403
    assert await _open_sessions(factory.app, admin.id) == 1


async def test_deleting_a_user_revokes_every_session_at_once(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")
    other = await _second_session(client, editor)
    assert await _open_sessions(app, editor.id) == 2

    await client.delete(_url(editor), headers=org.owner.headers)

    assert await _open_sessions(app, editor.id) == 0
    assert await _is_cut_off(client, editor, other)


# Delete


async def test_delete_answers_204_and_the_user_is_gone(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor", sign_in=False)

    response = await client.delete(_url(editor), headers=org.owner.headers)

    assert response.status_code == 204
    assert response.content == b""
    got = await client.get(_url(editor), headers=org.owner.headers)
    again = await client.delete(_url(editor), headers=org.owner.headers)
    assert got.status_code == again.status_code == 404
    assert await _ids(client, org.owner) == [org.owner.id]
    assert await _ids(client, org.owner, status="active") == [org.owner.id]


async def test_delete_keeps_the_row_for_the_audit_trail(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")

    await client.delete(_url(editor), headers=org.owner.headers)

    stored = await _stored(app, editor.id)
    assert stored.deleted_at is not None
    assert stored.email == editor.email
    [entry] = await audit_entries(app, org.id, "user.deleted")
    assert entry.resource_id == editor.id
    assert entry.changes["email"] == {"old": editor.email, "new": None}
    logins = await audit_entries(app, org.id, "auth.login")
    assert editor.email in {login.user_email for login in logins}


async def test_a_deleted_users_email_can_be_used_again(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    other = await factory.org()
    editor = await factory.member(org, "editor", sign_in=False)
    await client.delete(_url(editor), headers=org.owner.headers)

    again = await _create(client, other.owner, email=editor.email, password=PASSWORD)
    signed_in = await client.post(
        LOGIN, json={"email": editor.email, "password": PASSWORD}
    )

    assert again["id"] != editor.id
    assert again["org_id"] == other.id
    me = await client.get(ME, headers=bearer(signed_in.json()["access_token"]))
    assert me.json()["id"] == again["id"]


async def test_delete_with_a_stale_if_match_answers_precondition_failed(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _create(client, org.owner)
    await client.patch(_url(created), json={"name": "B"}, headers=org.owner.headers)

    response = await client.delete(
        _url(created), headers={**org.owner.headers, "If-Match": '"v1"'}
    )

    assert response.status_code == 412
    assert (await client.get(_url(created), headers=org.owner.headers)).is_success


async def test_an_admin_may_remove_another_admin(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org, "admin")
    other = await _create(client, org.owner, role="admin", password=PASSWORD)

    response = await client.delete(_url(other), headers=admin.headers)

    assert response.status_code == 204


# Reinvite


async def test_reinvite_issues_a_new_token_and_voids_the_previous_one(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    invited = await factory.invite(org.owner)

    response = await client.post(_url(invited, "/reinvite"), headers=org.owner.headers)

    assert response.status_code == 200
    token = response.json()["invite_token"]
    assert INVITE_TOKEN.match(token)
    assert token != invited["invite_token"]
    stale = await _accept(client, invited["invite_token"])
    fresh = await _accept(client, token)
    assert stale.status_code == 401
    assert error_code(stale) == "INVALID_TOKEN"
    assert fresh.status_code == 200


async def test_reinvite_of_a_user_who_is_not_invited_answers_validation_error(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor", sign_in=False)

    response = await client.post(_url(editor, "/reinvite"), headers=org.owner.headers)

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"


async def test_reinvite_is_audited_without_the_token(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    invited = await factory.invite(org.owner)

    response = await client.post(_url(invited, "/reinvite"), headers=org.owner.headers)

    [entry] = await audit_entries(app, org.id, "user.reinvited")
    assert entry.resource_id == invited["id"]
    assert list(entry.changes) == ["invite_expires_at"]
    assert response.json()["invite_token"] not in json.dumps(entry.changes)


# Accepting an invitation


async def test_accept_invite_answers_a_token_pair_and_activates_the_user(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    invited = await factory.invite(org.owner)

    response = await _accept(client, invited["invite_token"], name="Chosen Name")

    assert response.status_code == 200
    pair = response.json()
    assert pair["token_type"] == "Bearer"
    assert pair["expires_in"] == 900
    me = await client.get(ME, headers=bearer(pair["access_token"]))
    assert me.json()["id"] == invited["id"]
    assert me.json()["status"] == "active"
    assert me.json()["name"] == "Chosen Name"
    assert me.json()["last_login_at"] is not None


async def test_an_accepted_invitation_sets_the_password(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    invited = await factory.invite(org.owner)
    await _accept(client, invited["invite_token"])

    response = await client.post(
        LOGIN, json={"email": invited["email"], "password": NEW_PASSWORD}
    )

    assert response.status_code == 200


async def test_an_invitation_is_accepted_once(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    invited = await factory.invite(org.owner)
    await _accept(client, invited["invite_token"])

    response = await _accept(client, invited["invite_token"], password="x" * 20)

    assert response.status_code == 401
    assert error_code(response) == "INVALID_TOKEN"


async def test_concurrent_acceptances_have_exactly_one_winner(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    invited = await factory.invite(org.owner)

    responses = await asyncio.gather(
        *(_accept(client, invited["invite_token"]) for _ in range(3))
    )

    assert sorted(r.status_code for r in responses) == [200, 401, 401]


async def test_an_expired_invitation_is_refused(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    invited = await factory.invite(org.owner)
    await set_user(
        app, invited["id"], invite_expires_at=utc_now() - timedelta(seconds=1)
    )

    response = await _accept(client, invited["invite_token"])

    assert response.status_code == 401
    assert error_code(response) == "INVALID_TOKEN"


@pytest.mark.parametrize("token", ["inv_" + "x" * 40, "", "inv_\u0000", "x" * 300])
async def test_an_unknown_invitation_answers_invalid_token(
    client: AsyncClient, token: str
) -> None:
    response = await _accept(client, token)

    assert response.status_code == 401
    assert error_code(response) == "INVALID_TOKEN"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("action", ["delete", "disable"])
async def test_the_invitation_of_a_removed_or_disabled_user_is_refused(
    client: AsyncClient, factory: Factory, action: str
) -> None:
    org = await factory.org()
    invited = await factory.invite(org.owner)
    if action == "delete":
        await client.delete(_url(invited), headers=org.owner.headers)
    else:
        await client.patch(
            _url(invited), json={"status": "disabled"}, headers=org.owner.headers
        )

    response = await _accept(client, invited["invite_token"])

    assert response.status_code == 401
    assert error_code(response) == "INVALID_TOKEN"


async def test_a_disabled_user_who_never_accepted_cannot_be_made_active(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    invited = await factory.invite(org.owner)
    await client.patch(
        _url(invited), json={"status": "disabled"}, headers=org.owner.headers
    )

    response = await client.patch(
        _url(invited), json={"status": "active"}, headers=org.owner.headers
    )

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"


async def test_accept_invite_with_a_short_password_keeps_the_invitation_open(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    invited = await factory.invite(org.owner)

    refused = await _accept(client, invited["invite_token"], password="short")
    accepted = await _accept(client, invited["invite_token"])

    assert refused.status_code == 422
    assert refused.json()["error"]["details"][0]["field"] == "password"
    assert accepted.status_code == 200


async def test_accept_invite_is_audited_in_the_users_org(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    invited = await factory.invite(org.owner)

    await _accept(client, invited["invite_token"])

    [entry] = await audit_entries(app, org.id, "user.invite_accepted")
    assert entry.resource_id == entry.user_id == invited["id"]
    assert entry.user_email == invited["email"]
    assert entry.changes == {"status": {"old": "invited", "new": "active"}}
    logins = await audit_entries(app, org.id, "auth.login")
    assert invited["id"] in {login.user_id for login in logins}
    assert NEW_PASSWORD not in json.dumps([entry.changes, entry.metadata_])


async def test_accept_invite_needs_no_access_token_and_ignores_a_broken_one(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    invited = await factory.invite(org.owner)

    response = await client.post(
        ACCEPT_INVITE,
        json={"invite_token": invited["invite_token"], "password": NEW_PASSWORD},
        headers=bearer("not-a-token"),
    )

    assert response.status_code == 200


async def test_an_invited_user_stays_out_of_the_way_of_sign_in(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    invited = await factory.invite(org.owner)

    response = await client.post(
        LOGIN, json={"email": invited["email"], "password": PASSWORD}
    )

    assert error_code(response) == "INVALID_CREDENTIALS"


async def test_stored_rows_never_hold_the_invite_token_or_a_clear_password(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    invited = await factory.invite(org.owner)
    await _accept(client, invited["invite_token"])

    async with app.state.services.db.read() as session:
        row = (
            await session.execute(
                select(User.__table__).where(User.id == invited["id"])
            )
        ).one()

    values = json.dumps([str(value) for value in row])
    assert invited["invite_token"] not in values
    assert NEW_PASSWORD not in values
    assert row.invite_token_hash is None
