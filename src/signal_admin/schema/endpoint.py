"""The GraphQL endpoint, `/v1/admin/graphql`.

Every request takes the same steps: read it, identify the caller, charge the
rate limit, parse the document (up to the token limit), admit it (authorise,
limit its shape, validate, limit its cost and its mutations), execute it with
Strawberry, and answer. Subscriptions run over the WebSocket on the same
path (see `subscriptions`). Charging comes before parsing, so a caller over the
limit cannot make the server parse anything. A request refused before
execution answers its error's own status under
`application/graphql-response+json`; under `application/json` a well-formed
GraphQL request answers 200 whatever happened, unless it was rate limited.
docs/graphql.md lists the codes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from fastapi import APIRouter, Request, Response, WebSocket
from fastapi.responses import HTMLResponse
from graphql import GraphQLError, OperationType
from strawberry.http.ides import get_graphql_ide_html
from strawberry.types import ExecutionResult

from signal_admin.config import Settings
from signal_admin.errors import (
    DomainError,
    InternalError,
    MethodNotAllowed,
    Unauthorized,
)
from signal_admin.resolvers.access import RateLimitedWith, charge, identify
from signal_admin.resolvers.context import (
    Principal,
    RequestContext,
    RequestMeta,
    Services,
)
from signal_admin.rest_compat import API_PREFIX
from signal_admin.rest_compat.middleware import state_of
from signal_admin.schema import admission, subscriptions
from signal_admin.schema.context import GraphQLContext
from signal_admin.schema.document import Operation, read_operation, validate
from signal_admin.schema.errors import (
    DocumentRefused,
    InvalidDocument,
    execution_error_body,
    rate_limit_of,
    refusal_bodies,
)
from signal_admin.schema.execution import AnswerTooLarge
from signal_admin.schema.root import graphql_schema, schema
from signal_admin.schema.transport import (
    JSON,
    GraphQLRequest,
    graphql_response,
    prefers_html,
    read_get,
    read_post,
    response_media_type,
)

log = structlog.get_logger(__name__)

PATH = "/graphql"
_QUERIES = frozenset({OperationType.QUERY})
_QUERIES_AND_MUTATIONS = frozenset({OperationType.QUERY, OperationType.MUTATION})


def graphql_router(settings: Settings) -> APIRouter:
    router = APIRouter(prefix=API_PREFIX)
    serve_ide = not settings.is_production

    @router.get(PATH, include_in_schema=False)
    async def graphql_get(request: Request) -> Response:
        if serve_ide and prefers_html(request.headers.get("accept")):
            return HTMLResponse(get_graphql_ide_html("graphiql"))
        return await _answer(request, read_get, _QUERIES)

    @router.post(PATH, include_in_schema=False)
    async def graphql_post(request: Request) -> Response:
        return await _answer(request, read_post, _QUERIES_AND_MUTATIONS)

    @router.websocket(PATH)
    async def graphql_subscriptions(websocket: WebSocket) -> None:
        await subscriptions.serve(websocket, settings)

    @router.api_route(PATH, methods=["PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def graphql_other(request: Request) -> Response:
        error = MethodNotAllowed("GraphQL requests are GET (queries) or POST.")
        media_type = response_media_type(request.headers.get("accept"))
        return _refused(error, media_type, headers={"Allow": "GET, POST"})

    return router


async def _answer(
    request: Request,
    read: Callable[[Request], Awaitable[GraphQLRequest]],
    allowed: frozenset[OperationType],
) -> Response:
    media_type = response_media_type(request.headers.get("accept"))
    state = state_of(request.scope)
    cost = 0
    try:
        graphql_request = await read(request)
        ctx, token_refusal = await _charged_caller(request)
        operation = read_operation(
            graphql_request.query, graphql_request.operation_name
        )
        if token_refusal is not None and not admission.is_anonymous(operation):
            raise token_refusal
        variables = _admit(operation, graphql_request, ctx.principal, allowed)
        cost = admission.node_cost(graphql_schema(), operation, variables)
        admission.check_cost(cost)
        admission.check_mutations(operation)
        if (extra := admission.rate_cost(operation) - 1) > 0:
            state["rate_limit"] = await charge(
                ctx.services, ctx.principal, ctx.meta, cost=extra
            )
        result = await schema.execute(
            graphql_request.query,
            variable_values=graphql_request.variables,
            context_value=GraphQLContext(request=ctx, document=operation.document),
            operation_name=graphql_request.operation_name,
        )
    except RateLimitedWith as error:
        state["rate_limit"] = error.decision
        retry_after = {"Retry-After": str(error.retry_after)}
        return _refused(error, media_type, cost, headers=retry_after)
    except MethodNotAllowed as error:
        return _refused(error, media_type, cost, headers={"Allow": "POST"})
    except DomainError as error:
        return _refused(error, media_type, cost)
    except Exception:
        log.exception("graphql.unexpected_error", path=request.url.path)
        return _refused(InternalError(), media_type, cost)
    too_large = _answer_too_large(result)
    if too_large is not None and operation.type is OperationType.QUERY:
        # Nothing was written, so the partial answer is dropped: one refusal
        # says more than thousands of nulled fields.
        return _refused(too_large, media_type, cost)
    return _executed(result, media_type, cost)


def _answer_too_large(result: ExecutionResult) -> AnswerTooLarge | None:
    for error in result.errors or []:
        if isinstance(error.original_error, AnswerTooLarge):
            return error.original_error
    return None


async def _charged_caller(
    request: Request,
) -> tuple[RequestContext, Unauthorized | None]:
    """Who is calling, charged one request against their window, and the
    refusal of their token if it did not authenticate.

    A caller whose token does not authenticate is charged as anonymous; the
    refusal waits for the document, since one that only signs in runs
    anonymously: a client whose access token expired often still sends it
    along with refreshToken.
    """
    services: Services = request.app.state.services
    state = state_of(request.scope)
    meta = state.get("meta")
    meta = meta if isinstance(meta, RequestMeta) else RequestMeta()

    refusal: Unauthorized | None = None
    try:
        principal = await identify(services, request.headers.get("authorization"))
    except Unauthorized as error:
        principal, refusal = None, error
    state["principal"] = principal
    state["rate_limit"] = await charge(services, principal, meta)
    return RequestContext(services=services, meta=meta, principal=principal), refusal


def _admit(
    operation: Operation,
    graphql_request: GraphQLRequest,
    principal: Principal | None,
    allowed: frozenset[OperationType],
) -> dict[str, Any]:
    """Check the caller may run the operation, that its shape is within the
    limits and that it is valid; answers its coerced variables."""
    if operation.type not in allowed:
        raise _not_allowed(operation.type)
    admission.check_caller(operation, principal)
    admission.check_shape(operation)
    return validate(graphql_schema(), operation, graphql_request.variables)


def _not_allowed(operation_type: OperationType) -> DomainError:
    if operation_type is OperationType.MUTATION:
        return MethodNotAllowed("Mutations are sent with POST.")
    message = "Subscriptions run over the WebSocket on this path."
    return InvalidDocument([GraphQLError(message)])


def _refused(
    error: DomainError,
    media_type: str,
    cost: int = 0,
    *,
    headers: dict[str, str] | None = None,
) -> Response:
    """The answer to a request that did not run."""
    well_formed = isinstance(error, DocumentRefused | Unauthorized)
    status = 200 if media_type == JSON and well_formed else error.status
    body = {"errors": refusal_bodies(error), "extensions": {"cost": cost}}
    return graphql_response(body, media_type=media_type, status=status, headers=headers)


def _executed(result: ExecutionResult, media_type: str, cost: int) -> Response:
    """The answer to a document that ran. A field refused by a rate limit (the
    per-email limit of login) makes it a 429 with Retry-After, like a request
    refused before it ran; the fields that did run keep their data."""
    body: dict[str, Any] = {}
    if result.errors:
        body["errors"] = [execution_error_body(error) for error in result.errors]
    body["data"] = result.data
    body["extensions"] = {"cost": cost}
    limited = rate_limit_of(result.errors or [])
    if limited is None:
        return graphql_response(body, media_type=media_type)
    return graphql_response(
        body,
        media_type=media_type,
        status=limited.status,
        headers={"Retry-After": str(limited.retry_after)},
    )
