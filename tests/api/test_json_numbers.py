"""NaN, Infinity and numbers beyond a double's range are not JSON: bodies
that hold them are refused as invalid JSON on both faces, and nothing is
written, where they used to be stored and then fail every answer."""

from __future__ import annotations

import pytest
from httpx import AsyncClient

from tests.factories import Factory, error_code

NOT_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e400", "-2.5E+999"]


@pytest.mark.parametrize("number", NOT_NUMBERS)
async def test_a_rest_body_with_a_non_json_number_is_invalid_json(
    client: AsyncClient, factory: Factory, number: str
) -> None:
    org = await factory.org()
    body = '{"name": "Hooks", "vendor": "webhook", "config": {"x": NUMBER}}'.replace(
        "NUMBER", number
    )

    response = await client.post(
        "/v1/admin/integration-templates",
        content=body,
        headers={**org.owner.headers, "Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert error_code(response) == "INVALID_JSON"
    listed = await client.get(
        "/v1/admin/integration-templates", headers=org.owner.headers
    )
    assert listed.json()["data"] == []


async def test_the_words_inside_texts_are_plain_text(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    body = '{"name": "NaN Infinity 1e400", "vendor": "webhook", "config": {}}'

    response = await client.post(
        "/v1/admin/integration-templates",
        content=body,
        headers={**org.owner.headers, "Content-Type": "application/json"},
    )

    assert response.status_code == 201
    assert response.json()["template"]["name"] == "NaN Infinity 1e400"


@pytest.mark.parametrize("number", NOT_NUMBERS)
async def test_graphql_variables_with_a_non_json_number_are_invalid_json(
    client: AsyncClient, factory: Factory, number: str
) -> None:
    org = await factory.org()
    body = (
        '{"query": "mutation ($i: CreatePipelineInput!) { createPipeline(input: $i)'
        ' { userErrors { code } } }", "variables": {"i": {"name": "P", "type": "WEB",'
        ' "config": {"a": NUMBER}}}}'
    ).replace("NUMBER", number)

    response = await client.post(
        "/v1/admin/graphql",
        content=body,
        headers={**org.owner.headers, "Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "INVALID_JSON"


@pytest.mark.parametrize("number", [".nan", ".inf", "-.Inf", "1.0e+400"])
async def test_yaml_with_a_non_json_number_is_refused(
    client: AsyncClient, factory: Factory, number: str
) -> None:
    org = await factory.org()

    response = await client.post(
        "/v1/admin/transformations/test",
        content=f"config: {{steps: []}}\nevent: {{a: {number}}}\n",
        headers={**org.owner.headers, "Content-Type": "application/yaml"},
    )

    assert response.status_code == 400
    assert error_code(response) == "BAD_REQUEST"


@pytest.mark.parametrize("literal", ["1e400", "-1e999", "[1, {b: 1e400}]"])
async def test_graphql_json_literals_beyond_a_double_are_refused(
    client: AsyncClient, factory: Factory, literal: str
) -> None:
    org = await factory.org()
    query = (
        "mutation { testTransformation(input: {config: {steps: []}, event: "
        f"{{a: {literal}}}}}) {{ results {{ output }} }} }}"
    )

    response = await client.post(
        "/v1/admin/graphql", json={"query": query}, headers=org.owner.headers
    )

    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert "beyond the range of JSON" in error["message"]
