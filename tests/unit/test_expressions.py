"""The expression language of transformations and routing rules."""

from __future__ import annotations

import hashlib
import inspect
import math
import sys
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from signal_admin.processing.expressions import (
    MAX_DEPTH,
    MAX_EXACT_INTEGER,
    MAX_LENGTH,
    MAX_NESTING,
    MAX_TEXT_LENGTH,
    Expression,
    ExpressionEvaluationError,
    ExpressionSyntaxError,
    evaluate,
    parse,
)
from signal_admin.processing.expressions.parser import parse_text

# The stack a caller must leave for the deepest expression the parser accepts.
FRAMES_FOR_THE_DEEPEST = 350

FIXED_NOW = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)

ORDER_EVENT: dict[str, Any] = {
    "type": "track",
    "event": "Order Completed",
    "anonymousId": "anon-1",
    "properties": {
        "revenue": 42.5,
        "currency": "usd",
        "coupon": None,
        "tags": ["sale", "summer", None],
        "quantities": [1, 2, 3],
    },
    "items": [{"sku": "SKU-1", "price": 10}, {"sku": "SKU-2", "price": 32.5}],
    "context": {"page": {"url": "https://shop.example/staging/cart"}},
    "odd keys": {"with-dash": "yes"},
}


def value(text: str, event: Any = None) -> Any:
    return evaluate(parse(text), ORDER_EVENT if event is None else event)


def syntax_error(text: str) -> ExpressionSyntaxError:
    with pytest.raises(ExpressionSyntaxError) as raised:
        parse(text)
    return raised.value


def evaluation_error(text: str, event: Any = None) -> ExpressionEvaluationError:
    expression = parse(text)
    with pytest.raises(ExpressionEvaluationError) as raised:
        evaluate(expression, ORDER_EVENT if event is None else event)
    return raised.value


class TestSpecificationExamples:
    def test_routing_rule_on_the_event_name(self) -> None:
        assert value("event.event = 'Internal Test'", {"event": "Internal Test"})
        assert not value("event.event = 'Internal Test'", {"event": "Order"})

    def test_routing_rule_on_a_staging_url(self) -> None:
        assert value("event.context.page.url CONTAINS '/staging'") is True

    def test_paths_into_nested_objects_and_lists(self) -> None:
        assert value("event.properties.revenue") == 42.5
        assert value("event.context.page.url") == "https://shop.example/staging/cart"
        assert value("event.items[0].sku") == "SKU-1"

    def test_not_in_a_list_holding_null_is_null(self) -> None:
        assert value("3 NOT IN (1, NULL)") is None

    def test_division_is_exact(self) -> None:
        assert value("7 / 2") == 3.5
        assert value("7 / 2 = 3.5") is True

    def test_substring_counts_from_one(self) -> None:
        assert value("SUBSTRING('signal', 1, 3)") == "sig"

    def test_to_number_of_a_non_number_is_null(self) -> None:
        assert value("TO_NUMBER('x')") is None

    def test_text_equal_to_a_number_is_false(self) -> None:
        assert value("'1' = 1") is False

    def test_ordering_a_text_against_a_number_is_an_evaluation_error(self) -> None:
        evaluation_error("'1' < 1")
        evaluation_error("1 > 'a'")

    def test_text_plus_number_is_an_evaluation_error(self) -> None:
        evaluation_error("'a' + 1")

    def test_division_by_zero_is_an_evaluation_error(self) -> None:
        evaluation_error("1 / 0")


class TestPaths:
    def test_the_bare_event_is_the_whole_object(self) -> None:
        event = {"a": 1}

        assert evaluate(parse("event"), event) is event

    def test_a_missing_key_is_null(self) -> None:
        assert value("event.properties.missing") is None

    def test_a_key_under_a_missing_key_is_null(self) -> None:
        assert value("event.nothing.here.at.all") is None

    def test_an_index_past_the_end_is_null(self) -> None:
        assert value("event.items[5].sku") is None

    def test_a_key_of_a_list_is_null(self) -> None:
        assert value("event.items.sku") is None

    def test_an_index_into_an_object_is_null(self) -> None:
        assert value("event.properties[0]") is None

    def test_a_key_of_a_text_is_null(self) -> None:
        assert value("event.event.length") is None

    def test_a_quoted_key_reaches_any_key(self) -> None:
        assert value("event['odd keys']['with-dash']") == "yes"

    def test_keywords_may_name_keys(self) -> None:
        assert value("event.type", {"type": "page"}) == "page"
        assert value("event.in.not.null", {"in": {"not": {"null": 1}}}) == 1

    def test_lists_of_lists(self) -> None:
        assert value("event.grid[1][0]", {"grid": [[1], [2, 3]]}) == 2

    def test_a_json_null_is_null(self) -> None:
        assert value("event.properties.coupon IS NULL") is True

    def test_no_python_attribute_is_reachable(self) -> None:
        assert value("event.__class__") is None
        assert value("event.properties.__dict__") is None
        assert value("event.event.upper") is None

    def test_the_root_name_is_event(self) -> None:
        error = syntax_error("properties.revenue")

        assert error.position == 0
        assert "event" in error.message

    def test_an_index_must_be_a_whole_number(self) -> None:
        assert syntax_error("event.items[1.5]").position == 12
        syntax_error("event.items[-1]")

    def test_an_unclosed_bracket(self) -> None:
        assert syntax_error("event.items[0").position == 13


