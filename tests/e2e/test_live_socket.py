"""The REST live socket, `/v1/admin/debug/live`, through a real server and a
real WebSocket client: authentication, subscriptions and their filters, the
client's other messages, the socket's end (token expiry, revoked session,
disabled user) and its limits. Stage events are sent as test events through
the server's HTTP, so they reach its bus."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from signal_admin.security.tokens import TokenService
from tests.conftest import TEST_JWT_SECRET
from tests.factories import Factory, Member
from tests.helpers import claims_of, set_user
from tests.live_clients import (
    LiveClient,
    live_socket,
    page,
    ready_socket,
    send_test_events,
    track,
)
from tests.servers import RunningServer, Servers, free_port

SHORT_TIMES = {
    "live_heartbeat_seconds": 0.5,
    "live_session_check_seconds": 0.5,
    "live_auth_timeout_seconds": 1,
}
GA4_CONFIG = {"measurement_id": "G-TEST12345", "api_secret": "ga4-secret-value"}


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    migrated_database: str,
    redis_url: str | None,
) -> Iterator[RunningServer]:
    """One server for the tests that need no settings of their own."""
    started = Servers(tmp_path_factory.mktemp("live"), migrated_database, redis_url)
    running = started.start(**SHORT_TIMES)
    try:
        yield running
    finally:
        started.stop_all()
    assert "Traceback" not in running.log.read_text(), "an input made the server fail"


def short_lived_token(member: Member, seconds: int) -> str:
    """An access token of `member`'s own session that expires in `seconds`."""
    tokens = TokenService(
        TEST_JWT_SECRET, access_ttl=seconds, refresh_ttl=seconds, leeway=0
    )
    issued = tokens.issue_access(
        user_id=member.id,
        org_id=member.org_id,
        session_id=claims_of(member.access_token)["sid"],
        role=member.role,
    )
    return issued.token


def ids(stages: list[dict[str, Any]]) -> list[str]:
    return [stage["id"] for stage in stages]


async def received_until(
    client: LiveClient, last: dict[str, Any]
) -> list[dict[str, Any]]:
    """Every stage event the client receives, up to and including `last`."""
    received = []
    while not received or received[-1]["id"] != last["id"]:
        (event,) = await client.events(1)
        received.append(event)
    return received


# --- Authentication -----------------------------------------------------------


