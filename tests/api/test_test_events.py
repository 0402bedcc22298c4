"""Test events through HTTP: a pipeline's real configuration — data layer,
catalog installations, transformations — applied to events, stage by stage,
on both faces; nothing delivered, every stage published live."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient

from signal_admin.live.bus import Feed, Message
from signal_admin.processing.samples import sample_events
from tests.factories import Factory, Member, Org, error_code
from tests.helpers import client_of, dedicated_app
from tests.org_fixtures import graphql

GA4_CONFIG = {"measurement_id": "G-TEST12345", "api_secret": "ga4-secret-value"}
META_CONFIG = {"pixel_id": "123456789012345", "access_token": "meta-secret-token"}
SEND = """
mutation ($input: SendTestEventsInput!) {
  sendTestEvents(input: $input) {
    results {
      messageId
      stages { stage vendor reason integrationId payload event error { code } }
    }
    userErrors { field code }
  }
}
"""


def _sample(event_name: str) -> dict[str, Any]:
    for event in sample_events():
        if event.get("event") == event_name or (
            event_name in ("page", "identify") and event["type"] == event_name
        ):
            return copy.deepcopy(event)
    raise AssertionError(f"no sample {event_name}")


async def _install(
    client: AsyncClient, member: Member, vendor: str, config: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/admin/integration-catalog/{vendor}/install",
        json={"name": f"{vendor} {member.email}", "config": config},
        headers=member.headers,
    )
    assert response.status_code == 201, response.text
    template: dict[str, Any] = response.json()["template"]
    return template


async def _attach(
    client: AsyncClient,
    member: Member,
    pipeline: dict[str, Any],
    template: dict[str, Any],
    **fields: Any,
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/admin/pipelines/{pipeline['id']}/integrations",
        json={"integration_id": template["id"], **fields},
        headers=member.headers,
    )
    assert response.status_code == 201, response.text
    attachment: dict[str, Any] = response.json()
    return attachment


async def _shop(
    client: AsyncClient, factory: Factory
) -> tuple[Org, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """An organisation whose pipeline sends to GA4 and Meta, from the catalog."""
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    ga4 = await _install(client, org.owner, "ga4", GA4_CONFIG)
    meta = await _install(client, org.owner, "meta_capi", META_CONFIG)
    await _attach(client, org.owner, pipeline, ga4)
    await _attach(client, org.owner, pipeline, meta)
    return org, pipeline, ga4, meta


async def _send(
    client: AsyncClient, member: Member, pipeline: dict[str, Any], body: Any
) -> Any:
    response = await client.post(
        f"/v1/admin/pipelines/{pipeline['id']}/test-events",
        json=body,
        headers=member.headers,
    )
    return response


def _stages(result: dict[str, Any]) -> list[str]:
    return [stage["stage"] for stage in result["stages"]]


def _by_vendor(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {stage["vendor"]: stage for stage in result["stages"] if stage["vendor"]}


async def test_an_order_becomes_each_vendors_own_purchase_payload(
    client: AsyncClient, factory: Factory
) -> None:
    org, pipeline, ga4, meta = await _shop(client, factory)
    order = _sample("order_completed")

    response = await _send(client, org.owner, pipeline, {"event": order})

    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    assert result["message_id"] == order["messageId"]
    assert _stages(result) == ["received", "processed", "transformed", "transformed"]
    stages = _by_vendor(result)
    ga4_payload = stages["ga4"]["payload"]
    assert ga4_payload["client_id"] == order["anonymousId"]
    (ga4_event,) = ga4_payload["events"]
    assert ga4_event["name"] == "purchase"
    assert ga4_event["params"]["value"] == order["properties"]["revenue"]
    assert ga4_event["params"]["currency"] == order["properties"]["currency"]
    assert ga4_event["params"]["transaction_id"] == order["properties"]["order_id"]
    assert stages["ga4"]["integration_id"] == ga4["id"]
    (meta_event,) = stages["meta_capi"]["payload"]["data"]
    assert meta_event["event_name"] == "Purchase"
    assert meta_event["action_source"] == "website"
    assert meta_event["custom_data"]["value"] == order["properties"]["revenue"]
    assert meta_event["custom_data"]["currency"] == order["properties"]["currency"]
    assert stages["meta_capi"]["integration_id"] == meta["id"]
    answer = response.text
    assert "ga4-secret-value" not in answer
    assert "meta-secret-token" not in answer


async def test_each_stage_is_a_complete_stage_event(
    client: AsyncClient, factory: Factory
) -> None:
    org, pipeline, _, _ = await _shop(client, factory)

    response = await _send(client, org.owner, pipeline, {"event": _sample("page")})

    for stage in response.json()["results"][0]["stages"]:
        assert set(stage) == {
            "id", "reason", "org_id", "pipeline_id", "message_id", "stage",
            "integration_id", "pipeline_integration_id", "vendor", "timestamp",
            "duration_ms", "event", "payload", "error",
        }  # fmt: skip
        assert stage["id"].startswith("evt_")
        assert stage["org_id"] == org.id
        assert stage["pipeline_id"] == pipeline["id"]
        assert stage["timestamp"].endswith("Z")


async def test_an_invalid_event_is_rejected_with_every_problem(
    client: AsyncClient, factory: Factory
) -> None:
    org, pipeline, _, _ = await _shop(client, factory)
    event = {"type": "track", "timestamp": "yesterday"}

    response = await _send(client, org.owner, pipeline, {"event": event})

    (result,) = response.json()["results"]
    assert _stages(result) == ["received", "rejected"]
    error = result["stages"][1]["error"]
    assert error["code"] == "INVALID_EVENT"
    fields = {detail["field"] for detail in error["details"]}
    assert fields == {"anonymousId", "event", "timestamp"}


async def test_events_are_answered_in_order(
    client: AsyncClient, factory: Factory
) -> None:
    org, pipeline, _, _ = await _shop(client, factory)
    events = sample_events()[:20]

    response = await _send(client, org.owner, pipeline, {"events": events})

    ids = [result["message_id"] for result in response.json()["results"]]
    assert ids == [event["messageId"] for event in events]


async def test_an_event_without_a_message_id_gets_one(
    client: AsyncClient, factory: Factory
) -> None:
    org, pipeline, _, _ = await _shop(client, factory)
    event = _sample("page")
    del event["messageId"]

    response = await _send(client, org.owner, pipeline, {"event": event})

    (result,) = response.json()["results"]
    assert result["message_id"]
    assert {stage["message_id"] for stage in result["stages"]} == {result["message_id"]}
    assert {stage["event"]["messageId"] for stage in result["stages"]} == {
        result["message_id"]
    }


async def test_the_data_layer_hashes_pii_in_every_stage(
    client: AsyncClient, factory: Factory
) -> None:
    org, pipeline, _, _ = await _shop(client, factory)
    await client.put(
        "/v1/admin/data-layer",
        json={
            "config": {"pii_rules": {"enabled": True, "hash_fields": ["traits.email"]}}
        },
        headers=org.owner.headers,
    )
    order = _sample("order_completed")
    email = order["traits"]["email"]

    response = await _send(client, org.owner, pipeline, {"event": order})

    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    assert email not in response.text
    stages = response.json()["results"][0]["stages"]
    assert [stage["event"]["traits"]["email"] for stage in stages] == [digest] * 4


async def test_a_routing_rule_drops_internal_events(
    client: AsyncClient, factory: Factory
) -> None:
    org, pipeline, _, _ = await _shop(client, factory)
    rules = [
        {"condition": "event.context.page.url CONTAINS '/staging'", "action": "drop"}
    ]
    await client.put(
        "/v1/admin/data-layer",
        json={"config": {"routing_rules": rules}},
        headers=org.owner.headers,
    )
    event = _sample("page")
    event["context"]["page"]["url"] = "https://shop.example.com/staging/home"

    response = await _send(client, org.owner, pipeline, {"event": event})

    (result,) = response.json()["results"]
    assert _stages(result) == ["received", "dropped"]
    assert result["stages"][1]["reason"]


async def test_a_routing_rule_that_cannot_be_computed_is_noted_and_passes(
    client: AsyncClient, factory: Factory
) -> None:
    org, pipeline, _, _ = await _shop(client, factory)
    rules = [{"condition": "event.properties.revenue / 0 > 1", "action": "drop"}]
    await client.put(
        "/v1/admin/data-layer",
        json={"config": {"routing_rules": rules}},
        headers=org.owner.headers,
    )

    response = await _send(
        client, org.owner, pipeline, {"event": _sample("order_completed")}
    )

    stages = response.json()["results"][0]["stages"]
    assert [stage["stage"] for stage in stages][:2] == ["received", "processed"]
    assert "routing_rules" in stages[1]["reason"]
    assert "not matched" in stages[1]["reason"]


async def test_known_bots_are_dropped_by_default(
    client: AsyncClient, factory: Factory
) -> None:
    org, pipeline, _, _ = await _shop(client, factory)
    event = _sample("page")
    event["context"]["userAgent"] = (
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    )

    response = await _send(client, org.owner, pipeline, {"event": event})

    assert _stages(response.json()["results"][0]) == ["received", "dropped"]


async def test_missing_consent_skips_the_integration(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    meta = await _install(client, org.owner, "meta_capi", META_CONFIG)
    await _attach(client, org.owner, pipeline, meta, consent_categories=["marketing"])
    event = _sample("order_completed")
    event["context"]["consent"] = {"analytics": True, "marketing": False}

    response = await _send(client, org.owner, pipeline, {"event": event})

    stage = response.json()["results"][0]["stages"][-1]
    assert stage["stage"] == "skipped"
    assert "marketing" in stage["reason"]


async def test_a_disabled_attachment_is_left_out(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    ga4 = await _install(client, org.owner, "ga4", GA4_CONFIG)
    await _attach(client, org.owner, pipeline, ga4, enabled=False)

    response = await _send(client, org.owner, pipeline, {"event": _sample("page")})

    assert _stages(response.json()["results"][0]) == ["received", "processed"]


async def test_an_unmapped_event_is_filtered_by_the_default_action(
    client: AsyncClient, factory: Factory
) -> None:
    org, pipeline, _, _ = await _shop(client, factory)
    event = {**_sample("page"), "type": "track", "event": "Newsletter Opened"}

    response = await _send(client, org.owner, pipeline, {"event": event})

    stages = response.json()["results"][0]["stages"]
    assert [stage["stage"] for stage in stages[2:]] == ["filtered", "filtered"]
    assert all(stage["reason"] for stage in stages[2:])


async def test_a_parameter_the_pipeline_lost_is_that_integrations_error(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner, parameters={"ga4_id": "G-PARAM1234"})
    ga4 = await _install(
        client,
        org.owner,
        "ga4",
        {**GA4_CONFIG, "measurement_id": "{{pipeline_param.ga4_id}}"},
    )
    await _attach(client, org.owner, pipeline, ga4)
    await client.patch(
        f"/v1/admin/pipelines/{pipeline['id']}",
        json={"parameters": {}},
        headers=org.owner.headers,
    )

    response = await _send(client, org.owner, pipeline, {"event": _sample("page")})

    stage = response.json()["results"][0]["stages"][-1]
    assert stage["stage"] == "error"
    assert stage["error"]["code"] == "MISSING_PIPELINE_PARAMETERS"


async def test_transformations_run_on_their_integrations_payloads(
    client: AsyncClient, factory: Factory
) -> None:
    org, pipeline, ga4, _ = await _shop(client, factory)
    steps = {
        "steps": [
            {
                "type": "compute",
                "fields": {
                    "events[0].params.value_cents": "event.events[0].params.value * 100"
                },
            }
        ]
    }
    response = await client.post(
        "/v1/admin/transformations",
        json={"name": "Cents", "integration_id": ga4["id"], "config": steps},
        headers=org.owner.headers,
    )
    assert response.status_code == 201, response.text
    order = _sample("order_completed")

    answer = await _send(client, org.owner, pipeline, {"event": order})

    stages = _by_vendor(answer.json()["results"][0])
    revenue = order["properties"]["revenue"]
    assert (
        stages["ga4"]["payload"]["events"][0]["params"]["value_cents"] == revenue * 100
    )
    assert "value_cents" not in json.dumps(stages["meta_capi"]["payload"])


async def test_a_filter_step_filters_the_integration_naming_the_transformation(
    client: AsyncClient, factory: Factory
) -> None:
    org, pipeline, _, meta = await _shop(client, factory)
    steps = {
        "steps": [
            {"type": "filter", "condition": "event.data[0].event_name != 'PageView'"}
        ]
    }
    await client.post(
        "/v1/admin/transformations",
        json={"name": "No page views", "integration_id": meta["id"], "config": steps},
        headers=org.owner.headers,
    )

    answer = await _send(client, org.owner, pipeline, {"event": _sample("page")})

    stages = _by_vendor(answer.json()["results"][0])
    assert stages["meta_capi"]["stage"] == "filtered"
    assert "No page views" in stages["meta_capi"]["reason"]
    assert stages["ga4"]["stage"] == "transformed"


async def test_the_time_budget_turns_unreached_events_into_timeouts(
    migrated_database: str, redis_url: str | None, factory: Factory
) -> None:
    async with (
        dedicated_app(migrated_database, redis_url, dry_run_budget_seconds=1e-9) as app,
        client_of(app) as client,
    ):
        shop = Factory(app, client)
        org = await shop.org()
        pipeline = await shop.pipeline(org.owner)

        response = await _send(
            client, org.owner, pipeline, {"events": sample_events()[:3]}
        )

    assert response.status_code == 200
    for result in response.json()["results"]:
        (stage,) = result["stages"]
        assert stage["stage"] == "error"
        assert stage["error"]["code"] == "TIMEOUT"


async def test_every_stage_is_published_to_the_live_stream(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org, pipeline, _, _ = await _shop(client, factory)
    bus = app.state.services.live
    events = sample_events()[:2]

    async with bus.listen(Feed.LIVE, org.id) as listener:
        answer = await _send(client, org.owner, pipeline, {"events": events})
        expected = [s for r in answer.json()["results"] for s in r["stages"]]
        published = []
        for _ in expected:
            message = await asyncio.wait_for(listener.next(), timeout=5)
            assert isinstance(message, Message), message
            published.append(message.data)

    assert published == expected


async def test_graphql_answers_the_same_stages(
    client: AsyncClient, factory: Factory
) -> None:
    org, pipeline, _, _ = await _shop(client, factory)
    order = _sample("order_completed")

    response = await graphql(
        client,
        org.owner,
        SEND,
        {"input": {"pipelineId": pipeline["id"], "event": order}},
    )

    payload = response.json()["data"]["sendTestEvents"]
    assert payload["userErrors"] == []
    (result,) = payload["results"]
    assert result["messageId"] == order["messageId"]
    assert [s["stage"] for s in result["stages"]] == [
        "RECEIVED",
        "PROCESSED",
        "TRANSFORMED",
        "TRANSFORMED",
    ]
    ga4 = next(s for s in result["stages"] if s["vendor"] == "ga4")
    assert ga4["payload"]["events"][0]["name"] == "purchase"


async def test_graphql_refuses_a_foreign_pipeline_as_not_found(
    client: AsyncClient, factory: Factory
) -> None:
    org, other = await factory.org(), await factory.org()
    theirs = await factory.pipeline(other.owner)

    response = await graphql(
        client,
        org.owner,
        SEND,
        {"input": {"pipelineId": theirs["id"], "event": _sample("page")}},
    )

    payload = response.json()["data"]["sendTestEvents"]
    assert payload["results"] is None
    assert payload["userErrors"][0]["code"] == "NOT_FOUND"


async def test_rest_refuses_viewers_foreign_pipelines_and_too_many_events(
    client: AsyncClient, factory: Factory
) -> None:
    org, pipeline, _, _ = await _shop(client, factory)
    viewer = await factory.member(org, "viewer")
    other = await factory.org()
    theirs = await factory.pipeline(other.owner)

    viewed = await _send(client, viewer, pipeline, {"event": _sample("page")})
    foreign = await _send(client, org.owner, theirs, {"event": _sample("page")})
    flood = await _send(client, org.owner, pipeline, {"events": [{}] * 101})
    empty = await _send(client, org.owner, pipeline, {"events": []})

    assert viewed.status_code == 403
    assert foreign.status_code == 404
    assert flood.status_code == 422
    assert empty.status_code == 422
    assert error_code(flood) == "VALIDATION_ERROR"


async def test_custom_javascript_of_the_data_layer_changes_the_event(
    client: AsyncClient, factory: Factory
) -> None:
    org, pipeline, _, _ = await _shop(client, factory)
    code = (
        "function process(event, context) {"
        " event.properties = event.properties || {};"
        " event.properties.tagged = context.pipeline_id; return event; }"
    )
    saved = await client.put(
        "/v1/admin/data-layer",
        json={"config": {"custom_js": {"enabled": True, "code": code}}},
        headers=org.owner.headers,
    )
    assert saved.status_code == 200, saved.text

    response = await _send(client, org.owner, pipeline, {"event": _sample("page")})

    processed = response.json()["results"][0]["stages"][1]
    assert processed["stage"] == "processed"
    assert processed["event"]["properties"]["tagged"] == pipeline["id"]


async def test_an_endless_loop_is_stopped_and_the_service_keeps_answering(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    config = {
        "steps": [{"type": "code", "source": "function process(e) { for (;;) {} }"}]
    }

    looping = asyncio.create_task(
        client.post(
            "/v1/admin/transformations/test",
            json={"config": config, "event": {"a": 1}},
            headers=org.owner.headers,
        )
    )
    meanwhile = await client.get("/health")
    response = await looping

    assert meanwhile.status_code == 200
    (result,) = response.json()["results"]
    assert result["steps"][0]["status"] == "error"
    assert result["steps"][0]["error"]["code"] == "JS_TIMEOUT"
    assert result["output"] == {"a": 1}


async def test_a_memory_bomb_is_stopped_and_the_next_call_works(
    migrated_database: str, redis_url: str | None
) -> None:
    bomb = (
        "function process(e) { const hoard = [];"
        " for (;;) { hoard.push('x'.repeat(1024) + hoard.length); } }"
    )
    fine = "function process(e) { e.ok = true; return e; }"

    # A long time limit, so that the heap limit is what stops the bomb.
    async with (
        dedicated_app(migrated_database, redis_url, js_time_limit_ms=10_000) as app,
        client_of(app) as client,
    ):
        org = await Factory(app, client).org()

        async def run(source: str) -> Any:
            response = await client.post(
                "/v1/admin/transformations/test",
                json={
                    "config": {"steps": [{"type": "code", "source": source}]},
                    "event": {"a": 1},
                },
                headers=org.owner.headers,
            )
            return response.json()["results"][0]

        exploded = await run(bomb)
        after = await run(fine)

    assert exploded["steps"][0]["error"]["code"] == "JS_MEMORY_LIMIT"
    assert exploded["output"] == {"a": 1}
    assert after["output"] == {"a": 1, "ok": True}


async def test_a_global_set_by_one_orgs_code_is_invisible_to_another(
    client: AsyncClient, factory: Factory
) -> None:
    first, second = await factory.org(), await factory.org()
    source = (
        "function process(event) {"
        " const seen = typeof globalThis.leak === 'undefined' ? null : globalThis.leak;"
        " globalThis.leak = event.secret; return {seen: seen}; }"
    )
    config = {"steps": [{"type": "code", "source": source}]}

    async def run(member: Member, secret: str) -> Any:
        response = await client.post(
            "/v1/admin/transformations/test",
            json={"config": config, "event": {"secret": secret}},
            headers=member.headers,
        )
        return response.json()["results"][0]["output"]["seen"]

    assert await run(first.owner, "first-org-secret") is None
    assert await run(first.owner, "again") is None
    assert await run(second.owner, "second-org-secret") is None


async def test_graphql_names_the_whole_input_when_no_event_is_given(
    client: AsyncClient, factory: Factory
) -> None:
    org, pipeline, _, _ = await _shop(client, factory)

    response = await graphql(
        client, org.owner, SEND, {"input": {"pipelineId": pipeline["id"]}}
    )

    payload = response.json()["data"]["sendTestEvents"]
    assert payload["results"] is None
    assert payload["userErrors"] == [{"field": ["input"], "code": "INVALID"}]
