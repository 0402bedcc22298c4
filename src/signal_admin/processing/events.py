"""The canonical event: the one shape every event has inside the platform,
whatever sent it, and the check that lists every way an event misses it.

    problems = event_problems(event)          # [] when the event is canonical
    event = with_message_id(event)            # messageId generated when absent

Problems name fields relative to the event (`context.page`); a caller that
checks a list of events prefixes the event's place (`events.2.context.page`).
Keys the table of processing.md does not name are kept as they are: senders
add their own (`sentAt`, `integrations`), and a check that refused them would
break those senders for nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from signal_admin.errors import FieldProblem
from signal_admin.processing.expressions import ExpressionEvaluationError
from signal_admin.processing.expressions.functions import read_timestamp

EVENT_TYPES = ("track", "page", "identify", "group")
# What `context` may carry, and the kind each of its known keys holds.
CONTEXT_OBJECTS = ("page", "device", "campaign", "consent")
CONTEXT_TEXTS = ("locale", "ip", "userAgent")


def event_problems(event: Any) -> list[FieldProblem]:
    """Every way `event` is not a canonical event, all at once; [] if none."""
    if not isinstance(event, Mapping):
        return [FieldProblem("", "INVALID", "An event is a JSON object.")]
    problems: list[FieldProblem] = []
    report = problems.append

    kind = event.get("type")
    if kind is None:
        report(_required("type", "Every event has a type."))
    elif kind not in EVENT_TYPES:
        report(
            FieldProblem(
                "type",
                "INVALID_CHOICE",
                f"The type is one of {', '.join(EVENT_TYPES)}.",
            )
        )

    _check_text(event, "anonymousId", report, required="every event")
    _check_text(
        event, "event", report, required="a track event" if kind == "track" else ""
    )
    _check_text(
        event, "groupId", report, required="a group event" if kind == "group" else ""
    )
    for name in ("name", "userId", "messageId"):
        _check_text(event, name, report)
    for name in ("properties", "traits"):
        _check_object(event.get(name), name, report)
    _check_context(event.get("context"), report)
    _check_timestamp(event.get("timestamp"), report)
    return problems


def with_message_id(
    event: Mapping[str, Any], new_id: Callable[[], str] = lambda: str(uuid.uuid4())
) -> dict[str, Any]:
    """A copy of `event` with a `messageId`: its own, or a new one."""
    copy = dict(event)
    if not copy.get("messageId"):
        copy["messageId"] = new_id()
    return copy


Report = Callable[[FieldProblem], None]


def _check_text(
    event: Mapping[str, Any], name: str, report: Report, *, required: str = ""
) -> None:
    """`name` is text if present; `required` names what needs it, if any."""
    value = event.get(name)
    if value is None or value == "":
        if required:
            report(_required(name, f"{name} is required in {required}."))
        return
    if not isinstance(value, str):
        report(FieldProblem(name, "INVALID", f"{name} is a string."))


def _check_object(value: Any, field: str, report: Report) -> None:
    if value is not None and not isinstance(value, Mapping):
        report(FieldProblem(field, "INVALID", f"{field} is an object."))


def _check_context(context: Any, report: Report) -> None:
    if context is None:
        return
    if not isinstance(context, Mapping):
        report(FieldProblem("context", "INVALID", "context is an object."))
        return
    for name in CONTEXT_OBJECTS:
        _check_object(context.get(name), f"context.{name}", report)
    for name in CONTEXT_TEXTS:
        value = context.get(name)
        if value is not None and not isinstance(value, str):
            report(FieldProblem(f"context.{name}", "INVALID", f"{name} is a string."))


def _check_timestamp(value: Any, report: Report) -> None:
    """The same ISO 8601 forms mappings and DATE_FORMAT read, so a timestamp
    that passes here converts wherever a vendor needs it converted."""
    if value is None:
        return
    if isinstance(value, str):
        try:
            read_timestamp(value, 0)
        except ExpressionEvaluationError:
            pass
        else:
            return
    report(
        FieldProblem(
            "timestamp",
            "INVALID_FORMAT",
            "The timestamp is an ISO 8601 date and time, e.g. "
            "2026-02-25T14:30:00.123Z.",
        )
    )


def _required(field: str, message: str) -> FieldProblem:
    return FieldProblem(field, "REQUIRED", message)
