"""Pipelines over GraphQL: create, read, list, change, delete and rotate keys,
with userErrors, permissions and org isolation."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response

from tests.factories import Factory, Member
from tests.statements import executed_statements, selects

GRAPHQL = "/v1/admin/graphql"
PIPELINE_SECRET = re.compile(r"^sk_[0-9A-Za-z]{40}$")
PIPELINE_FIELDS = """
  id name slug type pipelineKey pipelineKeySecretPrefix domainAllowlist labels
  rateLimitRps parameters config challengeTokenRequired previousKeyExpiresAt
  enabled version createdAt updatedAt
  jsBuilderConfig {
    scriptFilename globalVariable deliveryMethod endpoint batchSize flushIntervalMs
  }
  identityConfig { crossDomainEnabled crossDomainDomains }
"""
CREATE = f"""
mutation ($input: CreatePipelineInput!) {{
  createPipeline(input: $input) {{
    pipeline {{ {PIPELINE_FIELDS} }}
    pipelineKeySecret
    userErrors {{ field code message }}
  }}
}}
"""
UPDATE = """
mutation ($input: UpdatePipelineInput!) {
  updatePipeline(input: $input) {
    pipeline { id name version }
    userErrors { field code message }
  }
}
"""
DELETE = """
mutation ($input: DeletePipelineInput!) {
  deletePipeline(input: $input) { deletedPipelineId userErrors { code } }
}
"""
ROTATE = """
mutation ($input: RotatePipelineKeyInput!) {
  rotatePipelineKey(input: $input) {
    pipeline { id pipelineKey pipelineKeySecretPrefix version }
    pipelineKeySecret
    userErrors { code }
  }
}
"""
PIPELINE = f"query ($id: ID!) {{ pipeline(id: $id) {{ {PIPELINE_FIELDS} }} }}"
PAGE = """
query ($first: Int, $after: String, $filter: PipelineFilter) {
  pipelines(first: $first, after: $after, filter: $filter) {
    edges { cursor node { id name } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
COUNTED = """
query ($first: Int, $filter: PipelineFilter) {
  pipelines(first: $first, filter: $filter) { edges { node { id } } totalCount }
}
"""
UNCOUNTED = """
query ($first: Int) { pipelines(first: $first) { edges { node { id } } } }
"""


async def graphql(
    client: AsyncClient,
    member: Member,
    query: str,
    variables: dict[str, Any] | None = None,
) -> Response:
    return await client.post(
        GRAPHQL, json={"query": query, "variables": variables}, headers=member.headers
    )


def error_codes(response: Response) -> list[str]:
    return [error["extensions"]["code"] for error in response.json()["errors"]]


async def create(client: AsyncClient, member: Member, **fields: Any) -> dict[str, Any]:
    values = {"name": f"Site {uuid.uuid4().hex[:8]}", "type": "WEB", **fields}
    response = await graphql(client, member, CREATE, {"input": values})
    created: dict[str, Any] = response.json()["data"]["createPipeline"]
    assert created["userErrors"] == [], created
    return created


def user_errors(response: Response, mutation: str) -> list[tuple[Any, str]]:
    errors = response.json()["data"][mutation]["userErrors"]
    return [(error["field"], error["code"]) for error in errors]


async def test_create_pipeline_answers_the_pipeline_and_its_secret(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    created = await create(client, org.owner, name="Shop", labels=["env:prod"])

    pipeline = created["pipeline"]
    assert PIPELINE_SECRET.match(created["pipelineKeySecret"])
    assert created["pipelineKeySecret"].startswith(pipeline["pipelineKeySecretPrefix"])
    assert pipeline["name"] == "Shop"
    assert pipeline["slug"] == "shop"
    assert pipeline["type"] == "WEB"
    assert pipeline["labels"] == ["env:prod"]
    assert pipeline["version"] == 1
    assert pipeline["jsBuilderConfig"]["deliveryMethod"] == "CDN"
    assert pipeline["identityConfig"] == {
        "crossDomainEnabled": False,
        "crossDomainDomains": [],
    }


async def test_a_created_pipeline_reads_back_without_its_secret(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await create(client, org.owner, name="Shop")

    one = await graphql(client, org.owner, PIPELINE, {"id": created["pipeline"]["id"]})
    page = await graphql(client, org.owner, PAGE)

    assert one.json()["data"]["pipeline"] == created["pipeline"]
    nodes = [edge["node"] for edge in page.json()["data"]["pipelines"]["edges"]]
    assert nodes == [{"id": created["pipeline"]["id"], "name": "Shop"}]
    assert created["pipelineKeySecret"] not in one.text + page.text


async def test_create_pipeline_reports_a_missing_name_as_a_user_error(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await graphql(client, org.owner, CREATE, {"input": {"type": "APP"}})

    assert response.json()["data"]["createPipeline"]["pipeline"] is None
    assert user_errors(response, "createPipeline") == [(["name"], "REQUIRED")]


async def test_create_pipeline_reports_every_problem_at_once(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    fields = {"name": "x" * 201, "type": None, "jsBuilderConfig": {"batchSize": 0}}

    response = await graphql(client, org.owner, CREATE, {"input": fields})

    assert sorted(user_errors(response, "createPipeline")) == [
        (["jsBuilderConfig", "batchSize"], "OUT_OF_RANGE"),
        (["name"], "TOO_LONG"),
        (["type"], "INVALID_CHOICE"),
    ]


async def test_create_pipeline_reports_a_taken_name(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    await create(client, org.owner, name="Shop")

    response = await graphql(
        client, org.owner, CREATE, {"input": {"name": "Shop", "type": "WEB"}}
    )

    assert user_errors(response, "createPipeline") == [(None, "ALREADY_EXISTS")]


async def test_a_viewer_may_not_create_a_pipeline(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    viewer = await factory.member(org, "viewer")

    response = await graphql(
        client, viewer, CREATE, {"input": {"name": "Shop", "type": "WEB"}}
    )

    assert error_codes(response) == ["FORBIDDEN"]
    assert response.json()["data"] == {"createPipeline": None}
    listed = await graphql(client, org.owner, PAGE)
    assert listed.json()["data"]["pipelines"]["edges"] == []


async def test_update_pipeline_replaces_the_named_fields(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await create(client, org.owner, name="Shop")
    pipeline_id = created["pipeline"]["id"]

    response = await graphql(
        client,
        org.owner,
        UPDATE,
        {"input": {"id": pipeline_id, "name": "Store", "expectedVersion": 1}},
    )

    assert response.json()["data"]["updatePipeline"] == {
        "pipeline": {"id": pipeline_id, "name": "Store", "version": 2},
        "userErrors": [],
    }


async def test_update_pipeline_with_a_stale_version_is_a_user_error(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await create(client, org.owner)
    pipeline_id = created["pipeline"]["id"]
    await graphql(
        client, org.owner, UPDATE, {"input": {"id": pipeline_id, "name": "A"}}
    )

    response = await graphql(
        client,
        org.owner,
        UPDATE,
        {"input": {"id": pipeline_id, "name": "B", "expectedVersion": 1}},
    )

    assert response.json()["data"]["updatePipeline"]["pipeline"] is None
    assert user_errors(response, "updatePipeline") == [(None, "PRECONDITION_FAILED")]


async def test_an_editor_may_not_delete_a_pipeline(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")
    created = await create(client, org.owner)

    response = await graphql(
        client, editor, DELETE, {"input": {"id": created["pipeline"]["id"]}}
    )

    assert error_codes(response) == ["FORBIDDEN"]
    assert response.json()["data"] == {"deletePipeline": None}


async def test_an_admin_deletes_a_pipeline(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org, "admin")
    pipeline_id = (await create(client, org.owner))["pipeline"]["id"]

    response = await graphql(client, admin, DELETE, {"input": {"id": pipeline_id}})

    assert response.json()["data"]["deletePipeline"] == {
        "deletedPipelineId": pipeline_id,
        "userErrors": [],
    }
    after = await graphql(client, admin, PIPELINE, {"id": pipeline_id})
    assert after.json()["data"] == {"pipeline": None}


async def test_rotate_pipeline_key_answers_a_new_key_and_secret(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await create(client, org.owner)
    pipeline = created["pipeline"]

    response = await graphql(
        client, org.owner, ROTATE, {"input": {"id": pipeline["id"]}}
    )

    rotated = response.json()["data"]["rotatePipelineKey"]
    assert rotated["userErrors"] == []
    assert rotated["pipeline"]["pipelineKey"] != pipeline["pipelineKey"]
    assert PIPELINE_SECRET.match(rotated["pipelineKeySecret"])
    assert rotated["pipelineKeySecret"] != created["pipelineKeySecret"]
    assert rotated["pipelineKeySecret"].startswith(
        rotated["pipeline"]["pipelineKeySecretPrefix"]
    )


async def test_pipelines_are_paged_with_first_and_after(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    names = ["One", "Two", "Three"]
    for name in names:
        await create(client, org.owner, name=name)

    first = await graphql(client, org.owner, PAGE, {"first": 2})
    page = first.json()["data"]["pipelines"]
    second = await graphql(
        client, org.owner, PAGE, {"first": 2, "after": page["pageInfo"]["endCursor"]}
    )

    rest = second.json()["data"]["pipelines"]
    assert [edge["node"]["name"] for edge in page["edges"]] == ["One", "Two"]
    assert page["pageInfo"] == {
        "hasNextPage": True,
        "endCursor": page["edges"][-1]["cursor"],
    }
    assert [edge["node"]["name"] for edge in rest["edges"]] == ["Three"]
    assert rest["pageInfo"]["hasNextPage"] is False


async def test_pipelines_are_filtered(client: AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    await create(client, org.owner, name="Web shop", labels=["env:prod"])
    await create(client, org.owner, name="Web blog")
    await graphql(client, org.owner, CREATE, {"input": {"name": "App", "type": "APP"}})

    response = await graphql(
        client, org.owner, PAGE, {"filter": {"type": "WEB", "labels": ["env:prod"]}}
    )

    edges = response.json()["data"]["pipelines"]["edges"]
    assert [edge["node"]["name"] for edge in edges] == ["Web shop"]


@pytest.mark.parametrize("first", [0, 101])
async def test_a_page_size_out_of_range_is_refused(
    client: AsyncClient, factory: Factory, first: int
) -> None:
    org = await factory.org()

    response = await graphql(client, org.owner, PAGE, {"first": first})

    assert error_codes(response) == ["VALIDATION_ERROR"]
    assert response.json()["data"] is None


async def test_another_orgs_pipeline_reads_as_null(
    client: AsyncClient, factory: Factory
) -> None:
    ours = await factory.org()
    theirs = await factory.org()
    their_pipeline = await create(client, theirs.owner)

    response = await graphql(
        client, ours.owner, PIPELINE, {"id": their_pipeline["pipeline"]["id"]}
    )

    assert response.json()["data"] == {"pipeline": None}


async def test_total_count_counts_every_page(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    for _ in range(3):
        await create(client, org.owner)

    response = await graphql(client, org.owner, COUNTED, {"first": 1})

    pipelines = response.json()["data"]["pipelines"]
    assert len(pipelines["edges"]) == 1
    assert pipelines["totalCount"] == 3


async def test_total_count_follows_the_filter(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    await create(client, org.owner, labels=["env:prod"])
    await create(client, org.owner, labels=["env:prod"])
    await create(client, org.owner)

    response = await graphql(
        client, org.owner, COUNTED, {"first": 1, "filter": {"labels": ["env:prod"]}}
    )

    assert response.json()["data"]["pipelines"]["totalCount"] == 2


async def test_a_page_without_total_count_runs_no_count(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    await create(client, org.owner)

    with executed_statements(app) as statements:
        await graphql(client, org.owner, UNCOUNTED, {"first": 1})

    assert not [text for text in statements if "count(" in text.lower()]


async def test_total_count_costs_one_more_select(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    await create(client, org.owner)
    with executed_statements(app) as uncounted:
        await graphql(client, org.owner, UNCOUNTED, {"first": 1})

    with executed_statements(app) as counted:
        await graphql(client, org.owner, COUNTED, {"first": 1})

    assert len(selects(counted)) == len(selects(uncounted)) + 1
