"""The canonical event of processing.md: what an event must hold, every
problem named at once, and the messageId it gets when it has none."""

from __future__ import annotations

from typing import Any

import pytest

from signal_admin.processing.events import event_problems, with_message_id

TRACK = {
    "type": "track",
    "event": "Order Completed",
    "anonymousId": "anon-1",
    "userId": "user-1",
    "properties": {"revenue": 42.5, "currency": "EUR"},
    "context": {
        "page": {"url": "https://shop.example/checkout"},
        "device": {"type": "mobile"},
        "campaign": {"source": "newsletter"},
        "locale": "de-DE",
        "ip": "203.0.113.7",
        "userAgent": "Mozilla/5.0",
        "consent": {"analytics": True},
    },
    "timestamp": "2026-02-25T14:30:00.123Z",
    "messageId": "msg-1",
}


def problems_of(event: Any) -> list[tuple[str, str]]:
    return [(problem.field, problem.code) for problem in event_problems(event)]


@pytest.mark.parametrize(
    "event",
    [
        TRACK,
        {"type": "page", "anonymousId": "a", "name": "Home"},
        {"type": "page", "anonymousId": "a"},
        {"type": "identify", "anonymousId": "a", "userId": "u", "traits": {}},
        {"type": "group", "anonymousId": "a", "groupId": "g"},
        # Keys the table does not name are the sender's own, and stay.
        {**TRACK, "sentAt": "2026-02-25T14:30:01Z", "integrations": {"All": True}},
        {**TRACK, "context": {"library": {"name": "collector"}}},
    ],
    ids=["track", "page", "page without a name", "identify", "group", "extra", "ctx"],
)
def test_a_canonical_event_has_no_problems(event: dict[str, Any]) -> None:
    assert problems_of(event) == []


def test_every_problem_is_named_at_once() -> None:
    event = {
        "type": "track",
        "anonymousId": 7,
        "userId": ["u"],
        "properties": "revenue=42",
        "traits": [],
        "context": {"page": "https://x", "ip": 203, "consent": True},
        "timestamp": "yesterday",
    }

    assert problems_of(event) == [
        ("anonymousId", "INVALID"),
        ("event", "REQUIRED"),
        ("userId", "INVALID"),
        ("properties", "INVALID"),
        ("traits", "INVALID"),
        ("context.page", "INVALID"),
        ("context.consent", "INVALID"),
        ("context.ip", "INVALID"),
        ("timestamp", "INVALID_FORMAT"),
    ]


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"anonymousId": "a"}, [("type", "REQUIRED")]),
        ({"type": "click", "anonymousId": "a"}, [("type", "INVALID_CHOICE")]),
        ({"type": "TRACK", "anonymousId": "a"}, [("type", "INVALID_CHOICE")]),
        ({"type": "page"}, [("anonymousId", "REQUIRED")]),
        ({"type": "page", "anonymousId": ""}, [("anonymousId", "REQUIRED")]),
        ({"type": "track", "anonymousId": "a"}, [("event", "REQUIRED")]),
        ({"type": "track", "anonymousId": "a", "event": ""}, [("event", "REQUIRED")]),
        ({"type": "group", "anonymousId": "a"}, [("groupId", "REQUIRED")]),
        ({"type": "page", "anonymousId": "a", "name": 3}, [("name", "INVALID")]),
        ({"type": "page", "anonymousId": "a", "context": []}, [("context", "INVALID")]),
        (
            {"type": "page", "anonymousId": "a", "messageId": 12},
            [("messageId", "INVALID")],
        ),
    ],
)
def test_each_rule_of_the_table(
    event: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert problems_of(event) == expected


def test_problems_say_what_needs_the_missing_field() -> None:
    (problem,) = event_problems({"type": "group", "anonymousId": "a"})

    assert problem.message == "groupId is required in a group event."


@pytest.mark.parametrize(
    "timestamp",
    [
        "2026-02-25T14:30:00.123Z",
        "2026-02-25T14:30:00+01:00",
        "2026-02-25T14:30:00",
        "2026-02-25",
    ],
)
def test_iso_8601_timestamps_are_accepted(timestamp: str) -> None:
    assert problems_of({**TRACK, "timestamp": timestamp}) == []


@pytest.mark.parametrize(
    "timestamp",
    [
        "",
        "25/02/2026",
        "2026-02-30T10:00:00Z",
        "2026-W09-3",
        "20260225",
        1_772_029_800_000,
        True,
    ],
)
def test_anything_else_as_a_timestamp_is_rejected(timestamp: Any) -> None:
    assert problems_of({**TRACK, "timestamp": timestamp}) == [
        ("timestamp", "INVALID_FORMAT")
    ]


@pytest.mark.parametrize("event", [None, "track", ["track"], 3])
def test_an_event_that_is_not_an_object_is_one_problem(event: Any) -> None:
    assert problems_of(event) == [("", "INVALID")]


def test_a_message_id_is_generated_only_when_absent() -> None:
    ids = iter(["generated-1", "generated-2"])
    without = {k: v for k, v in TRACK.items() if k != "messageId"}

    given = with_message_id(without, new_id=lambda: next(ids))
    kept = with_message_id(TRACK, new_id=lambda: next(ids))

    assert given["messageId"] == "generated-1"
    assert kept["messageId"] == "msg-1"
    assert "messageId" not in without


def test_generated_message_ids_differ() -> None:
    event = {"type": "page", "anonymousId": "a"}

    assert with_message_id(event)["messageId"] != with_message_id(event)["messageId"]