class TestLiterals:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("'text'", "text"),
            ("''", ""),
            ("'it''s'", "it's"),
            ("''''", "'"),
            ("42", 42),
            ("4.25", 4.25),
            ("1e3", 1000.0),
            ("2.5E-1", 0.25),
            ("TRUE", True),
            ("false", False),
            ("Null", None),
        ],
    )
    def test_reads(self, text: str, expected: Any) -> None:
        result = value(text)

        assert result == expected
        assert type(result) is type(expected)

    def test_an_unterminated_text_names_its_opening_quote(self) -> None:
        assert syntax_error("event.a = 'abc").position == 10

    def test_a_number_too_large_for_a_float(self) -> None:
        assert syntax_error("1 + 1e999").position == 4

    def test_a_whole_number_too_large_for_a_float(self) -> None:
        error = syntax_error("1 + 1" + "0" * 400)

        assert error.position == 4
        assert "out of range" in error.message

    def test_leading_zeros_keep_a_whole_number_whole(self) -> None:
        result = value("0" * 40 + "7")

        assert result == 7
        assert type(result) is int

    def test_a_text_keeps_its_spaces_and_newlines(self) -> None:
        assert value("' a\nb '") == " a\nb "


class TestComparison:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("1 = 1", True),
            ("1 == 1.0", True),
            ("1 = 2", False),
            ("'a' = 'a'", True),
            ("'a' = 'A'", False),
            ("1 != 2", True),
            ("1 <> 1", False),
            ("1 < 2", True),
            ("2 <= 2", True),
            ("3 > 2", True),
            ("2 >= 3", False),
            ("'apple' < 'banana'", True),
            ("FALSE < TRUE", True),
            ("TRUE = 1", False),
            ("'true' = TRUE", False),
            ("event.properties.quantities = event.properties.quantities", True),
        ],
    )
    def test_compares(self, text: str, expected: bool) -> None:
        assert value(text) is expected

    @pytest.mark.parametrize(
        "text", ["NULL = NULL", "1 = NULL", "NULL != 1", "NULL < 1", "'a' >= NULL"]
    )
    def test_with_null_is_null(self, text: str) -> None:
        assert value(text) is None

    def test_ordering_lists_is_an_evaluation_error(self) -> None:
        evaluation_error("event.items < event.items")

    def test_ordering_a_boolean_against_a_number_is_an_evaluation_error(self) -> None:
        evaluation_error("TRUE < 2")

    def test_comparisons_do_not_chain(self) -> None:
        error = syntax_error("1 < 2 < 3")

        assert error.position == 6
        assert "parentheses" in error.message

    def test_parenthesised_comparisons_may_be_compared(self) -> None:
        assert value("(1 < 2) = TRUE") is True


class TestLogic:
    @pytest.mark.parametrize(
        ("left", "right", "conjunction", "disjunction"),
        [
            ("TRUE", "TRUE", True, True),
            ("TRUE", "FALSE", False, True),
            ("TRUE", "NULL", None, True),
            ("FALSE", "TRUE", False, True),
            ("FALSE", "FALSE", False, False),
            ("FALSE", "NULL", False, None),
            ("NULL", "TRUE", None, True),
            ("NULL", "FALSE", False, None),
            ("NULL", "NULL", None, None),
        ],
    )
    def test_three_valued_truth_tables(
        self,
        left: str,
        right: str,
        conjunction: bool | None,
        disjunction: bool | None,
    ) -> None:
        assert value(f"{left} AND {right}") is conjunction
        assert value(f"{left} OR {right}") is disjunction

    @pytest.mark.parametrize(
        ("text", "expected"),
        [("NOT TRUE", False), ("NOT FALSE", True), ("NOT NULL", None)],
    )
    def test_not(self, text: str, expected: bool | None) -> None:
        assert value(text) is expected

    def test_not_not(self) -> None:
        assert value("NOT NOT TRUE") is True

    def test_and_stops_at_false(self) -> None:
        assert value("event.n IS NOT NULL AND 10 / event.n > 1", {}) is False

    def test_or_stops_at_true(self) -> None:
        assert value("TRUE OR 1 / 0 = 1") is True

    def test_long_chains_are_allowed(self) -> None:
        text = " OR ".join(f"event.n = {n}" for n in range(500))

        assert value(text, {"n": 499}) is True

    def test_a_non_boolean_operand_is_an_evaluation_error(self) -> None:
        assert evaluation_error("TRUE AND 'yes'").position == 9
        evaluation_error("NOT 1")
        evaluation_error("1 OR FALSE")

    def test_keywords_are_case_insensitive(self) -> None:
        assert value("true and not false Or null") is True
        assert value("event.x is null", {}) is True


