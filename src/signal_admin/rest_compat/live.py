"""The REST live socket, `/v1/admin/debug/live`: stage events of the caller's
organisation as they happen (docs/live.md has the protocol).

A socket is authenticated once, charged once against the rate limit, and
holds one of its user's live-socket slots while it is open. It runs as the
handler's own receive loop plus two small tasks: a clock (heartbeats, the
token's expiry, the end of the session) and, while subscribed, a forwarder
of the listener's events. Every frame goes out under one lock, so nothing is
sent after the close frame, and the listener is only ever opened and closed
by the receive loop, which nothing cancels.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from fastapi import APIRouter, WebSocket
from starlette.types import Message as AsgiMessage
from starlette.websockets import WebSocketDisconnect, WebSocketState

from signal_admin import strict_json
from signal_admin.errors import (
    BadRequest,
    DomainError,
    FieldProblem,
    InvalidToken,
    Unauthorized,
    ValidationFailed,
)
from signal_admin.live.bus import BusClosed, BusUnavailable, Dropped, Feed, Message
from signal_admin.live.bus import Listener as BusListener
from signal_admin.resolvers.access import RateLimitedWith, charge, identify
from signal_admin.resolvers.auth import authenticate
from signal_admin.resolvers.context import (
    Principal,
    RequestContext,
    RequestMeta,
    Services,
)
from signal_admin.resolvers.live import (
    LiveSocket,
    TooManySockets,
    open_stage_stream,
    renew,
)
from signal_admin.rest_compat import API_PREFIX
from signal_admin.rest_compat.middleware import envelope, state_of

log = structlog.get_logger(__name__)

router = APIRouter(prefix=API_PREFIX, tags=["Live"])

MAX_MESSAGE_BYTES = 64 * 1024
# A close frame's reason holds at most 123 bytes.
MAX_REASON_BYTES = 123
# Close codes of refusals, by the status of the domain error behind them.
CLOSE_CODES = {401: 4401, 403: 4403, 404: 4404, 429: 4429}
BUS_LOST = 1011
RESTART = 1012
SUBSCRIBE_FIELDS = frozenset({"type", "pipeline_id", "filter"})

READY = '{"type":"ready"}'
PONG = '{"type":"pong"}'
HEARTBEAT = '{"type":"heartbeat"}'
TOKEN_EXPIRED = "The access token expired; send a newer one before it does."
SESSION_ENDED = "The session was revoked or the user may no longer sign in."


@router.websocket("/debug/live")
async def live_debug(websocket: WebSocket) -> None:
    """Stream the stage events of the caller's pipelines as they happen."""
    services: Services = websocket.app.state.services
    meta: RequestMeta = state_of(websocket.scope).get("meta") or RequestMeta()
    assert services.live_sockets is not None
    try:
        await websocket.accept()
    except OSError:
        return

    principal = await _admit(websocket, services, meta)
    if principal is None:
        return

    try:
        async with services.live_sockets.open(principal) as live_socket:
            await LiveDebugSocket(websocket, services, meta, live_socket).run()
    except TooManySockets as error:
        log.info("live.socket_refused", user_id=principal.user_id, code=4429)
        await _close(websocket, 4429, error.message)
    except BusUnavailable as error:
        log.warning("live.socket_refused", user_id=principal.user_id, code=BUS_LOST)
        await _close(websocket, BUS_LOST, str(error))


async def _admit(
    websocket: WebSocket, services: Services, meta: RequestMeta
) -> Principal | None:
    """The caller of a new socket, charged once (their address when the token
    is bad or missing); None once the socket is refused and closed."""
    principal: Principal | None = None
    refusal: Unauthorized = Unauthorized()
    authorization = websocket.headers.get("authorization")
    try:
        if authorization is not None:
            principal = await identify(services, authorization)
        else:
            token = await _first_token(
                websocket, services.settings.live_auth_timeout_seconds
            )
            if token is not None:
                principal = await authenticate(services, token)
    except Unauthorized as error:
        refusal = error
    except DomainError as error:
        # The database cannot tell who is calling: try again later.
        log.warning("live.socket_refused", code=1011, error=error.code)
        await _close(websocket, 1011, error.message)
        return None

    try:
        await charge(services, principal, meta)
    except RateLimitedWith as error:
        log.info("live.socket_refused", code=4429, error=error.code)
        await _close(websocket, 4429, error.message)
        return None
    if principal is None:
        log.info("live.socket_refused", code=4401, error=refusal.code)
        await _close(websocket, 4401, refusal.message)
    return principal


async def _first_token(websocket: WebSocket, wait_seconds: float) -> str | None:
    """The token of the socket's first message, `{"type": "auth", "token"}`;
    None when the client left first."""
    try:
        async with asyncio.timeout(wait_seconds):
            message = await websocket.receive()
    except TimeoutError:
        raise Unauthorized(
            f"Send an auth message within {wait_seconds:g} seconds of connecting "
            "(tokens in the URL are ignored)."
        ) from None
    if message["type"] == "websocket.disconnect":
        return None
    try:
        request = _client_message(message)
    except BadRequest:
        request = {}
    token = request.get("token")
    if request.get("type") != "auth":
        raise Unauthorized('The first message must be {"type": "auth", "token": …}.')
    if not isinstance(token, str) or not token.strip():
        raise Unauthorized("The auth message carries no token.")
    return token


