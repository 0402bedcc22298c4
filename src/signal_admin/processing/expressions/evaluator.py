"""Computing an expression's value for one event.

Logic is SQL's three-valued logic: NULL is "unknown", `AND` and `OR` answer
NULL only when the known operands do not decide, and comparisons with NULL are
NULL. `AND`, `OR` and `COALESCE` stop at the first operand that decides, so
`event.n IS NOT NULL AND 10 / event.n > 1` never divides by a missing number.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from signal_admin.processing.expressions.errors import ExpressionEvaluationError
from signal_admin.processing.expressions.functions import FUNCTIONS, Clock
from signal_admin.processing.expressions.nodes import (
    Binary,
    Call,
    Contains,
    Expression,
    InList,
    IsNull,
    Like,
    Literal,
    Logical,
    Negate,
    Node,
    Not,
    Path,
)
from signal_admin.processing.expressions.values import (
    compare,
    is_number,
    kind_of,
    require_number,
    require_text,
    same_value,
    to_text,
)


def utc_now() -> datetime:
    return datetime.now(UTC)


def evaluate_expression(expression: Expression, event: Any, clock: Clock) -> Any:
    return _Evaluator(event, clock).value(expression.root)


class _Evaluator:
    def __init__(self, event: Any, clock: Clock) -> None:
        self._event = event
        self._clock = clock

    def value(self, node: Node) -> Any:
        match node:
            case Literal(value=value):
                return value
            case Path(segments=segments):
                return _walk(self._event, segments)
            case Negate():
                return self._negate(node)
            case Not(operand=operand):
                truth = self._truth(operand, "NOT")
                return None if truth is None else not truth
            case Logical():
                return self._logical(node)
            case Binary():
                return self._binary(node)
            case IsNull(operand=operand, negated=negated):
                return (self.value(operand) is None) != negated
            case InList():
                return _negated(self._in_list(node), node.negated)
            case Like():
                return _negated(self._like(node), node.negated)
            case Contains():
                return _negated(self._contains(node), node.negated)
            case Call():
                return self._call(node)

    def _truth(self, node: Node, operator: str) -> bool | None:
        value = self.value(node)
        if value is not None and not isinstance(value, bool):
            raise ExpressionEvaluationError(
                f"{operator} needs TRUE, FALSE or NULL, not {kind_of(value)}",
                node.position,
            )
        return value

    def _negate(self, node: Negate) -> Any:
        value = self.value(node.operand)
        if value is None:
            return None
        return -require_number(value, "Unary minus", node.position)

    def _logical(self, node: Logical) -> bool | None:
        deciding = node.operator == "OR"
        unknown = False
        for operand in node.operands:
            truth = self._truth(operand, node.operator)
            if truth is deciding:
                return deciding
            unknown = unknown or truth is None
        return None if unknown else not deciding

    def _binary(self, node: Binary) -> Any:
        left = self.value(node.left)
        right = self.value(node.right)
        if left is None or right is None:
            return None
        operator = node.operator
        if operator in ("=", "=="):
            return same_value(left, right)
        if operator in ("!=", "<>"):
            return not same_value(left, right)
        if operator == "||":
            return to_text(left, node.position) + to_text(right, node.position)
        if operator in ("<", "<=", ">", ">="):
            return compare(operator, left, right, node.position)
        return _arithmetic(operator, left, right, node.position)

    def _in_list(self, node: InList) -> bool | None:
        value = self.value(node.operand)
        return _member(value, (self.value(item) for item in node.items))

    def _like(self, node: Like) -> bool | None:
        value = self.value(node.operand)
        pattern = self.value(node.pattern)
        if value is None or pattern is None:
            return None
        text = require_text(value, "LIKE", node.position)
        items = _like_items(require_text(pattern, "LIKE's pattern", node.position))
        if items is None:
            raise ExpressionEvaluationError(
                "LIKE's pattern ends with a lone escape '\\'", node.position
            )
        return _like_matches(text, items)

    def _contains(self, node: Contains) -> bool | None:
        container = self.value(node.container)
        item = self.value(node.item)
        if container is None or item is None:
            return None
        if isinstance(container, list):
            return _member(item, container)
        if isinstance(container, str):
            return require_text(item, "CONTAINS on a text", node.position) in container
        raise ExpressionEvaluationError(
            f"CONTAINS needs a text or a list, not {kind_of(container)}",
            node.position,
        )

    def _call(self, node: Call) -> Any:
        function = FUNCTIONS[node.name]
        if function.compute is None:
            return self._coalesce(node)

        arguments = [self.value(argument) for argument in node.arguments]
        if not function.takes_null and any(value is None for value in arguments):
            return None
        return function.compute(arguments, node.position, self._clock)

    def _coalesce(self, node: Call) -> Any:
        for argument in node.arguments:
            value = self.value(argument)
            if value is not None:
                return value
        return None


def _member(value: Any, candidates: Iterable[Any]) -> bool | None:
    """SQL's `IN`: TRUE on a match, else NULL if any candidate was NULL."""
    if value is None:
        return None
    unknown = False
    for candidate in candidates:
        if candidate is None:
            unknown = True
        elif same_value(value, candidate):
            return True
    return None if unknown else False


