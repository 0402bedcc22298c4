"""How the GraphQL face reports errors.

A problem the caller can fix in a mutation's input (`DomainError.user_fixable`)
is returned as `userErrors` on the payload. Anything else - not signed in, not
allowed, rate limited, a request that cannot run - is a top-level GraphQL error
whose `extensions.code` is the service's error code. Unexpected exceptions are
logged and shown only as `INTERNAL_ERROR`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import strawberry
import structlog
from graphql import GraphQLError

from signal_admin.errors import DomainError, InternalError, RateLimited

log = structlog.get_logger(__name__)

# How validation names a problem of the whole input rather than one field.
WHOLE_BODY = "body"


@strawberry.type(
    description=(
        "A problem with a mutation's input that the caller can fix; the codes "
        "are the ones the REST face uses."
    )
)
class UserError:
    field: list[str] | None = strawberry.field(
        description=(
            "The path to the input field at fault, e.g. "
            '["jsBuilderConfig", "batchSize"]; null when the problem is with '
            "the input as a whole."
        )
    )
    code: str = strawberry.field(
        description="A stable code, e.g. REQUIRED, TOO_LONG or ALREADY_EXISTS."
    )
    message: str = strawberry.field(description="A sentence for people.")


class DocumentRefused(DomainError):
    """A well-formed request whose document may not run. It is answered before
    anything executes."""

    status = 400


class InvalidDocument(DocumentRefused):
    """The document does not validate against the schema, names no runnable
    operation, or its variables do not fit it."""

    code = "GRAPHQL_VALIDATION_FAILED"
    default_message = "The document is not valid against the schema."

    def __init__(self, errors: Sequence[GraphQLError]) -> None:
        super().__init__(errors[0].message if errors else None)
        self.graphql_errors = list(errors)


class UnparsableDocument(InvalidDocument):
    code = "GRAPHQL_PARSE_FAILED"
    default_message = "The document is not valid GraphQL."


class TooManyMutations(DocumentRefused):
    code = "TOO_MANY_MUTATIONS"
    default_message = "This document holds too many mutations."


class QueryTooLarge(DocumentRefused):
    code = "QUERY_TOO_LARGE"
    default_message = "The document holds too many tokens."


class QueryTooDeep(DocumentRefused):
    code = "QUERY_TOO_DEEP"
    default_message = "The document nests its selections too deeply."


class TooManyAliases(DocumentRefused):
    code = "TOO_MANY_ALIASES"
    default_message = "The document holds too many aliases."


class QueryTooComplex(DocumentRefused):
    code = "QUERY_TOO_COMPLEX"
    default_message = "The document asks for too many nodes."


def field_path(field: str) -> list[str]:
    """`js_builder_config.batch_size` → `["jsBuilderConfig", "batchSize"]`.
    A problem of the whole input (`body`, as REST calls it) is at `["input"]`,
    the argument every mutation takes."""
    if field == WHOLE_BODY:
        return ["input"]
    return [_camel_case(part) for part in field.split(".")]


def _camel_case(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def user_errors_or_raise(error: DomainError) -> list[UserError]:
    """The `userErrors` for an error the caller can fix. Any other error is
    raised again, to be answered as a top-level error with its code."""
    if not error.user_fixable:
        raise error
    if error.details:
        return [
            UserError(
                field=field_path(problem.field),
                code=problem.code,
                message=problem.message,
            )
            for problem in error.details
        ]
    return [UserError(field=None, code=error.code, message=error.message)]


def refusal_bodies(error: DomainError) -> list[dict[str, Any]]:
    """The `errors` of a request answered without running it."""
    if isinstance(error, InvalidDocument):
        return [
            {**dict(graphql_error.formatted), "extensions": {"code": error.code}}
            for graphql_error in error.graphql_errors
        ]
    return [{"message": error.message, "extensions": _extensions(error)}]


def execution_error_body(error: GraphQLError) -> dict[str, Any]:
    """One error raised while the document ran: a domain error keeps its
    message and code; anything unexpected is logged and masked."""
    body = dict(error.formatted)
    domain = _domain_error_of(error)
    if domain is None:
        log.exception(
            "graphql.unexpected_error",
            path=error.path,
            exc_info=error.original_error or error,
        )
        domain = InternalError()
    return {**body, "message": domain.message, "extensions": _extensions(domain)}


def rate_limit_of(errors: Sequence[GraphQLError]) -> RateLimited | None:
    """The first rate-limit refusal among errors raised while a document ran."""
    for error in errors:
        domain = _domain_error_of(error)
        if isinstance(domain, RateLimited):
            return domain
    return None


def _extensions(error: DomainError) -> dict[str, Any]:
    extensions: dict[str, Any] = {"code": error.code}
    if error.retry_after is not None:
        extensions["retryAfter"] = error.retry_after
    return extensions


def _domain_error_of(error: GraphQLError) -> DomainError | None:
    cause: BaseException | None = error.original_error
    while cause is not None:
        if isinstance(cause, DomainError):
            return cause
        cause = getattr(cause, "original_error", None)
    return None
