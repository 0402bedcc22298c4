"""GraphQL subscriptions over a real WebSocket: graphql-transport-ws spoken by
hand to a real server, with test events and changes sent through its HTTP.

A `pong` answering a `ping` sent after a `subscribe` means the server has
admitted that subscription and is listening, so events sent afterwards reach
it; every wait below is a safety net, never what a test measures.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import jwt
import pytest
from gql import Client, gql
from gql.transport.websockets import WebsocketsTransport
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from signal_admin.security.tokens import TokenService
from tests.conftest import TEST_JWT_SECRET
from tests.factories import Factory, Member, Org
from tests.servers import RunningServer, Servers, free_port

PROTOCOL = "graphql-transport-ws"
WAIT = 15.0
LIVE_EVENTS = """
subscription ($pipelineId: ID, $filter: LiveEventFilter) {
  liveEvents(pipelineId: $pipelineId, filter: $filter) {
    id stage pipelineId messageId droppedCount event
  }
}
"""
AUDIT_LOG_ADDED = """
subscription ($filter: AuditLogFilter) {
  auditLogAdded(filter: $filter) { action resourceType resourceId actor { id email } }
}
"""


def track(name: str, **fields: Any) -> dict[str, Any]:
    return {"type": "track", "event": name, "anonymousId": "a-1", **fields}


@pytest.fixture
def server(servers: Servers) -> RunningServer:
    return servers.start(
        live_session_check_seconds=0.5, graphql_ws_init_timeout_seconds=1
    )


async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(json.dumps(message))


async def receive(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    return message


async def closed_with(ws: ClientConnection) -> tuple[int | None, str | None]:
    """The code and reason the server closed with, once it has."""
    with pytest.raises(ConnectionClosed):
        await until_closed(ws)
    return ws.close_code, ws.close_reason


async def until_closed(ws: ClientConnection) -> None:
    while True:
        await asyncio.wait_for(ws.recv(), WAIT)


@asynccontextmanager
async def socket(server: RunningServer) -> AsyncIterator[ClientConnection]:
    async with connect(f"{server.ws}/graphql", subprotocols=[PROTOCOL]) as ws:
        yield ws


@asynccontextmanager
async def connected(
    server: RunningServer, member: Member, *, token: str | None = None
) -> AsyncIterator[ClientConnection]:
    async with socket(server) as ws:
        bearer = f"Bearer {token or member.access_token}"
        await send(
            ws, {"type": "connection_init", "payload": {"authorization": bearer}}
        )
        assert (await receive(ws))["type"] == "connection_ack"
        yield ws


async def subscribe(
    ws: ClientConnection,
    operation_id: str,
    query: str,
    variables: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Subscribe, and answer what the server said about it before listening
    (an `error`, or nothing)."""
    payload = {"query": query, "variables": variables or {}}
    await send(ws, {"id": operation_id, "type": "subscribe", "payload": payload})
    await send(ws, {"type": "ping"})
    said = []
    while (message := await receive(ws))["type"] != "pong":
        said.append(message)
    return said


async def next_data(ws: ClientConnection, operation_id: str) -> dict[str, Any]:
    """The data of the next `next` message for `operation_id`; messages for
    other subscriptions are skipped."""
    while True:
        message = await receive(ws)
        if message.get("id") == operation_id:
            assert message["type"] == "next", message
            data: dict[str, Any] = message["payload"]["data"]
            return data


async def send_test_events(
    server: RunningServer, member: Member, pipeline: dict[str, Any], *events: Any
) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{server.api}/pipelines/{pipeline['id']}/test-events",
            json={"events": list(events)},
            headers=member.headers,
        )
    assert response.status_code == 200, response.text


