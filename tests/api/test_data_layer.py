"""The data layer over REST and GraphQL: defaults until set, whole-document
replacement, validation, and the audited diff."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient

from tests.factories import Factory, error_code
from tests.helpers import audit_entries
from tests.org_fixtures import graphql

URL = "/v1/admin/data-layer"
DEFAULTS = {
    "pii_rules": {
        "enabled": True,
        "hash_fields": [],
        "redact_fields": [],
        "hash_algorithm": "sha256",
    },
    "bot_filtering": {
        "enabled": True,
        "block_known_bots": True,
        "block_empty_user_agent": False,
        "custom_patterns": [],
    },
    "session": {
        "timeout_minutes": 30,
        "max_duration_hours": 24,
        "track_session_start": False,
        "track_session_end": False,
    },
    "custom_js": {"enabled": False, "code": "", "description": ""},
    "routing_rules": [],
}
QUERY = "{ dataLayer { orgId config version updatedAt updatedBy } }"
UPDATE = """
mutation ($input: UpdateDataLayerInput!) {
  updateDataLayer(input: $input) {
    dataLayer { config version updatedBy }
    userErrors { field code message }
  }
}
"""


def _with(**sections: Any) -> dict[str, Any]:
    return {**DEFAULTS, **sections}


async def test_a_data_layer_never_set_reads_as_the_defaults(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.get(URL, headers=org.owner.headers)

    assert response.status_code == 200
    assert response.json() == {
        "org_id": org.id,
        "config": DEFAULTS,
        "version": 0,
        "updated_at": None,
        "updated_by": None,
    }
    assert response.headers["ETag"] == '"v0"'


async def test_put_replaces_the_document_and_fills_in_left_out_sections(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pii = {
        "enabled": True,
        "hash_fields": ["traits.email"],
        "redact_fields": ["context.ip"],
    }

    response = await client.put(
        URL, json={"config": {"pii_rules": pii}}, headers=org.owner.headers
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["config"] == _with(pii_rules={**pii, "hash_algorithm": "sha256"})
    assert body["version"] == 1
    assert body["updated_by"] == org.owner.id
    assert body["updated_at"] is not None
    again = await client.get(URL, headers=org.owner.headers)
    assert again.json() == body


async def test_every_problem_is_named_and_nothing_changes(
    client: AsyncClient, app: FastAPI, factory: Factory
) -> None:
    org = await factory.org()
    config = {
        "routing_rules": [{"condition": "event.event = ", "action": "drop"}],
        "bot_filtering": {"enabled": "yes"},
        "pii_rules": {"hash_fields": ["traits..email"]},
    }

    response = await client.put(URL, json={"config": config}, headers=org.owner.headers)

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    fields = {problem["field"] for problem in response.json()["error"]["details"]}
    assert {
        "config.routing_rules.0.condition",
        "config.bot_filtering.enabled",
        "config.pii_rules.hash_fields.0",
    } <= fields
    assert (await client.get(URL, headers=org.owner.headers)).json()["version"] == 0
    assert await audit_entries(app, org.id, "data_layer.updated") == []


async def test_custom_javascript_must_compile(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    custom_js = {
        "enabled": True,
        "code": "function process(event) { return",
        "description": "",
    }

    response = await client.put(
        URL, json={"config": {"custom_js": custom_js}}, headers=org.owner.headers
    )

    assert response.status_code == 422
    assert [p["field"] for p in response.json()["error"]["details"]] == [
        "config.custom_js.code"
    ]


async def test_enabled_custom_javascript_without_code_is_named(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.put(
        URL,
        json={"config": {"custom_js": {"enabled": True}}},
        headers=org.owner.headers,
    )

    assert response.status_code == 422
    assert [(p["field"], p["code"]) for p in response.json()["error"]["details"]] == [
        ("config.custom_js.code", "REQUIRED")
    ]


async def test_javascript_problems_come_with_the_others(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    config = {
        "custom_js": {"enabled": True, "code": "function process(e) { return"},
        "session": {"timeout_minutes": 0},
    }

    response = await client.put(URL, json={"config": config}, headers=org.owner.headers)

    fields = {p["field"] for p in response.json()["error"]["details"]}
    assert fields == {"config.custom_js.code", "config.session.timeout_minutes"}


async def test_the_audit_entry_carries_the_diff_of_changed_sections(
    client: AsyncClient, app: FastAPI, factory: Factory
) -> None:
    org = await factory.org()
    rules = [{"condition": "event.event = 'Internal Test'", "action": "drop"}]

    await client.put(
        URL, json={"config": {"routing_rules": rules}}, headers=org.owner.headers
    )

    (entry,) = await audit_entries(app, org.id, "data_layer.updated")
    assert entry.resource_type == "data_layer"
    assert entry.resource_id == org.id
    assert entry.changes == {"routing_rules": {"old": [], "new": rules}}


async def test_if_match_guards_the_replacement(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    await client.put(URL, json={"config": {}}, headers=org.owner.headers)

    stale = await client.put(
        URL, json={"config": {}}, headers={**org.owner.headers, "If-Match": '"v0"'}
    )

    assert stale.status_code == 412


async def test_editors_read_but_only_admins_and_owners_write(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")
    admin = await factory.member(org, "admin")

    read = await client.get(URL, headers=editor.headers)
    refused = await client.put(URL, json={"config": {}}, headers=editor.headers)
    allowed = await client.put(URL, json={"config": {}}, headers=admin.headers)

    assert read.status_code == 200
    assert refused.status_code == 403
    assert allowed.status_code == 200


async def test_graphql_reads_and_replaces_the_same_document(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    session = {"timeout_minutes": 45, "max_duration_hours": 12}

    updated = await graphql(
        client,
        org.owner,
        UPDATE,
        {"input": {"config": {"session": session}, "expectedVersion": 0}},
    )
    read = await graphql(client, org.owner, QUERY)

    payload = updated.json()["data"]["updateDataLayer"]
    assert payload["userErrors"] == []
    assert payload["dataLayer"]["version"] == 1
    expected = _with(
        session={**session, "track_session_start": False, "track_session_end": False}
    )
    assert payload["dataLayer"]["config"] == expected
    assert read.json()["data"]["dataLayer"]["config"] == expected
    rest = await client.get(URL, headers=org.owner.headers)
    assert rest.json()["config"] == expected


async def test_graphql_names_problems_in_user_errors(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await graphql(
        client,
        org.owner,
        UPDATE,
        {"input": {"config": {"session": {"timeout_minutes": -1}}}},
    )

    payload = response.json()["data"]["updateDataLayer"]
    assert payload["dataLayer"] is None
    assert payload["userErrors"][0]["field"] == ["config", "session", "timeout_minutes"]