class TestIn:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("2 IN (1, 2, 3)", True),
            ("4 IN (1, 2, 3)", False),
            ("4 IN (1, NULL)", None),
            ("1 IN (1, NULL)", True),
            ("NULL IN (1, 2)", None),
            ("NULL IN (NULL)", None),
            ("4 NOT IN (1, 2, 3)", True),
            ("2 NOT IN (1, 2)", False),
            ("1 NOT IN (1, NULL)", False),
            ("'1' IN (1, 2)", False),
            ("LOWER(event.properties.currency) IN ('usd', 'eur')", True),
            ("2 IN (1 + 1)", True),
        ],
    )
    def test_membership(self, text: str, expected: bool | None) -> None:
        assert value(text) is expected

    def test_an_empty_list_is_a_syntax_error(self) -> None:
        assert syntax_error("1 IN ()").position == 6

    def test_a_list_needs_parentheses(self) -> None:
        assert syntax_error("1 IN 1, 2").position == 5


class TestIsNull:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("NULL IS NULL", True),
            ("1 IS NULL", False),
            ("NULL IS NOT NULL", False),
            ("'' IS NOT NULL", True),
            ("event.missing IS NULL", True),
            ("event.properties IS NOT NULL", True),
        ],
    )
    def test_is_never_null(self, text: str, expected: bool) -> None:
        assert value(text) is expected

    def test_is_must_be_followed_by_null(self) -> None:
        assert syntax_error("1 IS 2").position == 5


class TestLike:
    @pytest.mark.parametrize(
        ("text", "pattern", "expected"),
        [
            ("abc", "abc", True),
            ("abc", "ab", False),
            ("abc", "a%", True),
            ("abc", "%c", True),
            ("abc", "%b%", True),
            ("abc", "%", True),
            ("", "%", True),
            ("", "_", False),
            ("abc", "a_c", True),
            ("abc", "a_", False),
            ("abc", "___", True),
            ("ABC", "abc", False),
            ("a%c", "a\\%c", True),
            ("abc", "a\\%c", False),
            ("a_c", "a\\_c", True),
            ("abc", "a\\_c", False),
            ("a\\c", "a\\\\c", True),
            ("a.c", "a.c", True),
            ("abc", "a.c", False),
            ("line\nbreak", "line%", True),
            ("mississippi", "%iss%ipp%", True),
            ("mississippi", "%iss%ipx%", False),
        ],
    )
    def test_matches_the_whole_text(
        self, text: str, pattern: str, expected: bool
    ) -> None:
        assert value("event.t LIKE event.p", {"t": text, "p": pattern}) is expected

    def test_not_like(self) -> None:
        assert value("'abc' NOT LIKE 'x%'") is True

    def test_with_null_is_null(self) -> None:
        assert value("NULL LIKE '%'") is None
        assert value("'a' NOT LIKE NULL") is None

    def test_a_trailing_escape_is_an_evaluation_error(self) -> None:
        evaluation_error("'a' LIKE 'a\\'")

    def test_a_non_text_is_an_evaluation_error(self) -> None:
        evaluation_error("1 LIKE '1'")

    @pytest.mark.parametrize(
        "pattern",
        [
            "%a%a%a%a%a%a%a%b",
            "%" + "a" * 1_000 + "b",
            "%" + "a" * 1_000 + "b%",
            "%" + "a" * 1_000 + "_b%",
            "a%" + "a_" * 100 + "%b",
        ],
    )
    def test_a_pathological_pattern_stays_fast(self, pattern: str) -> None:
        event = {"t": "a" * MAX_TEXT_LENGTH, "p": pattern}

        assert value("event.t LIKE event.p", event) is False

    def test_underscores_on_a_long_text_are_bounded(self) -> None:
        event = {"t": "a" * MAX_TEXT_LENGTH, "p": "%" + "a_" * 1_000 + "b%"}

        error = evaluation_error("event.t LIKE event.p", event)

        assert error.position == 8
        assert "too long" in error.message

    def test_every_like_of_an_evaluation_shares_the_bound(self) -> None:
        one = "event.t LIKE '%" + "a_" * 20 + "b%'"
        text = " OR ".join([one] * 150)

        error = evaluation_error(text, {"t": "a" * MAX_TEXT_LENGTH})

        assert "too long" in error.message

    def test_a_long_pattern_from_the_event(self) -> None:
        event = {"t": "x" + "a" * 20_000 + "y", "p": "x%" + "a" * 20_000 + "%y"}

        assert value("event.t LIKE event.p AND event.t LIKE event.p", event) is True

    @pytest.mark.parametrize(
        ("text", "pattern", "expected"),
        [
            ("abcabc", "%abc", True),
            ("abcab", "%abc%b", True),
            ("aXbYc", "a_b_c", True),
            ("ab", "a%%b", True),
            ("aba", "%a_a", True),
            ("abab", "%a_a", False),
            ("aaa", "a%a%a", True),
            ("aa", "a%a%a", False),
            ("a", "%_%", True),
            ("", "%_%", False),
        ],
    )
    def test_runs_between_wildcards(
        self, text: str, pattern: str, expected: bool
    ) -> None:
        assert value("event.t LIKE event.p", {"t": text, "p": pattern}) is expected


