"""GraphQL over HTTP: reading a request from a POST body or GET parameters,
choosing the response media type, and writing GraphQL-shaped answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from signal_admin import strict_json
from signal_admin.errors import BadRequest, InvalidJson, UnsupportedMediaType
from signal_admin.strict_json import nesting_depth

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
MAX_VALUE_DEPTH = 32
_ANY = frozenset({"*/*", "application/*", GRAPHQL_RESPONSE})


@dataclass(frozen=True, slots=True)
class GraphQLRequest:
    query: str
    variables: dict[str, Any] | None = None
    operation_name: str | None = None
    extensions: dict[str, Any] | None = None


class MalformedRequest(BadRequest):
    """The body or parameters are not a GraphQL request at all: no query, a
    batch, or a value of the wrong kind."""


def response_media_type(accept: str | None) -> str:
    """`application/graphql-response+json`, unless the client accepts only
    `application/json`."""
    accepted = _media_types(accept)
    if not accepted or accepted & _ANY or JSON not in accepted:
        return GRAPHQL_RESPONSE
    return JSON


def prefers_html(accept: str | None) -> bool:
    return "text/html" in _media_types(accept)


async def read_post(request: Request) -> GraphQLRequest:
    """The GraphQL request in a POST body, which must be a JSON object."""
    if _media_type(request.headers.get("content-type")) != JSON:
        raise UnsupportedMediaType("GraphQL requests are application/json.")
    try:
        body = strict_json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise InvalidJson() from None
    except RecursionError:
        raise _too_deep("The body") from None
    if isinstance(body, list):
        raise MalformedRequest("Send one operation per request; batches are refused.")
    if not isinstance(body, dict):
        raise MalformedRequest("The body must be a JSON object with a query.")
    return _graphql_request(body)


async def read_get(request: Request) -> GraphQLRequest:
    """The GraphQL request in GET parameters; `variables` and `extensions` are
    JSON-encoded."""
    values: dict[str, Any] = dict(request.query_params)
    for name in ("variables", "extensions"):
        if values.get(name):
            try:
                values[name] = strict_json.loads(values[name])
            except ValueError:
                raise MalformedRequest(f"{name} must be JSON.") from None
            except RecursionError:
                raise _too_deep(name) from None
    return _graphql_request(values)


def graphql_response(
    body: dict[str, Any],
    *,
    media_type: str,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        body,
        status_code=status,
        headers=dict(headers or {}),
        media_type=f"{media_type}; charset=utf-8",
    )


def _graphql_request(values: Mapping[str, Any]) -> GraphQLRequest:
    query = values.get("query")
    if not isinstance(query, str) or not query.strip():
        raise MalformedRequest("The request has no query.")
    graphql_request = GraphQLRequest(
        query=query,
        variables=_optional(values, "variables", dict),
        operation_name=_optional(values, "operationName", str),
        extensions=_optional(values, "extensions", dict),
    )
    for name in ("variables", "extensions"):
        if nesting_depth(values.get(name)) > MAX_VALUE_DEPTH:
            raise _too_deep(name)
    return graphql_request


def _too_deep(name: str) -> MalformedRequest:
    return MalformedRequest(
        f"{name} may nest objects and arrays at most {MAX_VALUE_DEPTH} deep."
    )


def _optional(values: Mapping[str, Any], name: str, kind: type) -> Any:
    value = values.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, kind):
        expected = "an object" if kind is dict else "a string"
        raise MalformedRequest(f"{name} must be {expected}.")
    return value


def _media_type(header: str | None) -> str:
    return (header or "").split(";")[0].strip().lower()


def _media_types(accept: str | None) -> set[str]:
    """The media ranges of an Accept header, leaving out those with q=0."""
    types = set()
    for part in (accept or "").split(","):
        media_type, *parameters = [piece.strip() for piece in part.split(";")]
        if media_type and not any(_is_zero_quality(p) for p in parameters):
            types.add(media_type.lower())
    return types


def _is_zero_quality(parameter: str) -> bool:
    name, _, value = parameter.partition("=")
    if name.strip().lower() != "q":
        return False
    try:
        return float(value) == 0
    except ValueError:
        return False
