"""GraphQL subscriptions: the WebSocket on `/v1/admin/graphql`, speaking
graphql-transport-ws.

A connection takes these steps:

- connect: `connection_init` carries the access token (`{"authorization":
  "Bearer …"}` or `{"token": "…"}`), checked by the same code as HTTP; the
  connection is charged once against the rate limit and takes one of the
  user's live-socket slots. A missing or bad token closes it with 4403, a full
  window or too many sockets with 4429, no `connection_init` in time with
  4408;
- subscribe: the document passes the same checks as over HTTP (its size,
  shape, validity and cost), must be a subscription, and its field's resolver
  authorises the caller and opens its stream. A refusal is an `error` message
  for that id; the connection stays open. This all happens before the next
  client message is read, so a `pong` answering a `ping` sent after a
  `subscribe` means that subscription is listening;
- stream: every event becomes a `next` message, until the client completes
  the subscription, the access token expires or the session ends (4403), the
  bus is lost (1011) or the service shuts down (1012).

Subscribers share work: those with the same document, operation name,
variables, organisation and role run one execution per event, and its
encoded payload, kept on the bus message, is sent to each of them with only
the subscription id differing. Each execution has a fresh context, so its
loaders cache nothing from an earlier event.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable, Hashable
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from inspect import isawaitable
from typing import Any, cast

import structlog
from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLFormattedError,
    OperationType,
)
from graphql import ExecutionResult as CoreExecutionResult
from graphql.execution import create_source_event_stream, execute_subscription_event
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    Operation as SocketOperation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    ErrorMessage,
    SubscribeMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import (
    BaseGraphQLWSHandler,
)
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ConnectionInitMessage as LegacyConnectionInitMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ErrorMessage as LegacyErrorMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.types import StartMessage
from strawberry.types.unset import UNSET, UnsetType

from signal_admin import strict_json
from signal_admin.config import Settings
from signal_admin.errors import DomainError, InternalError, Unauthorized
from signal_admin.live.bus import BusClosed, BusUnavailable, Dropped, Message
from signal_admin.resolvers import live
from signal_admin.resolvers.access import RateLimitedWith, charge, identify
from signal_admin.resolvers.auth import authenticate
from signal_admin.resolvers.context import (
    Principal,
    RequestContext,
    RequestMeta,
    Services,
    permission_of,
)
from signal_admin.resolvers.live import LiveSocket, TooManySockets
from signal_admin.rest_compat.middleware import state_of
from signal_admin.schema import admission
from signal_admin.schema.context import GraphQLContext
from signal_admin.schema.document import Operation, read_operation, validate
from signal_admin.schema.errors import (
    DocumentRefused,
    InvalidDocument,
    execution_error_body,
    refusal_bodies,
)
from signal_admin.schema.execution import PlannedExecutionContext
from signal_admin.schema.root import graphql_schema, schema
from signal_admin.schema.streams import FeedStream, Item
from signal_admin.schema.transport import MAX_VALUE_DEPTH
from signal_admin.security.permissions import Permission
from signal_admin.strict_json import nesting_depth

log = structlog.get_logger(__name__)

# Close codes: the protocol's own, and the WebSocket standard's for the bus.
FORBIDDEN = 4403
NOT_ACCEPTABLE = 4406
TOO_MANY_REQUESTS = 4429
BUS_LOST = 1011
SERVICE_RESTART = 1012
# A close frame's reason holds at most 123 bytes.
MAX_REASON_BYTES = 123


class SubscriptionsOnly(DocumentRefused):
    code = "SUBSCRIPTIONS_ONLY"
    default_message = (
        "Only subscriptions run over the WebSocket; send queries and mutations "
        "with POST."
    )


class TooManySubscriptions(DocumentRefused):
    code = "TOO_MANY_SUBSCRIPTIONS"
    default_message = "This connection has as many subscriptions as it may."


class SocketRefused(Exception):
    """The connection may not go on: it closes with `code`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(slots=True)
