"""Turning GraphQL input objects into the plain dicts the resolvers validate.

Only the fields the client set are kept - a field left out is absent, a field
set to null is None - so a partial update changes exactly what was named.
Keys are the resolvers' snake_case names; enums become their values.
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any

import strawberry


def given(input_object: object, *, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields of `input_object` that the client set, as plain values."""
    return {
        field.name: plain(value)
        for field in dataclasses.fields(input_object)  # type: ignore[arg-type]
        if field.name not in exclude
        and (value := getattr(input_object, field.name)) is not strawberry.UNSET
    }


def plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [plain(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return given(value)
    return value