@dataclass(slots=True)
class Subscription:
    """The current subscription: its registered listener and the task that
    forwards its events."""

    listening: AsyncExitStack
    forwarding: asyncio.Task[None]


class LiveDebugSocket:
    """One authenticated socket, from `ready` until either side closes it."""

    def __init__(
        self,
        websocket: WebSocket,
        services: Services,
        meta: RequestMeta,
        live_socket: LiveSocket,
    ) -> None:
        self.websocket = websocket
        self.services = services
        self.meta = meta
        self.live_socket = live_socket
        self._subscription: Subscription | None = None
        self._sending = asyncio.Lock()
        self._ended = False
        self._close_code: int | None = None

    @property
    def principal(self) -> Principal:
        """The caller as of now: the watch keeps the role current, and an
        in-band token replaces it."""
        return self.live_socket.principal

    async def run(self) -> None:
        """Serve the socket until it ends, then give back everything it held."""
        log.info(
            "live.socket_opened",
            socket_id=self.live_socket.id,
            user_id=self.principal.user_id,
            org_id=self.principal.org_id,
        )
        await self._send(READY)
        clock = asyncio.create_task(self._keep_time(), name="live-socket-clock")
        try:
            await self._receive()
        finally:
            clock.cancel()
            await self._unsubscribe()
            await asyncio.wait([clock])
            log.info(
                "live.socket_closed",
                socket_id=self.live_socket.id,
                user_id=self.principal.user_id,
                code=self._close_code,
            )

    async def _receive(self) -> None:
        """Handle the client's messages, in order, until the socket ends."""
        while not self._ended:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                self._ended = True
                self._close_code = self._close_code or message.get("code")
                return
            try:
                await self._handle(_client_message(message))
            except DomainError as error:
                await self._refuse(error)

    async def _handle(self, request: dict[str, Any]) -> None:
        kind = request.get("type")
        if kind == "subscribe":
            await self._subscribe(request)
        elif kind == "unsubscribe":
            await self._unsubscribe()
        elif kind == "ping":
            await self._send(PONG)
        elif kind == "auth":
            await self._reauthenticate(request.get("token"))
        else:
            raise BadRequest(
                f"Unknown message type {_shown(kind)}; send subscribe, "
                "unsubscribe, ping or auth."
            )

    async def _refuse(self, error: DomainError) -> None:
        """Close the socket for a refusal that ends it (401, 403, 404, 429);
        answer an error message for any other, and stay open."""
        code = CLOSE_CODES.get(error.status)
        if code is not None:
            await self._close(code, error.message)
        else:
            await self._send(_dumps({"type": "error", **envelope(error)}))

    async def _subscribe(self, request: dict[str, Any]) -> None:
        """Replace the current subscription with the one asked for."""
        pipeline_id, conditions = _subscription_of(request)
        ctx = RequestContext(self.services, self.meta, principal=self.principal)
        wants = await open_stage_stream(ctx, pipeline_id, conditions)
        await self._unsubscribe()
        if self._ended:
            return

        assert self.services.live is not None
        listening = AsyncExitStack()
        try:
            listener = await listening.enter_async_context(
                self.services.live.listen(
                    Feed.LIVE,
                    self.principal.org_id,
                    pipeline_id=pipeline_id,
                    wants=wants,
                )
            )
        except BusUnavailable as error:
            await self._bus_failed(error)
            return
        forwarding = asyncio.create_task(
            self._forward(listener), name="live-socket-forwarder"
        )
        self._subscription = Subscription(listening, forwarding)
        log.info(
            "live.subscribed",
            socket_id=self.live_socket.id,
            pipeline_id=pipeline_id,
            filtered=bool(conditions),
        )

    async def _unsubscribe(self) -> None:
        """End the current subscription, if any: its forwarder stops and its
        listener leaves the bus."""
        subscription, self._subscription = self._subscription, None
        if subscription is None:
            return
        subscription.forwarding.cancel()
        await asyncio.wait([subscription.forwarding])
        await subscription.listening.aclose()

    async def _reauthenticate(self, token: object) -> None:
        """Take a newer token of the same user: it moves the socket's expiry."""
        if not isinstance(token, str) or not token:
            raise InvalidToken("An auth message carries the token as a string.")
        await renew(self.services, self.live_socket, token)

    async def _forward(self, listener: BusListener) -> None:
        """Send the listener's events, each as the one frame every REST
        listener of this process shares, until the bus fails."""
        try:
            while not self._ended:
                item = await listener.next()
                if isinstance(item, Dropped):
                    await self._send(_dumps({"type": "dropped", "count": item.count}))
                else:
                    await self._send(item.shared("rest", _event_frame))
        except BusUnavailable as error:
            await self._bus_failed(error)

    async def _keep_time(self) -> None:
        """Send heartbeats, and end the socket when its token expires or the
        watch finds its session ended."""
        loop = asyncio.get_running_loop()
        interval = self.services.settings.live_heartbeat_seconds
        heartbeat_at = loop.time() + interval
        while not self._ended:
            wake_at = min(heartbeat_at, self._expiry_at(loop))
            try:
                async with asyncio.timeout_at(wake_at):
                    await self.live_socket.ended.wait()
            except TimeoutError:
                pass
            else:
                if self.live_socket.lost is not None:
                    await self._bus_failed(self.live_socket.lost)
                else:
                    await self._close(4401, SESSION_ENDED)
                return
            if self._token_expired():
                await self._close(4401, TOKEN_EXPIRED)
                return
            if loop.time() >= heartbeat_at:
                await self._send(HEARTBEAT)
                heartbeat_at = loop.time() + interval

    def _expiry_at(self, loop: asyncio.AbstractEventLoop) -> float:
        """The token's expiry on the loop's clock (infinity for none)."""
        expires_at = self.principal.token_expires_at
        if expires_at is None:
            return float("inf")
        return loop.time() + (expires_at - datetime.now(UTC)).total_seconds()

    def _token_expired(self) -> bool:
        expires_at = self.principal.token_expires_at
        return expires_at is not None and datetime.now(UTC) >= expires_at

    async def _bus_failed(self, error: BusUnavailable) -> None:
        """Redis was lost (1011), or the service is shutting down (1012)."""
        code = RESTART if isinstance(error, BusClosed) else BUS_LOST
        log.warning("live.socket_bus_failed", socket_id=self.live_socket.id, code=code)
        await self._close(code, str(error))

    async def _send(self, text: str) -> None:
        async with self._sending:
            if self._ended:
                return
            try:
                await self.websocket.send({"type": "websocket.send", "text": text})
            except WebSocketDisconnect:
                self._ended = True

    async def _close(self, code: int, reason: str) -> None:
        async with self._sending:
            if self._ended:
                return
            self._ended = True
            self._close_code = code
            await _close(self.websocket, code, reason)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    """Close with `code`, unless either side already did."""
    if (
        websocket.application_state is not WebSocketState.CONNECTED
        or websocket.client_state is not WebSocketState.CONNECTED
    ):
        return
    with suppress(WebSocketDisconnect):
        await websocket.close(code, _short(reason))


