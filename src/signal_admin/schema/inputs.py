"""Turning GraphQL input objects into the plain dicts the resolvers validate.

Only the fields the client set are kept - a field left out is absent, a field
set to null is None - so a partial update changes exactly what was named.
Keys are the resolvers' snake_case names; enums become their values.
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any, TypeVar

import strawberry
from pydantic import BaseModel

from signal_admin.resolvers.validation import parse

Model = TypeVar("Model", bound=BaseModel)


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


def expected_version(value: int | None) -> int | None:
    """The version a change must find; None (no check) when left out."""
    return None if value is strawberry.UNSET else value


def filters_of(model: type[Model], filter_input: object | None) -> Model:
    """A list filter as its resolver takes it: the fields the client set to a
    value, validated by the resolver's own filter model."""
    conditions = given(filter_input) if filter_input else {}
    return parse(
        model, {name: value for name, value in conditions.items() if value is not None}
    )