class TestContains:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("'storefront' CONTAINS 'front'", True),
            ("'storefront' CONTAINS 'back'", False),
            ("'abc' CONTAINS ''", True),
            ("event.properties.tags CONTAINS 'sale'", True),
            ("event.properties.quantities CONTAINS 2", True),
            ("event.properties.quantities CONTAINS '2'", False),
            ("event.properties.tags CONTAINS 'winter'", None),
            ("event.properties.tags NOT CONTAINS 'sale'", False),
            ("event.properties.quantities NOT CONTAINS 7", True),
            ("event.missing CONTAINS 'a'", None),
            ("'abc' CONTAINS NULL", None),
        ],
    )
    def test_substring_or_membership(self, text: str, expected: bool | None) -> None:
        assert value(text) is expected

    def test_a_list_of_objects(self) -> None:
        assert value("event.items CONTAINS event.items[1]") is True

    def test_a_number_in_a_text_is_an_evaluation_error(self) -> None:
        evaluation_error("'a1' CONTAINS 1")

    def test_a_number_container_is_an_evaluation_error(self) -> None:
        evaluation_error("12 CONTAINS 1")


class TestArithmetic:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("1 + 2", 3),
            ("1.5 + 1", 2.5),
            ("5 - 7", -2),
            ("3 * 4", 12),
            ("0.5 * 4", 2.0),
            ("8 / 2", 4),
            ("1 / 4", 0.25),
            ("7 % 3", 1),
            ("-7 % 3", -1),
            ("7 % -3", 1),
            ("7.5 % 2", 1.5),
            ("-event.properties.revenue", -42.5),
            ("- -3", 3),
            ("event.items[0].price + event.items[1].price", 42.5),
        ],
    )
    def test_computes(self, text: str, expected: int | float) -> None:
        result = value(text)

        assert result == expected
        assert type(result) is type(expected)

    @pytest.mark.parametrize(
        "text", ["NULL + 1", "1 - NULL", "NULL * NULL", "NULL / 0", "5 % NULL", "-NULL"]
    )
    def test_with_null_is_null(self, text: str) -> None:
        assert value(text) is None

    @pytest.mark.parametrize(
        ("text", "position"),
        [
            ("1 / 0", 2),
            ("1 % 0.0", 2),
            ("'a' + 1", 4),
            ("1 * 'a'", 2),
            ("TRUE + 1", 5),
            ("-'a'", 0),
            ("event.items - 1", 12),
        ],
    )
    def test_errors_name_the_operator(self, text: str, position: int) -> None:
        error = evaluation_error(text)

        assert error.position == position
        assert f"at position {position}" in str(error)

    @pytest.mark.parametrize(
        "text",
        [
            "FLOOR(1e300) * FLOOR(1e300)",
            "1e308 * 10",
            "1 / 1e-320",
            "-1e308 - 1e308",
            " * ".join(["FLOOR(1e20)"] * 16),
        ],
    )
    def test_a_result_beyond_floats_is_an_evaluation_error(self, text: str) -> None:
        assert "out of range" in evaluation_error(text).message


class TestConcatenation:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("'a' || 'b'", "ab"),
            ("'n=' || 3", "n=3"),
            ("'n=' || 2.5", "n=2.5"),
            ("'n=' || 3.0", "n=3"),
            ("'flag=' || TRUE", "flag=true"),
            ("'a' || 'b' || 'c'", "abc"),
            ("'x' || event.properties.quantities", "x[1,2,3]"),
        ],
    )
    def test_writes_values_as_text(self, text: str, expected: str) -> None:
        assert value(text) == expected

    def test_with_null_is_null(self) -> None:
        assert value("'a' || NULL") is None


class TestNumberBounds:
    @pytest.mark.parametrize(
        "text", ["9223372036854775807", "-9223372036854775807", "event.id", "-event.id"]
    )
    def test_whole_numbers_stay_exact_within_64_bits(self, text: str) -> None:
        result = value(text, {"id": MAX_EXACT_INTEGER})

        assert abs(result) == MAX_EXACT_INTEGER
        assert type(result) is int

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("9223372036854775807 + 1", 2.0**63),
            ("-9223372036854775807 - 2", -(2.0**63)),
            ("3037000500 * 3037000500", 3037000500.0**2),
            ("1" + "0" * 20, 1e20),
            ("FLOOR(1e300)", 1e300),
            ("CEIL(-1e300)", -1e300),
            ("ROUND(1e20)", 1e20),
            ("ROUND(12345678901234567890, -1)", 1.2345678901234567e19),
            ("TO_NUMBER('1" + "0" * 30 + "')", 1e30),
            ("event.big", 2.0**64),
            ("event.big - 1", 2.0**64),
        ],
    )
    def test_whole_numbers_beyond_64_bits_become_floats(
        self, text: str, expected: float
    ) -> None:
        result = value(text, {"big": 2**64})

        assert result == expected
        assert type(result) is float

    def test_integer_chains_cannot_grow_beyond_a_double(self) -> None:
        result = value(" * ".join(["9223372036854775807"] * 16))

        assert type(result) is float
        assert math.isfinite(result)

    def test_an_event_integer_beyond_a_double_is_an_evaluation_error(self) -> None:
        error = evaluation_error("1 + event.a", {"a": 10**4_000})

        assert error.position == 4
        assert "out of range" in error.message

    def test_a_non_finite_event_number_is_an_evaluation_error(self) -> None:
        evaluation_error("event.a", {"a": float("nan")})
        evaluation_error("event.a", {"a": float("-inf")})

    def test_to_number_of_a_text_beyond_a_double_is_null(self) -> None:
        assert value("TO_NUMBER(event.t)", {"t": "9" * 5_000}) is None

    @pytest.mark.parametrize(
        "text",
        ["-0.0", "0 * -1.5", "ROUND(-0.04, 1)", "TO_NUMBER('-0.0')", "event.z"],
    )
    def test_negative_zero_is_zero(self, text: str) -> None:
        result = value(text, {"z": -0.0})

        assert result == 0
        assert math.copysign(1, result) == 1


