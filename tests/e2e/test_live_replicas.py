"""The REST live socket on real servers: two replicas sharing PostgreSQL and
Redis, Redis lost and back under a running server, shutdown, and a listener
that stops reading."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from tests.factories import Factory, Member
from tests.redis_server import PrivateRedis, redis_server
from tests.servers import RunningServer, Servers

__all__ = ["redis_server"]

needs_postgres_and_redis = pytest.mark.skipif(
    not (os.environ.get("TEST_DATABASE_URL") and os.environ.get("TEST_REDIS_URL")),
    reason=(
        "replicas share PostgreSQL and Redis: set TEST_DATABASE_URL and TEST_REDIS_URL"
    ),
)

# Long enough for anything that should happen at once on a busy machine; a
# test only waits this long when it is failing.
PATIENCE = 30.0
EVENTS_PER_REQUEST = 100
LIVE_EVENTS = """
subscription ($pipelineId: ID) { liveEvents(pipelineId: $pipelineId) { id stage } }
"""


def events(first: int, count: int, padding: int = 0) -> list[dict[str, Any]]:
    """`count` track events numbered from `first`."""
    return [
        {
            "type": "track",
            "event": "Live Test",
            "messageId": f"msg-{n}",
            "anonymousId": "anon-live",
            "timestamp": datetime.now(UTC).isoformat(),
            "properties": {"n": n, "padding": "x" * padding},
        }
        for n in range(first, first + count)
    ]


async def send_events(
    server: RunningServer, member: Member, pipeline_id: str, batch: list[Any]
) -> list[dict[str, Any]]:
    """Send test events through `server`; answer the stages it published."""
    async with httpx.AsyncClient(timeout=PATIENCE) as http:
        response = await http.post(
            f"{server.api}/pipelines/{pipeline_id}/test-events",
            json={"events": batch},
            headers=member.headers,
        )
    assert response.status_code == 200, response.text
    return [stage for r in response.json()["results"] for stage in r["stages"]]


async def receive(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), PATIENCE))
    return message


async def next_event(ws: ClientConnection) -> dict[str, Any]:
    """The next stage event, past heartbeats."""
    while True:
        message = await receive(ws)
        if message["type"] == "event":
            data: dict[str, Any] = message["data"]
            return data
        assert message["type"] == "heartbeat", message


async def stage_events(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    return [await next_event(ws) for _ in range(count)]


def stage_ids(stages: list[dict[str, Any]]) -> list[str]:
    return [stage["id"] for stage in stages]


@asynccontextmanager
async def live_socket(
    server: RunningServer, member: Member
) -> AsyncIterator[ClientConnection]:
    """A REST live socket of `member`'s that said ready."""
    async with connect(
        f"{server.ws}/debug/live", additional_headers=member.headers
    ) as ws:
        assert await receive(ws) == {"type": "ready"}
        yield ws


async def subscribe(ws: ClientConnection, pipeline_id: str | None = None) -> None:
    """Subscribe, and wait until the server has registered it: it answers
    messages in order, so the pong comes once the subscription holds."""
    request: dict[str, Any] = {"type": "subscribe"}
    if pipeline_id is not None:
        request["pipeline_id"] = pipeline_id
    await ws.send(json.dumps(request))
    await ws.send(json.dumps({"type": "ping"}))
    while (message := await receive(ws))["type"] != "pong":
        assert message["type"] == "heartbeat", message


