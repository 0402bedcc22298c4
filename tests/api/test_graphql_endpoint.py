"""The GraphQL endpoint over HTTP: methods, media types, status codes, the
limits checked before a document runs, rate limiting and cost."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from graphql import get_introspection_query
from httpx import ASGITransport, AsyncClient, Response

from signal_admin.app import create_app
from signal_admin.resolvers import pipelines
from tests.conftest import make_settings
from tests.factories import PASSWORD, Factory, Member
from tests.statements import executed_statements

GRAPHQL = "/v1/admin/graphql"
GRAPHQL_RESPONSE = "application/graphql-response+json"
CREATE = """
  {alias}: createPipeline(input: {{name: "{name}", type: WEB}}) {{
    pipeline {{ id }}
  }}
"""
PAGE = "{ pipelines { edges { node { id } } } }"


def error_codes(response: Response) -> list[str]:
    return [error["extensions"]["code"] for error in response.json()["errors"]]


def padded(tokens: int) -> str:
    """A document of `tokens` tokens: `{ __typename }` and comment lines."""
    return "{ __typename }\n" + "# padding\n" * (tokens - 3)


def nested(depth: int) -> str:
    """A document whose fields nest `depth` deep. No field of the schema nests
    that deep, so one within the limit goes on to fail validation."""
    return "{ me { " + "a { " * (depth - 2) + "id" + " }" * (depth - 1) + " }"


def aliased(count: int) -> str:
    return "{ " + " ".join(f"a{index}: __typename" for index in range(count)) + " }"


def costing(nodes: int) -> str:
    """A document that costs exactly `nodes` (202 or more): `pipelines` and
    `edges` once, `node` and as many `id`s as fit for each of 100 edges, and
    the top-level `__typename`s once each."""
    per_edge = (nodes - 2) // 100 - 1
    top = nodes - (2 + 100 * (1 + per_edge))
    assert per_edge >= 1
    assert top >= 0
    ids = " id" * per_edge
    return (
        f"{{ pipelines(first: 100) {{ edges {{ node {{{ids} }} }} }}"
        + " __typename" * top
        + " }"
    )


def nested_object(depth: int) -> dict[str, Any]:
    """A JSON object whose objects nest `depth` deep: `{}` is 1."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def creations(count: int) -> str:
    fields = "".join(
        CREATE.format(alias=f"p{index}", name=f"Site {index}") for index in range(count)
    )
    return f"mutation {{ {fields} }}"


async def post(
    client: AsyncClient, query: str, member: Member | None = None, **headers: str
) -> Response:
    if member is not None:
        headers["Authorization"] = f"Bearer {member.access_token}"
    return await client.post(GRAPHQL, json={"query": query}, headers=headers)


async def test_a_query_over_get_runs(client: AsyncClient, factory: Factory) -> None:
    org = await factory.org()

    response = await client.get(
        GRAPHQL, params={"query": "{ me { id } }"}, headers=org.owner.headers
    )

    assert response.status_code == 200
    assert response.json()["data"] == {"me": {"id": org.owner.id}}


