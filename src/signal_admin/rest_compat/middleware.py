"""ASGI middleware around both faces: request metadata, the one log line and
the metrics of each request, rate-limit headers, body limits, and the last
line of defence that turns an unexpected exception into a clean 500."""

from __future__ import annotations

import ipaddress
import json
import re
import time
import uuid
from typing import Any

import structlog
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from signal_admin import strict_json
from signal_admin.errors import (
    DomainError,
    InternalError,
    InvalidJson,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from signal_admin.metrics import REQUEST_SECONDS, REQUESTS
from signal_admin.ratelimit import RateDecision
from signal_admin.resolvers.access import RateLimitedWith, RefusedAfterCharge, admit
from signal_admin.resolvers.context import RequestMeta
from signal_admin.rest_compat.documents import YAML_MEDIA_TYPES

log = structlog.get_logger("signal_admin.http")

# The route label of a call refused (401, 429) before it reached its route.
REFUSED_BEFORE_ROUTING = "refused before routing"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_BODY_METHODS = {"POST", "PUT", "PATCH"}
NOT_JSON_NUMBER = (
    "The body is not valid JSON: NaN, Infinity and numbers beyond the range "
    "of a double are not JSON numbers."
)


def state_of(scope: Scope) -> dict[str, Any]:
    state: dict[str, Any] = scope.setdefault("state", {})
    return state


class RequestContextMiddleware:
    """Assigns the request id, reads the client address, logs one line per
    request and records its metrics."""

    def __init__(self, app: ASGIApp, trusted_proxies: list[str]) -> None:
        self.app = app
        self._trusted = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        request_id = headers.get("x-request-id", "")
        if not _REQUEST_ID.match(request_id):
            request_id = uuid.uuid4().hex
        meta = RequestMeta(
            request_id=request_id,
            ip_address=self._client_ip(scope, headers),
            user_agent=headers.get("user-agent", "")[:500] or None,
        )
        state = state_of(scope)
        state["meta"] = meta
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = [(b"x-request-id", request_id.encode())]
                extra += _rate_limit_headers(state.get("rate_limit"))
                # An answer that set a header itself (a 429's Retry-After) keeps it.
                headers += [(k, v) for k, v in extra if k not in present]
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            log.exception("http.unhandled_error", path=scope.get("path"))
            if scope["type"] == "http" and not response_started:
                await send_error(send_with_headers, InternalError())
        finally:
            if scope["type"] == "http":
                self._observe(scope, state, status, time.perf_counter() - started)
            structlog.contextvars.unbind_contextvars("request_id")

    def _client_ip(self, scope: Scope, headers: dict[str, str]) -> str | None:
        client = scope.get("client")
        peer: str | None = client[0] if client else None
        forwarded = headers.get("x-forwarded-for")
        if not forwarded or not peer or not self._is_trusted(peer):
            return peer
        # Walk from the nearest hop back, skipping our own proxies. The first
        # other hop is the client our outermost proxy saw; a hop that is not
        # an address was written by someone else, and only the peer is sure.
        for hop in reversed([part.strip() for part in forwarded.split(",")]):
            if not self._is_trusted(hop):
                return hop if _is_address(hop) else peer
        return peer

    def _is_trusted(self, address: str) -> bool:
        if not _is_address(address):
            return False
        ip = ipaddress.ip_address(address)
        return any(ip in network for network in self._trusted)

    @staticmethod
    def _observe(
        scope: Scope, state: dict[str, Any], status: int, seconds: float
    ) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or (
            REFUSED_BEFORE_ROUTING if state.get("refused") else "unmatched"
        )
        method = scope.get("method", "")
        REQUESTS.labels(template, method, str(status)).inc()
        REQUEST_SECONDS.labels(template, method, str(status)).observe(seconds)
        principal = state.get("principal")
        meta = state.get("meta")
        log.info(
            "http.request",
            request_id=meta.request_id if meta else None,
            method=method,
            route=template,
            status=status,
            duration_ms=round(seconds * 1000, 2),
            user_id=principal.user_id if principal else None,
        )


class AdmissionMiddleware:
    """Authenticates and charges every REST call before its body is read, so a
    refusal (401, 429) costs no parsing, and malformed or oversized bodies are
    charged like any other request.

    Routes in `public_paths` work without a token, and a path no route serves
    answers its 404 whoever asks; the GraphQL endpoint, which charges by
    document, admits its own callers.
    """

    def __init__(
        self, app: ASGIApp, prefix: str, public_paths: frozenset[str], skip: str
    ) -> None:
        self.app = app
        self.prefix = prefix
        self.public_paths = public_paths
        self.skip = skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] != "http"
            or not path.startswith(self.prefix)
            or path == self.skip
        ):
            await self.app(scope, receive, send)
            return
        state = state_of(scope)
        services = scope["app"].state.services
        meta = state.get("meta") or RequestMeta()
        try:
            admission = await admit(
                services,
                _headers(scope).get("authorization"),
                meta,
                token_required=path not in self.public_paths,
            )
        except RateLimitedWith as error:
            state["rate_limit"] = error.decision
            state["refused"] = True
            await send_error(send, error)
            return
        except RefusedAfterCharge as refused:
            state["rate_limit"] = refused.decision
            if _routed(scope):
                state["refused"] = True
                await send_error(send, refused.error)
            else:
                # No route serves the path: let the router answer its 404.
                await self.app(scope, receive, send)
            return
        except DomainError as error:
            await send_error(send, error)
            return
        state["principal"] = admission.principal
        state["rate_limit"] = admission.decision
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """Refuses request bodies over the size limit (413) and, on the REST face,
    bodies that are not JSON (415), before any route reads them. Paths under
    one of `yaml_prefixes` take YAML too."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        json_prefix: str,
        yaml_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.json_prefix = json_prefix
        self.yaml_prefixes = yaml_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await send_error(send, PayloadTooLarge(_too_large(self.max_bytes)))
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await send_error(send, PayloadTooLarge(_too_large(self.max_bytes)))
                return
        if body and self._wants_json(scope):
            if not self._readable(scope, headers):
                await send_error(send, UnsupportedMediaType())
                return
            if _is_json(headers) and strict_json.holds_non_json_number(bytes(body)):
                await send_error(send, InvalidJson(NOT_JSON_NUMBER))
                return
        await self.app(scope, _replay(bytes(body), receive), send)

    def _wants_json(self, scope: Scope) -> bool:
        path: str = scope["path"]
        return path.startswith(self.json_prefix) and not path.endswith("/graphql")

    def _readable(self, scope: Scope, headers: dict[str, str]) -> bool:
        if _is_json(headers):
            return True
        path: str = scope["path"]
        return _media_type(headers) in YAML_MEDIA_TYPES and path.startswith(
            self.yaml_prefixes
        )


async def send_error(
    send: Send, error: DomainError, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps(envelope(error), separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": error.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *[
                    (name.lower().encode(), value.encode())
                    for name, value in error_headers(error).items()
                ],
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def error_headers(error: DomainError) -> dict[str, str]:
    """Headers an error answer carries besides the envelope."""
    headers: dict[str, str] = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="signal-admin"'
    return headers


def envelope(error: DomainError) -> dict[str, Any]:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.details:
        body["details"] = [problem.as_dict() for problem in error.details]
    return {"error": body}


def _too_large(limit: int) -> str:
    return f"The request body is larger than {limit // 1024} KiB."


def _is_json(headers: dict[str, str]) -> bool:
    media_type = _media_type(headers)
    return media_type == "application/json" or media_type.endswith("+json")


def _media_type(headers: dict[str, str]) -> str:
    return headers.get("content-type", "").split(";")[0].strip().lower()


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _headers(scope: Scope) -> dict[str, str]:
    return {
        key.decode("latin-1").lower(): value.decode("latin-1")
        for key, value in scope.get("headers", [])
    }


def _rate_limit_headers(decision: RateDecision | None) -> list[tuple[bytes, bytes]]:
    if decision is None:
        return []
    headers = [
        (b"x-ratelimit-limit", str(decision.limit).encode()),
        (b"x-ratelimit-remaining", str(decision.remaining).encode()),
        (b"x-ratelimit-reset", str(decision.reset_at).encode()),
    ]
    if not decision.allowed:
        headers.append((b"retry-after", str(decision.retry_after).encode()))
    return headers


def _routed(scope: Scope) -> bool:
    """Whether any route of the app serves this path (for any method). Only
    refused calls ask, so admitted ones match their route once."""
    return any(
        route.matches(scope)[0] is not Match.NONE
        for route in scope["app"].router.routes
    )


def _is_address(text: str) -> bool:
    """Whether `text` is a plain IPv4 or IPv6 address. A zone (`fe80::1%eth0`)
    names an interface of the sender's own host, never a client's address."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return getattr(address, "scope_id", None) is None