async def closed_with(ws: ClientConnection) -> tuple[int, str]:
    """The code and reason the server closed `ws` with, reading past
    whatever it sent before."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), PATIENCE)
    except ConnectionClosed as closed:
        frame = closed.rcvd
    assert frame is not None, "the server sent no close frame"
    return frame.code, frame.reason


async def open_when_a_slot_is_free(
    server: RunningServer, member: Member
) -> ClientConnection:
    """A socket of `member`'s, once a slot given back has been freed (the
    server frees it just after the closing handshake)."""
    for _ in range(100):
        ws = await connect(f"{server.ws}/debug/live", additional_headers=member.headers)
        try:
            if await receive(ws) == {"type": "ready"}:
                return ws
        except ConnectionClosed as closed:
            refused = closed.rcvd
        assert refused is not None
        assert refused.code == 4429
        await ws.close()
        await asyncio.sleep(0.05)
    pytest.fail("the slot was never freed")


# --- Two replicas ------------------------------------------------------------


@needs_postgres_and_redis
async def test_events_sent_through_one_replica_reach_listeners_on_both_in_order(
    servers: Servers, factory: Factory
) -> None:
    org = await factory.org()
    first = (await factory.pipeline(org.owner))["id"]
    second = (await factory.pipeline(org.owner))["id"]
    a, b = servers.start(), servers.start()

    async with (
        live_socket(a, org.owner) as on_a,
        live_socket(b, org.owner) as on_b,
    ):
        await subscribe(on_a)
        await subscribe(on_b, first)
        sent = [
            *await send_events(b, org.owner, first, events(0, 20)),
            *await send_events(b, org.owner, second, events(20, 20)),
            *await send_events(a, org.owner, first, events(40, 20)),
        ]
        seen_on_a = await stage_events(on_a, len(sent))
        of_first = [stage for stage in sent if stage["pipeline_id"] == first]
        seen_on_b = await stage_events(on_b, len(of_first))

    assert len(sent) == 120
    assert stage_ids(seen_on_a) == stage_ids(sent)
    assert seen_on_a == sent
    assert stage_ids(seen_on_b) == stage_ids(of_first)


@needs_postgres_and_redis
async def test_the_rate_limit_is_shared_by_the_replicas(
    servers: Servers, factory: Factory
) -> None:
    org = await factory.org()
    member = await factory.member(org, "viewer")
    a = servers.start(rate_limit_per_minute=6)
    b = servers.start(rate_limit_per_minute=6)

    async with httpx.AsyncClient(headers=member.headers, timeout=PATIENCE) as http:
        answers = [
            await http.get(f"{server.api}/pipelines")
            for server in (a, b, a, b, a, b, a, b)
        ]

    assert [answer.status_code for answer in answers] == [200] * 6 + [429] * 2
    assert [answer.headers["x-ratelimit-remaining"] for answer in answers[:6]] == [
        "5",
        "4",
        "3",
        "2",
        "1",
        "0",
    ]


@needs_postgres_and_redis
async def test_the_live_socket_limit_counts_sockets_on_every_replica(
    servers: Servers, factory: Factory
) -> None:
    org = await factory.org()
    member = await factory.member(org, "viewer")
    a, b = servers.start(), servers.start()

    async with (
        live_socket(a, member),
        live_socket(a, member),
        live_socket(a, member),
        live_socket(a, member),
        live_socket(a, member),
        live_socket(b, member),
        live_socket(b, member),
        live_socket(b, member),
        live_socket(b, member),
    ):
        async with live_socket(b, member):
            for server in (a, b):
                async with connect(
                    f"{server.ws}/debug/live", additional_headers=member.headers
                ) as refused:
                    code, reason = await closed_with(refused)
                    assert code == 4429
                    assert reason
        freed = await open_when_a_slot_is_free(a, member)
        await freed.close()


# --- Redis lost and back -----------------------------------------------------


async def test_losing_redis_closes_live_sockets_and_leaves_the_api_answering(
    tmp_path: Path,
    migrated_database: str,
    redis_server: PrivateRedis,
    factory: Factory,
) -> None:
    org = await factory.org()
    pipeline = (await factory.pipeline(org.owner))["id"]
    server = Servers(tmp_path, migrated_database, redis_server.url()).start(
        live_session_check_seconds=0.5
    )

    try:
        async with (
            live_socket(server, org.owner) as ws,
            live_socket(server, org.owner) as idle,
        ):
            await subscribe(ws, pipeline)
            sent = await send_events(server, org.owner, pipeline, events(0, 1))
            assert stage_ids(await stage_events(ws, len(sent))) == stage_ids(sent)

            redis_server.stop()
            code, reason = await closed_with(ws)
            # A socket with no subscription goes too, at the next check.
            idle_code, _ = await closed_with(idle)

        async with httpx.AsyncClient(headers=org.owner.headers) as http:
            listed = await http.get(f"{server.api}/pipelines")
            graph = await http.post(
                f"{server.api}/graphql",
                json={"query": "{ pipelines(first: 5) { totalCount } }"},
            )
            ready = await http.get(f"{server.url}/health/ready")

        redis_server.start()
        async with live_socket(server, org.owner) as again:
            await subscribe(again, pipeline)
            sent_again = await send_events(server, org.owner, pipeline, events(1, 1))
            received_again = await stage_events(again, len(sent_again))
    finally:
        server.stop()

    assert code == 1011
    assert "Redis" in reason
    assert idle_code == 1011
    assert listed.status_code == 200
    assert [p["id"] for p in listed.json()["data"]] == [pipeline]
    assert graph.status_code == 200
    assert graph.json()["data"] == {"pipelines": {"totalCount": 1}}
    assert ready.status_code == 200
    assert ready.json()["redis"] == "down"
    assert stage_ids(received_again) == stage_ids(sent_again)


@asynccontextmanager
async def graphql_subscription(
    server: RunningServer, member: Member, pipeline_id: str
) -> AsyncIterator[ClientConnection]:
    """A graphql-transport-ws connection with `liveEvents` subscribed; the
    server handles messages in order, so the pong means it is listening."""
    async with connect(
        f"{server.ws}/graphql", subprotocols=[Subprotocol("graphql-transport-ws")]
    ) as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "connection_init",
                    "payload": {"authorization": member.headers["Authorization"]},
                }
            )
        )
        assert (await receive(ws))["type"] == "connection_ack"
        await ws.send(
            json.dumps(
                {
                    "id": "live",
                    "type": "subscribe",
                    "payload": {
                        "query": LIVE_EVENTS,
                        "variables": {"pipelineId": pipeline_id},
                    },
                }
            )
        )
        await ws.send(json.dumps({"type": "ping"}))
        assert await receive(ws) == {"type": "pong"}
        yield ws


# --- Shutdown ----------------------------------------------------------------


async def test_sigterm_closes_live_sockets_as_a_restart_and_exits(
    servers: Servers, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = (await factory.pipeline(org.owner))["id"]
    server = servers.start(shutdown_grace_seconds=5)

    async with (
        live_socket(server, org.owner) as subscribed,
        live_socket(server, org.owner) as of_a_pipeline,
        live_socket(server, org.owner) as not_subscribed,
        graphql_subscription(server, org.owner, pipeline) as graphql,
    ):
        await subscribe(subscribed)
        await subscribe(of_a_pipeline, pipeline)

        server.process.send_signal(signal.SIGTERM)
        codes = [
            (await closed_with(ws))[0]
            for ws in (subscribed, of_a_pipeline, not_subscribed, graphql)
        ]
        exit_code = await asyncio.to_thread(server.process.wait, PATIENCE)

    assert codes == [1012, 1012, 1012, 1012]
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert exit_code in (0, -signal.SIGTERM)


# --- A listener that stops reading -------------------------------------------


class UnreadSocket:
    """A live socket whose client reads only when asked, through a small
    receive buffer, so that while it does not read the server soon cannot
    send to it. (A full client library keeps reading into memory.)"""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._reader = reader
        self._writer = writer
        self._protocol: ClientProtocol | None = None
        self._texts: list[str] = []

    @classmethod
    async def open(cls, server: RunningServer, member: Member) -> UnreadSocket:
        connection = socket.socket()
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        connection.setblocking(False)
        await asyncio.get_running_loop().sock_connect(
            connection, ("127.0.0.1", server.port)
        )
        reader, writer = await asyncio.open_connection(sock=connection, limit=4096)
        opened = cls(reader, writer)
        protocol = ClientProtocol(parse_uri(f"{server.ws}/debug/live"), max_size=None)
        request = protocol.connect()
        request.headers["Authorization"] = member.headers["Authorization"]
        protocol.send_request(request)
        opened._protocol = protocol
        opened._flush()
        assert json.loads(await opened.recv()) == {"type": "ready"}
        return opened

    async def recv(self) -> str:
        assert self._protocol is not None
        while not self._texts:
            data = await asyncio.wait_for(self._reader.read(65536), PATIENCE)
            assert data, "the server closed the connection"
            self._protocol.receive_data(data)
            for event in self._protocol.events_received():
                if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                    self._texts.append(bytes(event.data).decode())
            self._flush()
        return self._texts.pop(0)

    async def send(self, text: str) -> None:
        assert self._protocol is not None
        self._protocol.send_text(text.encode())
        self._flush()

    def close(self) -> None:
        self._writer.close()

    def _flush(self) -> None:
        assert self._protocol is not None
        for data in self._protocol.data_to_send():
            self._writer.write(data)


async def test_a_listener_that_stops_reading_loses_the_oldest_and_slows_no_one(
    servers: Servers, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = (await factory.pipeline(org.owner))["id"]
    server = servers.start()
    sent: list[dict[str, Any]] = []

    stalled = await UnreadSocket.open(server, org.owner)
    try:
        await stalled.send(json.dumps({"type": "subscribe", "pipeline_id": pipeline}))
        await stalled.send(json.dumps({"type": "ping"}))
        assert json.loads(await stalled.recv()) == {"type": "pong"}
        async with live_socket(server, org.owner) as reader:
            await subscribe(reader, pipeline)
            reading = asyncio.create_task(stage_events(reader, 5000))
            for first in range(0, 2500, EVENTS_PER_REQUEST):
                batch = events(first, EVENTS_PER_REQUEST, padding=4000)
                sent += await send_events(server, org.owner, pipeline, batch)
            received = await reading

        dropped = 0
        late: list[str] = []
        while dropped + len(late) < len(sent):
            message = json.loads(await stalled.recv())
            if message["type"] == "dropped":
                dropped += message["count"]
            elif message["type"] == "event":
                late.append(message["data"]["id"])
    finally:
        stalled.close()

    assert len(sent) == 5000
    assert stage_ids(received) == stage_ids(sent)
    assert dropped > 0
    assert dropped + len(late) == len(sent)
    positions = [stage_ids(sent).index(stage_id) for stage_id in late]
    assert positions == sorted(positions)
    assert late[-1] == sent[-1]["id"]