async def events_of(
    ws: ClientConnection, counts: dict[str, int], name: str
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The next `counts[id]` liveEvents of each subscription on `ws`."""
    events: dict[tuple[str, str], list[dict[str, Any]]] = {
        (name, operation_id): [] for operation_id in counts
    }
    while any(len(events[name, i]) < n for i, n in counts.items()):
        message = await receive(ws)
        assert message["type"] == "next", message
        events[name, message["id"]].append(message["payload"]["data"]["liveEvents"])
    return events


def error_codes(message: dict[str, Any]) -> list[str]:
    assert message["type"] == "error", message
    return [error["extensions"]["code"] for error in message["payload"]]


# --- Connecting ---------------------------------------------------------------


async def test_a_valid_bearer_authorization_is_acknowledged(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()

    async with socket(server) as ws:
        payload = {"authorization": f"Bearer {org.owner.access_token}"}
        await send(ws, {"type": "connection_init", "payload": payload})
        answer = await receive(ws)

    assert answer["type"] == "connection_ack"
    assert ws.subprotocol == PROTOCOL


async def test_a_valid_token_is_acknowledged(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()

    async with socket(server) as ws:
        payload = {"token": org.owner.access_token}
        await send(ws, {"type": "connection_init", "payload": payload})
        answer = await receive(ws)

    assert answer["type"] == "connection_ack"


async def test_a_missing_token_closes_with_4403(server: RunningServer) -> None:
    async with socket(server) as ws:
        await send(ws, {"type": "connection_init", "payload": {}})
        code, _ = await closed_with(ws)

    assert code == 4403


async def test_a_bad_token_closes_with_4403(server: RunningServer) -> None:
    async with socket(server) as ws:
        payload = {"authorization": "Bearer not-a-token"}
        await send(ws, {"type": "connection_init", "payload": payload})
        code, _ = await closed_with(ws)

    assert code == 4403


async def test_no_connection_init_in_time_closes_with_4408(
    server: RunningServer,
) -> None:
    async with socket(server) as ws:
        code, _ = await closed_with(ws)

    assert code == 4408


async def test_a_connection_beyond_the_users_live_sockets_closes_with_4429(
    servers: Servers, factory: Factory
) -> None:
    one_each = servers.start(live_sockets_per_user=1)
    org = await factory.org()

    async with connected(one_each, org.owner), socket(one_each) as second:
        payload = {"token": org.owner.access_token}
        await send(second, {"type": "connection_init", "payload": payload})
        code, reason = await closed_with(second)

    assert code == 4429
    assert "live sockets" in (reason or "")


async def test_the_legacy_protocol_is_refused_by_default(
    server: RunningServer,
) -> None:
    async with connect(f"{server.ws}/graphql", subprotocols=["graphql-ws"]) as ws:
        code, _ = await closed_with(ws)

    assert code == 4406


async def test_subscribing_before_connection_init_closes_with_4401(
    server: RunningServer,
) -> None:
    async with socket(server) as ws:
        payload = {"query": LIVE_EVENTS}
        await send(ws, {"id": "1", "type": "subscribe", "payload": payload})
        code, _ = await closed_with(ws)

    assert code == 4401


# --- liveEvents ---------------------------------------------------------------


async def test_live_events_of_every_pipeline(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()
    first = await factory.pipeline(org.owner)
    second = await factory.pipeline(org.owner)

    async with connected(server, org.owner) as ws:
        assert await subscribe(ws, "all", LIVE_EVENTS) == []
        await send_test_events(server, org.owner, first, track("a"))
        await send_test_events(server, org.owner, second, track("b"))
        events = [(await next_data(ws, "all"))["liveEvents"] for _ in range(4)]

    assert [(e["pipelineId"], e["stage"]) for e in events] == [
        (first["id"], "RECEIVED"),
        (first["id"], "PROCESSED"),
        (second["id"], "RECEIVED"),
        (second["id"], "PROCESSED"),
    ]
    assert events[0]["event"]["event"] == "a"
    assert all(e["droppedCount"] is None for e in events)


async def test_live_events_of_one_pipeline(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()
    watched = await factory.pipeline(org.owner)
    other = await factory.pipeline(org.owner)

    async with connected(server, org.owner) as ws:
        variables = {"pipelineId": watched["id"]}
        assert await subscribe(ws, "one", LIVE_EVENTS, variables) == []
        await send_test_events(server, org.owner, other, track("elsewhere"))
        await send_test_events(server, org.owner, watched, track("here"))
        event = (await next_data(ws, "one"))["liveEvents"]

    assert event["pipelineId"] == watched["id"]
    assert event["event"]["event"] == "here"


@pytest.mark.parametrize(
    ("condition", "skipped", "kept"),
    [
        ({"eventNames": ["wanted"]}, track("unwanted"), track("wanted")),
        (
            {"eventTypes": ["page"]},
            track("a track"),
            {"type": "page", "anonymousId": "a-1", "name": "Home"},
        ),
    ],
)
async def test_a_filter_keeps_only_the_events_it_names(
    server: RunningServer,
    factory: Factory,
    condition: dict[str, Any],
    skipped: dict[str, Any],
    kept: dict[str, Any],
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)

    async with connected(server, org.owner) as ws:
        variables = {"pipelineId": pipeline["id"], "filter": condition}
        assert await subscribe(ws, "f", LIVE_EVENTS, variables) == []
        await send_test_events(server, org.owner, pipeline, skipped, kept)
        event = (await next_data(ws, "f"))["liveEvents"]

    assert event["event"]["type"] == kept["type"]
    assert event["event"].get("event") == kept.get("event")


async def test_a_stages_filter_keeps_only_those_stages(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)

    async with connected(server, org.owner) as ws:
        variables = {"filter": {"stages": ["PROCESSED"]}}
        assert await subscribe(ws, "s", LIVE_EVENTS, variables) == []
        await send_test_events(server, org.owner, pipeline, track("a"), track("b"))
        events = [(await next_data(ws, "s"))["liveEvents"] for _ in range(2)]

    assert [(e["stage"], e["event"]["event"]) for e in events] == [
        ("PROCESSED", "a"),
        ("PROCESSED", "b"),
    ]


async def test_an_integration_ids_filter_keeps_that_integrations_stages(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    template = await install_and_attach(server, org.owner, pipeline)

    async with connected(server, org.owner) as ws:
        variables = {"filter": {"integrationIds": [template["id"]]}}
        assert await subscribe(ws, "i", LIVE_EVENTS, variables) == []
        await send_test_events(server, org.owner, pipeline, track("order_completed"))
        event = (await next_data(ws, "i"))["liveEvents"]

    assert event["stage"] in {"TRANSFORMED", "FILTERED"}


async def install_and_attach(
    server: RunningServer, member: Member, pipeline: dict[str, Any]
) -> dict[str, Any]:
    config = {"measurement_id": "G-TEST12345", "api_secret": "ga4-secret-value"}
    async with httpx.AsyncClient(headers=member.headers) as http:
        installed = await http.post(
            f"{server.api}/integration-catalog/ga4/install",
            json={"name": f"ga4 {pipeline['id']}", "config": config},
        )
        assert installed.status_code == 201, installed.text
        template: dict[str, Any] = installed.json()["template"]
        attached = await http.post(
            f"{server.api}/pipelines/{pipeline['id']}/integrations",
            json={"integration_id": template["id"]},
        )
        assert attached.status_code == 201, attached.text
    return template


async def test_another_organisations_pipeline_is_an_error(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()
    stranger = await factory.org()
    theirs = await factory.pipeline(stranger.owner)

    async with connected(server, org.owner) as ws:
        said = await subscribe(ws, "x", LIVE_EVENTS, {"pipelineId": theirs["id"]})

    assert [error_codes(message) for message in said] == [["NOT_FOUND"]]
    assert said[0]["id"] == "x"


async def test_an_unknown_stage_in_the_filter_is_an_error(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()

    async with connected(server, org.owner) as ws:
        variables = {"filter": {"stages": ["DROPPED_NOTICE"]}}
        said = await subscribe(ws, "x", LIVE_EVENTS, variables)

    assert [error_codes(message) for message in said] == [["VALIDATION_ERROR"]]


async def test_a_filter_with_too_many_values_is_an_error_naming_it(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()

    async with connected(server, org.owner) as ws:
        variables = {"filter": {"eventNames": ["x"] * 101}}
        said = await subscribe(ws, "x", LIVE_EVENTS, variables)

    assert [error_codes(message) for message in said] == [["VALIDATION_ERROR"]]
    assert "filter.event_names" in said[0]["payload"][0]["message"]


async def test_an_organisation_sees_none_of_anothers_events(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()
    stranger = await factory.org()
    ours = await factory.pipeline(org.owner)
    theirs = await factory.pipeline(stranger.owner)

    async with connected(server, org.owner) as ws:
        assert await subscribe(ws, "all", LIVE_EVENTS) == []
        await send_test_events(server, stranger.owner, theirs, track("theirs"))
        await send_test_events(server, org.owner, ours, track("ours"))
        events = [(await next_data(ws, "all"))["liveEvents"] for _ in range(2)]

    assert {e["pipelineId"] for e in events} == {ours["id"]}
    assert {e["event"]["event"] for e in events} == {"ours"}


async def test_events_of_a_pipeline_arrive_in_order(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    names = [f"e{number}" for number in range(20)]

    async with connected(server, org.owner) as ws:
        variables = {"filter": {"stages": ["RECEIVED"]}}
        assert await subscribe(ws, "o", LIVE_EVENTS, variables) == []
        await send_test_events(server, org.owner, pipeline, *map(track, names[:10]))
        await send_test_events(server, org.owner, pipeline, *map(track, names[10:]))
        events = [(await next_data(ws, "o"))["liveEvents"] for _ in names]

    assert [e["event"]["event"] for e in events] == names


async def test_two_subscribers_of_one_document_both_receive_every_event(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()
    viewer = await factory.member(org, "viewer")
    pipeline = await factory.pipeline(org.owner)

    async with (
        connected(server, org.owner) as first,
        connected(server, org.owner) as second,
        connected(server, viewer) as third,
    ):
        for ws in (first, second, third):
            assert await subscribe(ws, "same", LIVE_EVENTS) == []
        assert await subscribe(first, "again", LIVE_EVENTS) == []
        await send_test_events(server, org.owner, pipeline, track("a"), track("b"))
        seen = {
            **await events_of(first, {"same": 4, "again": 4}, "first"),
            **await events_of(second, {"same": 4}, "second"),
            **await events_of(third, {"same": 4}, "third"),
        }

    expected = seen["first", "same"]
    assert [e["stage"] for e in expected] == ["RECEIVED", "PROCESSED"] * 2
    assert all(events == expected for events in seen.values())


# --- What the socket refuses --------------------------------------------------


@pytest.mark.parametrize(
    "document",
    ["{ me { id } }", 'mutation { logout(input: {refreshToken: "x"}) { ok } }'],
)
async def test_a_query_or_mutation_is_an_error(
    server: RunningServer, factory: Factory, document: str
) -> None:
    org = await factory.org()

    async with connected(server, org.owner) as ws:
        said = await subscribe(ws, "q", document)

    assert [error_codes(message) for message in said] == [["SUBSCRIPTIONS_ONLY"]]


@pytest.mark.parametrize(
    ("document", "code"),
    [
        ("subscription { liveEvents { nope } }", "GRAPHQL_VALIDATION_FAILED"),
        ("subscription { liveEvents {", "GRAPHQL_PARSE_FAILED"),
        (
            "subscription { liveEvents { "
            + " ".join(f"a{n}: id" for n in range(31))
            + " } }",
            "TOO_MANY_ALIASES",
        ),
        (
            "subscription { liveEvents { id " + "__typename " * 5000 + "} }",
            "QUERY_TOO_LARGE",
        ),
    ],
)
async def test_a_document_the_limits_refuse_is_an_error_naming_the_code(
    server: RunningServer, factory: Factory, document: str, code: str
) -> None:
    org = await factory.org()

    async with connected(server, org.owner) as ws:
        said = await subscribe(ws, "bad", document)

    assert [error_codes(message) for message in said] == [[code]]
    assert said[0]["id"] == "bad"


@pytest.mark.parametrize(
    "text",
    [
        '{"type": "ping", "payload": {"x": NaN}}',
        '{"type": "ping", "payload": ' + "[" * 5000 + "]" * 5000 + "}",
        "not json",
    ],
    ids=["nan", "nested-too-deep", "not-json"],
)
async def test_a_message_that_is_not_json_closes_with_4400(
    server: RunningServer, factory: Factory, text: str
) -> None:
    org = await factory.org()

    async with connected(server, org.owner) as ws:
        await ws.send(text)
        code, _ = await closed_with(ws)

    assert code == 4400
    assert "Traceback" not in server.log.read_text()


async def test_the_21st_subscription_is_an_error_and_the_connection_stays_open(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)

    async with connected(server, org.owner) as ws:
        for number in range(20):
            assert await subscribe(ws, f"s{number}", LIVE_EVENTS) == []
        said = await subscribe(ws, "s20", LIVE_EVENTS)
        await send_test_events(server, org.owner, pipeline, track("still here"))
        event = (await next_data(ws, "s19"))["liveEvents"]

    assert [error_codes(message) for message in said] == [["TOO_MANY_SUBSCRIPTIONS"]]
    assert event["event"]["event"] == "still here"


async def test_complete_stops_a_subscription(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)

    async with connected(server, org.owner) as ws:
        assert await subscribe(ws, "stopped", LIVE_EVENTS) == []
        assert await subscribe(ws, "kept", LIVE_EVENTS) == []
        await send(ws, {"id": "stopped", "type": "complete"})
        await send(ws, {"type": "ping"})
        assert (await receive(ws))["type"] == "pong"
        await send_test_events(server, org.owner, pipeline, track("after"))
        messages = [await receive(ws) for _ in range(2)]

    assert [(m["id"], m["type"]) for m in messages] == [("kept", "next")] * 2


async def test_an_id_is_free_again_once_completed(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)

    async with connected(server, org.owner) as ws:
        assert await subscribe(ws, "1", LIVE_EVENTS) == []
        await send(ws, {"id": "1", "type": "complete"})
        assert await subscribe(ws, "1", LIVE_EVENTS) == []
        await send_test_events(server, org.owner, pipeline, track("again"))
        event = (await next_data(ws, "1"))["liveEvents"]

    assert event["event"]["event"] == "again"


# --- When the connection ends -------------------------------------------------


async def test_an_expired_access_token_closes_with_4403(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()
    short_lived = short_lived_token(org.owner, seconds=2)

    async with connected(server, org.owner, token=short_lived) as ws:
        assert await subscribe(ws, "e", LIVE_EVENTS) == []
        code, reason = await closed_with(ws)

    assert code == 4403
    assert "expired" in (reason or "")


def short_lived_token(member: Member, *, seconds: int) -> str:
    claims = jwt.decode(member.access_token, options={"verify_signature": False})
    tokens = TokenService(TEST_JWT_SECRET, access_ttl=seconds, refresh_ttl=60, leeway=0)
    issued = tokens.issue_access(
        user_id=member.id,
        org_id=member.org_id,
        session_id=claims["sid"],
        role=member.role,
    )
    return issued.token


async def test_a_revoked_session_closes_with_4403(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()

    async with connected(server, org.owner) as ws:
        assert await subscribe(ws, "r", LIVE_EVENTS) == []
        await sign_out(server, org.owner)
        code, reason = await closed_with(ws)

    assert code == 4403
    assert "session" in (reason or "")


async def sign_out(server: RunningServer, member: Member) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{server.api}/auth/logout",
            json={"refresh_token": member.refresh_token},
            headers=member.headers,
        )
    assert response.status_code == 204, response.text


async def test_a_connection_is_refused_with_1011_while_redis_cannot_be_reached(
    servers: Servers, factory: Factory
) -> None:
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    cut_off = servers.start(redis_url=unreachable, graphql_ws_init_timeout_seconds=1)
    org = await factory.org()

    async with socket(cut_off) as ws:
        bearer = f"Bearer {org.owner.access_token}"
        await send(
            ws, {"type": "connection_init", "payload": {"authorization": bearer}}
        )
        code, reason = await closed_with(ws)

    assert code == 1011
    assert "Redis" in (reason or "")


async def test_shutdown_closes_the_connection_as_a_restart(
    servers: Servers, factory: Factory
) -> None:
    stopping = servers.start(graphql_ws_init_timeout_seconds=1)
    org = await factory.org()

    async with connected(stopping, org.owner) as ws:
        assert await subscribe(ws, "1", LIVE_EVENTS) == []
        await asyncio.to_thread(stopping.terminate)
        code, _ = await closed_with(ws)

    assert code == 1012


@pytest.mark.skipif(
    bool(os.environ.get("TEST_REDIS_URL")),
    reason="only the in-process bus hands a whole batch over before the "
    "subscriber reads, which makes a full queue certain",
)
async def test_a_subscriber_that_falls_behind_is_told_how_many_it_lost(
    servers: Servers, factory: Factory
) -> None:
    small = servers.start(live_queue_size=2, graphql_ws_init_timeout_seconds=1)
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)

    async with connected(small, org.owner) as ws:
        variables = {"pipelineId": pipeline["id"]}
        assert await subscribe(ws, "d", LIVE_EVENTS, variables) == []
        names = [f"e{number}" for number in range(10)]
        await send_test_events(small, org.owner, pipeline, *map(track, names))
        notice = (await next_data(ws, "d"))["liveEvents"]
        kept = [(await next_data(ws, "d"))["liveEvents"] for _ in range(2)]

    assert notice["stage"] == "DROPPED_NOTICE"
    assert notice["droppedCount"] == 18
    assert notice["pipelineId"] == pipeline["id"]
    assert [(e["stage"], e["event"]["event"]) for e in kept] == [
        ("RECEIVED", "e9"),
        ("PROCESSED", "e9"),
    ]


# --- The legacy protocol ------------------------------------------------------


@asynccontextmanager
async def legacy_socket(server: RunningServer) -> AsyncIterator[ClientConnection]:
    async with connect(f"{server.ws}/graphql", subprotocols=["graphql-ws"]) as ws:
        yield ws


async def test_the_legacy_protocol_when_enabled_streams_events(
    servers: Servers, factory: Factory
) -> None:
    legacy = servers.start(graphql_ws_legacy_protocol=True)
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)

    async with legacy_socket(legacy) as ws:
        payload = {"authorization": f"Bearer {org.owner.access_token}"}
        await send(ws, {"type": "connection_init", "payload": payload})
        acknowledged = await receive(ws)
        start = {"query": LIVE_EVENTS, "variables": {"pipelineId": pipeline["id"]}}
        await send(ws, {"id": "1", "type": "start", "payload": start})
        # Messages are handled in turn: once the second start is refused, the
        # first is listening.
        await send(ws, {"id": "2", "type": "start", "payload": {"query": "{ me }"}})
        refused = await next_non_keep_alive(ws)
        await send_test_events(legacy, org.owner, pipeline, track("legacy"))
        data = await next_non_keep_alive(ws)

    assert acknowledged["type"] == "connection_ack"
    assert refused["id"] == "2"
    assert refused["type"] == "error"
    assert refused["payload"]["extensions"]["code"] == "SUBSCRIPTIONS_ONLY"
    assert data["id"] == "1"
    assert data["type"] == "data"
    assert data["payload"]["data"]["liveEvents"]["event"]["event"] == "legacy"


async def next_non_keep_alive(ws: ClientConnection) -> dict[str, Any]:
    while (message := await receive(ws))["type"] == "ka":
        pass
    return message


async def test_the_legacy_protocol_refuses_a_bad_token_with_4403(
    servers: Servers,
) -> None:
    legacy = servers.start(graphql_ws_legacy_protocol=True)

    async with legacy_socket(legacy) as ws:
        payload = {"authorization": "Bearer not-a-token"}
        await send(ws, {"type": "connection_init", "payload": payload})
        answer = await receive(ws)
        code, _ = await closed_with(ws)

    assert answer["type"] == "connection_error"
    assert code == 4403


# --- auditLogAdded ------------------------------------------------------------


async def test_a_change_reaches_audit_log_added_with_its_actor(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()

    async with connected(server, org.owner) as ws:
        variables = {"filter": {"action": "pipeline.*"}}
        assert await subscribe(ws, "a", AUDIT_LOG_ADDED, variables) == []
        pipeline = await create_pipeline(server, org.owner)
        entry = (await next_data(ws, "a"))["auditLogAdded"]

    assert entry["action"] == "pipeline.created"
    assert entry["resourceId"] == pipeline["id"]
    assert entry["actor"] == {"id": org.owner.id, "email": org.owner.email}


async def create_pipeline(server: RunningServer, member: Member) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{server.api}/pipelines",
            json={"name": f"Watched {uuid.uuid4().hex[:8]}", "type": "web"},
            headers=member.headers,
        )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_a_subscriber_demoted_below_the_audit_log_is_cut_off(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org, "admin")

    async with connected(server, admin) as ws:
        variables = {"filter": {"action": "pipeline.*"}}
        assert await subscribe(ws, "a", AUDIT_LOG_ADDED, variables) == []
        async with httpx.AsyncClient() as http:
            demoted = await http.patch(
                f"{server.api}/users/{admin.id}",
                json={"role": "viewer"},
                headers=org.owner.headers,
            )
        # Until the watch has read the new role, entries may still arrive;
        # from then on the subscription ends with FORBIDDEN and no entry.
        shown = []
        for _ in range(100):
            await create_pipeline(server, org.owner)
            message = await receive(ws)
            if message["type"] == "error":
                break
            shown.append(message)

    assert demoted.status_code == 200, demoted.text
    assert message["id"] == "a"
    assert error_codes(message) == ["FORBIDDEN"]
    assert all(m["type"] == "next" for m in shown)


async def test_each_event_loads_its_actor_afresh(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()
    query = (
        'subscription { auditLogAdded(filter: {action: "pipeline.*"}) '
        "{ actor { name } } }"
    )

    async with connected(server, org.owner) as ws:
        assert await subscribe(ws, "a", query) == []
        await create_pipeline(server, org.owner)
        before = (await next_data(ws, "a"))["auditLogAdded"]["actor"]
        await rename(server, org.owner, "Renamed Owner")
        await create_pipeline(server, org.owner)
        after = (await next_data(ws, "a"))["auditLogAdded"]["actor"]

    assert before["name"] != "Renamed Owner"
    assert after == {"name": "Renamed Owner"}


async def rename(server: RunningServer, member: Member, name: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.patch(
            f"{server.api}/me", json={"name": name}, headers=member.headers
        )
    assert response.status_code == 200, response.text


async def test_audit_log_added_shows_only_its_organisations_entries(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()
    stranger = await factory.org()

    async with connected(server, org.owner) as ws:
        assert await subscribe(ws, "a", AUDIT_LOG_ADDED) == []
        await create_pipeline(server, stranger.owner)
        ours = await create_pipeline(server, org.owner)
        entry = (await next_data(ws, "a"))["auditLogAdded"]

    assert entry["resourceId"] == ours["id"]


async def test_a_viewer_may_not_subscribe_to_the_audit_log(
    server: RunningServer, factory: Factory
) -> None:
    org: Org = await factory.org()
    viewer = await factory.member(org, "viewer")

    async with connected(server, viewer) as ws:
        said = await subscribe(ws, "a", AUDIT_LOG_ADDED)

    assert [error_codes(message) for message in said] == [["FORBIDDEN"]]


# --- A ready-made client ------------------------------------------------------


async def test_the_gql_client_receives_live_events(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    transport = WebsocketsTransport(
        url=f"{server.ws}/graphql",
        init_payload={"authorization": f"Bearer {org.owner.access_token}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    request = gql(LIVE_EVENTS)
    request.variable_values = {"pipelineId": pipeline["id"]}

    async with Client(transport=transport) as session:
        results = session.subscribe(request)
        first = asyncio.ensure_future(anext(results))
        await subscribed(transport)
        await send_test_events(server, org.owner, pipeline, track("from gql"))
        event = (await asyncio.wait_for(first, WAIT))["liveEvents"]
        await results.aclose()

    assert event["stage"] == "RECEIVED"
    assert event["event"]["event"] == "from gql"


async def subscribed(transport: WebsocketsTransport) -> None:
    """Return once the server is listening for the transport's subscription:
    it has been sent, and a ping sent after it has been answered."""
    # gql registers a subscription's listener once its subscribe is sent, and
    # offers no event to wait for.
    while not transport.listeners:  # noqa: ASYNC110 - nothing to wait on instead
        await asyncio.sleep(0.01)
    transport.pong_received.clear()
    await transport.send_ping()
    await asyncio.wait_for(transport.pong_received.wait(), WAIT)
