"""Templates attached to pipelines over GraphQL: attach, upgrade, roll back and
detach with userErrors and permissions, and the UI's pipeline graph read
through loaders at a fixed number of SELECTs."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from signal_admin.schema import execution
from tests.api.test_graphql_pipelines import error_codes, graphql, user_errors
from tests.api.test_graphql_templates import (
    INSTALL,
    MAPPING,
    create_revision,
    create_template,
)
from tests.factories import Factory, Member
from tests.statements import counted_selects

ATTACHMENT_FIELDS = """
id enabled consentCategories version upgradeAvailable unresolvedParameters
pipeline { id }
template { id }
revision { revisionNumber }
latestRevision { revisionNumber }
"""
ATTACH = f"""
mutation ($input: AttachIntegrationInput!) {{
  attachIntegration(input: $input) {{
    pipelineIntegration {{ {ATTACHMENT_FIELDS} }}
    userErrors {{ field code message }}
  }}
}}
"""
UPDATE = f"""
mutation ($input: UpdatePipelineIntegrationInput!) {{
  updatePipelineIntegration(input: $input) {{
    pipelineIntegration {{ {ATTACHMENT_FIELDS} }}
    userErrors {{ field code message }}
  }}
}}
"""
DETACH = """
mutation ($input: DetachIntegrationInput!) {
  detachIntegration(input: $input) { deletedId userErrors { field code message } }
}
"""
INTEGRATIONS = """
query ($id: ID!) { pipeline(id: $id) { integrations { id } } }
"""
GRAPH = """
query ($first: Int!) {
  pipelines(first: $first) { edges { node {
    id name
    integrations {
      id enabled upgradeAvailable
      template { id name catalogVendor { key } }
      revision { revisionNumber createdBy { id } }
      latestRevision { revisionNumber }
      transformations { name }
    }
  } } }
}
"""
TEMPLATE_ATTACHMENTS = """
query ($id: ID!) {
  integrationTemplate(id: $id) {
    attachments { pipeline { id } revision { revisionNumber } unresolvedParameters }
  }
}
"""


async def attach(
    client: AsyncClient,
    member: Member,
    pipeline_id: str,
    template_id: str,
    **fields: Any,
) -> dict[str, Any]:
    values = {"pipelineId": pipeline_id, "integrationId": template_id, **fields}
    response = await graphql(client, member, ATTACH, {"input": values})
    attached: dict[str, Any] = response.json()["data"]["attachIntegration"]
    return attached


async def template_with_two_revisions(
    client: AsyncClient, member: Member
) -> dict[str, Any]:
    template: dict[str, Any] = (await create_template(client, member))["template"]
    await create_revision(client, member, template["id"])
    return template


async def revision_ids(
    client: AsyncClient, member: Member, template_id: str
) -> list[str]:
    """The template's revision ids, oldest first."""
    response = await client.get(
        f"/v1/admin/integration-templates/{template_id}/revisions",
        headers=member.headers,
    )
    revisions = sorted(response.json()["data"], key=lambda r: r["revision_number"])
    return [revision["id"] for revision in revisions]


