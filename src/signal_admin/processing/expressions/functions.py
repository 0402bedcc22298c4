"""The built-in functions: their arity and what they compute.

Every function but `COALESCE`, `CONCAT` and `NOW` answers NULL when any of its
arguments is NULL. `COALESCE` is evaluated lazily by the evaluator, so it
appears here only for its arity.

Functions that can build long texts (`CONCAT`, `REPLACE`, `LOWER`, `UPPER`)
work out the length first and refuse one beyond `MAX_TEXT_LENGTH` before
building it; the evaluator bounds every function's answer afterwards as well.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import Any

from signal_admin.processing.expressions.errors import ExpressionEvaluationError
from signal_admin.processing.expressions.values import (
    check_text_length,
    is_number,
    kind_of,
    read_number,
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
# The extended calendar form of ISO 8601 (as RFC 3339 writes it, seconds and
# offset optional, the offset's colon too, as many senders leave it out); week
# dates, ordinal dates and the basic form (`20240501`, which may as well be a
# number held as text) are not timestamps an event carries, so they are refused.
_ISO_TIMESTAMP = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
    r"(?:[Tt ](?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})"
    r"(?::(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]+))?)?"
    r"(?P<offset>[Zz]|[+-][0-9]{2}:?[0-9]{2})?)?"
)
# Beyond this many milliseconds from 1970 lies no year a datetime can hold.
_MAX_EPOCH_MILLIS = 10**15


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
    text = require_text(args[0], "LOWER", position)
    # Changing case never shortens a text (`'ß'` upper-cases to `'SS'`).
    check_text_length(len(text), "LOWER", position)
    return text.lower()


def _upper(args: list[Any], position: int, clock: Clock) -> Any:
    text = require_text(args[0], "UPPER", position)
    check_text_length(len(text), "UPPER", position)
    return text.upper()


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
    texts = [to_text(arg, position) for arg in args if arg is not None]
    check_text_length(sum(len(text) for text in texts), "CONCAT", position)
    return "".join(texts)


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
    if not old:
        return text
    length = len(text) + text.count(old) * (len(new) - len(old))
    check_text_length(length, "REPLACE", position)
    return text.replace(old, new)


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
    return read_number(value.strip())


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
    """An ISO 8601 text (UTC when it names no offset) or epoch milliseconds.

    Digits finer than a microsecond are dropped, never rounded, so a moment
    never moves into the next millisecond: `0.9999996` milliseconds and
    `'1970-01-01T00:00:00.0009999Z'` are both 999 microseconds after 1970.
    """
    try:
        if is_number(value):
            return EPOCH + timedelta(microseconds=_epoch_micros(value))
        if isinstance(value, str):
            return _iso_timestamp(value.strip())
    except (ValueError, OverflowError):
        raise ExpressionEvaluationError(
            "DATE_FORMAT needs an ISO 8601 text or epoch milliseconds", position
        ) from None
    raise ExpressionEvaluationError(
        f"DATE_FORMAT needs a timestamp, not {kind_of(value)}", position
    )


def _epoch_micros(millis: int | float) -> int:
    """Whole microseconds at or before `millis`, read as the decimal it prints
    as (`1.005` is 1005 microseconds, not the 1004.99… its float holds)."""
    if not abs(millis) < _MAX_EPOCH_MILLIS:
        raise OverflowError("beyond the years a timestamp can name")
    if isinstance(millis, int):
        return millis * 1000
    return math.floor(Decimal(repr(millis)) * 1000)


def _iso_timestamp(text: str) -> datetime:
    match = _ISO_TIMESTAMP.fullmatch(text)
    if match is None:
        raise ValueError("not the extended calendar form of ISO 8601")
    fields = match.groupdict()
    fraction = (fields["fraction"] or "")[:6].ljust(6, "0")
    moment = datetime(
        int(fields["year"]),
        int(fields["month"]),
        int(fields["day"]),
        int(fields["hour"] or 0),
        int(fields["minute"] or 0),
        int(fields["second"] or 0),
        int(fraction),
        tzinfo=_offset(fields["offset"]),
    )
    return moment.astimezone(UTC)


def _offset(written: str | None) -> timezone:
    """`Z`, `+02:00`, `-0530` as a time zone; no offset is UTC."""
    if written in (None, "Z", "z"):
        return UTC
    hours, minutes = int(written[1:3]), int(written[-2:])
    if minutes > 59:
        raise ValueError("offset minutes beyond 59")
    offset = timedelta(hours=hours, minutes=minutes)
    return timezone(-offset if written.startswith("-") else offset)


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
