"""Turning pydantic validation into the service's field problems, for both faces.

A body with a missing required field answers 400 `MISSING_FIELD`; any other
problem 422 `VALIDATION_ERROR`. Either way `details` names every problem, so a
client fixes everything in one round trip: an operation that checks more than
its model (a config against its vendor, say) gathers those problems in the
same `Problems` before answering.

Every input is also searched for text no database can hold (a NUL character,
an unpaired surrogate), keys of JSON documents included, wherever it sits.
Both faces validate through here - `parse` for GraphQL inputs, list filters
and the REST bodies an operation validates itself, `error_from_problems` for
the REST bodies FastAPI validates - so no field, present or future, carries
such text to the database.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import (
    BaseModel,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from signal_admin.errors import (
    DomainError,
    FieldProblem,
    InvalidJson,
    MissingField,
    ValidationFailed,
)
from signal_admin.persistence.text import is_storable

MAX_DOCUMENT_BYTES = 256 * 1024
MAX_DOCUMENT_DEPTH = 32
UNSTORABLE_TEXT = "Text may not hold NUL characters or unpaired surrogates."

Model = TypeVar("Model", bound=BaseModel)
T = TypeVar("T")

_SURROGATE = re.compile("[\ud800-\udfff]")

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
    "duplicate_item": "DUPLICATE",
}


class Problems:
    """The field problems of one input, gathered over every stage of its
    validation so that one answer names them all.

    A problem at a field that already has one, or inside a field that has one
    (`config.a.b` once `config` is refused), adds nothing.
    """

    def __init__(self) -> None:
        self.found: list[FieldProblem] = []
        self._paths: list[str] = []
        self._absent: list[str] = []

    def add(self, field: str, code: str, message: str, *, absent: bool = False) -> None:
        """Note a problem; `absent` marks a required body field left out."""
        path = "" if field == "body" else _displayable(field)
        if any(_within(path, seen) for seen in self._paths):
            return
        shown = path or "body"
        self._paths.append(path)
        self.found.append(FieldProblem(shown, code, message))
        if absent:
            self._absent.append(shown)

    def read_only(self, noun: str, sent: object, own: Mapping[str, object]) -> None:
        """Note each field of `own` that `sent` (a body a client may have
        copied from an answer) names with a value other than the resource's
        own: such fields are accepted only unchanged."""
        for field, value in own.items():
            given = getattr(sent, field)
            if given is not None and given != value:
                self.add(field, "READ_ONLY", f"This {noun}'s {field} is {value}.")

    def extend(self, problems: Iterable[FieldProblem]) -> None:
        for problem in problems:
            self.add(problem.field, problem.code, problem.message)

    def parse(self, model: type[Model], data: Any) -> Model | None:
        """`data` as `model`, or None when it does not fit; either way every
        problem is noted, unstorable text anywhere in `data` included. An
        instance of `model` (already validated by a face) is only searched
        for such text."""
        instance: Model | None = None
        if isinstance(data, model):
            instance = data
        else:
            try:
                instance = model.model_validate(data)
            except ValidationError as error:
                self.record(error.errors(include_url=False))
        self.check_text(data)
        return instance

    def record(
        self,
        errors: Iterable[ErrorDetails | Mapping[str, Any]],
        *,
        skip_prefix: Sequence[str] = (),
    ) -> None:
        """Note pydantic's errors (or FastAPI's, which have the same shape).
        Text pydantic cannot read as a string is left to `check_text`, which
        names it at its exact path, a key's included."""
        for error in errors:
            if error["type"] == "string_unicode":
                continue
            location = [str(part) for part in error["loc"]]
            if location[: len(skip_prefix)] == list(skip_prefix):
                location = location[len(skip_prefix) :]
            self.add(
                ".".join(location),
                _CODES.get(error["type"], "INVALID"),
                _message(error),
                absent=error["type"] == "missing",
            )

    def check_text(self, data: Any) -> None:
        """Note every string in `data` that no database can hold."""
        for path in unstorable_paths(data):
            self.add(".".join(path), "INVALID", UNSTORABLE_TEXT)

    def error(self) -> DomainError | None:
        """The error naming every problem: 400 `MISSING_FIELD` when a body
        field is absent, else 422 `VALIDATION_ERROR`; None when all is well."""
        if not self.found:
            return None
        if self._absent:
            return MissingField(
                f"Required field missing: {', '.join(self._absent)}.", self.found
            )
        return ValidationFailed("The input is not valid.", self.found)

    def checked(self, value: T | None) -> T:
        """`value`, once every stage has run and found nothing; otherwise the
        error naming every problem is raised."""
        error = self.error()
        if error is not None:
            raise error
        if value is None:
            raise ValueError("an input that failed validation left no problem")
        return value