async def test_attach_integration_pins_the_latest_revision(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    template = await template_with_two_revisions(client, org.owner)

    attached = await attach(
        client,
        org.owner,
        pipeline["id"],
        template["id"],
        consentCategories=["marketing"],
    )

    integration = attached["pipelineIntegration"]
    assert attached["userErrors"] == []
    assert integration["id"].startswith("pi_")
    assert integration["enabled"] is True
    assert integration["consentCategories"] == ["marketing"]
    assert integration["version"] == 1
    assert integration["pipeline"] == {"id": pipeline["id"]}
    assert integration["template"] == {"id": template["id"]}
    assert integration["revision"] == {"revisionNumber": 2}
    assert integration["latestRevision"] == {"revisionNumber": 2}
    assert integration["upgradeAvailable"] is False
    assert integration["unresolvedParameters"] == []


async def test_update_pipeline_integration_upgrades_to_a_newer_revision(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    template = (await create_template(client, org.owner))["template"]
    attached = (await attach(client, org.owner, pipeline["id"], template["id"]))[
        "pipelineIntegration"
    ]
    await create_revision(client, org.owner, template["id"])
    latest = (await revision_ids(client, org.owner, template["id"]))[-1]

    response = await graphql(
        client,
        org.owner,
        UPDATE,
        {
            "input": {
                "pipelineId": pipeline["id"],
                "id": attached["id"],
                "expectedVersion": 1,
                "revisionId": latest,
            }
        },
    )

    updated = response.json()["data"]["updatePipelineIntegration"]
    assert updated["userErrors"] == []
    assert updated["pipelineIntegration"]["revision"] == {"revisionNumber": 2}
    assert updated["pipelineIntegration"]["upgradeAvailable"] is False
    assert updated["pipelineIntegration"]["version"] == 2


async def test_update_pipeline_integration_rolls_back_to_an_older_revision(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    template = await template_with_two_revisions(client, org.owner)
    attached = (await attach(client, org.owner, pipeline["id"], template["id"]))[
        "pipelineIntegration"
    ]
    first = (await revision_ids(client, org.owner, template["id"]))[0]

    response = await graphql(
        client,
        org.owner,
        UPDATE,
        {
            "input": {
                "pipelineId": pipeline["id"],
                "id": attached["id"],
                "revisionId": first,
                "enabled": False,
            }
        },
    )

    rolled_back = response.json()["data"]["updatePipelineIntegration"]
    integration = rolled_back["pipelineIntegration"]
    assert rolled_back["userErrors"] == []
    assert integration["revision"] == {"revisionNumber": 1}
    assert integration["latestRevision"] == {"revisionNumber": 2}
    assert integration["upgradeAvailable"] is True
    assert integration["enabled"] is False


async def test_a_stale_expected_version_is_a_precondition_failed_user_error(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    template = (await create_template(client, org.owner))["template"]
    attached = (await attach(client, org.owner, pipeline["id"], template["id"]))[
        "pipelineIntegration"
    ]
    target = {"pipelineId": pipeline["id"], "id": attached["id"]}
    await graphql(client, org.owner, UPDATE, {"input": {**target, "enabled": False}})

    response = await graphql(
        client,
        org.owner,
        UPDATE,
        {"input": {**target, "expectedVersion": 1, "enabled": True}},
    )

    assert (
        response.json()["data"]["updatePipelineIntegration"]["pipelineIntegration"]
        is None
    )
    assert user_errors(response, "updatePipelineIntegration") == [
        (None, "PRECONDITION_FAILED")
    ]


async def test_detach_integration_removes_the_attachment(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    template = (await create_template(client, org.owner))["template"]
    attached = (await attach(client, org.owner, pipeline["id"], template["id"]))[
        "pipelineIntegration"
    ]

    response = await graphql(
        client,
        org.owner,
        DETACH,
        {
            "input": {
                "pipelineId": pipeline["id"],
                "id": attached["id"],
                "expectedVersion": 1,
            }
        },
    )

    assert response.json()["data"]["detachIntegration"] == {
        "deletedId": attached["id"],
        "userErrors": [],
    }
    listed = await graphql(client, org.owner, INTEGRATIONS, {"id": pipeline["id"]})
    assert listed.json()["data"]["pipeline"]["integrations"] == []


async def test_attaching_a_template_twice_is_an_already_exists_user_error(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    template = (await create_template(client, org.owner))["template"]
    await attach(client, org.owner, pipeline["id"], template["id"])

    again = await attach(client, org.owner, pipeline["id"], template["id"])

    assert again["pipelineIntegration"] is None
    assert [(e["field"], e["code"]) for e in again["userErrors"]] == [
        (None, "ALREADY_EXISTS")
    ]


async def test_attach_names_each_missing_pipeline_parameter(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner, parameters={"region": "eu"})
    config = {
        "url": "https://{{pipeline_param.api_host}}/{{pipeline_param.region}}",
        "headers": {"X-Key": "{{ pipeline_param.api_key }}"},
        **MAPPING,
    }
    template = (await create_template(client, org.owner, config=config))["template"]

    attached = await attach(client, org.owner, pipeline["id"], template["id"])

    assert attached["pipelineIntegration"] is None
    assert [(e["field"], e["code"]) for e in attached["userErrors"]] == [
        (["parameters", "api_host"], "MISSING"),
        (["parameters", "api_key"], "MISSING"),
    ]


async def test_an_editor_may_not_detach_an_integration(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")
    pipeline = await factory.pipeline(org.owner)
    template = (await create_template(client, org.owner))["template"]
    attached = (await attach(client, editor, pipeline["id"], template["id"]))[
        "pipelineIntegration"
    ]

    response = await graphql(
        client,
        editor,
        DETACH,
        {"input": {"pipelineId": pipeline["id"], "id": attached["id"]}},
    )

    assert error_codes(response) == ["FORBIDDEN"]
    assert response.json()["data"] == {"detachIntegration": None}
    listed = await graphql(client, org.owner, INTEGRATIONS, {"id": pipeline["id"]})
    assert listed.json()["data"]["pipeline"]["integrations"] == [{"id": attached["id"]}]


async def test_another_orgs_pipeline_is_a_not_found_user_error(
    client: AsyncClient, factory: Factory
) -> None:
    ours, theirs = await factory.org(), await factory.org()
    foreign = await factory.pipeline(theirs.owner)
    template = (await create_template(client, ours.owner))["template"]

    attached = await attach(client, ours.owner, foreign["id"], template["id"])

    assert attached["pipelineIntegration"] is None
    assert [(e["field"], e["code"]) for e in attached["userErrors"]] == [
        (None, "NOT_FOUND")
    ]


async def test_a_template_answers_where_it_is_attached(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    config = {"url": "https://{{pipeline_param.host}}/hook", **MAPPING}
    template = (await create_template(client, org.owner, config=config))["template"]
    pipeline = await factory.pipeline(org.owner, parameters={"host": "a.example"})
    await attach(client, org.owner, pipeline["id"], template["id"])
    await client.patch(
        f"/v1/admin/pipelines/{pipeline['id']}",
        json={"parameters": {}},
        headers=org.owner.headers,
    )

    response = await graphql(
        client, org.owner, TEMPLATE_ATTACHMENTS, {"id": template["id"]}
    )

    assert response.json()["data"]["integrationTemplate"]["attachments"] == [
        {
            "pipeline": {"id": pipeline["id"]},
            "revision": {"revisionNumber": 1},
            "unresolvedParameters": ["host"],
        }
    ]


async def test_pipelines_answer_their_integration_graph(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner, name="Shop")
    hook = await template_with_two_revisions(client, org.owner)
    await attach(
        client,
        org.owner,
        pipeline["id"],
        hook["id"],
        revisionId=(await revision_ids(client, org.owner, hook["id"]))[0],
    )
    installed = await graphql(
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
    ga4_id = installed.json()["data"]["installCatalogIntegration"]["template"]["id"]
    await attach(client, org.owner, pipeline["id"], ga4_id, enabled=False)
    await transformation(client, org.owner, "Hook only", hook["id"])
    await transformation(client, org.owner, "All integrations", None)
    await transformation(client, org.owner, "Switched off", None, enabled=False)

    response = await graphql(client, org.owner, GRAPH, {"first": 10})

    (edge,) = response.json()["data"]["pipelines"]["edges"]
    assert edge["node"]["name"] == "Shop"
    assert [
        {**integration, "id": None} for integration in edge["node"]["integrations"]
    ] == [
        {
            "id": None,
            "enabled": True,
            "upgradeAvailable": True,
            "template": {"id": hook["id"], "name": hook["name"], "catalogVendor": None},
            "revision": {"revisionNumber": 1, "createdBy": {"id": org.owner.id}},
            "latestRevision": {"revisionNumber": 2},
            "transformations": [{"name": "All integrations"}, {"name": "Hook only"}],
        },
        {
            "id": None,
            "enabled": False,
            "upgradeAvailable": False,
            "template": {"id": ga4_id, "name": "GA4", "catalogVendor": {"key": "ga4"}},
            "revision": {"revisionNumber": 1, "createdBy": {"id": org.owner.id}},
            "latestRevision": {"revisionNumber": 1},
            "transformations": [{"name": "All integrations"}],
        },
    ]


async def transformation(
    client: AsyncClient,
    member: Member,
    name: str,
    template_id: str | None,
    *,
    enabled: bool = True,
) -> None:
    response = await client.post(
        "/v1/admin/transformations",
        json={
            "name": name,
            "integration_id": template_id,
            "config": {"steps": []},
            "enabled": enabled,
        },
        headers=member.headers,
    )
    assert response.status_code == 201, response.text


async def _org_with_attached_pipelines(
    client: AsyncClient, factory: Factory, count: int
) -> Member:
    """An organisation with `count` pipelines, each with the same three
    templates attached, one of them pinned below its latest revision; each
    template has a transformation of its own, next to an organisation-wide
    one."""
    org = await factory.org()
    templates = [
        (await create_template(client, org.owner))["template"] for _ in range(3)
    ]
    for _ in range(count):
        pipeline = await factory.pipeline(org.owner, name=uuid.uuid4().hex)
        for template in templates:
            response = await client.post(
                f"/v1/admin/pipelines/{pipeline['id']}/integrations",
                json={"integration_id": template["id"]},
                headers=org.owner.headers,
            )
            assert response.status_code == 201, response.text
    await create_revision(client, org.owner, templates[0]["id"])
    for number, template in enumerate(templates):
        await transformation(client, org.owner, f"Own {number}", template["id"])
    await transformation(client, org.owner, "Everywhere", None)
    return org.owner


async def test_the_pipeline_graph_costs_the_same_selects_for_10_and_100_pipelines(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    small = await _org_with_attached_pipelines(client, factory, 10)
    large = await _org_with_attached_pipelines(client, factory, 100)

    with counted_selects(app) as small_selects:
        small_graph = await graphql(client, small, GRAPH, {"first": 100})
    with counted_selects(app) as large_selects:
        large_graph = await graphql(client, large, GRAPH, {"first": 100})

    small_edges = small_graph.json()["data"]["pipelines"]["edges"]
    large_edges = large_graph.json()["data"]["pipelines"]["edges"]
    assert len(small_edges) == 10
    assert len(large_edges) == 100
    assert all(len(edge["node"]["integrations"]) == 3 for edge in large_edges)
    assert (
        sum(
            integration["upgradeAvailable"]
            for edge in large_edges
            for integration in edge["node"]["integrations"]
        )
        == 100
    )
    assert all(
        [item["name"] for item in integration["transformations"]]
        == ["Everywhere", f"Own {number}"]
        for edge in large_edges
        for number, integration in enumerate(edge["node"]["integrations"])
    )
    # The caller, the page of pipelines, their attachments, the attached
    # templates, the pinned revisions, the latest revisions, the pinned
    # revisions' authors and the transformations that apply; catalog vendors
    # come from memory.
    assert len(small_selects) == len(large_selects) == 8


async def test_rollout_revision_moves_every_pin_and_names_strangers(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    headers = org.owner.headers
    template = await client.post(
        "/v1/admin/integration-templates",
        json={"name": "Rolled", "vendor": "webhook"},
        headers=headers,
    )
    template_id = template.json()["template"]["id"]
    pipelines = [await factory.pipeline(org.owner) for _ in range(2)]
    stranger = await factory.pipeline(org.owner)
    for pipeline in pipelines:
        await client.post(
            f"/v1/admin/pipelines/{pipeline['id']}/integrations",
            json={"integration_id": template_id},
            headers=headers,
        )
    revision = await client.post(
        f"/v1/admin/integration-templates/{template_id}/revisions",
        json={"config": {}},
        headers=headers,
    )
    mutation = """
      mutation($input: RolloutRevisionInput!) {
        rolloutRevision(input: $input) {
          pipelineIntegrations { revision { revisionNumber } }
          userErrors { field code }
        }
      }
    """

    refused = await client.post(
        "/v1/admin/graphql",
        json={
            "query": mutation,
            "variables": {
                "input": {
                    "templateId": template_id,
                    "revisionId": revision.json()["id"],
                    "pipelineIds": [stranger["id"]],
                }
            },
        },
        headers=headers,
    )
    moved = await client.post(
        "/v1/admin/graphql",
        json={
            "query": mutation,
            "variables": {
                "input": {
                    "templateId": template_id,
                    "revisionId": revision.json()["id"],
                }
            },
        },
        headers=headers,
    )

    refused_payload = refused.json()["data"]["rolloutRevision"]
    moved_payload = moved.json()["data"]["rolloutRevision"]
    assert refused_payload["pipelineIntegrations"] == []
    assert refused_payload["userErrors"][0]["code"] == "NOT_ATTACHED"
    assert moved_payload["userErrors"] == []
    assert [
        item["revision"]["revisionNumber"]
        for item in moved_payload["pipelineIntegrations"]
    ] == [2, 2]


FAN_OUT = """
query ($id: ID!) {
  integrationTemplate(id: $id) {
    attachments { pipeline { integrations { template {
      %s
      attachments { id }
    } } } }
  }
}
"""


@pytest.mark.parametrize(
    "extra",
    ["", "revisions(first: 1) { edges { node { id } } }"],
    ids=["planned", "not"],
)
async def test_an_answer_past_the_object_limit_is_refused_as_too_complex(
    client: AsyncClient,
    factory: Factory,
    monkeypatch: pytest.MonkeyPatch,
    extra: str,
) -> None:
    # Lists without `first` are estimated at 10 items before a document runs,
    # so real fan-out is counted while it runs. Ten pipelines sharing three
    # templates answer 381 objects here, 471 with the revisions.
    owner = await _org_with_attached_pipelines(client, factory, 10)
    templates = await client.get(
        "/v1/admin/integration-templates", headers=owner.headers
    )
    template_id = templates.json()["data"][0]["id"]
    query = FAN_OUT % extra

    monkeypatch.setattr(execution, "MAX_ANSWER_OBJECTS", 500)
    within = await graphql(client, owner, query, {"id": template_id})
    monkeypatch.setattr(execution, "MAX_ANSWER_OBJECTS", 300)
    past = await graphql(client, owner, query, {"id": template_id})

    assert "errors" not in within.json()
    attachments = within.json()["data"]["integrationTemplate"]["attachments"]
    assert len(attachments) == 10
    assert past.json().get("data") is None
    assert error_codes(past) == ["QUERY_TOO_COMPLEX"]
    assert "more than 300 objects" in past.json()["errors"][0]["message"]
