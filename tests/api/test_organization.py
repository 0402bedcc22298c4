"""The organisation over REST and GraphQL: everyone reads it, only the owner
renames it, with versions, the audit trail and org isolation."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from tests.api.test_graphql_pipelines import error_codes, graphql, user_errors
from tests.factories import Factory, error_code
from tests.helpers import TIMESTAMP, audit_entries

ORG = "/v1/admin/org"
ORGANIZATION = "{ organization { id name version createdAt updatedAt } }"
UPDATE = """
mutation ($input: UpdateOrganizationInput!) {
  updateOrganization(input: $input) {
    organization { id name version }
    userErrors { field code message }
  }
}
"""


# REST


@pytest.mark.parametrize("role", ["admin", "editor", "viewer"])
async def test_every_role_reads_the_organisation(
    client: AsyncClient, factory: Factory, role: str
) -> None:
    org = await factory.org()
    member = await factory.member(org, role)

    response = await client.get(ORG, headers=member.headers)

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == org.id
    assert body["name"].startswith("Org ")
    assert body["version"] == 1
    assert TIMESTAMP.match(body["created_at"])
    assert TIMESTAMP.match(body["updated_at"])
    assert response.headers["ETag"] == '"v1"'


async def test_the_owner_renames_the_organisation(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.patch(
        ORG,
        json={"name": "  Acme  "},
        headers={**org.owner.headers, "If-Match": '"v1"'},
    )

    assert response.status_code == 200
    assert response.json()["name"] == "Acme"
    assert response.json()["version"] == 2
    assert response.headers["ETag"] == '"v2"'
    assert (await client.get(ORG, headers=org.owner.headers)).json()["name"] == "Acme"


@pytest.mark.parametrize("role", ["admin", "editor", "viewer"])
async def test_only_the_owner_renames_the_organisation(
    client: AsyncClient, factory: Factory, role: str
) -> None:
    org = await factory.org()
    member = await factory.member(org, role)

    response = await client.patch(ORG, json={"name": "Mine"}, headers=member.headers)

    assert response.status_code == 403
    assert error_code(response) == "FORBIDDEN"
    assert "manage the organisation" in response.json()["error"]["message"]
    after = await client.get(ORG, headers=org.owner.headers)
    assert after.json()["version"] == 1


async def test_a_role_is_refused_whatever_the_body_holds(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org, "admin")

    response = await client.patch(ORG, json={"bogus": None}, headers=admin.headers)

    assert response.status_code == 403


async def test_rename_with_a_stale_if_match_answers_precondition_failed(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    await client.patch(ORG, json={"name": "First"}, headers=org.owner.headers)

    response = await client.patch(
        ORG,
        json={"name": "Second"},
        headers={**org.owner.headers, "If-Match": '"v1"'},
    )

    assert response.status_code == 412
    assert error_code(response) == "PRECONDITION_FAILED"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"name": ""}, "TOO_SHORT"),
        ({"name": "x" * 201}, "TOO_LONG"),
        ({"name": None}, "INVALID"),
        ({"name": 7}, "INVALID"),
        ({"id": "org_other"}, "UNKNOWN_FIELD"),
    ],
)
async def test_an_invalid_rename_answers_validation_error(
    client: AsyncClient, factory: Factory, body: dict[str, object], code: str
) -> None:
    org = await factory.org()

    response = await client.patch(ORG, json=body, headers=org.owner.headers)

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    assert [d["code"] for d in response.json()["error"]["details"]] == [code]


async def test_a_rename_is_audited_with_its_diff(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    before = (await client.get(ORG, headers=org.owner.headers)).json()["name"]

    await client.patch(ORG, json={"name": "Acme"}, headers=org.owner.headers)

    [entry] = await audit_entries(app, org.id, "organization.updated")
    assert entry.resource_type == "organization"
    assert entry.resource_id == org.id
    assert entry.user_id == org.owner.id
    assert entry.changes == {"name": {"old": before, "new": "Acme"}}


async def test_a_rename_to_the_same_name_changes_nothing(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    name = (await client.get(ORG, headers=org.owner.headers)).json()["name"]

    response = await client.patch(ORG, json={"name": name}, headers=org.owner.headers)

    assert response.json()["version"] == 1
    assert await audit_entries(app, org.id, "organization.updated") == []


async def test_a_rename_touches_only_the_callers_organisation(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    other = await factory.org()
    before = (await client.get(ORG, headers=other.owner.headers)).json()

    await client.patch(ORG, json={"name": "Acme"}, headers=org.owner.headers)

    assert (await client.get(ORG, headers=other.owner.headers)).json() == before


async def test_the_organisation_needs_a_token(client: AsyncClient) -> None:
    response = await client.get(ORG)

    assert response.status_code == 401
    assert error_code(response) == "UNAUTHORIZED"


# GraphQL


async def test_organization_answers_the_callers_organisation(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    viewer = await factory.member(org, "viewer")
    await factory.org()

    response = await graphql(client, viewer, ORGANIZATION)

    organization = response.json()["data"]["organization"]
    assert organization["id"] == org.id
    assert organization["version"] == 1


async def test_update_organization_renames_it(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await graphql(
        client, org.owner, UPDATE, {"input": {"name": "Acme", "expectedVersion": 1}}
    )

    assert response.json()["data"]["updateOrganization"] == {
        "organization": {"id": org.id, "name": "Acme", "version": 2},
        "userErrors": [],
    }


async def test_update_organization_with_a_stale_version_is_a_user_error(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    await graphql(client, org.owner, UPDATE, {"input": {"name": "First"}})

    response = await graphql(
        client, org.owner, UPDATE, {"input": {"name": "Second", "expectedVersion": 1}}
    )

    assert user_errors(response, "updateOrganization") == [
        (None, "PRECONDITION_FAILED")
    ]


async def test_update_organization_reports_an_invalid_name(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await graphql(client, org.owner, UPDATE, {"input": {"name": " "}})

    assert response.json()["data"]["updateOrganization"]["organization"] is None
    assert user_errors(response, "updateOrganization") == [(["name"], "TOO_SHORT")]


async def test_an_admin_may_not_update_the_organization(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org, "admin")

    response = await graphql(client, admin, UPDATE, {"input": {"name": "Mine"}})

    assert error_codes(response) == ["FORBIDDEN"]
    assert response.json()["data"] == {"updateOrganization": None}
    assert await audit_entries(app, org.id, "organization.updated") == []
