"""FastAPI dependencies: the request context of a REST call, and the headers
the REST conventions read."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from signal_admin.errors import BadRequest
from signal_admin.persistence.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from signal_admin.resolvers.context import (
    RequestContext,
    RequestMeta,
    Services,
    permission_of,
)
from signal_admin.rest_compat.middleware import state_of

_ETAG = re.compile(r'^(?:W/)?"v(\d{1,9})"$')


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _meta(request: Request) -> RequestMeta:
    meta = state_of(request.scope).get("meta")
    return meta if isinstance(meta, RequestMeta) else RequestMeta()


async def caller_context(request: Request) -> RequestContext:
    """The context of a call that works without a token (login, refresh).
    The admission middleware has already identified and charged the caller.

    This and the other dependencies here do no I/O, yet are `async`: FastAPI
    runs a plain `def` dependency in its thread pool, which costs more than
    the work itself."""
    return RequestContext(
        services=services_of(request),
        meta=_meta(request),
        principal=state_of(request.scope).get("principal"),
    )


# Declares the bearer scheme in the OpenAPI document; the admission middleware
# has already verified the token by the time a route runs.
_bearer = HTTPBearer(
    auto_error=False, description="An access token from POST /v1/admin/auth/login."
)


async def user_context(
    request: Request,
    _token: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> RequestContext:
    """The context of a call that needs a signed-in user. It builds the context
    itself rather than depend on `caller_context`: each level of dependencies
    costs FastAPI more than the call."""
    ctx = await caller_context(request)
    ctx.authenticated()
    return ctx


def permitted(operation: Callable[..., object]) -> Any:
    """A route dependency that refuses a caller whose role lacks the permission
    of `operation` before the body is even validated, so a refusal is the same
    whatever the body holds. The operation checks it again itself."""
    permission = permission_of(operation)

    async def check(ctx: Annotated[RequestContext, Depends(user_context)]) -> None:
        ctx.require(permission)

    return Depends(check)


Caller = Annotated[RequestContext, Depends(caller_context)]
Context = Annotated[RequestContext, Depends(user_context)]
Cursor = Annotated[str | None, Query(description="Opaque cursor from next_cursor.")]
Limit = Annotated[
    int,
    Query(ge=1, le=MAX_PAGE_SIZE, description="Page size, 1 to 100."),
]
DEFAULT_LIMIT = DEFAULT_PAGE_SIZE


def etag(version: int) -> str:
    return f'"v{version}"'


async def expected_version(
    if_match: Annotated[
        str | None, Header(description="ETag of the version read.")
    ] = None,
) -> int | None:
    """The version an `If-Match` header names; None when absent or `*`."""
    if if_match is None or if_match.strip() == "*":
        return None
    match = _ETAG.match(if_match.strip())
    if match is None:
        raise BadRequest('If-Match must be an ETag this service issued, like "v3".')
    return int(match.group(1))


IfMatch = Annotated[int | None, Depends(expected_version)]
