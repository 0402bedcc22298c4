"""The values an expression computes with, and the rules that relate them.

Values are what JSON holds: NULL (`None`), booleans, numbers (`int` or `float`,
never `bool`), texts, lists and objects. Different kinds are never equal
(`'1' = 1` is false, `TRUE = 1` is false); only numbers, texts and booleans
have an order, and only within their own kind.

Every number and text an expression computes is bounded, so that no expression
can spend the time of a request building one value (Python's integers and
texts grow without limit, and writing an integer of thousands of digits as
text takes quadratic time). Whole numbers stay exact up to `MAX_EXACT_INTEGER`
in magnitude and become floats beyond it; a number beyond a double's range is
an error, as JSON has no infinity; a text an operator or function builds holds
at most `MAX_TEXT_LENGTH` characters.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from signal_admin.processing.expressions.errors import ExpressionEvaluationError

# The signed 64-bit range: database ids and epoch microseconds (until the year
# 9999) stay exact, and arithmetic on such integers costs constant time.
MAX_EXACT_INTEGER = 2**63 - 1
# The longest text an operator or function may build. Far above any field an
# event carries in practice, far below what would keep the server busy.
MAX_TEXT_LENGTH = 65_536
_MAX_EXACT_DIGITS = len(str(MAX_EXACT_INTEGER))


def kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "list"
    return "object"


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def same_value(left: Any, right: Any) -> bool:
    """Equality of two values; lists and objects compare element by element.

    Walks with its own stack, so events of any depth compare without recursion.
    """
    pending = [(left, right)]
    while pending:
        a, b = pending.pop()
        kind = kind_of(a)
        if kind != kind_of(b):
            return False
        if kind == "list":
            if len(a) != len(b):
                return False
            pending.extend(zip(a, b, strict=True))
        elif kind == "object":
            if not isinstance(a, Mapping) or not isinstance(b, Mapping):
                return a is b
            if a.keys() != b.keys():
                return False
            pending.extend((a[key], b[key]) for key in a)
        elif a != b:
            return False
    return True


def bounded_number(number: int | float) -> int | float | None:
    """`number` as the language holds it, or None when it lies beyond a double.

    Integers beyond `MAX_EXACT_INTEGER` become the nearest float, and a negative
    zero becomes zero. Converting an integer to a float takes linear time, so
    even an integer of thousands of digits read from an event is cheap.
    """
    if isinstance(number, int):
        if -MAX_EXACT_INTEGER <= number <= MAX_EXACT_INTEGER:
            return number
        try:
            number = float(number)
        except OverflowError:
            return None
    if not math.isfinite(number):
        return None
    return 0.0 if number == 0 else number


def checked_number(number: int | float, what: str, position: int) -> int | float:
    """`number` bounded as `bounded_number` says; beyond a double, an error."""
    bounded = bounded_number(number)
    if bounded is None:
        raise ExpressionEvaluationError(f"{what} out of range", position)
    return bounded


def read_number(numeral: str) -> int | float | None:
    """The bounded number a decimal numeral (`42`, `-4.5`, `1e3`) stands for,
    or None beyond a double's range. Integers of more digits than
    `MAX_EXACT_INTEGER` are read as floats, in linear time."""
    unsigned = numeral.lstrip("+-")
    significant = unsigned.lstrip("0")
    exact = unsigned.isascii() and unsigned.isdigit()
    if exact and len(significant) <= _MAX_EXACT_DIGITS:
        whole = int(significant or "0")
        return bounded_number(-whole if numeral.startswith("-") else whole)
    return bounded_number(float(numeral))


def check_text_length(length: int, what: str, position: int) -> None:
    """Refuses a text of `length` characters, before or after it is built."""
    if length > MAX_TEXT_LENGTH:
        raise ExpressionEvaluationError(
            f"{what} would produce a text longer than {MAX_TEXT_LENGTH} characters",
            position,
        )


def compare(operator: str, left: Any, right: Any, position: int) -> bool:
    """Orders two non-NULL values of one orderable kind."""
    left_kind, right_kind = kind_of(left), kind_of(right)
    if left_kind != right_kind or left_kind not in ("number", "text", "boolean"):
        raise ExpressionEvaluationError(
            f"Cannot compare {left_kind} {operator} {right_kind}", position
        )
    return _ORDERINGS[operator](left, right)


_ORDERINGS: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: bool(a < b),
    "<=": lambda a, b: bool(a <= b),
    ">": lambda a, b: bool(a > b),
    ">=": lambda a, b: bool(a >= b),
}


def to_text(value: Any, position: int) -> str:
    """The text form of a non-NULL value, as `TO_STRING` and `||` write it.

    Whole floats lose their `.0` (`3.0` is `'3'`), as JSON readers expect;
    booleans are `'true'` and `'false'`; lists and objects are compact JSON.
    """
    try:
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float):
            if value.is_integer() and abs(value) < 1e16:
                return str(int(value))
            return repr(value)
        if isinstance(value, int):
            return str(value)
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):
        raise ExpressionEvaluationError(
            f"Cannot write this {kind_of(value)} as text", position
        ) from None


def require_number(value: Any, what: str, position: int) -> int | float:
    if not is_number(value):
        raise ExpressionEvaluationError(
            f"{what} needs a number, not {kind_of(value)}", position
        )
    return value  # type: ignore[no-any-return]


def require_text(value: Any, what: str, position: int) -> str:
    if not isinstance(value, str):
        raise ExpressionEvaluationError(
            f"{what} needs a text, not {kind_of(value)}", position
        )
    return value


def require_whole(value: Any, what: str, position: int) -> int:
    number = require_number(value, what, position)
    if isinstance(number, float):
        if not number.is_integer():
            raise ExpressionEvaluationError(
                f"{what} needs a whole number, not {number!r}", position
            )
        return int(number)
    return number


def require_finite(value: Any, what: str, position: int) -> int | float:
    number = require_number(value, what, position)
    if isinstance(number, float) and not math.isfinite(number):
        raise ExpressionEvaluationError(f"{what} needs a finite number", position)
    return number