class Connection:
    """One socket's state, the handler's context: who is connected, once
    `connection_init` has said, and what the connection holds until it
    closes (its live-socket slot)."""

    services: Services
    meta: RequestMeta
    connection_params: dict[str, object] | None = None
    live_socket: LiveSocket | None = None
    resources: AsyncExitStack = field(default_factory=AsyncExitStack)

    @property
    def principal(self) -> Principal:
        if self.live_socket is None:
            raise Unauthorized()
        return self.live_socket.principal

    def request(self) -> RequestContext:
        return RequestContext(
            services=self.services, meta=self.meta, principal=self.principal
        )


class SocketView:
    """What Strawberry's handler and adapter ask of their view: JSON coding,
    and the connection step, which authenticates the client."""

    def decode_json(self, data: str | bytes) -> object:
        """A client message; anything that is not JSON (NaN, a nesting too
        deep to follow) is refused as the handler refuses malformed JSON."""
        try:
            return strict_json.loads(data)
        except (ValueError, RecursionError) as error:
            if isinstance(error, json.JSONDecodeError):
                raise
            raise json.JSONDecodeError(str(error), "", 0) from error

    def encode_json(self, data: object) -> str:
        return json.dumps(data, separators=(",", ":"))

    async def on_ws_connect(self, context: Connection) -> UnsetType:
        """Authenticate the client from `connection_init`'s payload, charge
        the connection once and take a live-socket slot for it."""
        services = context.services
        refusal: Unauthorized | None = None
        try:
            principal = await _principal_of(services, context.connection_params or {})
        except Unauthorized as error:
            principal, refusal = None, error
        try:
            await charge(services, principal, context.meta)
        except RateLimitedWith as error:
            raise SocketRefused(TOO_MANY_REQUESTS, error.message) from error
        if principal is None:
            refusal = refusal or Unauthorized(
                'connection_init must carry the access token: {"authorization": '
                '"Bearer <token>"} or {"token": "<token>"}.'
            )
            raise SocketRefused(FORBIDDEN, refusal.message)
        assert services.live_sockets is not None
        try:
            context.live_socket = await context.resources.enter_async_context(
                services.live_sockets.open(principal)
            )
        except TooManySockets as error:
            raise SocketRefused(TOO_MANY_REQUESTS, error.message) from error
        except BusUnavailable as error:
            raise SocketRefused(BUS_LOST, str(error)) from error
        unset: UnsetType = UNSET
        return unset


async def _principal_of(
    services: Services, params: dict[str, object]
) -> Principal | None:
    authorization = params.get("authorization", params.get("Authorization"))
    if isinstance(authorization, str):
        return await identify(services, authorization)
    token = params.get("token")
    if isinstance(token, str) and token.strip():
        return await authenticate(services, token.strip())
    return None


class SocketAdapter(ASGIWebSocketAdapter):
    """Strawberry's ASGI adapter, which also sends text already encoded and
    closes at most once, whichever task closes first."""

    def __init__(self, view: SocketView, websocket: WebSocket) -> None:
        super().__init__(view, websocket, websocket)  # type: ignore[arg-type]
        self.closed = False

    async def send_text(self, text: str) -> None:
        if self.closed:
            raise WebSocketDisconnected
        try:
            await self.ws.send_text(text)
        except WebSocketDisconnect as error:
            raise WebSocketDisconnected from error

    async def send_json(self, message: Any) -> None:
        if self.closed:
            raise WebSocketDisconnected
        await super().send_json(message)

    async def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        encoded = reason.encode()[:MAX_REASON_BYTES]
        with suppress(RuntimeError, WebSocketDisconnect):
            await super().close(code, encoded.decode(errors="ignore"))
        log.info("graphql.socket_closed", code=code, reason=reason)