class TestTextBounds:
    def test_a_text_at_the_limit_is_built(self) -> None:
        event = {"t": "a" * (MAX_TEXT_LENGTH // 2)}

        assert len(value("REPLACE(event.t, 'a', 'bb')", event)) == MAX_TEXT_LENGTH
        assert len(value("event.t || event.t", event)) == MAX_TEXT_LENGTH

    def test_nested_replacements_stop_where_the_text_grows_too_long(self) -> None:
        text = "REPLACE(" * 7 + "'aaaaaaaaaa'" + ", 'a', 'aaaaaaaaaa')" * 7

        error = evaluation_error(text)

        # The fourth REPLACE from the inside would write 10^5 characters.
        assert error.position == 3 * len("REPLACE(")
        assert error.message.startswith("REPLACE would produce a text longer than")

    @pytest.mark.parametrize(
        ("text", "position", "name"),
        [
            ("event.t || event.t", 8, "'||'"),
            ("'x' || event.t || event.t", 15, "'||'"),
            ("CONCAT('x', event.t, event.t)", 0, "CONCAT"),
            ("UPPER(event.long)", 0, "UPPER"),
            ("UPPER(event.sharp)", 0, "UPPER"),
            ("LOWER(event.long)", 0, "LOWER"),
            ("TRIM(event.long)", 0, "TRIM"),
            ("SUBSTRING(event.long, 1)", 0, "SUBSTRING"),
            ("TO_STRING(event.list)", 0, "TO_STRING"),
            ("'' || event.list", 3, "'||'"),
        ],
    )
    def test_a_longer_text_is_an_evaluation_error(
        self, text: str, position: int, name: str
    ) -> None:
        event = {
            "t": "a" * (MAX_TEXT_LENGTH // 2 + 1),
            "sharp": "\u00df" * (MAX_TEXT_LENGTH // 2 + 1),
            "long": "a" * (MAX_TEXT_LENGTH + 1),
            "list": [1] * (MAX_TEXT_LENGTH // 2),
        }

        error = evaluation_error(text, event)

        assert error.position == position
        assert error.message.startswith(f"{name} would produce a text longer than")

    def test_a_longer_text_from_the_event_passes_through_unchanged(self) -> None:
        event = {"long": "a" * (MAX_TEXT_LENGTH + 1)}

        assert value("event.long", event) is event["long"]
        assert value("COALESCE(event.long, 'x')", event) is event["long"]
        assert value("LENGTH(event.long)", event) == MAX_TEXT_LENGTH + 1
        assert value("SUBSTRING(event.long, 2, 3)", event) == "aaa"
        assert value("event.long LIKE 'a%a'", event) is True


class TestPrecedence:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("1 + 2 * 3", 7),
            ("(1 + 2) * 3", 9),
            ("10 - 4 - 3", 3),
            ("12 / 2 / 3", 2),
            ("2 * 3 % 4", 2),
            ("-2 * 3", -6),
            ("-(2 + 3)", -5),
            ("'a' || 1 + 2 = 'a3'", None),
            ("1 + 1 = 2", True),
            ("NOT 1 = 2", True),
            ("NOT TRUE AND FALSE", False),
            ("NOT (TRUE AND FALSE)", True),
            ("TRUE OR TRUE AND FALSE", True),
            ("(TRUE OR TRUE) AND FALSE", False),
            ("FALSE AND TRUE OR TRUE", True),
            ("1 + 1 IN (2)", True),
            ("'a' || 'b' LIKE 'ab'", True),
            ("NOT NULL IS NULL", False),
        ],
    )
    def test_binds(self, text: str, expected: Any) -> None:
        if expected is None:
            evaluation_error(text)
        else:
            assert value(text) == expected

    def test_concatenation_shares_its_level_with_addition(self) -> None:
        assert value("'a' || (1 + 2)") == "a3"
        evaluation_error("'a' || 1 + 2")


class TestFunctions:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("COALESCE(NULL, NULL, 'c', 'd')", "c"),
            ("COALESCE(event.properties.coupon, 'none')", "none"),
            ("COALESCE(NULL)", None),
            ("COALESCE(FALSE, TRUE)", False),
            ("LOWER('MiXeD')", "mixed"),
            ("UPPER('MiXeD')", "MIXED"),
            ("TRIM('  a b \t\n')", "a b"),
            ("LENGTH('héllo')", 5),
            ("LENGTH(event.items)", 2),
            ("CONCAT('a', 1, NULL, TRUE)", "a1true"),
            ("CONCAT(NULL)", ""),
            ("SUBSTRING('signal', 2)", "ignal"),
            ("SUBSTRING('signal', 2, 3)", "ign"),
            ("SUBSTRING('signal', 0, 3)", "si"),
            ("SUBSTRING('signal', -1, 3)", "s"),
            ("SUBSTRING('signal', 5, 10)", "al"),
            ("SUBSTRING('signal', 10)", ""),
            ("SUBSTRING('signal', 2, 0)", ""),
            ("SUBSTRING('signal', 2.0, 1)", "i"),
            ("REPLACE('a-b-c', '-', '+')", "a+b+c"),
            ("REPLACE('abc', '', 'x')", "abc"),
            ("ROUND(2.5)", 3),
            ("ROUND(-2.5)", -3),
            ("ROUND(2.4)", 2),
            ("ROUND(2.675, 2)", 2.68),
            ("ROUND(1234.5678, 1)", 1234.6),
            ("ROUND(1234.5678, -2)", 1200.0),
            ("ROUND(1255, -1)", 1260),
            ("ROUND(7, 2)", 7),
            ("FLOOR(2.7)", 2),
            ("FLOOR(-2.2)", -3),
            ("CEIL(2.2)", 3),
            ("CEIL(-2.7)", -2),
            ("ABS(-3)", 3),
            ("ABS(2.5)", 2.5),
            ("TO_NUMBER('42')", 42),
            ("TO_NUMBER(' -4.5 ')", -4.5),
            ("TO_NUMBER('1e2')", 100.0),
            ("TO_NUMBER(7)", 7),
            ("TO_NUMBER('x')", None),
            ("TO_NUMBER('')", None),
            ("TO_NUMBER('nan')", None),
            ("TO_NUMBER('inf')", None),
            ("TO_NUMBER('1_000')", None),
            ("TO_NUMBER('\u0663')", None),
            ("TO_NUMBER(TRUE)", None),
            ("TO_STRING(42)", "42"),
            ("TO_STRING(2.5)", "2.5"),
            ("TO_STRING(FALSE)", "false"),
            ("TO_STRING('a')", "a"),
            ("TO_STRING(event.items[0])", '{"sku":"SKU-1","price":10}'),
        ],
    )
    def test_computes(self, text: str, expected: Any) -> None:
        result = value(text)

        assert result == expected
        assert type(result) is type(expected)

    @pytest.mark.parametrize(
        "text",
        [
            "LOWER(NULL)",
            "UPPER(NULL)",
            "TRIM(NULL)",
            "LENGTH(NULL)",
            "SUBSTRING(NULL, 1)",
            "SUBSTRING('a', NULL)",
            "REPLACE('a', NULL, 'b')",
            "ROUND(NULL)",
            "ROUND(1.5, NULL)",
            "FLOOR(NULL)",
            "CEIL(NULL)",
            "ABS(NULL)",
            "TO_NUMBER(NULL)",
            "TO_STRING(NULL)",
            "SHA256(NULL)",
            "DATE_FORMAT(NULL, 'iso8601')",
            "DATE_FORMAT('2024-01-01', NULL)",
        ],
    )
    def test_null_in_null_out(self, text: str) -> None:
        assert value(text) is None

    @pytest.mark.parametrize(
        "text", ["ROUND(event.n)", "FLOOR(event.n)", "CEIL(event.n)"]
    )
    def test_an_infinite_number_cannot_be_rounded(self, text: str) -> None:
        evaluation_error(text, {"n": float("inf")})

    def test_sha256_is_lowercase_hex_of_utf8(self) -> None:
        expected = hashlib.sha256("jürgen@exämple.com".encode()).hexdigest()

        assert value("SHA256(LOWER(TRIM('  Jürgen@Exämple.com ')))") == expected

    def test_sha256_of_a_number_hashes_its_text(self) -> None:
        assert value("SHA256(42)") == hashlib.sha256(b"42").hexdigest()

    def test_names_are_case_insensitive(self) -> None:
        assert value("lower('A') || Upper('b')") == "aB"

    @pytest.mark.parametrize(
        "text",
        [
            "LOWER(1)",
            "UPPER(TRUE)",
            "TRIM(event.items)",
            "LENGTH(12)",
            "SUBSTRING('abc', 'x')",
            "SUBSTRING('abc', 1.5)",
            "SUBSTRING('abc', 1, -1)",
            "REPLACE('abc', 1, 'x')",
            "ROUND('1.5')",
            "ROUND(1.5, 0.5)",
            "ROUND(1.5, 1000)",
            "FLOOR('1')",
            "CEIL(TRUE)",
            "ABS('-1')",
        ],
    )
    def test_wrong_argument_kinds_are_evaluation_errors(self, text: str) -> None:
        assert evaluation_error(text).position == 0

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("LOWER()", "LOWER takes 1 argument, not 0"),
            ("LOWER('a', 'b')", "LOWER takes 1 argument, not 2"),
            ("SUBSTRING('a')", "SUBSTRING takes 2 to 3 arguments, not 1"),
            ("REPLACE('a', 'b')", "REPLACE takes 3 arguments, not 2"),
            ("COALESCE()", "COALESCE takes at least 1 argument, not 0"),
            ("NOW(1)", "NOW takes 0 arguments, not 1"),
            ("ROUND(1, 2, 3)", "ROUND takes 1 to 2 arguments, not 3"),
        ],
    )
    def test_arity_is_checked_when_parsing(self, text: str, message: str) -> None:
        error = syntax_error(text)

        assert error.position == 0
        assert error.message == f"{message} at position 0"

    def test_an_unknown_function_is_a_syntax_error(self) -> None:
        error = syntax_error("1 + EVAL('1')")

        assert error.position == 4
        assert "Unknown function EVAL" in error.message


