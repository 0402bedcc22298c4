"""The error envelope for everything the REST face answers:
`{"error": {"code", "message", "details"?}}`."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from signal_admin.errors import (
    BadRequest,
    DomainError,
    InvalidJson,
    MethodNotAllowed,
    NotFound,
)
from signal_admin.resolvers.access import RateLimitedWith
from signal_admin.resolvers.validation import error_from_problems
from signal_admin.rest_compat.middleware import envelope, error_headers, state_of

_LOCATIONS = {"body", "query", "path", "header"}
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def error_response(error: DomainError) -> JSONResponse:
    return JSONResponse(
        envelope(error), status_code=error.status, headers=error_headers(error)
    )


async def _domain_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, DomainError)
    if isinstance(error, RateLimitedWith):
        state_of(request.scope)["rate_limit"] = error.decision
    return error_response(error)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = []
    for problem in error.errors():
        location = list(problem["loc"])
        if location and location[0] in _LOCATIONS:
            location = location[1:]
        problems.append({**problem, "loc": tuple(location)})
    return error_response(error_from_problems(problems, given=error.body))


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    if error.status_code == 404:
        domain: DomainError = NotFound(f"No route matches {request.url.path}.")
    elif error.status_code == 405:
        domain = MethodNotAllowed(
            f"{request.method} is not allowed on {request.url.path}."
        )
    elif error.status_code == 400:
        # FastAPI's only 400 of its own: a body it could not decode as JSON.
        domain = InvalidJson()
    else:
        domain = BadRequest(str(error.detail))
    response = error_response(domain)
    if error.status_code == 405:
        response.headers["Allow"] = ", ".join(_allowed_methods(request))
    return response


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path. The router's own 405 names
    only the methods of the first route whose path matched."""
    routes = request.app.router.routes
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in routes):
            allowed.append(method)
    return allowed


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