@dataclass(slots=True)
class Subscription:
    """One admitted subscription: its stream, and how each item becomes the
    payload of a `next` message."""

    executor: PlannedExecutionContext
    stream: FeedStream[Any]
    key: Hashable
    # The caller as admitted: the role in `key` is the role events run with.
    request: RequestContext
    document: DocumentNode
    # What the caller's role must still grant for each event to be sent: the
    # watch keeps the role current, so a demotion ends the subscription.
    permission: Permission | None

    async def payload_of(self, item: Item) -> str | None:
        """The encoded payload for `item`, made once for every subscriber
        with the same key; None for an item that cannot be shown."""
        if isinstance(item, Dropped):
            # How many were lost is each subscriber's own.
            return await self._execute(item)
        shared: asyncio.Future[str | None] = item.shared(self.key, self._start)
        # Shielded: a subscriber that leaves must not cancel the others' work.
        return await asyncio.shield(shared)

    def _start(self, message: Message) -> asyncio.Future[str | None]:
        return asyncio.ensure_future(self._execute(message))

    async def _execute(self, item: Item) -> str | None:
        try:
            root = self.stream.view(item)
        except DomainError:
            raise
        except Exception:
            log.exception("graphql.subscription_item_unreadable")
            return None
        executor = self.executor.build_per_event_executor(root)
        request = RequestContext(
            services=self.request.services,
            meta=self.request.meta,
            principal=self.request.principal,
        )
        executor.context_value = GraphQLContext(request=request, document=self.document)
        result = execute_subscription_event(executor)
        if isawaitable(result):
            result = await result
        assert isinstance(result, CoreExecutionResult)
        body: dict[str, Any] = {}
        if result.errors:
            body["errors"] = [execution_error_body(error) for error in result.errors]
        body["data"] = result.data
        return json.dumps(body, separators=(",", ":"))


