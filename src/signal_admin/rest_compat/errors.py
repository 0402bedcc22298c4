"""The error envelope for everything the REST face answers:
`{"error": {"code", "message", "details"?}}`."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from signal_admin.errors import (
    BadRequest,
    DomainError,
    InvalidJson,
    MethodNotAllowed,
    NotFound,
    RateLimited,
)
from signal_admin.resolvers.access import RateLimitedWith
from signal_admin.resolvers.validation import error_from_problems
from signal_admin.rest_compat.middleware import envelope, state_of

_LOCATIONS = {"body", "query", "path", "header"}


def error_response(error: DomainError) -> JSONResponse:
    headers = {}
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(error.retry_after)
    return JSONResponse(envelope(error), status_code=error.status, headers=headers)


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
    return error_response(error_from_problems(problems))


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
    if error.status_code == 405 and error.headers:
        response.headers["Allow"] = error.headers.get("Allow", "")
    return response


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
