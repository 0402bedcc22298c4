"""The audit log over GraphQL: the auditLogs connection with its filters, the
actor through the user loader, top-level errors for refusals and bad
arguments, the metadata a GraphQL change records, and a SQL statement count
that does not grow with the page."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response

from tests.api.test_audit_logs import (
    create_pipeline,
    entries_around_a_day,
    history,
    rename_pipeline,
)
from tests.api.test_graphql_pipelines import error_codes, graphql
from tests.factories import Factory, Member
from tests.helpers import TIMESTAMP, audit_entries, client_of, dedicated_app
from tests.statements import counted_selects

GRAPHQL = "/v1/admin/graphql"
NODE = """
  id action resourceType resourceId changes metadata ipAddress userAgent
  requestId timestamp actor { id email name role }
"""
PAGE = f"""
query ($first: Int, $after: String, $filter: AuditLogFilter) {{
  auditLogs(first: $first, after: $after, filter: $filter) {{
    edges {{ cursor node {{ {NODE} }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}
"""
COUNTED = """
query ($first: Int, $filter: AuditLogFilter) {
  auditLogs(first: $first, filter: $filter) { edges { node { id } } totalCount }
}
"""
CREATE_PIPELINE = """
mutation ($input: CreatePipelineInput!) {
  createPipeline(input: $input) { pipeline { id } userErrors { code } }
}
"""


async def read_log(
    client: AsyncClient,
    member: Member,
    filter: dict[str, Any] | None = None,
    first: int | None = None,
    after: str | None = None,
) -> Response:
    variables = {"filter": filter, "first": first, "after": after}
    return await graphql(client, member, PAGE, variables)


def nodes_of(response: Response) -> list[dict[str, Any]]:
    body = response.json()
    assert "errors" not in body, body
    return [edge["node"] for edge in body["data"]["auditLogs"]["edges"]]


def actions_of(response: Response) -> list[str]:
    return [node["action"] for node in nodes_of(response)]


def refusal_of(response: Response) -> tuple[list[str], Any]:
    body = response.json()
    return error_codes(response), body.get("data")


async def create_by_graphql(
    client: AsyncClient, member: Member, headers: dict[str, str] | None = None
) -> Response:
    response = await client.post(
        GRAPHQL,
        json={
            "query": CREATE_PIPELINE,
            "variables": {"input": {"name": "From GraphQL", "type": "WEB"}},
        },
        headers={**member.headers, **(headers or {})},
    )
    assert response.json()["data"]["createPipeline"]["userErrors"] == []
    return response


# The entry


async def test_an_entry_answers_every_field_and_its_actor(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await create_pipeline(client, org.owner, **{"User-Agent": "audit/2.0"})
    pipeline = created.json()

    response = await read_log(client, org.owner, {"resourceId": pipeline["id"]})

    (node,) = nodes_of(response)
    assert node["id"].startswith("log_")
    assert node["action"] == "pipeline.created"
    assert (node["resourceType"], node["resourceId"]) == ("pipeline", pipeline["id"])
    assert node["changes"]["name"] == {"old": None, "new": pipeline["name"]}
    assert node["metadata"] == {}
    assert node["ipAddress"] == "127.0.0.1"
    assert node["userAgent"] == "audit/2.0"
    assert node["requestId"] == created.headers["X-Request-ID"]
    assert TIMESTAMP.match(node["timestamp"])
    assert node["actor"] == {
        "id": org.owner.id,
        "email": org.owner.email,
        "name": org.owner.email.split("@")[0],
        "role": "OWNER",
    }


async def test_the_actor_is_null_for_a_change_no_user_made(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await read_log(client, org.owner, {"action": "user.created"})

    (node,) = nodes_of(response)
    assert node["resourceId"] == org.owner.id
    assert node["actor"] is None


async def test_the_actor_of_a_failed_login_is_the_user_who_failed(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    await client.post(
        "/v1/admin/auth/login",
        json={"email": org.owner.email, "password": "not the password at all"},
    )

    response = await read_log(client, org.owner, {"action": "auth.login_failed"})

    (node,) = nodes_of(response)
    assert node["actor"]["id"] == org.owner.id
    assert node["metadata"] == {"locked": False}


async def test_a_deleted_user_stays_the_actor_of_their_entries(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org, "admin")
    created = await create_pipeline(client, admin)
    await client.delete(f"/v1/admin/users/{admin.id}", headers=org.owner.headers)

    response = await read_log(client, org.owner, {"resourceId": created.json()["id"]})

    (node,) = nodes_of(response)
    assert (node["actor"]["id"], node["actor"]["email"]) == (admin.id, admin.email)


# Order and pages


async def test_pages_run_newest_first_and_ignore_entries_written_while_paging(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    before = [(await create_pipeline(client, org.owner)).json()["id"] for _ in "abc"]
    by_type = {"resourceType": "pipeline"}

    first = await read_log(client, org.owner, by_type, first=2)
    await create_pipeline(client, org.owner)
    end_cursor = first.json()["data"]["auditLogs"]["pageInfo"]["endCursor"]
    second = await read_log(client, org.owner, by_type, first=2, after=end_cursor)

    seen = [node["resourceId"] for page in (first, second) for node in nodes_of(page)]
    assert seen == before[::-1]
    infos = [page.json()["data"]["auditLogs"]["pageInfo"] for page in (first, second)]
    assert [info["hasNextPage"] for info in infos] == [True, False]
    edges = first.json()["data"]["auditLogs"]["edges"]
    assert infos[0]["endCursor"] == edges[-1]["cursor"]


async def test_total_count_counts_every_matching_entry(
    client: AsyncClient, factory: Factory
) -> None:
    world = await history(client, factory)

    response = await graphql(
        client,
        world.org.owner,
        COUNTED,
        {"first": 1, "filter": {"action": "pipeline.*"}},
    )

    connection = response.json()["data"]["auditLogs"]
    assert len(connection["edges"]) == 1
    assert connection["totalCount"] == 3


# Filters


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ({"action": "pipeline.updated"}, ["pipeline.updated"]),
        (
            {"action": "pipeline.*"},
            ["pipeline.created", "pipeline.updated", "pipeline.created"],
        ),
        ({"action": "pipeline_integration.*"}, ["pipeline_integration.created"]),
        ({"resourceType": "integration_template"}, ["integration_template.created"]),
        ({"action": "auth.*", "resourceType": "user"}, ["auth.login", "auth.login"]),
        ({"action": None, "resourceType": None}, None),
    ],
)
async def test_action_and_resource_type_filters(
    client: AsyncClient,
    factory: Factory,
    filter: dict[str, Any],
    expected: list[str] | None,
) -> None:
    world = await history(client, factory)
    unfiltered = actions_of(await read_log(client, world.org.owner))

    response = await read_log(client, world.org.owner, filter)

    # Null conditions are no conditions.
    assert actions_of(response) == (unfiltered if expected is None else expected)


async def test_resource_id_and_user_id_filters(
    client: AsyncClient, factory: Factory
) -> None:
    world = await history(client, factory)
    owner = world.org.owner

    by_resource = await read_log(client, owner, {"resourceId": world.first_pipeline})
    by_user = await read_log(client, owner, {"userId": world.admin.id})
    together = await read_log(
        client,
        owner,
        {
            "action": "pipeline.*",
            "userId": owner.id,
            "resourceId": world.first_pipeline,
        },
    )
    apart = await read_log(
        client,
        owner,
        {"userId": world.admin.id, "resourceId": world.first_pipeline},
    )

    assert actions_of(by_resource) == ["pipeline.updated", "pipeline.created"]
    assert actions_of(by_user) == ["pipeline.created", "auth.login"]
    assert {node["actor"]["id"] for node in nodes_of(by_user)} == {world.admin.id}
    assert actions_of(together) == ["pipeline.updated", "pipeline.created"]
    assert nodes_of(apart) == []


@pytest.mark.parametrize(
    ("bounds", "expected"),
    [
        ({"from": "{date}T12:00:00.000Z"}, ["next day", "last millisecond", "noon"]),
        ({"to": "{date}T12:00:00Z"}, ["noon", "midnight", "day before"]),
        ({"from": "{date}", "to": "{date}"}, ["last millisecond", "noon", "midnight"]),
        ({"from": "{date}T12:00:00", "to": "{date}T13:00:00+01:00"}, ["noon"]),
    ],
)
async def test_time_bounds(
    app: FastAPI,
    client: AsyncClient,
    factory: Factory,
    bounds: dict[str, str],
    expected: list[str],
) -> None:
    org = await factory.org()
    day = await entries_around_a_day(app, org.id)
    conditions = {name: value.format(date=day.date) for name, value in bounds.items()}

    response = await read_log(
        client, org.owner, {"action": "pipeline.updated", **conditions}
    )

    assert [node["id"] for node in nodes_of(response)] == [
        day.ids[name] for name in expected
    ]


# Refusals


@pytest.mark.parametrize(
    ("filter", "named"),
    [
        ({"action": "pipeline*"}, "action"),
        ({"action": "Pipeline.created"}, "action"),
        ({"resourceType": "Pipeline"}, "resourceType"),
        ({"resourceId": ""}, "resourceId"),
        ({"userId": "usr_" + "0" * 61}, "userId"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01"}, "to"),
        ({"from": "2026-02-26", "to": "2026-02-25"}, "to"),
    ],
)
async def test_a_filter_that_does_not_fit_is_a_top_level_validation_error(
    client: AsyncClient, factory: Factory, filter: dict[str, Any], named: str
) -> None:
    org = await factory.org()

    response = await read_log(client, org.owner, filter)

    assert refusal_of(response) == (["VALIDATION_ERROR"], None)
    assert f"{named}:" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        ({"first": 0}, "VALIDATION_ERROR"),
        ({"first": 101}, "VALIDATION_ERROR"),
        ({"after": "not a cursor!"}, "INVALID_CURSOR"),
    ],
)
async def test_a_page_size_or_cursor_that_does_not_fit_is_a_top_level_error(
    client: AsyncClient, factory: Factory, arguments: dict[str, Any], code: str
) -> None:
    org = await factory.org()

    response = await read_log(client, org.owner, **arguments)

    assert refusal_of(response) == ([code], None)


@pytest.mark.parametrize("role", ["editor", "viewer"])
async def test_editors_and_viewers_are_refused_whatever_they_ask(
    client: AsyncClient, factory: Factory, role: str
) -> None:
    org = await factory.org()
    member = await factory.member(org, role)

    plain = await read_log(client, member)
    malformed = await read_log(client, member, {"action": "*"}, first=0, after="!")

    for response in (plain, malformed):
        assert refusal_of(response) == (["FORBIDDEN"], None)
        assert "read the audit log" in response.json()["errors"][0]["message"]


async def test_an_admin_reads_the_log(client: AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    admin = await factory.member(org, "admin")

    response = await read_log(client, admin, {"userId": admin.id})

    assert actions_of(response) == ["auth.login"]


async def test_another_organisations_entries_never_appear(
    client: AsyncClient, factory: Factory
) -> None:
    ours, theirs = await history(client, factory), await history(client, factory)
    their_ids = {
        node["id"] for node in nodes_of(await read_log(client, theirs.org.owner))
    }

    everything = await graphql(client, ours.org.owner, COUNTED, {"first": 100})
    by_their_pipeline = await read_log(
        client, ours.org.owner, {"resourceId": theirs.first_pipeline}
    )
    by_their_admin = await read_log(client, ours.org.owner, {"userId": theirs.admin.id})

    connection = everything.json()["data"]["auditLogs"]
    ours_seen = {edge["node"]["id"] for edge in connection["edges"]}
    assert their_ids
    assert not ours_seen & their_ids
    assert connection["totalCount"] == len(ours_seen)
    assert nodes_of(by_their_pipeline) == []
    assert nodes_of(by_their_admin) == []


# Where a change came from


async def test_a_graphql_change_records_the_request_id_agent_and_address(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await create_by_graphql(
        client,
        org.owner,
        {"User-Agent": "ui/3.1", "X-Forwarded-For": "203.0.113.7"},
    )
    pipeline_id = created.json()["data"]["createPipeline"]["pipeline"]["id"]

    response = await read_log(client, org.owner, {"resourceId": pipeline_id})

    (node,) = nodes_of(response)
    assert node["action"] == "pipeline.created"
    assert node["requestId"] == created.headers["X-Request-ID"]
    assert node["userAgent"] == "ui/3.1"
    # No proxy is trusted, so the header is not believed.
    assert node["ipAddress"] == "127.0.0.1"


@pytest.mark.parametrize(
    ("peer", "recorded"),
    [("10.1.2.3", "198.51.100.4"), ("192.0.2.50", "192.0.2.50")],
)
async def test_a_graphql_change_believes_x_forwarded_for_only_from_a_trusted_proxy(
    migrated_database: str,
    redis_url: str | None,
    client: AsyncClient,
    factory: Factory,
    peer: str,
    recorded: str,
) -> None:
    org = await factory.org()
    async with (
        dedicated_app(
            migrated_database, redis_url, trusted_proxies=["10.0.0.0/8"]
        ) as app,
        client_of(app, address=peer) as http,
    ):
        created = await create_by_graphql(
            http, org.owner, {"X-Forwarded-For": "198.51.100.4"}
        )
    pipeline_id = created.json()["data"]["createPipeline"]["pipeline"]["id"]

    response = await read_log(client, org.owner, {"resourceId": pipeline_id})

    (node,) = nodes_of(response)
    assert node["ipAddress"] == recorded


async def test_reading_the_log_writes_nothing_to_it(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    before = await audit_entries(app, org.id)

    await read_log(client, org.owner)
    await read_log(client, org.owner, {"action": "*"})

    assert len(await audit_entries(app, org.id)) == len(before)


# Cost


async def test_a_page_with_actors_costs_three_selects_whatever_its_size(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    small, large = await factory.org(), await factory.org()
    await create_pipeline(client, small.owner)
    members = [await factory.member(large, role) for role in ("admin", "editor")]
    for author in (large.owner, members[0], members[1]):
        for _ in range(4):
            pipeline = (await create_pipeline(client, author)).json()["id"]
            await rename_pipeline(client, author, pipeline)

    with counted_selects(app) as small_selects:
        small_page = await read_log(client, small.owner, first=100)
    with counted_selects(app) as large_selects:
        large_page = await read_log(client, large.owner, first=100)
    with counted_selects(app) as with_count:
        await graphql(client, large.owner, COUNTED, {"first": 100})

    small_actors = {n["actor"]["id"] for n in nodes_of(small_page) if n["actor"]}
    large_actors = {n["actor"]["id"] for n in nodes_of(large_page) if n["actor"]}
    assert len(nodes_of(small_page)) == 3
    assert len(nodes_of(large_page)) == 30
    assert small_actors == {small.owner.id}
    assert large_actors == {large.owner.id, *(member.id for member in members)}
    # The caller, the page, and the actors in one batch.
    assert len(small_selects) == len(large_selects) == 3
    # totalCount adds its COUNT, and only when selected.
    assert len(with_count) == 3
