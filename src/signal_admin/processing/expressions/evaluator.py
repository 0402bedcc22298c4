"""Computing an expression's value for one event.

Logic is SQL's three-valued logic: NULL is "unknown", `AND` and `OR` answer
NULL only when the known operands do not decide, and comparisons with NULL are
NULL. `AND`, `OR` and `COALESCE` stop at the first operand that decides, so
`event.n IS NOT NULL AND 10 / event.n > 1` never divides by a missing number.

Numbers read from the event and numbers computed are bounded as
`values.bounded_number` says, and texts that operators and functions build are
bounded by `values.MAX_TEXT_LENGTH`, so every answer is small enough to write
as JSON.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
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
    check_text_length,
    checked_number,
    compare,
    is_number,
    kind_of,
    require_number,
    require_text,
    same_value,
    to_text,
)

# What `LIKE` may spend in one evaluation on pattern runs holding `_`, which
# `re` may compare at every position of the text: the text's length times the
# run's, summed over every such match. About a tenth of a second at worst.
MAX_LIKE_WORK = 10**8
# Patterns up to this length are compiled once for all evaluations; longer ones
# (read from an event, say) once per evaluation, so the cache stays small.
_CACHED_PATTERN_LENGTH = 10_000


def utc_now() -> datetime:
    return datetime.now(UTC)


def evaluate_expression(expression: Expression, event: Any, clock: Clock) -> Any:
    return _Evaluator(event, clock).value(expression.root)


class _Evaluator:
    def __init__(self, event: Any, clock: Clock) -> None:
        self._event = event
        self._clock = clock
        self._like_work = 0
        self._long_patterns: dict[str, tuple[_LikeRun, ...] | None] = {}

    def value(self, node: Node) -> Any:
        match node:
            case Literal(value=value):
                return value
            case Path(segments=segments):
                return _from_event(_walk(self._event, segments), node.position)
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
        number = require_number(value, "Unary minus", node.position)
        return checked_number(-number, "Number", node.position)

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
            return _concatenate(left, right, node.position)
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
        runs = self._like_runs(require_text(pattern, "LIKE's pattern", node.position))
        if runs is None:
            raise ExpressionEvaluationError(
                "LIKE's pattern ends with a lone escape '\\'", node.position
            )

        wildcard_length = sum(run.length for run in runs if run.wildcards)
        self._like_work += len(text) * wildcard_length
        if self._like_work > MAX_LIKE_WORK:
            raise ExpressionEvaluationError(
                "LIKE with '_' on texts this long would take too long",
                node.position,
            )
        return _like_matches(text, runs)

    def _like_runs(self, pattern: str) -> tuple[_LikeRun, ...] | None:
        if len(pattern) <= _CACHED_PATTERN_LENGTH:
            return _cached_like_runs(pattern)
        if pattern not in self._long_patterns:
            self._long_patterns[pattern] = _compile_like_runs(pattern)
        return self._long_patterns[pattern]

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
        result = function.compute(arguments, node.position, self._clock)
        # Functions refuse a large text before building it where they can;
        # this keeps every function's answer within the bounds whatever it does.
        if is_number(result):
            return checked_number(result, f"{node.name}'s result", node.position)
        if isinstance(result, str):
            check_text_length(len(result), node.name, node.position)
        return result

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


def _from_event(value: Any, position: int) -> Any:
    """A value read from the event: numbers are bounded like computed ones, so
    that a huge integer in the event cannot make arithmetic slow."""
    if is_number(value):
        return checked_number(value, "Number in the event", position)
    return value


def _concatenate(left: Any, right: Any, position: int) -> str:
    left_text, right_text = to_text(left, position), to_text(right, position)
    check_text_length(len(left_text) + len(right_text), "'||'", position)
    return left_text + right_text


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
    return checked_number(result, "Number", position)


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


_OPERATIONS: dict[str, Callable[[Any, Any], int | float]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": _divide,
    "%": _remainder,
}


@dataclass(frozen=True, slots=True)
class _LikeRun:
    """The characters of a LIKE pattern between two `%`, some of them `_`."""

    text: str
    length: int
    # A regular expression of the run when it holds `_` (as `.`); else None,
    # and `text` is searched for as it is.
    wildcards: re.Pattern[str] | None

    def matches_at(self, text: str, start: int) -> bool:
        if self.wildcards is None:
            return text.startswith(self.text, start)
        return self.wildcards.match(text, start) is not None

    def find(self, text: str, start: int, end: int) -> int:
        """Where the run first lies wholly within `text[start:end]`, else -1."""
        if self.wildcards is None:
            return text.find(self.text, start, end)
        found = self.wildcards.search(text, start, end)
        return -1 if found is None else found.start()


@lru_cache(maxsize=256)
def _cached_like_runs(pattern: str) -> tuple[_LikeRun, ...] | None:
    return _compile_like_runs(pattern)


def _compile_like_runs(pattern: str) -> tuple[_LikeRun, ...] | None:
    """The runs between the pattern's `%`s; `_` is any one character and `\\`
    makes the next one literal. None when the pattern ends with a lone `\\`."""
    runs: list[_LikeRun] = []
    characters: list[str | None] = []  # None stands for `_`
    escaping = False
    for character in pattern:
        if escaping:
            characters.append(character)
            escaping = False
        elif character == "\\":
            escaping = True
        elif character == "%":
            runs.append(_like_run(characters))
            characters = []
        else:
            characters.append(None if character == "_" else character)
    if escaping:
        return None
    runs.append(_like_run(characters))
    return tuple(runs)


def _like_run(characters: list[str | None]) -> _LikeRun:
    if None not in characters:
        literal = "".join(c for c in characters if c is not None)
        return _LikeRun(literal, len(characters), None)
    regex = "".join("." if c is None else re.escape(c) for c in characters)
    return _LikeRun(regex, len(characters), re.compile(regex, re.DOTALL))


def _like_matches(text: str, runs: tuple[_LikeRun, ...]) -> bool:
    """Whether the runs, separated by any text, make up the whole text.

    The first run must begin the text and the last end it; each run between
    them is taken at its first place after the previous one, which can only
    leave more room for those after it, so nothing is ever tried twice. A run
    without `_` is found by `str.find`, in time linear in the text's length; a
    run holding `_` by `re`, which may compare the run at every position of the
    text, in time that grows with the text's length times the run's.
    """
    if len(runs) == 1:
        return len(text) == runs[0].length and runs[0].matches_at(text, 0)
    first, *middle, last = runs
    end = len(text) - last.length
    if end < first.length or not first.matches_at(text, 0):
        return False
    if not last.matches_at(text, end):
        return False
    position = first.length
    for run in middle:
        found = run.find(text, position, end)
        if found == -1:
            return False
        position = found + run.length
    return True
