"""Text no database can hold - a NUL character, an unpaired surrogate - gets
the same clear 4xx on SQLite and PostgreSQL, through both faces: in a body it
is a 422 naming the field, in a filter a 422 naming the filter, in an id a 404
(null in GraphQL), and it never reaches the database."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import text

from signal_admin.errors import ValidationFailed
from tests.api.test_graphql_pipelines import GRAPHQL, error_codes
from tests.factories import Factory, Member, error_code

API = "/v1/admin"
MAPPING = {"defaults": {"action": "pass"}}
GA4 = {"measurement_id": "G-AAA1", "api_secret": "s"}
NUL = "\u0000"
SURROGATE = "\ud800"


@dataclass
class World:
    """An organisation with a pipeline, a template and one attachment."""

    owner: Member
    pipeline_id: str
    template_id: str
    revision_id: str
    attachment_id: str


async def _world(client: AsyncClient, factory: Factory) -> World:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    created = await client.post(
        f"{API}/integration-templates",
        json={"name": "Hook", "vendor": "webhook", "config": MAPPING},
        headers=org.owner.headers,
    )
    assert created.status_code == 201, created.text
    template = created.json()["template"]
    other = await client.post(
        f"{API}/integration-templates",
        json={"name": "Other", "vendor": "webhook", "config": MAPPING},
        headers=org.owner.headers,
    )
    attached = await client.post(
        f"{API}/pipelines/{pipeline['id']}/integrations",
        json={"integration_id": other.json()["template"]["id"]},
        headers=org.owner.headers,
    )
    assert attached.status_code == 201, attached.text
    return World(
        owner=org.owner,
        pipeline_id=pipeline["id"],
        template_id=template["id"],
        revision_id=created.json()["revision"]["id"],
        attachment_id=attached.json()["id"],
    )


async def _send(
    client: AsyncClient, member: Member, method: str, path: str, body: Any
) -> Response:
    """`body` as JSON with every non-ASCII character escaped, so that even an
    unpaired surrogate travels as `\\ud800`."""
    return await client.request(
        method,
        f"{API}{path}",
        content=json.dumps(body).encode(),
        headers={**member.headers, "Content-Type": "application/json"},
    )


def _fields(response: Response) -> list[str]:
    return [detail["field"] for detail in response.json()["error"]["details"]]


def _filled(value: Any, names: dict[str, str]) -> Any:
    """`value` with each `{name}` in its strings and keys replaced."""
    if isinstance(value, str):
        for name, replacement in names.items():
            value = value.replace(f"{{{name}}}", replacement)
        return value
    if isinstance(value, dict):
        return {_filled(k, names): _filled(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_filled(item, names) for item in value]
    return value


# Bodies


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "a{bad}b"}, "name"),
        ({"description": "{bad}"}, "description"),
        ({"config": {**GA4, "note": "{bad}"}}, "config.note"),
        ({"config": {**GA4, "api_secret": "{bad}"}}, "config.api_secret"),
        (
            {"config": {**GA4, "events": {"page": {"vendor_event_name": "{bad}"}}}},
            "config.events.page.vendor_event_name",
        ),
    ],
)
async def test_install_refuses_unstorable_text_naming_the_field(
    client: AsyncClient,
    factory: Factory,
    bad: str,
    fields: dict[str, Any],
    field: str,
) -> None:
    org = await factory.org()
    body = _filled({"name": "A", "config": GA4, **fields}, {"bad": bad})

    response = await _send(
        client, org.owner, "POST", "/integration-catalog/ga4/install", body
    )

    assert response.status_code == 422, response.text
    assert error_code(response) == "VALIDATION_ERROR"
    assert _fields(response) == [field]


@pytest.mark.parametrize(
    ("bad", "shown"), [(NUL, NUL), (SURROGATE, "\ufffd")], ids=["nul", "surrogate"]
)
async def test_a_config_key_holding_unstorable_text_is_named_printably(
    client: AsyncClient, factory: Factory, bad: str, shown: str
) -> None:
    org = await factory.org()
    body = {"name": "A", "config": {**GA4, f"k{bad}": 1}}

    response = await _send(
        client, org.owner, "POST", "/integration-catalog/ga4/install", body
    )

    assert response.status_code == 422
    assert _fields(response) == [f"config.k{shown}"]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/integration-templates", {"name": "A\x00", "vendor": "x"}, "name"),
        (
            "POST",
            "/integration-templates",
            {"name": "A", "vendor": "x", "secret_fields": ["a\x00"]},
            "secret_fields.0",
        ),
        (
            "POST",
            "/integration-templates",
            {"name": "A", "vendor": "x", "config": {"a": [{"b": "\x00"}]}},
            "config.a.0.b",
        ),
        ("PATCH", "/integration-templates/{template}", {"name": "\x00"}, "name"),
        (
            "PATCH",
            "/integration-templates/{template}",
            {"description": "\x00"},
            "description",
        ),
        (
            "POST",
            "/integration-templates/{template}/revisions",
            {"config": {**MAPPING, "x": "\x00"}},
            "config.x",
        ),
        (
            "POST",
            "/integration-templates/{template}/revisions",
            {"config": MAPPING, "change_summary": "\x00"},
            "change_summary",
        ),
        (
            "POST",
            "/integration-templates/{template}/rollout",
            {"revision_id": "rev_\x00"},
            "revision_id",
        ),
        (
            "POST",
            "/integration-templates/{template}/rollout",
            {"revision_id": "{revision}", "pipeline_ids": ["pip_\x00"]},
            "pipeline_ids.0",
        ),
        (
            "POST",
            "/pipelines/{pipeline}/integrations",
            {"integration_id": "tmpl_\x00"},
            "integration_id",
        ),
        (
            "POST",
            "/pipelines/{pipeline}/integrations",
            {"integration_id": "{template}", "revision_id": "rev_\x00"},
            "revision_id",
        ),
        (
            "POST",
            "/pipelines/{pipeline}/integrations",
            {"integration_id": "{template}", "consent_categories": ["a\x00"]},
            "consent_categories.0",
        ),
        (
            "PATCH",
            "/pipelines/{pipeline}/integrations/{attachment}",
            {"revision_id": "rev_\x00"},
            "revision_id",
        ),
        (
            "PATCH",
            "/pipelines/{pipeline}/integrations/{attachment}",
            {"consent_categories": ["\x00"]},
            "consent_categories.0",
        ),
    ],
)
async def test_every_body_refuses_a_nul_naming_the_field(
    client: AsyncClient,
    factory: Factory,
    method: str,
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    world = await _world(client, factory)
    names = {
        "template": world.template_id,
        "revision": world.revision_id,
        "pipeline": world.pipeline_id,
        "attachment": world.attachment_id,
    }

    response = await _send(
        client, world.owner, method, _filled(path, names), _filled(body, names)
    )

    assert response.status_code == 422, response.text
    assert error_code(response) == "VALIDATION_ERROR"
    assert _fields(response) == [field]


async def test_unstorable_text_is_named_with_the_other_problems_of_the_body(
    client: AsyncClient, factory: Factory
) -> None:
    world = await _world(client, factory)

    response = await _send(
        client,
        world.owner,
        "POST",
        f"/pipelines/{world.pipeline_id}/integrations",
        {"integration_id": "tmpl_\x00", "enabled": "yes"},
    )

    assert response.status_code == 422
    assert sorted(_fields(response)) == ["enabled", "integration_id"]


async def test_nothing_is_stored_for_a_refused_name(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    await _send(
        client,
        org.owner,
        "POST",
        "/integration-catalog/ga4/install",
        {"name": "a\x00b", "config": GA4},
    )
    listed = await client.get(f"{API}/integration-templates", headers=org.owner.headers)

    assert listed.json()["data"] == []


# Filters and cursors


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/integration-templates?q=%00", "q"),
        ("/integration-templates?vendor=%00", "vendor"),
        ("/integration-catalog?q=%00", "q"),
    ],
)
async def test_a_filter_holding_a_nul_is_refused(
    client: AsyncClient, factory: Factory, path: str, field: str
) -> None:
    org = await factory.org()

    response = await client.get(f"{API}{path}", headers=org.owner.headers)

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    assert _fields(response) == [field]


async def test_a_cursor_naming_a_nul_is_not_one_the_service_issued(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    # {"id":"\u0000"}, as a cursor
    cursor = "eyJpZCI6Ilx1MDAwMCJ9"

    response = await client.get(
        f"{API}/integration-templates?cursor={cursor}", headers=org.owner.headers
    )

    assert response.status_code == 400
    assert error_code(response) == "INVALID_CURSOR"


# Ids in the path


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/integration-templates/tmpl_%00"),
        ("PATCH", "/integration-templates/tmpl_%00"),
        ("DELETE", "/integration-templates/tmpl_%00"),
        ("GET", "/integration-templates/tmpl_%00/revisions"),
        ("POST", "/integration-templates/tmpl_%00/revisions"),
        ("POST", "/integration-templates/tmpl_%00/rollout"),
        ("GET", "/integration-templates/{template}/revisions/rev_%00"),
        ("GET", "/integration-templates/tmpl_%00/revisions/{revision}"),
        ("GET", "/pipelines/pip_%00/integrations"),
        ("POST", "/pipelines/pip_%00/integrations"),
        ("GET", "/pipelines/{pipeline}/integrations/pi_%00"),
        ("PATCH", "/pipelines/{pipeline}/integrations/pi_%00"),
        ("DELETE", "/pipelines/{pipeline}/integrations/pi_%00"),
        ("GET", "/integration-templates/not-an-id"),
        ("GET", "/integration-templates/{template_lower}"),
    ],
)
async def test_an_id_the_service_cannot_have_issued_is_not_found(
    client: AsyncClient, factory: Factory, method: str, path: str
) -> None:
    world = await _world(client, factory)
    path = _filled(
        path,
        {
            "template": world.template_id,
            "template_lower": world.template_id.lower(),
            "revision": world.revision_id,
            "pipeline": world.pipeline_id,
        },
    )
    bodies = {
        "/revisions": {"config": MAPPING},
        "/rollout": {"revision_id": world.revision_id},
        "/integrations": {"integration_id": world.template_id},
    }
    patches = {"/integration-templates": {"name": "x"}, "": {"enabled": False}}
    body = next(
        (value for end, value in bodies.items() if path.endswith(end)),
        next(v for start, v in patches.items() if path.startswith(start))
        if method == "PATCH"
        else None,
    )

    response = await client.request(
        method, f"{API}{path}", json=body, headers=world.owner.headers
    )

    assert response.status_code == 404, response.text
    assert error_code(response) == "NOT_FOUND"


# GraphQL


TEMPLATE = "query ($id: ID!) { integrationTemplate(id: $id) { id } }"
TEMPLATES = """
query ($filter: TemplateFilter) {
  integrationTemplates(filter: $filter) { edges { node { id } } }
}
"""
INSTALL = """
mutation ($input: InstallCatalogIntegrationInput!) {
  installCatalogIntegration(input: $input) {
    template { id }
    userErrors { field code }
  }
}
"""
CREATE = """
mutation ($input: CreateIntegrationTemplateInput!) {
  createIntegrationTemplate(input: $input) {
    template { id }
    userErrors { field code }
  }
}
"""
ATTACH = """
mutation ($input: AttachIntegrationInput!) {
  attachIntegration(input: $input) {
    pipelineIntegration { id }
    userErrors { field code }
  }
}
"""
UPDATE = """
mutation ($input: UpdatePipelineIntegrationInput!) {
  updatePipelineIntegration(input: $input) {
    pipelineIntegration { id }
    userErrors { field code }
  }
}
"""


async def _graphql(
    client: AsyncClient, member: Member, query: str, variables: dict[str, Any]
) -> Response:
    """A GraphQL request whose variables are sent with non-ASCII escaped."""
    return await client.post(
        GRAPHQL,
        content=json.dumps({"query": query, "variables": variables}).encode(),
        headers={**member.headers, "Content-Type": "application/json"},
    )


@pytest.mark.parametrize("template_id", ["a\x00", "tmpl_\x00", "tmpl_\ud800"])
async def test_graphql_answers_null_for_an_id_the_service_cannot_have_issued(
    client: AsyncClient, factory: Factory, template_id: str
) -> None:
    org = await factory.org()

    response = await _graphql(client, org.owner, TEMPLATE, {"id": template_id})

    assert "errors" not in response.json()
    assert response.json()["data"] == {"integrationTemplate": None}


@pytest.mark.parametrize("condition", [{"q": "\x00"}, {"vendor": "\x00"}])
async def test_graphql_refuses_a_filter_holding_a_nul(
    client: AsyncClient, factory: Factory, condition: dict[str, str]
) -> None:
    org = await factory.org()

    response = await _graphql(client, org.owner, TEMPLATES, {"filter": condition})

    assert response.json()["data"] is None
    assert error_codes(response) == ["VALIDATION_ERROR"]


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"name": "z\x00"}, ["name"]),
        ({"name": "z\ud800"}, ["name"]),
        ({"name": "z", "description": "\x00"}, ["description"]),
        ({"name": "z", "config": {**GA4, "k\x00": 1}}, ["config", "k\x00"]),
        (
            {"name": "z", "config": {**GA4, "api_secret": "\x00"}},
            ["config", "api_secret"],
        ),
    ],
)
async def test_graphql_install_names_the_field_holding_unstorable_text(
    client: AsyncClient, factory: Factory, values: dict[str, Any], field: list[str]
) -> None:
    org = await factory.org()
    values = {"vendorKey": "ga4", "config": GA4, **values}

    response = await _graphql(client, org.owner, INSTALL, {"input": values})

    payload = response.json()["data"]["installCatalogIntegration"]
    assert payload["template"] is None
    assert payload["userErrors"] == [{"field": field, "code": "INVALID"}]


async def test_graphql_create_names_a_config_key_holding_a_nul(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    values = {"name": "z", "vendor": "webhook", "config": {"a": {"b\x00": 1}}}

    response = await _graphql(client, org.owner, CREATE, {"input": values})

    payload = response.json()["data"]["createIntegrationTemplate"]
    assert payload["userErrors"] == [
        {"field": ["config", "a", "b\x00"], "code": "INVALID"}
    ]


async def test_graphql_attach_names_an_integration_id_holding_a_nul(
    client: AsyncClient, factory: Factory
) -> None:
    world = await _world(client, factory)
    values = {"pipelineId": world.pipeline_id, "integrationId": "tmpl_\x00"}

    response = await _graphql(client, world.owner, ATTACH, {"input": values})

    payload = response.json()["data"]["attachIntegration"]
    assert payload["userErrors"] == [{"field": ["integrationId"], "code": "INVALID"}]


@pytest.mark.parametrize(
    ("target", "code"),
    [({"pipelineId": "pip_\x00"}, "NOT_FOUND"), ({"id": "pi_\x00"}, "NOT_FOUND")],
)
async def test_graphql_update_of_an_attachment_with_a_nul_in_its_ids_finds_none(
    client: AsyncClient, factory: Factory, target: dict[str, str], code: str
) -> None:
    world = await _world(client, factory)
    values = {
        "pipelineId": world.pipeline_id,
        "id": world.attachment_id,
        "enabled": False,
        **target,
    }

    response = await _graphql(client, world.owner, UPDATE, {"input": values})

    payload = response.json()["data"]["updatePipelineIntegration"]
    assert payload["userErrors"] == [{"field": None, "code": code}]


# The last guard


async def test_text_the_database_cannot_encode_is_an_input_problem(
    app: FastAPI,
) -> None:
    database = app.state.services.db

    with pytest.raises(ValidationFailed):
        async with database.read() as session:
            await session.execute(
                text("SELECT CAST(:value AS TEXT)"), {"value": SURROGATE}
            )


async def test_a_nul_postgresql_refuses_is_an_input_problem(app: FastAPI) -> None:
    database = app.state.services.db
    if database.is_sqlite:
        pytest.skip("SQLite stores NUL characters; PostgreSQL refuses them")

    with pytest.raises(ValidationFailed):
        async with database.transaction() as session:
            await session.execute(
                text("SELECT CAST(CAST(:value AS TEXT) AS JSONB)"),
                {"value": '"\\u0000"'},
            )
