"""One answer names every problem of an input - the body's own fields, the
connection fields a vendor asks for and the mapping document - through both
faces; and the checks of single fields hold exactly."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient, Response

from tests.api.test_graphql_pipelines import graphql
from tests.factories import Factory, Member, error_code

API = "/v1/admin"
INSTALL_META = f"{API}/integration-catalog/meta_capi/install"
MAPPING = {"defaults": {"action": "pass"}}
META = {"pixel_id": "1234567890", "access_token": "token"}


def _problems(response: Response) -> dict[str, str]:
    return {d["field"]: d["code"] for d in response.json()["error"]["details"]}


async def _template(client: AsyncClient, member: Member) -> dict[str, Any]:
    response = await client.post(
        f"{API}/integration-templates",
        json={"name": "Hook", "vendor": "webhook", "config": MAPPING},
        headers=member.headers,
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


# Every problem at once


async def test_install_names_a_missing_name_with_the_config_problems(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        INSTALL_META, json={"config": {"pixel_id": "abc"}}, headers=org.owner.headers
    )

    assert response.status_code == 400
    assert error_code(response) == "MISSING_FIELD"
    assert _problems(response) == {
        "name": "REQUIRED",
        "config.pixel_id": "INVALID",
        "config.access_token": "REQUIRED",
    }


async def test_install_names_a_mistyped_name_with_the_missing_connection_fields(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        INSTALL_META, json={"name": 5}, headers=org.owner.headers
    )

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    assert _problems(response) == {
        "name": "INVALID",
        "config.pixel_id": "REQUIRED",
        "config.access_token": "REQUIRED",
    }


async def test_install_names_connection_and_mapping_problems_together(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    config = {"pixel_id": "abc", "access_token": "t", "defaults": {"action": "maybe"}}

    response = await client.post(
        INSTALL_META, json={"name": "Meta", "config": config}, headers=org.owner.headers
    )

    assert response.status_code == 422
    assert _problems(response) == {
        "config.pixel_id": "INVALID",
        "config.defaults.action": "INVALID",
    }


async def test_install_names_an_unknown_variant_with_the_other_problems(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        INSTALL_META,
        json={"variant_key": "nope", "config": {"pixel_id": "abc"}},
        headers=org.owner.headers,
    )

    assert response.status_code == 400
    assert _problems(response) == {
        "name": "REQUIRED",
        "variant_key": "INVALID_CHOICE",
        "config.pixel_id": "INVALID",
        "config.access_token": "REQUIRED",
    }


async def test_creating_a_template_names_body_and_mapping_problems_together(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        f"{API}/integration-templates",
        json={"vendor": "BAD", "config": {"events": 5}},
        headers=org.owner.headers,
    )

    assert response.status_code == 400
    assert error_code(response) == "MISSING_FIELD"
    assert _problems(response) == {
        "name": "REQUIRED",
        "vendor": "INVALID_FORMAT",
        "config.events": "INVALID",
    }


async def test_a_new_revision_names_body_and_mapping_problems_together(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    template = (await _template(client, org.owner))["template"]

    response = await client.post(
        f"{API}/integration-templates/{template['id']}/revisions",
        json={"config": {"defaults": {"action": "maybe"}}, "delivery_mode": "fax"},
        headers=org.owner.headers,
    )

    assert response.status_code == 422
    assert _problems(response) == {
        "delivery_mode": "INVALID_CHOICE",
        "config.defaults.action": "INVALID",
    }


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


def _user_errors(response: Response, mutation: str) -> dict[tuple[str, ...], str]:
    payload = response.json()["data"][mutation]
    return {tuple(error["field"]): error["code"] for error in payload["userErrors"]}


async def test_graphql_install_names_every_problem_at_once(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    values = {
        "vendorKey": "meta_capi",
        "config": {"pixel_id": "abc", "access_token": 5, "events": "x"},
    }

    response = await graphql(client, org.owner, INSTALL, {"input": values})

    assert _user_errors(response, "installCatalogIntegration") == {
        ("name",): "REQUIRED",
        ("config", "pixel_id"): "INVALID",
        ("config", "access_token"): "INVALID",
        ("config", "events"): "INVALID",
    }


async def test_graphql_create_names_body_and_mapping_problems_together(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    values = {"vendor": "BAD", "config": {"events": 5}}

    response = await graphql(client, org.owner, CREATE, {"input": values})

    assert _user_errors(response, "createIntegrationTemplate") == {
        ("name",): "REQUIRED",
        ("vendor",): "INVALID_FORMAT",
        ("config", "events"): "INVALID",
    }


# Patterns match whole values


@pytest.mark.parametrize("pixel_id", ["1234567890\n", "x1234567890", "1234567890 "])
async def test_a_connection_field_must_match_its_pattern_in_full(
    client: AsyncClient, factory: Factory, pixel_id: str
) -> None:
    org = await factory.org()

    response = await client.post(
        INSTALL_META,
        json={"name": "Meta", "config": {**META, "pixel_id": pixel_id}},
        headers=org.owner.headers,
    )

    assert response.status_code == 422
    assert _problems(response) == {"config.pixel_id": "INVALID"}


async def test_graphql_install_refuses_a_pattern_matched_only_before_a_newline(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    values = {
        "vendorKey": "meta_capi",
        "name": "Meta",
        "config": {**META, "pixel_id": "1234567890\n"},
    }

    response = await graphql(client, org.owner, INSTALL, {"input": values})

    assert _user_errors(response, "installCatalogIntegration") == {
        ("config", "pixel_id"): "INVALID"
    }


async def test_a_url_field_must_be_a_url_in_full(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        f"{API}/integration-catalog/webhook/install",
        json={"name": "Hook", "config": {"url": "https://example.com/hook\n"}},
        headers=org.owner.headers,
    )

    assert response.status_code == 422
    assert "config.url" in _problems(response)


# Attachments


UPDATE = """
mutation ($input: UpdatePipelineIntegrationInput!) {
  updatePipelineIntegration(input: $input) {
    pipelineIntegration { id }
    userErrors { field code }
  }
}
"""
ATTACH = """
mutation ($input: AttachIntegrationInput!) {
  attachIntegration(input: $input) {
    pipelineIntegration { consentCategories }
    userErrors { field code }
  }
}
"""


async def _attachment(
    client: AsyncClient, factory: Factory
) -> tuple[Member, dict[str, Any]]:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    template = (await _template(client, org.owner))["template"]
    response = await client.post(
        f"{API}/pipelines/{pipeline['id']}/integrations",
        json={"integration_id": template["id"]},
        headers=org.owner.headers,
    )
    assert response.status_code == 201, response.text
    attachment: dict[str, Any] = response.json()
    return org.owner, attachment


@pytest.mark.parametrize("revision_id", ["", None])
async def test_patching_an_attachment_with_an_empty_revision_id_is_refused(
    client: AsyncClient, factory: Factory, revision_id: str | None
) -> None:
    owner, attachment = await _attachment(client, factory)
    url = f"{API}/pipelines/{attachment['pipeline_id']}/integrations/{attachment['id']}"

    response = await client.patch(
        url, json={"revision_id": revision_id}, headers=owner.headers
    )
    after = await client.get(url, headers=owner.headers)

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    assert list(_problems(response)) == ["revision_id"]
    assert after.json()["version"] == attachment["version"]


async def test_graphql_update_with_an_empty_revision_id_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    owner, attachment = await _attachment(client, factory)
    values = {
        "pipelineId": attachment["pipeline_id"],
        "id": attachment["id"],
        "revisionId": "",
    }

    response = await graphql(client, owner, UPDATE, {"input": values})

    assert _user_errors(response, "updatePipelineIntegration") == {
        ("revisionId",): "TOO_SHORT"
    }


async def test_repeated_consent_categories_are_refused_at_each_repeat(
    client: AsyncClient, factory: Factory
) -> None:
    owner, attachment = await _attachment(client, factory)
    url = f"{API}/pipelines/{attachment['pipeline_id']}/integrations/{attachment['id']}"

    response = await client.patch(
        url,
        json={"consent_categories": ["a", "a", " b ", "b"]},
        headers=owner.headers,
    )

    assert response.status_code == 422
    assert _problems(response) == {
        "consent_categories.1": "DUPLICATE",
        "consent_categories.3": "DUPLICATE",
    }


async def test_graphql_attach_refuses_repeated_consent_categories(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    template = (await _template(client, org.owner))["template"]
    values = {
        "pipelineId": pipeline["id"],
        "integrationId": template["id"],
        "consentCategories": ["ads", " ads"],
    }

    response = await graphql(client, org.owner, ATTACH, {"input": values})

    assert _user_errors(response, "attachIntegration") == {
        ("consentCategories", "1"): "DUPLICATE"
    }


async def test_distinct_consent_categories_are_stored_trimmed(
    client: AsyncClient, factory: Factory
) -> None:
    owner, attachment = await _attachment(client, factory)
    url = f"{API}/pipelines/{attachment['pipeline_id']}/integrations/{attachment['id']}"

    response = await client.patch(
        url, json={"consent_categories": [" ads ", "analytics"]}, headers=owner.headers
    )

    assert response.status_code == 200
    assert response.json()["consent_categories"] == ["ads", "analytics"]
