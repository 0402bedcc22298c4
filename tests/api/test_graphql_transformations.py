"""Transformations through GraphQL: the same rules as REST, problems as
userErrors with paths into the step document, and test runs."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient

from tests.factories import Factory, Member
from tests.helpers import client_of, dedicated_app
from tests.org_fixtures import graphql

STEPS = {"steps": [{"type": "enrich", "fields": {"params.source": "signal"}}]}
FIELDS = "id name description integrationId config enabled version createdBy { id }"
CREATE = f"""
mutation ($input: CreateTransformationInput!) {{
  createTransformation(input: $input) {{
    transformation {{ {FIELDS} }}
    userErrors {{ field code message }}
  }}
}}
"""
UPDATE = f"""
mutation ($input: UpdateTransformationInput!) {{
  updateTransformation(input: $input) {{
    transformation {{ {FIELDS} }}
    userErrors {{ field code }}
  }}
}}
"""
DELETE = """
mutation ($input: DeleteTransformationInput!) {
  deleteTransformation(input: $input) { deletedId userErrors { field code } }
}
"""
TEST = """
mutation ($input: TestTransformationInput!) {
  testTransformation(input: $input) {
    results {
      output dropped error { code }
      steps { index type status durationMs error { code message } }
    }
    userErrors { field code }
  }
}
"""
LIST = """
query ($filter: TransformationFilter) {
  transformations(first: 10, filter: $filter) {
    totalCount edges { node { name integration { id } } }
  }
}
"""


async def _create(client: AsyncClient, member: Member, **values: Any) -> dict[str, Any]:
    response = await graphql(
        client, member, CREATE, {"input": {"name": "T", "config": STEPS, **values}}
    )
    payload: dict[str, Any] = response.json()["data"]["createTransformation"]
    return payload


async def _template_id(client: AsyncClient, member: Member) -> str:
    response = await client.post(
        "/v1/admin/integration-templates",
        json={"name": "Hooks", "vendor": "webhook", "config": {}},
        headers=member.headers,
    )
    template_id: str = response.json()["template"]["id"]
    return template_id


async def test_create_answers_the_transformation_as_rest_reads_it(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    template_id = await _template_id(client, org.owner)

    payload = await _create(client, org.owner, integrationId=template_id)

    assert payload["userErrors"] == []
    created = payload["transformation"]
    assert created["integrationId"] == template_id
    assert created["config"] == STEPS
    assert created["enabled"] is True
    assert created["version"] == 1
    assert created["createdBy"] == {"id": org.owner.id}
    rest = await client.get(
        f"/v1/admin/transformations/{created['id']}", headers=org.owner.headers
    )
    assert rest.json()["integration_id"] == template_id


async def test_problems_in_the_steps_are_user_errors_with_their_paths(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    config = {"steps": [{"type": "filter", "condition": "event.a = "}]}

    payload = await _create(client, org.owner, config=config)

    assert payload["transformation"] is None
    (error,) = payload["userErrors"]
    assert error["field"] == ["config", "steps", "0", "condition"]
    assert error["code"] == "INVALID_EXPRESSION"
    listed = await graphql(client, org.owner, LIST)
    assert listed.json()["data"]["transformations"]["totalCount"] == 0


async def test_update_checks_the_expected_version(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = (await _create(client, org.owner))["transformation"]

    stale = await graphql(
        client,
        org.owner,
        UPDATE,
        {"input": {"id": created["id"], "name": "Late", "expectedVersion": 9}},
    )
    fresh = await graphql(
        client,
        org.owner,
        UPDATE,
        {"input": {"id": created["id"], "name": "Now", "expectedVersion": 1}},
    )

    assert stale.json()["data"]["updateTransformation"]["userErrors"] == [
        {"field": None, "code": "PRECONDITION_FAILED"}
    ]
    updated = fresh.json()["data"]["updateTransformation"]["transformation"]
    assert (updated["name"], updated["version"]) == ("Now", 2)


async def test_delete_answers_the_deleted_id(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = (await _create(client, org.owner))["transformation"]

    response = await graphql(
        client, org.owner, DELETE, {"input": {"id": created["id"]}}
    )

    assert response.json()["data"]["deleteTransformation"] == {
        "deletedId": created["id"],
        "userErrors": [],
    }


async def test_test_runs_an_unsaved_document(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    config = {
        "steps": [
            {"type": "compute", "fields": {"cents": "event.value * 100"}},
            {"type": "filter", "condition": "event.cents > 500"},
        ]
    }

    response = await graphql(
        client,
        org.owner,
        TEST,
        {"input": {"config": config, "events": [{"value": 12}, {"value": 2}]}},
    )

    payload = response.json()["data"]["testTransformation"]
    assert payload["userErrors"] == []
    kept, dropped = payload["results"]
    assert kept["output"] == {"value": 12, "cents": 1200}
    assert [step["status"] for step in kept["steps"]] == ["OK", "OK"]
    assert dropped["output"] is None
    assert dropped["dropped"] is True
    assert dropped["steps"][1]["status"] == "DROPPED"


async def test_test_runs_a_saved_transformation(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = (await _create(client, org.owner))["transformation"]

    response = await graphql(
        client,
        org.owner,
        TEST,
        {"input": {"id": created["id"], "event": {"params": {"value": 1}}}},
    )

    (result,) = response.json()["data"]["testTransformation"]["results"]
    assert result["output"] == {"params": {"value": 1, "source": "signal"}}


async def test_a_test_with_an_id_takes_no_config(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = (await _create(client, org.owner))["transformation"]

    response = await graphql(
        client,
        org.owner,
        TEST,
        {"input": {"id": created["id"], "config": STEPS, "event": {}}},
    )

    payload = response.json()["data"]["testTransformation"]
    assert payload["results"] is None
    assert payload["userErrors"][0]["field"] == ["config"]


async def test_list_filters_by_integration(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    template_id = await _template_id(client, org.owner)
    await _create(client, org.owner, name="Own", integrationId=template_id)
    await _create(client, org.owner, name="Everywhere")

    response = await graphql(
        client, org.owner, LIST, {"filter": {"integrationId": template_id}}
    )

    connection = response.json()["data"]["transformations"]
    assert connection["totalCount"] == 1
    assert connection["edges"] == [
        {"node": {"name": "Own", "integration": {"id": template_id}}}
    ]


async def test_viewers_may_not_create(client: AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    viewer = await factory.member(org, "viewer")

    response = await graphql(
        client, viewer, CREATE, {"input": {"name": "V", "config": STEPS}}
    )

    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_the_mutations_of_one_document_share_one_time_budget(
    migrated_database: str, redis_url: str | None
) -> None:
    looping = {
        "steps": [{"type": "code", "source": "function process(e) { for (;;) {} }"}]
    }
    document = """
    mutation ($slow: TestTransformationInput!, $next: TestTransformationInput!) {
      first: testTransformation(input: $slow) { results { error { code } } }
      second: testTransformation(input: $next) {
        results { error { code } steps { index } }
      }
    }
    """
    variables = {
        "slow": {"config": looping, "events": [{"n": n} for n in range(20)]},
        "next": {"config": STEPS, "events": [{"n": 1}, {"n": 2}]},
    }

    async with (
        dedicated_app(migrated_database, redis_url, dry_run_budget_seconds=0.3) as app,
        client_of(app) as client,
    ):
        org = await Factory(app, client).org()
        response = await graphql(client, org.owner, document, variables)

    data = response.json()["data"]
    assert {"code": "TIMEOUT"} in [r["error"] for r in data["first"]["results"]]
    assert data["second"]["results"] == [
        {"error": {"code": "TIMEOUT"}, "steps": []},
        {"error": {"code": "TIMEOUT"}, "steps": []},
    ]
