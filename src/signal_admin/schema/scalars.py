"""The custom scalars: timestamps as the REST face writes them, and opaque JSON
documents passed through as they are stored."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

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
)

SCALARS: dict[object, ScalarDefinition] = {
    datetime: DateTimeScalar,
    JSON: JSONScalar,
}
