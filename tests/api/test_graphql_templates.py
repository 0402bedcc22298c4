"""Integration templates over GraphQL: install, create, revise, read nested
graphs through loaders, with userErrors, permissions and org isolation."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient

from tests.api.test_graphql_pipelines import (
    GRAPHQL,
    error_codes,
    graphql,
    user_errors,
)
from tests.factories import Factory, Member
from tests.helpers import audit_entries
from tests.statements import counted_selects

MAPPING = {
    "envelope": {"events_path": None, "event_name_field": "event"},
    "defaults": {"action": "pass"},
}
INSTALL = """
mutation ($input: InstallCatalogIntegrationInput!) {
  installCatalogIntegration(input: $input) {
    template { id name vendor catalogVariantKey secretFields catalogVendor { name } }
    revision { revisionNumber config deliveryMode template { id } }
    userErrors { field code message }
  }
}
"""
CREATE_TEMPLATE = """
mutation ($input: CreateIntegrationTemplateInput!) {
  createIntegrationTemplate(input: $input) {
    template { id name catalogVendor { key } }
    revision { revisionNumber }
    userErrors { field code message }
  }
}
"""
CREATE_REVISION = """
mutation ($input: CreateIntegrationRevisionInput!) {
  createIntegrationRevision(input: $input) {
    revision { revisionNumber changeSummary template { latestRevision { id } } }
    userErrors { field code message }
  }
}
"""
TEMPLATE = "query ($id: ID!) { integrationTemplate(id: $id) { id name } }"
NESTED = """
{
  integrationTemplates {
    edges { node {
      name
      catalogVendor { key }
      latestRevision {
        revisionNumber
        createdBy { email }
        template { id }
      }
      %s
    } }
  }
}
"""
REVISIONS = "revisions(first: 5) { totalCount edges { node { revisionNumber } } }"


async def create_template(
    client: AsyncClient, member: Member, **fields: Any
) -> dict[str, Any]:
    values = {
        "name": f"Hook {uuid.uuid4().hex[:8]}",
        "vendor": "webhook",
        "config": {"url": "https://example.com/hook", **MAPPING},
        **fields,
    }
    response = await graphql(client, member, CREATE_TEMPLATE, {"input": values})
    created: dict[str, Any] = response.json()["data"]["createIntegrationTemplate"]
    assert created["userErrors"] == [], created
    return created


async def create_revision(
    client: AsyncClient, member: Member, template_id: str, **fields: Any
) -> dict[str, Any]:
    values = {"templateId": template_id, "config": MAPPING, **fields}
    response = await graphql(client, member, CREATE_REVISION, {"input": values})
    created: dict[str, Any] = response.json()["data"]["createIntegrationRevision"]
    return created


async def test_installing_ga4_answers_the_template_and_its_masked_revision(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await graphql(
        client,
        org.owner,
        INSTALL,
        {
            "input": {
                "vendorKey": "ga4",
                "name": "GA4",
                "config": {"measurement_id": "G-ABC123", "api_secret": "s3cr3t"},
            }
        },
    )

    installed = response.json()["data"]["installCatalogIntegration"]
    template, revision = installed["template"], installed["revision"]
    assert installed["userErrors"] == []
    assert template["vendor"] == "ga4"
    assert template["catalogVariantKey"] == "default"
    assert template["catalogVendor"] == {"name": "Google Analytics 4"}
    assert template["secretFields"] == ["api_secret"]
    assert revision["revisionNumber"] == 1
    assert revision["deliveryMode"] == "SERVER_SIDE"
    assert revision["config"]["api_secret"] == "***"
    assert revision["config"]["measurement_id"] == "G-ABC123"
    assert revision["template"] == {"id": template["id"]}
    assert "s3cr3t" not in response.text


async def test_install_names_every_missing_config_field_as_written(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await graphql(
        client,
        org.owner,
        INSTALL,
        {"input": {"vendorKey": "ga4", "name": "GA4", "config": {}}},
    )

    assert response.json()["data"]["installCatalogIntegration"]["template"] is None
    assert sorted(user_errors(response, "installCatalogIntegration")) == [
        (["config", "api_secret"], "REQUIRED"),
        (["config", "measurement_id"], "REQUIRED"),
    ]


async def test_revisions_take_the_next_number(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    template = (await create_template(client, org.owner))["template"]

    second = await create_revision(
        client, org.owner, template["id"], changeSummary="Second"
    )
    third = await create_revision(
        client, org.owner, template["id"], baseRevisionNumber=2
    )

    assert second["userErrors"] == third["userErrors"] == []
    assert second["revision"]["revisionNumber"] == 2
    assert second["revision"]["changeSummary"] == "Second"
    assert third["revision"]["revisionNumber"] == 3


async def test_a_stale_base_revision_is_a_revision_conflict(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    template = (await create_template(client, org.owner))["template"]
    await create_revision(client, org.owner, template["id"], baseRevisionNumber=1)

    stale = await create_revision(
        client, org.owner, template["id"], baseRevisionNumber=1
    )

    assert stale["revision"] is None
    assert [(e["field"], e["code"]) for e in stale["userErrors"]] == [
        (None, "REVISION_CONFLICT")
    ]


async def test_a_viewer_may_not_create_a_template(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    viewer = await factory.member(org, "viewer")

    response = await graphql(
        client,
        viewer,
        CREATE_TEMPLATE,
        {"input": {"name": "Hook", "vendor": "webhook", "config": MAPPING}},
    )

    assert error_codes(response) == ["FORBIDDEN"]
    assert response.json()["data"] == {"createIntegrationTemplate": None}


async def test_another_orgs_template_reads_as_null(
    client: AsyncClient, factory: Factory
) -> None:
    ours, theirs = await factory.org(), await factory.org()
    foreign = (await create_template(client, theirs.owner))["template"]

    response = await graphql(client, ours.owner, TEMPLATE, {"id": foreign["id"]})

    assert response.json() == {
        "data": {"integrationTemplate": None},
        "extensions": response.json()["extensions"],
    }


async def test_templates_answer_their_nested_graph(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    template = (await create_template(client, org.owner, name="Hook"))["template"]
    await create_revision(client, org.owner, template["id"])
    await graphql(
        client,
        org.owner,
        INSTALL,
        {
            "input": {
                "vendorKey": "ga4",
                "name": "GA4",
                "config": {"measurement_id": "G-ABC123", "api_secret": "s3cr3t"},
            }
        },
    )

    response = await graphql(client, org.owner, NESTED % REVISIONS)

    nodes = [
        edge["node"]
        for edge in response.json()["data"]["integrationTemplates"]["edges"]
    ]
    hook, ga4 = nodes
    assert hook["name"] == "Hook"
    assert hook["catalogVendor"] is None
    assert hook["latestRevision"] == {
        "revisionNumber": 2,
        "createdBy": {"email": org.owner.email},
        "template": {"id": template["id"]},
    }
    assert hook["revisions"]["totalCount"] == 2
    assert [e["node"]["revisionNumber"] for e in hook["revisions"]["edges"]] == [2, 1]
    assert ga4["name"] == "GA4"
    assert ga4["catalogVendor"] == {"key": "ga4"}
    assert ga4["latestRevision"]["revisionNumber"] == 1
    assert ga4["revisions"]["totalCount"] == 1


async def test_a_page_of_templates_costs_four_selects_whatever_its_size(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    small, large = await factory.org(), await factory.org()
    for _ in range(3):
        await create_template(client, small.owner)
    for _ in range(30):
        await create_template(client, large.owner)

    with counted_selects(app) as small_selects:
        small_page = await graphql(client, small.owner, NESTED % "")
    with counted_selects(app) as large_selects:
        large_page = await graphql(client, large.owner, NESTED % "")

    assert len(small_page.json()["data"]["integrationTemplates"]["edges"]) == 3
    assert len(large_page.json()["data"]["integrationTemplates"]["edges"]) == 30
    # The caller, the page, the latest revisions and their authors; the
    # revisions' templates come from the page, which primes their loader.
    assert len(small_selects) == len(large_selects) == 4


async def test_a_viewer_sees_the_author_without_their_email(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    viewer = await factory.member(org, "viewer")
    await create_template(client, org.owner)

    response = await graphql(client, viewer, NESTED % "")

    node = response.json()["data"]["integrationTemplates"]["edges"][0]["node"]
    assert node["latestRevision"]["createdBy"] == {"email": None}


async def test_a_new_template_starts_at_version_one(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    query = """
    mutation ($input: CreateIntegrationTemplateInput!) {
      createIntegrationTemplate(input: $input) {
        template { version createdAt updatedAt }
      }
    }
    """

    response = await graphql(
        client,
        org.owner,
        query,
        {"input": {"name": "Hook", "vendor": "webhook", "config": MAPPING}},
    )

    template = response.json()["data"]["createIntegrationTemplate"]["template"]
    assert template["version"] == 1
    assert template["updatedAt"] == template["createdAt"]


async def test_a_cascade_delete_audits_every_row_it_removes(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    template_id = (await create_template(client, org.owner))["template"]["id"]
    await create_revision(client, org.owner, template_id)
    revisions = await client.get(
        f"/v1/admin/integration-templates/{template_id}/revisions",
        headers=org.owner.headers,
    )
    pipeline = await factory.pipeline(org.owner)
    attached = await client.post(
        f"/v1/admin/pipelines/{pipeline['id']}/integrations",
        json={"integration_id": template_id},
        headers=org.owner.headers,
    )
    mutation = """
    mutation ($input: DeleteIntegrationTemplateInput!) {
      deleteIntegrationTemplate(input: $input) { deletedId }
    }
    """

    response = await client.post(
        GRAPHQL,
        json={
            "query": mutation,
            "variables": {"input": {"id": template_id, "cascade": True}},
        },
        headers={**org.owner.headers, "X-Request-ID": "graphql-cascade-1"},
    )

    entries = [
        (entry.action, entry.resource_id)
        for entry in await audit_entries(app, org.id)
        if entry.request_id == "graphql-cascade-1"
    ]
    assert response.json()["data"]["deleteIntegrationTemplate"] == {
        "deletedId": template_id
    }
    assert sorted(entries) == sorted(
        [
            ("integration_template.deleted", template_id),
            *(
                ("integration_revision.deleted", revision["id"])
                for revision in revisions.json()["data"]
            ),
            ("pipeline_integration.deleted", attached.json()["id"]),
        ]
    )
