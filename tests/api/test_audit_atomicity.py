"""An audit entry is written in the same transaction as its change: when the
database refuses the entry, the change is refused with it and nothing of it
stays, on either face."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import event

from signal_admin.persistence.models import AuditEntry
from tests.api.test_graphql_pipelines import graphql
from tests.factories import Factory, Member, Org, unique_email
from tests.helpers import audit_entries

MAPPING = {"defaults": {"action": "pass"}}


@contextmanager
def audit_refused() -> Iterator[None]:
    """While this is active, every audit entry inserted breaks a NOT NULL
    constraint, so the database itself refuses it."""

    def break_entry(_mapper: Any, _connection: Any, entry: AuditEntry) -> None:
        entry.org_id = None  # type: ignore[assignment]

    event.listen(AuditEntry, "before_insert", break_entry)
    try:
        yield
    finally:
        event.remove(AuditEntry, "before_insert", break_entry)


Write = Callable[[AsyncClient, Member], Awaitable[Response]]


async def _create_pipeline(client: AsyncClient, owner: Member) -> Response:
    return await client.post(
        "/v1/admin/pipelines",
        json={"name": "Refused", "type": "web"},
        headers=owner.headers,
    )


async def _create_template(client: AsyncClient, owner: Member) -> Response:
    return await client.post(
        "/v1/admin/integration-templates",
        json={"name": "Refused", "vendor": "webhook", "config": MAPPING},
        headers=owner.headers,
    )


async def _create_user(client: AsyncClient, owner: Member) -> Response:
    return await client.post(
        "/v1/admin/users",
        json={"email": unique_email("editor"), "name": "Refused", "role": "editor"},
        headers=owner.headers,
    )


async def _create_pipeline_through_graphql(
    client: AsyncClient, owner: Member
) -> Response:
    return await graphql(
        client,
        owner,
        'mutation { createPipeline(input: {name: "Refused", type: WEB})'
        " { pipeline { id } userErrors { code } } }",
    )


@pytest.mark.parametrize(
    "write",
    [
        _create_pipeline,
        _create_template,
        _create_user,
        _create_pipeline_through_graphql,
    ],
)
async def test_a_create_whose_audit_entry_is_refused_creates_nothing(
    app: FastAPI, client: AsyncClient, org: Org, write: Write
) -> None:
    before = await _everything_of(client, org.owner)
    entries = await _entry_ids(app, org)

    with audit_refused():
        response = await write(client, org.owner)

    _assert_refused(response)
    assert await _everything_of(client, org.owner) == before
    assert await _entry_ids(app, org) == entries


async def test_an_update_whose_audit_entry_is_refused_changes_nothing(
    app: FastAPI, client: AsyncClient, factory: Factory, org: Org
) -> None:
    pipeline = await factory.pipeline(org.owner, name="Kept")
    url = f"/v1/admin/pipelines/{pipeline['id']}"
    entries = await _entry_ids(app, org)

    with audit_refused():
        response = await client.patch(
            url, json={"name": "Renamed"}, headers=org.owner.headers
        )

    _assert_refused(response)
    kept = await client.get(url, headers=org.owner.headers)
    assert (kept.json()["name"], kept.json()["version"]) == ("Kept", 1)
    assert await _entry_ids(app, org) == entries


async def test_a_cascade_delete_whose_audit_entries_are_refused_removes_nothing(
    app: FastAPI, client: AsyncClient, factory: Factory, org: Org
) -> None:
    pipeline = await factory.pipeline(org.owner)
    template = await _create_template(client, org.owner)
    template_id = template.json()["template"]["id"]
    attached = await client.post(
        f"/v1/admin/pipelines/{pipeline['id']}/integrations",
        json={"integration_id": template_id},
        headers=org.owner.headers,
    )
    assert attached.status_code == 201, attached.text
    before = await _everything_of(client, org.owner)

    with audit_refused():
        response = await client.delete(
            f"/v1/admin/pipelines/{pipeline['id']}", headers=org.owner.headers
        )

    _assert_refused(response)
    assert await _everything_of(client, org.owner) == before


async def test_a_sign_in_whose_audit_entry_is_refused_opens_no_session(
    client: AsyncClient, org: Org
) -> None:
    with audit_refused():
        response = await client.post(
            "/v1/admin/auth/login",
            json={"email": org.owner.email, "password": org.owner.password},
        )

    _assert_refused(response)
    assert "access_token" not in response.text


@pytest.fixture
async def org(factory: Factory) -> Org:
    return await factory.org()


def _assert_refused(response: Response) -> None:
    """A 500 in the envelope, or GraphQL's top-level error with no data."""
    body = response.json()
    if "error" in body:
        assert response.status_code == 500, response.text
        assert body["error"]["code"] == "INTERNAL_ERROR"
    else:
        assert [error["extensions"]["code"] for error in body["errors"]] == [
            "INTERNAL_ERROR"
        ]
        assert set(body["data"].values()) == {None}


async def _entry_ids(app: FastAPI, org: Org) -> list[str]:
    return [entry.id for entry in await audit_entries(app, org.id)]


async def _everything_of(client: AsyncClient, owner: Member) -> dict[str, Any]:
    """What the org holds, as its owner reads it through the API."""
    answers = {}
    for path in (
        "/v1/admin/pipelines",
        "/v1/admin/integration-templates",
        "/v1/admin/users",
    ):
        response = await client.get(path, headers=owner.headers)
        assert response.status_code == 200, response.text
        answers[path] = response.json()
    for pipeline in answers["/v1/admin/pipelines"]["data"]:
        path = f"/v1/admin/pipelines/{pipeline['id']}/integrations"
        answers[path] = (await client.get(path, headers=owner.headers)).json()
    return answers
