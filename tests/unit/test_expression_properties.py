"""Properties of the expression language that must hold for any input.

Whatever text a user saves, parsing either succeeds or raises
`ExpressionSyntaxError`; whatever event arrives, evaluating a parsed expression
either answers a value that can be written as JSON, bounded in size, or raises
`ExpressionEvaluationError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signal_admin.processing.expressions import (
    MAX_EXACT_INTEGER,
    MAX_LENGTH,
    MAX_TEXT_LENGTH,
    Expression,
    ExpressionEvaluationError,
    ExpressionSyntaxError,
    evaluate,
    parse,
)

FAST = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
FIXED_NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["a", "b", "n", "t", "items"]), inner)
    ),
    max_leaves=12,
)
events = st.dictionaries(
    st.sampled_from(["a", "b", "n", "t", "items", "properties"]), json_values
)

# Pieces of the language, so generated texts are often valid expressions.
FRAGMENTS = [
    "event", "event.a", "event.b", "event.n", "event.t", "event.items[0]",
    "event.items[1].a", "event['a']", "event.properties.n", "0", "1", "2.5",
    "-1", "1e308", "'x'", "''", "'%a_'", "'\\'", "TRUE", "FALSE", "NULL",
    " = ", " == ", " != ", " <> ", " < ", " <= ", " > ", " >= ", " AND ", " OR ",
    "NOT ", " IN ", " NOT IN ", " IS NULL", " IS NOT NULL", " LIKE ",
    " CONTAINS ", " + ", " - ", " * ", " / ", " % ", " || ", "(", ")", ", ",
    "COALESCE(", "LOWER(", "UPPER(", "TRIM(", "LENGTH(", "CONCAT(", "SUBSTRING(",
    "REPLACE(", "ROUND(", "FLOOR(", "CEIL(", "ABS(", "TO_NUMBER(", "TO_STRING(",
    "SHA256(", "NOW()", "DATE_FORMAT(", "'iso8601'", "'epoch_millis'",
    "'epoch_micros'", "'2024-05-01T12:00:00Z'",
]  # fmt: skip
fragment_texts = st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join)


BINARY_OPERATORS = [
    "=", "!=", "<", ">=", "AND", "OR", "+", "-", "*", "/", "%", "||", "LIKE",
    "CONTAINS",
]  # fmt: skip


def _leaf() -> st.SearchStrategy[str]:
    return st.sampled_from(
        [f for f in FRAGMENTS if not f.startswith(" ") and not f.endswith("(")]
    )


def _combine(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.sampled_from(BINARY_OPERATORS)
    unary = st.sampled_from(
        ["NOT ", "-", "LOWER", "UPPER", "TO_NUMBER", "TO_STRING", "ROUND", "FLOOR"]
    )
    return (
        st.tuples(inner, binary, inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})")
        | st.tuples(unary, inner).map(lambda t: f"{t[0]}({t[1]})")
        | st.tuples(inner, st.lists(inner, min_size=1, max_size=3)).map(
            lambda t: f"({t[0]} IN ({', '.join(t[1])}))"
        )
        | st.tuples(inner, st.booleans()).map(
            lambda t: f"({t[0]} IS {'NOT ' if t[1] else ''}NULL)"
        )
        | st.tuples(inner, inner, inner).map(
            lambda t: f"SUBSTRING({t[0]}, {t[1]}, {t[2]})"
        )
        | st.tuples(inner, inner).map(lambda t: f"DATE_FORMAT({t[0]}, {t[1]})")
        | st.tuples(inner, inner, inner).map(
            lambda t: f"REPLACE({t[0]}, {t[1]}, {t[2]})"
        )
        | st.lists(inner, min_size=1, max_size=3).map(
            lambda items: f"COALESCE({', '.join(items)})"
        )
    )


well_formed = st.recursive(_leaf(), _combine, max_leaves=10)


def assert_json_and_bounded(result: Any) -> None:
    """What every answer satisfies: it is JSON, with no NaN nor infinity, its
    numbers are bounded, and its texts no longer than the limit (the events
    these properties generate hold only short texts)."""
    json.dumps(result, allow_nan=False)
    if isinstance(result, int) and not isinstance(result, bool):
        assert abs(result) <= MAX_EXACT_INTEGER
    if isinstance(result, float):
        assert math.copysign(1.0, result) == 1.0 or result != 0
    if isinstance(result, str):
        assert len(result) <= MAX_TEXT_LENGTH


def parse_or_none(text: str) -> Expression | None:
    """The parsed expression, or None after checking the syntax error it raised."""
    try:
        return parse(text)
    except ExpressionSyntaxError as raised:
        error = raised

    assert 0 <= error.position <= len(text)
    assert error.message.endswith(f"at position {error.position}")
    return None


@FAST
@given(st.text(max_size=200))
def test_arbitrary_text_parses_or_raises_a_syntax_error(text: str) -> None:
    parse_or_none(text)


@FAST
@given(fragment_texts)
def test_fragments_of_the_language_parse_or_raise_a_syntax_error(text: str) -> None:
    parse_or_none(text)


@FAST
@given(
    st.integers(min_value=1, max_value=5_000),
    st.sampled_from(["(", "NOT ", "-", "LOWER(", "(1 + ", "event.a IN (", "'a' || "]),
)
def test_deep_nesting_raises_a_syntax_error(depth: int, opening: str) -> None:
    text = opening * depth + "1" + ")" * (depth * opening.count("("))

    parse_or_none(text)


@FAST
@given(st.text(min_size=1, max_size=5), st.integers(min_value=0, max_value=100))
def test_very_long_text_raises_a_syntax_error(piece: str, extra: int) -> None:
    text = piece * (MAX_LENGTH // len(piece) + 1) + "x" * extra

    assert parse_or_none(text) is None


@FAST
@given(well_formed, events)
def test_evaluation_answers_a_value_or_raises_an_evaluation_error(
    text: str, event: dict[str, Any]
) -> None:
    expression = parse_or_none(text)
    if expression is None:
        return

    try:
        result = evaluate(expression, event, clock=lambda: FIXED_NOW)
    except ExpressionEvaluationError as raised:
        error = raised
    else:
        assert_json_and_bounded(result)
        return

    assert 0 <= error.position <= len(text)


@FAST
@given(fragment_texts, events)
def test_evaluating_fragments_raises_only_evaluation_errors(
    text: str, event: dict[str, Any]
) -> None:
    expression = parse_or_none(text)
    if expression is None:
        return

    with contextlib.suppress(ExpressionEvaluationError):
        assert_json_and_bounded(evaluate(expression, event, clock=lambda: FIXED_NOW))


# Each wraps an expression in one that answers a larger value, if it can.
GROWING = [
    "({} || {})",
    "CONCAT({}, {}, {})",
    "REPLACE({}, 'a', 'aaaaaaaaaa')",
    "REPLACE(TO_STRING({}), '1', '1111111111')",
    "UPPER({})",
    "({} * {})",
    "({} * 1e10)",
    "FLOOR({} * {})",
    "ROUND({} * {}, -2)",
    "TO_NUMBER(TO_STRING({}) || '99999')",
]
seeds = st.sampled_from(
    ["event.a", "'aaaaaaaaaa'", "'ß'", "9223372036854775807", "1e300", "-3", "1.5"]
)


@settings(FAST, max_examples=100)
@given(seeds, st.lists(st.sampled_from(GROWING), max_size=20), events)
def test_growing_values_stay_bounded(
    seed: str, wrappers: list[str], event: dict[str, Any]
) -> None:
    text = seed
    for wrapper in wrappers:
        grown = wrapper.replace("{}", text)
        if len(grown) > MAX_LENGTH:
            break
        text = grown
    expression = parse_or_none(text)  # too deeply nested, at times
    if expression is None:
        return

    with contextlib.suppress(ExpressionEvaluationError):
        assert_json_and_bounded(evaluate(expression, event))


@FAST
@given(st.integers(min_value=-(10**4_000), max_value=10**4_000))
def test_event_integers_of_any_size_are_read_bounded(number: int) -> None:
    try:
        result = evaluate(parse("event.a"), {"a": number})
    except ExpressionEvaluationError:
        assert abs(number) > 2**1_023
        return

    assert_json_and_bounded(result)
    assert result == number if type(result) is int else result == float(number)


@FAST
@given(
    st.text(alphabet="ab", max_size=12),
    st.text(alphabet="ab%_", max_size=8),
)
def test_like_agrees_with_a_regular_expression(text: str, pattern: str) -> None:
    regex = "".join({"%": ".*", "_": "."}.get(c, c) for c in pattern)

    result = evaluate(parse("event.t LIKE event.p"), {"t": text, "p": pattern})

    assert result is (re.fullmatch(regex, text, re.DOTALL) is not None)


@FAST
@given(json_values)
def test_any_value_equals_itself(value: Any) -> None:
    result = evaluate(parse("event.a = event.a"), {"a": value})

    assert result is (None if value is None else True)


@FAST
@given(st.text(max_size=30), st.text(max_size=30))
def test_text_literals_round_trip(left: str, right: str) -> None:
    def quoted(text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    result = evaluate(parse(f"{quoted(left)} || {quoted(right)}"), {})

    assert result == left + right


@FAST
@given(st.text(max_size=30))
def test_a_text_is_like_itself_escaped(text: str) -> None:
    pattern = "".join("\\" + c if c in "%_\\" else c for c in text)

    assert evaluate(parse("event.t LIKE event.p"), {"t": text, "p": pattern})


@FAST
@given(st.text(max_size=30))
def test_sha256_matches_hashlib(text: str) -> None:
    result = evaluate(parse("SHA256(event.t)"), {"t": text})

    assert result == hashlib.sha256(text.encode()).hexdigest()


@FAST
@given(
    st.integers(min_value=-(10**12), max_value=10**12),
    st.integers(min_value=-(10**12), max_value=10**12).filter(bool),
)
def test_whole_division_is_exact(dividend: int, divisor: int) -> None:
    quotient = evaluate(parse("event.a / event.b"), {"a": dividend, "b": divisor})

    assert quotient * divisor == dividend or quotient == dividend / divisor
