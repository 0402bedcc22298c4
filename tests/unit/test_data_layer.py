"""The organisation's data layer: its document, its defaults and checks, and
what each of its steps (bot filtering, PII, custom JavaScript, routing rules)
does to an event, in that order, without touching the caller's event."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from signal_admin.processing.bots import (
    KnownBots,
    known_bot,
    matching_pattern,
    read_fragments,
    shipped_known_bots,
)
from signal_admin.processing.data_layer import (
    DEFAULT_DATA_LAYER,
    JAVASCRIPT_UNAVAILABLE,
    DataLayerConfig,
    DataLayerResult,
    InvalidDataLayer,
    apply_data_layer,
    apply_pii,
    data_layer_problems,
    parse_data_layer,
)
from signal_admin.processing.runtime import TIMEOUT, Deadline, StepFailure

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
JANE_SHA256 = "8c87b489ce35cf2e2f39f80e282cb2e804932a56a213983eeeb428407d43b52d"


def an_event(user_agent: str | None = CHROME, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "track",
        "event": "Order Completed",
        "anonymousId": "anon-1",
        "properties": {"revenue": 42.5, "currency": "EUR"},
        "traits": {"email": "  Jane@Example.COM ", "phone": "555-0100"},
        "context": {"page": {"url": "https://shop.example/checkout"}},
    }
    if user_agent is not None:
        event["context"]["userAgent"] = user_agent
    event.update(fields)
    return event


def a_config(**document: Any) -> DataLayerConfig:
    return parse_data_layer(document)


def run(
    config: DataLayerConfig,
    event: Mapping[str, Any],
    javascript: Callable[..., dict[str, Any] | None] | None = None,
    deadline: Deadline | None = None,
) -> DataLayerResult:
    return apply_data_layer(
        config, event, javascript=javascript, context={"org": "o"}, deadline=deadline
    )


def problems_of(document: Any) -> list[tuple[str, str]]:
    return [(problem.field, problem.code) for problem in data_layer_problems(document)]


class FakeJavaScript:
    """Stands in for the sandbox: answers what `process` gives back for each
    event and notes every call."""

    def __init__(self, process: Callable[[dict[str, Any]], dict[str, Any] | None]):
        self.process = process
        self.calls: list[tuple[str, dict[str, Any], Mapping[str, Any]]] = []

    def __call__(
        self, source: str, event: Mapping[str, Any], context: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        self.calls.append((source, copy.deepcopy(dict(event)), context))
        return self.process(dict(event))


def failing(error: StepFailure) -> FakeJavaScript:
    def process(event: dict[str, Any]) -> dict[str, Any] | None:
        raise error

    return FakeJavaScript(process)


JS_ON = {"enabled": True, "code": "function process(event, context) { return event }"}


# -- the document and its defaults


def test_a_data_layer_never_set_has_the_documented_defaults() -> None:
    config = parse_data_layer(None)

    assert config.model_dump(mode="json") == {
        "pii_rules": {
            "enabled": True,
            "hash_fields": [],
            "redact_fields": [],
            "hash_algorithm": "sha256",
        },
        "bot_filtering": {
            "enabled": True,
            "block_known_bots": True,
            "block_empty_user_agent": False,
            "custom_patterns": [],
        },
        "session": {
            "timeout_minutes": 30,
            "max_duration_hours": 24,
            "track_session_start": False,
            "track_session_end": False,
        },
        "custom_js": {"enabled": False, "code": "", "description": ""},
        "routing_rules": [],
    }
    assert config.model_dump(mode="json") == DEFAULT_DATA_LAYER


def test_an_empty_document_is_the_defaults() -> None:
    assert parse_data_layer({}) == DataLayerConfig()


def test_a_section_left_out_or_partly_written_keeps_its_defaults() -> None:
    config = a_config(session={"timeout_minutes": 45})

    assert config.session.timeout_minutes == 45
    assert config.session.max_duration_hours == 24
    assert config.pii_rules.enabled is True


def test_a_valid_document_is_kept_as_written() -> None:
    document = {
        "pii_rules": {
            "enabled": True,
            "hash_fields": ["traits.email", "properties.items[0].email"],
            "redact_fields": ["context.ip"],
            "hash_algorithm": "sha256",
        },
        "bot_filtering": {
            "enabled": True,
            "block_known_bots": False,
            "block_empty_user_agent": True,
            "custom_patterns": ["*preview*", "acme-monitor/*"],
        },
        "session": {
            "timeout_minutes": 1440,
            "max_duration_hours": 168,
            "track_session_start": True,
            "track_session_end": True,
        },
        "custom_js": {**JS_ON, "description": "Adds the brand"},
        "routing_rules": [
            {
                "condition": "event.context.page.url CONTAINS '/staging'",
                "action": "drop",
            }
        ],
    }

    assert data_layer_problems(document) == []
    assert parse_data_layer(document).model_dump(mode="json") == document


def test_every_problem_is_named_at_once_from_the_document_root() -> None:
    document = {
        "pii_rules": {
            "hash_fields": ["traits.email", "traits..phone", 7],
            "redact_fields": ["x" * 201],
            "hash_algorithm": "md5",
        },
        "bot_filtering": {"enabled": "yes", "custom_patterns": ["**", "p" * 201]},
        "session": {"timeout_minutes": 0, "max_duration_hours": 169},
        "custom_js": {"enabled": True, "code": "  ", "description": "d" * 501},
        "routing_rules": [
            {"condition": "event.event = 'Internal Test'", "action": "drop"},
            {"condition": "event.event = ", "action": "keep"},
            {"action": "pass"},
            {"condition": "TRUE", "action": "drop", "note": "x"},
        ],
        "sessions": {},
    }

    assert problems_of(document) == [
        ("pii_rules.hash_fields.1", "INVALID_PATH"),
        ("pii_rules.hash_fields.2", "INVALID"),
        ("pii_rules.redact_fields.0", "TOO_LONG"),
        ("pii_rules.hash_algorithm", "INVALID_CHOICE"),
        ("bot_filtering.enabled", "INVALID"),
        ("bot_filtering.custom_patterns.0", "INVALID"),
        ("bot_filtering.custom_patterns.1", "TOO_LONG"),
        ("session.timeout_minutes", "OUT_OF_RANGE"),
        ("session.max_duration_hours", "OUT_OF_RANGE"),
        ("custom_js.code", "REQUIRED"),
        ("custom_js.description", "TOO_LONG"),
        ("routing_rules.1.condition", "INVALID_EXPRESSION"),
        ("routing_rules.1.action", "INVALID_CHOICE"),
        ("routing_rules.2.condition", "REQUIRED"),
        ("routing_rules.3.note", "UNKNOWN_FIELD"),
        ("sessions", "UNKNOWN_FIELD"),
    ]


def test_an_expression_problem_names_its_position() -> None:
    [problem] = data_layer_problems(
        {"routing_rules": [{"condition": "event.event = ", "action": "drop"}]}
    )

    assert problem.message.endswith("at position 14")


@pytest.mark.parametrize("document", [[], "pii_rules", 3])
def test_a_document_that_is_not_an_object_is_invalid(document: Any) -> None:
    assert problems_of(document) == [("", "INVALID")]


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [
        ("session", "timeout_minutes", "30"),
        ("session", "timeout_minutes", 30.0),
        ("session", "track_session_start", 1),
        ("pii_rules", "enabled", "true"),
        ("pii_rules", "hash_fields", "traits.email"),
    ],
)
def test_values_of_the_wrong_kind_are_not_guessed_at(
    section: str, field: str, value: Any
) -> None:
    assert problems_of({section: {field: value}}) == [(f"{section}.{field}", "INVALID")]


@pytest.mark.parametrize("section", ["pii_rules", "bot_filtering", "custom_js"])
def test_a_section_is_an_object(section: str) -> None:
    assert problems_of({section: None}) == [(section, "INVALID")]


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"pii_rules": {"hash_fields": ["a"] * 101}}, "pii_rules.hash_fields"),
        ({"pii_rules": {"redact_fields": ["a"] * 101}}, "pii_rules.redact_fields"),
        (
            {"bot_filtering": {"custom_patterns": ["bot*"] * 101}},
            "bot_filtering.custom_patterns",
        ),
        (
            {"routing_rules": [{"condition": "TRUE", "action": "pass"}] * 101},
            "routing_rules",
        ),
    ],
)
def test_lists_hold_at_most_a_hundred_items(document: Any, field: str) -> None:
    assert problems_of(document) == [(field, "TOO_MANY")]


@pytest.mark.parametrize(
    ("field", "lowest", "highest"),
    [("timeout_minutes", 1, 1440), ("max_duration_hours", 1, 168)],
)
def test_session_limits_include_their_bounds(
    field: str, lowest: int, highest: int
) -> None:
    assert problems_of({"session": {field: lowest}}) == []
    assert problems_of({"session": {field: highest}}) == []
    assert problems_of({"session": {field: lowest - 1}}) == [
        (f"session.{field}", "OUT_OF_RANGE")
    ]
    assert problems_of({"session": {field: highest + 1}}) == [
        (f"session.{field}", "OUT_OF_RANGE")
    ]


@pytest.mark.parametrize("pattern", ["*", "***", " * ", "", "* *", " *  * "])
def test_a_pattern_that_would_match_every_user_agent_is_refused(pattern: str) -> None:
    document = {"bot_filtering": {"custom_patterns": [pattern]}}

    assert problems_of(document) == [("bot_filtering.custom_patterns.0", "INVALID")]


def test_custom_js_code_is_limited_to_64_kib_of_utf8() -> None:
    fits = "é" * (32 * 1024)  # two bytes each: exactly 64 KiB
    too_long = fits + "x"

    assert problems_of({"custom_js": {"code": fits}}) == []
    assert problems_of({"custom_js": {"code": too_long}}) == [
        ("custom_js.code", "TOO_LONG")
    ]


def test_disabled_custom_js_may_have_no_code() -> None:
    assert problems_of({"custom_js": {"enabled": False, "code": ""}}) == []


def test_custom_js_is_not_compiled_by_the_document_check() -> None:
    document = {"custom_js": {"enabled": True, "code": "this is not ( javascript"}}

    assert problems_of(document) == []


def test_parsing_an_invalid_document_raises_a_value_error_naming_every_problem() -> (
    None
):
    document = {"session": {"timeout_minutes": 0}, "routing_rules": [{}]}

    with pytest.raises(ValueError, match="timeout") as raised:
        parse_data_layer(document)

    assert isinstance(raised.value, InvalidDataLayer)
    assert [problem.field for problem in raised.value.problems] == [
        "session.timeout_minutes",
        "routing_rules.0.condition",
        "routing_rules.0.action",
    ]


# -- bot filtering


def test_a_known_bot_is_dropped_naming_the_bot() -> None:
    result = run(DataLayerConfig(), an_event(GOOGLEBOT))

    assert result == DataLayerResult(
        event=None, dropped_reason="bot_filtering: known bot (Googlebot)", error=None
    )
    assert result.stage == "dropped"


@pytest.mark.parametrize(
    ("user_agent", "name"),
    [
        ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/)", "bingbot"),
        ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/)", "AhrefsBot"),
        (
            "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://semrush.com/)",
            "SemrushBot",
        ),
        ("facebookexternalhit/1.1 (+http://www.facebook.com/)", "facebookexternalhit"),
        (
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/)",
            "Slackbot-LinkExpanding",
        ),
        (
            "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discord.com)",
            "Discordbot",
        ),
        ("Twitterbot/1.0", "Twitterbot"),
        ("WhatsApp/2.23.20.0 A", "WhatsApp"),
        ("Mozilla/5.0 (X11) HeadlessChrome/120.0.0.0 Safari/537.36", "HeadlessChrome"),
        (
            "Mozilla/5.0 (compatible; UptimeRobot/2.0; http://uptimerobot.com/)",
            "UptimeRobot",
        ),
        ("Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)", "Pingdom"),
        ("curl/8.4.0", "curl"),
        ("Wget/1.21.4", "Wget"),
        ("python-requests/2.31.0", "python-requests"),
        ("Go-http-client/2.0", "Go-http-client"),
        ("PostmanRuntime/7.36.0", "PostmanRuntime"),
        ("Mozilla/5.0 (compatible; GPTBot/1.0; +https://openai.com/gptbot)", "GPTBot"),
        ("Mozilla/5.0 (compatible; SomeNewCrawler/0.1)", "SomeNewCrawler"),
    ],
)
def test_common_automated_clients_are_known_bots(user_agent: str, name: str) -> None:
    result = run(DataLayerConfig(), an_event(user_agent))

    assert result.dropped_reason == f"bot_filtering: known bot ({name})"


@pytest.mark.parametrize(
    "user_agent",
    [
        CHROME,
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:121.0) Gecko/20100101 "
            "Firefox/121.0"
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) "
            "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 "
            "Safari/604.1"
        ),
        (
            "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) CriOS/119.0.6045.169 Mobile/15E148 Safari/604.1"
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
            "like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0"
        ),
        (
            "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, "
            "like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36"
        ),
        (
            "Mozilla/5.0 (Linux; Android 10; CUBOT_NOTE_20 Build/QP1A.190711.020; wv) "
            "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/118.0.0.0 "
            "Mobile Safari/537.36"
        ),
        (
            "Mozilla/5.0 (Linux; Android 9; CUBOT P30) AppleWebKit/537.36 (KHTML, "
            "like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36"
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) "
            "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 "
            "[FBAN/FBIOS;FBAV/440.0.0.33.116;FBBV/537000000;FBDV/iPhone14,5;"
            "FBMD/iPhone;FBSN/iOS;FBSV/17.0;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]"
        ),
        (
            "Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230901.001; wv) "
            "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/117.0.0.0 "
            "Mobile Safari/537.36 Instagram 302.0.0.23.114 Android"
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
            "like Gecko) Chrome/118.0.0.0 YaBrowser/23.11.0.0 Safari/537.36"
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
            "like Gecko) Chrome/120.0.0.0 Safari/537.36 OPR/105.0.0.0"
        ),
        (
            "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:120.0) Gecko/20100101 "
            "Firefox/120.0"
        ),
    ],
)
def test_browsers_and_in_app_browsers_are_not_known_bots(user_agent: str) -> None:
    result = run(DataLayerConfig(), an_event(user_agent))

    assert result.stage == "processed"


def test_known_bots_are_kept_when_block_known_bots_is_off() -> None:
    config = a_config(bot_filtering={"block_known_bots": False})

    assert run(config, an_event(GOOGLEBOT)).stage == "processed"


def test_nothing_is_filtered_when_bot_filtering_is_off() -> None:
    config = a_config(
        bot_filtering={
            "enabled": False,
            "block_empty_user_agent": True,
            "custom_patterns": ["*mozilla*"],
        }
    )

    assert run(config, an_event(GOOGLEBOT)).stage == "processed"
    assert run(config, an_event(None)).stage == "processed"


@pytest.mark.parametrize(
    "event",
    [
        an_event(None),
        an_event(""),
        an_event("   "),
        {**an_event(None), "context": {"userAgent": None}},
        {**an_event(None), "context": None},
        {"type": "track", "event": "x", "anonymousId": "a"},
    ],
    ids=["no key", "empty", "blank", "null", "null context", "no context"],
)
def test_an_empty_user_agent_is_dropped_when_asked(event: dict[str, Any]) -> None:
    config = a_config(bot_filtering={"block_empty_user_agent": True})

    result = run(config, event)

    assert result.dropped_reason == "bot_filtering: empty user agent"


def test_an_empty_user_agent_is_kept_by_default() -> None:
    assert run(DataLayerConfig(), an_event("")).stage == "processed"


def test_an_empty_user_agent_matches_no_pattern() -> None:
    config = a_config(bot_filtering={"custom_patterns": ["*x*"]})

    assert run(config, an_event("")).stage == "processed"


def test_a_custom_pattern_drops_naming_the_pattern() -> None:
    config = a_config(bot_filtering={"custom_patterns": ["acme*", "*preview*"]})

    result = run(config, an_event("Mozilla/5.0 (compatible; LinkPreview/3.1)"))

    assert result.dropped_reason == "bot_filtering: custom pattern '*preview*'"


def test_custom_patterns_apply_with_known_bots_off() -> None:
    config = a_config(
        bot_filtering={"block_known_bots": False, "custom_patterns": ["*googlebot*"]}
    )

    result = run(config, an_event(GOOGLEBOT))

    assert result.dropped_reason == "bot_filtering: custom pattern '*googlebot*'"


@pytest.mark.parametrize(
    ("pattern", "user_agent", "matches"),
    [
        ("acme*", "ACME-Monitor/2.0", True),
        ("acme*", "Mozilla/5.0 acme", False),
        ("*acme", "Mozilla/5.0 acme", True),
        ("*acme*", "Mozilla/5.0 (Acme) Chrome", True),
        ("acme", "Acme", True),
        ("acme", "Acme/1", False),
        ("a*b*c", "a-b-c", True),
        ("a*b*c", "a-c-b", False),
        ("ab*ba", "aba", False),
        ("ab*ba", "abba", True),
        ("*.*", "a.b", True),
    ],
)
def test_a_pattern_matches_the_whole_user_agent_in_any_case(
    pattern: str, user_agent: str, matches: bool
) -> None:
    assert (matching_pattern([pattern], user_agent) == pattern) is matches


def test_many_wildcards_do_not_make_matching_slow() -> None:
    pattern = "*a*a*a*a*a*a*a*a*b"

    assert matching_pattern([pattern], "a" * 20_000) is None


def test_the_shipped_known_bot_list_reads_as_distinct_lowercase_fragments() -> None:
    known = shipped_known_bots()

    assert len(known.fragments) > 200
    assert all(fragment == fragment.lower() for fragment in known.fragments)
    assert "googlebot" in known.fragments


def test_a_known_bot_fragment_is_plain_text_not_a_pattern() -> None:
    known = KnownBots(["a.b", "c+d"])

    assert known.find("a.b") is not None
    assert known.find("axb") is None
    assert known.find("c+d") is not None
    assert known.find("ccd") is None


def test_a_known_bot_list_skips_comments_blank_lines_and_surrounding_spaces() -> None:
    text = "# crawlers\n\n  ExampleBot  \n# curl/\nfetcher/\n"

    assert read_fragments(text) == ["ExampleBot", "fetcher/"]


def test_a_user_agent_whose_lowering_changes_its_length_is_still_checked() -> None:
    user_agent = "İstanbul-Kiosk GOOGLEBOT/2.1"  # "İ" lowers to two characters

    assert known_bot(user_agent) == "GOOGLEBOT"


def test_a_known_bot_is_named_by_the_word_around_its_fragment() -> None:
    known = KnownBots(["bot/", "+http"])

    assert known.find("Mozilla/5.0 (compatible; ExampleBot/1.0)") == "ExampleBot"
    assert known.find("Example/1.0 (+http://example.com)") == "+http"


# -- PII


def test_a_hashed_field_is_the_sha256_of_its_trimmed_lowercased_text() -> None:
    config = a_config(pii_rules={"hash_fields": ["traits.email"]})

    assert apply_pii(config, an_event())["traits"]["email"] == JANE_SHA256


@pytest.mark.parametrize(
    ("value", "digest"),
    [
        (12345, "5994471abb01112afcc18159f6cc74b4f511b99806da59b3caf5a9c173cacfc5"),
        (True, "b5bea41b6c623f7c09f1bf24dcae58ebab3c0cdd90ad966bc43a45b44867e12b"),
        (
            {"zip": "10115", "city": "Berlin"},
            "5baab1b77198038d3809870536a8c8c6330ac55f03bc7f965c3ac08fd29f114a",
        ),
    ],
    ids=["number", "boolean", "object"],
)
def test_a_value_that_is_not_text_is_hashed_as_its_json(
    value: Any, digest: str
) -> None:
    config = a_config(pii_rules={"hash_fields": ["traits.secret"]})

    event = apply_pii(config, an_event(traits={"secret": value}))

    assert event["traits"]["secret"] == digest


def test_nested_and_indexed_paths_are_hashed() -> None:
    config = a_config(pii_rules={"hash_fields": ["properties.buyers[1].email"]})
    buyers = [{"email": "a@example.com"}, {"email": "Jane@example.com"}]

    event = apply_pii(config, an_event(properties={"buyers": buyers}))

    assert event["properties"]["buyers"] == [
        {"email": "a@example.com"},
        {"email": JANE_SHA256},
    ]


def test_a_null_or_missing_field_is_left_as_it_is() -> None:
    config = a_config(
        pii_rules={"hash_fields": ["traits.email", "traits.name", "user.email"]}
    )

    event = apply_pii(config, an_event(traits={"email": None}))

    assert event["traits"] == {"email": None}
    assert "user" not in event


def test_a_redacted_field_is_removed() -> None:
    config = a_config(pii_rules={"redact_fields": ["traits.phone", "context.ip"]})

    event = apply_pii(config, an_event(context={"ip": "203.0.113.7", "locale": "de"}))

    assert "phone" not in event["traits"]
    assert event["context"] == {"locale": "de"}


def test_a_redacted_list_item_becomes_null_so_later_items_keep_their_places() -> None:
    config = a_config(pii_rules={"redact_fields": ["properties.emails[0]"]})

    event = apply_pii(config, an_event(properties={"emails": ["a@x.io", "b@x.io"]}))

    assert event["properties"]["emails"] == [None, "b@x.io"]


def test_a_field_both_hashed_and_redacted_is_removed() -> None:
    config = a_config(
        pii_rules={"hash_fields": ["traits.email"], "redact_fields": ["traits.email"]}
    )

    assert "email" not in apply_pii(config, an_event())["traits"]


def test_pii_rules_that_are_off_change_nothing() -> None:
    config = a_config(
        pii_rules={
            "enabled": False,
            "hash_fields": ["traits.email"],
            "redact_fields": ["traits.phone"],
        }
    )

    assert apply_pii(config, an_event()) == an_event()


def test_apply_pii_leaves_the_callers_event_unchanged() -> None:
    config = a_config(
        pii_rules={"hash_fields": ["traits.email"], "redact_fields": ["traits.phone"]}
    )
    event = an_event()

    apply_pii(config, event)

    assert event == an_event()


def test_the_data_layer_hashes_and_redacts_the_event_it_keeps() -> None:
    config = a_config(
        pii_rules={"hash_fields": ["traits.email"], "redact_fields": ["traits.phone"]}
    )

    result = run(config, an_event())

    assert result.event is not None
    assert result.event["traits"] == {"email": JANE_SHA256}


def test_bots_are_filtered_before_pii_removes_the_user_agent() -> None:
    config = a_config(pii_rules={"redact_fields": ["context.userAgent"]})

    assert run(config, an_event(GOOGLEBOT)).stage == "dropped"


# -- custom JavaScript


def test_custom_js_gets_the_event_after_pii_and_the_context() -> None:
    config = a_config(pii_rules={"hash_fields": ["traits.email"]}, custom_js=JS_ON)
    javascript = FakeJavaScript(lambda event: event)

    run(config, an_event(), javascript)

    [(source, event, context)] = javascript.calls
    assert source == JS_ON["code"]
    assert event["traits"]["email"] == JANE_SHA256
    assert context == {"org": "o"}


def test_the_event_custom_js_returns_goes_on() -> None:
    config = a_config(custom_js=JS_ON)
    javascript = FakeJavaScript(lambda event: {**event, "event": "Purchase"})

    result = run(config, an_event(), javascript)

    assert result.event == an_event(event="Purchase")


def test_custom_js_returning_null_drops_the_event() -> None:
    config = a_config(custom_js=JS_ON)

    result = run(config, an_event(), FakeJavaScript(lambda event: None))

    assert result == DataLayerResult(
        event=None, dropped_reason="custom_js: returned null", error=None
    )


def test_a_custom_js_failure_is_the_error_outcome() -> None:
    config = a_config(custom_js=JS_ON)
    failure = StepFailure("JAVASCRIPT_ERROR", "TypeError: x is undefined")

    result = run(config, an_event(), failing(failure))

    assert result.error is failure
    assert result.event is None
    assert result.dropped_reason is None
    assert result.stage == "error"


def test_custom_js_that_is_off_does_not_run() -> None:
    javascript = FakeJavaScript(lambda event: None)

    result = run(DataLayerConfig(), an_event(), javascript)

    assert result.stage == "processed"
    assert javascript.calls == []


def test_custom_js_does_not_run_for_a_dropped_bot() -> None:
    javascript = FakeJavaScript(lambda event: event)

    run(a_config(custom_js=JS_ON), an_event(GOOGLEBOT), javascript)

    assert javascript.calls == []


def test_custom_js_without_a_runner_is_an_error() -> None:
    result = run(a_config(custom_js=JS_ON), an_event(), javascript=None)

    assert result.error is not None
    assert result.error.code == JAVASCRIPT_UNAVAILABLE


def test_custom_js_does_not_start_once_the_deadline_has_passed() -> None:
    now = [0.0]
    deadline = Deadline(1.0, clock=lambda: now[0])
    now[0] = 1.0
    javascript = FakeJavaScript(lambda event: event)

    result = run(a_config(custom_js=JS_ON), an_event(), javascript, deadline)

    assert result.error is not None
    assert result.error.code == TIMEOUT
    assert javascript.calls == []


# -- routing rules


def rules(*pairs: tuple[str, str]) -> DataLayerConfig:
    return a_config(
        routing_rules=[
            {"condition": condition, "action": action} for condition, action in pairs
        ]
    )


def test_a_drop_rule_that_matches_drops_the_event_naming_the_rule() -> None:
    config = rules(
        ("event.event = 'Internal Test'", "drop"),
        ("event.context.page.url CONTAINS '/checkout'", "drop"),
    )

    result = run(config, an_event())

    assert result.dropped_reason == "routing_rules[1]: drop"


def test_the_first_matching_rule_wins() -> None:
    config = rules(
        ("event.properties.currency = 'EUR'", "pass"),
        ("event.properties.currency = 'EUR'", "drop"),
    )

    result = run(config, an_event())

    assert result.stage == "processed"
    assert result.notes == ("routing_rules[0]: pass",)


def test_a_pass_rule_stops_the_rules_after_it() -> None:
    config = rules(
        ("event.event = 'Internal Test'", "drop"),
        ("event.type = 'track'", "pass"),
        ("TRUE", "drop"),
    )

    assert run(config, an_event()).stage == "processed"


@pytest.mark.parametrize(
    "condition",
    ["event.nothing = 'x'", "NULL", "FALSE", "'text'", "1"],
    ids=["null comparison", "null", "false", "text", "number"],
)
def test_only_a_true_condition_matches(condition: str) -> None:
    config = rules((condition, "drop"), ("TRUE", "pass"))

    result = run(config, an_event())

    assert result.stage == "processed"
    assert result.notes == ("routing_rules[1]: pass",)


def test_a_rule_that_cannot_be_evaluated_does_not_match_and_is_noted() -> None:
    config = rules(
        ("event.properties.revenue / 0 > 1", "drop"),
        ("event.event = 'Order Completed'", "drop"),
    )

    result = run(config, an_event())

    assert result.dropped_reason == "routing_rules[1]: drop"
    assert len(result.notes) == 1
    assert result.notes[0].startswith("routing_rules[0]: not matched, ")


def test_routing_rules_see_the_event_custom_js_returned() -> None:
    config = a_config(
        custom_js=JS_ON,
        routing_rules=[{"condition": "event.properties.internal", "action": "drop"}],
    )
    javascript = FakeJavaScript(
        lambda event: {**event, "properties": {"internal": True}}
    )

    assert (
        run(config, an_event(), javascript).dropped_reason == "routing_rules[0]: drop"
    )


def test_routing_rules_see_hashed_values() -> None:
    config = a_config(
        pii_rules={"hash_fields": ["traits.email"]},
        routing_rules=[
            {"condition": "event.traits.email LIKE '%@example.com'", "action": "drop"}
        ],
    )

    assert run(config, an_event()).stage == "processed"


# -- the whole


def test_the_defaults_keep_a_browser_event_as_it_is() -> None:
    result = run(parse_data_layer(None), an_event())

    assert result == DataLayerResult(event=an_event(), dropped_reason=None, error=None)
    assert result.stage == "processed"


def test_the_callers_event_is_never_changed() -> None:
    config = a_config(
        pii_rules={"hash_fields": ["traits.email"], "redact_fields": ["traits.phone"]},
        custom_js=JS_ON,
        routing_rules=[{"condition": "event.event = 'Other'", "action": "drop"}],
    )

    def process(event: dict[str, Any]) -> dict[str, Any]:
        event["properties"]["revenue"] = 0
        event["context"]["page"]["url"] = "changed"
        return event

    event = an_event()

    result = run(config, event, FakeJavaScript(process))

    assert result.stage == "processed"
    assert event == an_event()