def parse(model: type[Model], data: Any) -> Model:
    """Validate `data` as `model`, or raise the domain error that lists every
    problem. An instance of `model` (already validated by a face) is only
    searched for unstorable text."""
    problems = Problems()
    return problems.checked(problems.parse(model, data))


def error_from_problems(
    errors: Iterable[ErrorDetails | Mapping[str, Any]],
    *,
    skip_prefix: Sequence[str] = (),
    given: Any = None,
) -> DomainError:
    """The error for a body a face could not validate, naming every problem,
    unstorable text anywhere in the `given` body included."""
    errors = list(errors)
    if any(error["type"] == "json_invalid" for error in errors):
        return InvalidJson()
    problems = Problems()
    problems.record(errors, skip_prefix=skip_prefix)
    problems.check_text(given)
    return problems.error() or ValidationFailed()


def _as_given(value: Any, _handler: ValidatorFunctionWrapHandler) -> Any:
    return value


Unparsed = WrapValidator(_as_given)
"""Marks a REST body that its operation validates itself with `Problems`, so
that problems of the body and of the checks after it are answered together.
FastAPI passes the decoded JSON through unchanged; the OpenAPI document still
describes the body by its model."""


# Stands in for the value under an unstorable key: the key's path is named,
# and nothing inside it.
_UNSTORABLE_KEY = object()


def unstorable_paths(value: Any) -> Iterator[tuple[str, ...]]:
    """The path of every string in `value` - a JSON value, or a model holding
    such values - that no database can hold. A key is a string too: its path
    ends with the key itself."""
    pending: list[tuple[tuple[str, ...], Any]] = [((), value)]
    while pending:
        path, item = pending.pop()
        if item is _UNSTORABLE_KEY or (isinstance(item, str) and not is_storable(item)):
            yield path
            continue
        children = _children(item)
        for key, child in reversed(children):
            if not is_storable(key):
                child = _UNSTORABLE_KEY
            pending.append(((*path, key), child))


def _children(item: Any) -> list[tuple[str, Any]]:
    if isinstance(item, Mapping):
        return [(str(key), child) for key, child in item.items()]
    if isinstance(item, list | tuple):
        return [(str(index), child) for index, child in enumerate(item)]
    if isinstance(item, BaseModel):
        fields = type(item).model_fields
        named = [
            (field.alias or name, getattr(item, name)) for name, field in fields.items()
        ]
        return named + list((item.__pydantic_extra__ or {}).items())
    return []


def _within(path: str, other: str) -> bool:
    """Whether `path` is `other` or a field inside it ("" is the whole body)."""
    return other == "" or path == other or path.startswith(other + ".")


def _displayable(text: str) -> str:
    """`text` with unpaired surrogates, which no answer can carry, replaced
    by U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


def _message(error: ErrorDetails | Mapping[str, Any]) -> str:
    if error["type"] == "missing":
        return "This field is required."
    if error["type"] == "extra_forbidden":
        return "This field is not accepted here."
    if error["type"] in ("model_type", "model_attributes_type", "dict_type"):
        return "Expected a JSON object."
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def distinct(items: list[T]) -> list[T]:
    """A pydantic validator: a list names each item once. Every repeat is
    reported at its own index."""
    seen: list[T] = []
    repeats: list[InitErrorDetails] = []
    for index, item in enumerate(items):
        if item in seen:
            repeats.append(
                InitErrorDetails(
                    type=PydanticCustomError(
                        "duplicate_item", "This is already listed."
                    ),
                    loc=(index,),
                    input=item,
                )
            )
        seen.append(item)
    if repeats:
        raise ValidationError.from_exception_data("distinct", repeats)
    return items


def check_document_size(value: Any) -> Any:
    """A pydantic validator: JSON documents are at most 256 KiB and nest at
    most 32 objects or lists deep (deeper ones only serve to exhaust the
    recursion of whatever reads them later)."""
    if nests_deeper(value, MAX_DOCUMENT_DEPTH):
        raise ValueError(
            f"documents nest at most {MAX_DOCUMENT_DEPTH} objects or lists deep"
        )
    size = len(json.dumps(value, separators=(",", ":")).encode())
    if size > MAX_DOCUMENT_BYTES:
        raise ValueError(f"documents are at most {MAX_DOCUMENT_BYTES // 1024} KiB")
    return value


def nests_deeper(value: Any, limit: int) -> bool:
    """Whether `value` holds objects or lists nested more than `limit` deep
    (`{}` is 1), found without recursion."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, Mapping):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False
