"""Clients of a real server's live streams: the REST socket as a browser or a
script would use it, and test events sent through the server's HTTP so their
stages reach its bus."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.factories import Member
from tests.servers import RunningServer

# How long a client waits for a message before the test fails: a safety net
# against a hung test, never a measured bound.
PATIENCE_SECONDS = 15.0


class LiveClient:
    """One REST live socket. `receive` passes over heartbeats unless asked."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        if isinstance(message, dict):
            message = json.dumps(message)
        await self.connection.send(message)

    async def receive(self, *, heartbeats: bool = False) -> dict[str, Any]:
        async with asyncio.timeout(PATIENCE_SECONDS):
            while True:
                message: dict[str, Any] = json.loads(await self.connection.recv())
                if heartbeats or message["type"] != "heartbeat":
                    return message

    async def expect(self, kind: str) -> dict[str, Any]:
        message = await self.receive()
        assert message["type"] == kind, message
        return message

    async def ping(self) -> None:
        """A round trip: every message sent before it has been handled."""
        await self.send({"type": "ping"})
        await self.expect("pong")

    async def subscribe(
        self, pipeline_id: str | None = None, **conditions: Any
    ) -> None:
        """Subscribe, and wait until the subscription is in force."""
        request: dict[str, Any] = {"type": "subscribe"}
        if pipeline_id is not None:
            request["pipeline_id"] = pipeline_id
        if conditions:
            request["filter"] = conditions
        await self.send(request)
        await self.ping()

    async def events(self, count: int) -> list[dict[str, Any]]:
        """The stage events of the next `count` event messages."""
        events = []
        while len(events) < count:
            message = await self.expect("event")
            events.append(message["data"])
        return events

    async def closed(self) -> tuple[int, str]:
        """The code and reason the server closes the socket with, passing over
        whatever it sends before."""
        with pytest.raises(ConnectionClosed) as closed:
            await self._read_forever()
        frame = closed.value.rcvd
        assert frame is not None, "closed without a close frame"
        return frame.code, frame.reason

    async def _read_forever(self) -> None:
        async with asyncio.timeout(PATIENCE_SECONDS):
            while True:
                await self.connection.recv()


@asynccontextmanager
async def live_socket(
    server: RunningServer,
    token: str | None = None,
    *,
    in_band: bool = False,
    query: str = "",
    authorization: str | None = None,
) -> AsyncIterator[LiveClient]:
    """A socket to `server`'s `/debug/live`, with `token` in the Authorization
    header or, `in_band`, in a first auth message; `authorization` sets the
    header as it is."""
    if token and not in_band:
        authorization = f"Bearer {token}"
    headers = {"Authorization": authorization} if authorization else {}
    async with connect(
        f"{server.ws}/debug/live{query}",
        additional_headers=headers,
        open_timeout=PATIENCE_SECONDS,
        close_timeout=2,
    ) as connection:
        client = LiveClient(connection)
        if token and in_band:
            await client.send({"type": "auth", "token": token})
        yield client


@asynccontextmanager
async def ready_socket(
    server: RunningServer, member: Member, **options: Any
) -> AsyncIterator[LiveClient]:
    """An authenticated socket of `member`'s, past its `ready`."""
    async with live_socket(server, member.access_token, **options) as client:
        await client.expect("ready")
        yield client


async def send_test_events(
    server: RunningServer, member: Member, pipeline_id: str, *events: dict[str, Any]
) -> list[dict[str, Any]]:
    """Send `events` through the server as test events; their stages, in the
    order the server published them."""
    async with httpx.AsyncClient(timeout=PATIENCE_SECONDS) as http:
        response = await http.post(
            f"{server.api}/pipelines/{pipeline_id}/test-events",
            json={"events": list(events)},
            headers=member.headers,
        )
    assert response.status_code == 200, response.text
    return [
        stage for result in response.json()["results"] for stage in result["stages"]
    ]


def track(name: str = "order_completed", **fields: Any) -> dict[str, Any]:
    return {"type": "track", "event": name, "anonymousId": "visitor-1", **fields}


def page(**fields: Any) -> dict[str, Any]:
    return {"type": "page", "anonymousId": "visitor-1", "name": "Home", **fields}
