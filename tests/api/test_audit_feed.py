"""Audit entries are published to the organisation's audit feed once their
transaction has committed, and never for a change that was rolled back."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from httpx import AsyncClient

from signal_admin.live.bus import Feed, Listener, Message
from tests.api.test_audit_atomicity import audit_refused
from tests.factories import Factory
from tests.helpers import audit_entries


async def _next_entry(listener: Listener) -> dict[str, object]:
    message = await asyncio.wait_for(listener.next(), timeout=5)
    assert isinstance(message, Message), message
    return message.data


async def test_a_committed_change_publishes_its_audit_entry(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    bus = app.state.services.live

    async with bus.listen(Feed.AUDIT, org.id) as listener:
        created = await client.post(
            "/v1/admin/pipelines",
            json={"name": "Published", "type": "web"},
            headers={**org.owner.headers, "X-Request-ID": "feed-test-1"},
        )
        published = await _next_entry(listener)

    assert created.status_code == 201
    (stored,) = await audit_entries(app, org.id, action="pipeline.created")
    assert published["id"] == stored.id
    assert published["org_id"] == org.id
    assert published["action"] == "pipeline.created"
    assert published["resource_id"] == created.json()["id"]
    assert published["user_id"] == org.owner.id
    assert published["request_id"] == "feed-test-1"
    assert published["changes"] == stored.changes
    assert isinstance(published["timestamp"], str)
    assert published["timestamp"].endswith("Z")


async def test_a_refused_change_publishes_nothing(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    bus = app.state.services.live

    async with bus.listen(Feed.AUDIT, org.id) as listener:
        with audit_refused():
            refused = await client.post(
                "/v1/admin/pipelines",
                json={"name": "Refused", "type": "web"},
                headers=org.owner.headers,
            )
        accepted = await client.post(
            "/v1/admin/pipelines",
            json={"name": "Accepted", "type": "web"},
            headers=org.owner.headers,
        )
        first = await _next_entry(listener)

    assert refused.status_code == 500
    assert accepted.status_code == 201
    # The first entry published is the accepted change's: nothing came of
    # the refused one.
    assert first["resource_id"] == accepted.json()["id"]


async def test_another_organisations_changes_stay_off_the_feed(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org, other = await factory.org(), await factory.org()
    bus = app.state.services.live

    async with bus.listen(Feed.AUDIT, org.id) as listener:
        await client.post(
            "/v1/admin/pipelines",
            json={"name": "Elsewhere", "type": "web"},
            headers=other.owner.headers,
        )
        mine = await client.post(
            "/v1/admin/pipelines",
            json={"name": "Mine", "type": "web"},
            headers=org.owner.headers,
        )
        first = await _next_entry(listener)

    assert first["org_id"] == org.id
    assert first["resource_id"] == mine.json()["id"]