def _walk(value: Any, segments: tuple[str | int, ...]) -> Any:
    """Follows keys through objects and indexes through lists; else NULL."""
    for segment in segments:
        if isinstance(segment, str) and isinstance(value, Mapping):
            value = value.get(segment)
        elif (
            isinstance(segment, int)
            and isinstance(value, list)
            and segment < len(value)
        ):
            value = value[segment]
        else:
            return None
    return value


def _negated(truth: bool | None, negated: bool) -> bool | None:
    return None if truth is None else truth != negated


def _arithmetic(operator: str, left: Any, right: Any, position: int) -> Any:
    if not (is_number(left) and is_number(right)):
        raise ExpressionEvaluationError(
            f"Cannot compute {kind_of(left)} {operator} {kind_of(right)}", position
        )
    if operator in ("/", "%") and right == 0:
        raise ExpressionEvaluationError("Division by zero", position)

    try:
        result = _OPERATIONS[operator](left, right)
    except (OverflowError, ValueError):
        result = math.inf
    # JSON has no infinity: a result beyond floats is an error, not a value.
    if isinstance(result, float) and not math.isfinite(result):
        raise ExpressionEvaluationError("Number out of range", position)
    return result


def _divide(left: int | float, right: int | float) -> int | float:
    """Exact division: whole numbers stay whole only when nothing is left over."""
    if isinstance(left, int) and isinstance(right, int) and left % right == 0:
        return left // right
    return left / right


def _remainder(left: int | float, right: int | float) -> int | float:
    """The remainder takes the dividend's sign, as in SQL: `-7 % 3` is -1."""
    if isinstance(left, int) and isinstance(right, int):
        remainder = abs(left) % abs(right)
        return remainder if left >= 0 else -remainder
    return math.fmod(left, right)


# A LIKE pattern compiles to characters and these two wildcards.
_ANY_RUN = 0  # `%`
_ANY_ONE = 1  # `_`


_OPERATIONS: dict[str, Callable[[Any, Any], int | float]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": _divide,
    "%": _remainder,
}


@lru_cache(maxsize=256)
def _like_items(pattern: str) -> tuple[str | int, ...] | None:
    """`%` is any run of characters, `_` any one, `\\` makes the next literal."""
    items: list[str | int] = []
    characters = iter(pattern)
    for character in characters:
        if character == "\\":
            escaped = next(characters, None)
            if escaped is None:
                return None
            items.append(escaped)
        elif character == "%":
            items.append(_ANY_RUN)
        elif character == "_":
            items.append(_ANY_ONE)
        else:
            items.append(character)
    return tuple(items)


def _like_matches(text: str, items: tuple[str | int, ...]) -> bool:
    """Wildcard matching that backtracks only to the last `%`.

    Its time grows with the text's length times the pattern's, never
    exponentially, whatever pattern an expression holds.
    """
    at_text = at_item = 0
    last_run, resume = -1, 0
    while at_text < len(text):
        item = items[at_item] if at_item < len(items) else None
        if item == _ANY_ONE or item == text[at_text]:
            at_text += 1
            at_item += 1
        elif item == _ANY_RUN:
            last_run, resume = at_item, at_text
            at_item += 1
        elif last_run != -1:
            resume += 1
            at_text, at_item = resume, last_run + 1
        else:
            return False
    return all(item == _ANY_RUN for item in items[at_item:])