class TestTime:
    def test_now_is_the_clock_as_iso8601_utc(self) -> None:
        result = evaluate(parse("NOW()"), {}, clock=lambda: FIXED_NOW)

        assert result == "2024-05-01T12:30:15.123Z"

    def test_now_converts_other_offsets_to_utc(self) -> None:
        plus_two = timezone(timedelta(hours=2))
        moment = datetime(2024, 5, 1, 14, 0, tzinfo=plus_two)

        result = evaluate(parse("NOW()"), {}, clock=lambda: moment)

        assert result == "2024-05-01T12:00:00.000Z"

    def test_now_defaults_to_the_current_time(self) -> None:
        before = datetime.now(UTC).replace(microsecond=0)

        result = evaluate(parse("NOW()"), {})

        assert result.endswith("Z")
        assert datetime.fromisoformat(result) >= before

    @pytest.mark.parametrize(
        ("timestamp", "layout", "expected"),
        [
            ("'2024-05-01T12:00:00Z'", "epoch_millis", 1714564800000),
            ("'2024-05-01T12:00:00.123456Z'", "epoch_micros", 1714564800123456),
            ("'2024-05-01T14:00:00+02:00'", "iso8601", "2024-05-01T12:00:00.000Z"),
            ("'2024-05-01T12:00:00'", "epoch_millis", 1714564800000),
            ("'2024-05-01'", "iso8601", "2024-05-01T00:00:00.000Z"),
            ("1714564800000", "iso8601", "2024-05-01T12:00:00.000Z"),
            ("1714564800123", "epoch_micros", 1714564800123000),
            ("1714564800000.5", "epoch_micros", 1714564800000500),
            ("0", "iso8601", "1970-01-01T00:00:00.000Z"),
            ("-1000", "epoch_millis", -1000),
        ],
    )
    def test_date_format(self, timestamp: str, layout: str, expected: Any) -> None:
        assert value(f"DATE_FORMAT({timestamp}, '{layout}')") == expected

    def test_date_format_of_now(self) -> None:
        expression = parse("DATE_FORMAT(NOW(), 'epoch_millis')")

        result = evaluate(expression, {}, clock=lambda: FIXED_NOW)

        assert result == 1714566615123

    @pytest.mark.parametrize(
        ("timestamp", "layout", "expected"),
        [
            ("1.5", "iso8601", "1970-01-01T00:00:00.001Z"),
            ("1.5", "epoch_millis", 1),
            ("0.9999996", "iso8601", "1970-01-01T00:00:00.000Z"),
            ("0.9999996", "epoch_micros", 999),
            ("1.005", "epoch_micros", 1005),
            ("-1.5", "iso8601", "1969-12-31T23:59:59.998Z"),
            ("-1.5", "epoch_millis", -2),
            ("'1970-01-01T00:00:00.0009999Z'", "epoch_micros", 999),
            ("'1970-01-01T00:00:00.9999999Z'", "iso8601", "1970-01-01T00:00:00.999Z"),
        ],
    )
    def test_date_format_drops_finer_digits(
        self, timestamp: str, layout: str, expected: Any
    ) -> None:
        assert value(f"DATE_FORMAT({timestamp}, '{layout}')") == expected

    @pytest.mark.parametrize(
        ("timestamp", "expected"),
        [
            ("2024-05-01T12:30", "2024-05-01T12:30:00.000Z"),
            ("2024-05-01 12:30:15", "2024-05-01T12:30:15.000Z"),
            ("2024-05-01t12:30:15z", "2024-05-01T12:30:15.000Z"),
            ("2024-05-01T12:30:15.5-05:30", "2024-05-01T18:00:15.500Z"),
            ("2024-05-01T14:30:15+0200", "2024-05-01T12:30:15.000Z"),
            (" 2024-05-01 ", "2024-05-01T00:00:00.000Z"),
        ],
    )
    def test_date_format_reads_the_extended_calendar_form(
        self, timestamp: str, expected: str
    ) -> None:
        assert value("DATE_FORMAT(event.t, 'iso8601')", {"t": timestamp}) == expected

    @pytest.mark.parametrize(
        "timestamp",
        [
            "2024-W01",
            "2024-W01-1",
            "20240501",
            "2024-122",
            "20240501T123000Z",
            "2024-05-01T12",
            "2024-05-01Z",
            "2024-05-01T12:30:15+02",
            "2024-05-01T12:30:15+02:0",
            "2024-05-01T12:30:15.Z",
            "2024-05-01T24:00",
            "2024-05-01T12:00+24:00",
            "2024-05-01T12:00+01:60",
            "2024-02-30",
            "0000-01-01",
            "0001-01-01T00:00+01:00",
            "\u0662\u0660\u0662\u0664-05-01",
        ],
    )
    def test_date_format_refuses_other_forms(self, timestamp: str) -> None:
        error = evaluation_error("DATE_FORMAT(event.t, 'iso8601')", {"t": timestamp})

        assert "ISO 8601" in error.message

    @pytest.mark.parametrize(
        "text",
        [
            "DATE_FORMAT('yesterday', 'iso8601')",
            "DATE_FORMAT(TRUE, 'iso8601')",
            "DATE_FORMAT(1e300, 'iso8601')",
            "DATE_FORMAT('2024-05-01', 'unix')",
            "DATE_FORMAT('2024-05-01', 1)",
        ],
    )
    def test_date_format_errors(self, text: str) -> None:
        evaluation_error(text)


