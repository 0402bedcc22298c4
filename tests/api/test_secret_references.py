"""`{"$secret": "<id>"}` references in revision configs are the service's own.

A client cannot write one, on either face, anywhere in a config. And should a
stored document ever name a secret it does not own, deleting its template or
keeping its value with `"***"` still reaches only the revision's own secrets,
never another organisation's or a pipeline's.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select, update

from signal_admin.persistence.models import IntegrationRevision, Pipeline
from tests.api.test_graphql_pipelines import graphql
from tests.factories import Factory, Member, error_code
from tests.helpers import stored_secrets

TEMPLATES = "/v1/admin/integration-templates"
MAPPING = {"defaults": {"action": "pass"}}
FORGED = {"$secret": "sec_01J9Z3FORGEDFORGEDFORGED0"}
CREATE_TEMPLATE = """
mutation ($input: CreateIntegrationTemplateInput!) {
  createIntegrationTemplate(input: $input) {
    template { id }
    userErrors { field code }
  }
}
"""
CREATE_REVISION = """
mutation ($input: CreateIntegrationRevisionInput!) {
  createIntegrationRevision(input: $input) {
    revision { id }
    userErrors { field code }
  }
}
"""


async def _template(client: AsyncClient, member: Member) -> dict[str, Any]:
    response = await client.post(
        TEMPLATES,
        json={
            "name": "Signed hook",
            "vendor": "webhook",
            "secret_fields": ["signing_secret"],
            "config": {"signing_secret": "s3cr3t-of-the-org", **MAPPING},
        },
        headers=member.headers,
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _problems(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(item["field"], item["code"]) for item in body["error"]["details"]]


async def _store_config(app: FastAPI, revision_id: str, **fields: Any) -> None:
    """Put values into a stored revision config behind the API's back, as a
    document written before references were checked could hold them."""
    async with app.state.services.db.transaction() as session:
        config = await session.scalar(
            select(IntegrationRevision.config).where(
                IntegrationRevision.id == revision_id
            )
        )
        await session.execute(
            update(IntegrationRevision)
            .where(IntegrationRevision.id == revision_id)
            .values(config={**(config or {}), **fields})
        )


async def _key_secret_id(app: FastAPI, pipeline_id: str) -> str:
    async with app.state.services.db.read() as session:
        secret_id = await session.scalar(
            select(Pipeline.key_secret_id).where(Pipeline.id == pipeline_id)
        )
    assert secret_id is not None
    return secret_id


async def test_a_new_template_may_not_hold_a_secret_reference_anywhere(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        TEMPLATES,
        json={
            "name": "Forged",
            "vendor": "webhook",
            "secret_fields": ["signing_secret"],
            "config": {
                "url": FORGED,
                "signing_secret": FORGED,
                "headers": [{"name": "x-key", "value": FORGED}],
                **MAPPING,
            },
        },
        headers=org.owner.headers,
    )
    listed = await client.get(TEMPLATES, headers=org.owner.headers)

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    assert _problems(response.json()) == [
        ("config.url", "RESERVED_KEY"),
        ("config.signing_secret", "RESERVED_KEY"),
        ("config.headers.0.value", "RESERVED_KEY"),
    ]
    assert listed.json()["data"] == []


async def test_a_new_revision_may_not_hold_a_secret_reference(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    template_id = (await _template(client, org.owner))["template"]["id"]

    response = await client.post(
        f"{TEMPLATES}/{template_id}/revisions",
        json={"config": {"signing_secret": "***", "api": {"token": FORGED}}},
        headers=org.owner.headers,
    )
    template = await client.get(f"{TEMPLATES}/{template_id}", headers=org.owner.headers)

    assert response.status_code == 422
    assert _problems(response.json()) == [("config.api.token", "RESERVED_KEY")]
    assert template.json()["latest_revision"] == 1


async def test_an_install_may_not_hold_a_secret_reference(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        "/v1/admin/integration-catalog/ga4/install",
        json={
            "name": "GA4",
            "config": {"measurement_id": "G-ABC123", "api_secret": "s", "x": FORGED},
        },
        headers=org.owner.headers,
    )

    assert response.status_code == 422
    assert ("config.x", "RESERVED_KEY") in _problems(response.json())


async def test_graphql_refuses_secret_references_as_user_errors(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    template_id = (await _template(client, org.owner))["template"]["id"]

    created = await graphql(
        client,
        org.owner,
        CREATE_TEMPLATE,
        {
            "input": {
                "name": "Forged",
                "vendor": "webhook",
                "config": {"url": FORGED, **MAPPING},
            }
        },
    )
    revised = await graphql(
        client,
        org.owner,
        CREATE_REVISION,
        {"input": {"templateId": template_id, "config": {"a": [[FORGED]]}}},
    )

    assert created.json()["data"]["createIntegrationTemplate"] == {
        "template": None,
        "userErrors": [{"field": ["config", "url"], "code": "RESERVED_KEY"}],
    }
    assert revised.json()["data"]["createIntegrationRevision"] == {
        "revision": None,
        "userErrors": [{"field": ["config", "a", "0", "0"], "code": "RESERVED_KEY"}],
    }


async def test_deleting_a_template_drops_only_its_own_revisions_secrets(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    victim = await factory.org()
    victim_template = await _template(client, victim.owner)
    (victim_secret,) = await stored_secrets(app, victim.id)
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    key_secret_id = await _key_secret_id(app, pipeline["id"])
    created = await _template(client, org.owner)
    await _store_config(
        app,
        created["revision"]["id"],
        url={"$secret": victim_secret.id},
        signing_secret={"$secret": key_secret_id},
    )

    deleted = await client.delete(
        f"{TEMPLATES}/{created['template']['id']}", headers=org.owner.headers
    )
    kept = await client.post(
        f"{TEMPLATES}/{victim_template['template']['id']}/revisions",
        json={"config": {"signing_secret": "***", **MAPPING}},
        headers=victim.owner.headers,
    )

    assert deleted.status_code == 204
    assert victim_secret.id in {row.id for row in await stored_secrets(app, victim.id)}
    assert {row.id for row in await stored_secrets(app, org.id)} == {key_secret_id}
    assert kept.status_code == 201


async def test_three_stars_never_copy_a_secret_the_revision_does_not_own(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    victim = await factory.org()
    await _template(client, victim.owner)
    (victim_secret,) = await stored_secrets(app, victim.id)
    org = await factory.org()
    created = await _template(client, org.owner)
    await _store_config(
        app, created["revision"]["id"], signing_secret={"$secret": victim_secret.id}
    )

    response = await client.post(
        f"{TEMPLATES}/{created['template']['id']}/revisions",
        json={"config": {"signing_secret": "***", **MAPPING}},
        headers=org.owner.headers,
    )

    assert response.status_code == 422
    assert _problems(response.json()) == [
        ("config.signing_secret", "NO_PREVIOUS_VALUE")
    ]