class Subscriber:
    """What both protocols do on one connection: admit a subscription, stream
    its events, and close the connection when the caller's access ends or
    the bus is lost."""

    def __init__(self, connection: Connection, websocket: SocketAdapter) -> None:
        self.connection = connection
        self.websocket = websocket
        self._watch: asyncio.Task[None] | None = None

    def start_watch(self) -> None:
        if self._watch is None:
            self._watch = asyncio.create_task(self._watch_session())

    async def finish(self) -> None:
        """Stop watching and give back what the connection holds."""
        if self._watch is not None:
            self._watch.cancel()
            with suppress(asyncio.CancelledError):
                await self._watch
        await self.connection.resources.aclose()

    async def admitted(
        self,
        payload: object,
        *,
        held: int,
        limit: int | None,
        refuse: Callable[[list[dict[str, Any]]], Awaitable[None]],
    ) -> Subscription | None:
        """The subscription `payload` asks for, on a connection already
        holding `held`; None once it was refused (`refuse` sent the errors)
        or the bus was found lost (the connection is closing)."""
        if limit is not None and held >= limit:
            refusal = TooManySubscriptions(
                f"A connection may hold at most {limit} subscriptions at once; "
                "end one first."
            )
            await refuse(refusal_bodies(refusal))
            return None
        try:
            return await self.subscribe(payload)
        except DomainError as error:
            await refuse(refusal_bodies(error))
        except ResolverRefused as refused:
            await refuse(refused.bodies)
        except BusUnavailable as error:
            await self.bus_lost(error)
        return None

    async def subscribe(self, payload: object) -> Subscription:
        """Admit a `subscribe` (or legacy `start`) payload as HTTP admits a
        document, then open its field's stream. Raises `DomainError` or
        `ResolverRefused` for a refusal, `BusUnavailable` when the bus cannot
        carry events."""
        if not isinstance(payload, dict):
            raise InvalidDocument([GraphQLError("payload must be an object.")])
        query = payload.get("query")
        variables = payload.get("variables")
        operation_name = payload.get("operationName")
        if not isinstance(query, str):
            raise InvalidDocument([GraphQLError("query must be a string.")])
        if variables is not None and not isinstance(variables, dict):
            raise InvalidDocument([GraphQLError("variables must be an object.")])
        if operation_name is not None and not isinstance(operation_name, str):
            raise InvalidDocument([GraphQLError("operationName must be a string.")])

        if nesting_depth(variables) > MAX_VALUE_DEPTH:
            raise InvalidDocument(
                [
                    GraphQLError(
                        "variables may nest objects and arrays at most "
                        f"{MAX_VALUE_DEPTH} deep."
                    )
                ]
            )

        principal = self.connection.principal
        operation = read_operation(query, operation_name)
        if operation.type is not OperationType.SUBSCRIPTION:
            raise SubscriptionsOnly()
        admission.check_caller(operation, principal)
        admission.check_shape(operation)
        coerced = validate(graphql_schema(), operation, variables)
        admission.check_cost(admission.node_cost(graphql_schema(), operation, coerced))

        executor = self._executor(operation, variables, operation_name)
        source = create_source_event_stream(executor)
        if isawaitable(source):
            source = await source
        if isinstance(source, CoreExecutionResult):
            raise _refusal_of(source.errors or [])
        assert isinstance(source, FeedStream)
        key = (
            "graphql",
            operation.text,
            operation_name,
            json.dumps(variables, sort_keys=True),
            principal.org_id,
            principal.role,
        )
        request = executor.context_value.request
        return Subscription(
            executor,
            source,
            key,
            request,
            operation.document,
            _permission_of(operation),
        )

    def _executor(
        self,
        operation: Operation,
        variables: dict[str, Any] | None,
        operation_name: str | None,
    ) -> PlannedExecutionContext:
        """The execution of exactly the document that was checked."""
        context = GraphQLContext(
            request=self.connection.request(), document=operation.document
        )
        executor = PlannedExecutionContext.build(
            graphql_schema(),
            operation.document,
            context_value=context,
            raw_variable_values=variables,
            operation_name=operation_name,
        )
        if isinstance(executor, list):
            raise InvalidDocument(executor)
        assert isinstance(executor, PlannedExecutionContext)
        return executor

    async def stream(self, subscription: Subscription, prefix: str) -> None:
        """Send each event of `subscription` as `prefix` + payload + `}`,
        until it is cancelled, the client leaves or the bus is lost. A
        `DomainError` (an event the subscription cannot show) is raised, for
        the protocol to end the subscription with."""
        try:
            while True:
                item = await subscription.stream.next_item()
                permission = subscription.permission
                if permission is not None:
                    self.connection.request().require(permission)
                payload = await subscription.payload_of(item)
                if payload is not None:
                    await self.websocket.send_text(f"{prefix}{payload}}}")
        except BusUnavailable as error:
            await self.bus_lost(error)
        except WebSocketDisconnected:
            pass
        except DomainError:
            raise
        except Exception as error:
            log.exception("graphql.subscription_failed")
            raise InternalError() from error
        finally:
            await subscription.stream.aclose()

    async def bus_lost(self, error: BusUnavailable) -> None:
        code = SERVICE_RESTART if isinstance(error, BusClosed) else BUS_LOST
        await self.websocket.close(code, str(error))

    async def _watch_session(self) -> None:
        """Close the connection when its access token expires, or when the
        watch of live sockets finds its session revoked or its user
        disabled."""
        socket = self.connection.live_socket
        assert socket is not None
        expires = socket.principal.token_expires_at
        remaining = (
            None
            if expires is None
            else max(0.0, (expires - datetime.now(UTC)).total_seconds())
        )
        try:
            await asyncio.wait_for(socket.ended.wait(), remaining)
            reason = "Your session ended; sign in again."
        except TimeoutError:
            reason = "Your access token expired; connect again with a fresh one."
        if socket.lost is not None:
            await self.bus_lost(socket.lost)
        else:
            await self.websocket.close(FORBIDDEN, reason)


# The permission each subscription field's resolver requires.
_FIELD_PERMISSIONS = {
    "liveEvents": permission_of(live.open_stage_stream),
    "auditLogAdded": permission_of(live.open_audit_stream),
}


def _permission_of(operation: Operation) -> Permission | None:
    """The permission the operation's one root field requires."""
    for selection in operation.definition.selection_set.selections:
        if isinstance(selection, FieldNode):
            return _FIELD_PERMISSIONS.get(selection.name.value)
    return None


