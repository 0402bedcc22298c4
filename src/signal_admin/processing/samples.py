"""The sample events that ship with the service: a day of a small running-gear
shop, in the canonical shape, for demos, load tests and trying a pipeline's
mappings before real traffic arrives.

    events = sample_events()          # one dict per line of the shipped file

The visitors' journeys cover page views, product views, carts, checkouts,
purchases and sign-ins, with the campaign, click-id and device fields the
catalog's default mappings read, so every vendor's default variant builds a
payload with something in it.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

SAMPLE_FILE = "sample_events.jsonl"


def sample_events_text() -> str:
    """The shipped file as it is: one JSON object per line."""
    shipped = resources.files("signal_admin.processing") / "data" / SAMPLE_FILE
    return shipped.read_text(encoding="utf-8")


def sample_events() -> list[dict[str, Any]]:
    """The shipped sample events, in the order of their timestamps."""
    return [json.loads(line) for line in sample_events_text().splitlines() if line]
