"""The expression language of transformations and data-layer routing rules.

A small, SQL-flavoured language with its own tokenizer, parser and interpreter:
nothing is handed to Python's `eval`, and an expression reaches nothing but the
JSON-like object it calls `event`, through paths that only walk objects and
lists. `docs/expressions.md` describes the language for users.

    expression = parse("LOWER(event.properties.currency) IN ('usd', 'eur')")
    evaluate(expression, {"properties": {"currency": "USD"}})  # True

`parse` raises `ExpressionSyntaxError` and nothing else; `evaluate` raises
`ExpressionEvaluationError` and nothing else. Parsed expressions are cached by
their text, so documents may parse their expressions on every use.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from signal_admin.processing.expressions.errors import (
    ExpressionError,
    ExpressionEvaluationError,
    ExpressionSyntaxError,
)
from signal_admin.processing.expressions.evaluator import evaluate_expression, utc_now
from signal_admin.processing.expressions.functions import Clock
from signal_admin.processing.expressions.nodes import Expression
from signal_admin.processing.expressions.parser import (
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_NESTING,
    parse_text,
)
from signal_admin.processing.expressions.values import (
    MAX_EXACT_INTEGER,
    MAX_TEXT_LENGTH,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_EXACT_INTEGER",
    "MAX_LENGTH",
    "MAX_NESTING",
    "MAX_TEXT_LENGTH",
    "Clock",
    "Expression",
    "ExpressionError",
    "ExpressionEvaluationError",
    "ExpressionSyntaxError",
    "evaluate",
    "parse",
]

PARSE_CACHE_SIZE = 2048


@lru_cache(maxsize=PARSE_CACHE_SIZE)
def parse(text: str) -> Expression:
    """The parsed expression; raises `ExpressionSyntaxError` naming the position."""
    return parse_text(text)


def evaluate(expression: Expression, event: Any, *, clock: Clock = utc_now) -> Any:
    """The expression's value for `event`: None (NULL), a boolean, number or text,
    or a list or object taken from the event itself (not a copy). Numbers are
    finite and texts built by the expression bounded (see `values`), so the
    value can always be written as JSON.

    `clock` answers `NOW()`; a naive datetime it returns is read as UTC.
    """
    return evaluate_expression(expression, event, clock)