def _next_prefix(message_type: str, operation_id: str) -> str:
    """The start of a frame carrying one payload; only the id differs between
    subscribers."""
    return f'{{"id":{json.dumps(operation_id)},"type":"{message_type}","payload":'


class SubscriptionHandler(BaseGraphQLTransportWSHandler[Connection, None]):
    """Strawberry's graphql-transport-ws handler, with this service's
    connection step, admission and shared execution."""

    websocket: SocketAdapter

    def __init__(
        self,
        view: SocketView,
        websocket: SocketAdapter,
        context: Connection,
        settings: Settings,
    ) -> None:
        super().__init__(
            view=view,  # type: ignore[arg-type]
            websocket=websocket,
            context=context,
            root_value=None,
            schema=schema,
            connection_init_wait_timeout=timedelta(
                seconds=settings.graphql_ws_init_timeout_seconds
            ),
            max_subscriptions_per_connection=settings.graphql_ws_max_subscriptions,
        )
        self.subscriber = Subscriber(context, websocket)

    async def handle(self) -> None:
        try:
            await super().handle()
        finally:
            await self.subscriber.finish()

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        try:
            await super().handle_connection_init(message)
        except SocketRefused as refusal:
            await self.websocket.close(refusal.code, refusal.reason)
            return
        if self.connection_acknowledged:
            self.subscriber.start_watch()

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        """Admit the subscription before the next message is read, then
        stream it in a task of its own."""
        if not self.connection_acknowledged:
            await self.websocket.close(4401, "Unauthorized")
            return
        operation_id = message["id"]
        if operation_id in self.operations:
            reason = f"Subscriber for {operation_id} already exists"
            await self.websocket.close(4409, reason)
            return
        subscription = await self.subscriber.admitted(
            message["payload"],
            held=len(self.operations),
            limit=self.max_subscriptions_per_connection,
            refuse=functools.partial(self._send_error, operation_id),
        )
        if subscription is None:
            return

        payload = message["payload"]
        operation = SocketOperation(
            self,
            operation_id,
            payload["query"],
            payload.get("variables"),
            payload.get("operationName"),
        )
        operation.task = asyncio.create_task(self._stream(operation, subscription))
        operation.task.add_done_callback(self._task_done)
        self.operations[operation_id] = operation

    async def _stream(
        self, operation: SocketOperation[Connection, None], subscription: Subscription
    ) -> None:
        try:
            await self.subscriber.stream(
                subscription, _next_prefix("next", operation.id)
            )
        except DomainError as error:
            with suppress(WebSocketDisconnected):
                await operation.send_operation_message(
                    _error_message(operation.id, refusal_bodies(error))
                )

    async def _send_error(
        self, operation_id: str, bodies: list[dict[str, Any]]
    ) -> None:
        await self.send_message(_error_message(operation_id, bodies))