async def test_a_token_in_the_header_opens_the_socket(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()

    async with live_socket(server, org.owner.access_token) as client:
        ready = await client.receive()

    assert ready == {"type": "ready"}


async def test_a_token_in_the_first_message_opens_the_socket(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()

    async with live_socket(server, org.owner.access_token, in_band=True) as client:
        ready = await client.receive()
        await client.ping()

    assert ready == {"type": "ready"}


async def test_a_token_in_the_url_is_ignored(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()
    token = org.owner.access_token

    async with live_socket(
        server, query=f"?token={token}&access_token={token}"
    ) as client:
        code, _ = await client.closed()

    assert code == 4401


@pytest.mark.parametrize("in_band", [False, True], ids=["header", "message"])
async def test_a_bad_token_closes_with_4401(
    server: RunningServer, factory: Factory, in_band: bool
) -> None:
    org = await factory.org()
    token = org.owner.access_token[:-4] + "AAAA"

    async with live_socket(server, token, in_band=in_band) as client:
        code, reason = await client.closed()

    assert code == 4401
    assert reason


async def test_an_authorization_header_of_another_scheme_closes_with_4401(
    server: RunningServer,
) -> None:
    async with live_socket(server, authorization="Basic dXNlcjpwYXNz") as client:
        code, _ = await client.closed()

    assert code == 4401


async def test_no_auth_message_in_time_closes_with_4401(
    server: RunningServer,
) -> None:
    async with live_socket(server) as client:
        code, reason = await client.closed()

    assert code == 4401
    assert "auth" in reason


async def test_a_first_message_other_than_auth_closes_with_4401(
    server: RunningServer,
) -> None:
    async with live_socket(server) as client:
        await client.send({"type": "ping"})
        code, _ = await client.closed()

    assert code == 4401


# --- Subscriptions ------------------------------------------------------------


async def test_a_subscriber_of_all_pipelines_sees_each_of_them(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()
    first = await factory.pipeline(org.owner)
    second = await factory.pipeline(org.owner)

    async with ready_socket(server, org.owner) as client:
        await client.subscribe()
        sent = await send_test_events(server, org.owner, first["id"], track())
        sent += await send_test_events(server, org.owner, second["id"], track())
        received = await client.events(len(sent))

    assert ids(received) == ids(sent)
    assert {event["pipeline_id"] for event in received} == {first["id"], second["id"]}


async def test_a_subscriber_of_one_pipeline_sees_only_it(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()
    watched = await factory.pipeline(org.owner)
    other = await factory.pipeline(org.owner)

    async with ready_socket(server, org.owner) as client:
        await client.subscribe(watched["id"])
        await send_test_events(server, org.owner, other["id"], track())
        sent = await send_test_events(server, org.owner, watched["id"], track())
        received = await client.events(len(sent))

    assert ids(received) == ids(sent)


async def test_the_stages_filter_keeps_only_those_stages(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)

    async with ready_socket(server, org.owner) as client:
        await client.subscribe(pipeline["id"], stages=["processed"])
        sent = await send_test_events(server, org.owner, pipeline["id"], track())
        wanted = [stage for stage in sent if stage["stage"] == "processed"]
        received = await received_until(client, wanted[-1])

    assert [stage["stage"] for stage in sent] == ["received", "processed"]
    assert ids(received) == ids(wanted)


async def test_the_event_types_filter_keeps_only_those_types(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)

    async with ready_socket(server, org.owner) as client:
        await client.subscribe(pipeline["id"], event_types=["page"])
        await send_test_events(server, org.owner, pipeline["id"], track())
        sent = await send_test_events(server, org.owner, pipeline["id"], page())
        received = await client.events(len(sent))

    assert ids(received) == ids(sent)


async def test_the_event_names_filter_keeps_only_those_names(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)

    async with ready_socket(server, org.owner) as client:
        await client.subscribe(pipeline["id"], event_names=["signed_up"])
        await send_test_events(server, org.owner, pipeline["id"], track("clicked"))
        sent = await send_test_events(
            server, org.owner, pipeline["id"], track("signed_up")
        )
        received = await client.events(len(sent))

    assert ids(received) == ids(sent)


async def test_the_integration_ids_filter_keeps_only_that_integrations_stages(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    installed = await factory.client.post(
        "/v1/admin/integration-catalog/ga4/install",
        json={"name": "GA4", "config": GA4_CONFIG},
        headers=org.owner.headers,
    )
    ga4 = installed.json()["template"]
    attached = await factory.client.post(
        f"/v1/admin/pipelines/{pipeline['id']}/integrations",
        json={"integration_id": ga4["id"]},
        headers=org.owner.headers,
    )
    assert attached.status_code == 201, attached.text

    async with ready_socket(server, org.owner) as client:
        await client.subscribe(integration_ids=[ga4["id"]])
        sent = await send_test_events(server, org.owner, pipeline["id"], track())
        wanted = [stage for stage in sent if stage["integration_id"] == ga4["id"]]
        received = await received_until(client, wanted[-1])

    assert len(wanted) == 1
    assert len(sent) > len(wanted)
    assert ids(received) == ids(wanted)


async def test_a_new_subscription_replaces_the_current_one(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()
    first = await factory.pipeline(org.owner)
    second = await factory.pipeline(org.owner)

    async with ready_socket(server, org.owner) as client:
        await client.subscribe(first["id"])
        await client.subscribe(second["id"])
        await send_test_events(server, org.owner, first["id"], track())
        sent = await send_test_events(server, org.owner, second["id"], track())
        received = await client.events(len(sent))

    assert ids(received) == ids(sent)


async def test_after_unsubscribe_no_events_arrive(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)

    async with ready_socket(server, org.owner) as client:
        await client.subscribe(pipeline["id"])
        await client.send({"type": "unsubscribe"})
        await client.ping()
        await send_test_events(server, org.owner, pipeline["id"], track("missed"))
        await client.subscribe(pipeline["id"])
        sent = await send_test_events(server, org.owner, pipeline["id"], track())
        received = await client.events(len(sent))

    assert ids(received) == ids(sent)


async def test_an_unknown_pipeline_closes_with_4404(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()

    async with ready_socket(server, org.owner) as client:
        await client.send(
            {"type": "subscribe", "pipeline_id": "pip_01JAAAAAAAAAAAAAAAAAAAAAAA"}
        )
        code, reason = await client.closed()

    assert code == 4404
    assert "pip_01JAAAAAAAAAAAAAAAAAAAAAAA" in reason


async def test_another_organisations_pipeline_closes_with_4404(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()
    other = await factory.org()
    theirs = await factory.pipeline(other.owner)

    async with ready_socket(server, org.owner) as client:
        await client.send({"type": "subscribe", "pipeline_id": theirs["id"]})
        code, _ = await client.closed()

    assert code == 4404


@pytest.mark.parametrize(
    ("subscription", "field"),
    [
        ({"filter": {"stages": ["arrived"]}}, "filter.stages"),
        ({"filter": {"colours": ["red"]}}, "filter.colours"),
        ({"filter": {"stages": "received"}}, "filter.stages"),
        ({"filter": {"event_names": ["x"] * 101}}, "filter.event_names"),
        ({"filter": ["received"]}, "filter"),
        ({"pipeline_id": 42}, "pipeline_id"),
    ],
    ids=[
        "unknown stage",
        "unknown condition",
        "not a list",
        "too many values",
        "not an object",
        "id",
    ],
)
async def test_a_bad_subscription_answers_an_error_and_stays_open(
    server: RunningServer,
    factory: Factory,
    subscription: dict[str, Any],
    field: str,
) -> None:
    org = await factory.org()

    async with ready_socket(server, org.owner) as client:
        await client.send({"type": "subscribe", **subscription})
        answer = await client.receive()
        await client.ping()

    assert answer["type"] == "error"
    assert answer["error"]["code"] == "VALIDATION_ERROR"
    assert [problem["field"] for problem in answer["error"]["details"]] == [field]


# --- The client's other messages ------------------------------------------------


async def test_ping_answers_pong(server: RunningServer, factory: Factory) -> None:
    org = await factory.org()

    async with ready_socket(server, org.owner) as client:
        await client.send({"type": "ping"})
        answer = await client.receive()

    assert answer == {"type": "pong"}


@pytest.mark.parametrize(
    "message",
    [
        "{not json",
        "[1, 2]",
        '"subscribe"',
        '{"type": "shout"}',
        '{"kind": "ping"}',
        b'{"type": "ping"}',
        '{"type": "ping", "padding": "' + "x" * (64 * 1024) + '"}',
        "[" * 50_000 + "]" * 50_000,
    ],
    ids=[
        "not json",
        "a list",
        "a string",
        "unknown type",
        "no type",
        "binary",
        "over 64 KiB",
        "deeply nested",
    ],
)
async def test_a_bad_message_answers_bad_request_and_stays_open(
    server: RunningServer, factory: Factory, message: str | bytes
) -> None:
    org = await factory.org()

    async with ready_socket(server, org.owner) as client:
        await client.send(message)
        answer = await client.receive()
        await client.ping()

    assert answer["type"] == "error"
    assert answer["error"]["code"] == "BAD_REQUEST"
    assert answer["error"]["message"]


async def test_heartbeats_arrive_on_an_idle_socket(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()

    async with ready_socket(server, org.owner) as client:
        first = await client.receive(heartbeats=True)
        second = await client.receive(heartbeats=True)

    assert first == second == {"type": "heartbeat"}


# --- The socket's end -----------------------------------------------------------


async def test_the_tokens_expiry_closes_with_4401(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()
    token = short_lived_token(org.owner, seconds=2)

    async with live_socket(server, token) as client:
        await client.expect("ready")
        code, reason = await client.closed()

    assert code == 4401
    assert "expired" in reason


async def test_a_newer_token_in_band_keeps_the_socket_open_past_the_old_expiry(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()
    token = short_lived_token(org.owner, seconds=2)
    old_expiry = claims_of(token)["exp"]

    async with live_socket(server, token) as client:
        await client.expect("ready")
        await client.send({"type": "auth", "token": org.owner.access_token})
        while time.time() < old_expiry + 1:
            await client.ping()
            await asyncio.sleep(0.2)
        await client.send({"type": "ping"})
        answer = await client.receive()

    assert answer == {"type": "pong"}


@pytest.mark.parametrize("whose", ["another user's", "a bad"])
async def test_an_in_band_token_not_the_users_own_closes_with_4401(
    server: RunningServer, factory: Factory, whose: str
) -> None:
    org = await factory.org()
    other = await factory.member(org, "viewer")
    token = other.access_token if whose == "another user's" else "not-a-token"

    async with ready_socket(server, org.owner) as client:
        await client.send({"type": "auth", "token": token})
        code, _ = await client.closed()

    assert code == 4401


async def test_logging_out_closes_the_socket_with_4401(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()

    async with ready_socket(server, org.owner) as client:
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{server.api}/auth/logout",
                json={"refresh_token": org.owner.refresh_token},
                headers=org.owner.headers,
            )
        code, reason = await client.closed()

    assert response.status_code == 204
    assert code == 4401
    assert "session" in reason


async def test_disabling_the_user_closes_the_socket_with_4401(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")

    async with ready_socket(server, editor) as client:
        await set_user(factory.app, editor.id, status="disabled")
        code, _ = await client.closed()

    assert code == 4401


# --- Limits -----------------------------------------------------------------------


async def test_an_eleventh_socket_of_a_user_closes_with_4429(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(ready_socket(server, org.owner))
            for _ in range(10)
        ]

        async with live_socket(server, org.owner.access_token) as eleventh:
            code, reason = await eleventh.closed()
        for client in clients:
            await client.ping()

    assert code == 4429
    assert "10" in reason


async def test_each_socket_is_charged_once_against_the_rate_limit(
    servers: Servers, factory: Factory
) -> None:
    limited = servers.start(rate_limit_per_minute=3, **SHORT_TIMES)
    org = await factory.org()

    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(ready_socket(limited, org.owner))
        for _ in range(5):
            await first.ping()
        await stack.enter_async_context(ready_socket(limited, org.owner))
        await stack.enter_async_context(ready_socket(limited, org.owner))
        async with live_socket(limited, org.owner.access_token) as fourth:
            code, reason = await fourth.closed()

    assert code == 4429
    assert "Retry after" in reason


async def test_a_socket_is_refused_with_1011_while_redis_cannot_be_reached(
    servers: Servers, factory: Factory
) -> None:
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    cut_off = servers.start(redis_url=unreachable, **SHORT_TIMES)
    org = await factory.org()

    # Without Redis neither the user's sockets can be counted nor events
    # carried, so the socket closes before it is ready.
    async with live_socket(cut_off, org.owner.access_token) as client:
        code, reason = await client.closed()

    assert code == 1011
    assert "Redis" in reason


async def test_shutdown_closes_the_socket_as_a_restart(
    servers: Servers, factory: Factory
) -> None:
    stopping = servers.start(**SHORT_TIMES)
    org = await factory.org()

    async with ready_socket(stopping, org.owner) as client:
        await client.subscribe()
        exit_code = await asyncio.to_thread(stopping.terminate)
        code, _ = await client.closed()

    assert code == 1012
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert exit_code in (0, -signal.SIGTERM)
    log = stopping.log.read_text()
    assert '"live.socket_closed"' in log
    assert "Application shutdown complete." in log
    assert "Traceback" not in log


async def test_a_listener_that_falls_behind_is_told_how_many_it_lost(
    servers: Servers, factory: Factory
) -> None:
    cramped = servers.start(live_queue_size=1, **SHORT_TIMES)
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    events = [track(f"burst_{n}") for n in range(100)]

    async with ready_socket(cramped, org.owner) as client:
        await client.subscribe(pipeline["id"])
        sent = await send_test_events(cramped, org.owner, pipeline["id"], *events)
        received, dropped = [], 0
        while not received or received[-1]["id"] != sent[-1]["id"]:
            message = await client.receive()
            if message["type"] == "dropped":
                dropped += message["count"]
            else:
                received.append(message["data"])

    kept = set(ids(received))
    assert dropped > 0
    assert len(received) + dropped == len(sent)
    assert ids(received) == [stage_id for stage_id in ids(sent) if stage_id in kept]


# --- Order and isolation ---------------------------------------------------------


async def test_stages_arrive_in_the_order_published_per_pipeline(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    batches = [[track(f"step_{batch}_{n}") for n in range(20)] for batch in range(3)]

    async with ready_socket(server, org.owner) as client:
        await client.subscribe(pipeline["id"])
        sent = []
        for batch in batches:
            sent += await send_test_events(server, org.owner, pipeline["id"], *batch)
        received = await client.events(len(sent))

    assert len(sent) == 120
    assert ids(received) == ids(sent)


async def test_a_subscriber_never_sees_another_organisations_events(
    server: RunningServer, factory: Factory
) -> None:
    org = await factory.org()
    other = await factory.org()
    ours = await factory.pipeline(org.owner)
    theirs = await factory.pipeline(other.owner)

    async with ready_socket(server, org.owner) as client:
        await client.subscribe()
        await send_test_events(server, other.owner, theirs["id"], track())
        sent = await send_test_events(server, org.owner, ours["id"], track())
        received = await client.events(len(sent))

    assert ids(received) == ids(sent)
    assert {event["org_id"] for event in received} == {org.id}