def _client_message(message: AsgiMessage) -> dict[str, Any]:
    """A client frame as a JSON object; BadRequest for anything else."""
    text = message.get("text")
    if text is None:
        raise BadRequest("Send messages as JSON text frames, not binary ones.")
    if len(text) > MAX_MESSAGE_BYTES or len(text.encode()) > MAX_MESSAGE_BYTES:
        raise BadRequest(
            f"A message may be at most {MAX_MESSAGE_BYTES // 1024} KiB of JSON."
        )
    try:
        request = strict_json.loads(text)
    except (ValueError, RecursionError):
        raise BadRequest("The message is not valid JSON.") from None
    if not isinstance(request, dict):
        raise BadRequest('A message is a JSON object with a "type".')
    return request


def _subscription_of(
    request: dict[str, Any],
) -> tuple[str | None, dict[str, Any] | None]:
    """The pipeline and filter a subscribe message asks for. Unknown fields
    are refused, so a misspelt `pipeline_id` cannot widen the stream."""
    unknown = sorted(set(request) - SUBSCRIBE_FIELDS)
    if unknown:
        raise BadRequest(
            f"Unknown field {', '.join(_shown(name) for name in unknown)}; "
            "subscribe takes pipeline_id and filter."
        )
    pipeline_id = request.get("pipeline_id")
    conditions = request.get("filter")
    problems = []
    if pipeline_id is not None and not isinstance(pipeline_id, str):
        problems.append(
            FieldProblem("pipeline_id", "INVALID", "A pipeline id is a string.")
        )
    if conditions is not None and not isinstance(conditions, dict):
        problems.append(FieldProblem("filter", "INVALID", "The filter is an object."))
    if problems:
        raise ValidationFailed("The subscription is not valid.", problems)
    return pipeline_id, conditions


def _event_frame(message: Message) -> str:
    """The REST frame of a stage event, around its JSON as published."""
    return '{"type":"event","data":' + message.text + "}"


def _dumps(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"))


def _shown(value: object) -> str:
    """A client's value quoted for a message, cut short."""
    return repr(value)[:40]


def _short(reason: str) -> str:
    """`reason` cut to what a close frame holds, on a character boundary."""
    encoded = reason.encode(errors="replace")
    if len(encoded) <= MAX_REASON_BYTES:
        return encoded.decode()
    return encoded[: MAX_REASON_BYTES - 3].decode(errors="ignore") + "..."
