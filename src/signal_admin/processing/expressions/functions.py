"""The built-in functions: their arity and what they compute.

Every function but `COALESCE`, `CONCAT` and `NOW` answers NULL when any of its
arguments is NULL. `COALESCE` is evaluated lazily by the evaluator, so it
appears here only for its arity.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import Any

from signal_admin.processing.expressions.errors import ExpressionEvaluationError
from signal_admin.processing.expressions.values import (
    is_number,
    kind_of,
    require_finite,
    require_number,
    require_text,
    require_whole,
    to_text,
)

Clock = Callable[[], datetime]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DATE_FORMATS = ("epoch_millis", "epoch_micros", "iso8601")
# Digits `ROUND` accepts: beyond these a float has nothing left to round.
MAX_ROUND_DIGITS = 400
_NUMERIC_TEXT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


@dataclass(frozen=True, slots=True)
class Function:
    min_arguments: int
    max_arguments: int | None
    # Receives the evaluated arguments (none of them NULL unless `takes_null`),
    # the call's position and the clock. None for `COALESCE`, which the
    # evaluator computes itself so as to evaluate its arguments lazily.
    compute: Callable[[list[Any], int, Clock], Any] | None
    takes_null: bool = False


def _lower(args: list[Any], position: int, clock: Clock) -> Any:
    return require_text(args[0], "LOWER", position).lower()


def _upper(args: list[Any], position: int, clock: Clock) -> Any:
    return require_text(args[0], "UPPER", position).upper()


def _trim(args: list[Any], position: int, clock: Clock) -> Any:
    return require_text(args[0], "TRIM", position).strip()


def _length(args: list[Any], position: int, clock: Clock) -> Any:
    value = args[0]
    if not isinstance(value, str | list):
        raise ExpressionEvaluationError(
            f"LENGTH needs a text or a list, not {kind_of(value)}", position
        )
    return len(value)


def _concat(args: list[Any], position: int, clock: Clock) -> Any:
    return "".join(to_text(arg, position) for arg in args if arg is not None)


def _substring(args: list[Any], position: int, clock: Clock) -> Any:
    text = require_text(args[0], "SUBSTRING", position)
    start = require_whole(args[1], "SUBSTRING's start", position) - 1
    if len(args) == 2:
        return text[max(start, 0) :]
    length = require_whole(args[2], "SUBSTRING's length", position)
    if length < 0:
        raise ExpressionEvaluationError(
            "SUBSTRING's length may not be negative", position
        )
    return text[max(start, 0) : max(start + length, 0)]


def _replace(args: list[Any], position: int, clock: Clock) -> Any:
    text = require_text(args[0], "REPLACE", position)
    old = require_text(args[1], "REPLACE", position)
    new = require_text(args[2], "REPLACE", position)
    return text.replace(old, new) if old else text


def _round(args: list[Any], position: int, clock: Clock) -> Any:
    number = require_finite(args[0], "ROUND", position)
    digits = require_whole(args[1], "ROUND's digits", position) if len(args) > 1 else 0
    if not -MAX_ROUND_DIGITS <= digits <= MAX_ROUND_DIGITS:
        raise ExpressionEvaluationError(
            f"ROUND's digits must lie between {-MAX_ROUND_DIGITS} and "
            f"{MAX_ROUND_DIGITS}",
            position,
        )

    if isinstance(number, int) and digits >= 0:
        return number

    # Halves round away from zero, as in SQL, on the decimal the number prints as.
    with localcontext() as context:
        context.prec = 2 * MAX_ROUND_DIGITS + 400
        try:
            exact = (
                Decimal(number) if isinstance(number, int) else Decimal(repr(number))
            )
            rounded = exact.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
        except InvalidOperation:
            raise ExpressionEvaluationError(
                "ROUND's result is too large", position
            ) from None

    if len(args) == 1 or isinstance(number, int):
        return int(rounded)
    return float(rounded)


def _floor(args: list[Any], position: int, clock: Clock) -> Any:
    return math.floor(require_finite(args[0], "FLOOR", position))


def _ceil(args: list[Any], position: int, clock: Clock) -> Any:
    return math.ceil(require_finite(args[0], "CEIL", position))


def _abs(args: list[Any], position: int, clock: Clock) -> Any:
    return abs(require_number(args[0], "ABS", position))


def _to_number(args: list[Any], position: int, clock: Clock) -> Any:
    """Numbers pass; numeric texts are read; anything else is NULL."""
    value = args[0]
    if is_number(value):
        return value
    if not isinstance(value, str) or not _NUMERIC_TEXT.fullmatch(value.strip()):
        return None
    text = value.strip()
    try:
        number = float(text) if any(c in text for c in ".eE") else int(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _to_string(args: list[Any], position: int, clock: Clock) -> Any:
    return to_text(args[0], position)


def _sha256(args: list[Any], position: int, clock: Clock) -> Any:
    text = to_text(args[0], position)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _now(args: list[Any], position: int, clock: Clock) -> Any:
    return format_iso8601(clock())


def _date_format(args: list[Any], position: int, clock: Clock) -> Any:
    moment = read_timestamp(args[0], position)
    layout = require_text(args[1], "DATE_FORMAT's format", position)
    if layout == "iso8601":
        return format_iso8601(moment)
    microseconds = (moment - EPOCH) // timedelta(microseconds=1)
    if layout == "epoch_millis":
        return microseconds // 1000
    if layout == "epoch_micros":
        return microseconds
    raise ExpressionEvaluationError(
        f"DATE_FORMAT's format must be one of {', '.join(DATE_FORMATS)}", position
    )


def read_timestamp(value: Any, position: int) -> datetime:
    """An ISO 8601 text (UTC when it names no offset) or epoch milliseconds."""
    try:
        if is_number(value):
            if isinstance(value, float) and not math.isfinite(value):
                raise OverflowError
            return EPOCH + timedelta(milliseconds=value)
        if isinstance(value, str):
            moment = datetime.fromisoformat(value.strip())
            if moment.tzinfo is None:
                return moment.replace(tzinfo=UTC)
            return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ExpressionEvaluationError(
            "DATE_FORMAT needs an ISO 8601 text or epoch milliseconds", position
        ) from None
    raise ExpressionEvaluationError(
        f"DATE_FORMAT needs a timestamp, not {kind_of(value)}", position
    )


def format_iso8601(moment: datetime) -> str:
    """UTC with milliseconds and a `Z`: `2024-05-01T12:30:00.000Z`."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}"
        f"T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
        f".{utc.microsecond // 1000:03d}Z"
    )


FUNCTIONS: dict[str, Function] = {
    "COALESCE": Function(1, None, compute=None),
    "LOWER": Function(1, 1, _lower),
    "UPPER": Function(1, 1, _upper),
    "TRIM": Function(1, 1, _trim),
    "LENGTH": Function(1, 1, _length),
    "CONCAT": Function(1, None, _concat, takes_null=True),
    "SUBSTRING": Function(2, 3, _substring),
    "REPLACE": Function(3, 3, _replace),
    "ROUND": Function(1, 2, _round),
    "FLOOR": Function(1, 1, _floor),
    "CEIL": Function(1, 1, _ceil),
    "ABS": Function(1, 1, _abs),
    "TO_NUMBER": Function(1, 1, _to_number),
    "TO_STRING": Function(1, 1, _to_string),
    "SHA256": Function(1, 1, _sha256),
    "NOW": Function(0, 0, _now),
    "DATE_FORMAT": Function(2, 2, _date_format),
}