async def test_a_mutation_over_get_is_refused_with_405(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.get(
        GRAPHQL, params={"query": creations(1)}, headers=org.owner.headers
    )

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert error_codes(response) == ["METHOD_NOT_ALLOWED"]


async def test_answers_are_graphql_responses_by_default(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await post(client, "{ me { id } }", org.owner)

    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)


async def test_a_syntax_error_answers_400_by_default(client: AsyncClient) -> None:
    response = await post(client, "{ me { id }")

    assert response.status_code == 400
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert error_codes(response) == ["GRAPHQL_PARSE_FAILED"]


async def test_a_syntax_error_answers_200_under_application_json(
    client: AsyncClient,
) -> None:
    response = await post(client, "{ me { id }", Accept="application/json")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert error_codes(response) == ["GRAPHQL_PARSE_FAILED"]


async def test_a_document_that_does_not_validate_answers_400(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await post(client, "{ me { shoeSize } }", org.owner)

    assert response.status_code == 400
    assert error_codes(response) == ["GRAPHQL_VALIDATION_FAILED"]
    assert response.json()["errors"][0]["locations"] == [{"line": 1, "column": 8}]


async def test_variables_that_do_not_fit_answer_400(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        GRAPHQL,
        json={
            "query": "query ($id: ID!) { pipeline(id: $id) { id } }",
            "variables": {"id": None},
        },
        headers=org.owner.headers,
    )

    assert response.status_code == 400
    assert error_codes(response) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_a_body_that_is_not_json_answers_415(client: AsyncClient) -> None:
    response = await client.post(
        GRAPHQL, content="{ __typename }", headers={"Content-Type": "text/plain"}
    )

    assert response.status_code == 415
    assert error_codes(response) == ["UNSUPPORTED_MEDIA_TYPE"]


async def test_a_body_that_does_not_parse_answers_400(client: AsyncClient) -> None:
    response = await client.post(
        GRAPHQL,
        content='{"query": ',
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )

    assert response.status_code == 400
    assert error_codes(response) == ["INVALID_JSON"]


async def test_a_body_without_a_query_answers_400(client: AsyncClient) -> None:
    response = await client.post(
        GRAPHQL, json={"variables": {}}, headers={"Accept": "application/json"}
    )

    assert response.status_code == 400
    assert error_codes(response) == ["BAD_REQUEST"]


async def test_a_batch_is_refused(client: AsyncClient) -> None:
    response = await client.post(
        GRAPHQL, json=[{"query": "{ __typename }"}, {"query": "{ __typename }"}]
    )

    assert response.status_code == 400
    assert error_codes(response) == ["BAD_REQUEST"]


async def test_other_methods_answer_405(client: AsyncClient) -> None:
    response = await client.delete(GRAPHQL)

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


async def test_ten_mutation_fields_run(client: AsyncClient, factory: Factory) -> None:
    org = await factory.org()

    response = await post(client, creations(10), org.owner)

    assert "errors" not in response.json()
    assert len(response.json()["data"]) == 10


async def test_the_eleventh_mutation_field_refuses_the_document(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await post(client, creations(11), org.owner)

    assert response.status_code == 400
    assert error_codes(response) == ["TOO_MANY_MUTATIONS"]
    listed = await post(client, PAGE, org.owner)
    assert listed.json()["data"]["pipelines"]["edges"] == []


async def test_two_logins_in_one_document_are_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org(sign_in=False)
    login = (
        '{alias}: login(input: {{email: "{email}", password: "{password}"}}) '
        "{{ userErrors {{ code }} }}"
    )
    fields = [
        login.format(alias=alias, email=org.owner.email, password=PASSWORD)
        for alias in ("first", "second")
    ]

    response = await post(client, f"mutation {{ {' '.join(fields)} }}")

    assert error_codes(response) == ["TOO_MANY_MUTATIONS"]


async def test_a_document_of_several_operations_needs_an_operation_name(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    document = "query A { __typename } query B { me { id } }"

    response = await post(client, document, org.owner)

    assert response.status_code == 400
    assert error_codes(response) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_the_named_operation_runs(client: AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    document = "query A { __typename } query B { me { id } }"

    response = await client.post(
        GRAPHQL,
        json={"query": document, "operationName": "B"},
        headers=org.owner.headers,
    )

    assert response.json()["data"] == {"me": {"id": org.owner.id}}


async def test_every_answer_carries_its_cost(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    query = (
        "{ pipelines(first: 5) { edges { node { id name } } "
        "pageInfo { hasNextPage } } }"
    )

    response = await post(client, query, org.owner)

    # pipelines, edges, pageInfo, hasNextPage, and node, id, name for 5 edges.
    assert response.json()["extensions"] == {"cost": 4 + 3 * 5}


async def test_a_connection_without_first_counts_its_default_page(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await post(client, "{ pipelines { edges { node { id } } } }", org.owner)

    # pipelines, edges, and node and id for the default page of 50.
    assert response.json()["extensions"] == {"cost": 2 + 2 * 50}


async def test_a_list_without_first_counts_as_ten(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    document = (
        'mutation { createPipeline(input: {name: "Shop", type: WEB}) '
        "{ pipeline { id } userErrors { code } } }"
    )

    response = await post(client, document, org.owner)

    # createPipeline, pipeline, id, userErrors, and code for 10 user errors.
    assert response.json()["extensions"] == {"cost": 4 + 10}


async def test_graphiql_is_served_to_browsers_in_development(
    client: AsyncClient,
) -> None:
    response = await client.get(GRAPHQL, headers={"Accept": "text/html"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


@pytest.fixture
async def limited_app(
    database_url: str, redis_url: str | None
) -> AsyncIterator[FastAPI]:
    application = create_app(
        make_settings(database_url, redis_url, rate_limit_per_minute=3)
    )
    async with LifespanManager(application):
        yield application


async def test_a_caller_over_the_rate_limit_gets_429(
    limited_app: FastAPI, factory: Factory
) -> None:
    org = await factory.org()
    transport = ASGITransport(app=limited_app)
    async with AsyncClient(transport=transport, base_url="http://testserver") as http:
        for _ in range(3):
            await post(http, "{ me { id } }", org.owner)

        response = await post(http, "{ me { id } }", org.owner)

    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert error_codes(response) == ["RATE_LIMITED"]
    assert response.json()["errors"][0]["message"].startswith("Rate limit exceeded.")


async def test_each_mutation_field_is_charged(
    limited_app: FastAPI, factory: Factory
) -> None:
    org = await factory.org()
    transport = ASGITransport(app=limited_app)
    async with AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await post(http, creations(4), org.owner)

    assert response.status_code == 429
    assert error_codes(response) == ["RATE_LIMITED"]


async def test_an_unexpected_error_is_masked(
    client: AsyncClient, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = await factory.org()

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("connection to db-7.internal refused")

    monkeypatch.setattr(pipelines, "list_pipelines", broken)

    response = await post(client, PAGE, org.owner)

    assert response.status_code == 200
    assert error_codes(response) == ["INTERNAL_ERROR"]
    assert "db-7" not in response.text


async def test_graphiql_is_not_served_in_production(
    database_url: str, redis_url: str | None
) -> None:
    settings = make_settings(database_url, redis_url, signal_env="production")
    application = create_app(settings)

    async with LifespanManager(application):
        transport = ASGITransport(app=application)
        async with AsyncClient(transport=transport, base_url="http://test") as http:
            response = await http.get(GRAPHQL, headers={"Accept": "text/html"})

    assert response.status_code == 400
    assert error_codes(response) == ["BAD_REQUEST"]


async def test_a_document_of_5000_tokens_runs(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await post(client, padded(5000), org.owner)

    assert response.json()["data"] == {"__typename": "Query"}


async def test_a_document_of_5001_tokens_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await post(client, padded(5001), org.owner)

    assert response.status_code == 400
    assert error_codes(response) == ["QUERY_TOO_LARGE"]


async def test_a_huge_document_is_refused_while_it_is_parsed(
    client: AsyncClient,
) -> None:
    document = "{" + " __typename" * 90_000 + " }"

    response = await post(client, document)

    assert response.status_code == 400
    assert error_codes(response) == ["QUERY_TOO_LARGE"]


async def test_a_refused_document_answers_200_under_application_json(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await post(client, padded(5001), org.owner, Accept="application/json")

    assert response.status_code == 200
    assert error_codes(response) == ["QUERY_TOO_LARGE"]


async def test_a_document_nested_12_deep_passes_the_depth_limit(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await post(client, nested(12), org.owner)

    assert error_codes(response) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_a_document_nested_13_deep_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await post(client, nested(13), org.owner)

    assert response.status_code == 400
    assert error_codes(response) == ["QUERY_TOO_DEEP"]


async def test_depth_counts_the_fields_of_fragments(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    document = (
        "{ me { ...Outer } } "
        "fragment Outer on User { a { a { a { ...Inner } } } } "
        "fragment Inner on User { a { a { a { a { a { a { a { a { id } } } } } } } } }"
    )

    response = await post(client, document, org.owner)

    assert error_codes(response) == ["QUERY_TOO_DEEP"]


async def test_the_standard_introspection_query_runs(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await post(client, get_introspection_query(descriptions=True), org.owner)

    assert "errors" not in response.json()
    assert response.json()["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_introspection_may_not_walk_the_schema_over_and_over(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    document = (
        "{ __schema { types { fields { type { fields { type { fields { name } } } } "
        "} } } }"
    )

    response = await post(client, document, org.owner)

    assert response.status_code == 400
    assert "Maximum introspection depth exceeded" in [
        error["message"] for error in response.json()["errors"]
    ]


async def test_a_document_of_30_aliases_runs(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await post(client, aliased(30), org.owner)

    assert len(response.json()["data"]) == 30


async def test_a_document_of_31_aliases_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await post(client, aliased(31), org.owner)

    assert response.status_code == 400
    assert error_codes(response) == ["TOO_MANY_ALIASES"]


async def test_a_document_of_50000_nodes_runs(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await post(client, costing(50_000), org.owner)

    assert "errors" not in response.json()
    assert response.json()["extensions"] == {"cost": 50_000}


async def test_a_document_of_50001_nodes_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await post(client, costing(50_001), org.owner)

    assert response.status_code == 400
    assert error_codes(response) == ["QUERY_TOO_COMPLEX"]
    assert response.json()["extensions"] == {"cost": 50_001}


async def test_fragments_spread_many_times_are_counted_quickly(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    doubling = " ".join(
        f"fragment F{index} on Query {{ ...F{index + 1} ...F{index + 1} }}"
        for index in range(40)
    )
    document = f"{{ ...F0 }} {doubling} fragment F40 on Query {{ me {{ id }} }}"

    response = await post(client, document, org.owner)

    assert error_codes(response) == ["QUERY_TOO_COMPLEX"]
    assert response.json()["extensions"] == {"cost": 2 * 2**40}


@pytest.mark.parametrize(
    "document",
    [padded(5001), nested(13), aliased(31), costing(50_001)],
    ids=["tokens", "depth", "aliases", "nodes"],
)
async def test_a_document_over_a_limit_runs_no_sql_beyond_authentication(
    app: FastAPI, client: AsyncClient, factory: Factory, document: str
) -> None:
    org = await factory.org()
    with executed_statements(app) as authentication:
        await post(client, "{ __typename }", org.owner)

    with executed_statements(app) as statements:
        response = await post(client, document, org.owner)

    assert response.status_code == 400
    assert len(statements) == len(authentication)


async def test_variables_nested_32_deep_are_accepted(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    # variables, input and config are three levels; the config's objects 29.
    pipeline = {"name": "Deep", "type": "WEB", "config": {"a": nested_object(29)}}
    document = (
        "mutation ($input: CreatePipelineInput!) "
        "{ createPipeline(input: $input) { userErrors { code } } }"
    )

    response = await client.post(
        GRAPHQL,
        json={"query": document, "variables": {"input": pipeline}},
        headers=org.owner.headers,
    )

    assert response.json()["data"] == {"createPipeline": {"userErrors": []}}


async def test_variables_nested_33_deep_are_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = {"name": "Deep", "type": "WEB", "config": {"a": nested_object(30)}}
    document = (
        "mutation ($input: CreatePipelineInput!) "
        "{ createPipeline(input: $input) { userErrors { code } } }"
    )

    response = await client.post(
        GRAPHQL,
        json={"query": document, "variables": {"input": pipeline}},
        headers=org.owner.headers,
    )

    assert response.status_code == 400
    assert error_codes(response) == ["BAD_REQUEST"]


async def test_variables_nested_990_deep_are_refused_with_400(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    deep = '{"a": ' * 990 + "{}" + "}" * 990
    body = '{"query": "{ __typename }", "variables": {"x": ' + deep + "}}"

    response = await client.post(
        GRAPHQL,
        content=body,
        headers={**org.owner.headers, "Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert error_codes(response) == ["BAD_REQUEST"]


async def test_a_document_that_does_not_parse_is_charged(
    client: AsyncClient,
) -> None:
    response = await post(client, "{ me { id }")

    assert response.status_code == 400
    assert "x-ratelimit-limit" in response.headers
    assert "x-ratelimit-remaining" in response.headers


async def test_a_caller_over_the_rate_limit_cannot_have_a_document_parsed(
    limited_app: FastAPI, factory: Factory
) -> None:
    org = await factory.org()
    transport = ASGITransport(app=limited_app)
    async with AsyncClient(transport=transport, base_url="http://testserver") as http:
        for _ in range(3):
            await post(http, "{ me { id } }", org.owner)

        response = await post(http, "{ me { id }", org.owner)

    assert response.status_code == 429
    assert error_codes(response) == ["RATE_LIMITED"]


CREATE_TEMPLATE = """
mutation ($input: CreateIntegrationTemplateInput!) {
  createIntegrationTemplate(input: $input) { userErrors { code } }
}
"""
SECRET = "sk_live_never_echoed_0123456789"


@pytest.mark.parametrize(
    "variables",
    [
        {"input": {"name": "T", "vendor": "webhook", "config": {}, "x": SECRET}},
        {"input": {"name": "T", "vendor": "webhook", "description": [SECRET]}},
        {"input": SECRET},
    ],
    ids=["unknown field", "wrong type", "not an object"],
)
async def test_a_refused_variable_is_located_but_never_quoted(
    client: AsyncClient, factory: Factory, variables: dict[str, Any]
) -> None:
    org = await factory.org()

    response = await client.post(
        GRAPHQL,
        json={"query": CREATE_TEMPLATE, "variables": variables},
        headers=org.owner.headers,
    )

    messages = [error["message"] for error in response.json()["errors"]]
    assert messages
    assert all(m.startswith("Variable '$input'") for m in messages)
    assert SECRET not in response.text
    assert "(value not shown)" in response.text


async def test_a_refused_literal_is_located_but_never_quoted(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    document = (
        'mutation { createIntegrationTemplate(input: {name: "T", vendor: "webhook",'
        f' config: {{api_secret: "{SECRET}"}}, description: ["{SECRET}"]}})'
        " { userErrors { code } } }"
    )

    response = await client.post(
        GRAPHQL, json={"query": document}, headers=org.owner.headers
    )

    assert error_codes(response) == ["GRAPHQL_VALIDATION_FAILED"]
    assert SECRET not in response.text
    assert "String cannot represent a non string value" in response.text
