"""Turning pydantic validation into the service's field problems, for both faces.

A body with a missing required field answers 400 `MISSING_FIELD`; any other
problem 422 `VALIDATION_ERROR`. Either way `details` names every problem, so a
client fixes everything in one round trip.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from signal_admin.errors import (
    DomainError,
    FieldProblem,
    InvalidJson,
    MissingField,
    ValidationFailed,
)

MAX_DOCUMENT_BYTES = 256 * 1024

Model = TypeVar("Model", bound=BaseModel)

_CODES = {
    "missing": "REQUIRED",
    "extra_forbidden": "UNKNOWN_FIELD",
    "string_too_long": "TOO_LONG",
    "string_too_short": "TOO_SHORT",
    "too_long": "TOO_MANY",
    "too_short": "TOO_FEW",
    "string_pattern_mismatch": "INVALID_FORMAT",
    "literal_error": "INVALID_CHOICE",
    "enum": "INVALID_CHOICE",
    "greater_than_equal": "OUT_OF_RANGE",
    "less_than_equal": "OUT_OF_RANGE",
    "greater_than": "OUT_OF_RANGE",
    "less_than": "OUT_OF_RANGE",
}


def parse(model: type[Model], data: Any) -> Model:
    """Validate `data` as `model`, or raise the domain error that lists every
    problem. An instance of `model` (already validated by a face) passes as is."""
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise error_from_problems(error.errors(include_url=False)) from None


def error_from_problems(
    errors: Iterable[ErrorDetails | Mapping[str, Any]],
    *,
    skip_prefix: Sequence[str] = (),
) -> DomainError:
    problems: list[FieldProblem] = []
    for error in errors:
        if error["type"] == "json_invalid":
            return InvalidJson()
        location = [str(part) for part in error["loc"]]
        if location[: len(skip_prefix)] == list(skip_prefix):
            location = location[len(skip_prefix) :]
        problems.append(
            FieldProblem(
                field=".".join(location) or "body",
                code=_CODES.get(error["type"], "INVALID"),
                message=_message(error),
            )
        )
    if any(problem.code == "REQUIRED" for problem in problems):
        missing = [p.field for p in problems if p.code == "REQUIRED"]
        return MissingField(f"Required field missing: {', '.join(missing)}.", problems)
    return ValidationFailed("The input is not valid.", problems)


def _message(error: ErrorDetails | Mapping[str, Any]) -> str:
    if error["type"] == "missing":
        return "This field is required."
    if error["type"] == "extra_forbidden":
        return "This field is not accepted here."
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def check_document_size(value: Any) -> Any:
    """A pydantic validator: JSON documents are at most 256 KiB."""
    size = len(json.dumps(value, separators=(",", ":")).encode())
    if size > MAX_DOCUMENT_BYTES:
        raise ValueError(f"documents are at most {MAX_DOCUMENT_BYTES // 1024} KiB")
    return value
