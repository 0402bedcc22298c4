"""The custom scalars: timestamps as the REST face writes them, and opaque JSON
documents passed through as they are stored."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NewType

import strawberry
from graphql import ValueNode, value_from_ast_untyped
from strawberry.types.scalar import ScalarDefinition

from signal_admin import strict_json
from signal_admin.persistence.types import format_timestamp

JSON = NewType("JSON", object)


def _serialize_datetime(moment: datetime) -> str | None:
    return format_timestamp(moment)


def _parse_datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("DateTime values are ISO 8601 strings.")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("DateTime values must carry a time zone, e.g. a 'Z'.")
    return moment.astimezone(UTC)


def _pass_through(value: Any) -> Any:
    return value


def _parse_json_literal(
    node: ValueNode, variables: dict[str, Any] | None = None
) -> Any:
    """A JSON value written in the document itself. GraphQL's float literals
    reach beyond JSON (`1e400` is infinity), and an integer of thousands of
    digits cannot be written back; both are refused like invalid JSON."""
    try:
        value = value_from_ast_untyped(node, variables)
    except ValueError:
        raise ValueError("The number has too many digits.") from None
    if strict_json.holds_non_json_number_value(value):
        raise ValueError("The value holds a number beyond the range of JSON.")
    return value


DateTimeScalar = strawberry.scalar(
    name="DateTime",
    description=(
        "An instant in UTC, in ISO 8601 with milliseconds and a Z: "
        "2026-02-25T14:30:00.123Z."
    ),
    serialize=_serialize_datetime,
    parse_value=_parse_datetime,
)

JSONScalar = strawberry.scalar(
    name="JSON",
    description="A JSON value (usually an object), passed through unchanged.",
    serialize=_pass_through,
    parse_value=_pass_through,
    parse_literal=_parse_json_literal,
)

SCALARS: dict[object, ScalarDefinition] = {
    datetime: DateTimeScalar,
    JSON: JSONScalar,
}