class TestSyntaxErrors:
    @pytest.mark.parametrize(
        ("text", "position"),
        [
            ("", 0),
            ("   ", 3),
            ("1 +", 3),
            ("(1 + 2", 6),
            ("1 + 2)", 5),
            ("1 2", 2),
            ("event.a = = 1", 10),
            ("event.a ! 1", 8),
            ("event.a & 1", 8),
            ("event.", 6),
            ("event.'a'", 6),
            ("event.a NOT 1", 8),
            ("AND TRUE", 0),
            ("f(1)", 0),
            ("COALESCE(1,)", 11),
            ("LOWER 'a'", 6),
            ('"a" = 1', 0),
            ("1 + \u0663", 4),
        ],
    )
    def test_name_the_position(self, text: str, position: int) -> None:
        error = syntax_error(text)

        assert error.position == position
        assert str(error).endswith(f"at position {position}")

    def test_an_unclosed_parenthesis_names_the_opening_one(self) -> None:
        error = syntax_error("LOWER((event.a)")

        assert "'(' at position 5" in error.message

    def test_nesting_is_bounded(self) -> None:
        allowed = "(" * MAX_NESTING + "1" + ")" * MAX_NESTING
        refused = "(" * (MAX_NESTING + 1) + "1" + ")" * (MAX_NESTING + 1)

        assert value(allowed) == 1
        assert syntax_error(refused).position == MAX_NESTING

    @pytest.mark.parametrize(
        "text",
        [
            "LOWER(" * MAX_NESTING + "'a'" + ")" * MAX_NESTING,
            "COALESCE(" * MAX_NESTING + " + ".join(["1"] * 80) + ")" * MAX_NESTING,
            "(" * MAX_NESTING + " - ".join(["1"] * (MAX_DEPTH + 1)) + ")" * MAX_NESTING,
            "-(" * MAX_NESTING + "1" + ")" * MAX_NESTING,
        ],
    )
    def test_the_deepest_expressions_need_a_bounded_stack(self, text: str) -> None:
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(len(inspect.stack()) + FRAMES_FOR_THE_DEEPEST)

        try:
            evaluate(parse_text(text), {})
        finally:
            sys.setrecursionlimit(limit)

    def test_very_deep_nesting_is_a_syntax_error(self) -> None:
        syntax_error("(" * 100_000)

    def test_tree_depth_is_bounded(self) -> None:
        allowed = " + ".join(["1"] * (MAX_DEPTH + 1))
        refused = " + ".join(["1"] * (MAX_DEPTH + 2))

        assert value(allowed) == MAX_DEPTH + 1
        assert "deeper" in syntax_error(refused).message

    def test_unary_chains_count_towards_depth(self) -> None:
        assert value("NOT " * MAX_DEPTH + "TRUE") is True
        syntax_error("NOT " * (MAX_DEPTH + 1) + "TRUE")
        syntax_error("-" * (MAX_DEPTH + 1) + "1")

    def test_length_is_bounded(self) -> None:
        allowed = "'" + "a" * (MAX_LENGTH - 2) + "'"

        assert len(value(allowed)) == MAX_LENGTH - 2
        assert syntax_error(allowed + " ").position == MAX_LENGTH

    def test_an_over_long_integer_is_a_syntax_error(self) -> None:
        assert "out of range" in syntax_error("9" * 5_000).message


class TestParse:
    def test_caches_by_text(self) -> None:
        assert parse("event.a = 1") is parse("event.a = 1")

    def test_keeps_the_text(self) -> None:
        expression = parse("event.a")

        assert isinstance(expression, Expression)
        assert expression.text == "event.a"

    def test_parsed_trees_are_immutable(self) -> None:
        expression = parse("1 + 2")

        with pytest.raises(AttributeError):
            expression.root.operator = "-"  # type: ignore[misc, union-attr]

    def test_one_expression_serves_many_events(self) -> None:
        expression = parse("event.n * 2")

        assert [evaluate(expression, {"n": n}) for n in (1, 2, 3)] == [2, 4, 6]

    def test_evaluation_does_not_change_the_event(self) -> None:
        event = {"a": [1, {"b": "c"}]}

        evaluate(parse("TO_STRING(event.a) || LOWER(event.a[1].b)"), event)

        assert event == {"a": [1, {"b": "c"}]}
