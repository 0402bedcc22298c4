"""What the data plane reads: the `data_plane_*` views over the
configuration the API writes, the secrets it can decrypt with the documented
format alone, and the announcements of each change on
`signal:config:{org_id}`."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import FastAPI
from httpx import AsyncClient
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from signal_admin.live.bus import Feed, Listener, Message
from tests.api.test_audit_atomicity import audit_refused
from tests.factories import Factory, Member

API = "/v1/admin"
VIEWS = (
    "data_plane_pipelines",
    "data_plane_integrations",
    "data_plane_transformations",
    "data_plane_data_layers",
    "data_plane_secrets",
)
MAPPING = {"defaults": {"action": "pass"}}


async def rows_of(app: FastAPI, view: str, org_id: str) -> list[dict[str, Any]]:
    async with app.state.services.db.read() as session:
        result = await session.execute(
            text(f"SELECT * FROM {view} WHERE org_id = :org_id"),
            {"org_id": org_id},
        )
        return [dict(row) for row in result.mappings()]


def document(value: Any) -> Any:
    """A JSON column as the data plane's driver hands it over: PostgreSQL
    decodes JSONB, SQLite gives the text."""
    return json.loads(value) if isinstance(value, str) else value


async def post(
    client: AsyncClient, member: Member, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(f"{API}{path}", json=body, headers=member.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_the_views_show_the_configuration_the_api_wrote(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    other = await factory.org()
    await factory.pipeline(other.owner)
    pipeline = await factory.pipeline(
        org.owner, domain_allowlist=["shop.example.com"], rate_limit_rps=50
    )
    rotated = await client.post(
        f"{API}/pipelines/{pipeline['id']}/rotate-key",
        json={"grace_seconds": 600},
        headers=org.owner.headers,
    )
    ga4 = await post(
        client,
        org.owner,
        "/integration-catalog/ga4/install",
        {
            "name": "GA4",
            "config": {"measurement_id": "G-ABC123", "api_secret": "s3cret"},
        },
    )
    hooks = await post(
        client,
        org.owner,
        "/integration-templates",
        {"name": "Hooks", "vendor": "webhook", "config": MAPPING},
    )
    enabled = await post(
        client,
        org.owner,
        f"/pipelines/{pipeline['id']}/integrations",
        {"integration_id": ga4["template"]["id"], "consent_categories": ["analytics"]},
    )
    await post(
        client,
        org.owner,
        f"/pipelines/{pipeline['id']}/integrations",
        {"integration_id": hooks["template"]["id"], "enabled": False},
    )
    steps = {"steps": [{"type": "enrich", "fields": {"site": "shop"}}]}
    running = await post(
        client, org.owner, "/transformations", {"name": "On", "config": steps}
    )
    await post(
        client,
        org.owner,
        "/transformations",
        {"name": "Off", "config": steps, "enabled": False},
    )
    data_layer = await client.put(
        f"{API}/data-layer",
        json={"config": {"pii_rules": {"hash_fields": ["traits.email"]}}},
        headers=org.owner.headers,
    )
    assert data_layer.status_code == 200

    (seen,) = await rows_of(app, "data_plane_pipelines", org.id)
    integrations = await rows_of(app, "data_plane_integrations", org.id)
    transformations = await rows_of(app, "data_plane_transformations", org.id)
    (layer,) = await rows_of(app, "data_plane_data_layers", org.id)

    assert seen["id"] == pipeline["id"]
    assert seen["pipeline_key"] == rotated.json()["pipeline_key"]
    assert seen["previous_pipeline_key"] == pipeline["pipeline_key"]
    assert seen["previous_key_expires_at"] is not None
    assert document(seen["domain_allowlist"]) == ["shop.example.com"]
    assert seen["rate_limit_rps"] == 50
    # Only the enabled attachment, with its pinned revision's config.
    (integration,) = integrations
    assert integration["id"] == enabled["id"]
    assert integration["vendor"] == "ga4"
    assert integration["revision_id"] == ga4["revision"]["id"]
    assert integration["revision_number"] == 1
    assert integration["template_version"] == 1
    assert document(integration["consent_categories"]) == ["analytics"]
    config = document(integration["config"])
    assert config["measurement_id"] == "G-ABC123"
    assert set(config["api_secret"]) == {"$secret"}
    assert [each["id"] for each in transformations] == [running["id"]]
    assert document(layer["config"])["pii_rules"]["hash_fields"] == ["traits.email"]


async def test_a_secret_decrypts_with_the_documented_format_alone(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    ga4 = await post(
        client,
        org.owner,
        "/integration-catalog/ga4/install",
        {
            "name": "GA4",
            "config": {"measurement_id": "G-ABC123", "api_secret": "s3cret"},
        },
    )
    await post(
        client,
        org.owner,
        f"/pipelines/{pipeline['id']}/integrations",
        {"integration_id": ga4["template"]["id"]},
    )

    (integration,) = await rows_of(app, "data_plane_integrations", org.id)
    secret_id = document(integration["config"])["api_secret"]["$secret"]
    secrets = {
        row["id"]: row for row in await rows_of(app, "data_plane_secrets", org.id)
    }
    sealed = base64.b64decode(secrets[secret_id]["ciphertext"])
    key = bytes.fromhex(app.state.services.settings.encryption_key)

    # A 12-byte nonce, then the ciphertext and tag; the secret row's id is
    # the associated data.
    plain = AESGCM(key).decrypt(sealed[:12], sealed[12:], secret_id.encode())

    assert plain == b"s3cret"
    assert secrets[secret_id]["owner_id"] == integration["revision_id"]


@pytest.fixture
def data_plane_role(app: FastAPI) -> str:
    if app.state.services.db.engine.dialect.name != "postgresql":
        pytest.skip("roles and grants are PostgreSQL's; SQLite has no users")
    return f"data_plane_{uuid.uuid4().hex[:10]}"


async def test_a_role_granted_the_views_reads_them_and_nothing_else(
    app: FastAPI, factory: Factory, data_plane_role: str
) -> None:
    org = await factory.org()
    await factory.pipeline(org.owner)
    engine = app.state.services.db.engine
    async with engine.begin() as connection:
        await connection.execute(text(f"CREATE ROLE {data_plane_role} NOLOGIN"))
        await connection.execute(
            text(f"GRANT USAGE ON SCHEMA public TO {data_plane_role}")
        )
        for view in VIEWS:
            await connection.execute(
                text(f"GRANT SELECT ON {view} TO {data_plane_role}")
            )
    try:
        async with engine.connect() as connection:
            async with connection.begin():
                await connection.execute(text(f"SET LOCAL ROLE {data_plane_role}"))
                keys = await connection.scalars(
                    text("SELECT * FROM data_plane_pipelines WHERE org_id = :o"),
                    {"o": org.id},
                )
                assert len(list(keys)) == 1
            for refused in (
                "SELECT id FROM pipelines",
                "SELECT ciphertext FROM secrets",
                "UPDATE data_plane_pipelines SET enabled = false",
                "DELETE FROM data_plane_pipelines",
            ):
                async with connection.begin():
                    await connection.execute(text(f"SET LOCAL ROLE {data_plane_role}"))
                    with pytest.raises(DBAPIError, match="permission denied"):
                        await connection.execute(text(refused))
    finally:
        async with engine.begin() as connection:
            for view in VIEWS:
                await connection.execute(
                    text(f"REVOKE SELECT ON {view} FROM {data_plane_role}")
                )
            await connection.execute(
                text(f"REVOKE USAGE ON SCHEMA public FROM {data_plane_role}")
            )
            await connection.execute(text(f"DROP ROLE {data_plane_role}"))


# Announcements


async def next_item(listener: Listener) -> dict[str, Any]:
    message = await asyncio.wait_for(listener.next(), timeout=5)
    assert isinstance(message, Message), message
    return message.data


async def test_each_changed_row_is_announced_once_committed(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    bus = app.state.services.live

    async with bus.listen(Feed.CONFIG, org.id) as listener:
        pipeline = await factory.pipeline(org.owner)
        created = await next_item(listener)
        hooks = await post(
            client,
            org.owner,
            "/integration-templates",
            {"name": "Hooks", "vendor": "webhook", "config": MAPPING},
        )
        template_created = await next_item(listener)
        revision_created = await next_item(listener)
        with audit_refused():
            refused = await client.patch(
                f"{API}/pipelines/{pipeline['id']}",
                json={"enabled": False},
                headers=org.owner.headers,
            )
        await client.put(
            f"{API}/data-layer", json={"config": {}}, headers=org.owner.headers
        )
        data_layer = await next_item(listener)

    assert created == {
        "type": "pipeline.created",
        "id": pipeline["id"],
        "org_id": org.id,
    }
    assert template_created["type"] == "integration_template.created"
    assert template_created["id"] == hooks["template"]["id"]
    assert revision_created["type"] == "integration_revision.created"
    assert revision_created["id"] == hooks["revision"]["id"]
    # The refused change announced nothing: the next item is the data layer's.
    assert refused.status_code == 500
    assert data_layer == {"type": "data_layer.updated", "id": org.id, "org_id": org.id}


async def test_changes_that_are_not_configuration_are_not_announced(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    bus = app.state.services.live

    async with bus.listen(Feed.CONFIG, org.id) as listener:
        renamed = await client.patch(
            f"{API}/org", json={"name": "Renamed"}, headers=org.owner.headers
        )
        await factory.invite(org.owner, "viewer")
        pipeline = await factory.pipeline(org.owner)
        first = await next_item(listener)

    assert renamed.status_code == 200
    assert first["type"] == "pipeline.created"
    assert first["id"] == pipeline["id"]


async def test_announcements_travel_on_the_documented_redis_channel(
    factory: Factory, redis_url: str | None
) -> None:
    if redis_url is None:
        pytest.skip("set TEST_REDIS_URL to test with Redis")
    org = await factory.org()
    redis = Redis.from_url(redis_url)
    try:
        async with redis.pubsub() as pubsub:
            await pubsub.subscribe(f"signal:config:{org.id}")
            await pubsub.get_message(timeout=5)  # the subscription's confirmation
            pipeline = await factory.pipeline(org.owner)
            message = await pubsub.get_message(
                ignore_subscribe_messages=True, timeout=5
            )
    finally:
        await redis.aclose()

    assert message is not None
    assert json.loads(message["data"]) == {
        "type": "pipeline.created",
        "id": pipeline["id"],
        "org_id": org.id,
    }


async def test_legacy_writes_are_announced_as_the_rows_they_changed(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    bus = app.state.services.live

    async with bus.listen(Feed.CONFIG, org.id) as listener:
        source = await post(client, org.owner, "/sources", {"name": "Legacy site"})
        source_created = await next_item(listener)
        integration = await post(
            client,
            org.owner,
            "/integrations",
            {
                "source_id": source["id"],
                "type": "ga4",
                "name": "Legacy GA4",
                "config": {"measurement_id": "G-ABC123", "api_secret": "s3cret"},
            },
        )
        made = [await next_item(listener) for _ in range(3)]

    assert source_created == {
        "type": "pipeline.created",
        "id": source["id"],
        "org_id": org.id,
    }
    assert {(item["type"], item["id"]) for item in made} >= {
        ("pipeline_integration.created", integration["id"])
    }
    assert sorted(item["type"] for item in made) == [
        "integration_revision.created",
        "integration_template.created",
        "pipeline_integration.created",
    ]


async def test_a_pipeline_config_cannot_hold_a_secret_reference(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    reference = {"$secret": pipeline["id"].replace("pip_", "sec_")}

    refused = await client.patch(
        f"{API}/pipelines/{pipeline['id']}",
        json={"config": {"nested": [{"token": reference}]}},
        headers=org.owner.headers,
    )
    (seen,) = await rows_of(app, "data_plane_pipelines", org.id)

    assert refused.status_code == 422
    assert [detail["field"] for detail in refused.json()["error"]["details"]] == [
        "config"
    ]
    assert document(seen["config"]) == {}