class LegacySubscriptionHandler(BaseGraphQLWSHandler[Connection, None]):
    """Strawberry's handler of the legacy graphql-ws protocol, for clients
    that speak nothing newer; on only where settings allow it, with the same
    connection step, admission and execution as graphql-transport-ws."""

    websocket: SocketAdapter

    def __init__(
        self,
        view: SocketView,
        websocket: SocketAdapter,
        context: Connection,
        settings: Settings,
    ) -> None:
        super().__init__(
            view=view,  # type: ignore[arg-type]
            websocket=websocket,
            context=context,
            root_value=None,
            schema=schema,
            keep_alive=True,
            keep_alive_interval=settings.live_heartbeat_seconds,
            max_subscriptions_per_connection=settings.graphql_ws_max_subscriptions,
        )
        self.subscriber = Subscriber(context, websocket)

    async def handle(self) -> None:
        try:
            await super().handle()
        finally:
            await self.subscriber.finish()

    async def handle_connection_init(
        self, message: LegacyConnectionInitMessage
    ) -> None:
        if self.connection_acknowledged:
            return
        try:
            await super().handle_connection_init(message)
        except SocketRefused as refusal:
            with suppress(WebSocketDisconnected):
                await self.send_message(
                    {"type": "connection_error", "payload": {"message": refusal.reason}}
                )
            await self.websocket.close(refusal.code, refusal.reason)
            return
        if self.connection_acknowledged:
            self.subscriber.start_watch()

    async def handle_start(self, message: StartMessage) -> None:
        if not self.connection_acknowledged:
            await self.websocket.close(4401, "Unauthorized")
            return
        operation_id = message["id"]
        if operation_id in self.tasks:
            await self.cleanup_operation(operation_id)
        subscription = await self.subscriber.admitted(
            message["payload"],
            held=len(self.tasks),
            limit=self.max_subscriptions_per_connection,
            refuse=functools.partial(self._send_error, operation_id),
        )
        if subscription is None:
            return
        self.tasks[operation_id] = asyncio.create_task(
            self._stream(operation_id, subscription)
        )

    async def _stream(self, operation_id: str, subscription: Subscription) -> None:
        try:
            await self.subscriber.stream(
                subscription, _next_prefix("data", operation_id)
            )
        except DomainError as error:
            with suppress(WebSocketDisconnected):
                await self._send_error(operation_id, refusal_bodies(error))
        finally:
            self.tasks.pop(operation_id, None)

    async def _send_error(
        self, operation_id: str, bodies: list[dict[str, Any]]
    ) -> None:
        # The legacy protocol's error carries one error, not a list.
        await self.send_message(
            LegacyErrorMessage(
                type="error",
                id=operation_id,
                payload=cast(GraphQLFormattedError, bodies[0]),
            )
        )


class ResolverRefused(Exception):
    """The subscription field's resolver refused to open its stream."""

    def __init__(self, bodies: list[dict[str, Any]]) -> None:
        super().__init__(bodies[0]["message"] if bodies else "")
        self.bodies = bodies


def _error_message(operation_id: str, bodies: list[dict[str, Any]]) -> ErrorMessage:
    return ErrorMessage(
        id=operation_id,
        type="error",
        payload=cast(list[GraphQLFormattedError], bodies),
    )


def _refusal_of(errors: list[GraphQLError]) -> Exception:
    for error in errors:
        if isinstance(error.original_error, BusUnavailable):
            return error.original_error
    bodies = [execution_error_body(error) for error in errors]
    return ResolverRefused(bodies or refusal_bodies(InternalError()))


def accepted_protocol(websocket: WebSocket, settings: Settings) -> str | None:
    """The subprotocol to speak: graphql-transport-ws, or the legacy
    graphql-ws where settings allow it; None when the client offers
    neither."""
    offered = websocket.scope.get("subprotocols") or []
    if GRAPHQL_TRANSPORT_WS_PROTOCOL in offered:
        return GRAPHQL_TRANSPORT_WS_PROTOCOL
    if settings.graphql_ws_legacy_protocol and GRAPHQL_WS_PROTOCOL in offered:
        return GRAPHQL_WS_PROTOCOL
    return None


async def serve(websocket: WebSocket, settings: Settings) -> None:
    """Speak GraphQL subscriptions on `websocket` until it closes."""
    protocol = accepted_protocol(websocket, settings)
    await websocket.accept(subprotocol=protocol)
    view = SocketView()
    adapter = SocketAdapter(view, websocket)
    if protocol is None:
        # Strawberry's own answer to a protocol it does not speak.
        await adapter.close(NOT_ACCEPTABLE, "Subprotocol not acceptable")
        return
    meta = state_of(websocket.scope).get("meta")
    connection = Connection(
        services=websocket.app.state.services,
        meta=meta if isinstance(meta, RequestMeta) else RequestMeta(),
    )
    if protocol == GRAPHQL_TRANSPORT_WS_PROTOCOL:
        await SubscriptionHandler(view, adapter, connection, settings).handle()
    else:
        await LegacySubscriptionHandler(view, adapter, connection, settings).handle()
