"""The sample events that ship with the service are canonical, cover the
standard e-commerce journey, and carry every field the catalog's default
mappings read, so each vendor's default variant builds a payload with
something in it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from signal_admin.catalog.loader import shipped_catalog
from signal_admin.catalog.models import MappingDocument, Vendor
from signal_admin.processing.events import event_problems
from signal_admin.processing.samples import sample_events, sample_events_text

STANDARD_EVENTS = {
    "page",
    "product_viewed",
    "product_added",
    "checkout_started",
    "order_completed",
    "identify",
}
PRODUCT_FIELDS = {"product_id", "sku", "name", "price", "quantity", "category"}
TRAITS = {"email", "first_name", "last_name", "phone"}
EVENTS = sample_events()
VENDORS = shipped_catalog().vendors
_STEP = re.compile(r"^(?P<name>[^\[\]]+)(?:\[(?P<index>\d+)\])?$")


def mapping_key(event: dict[str, Any]) -> str:
    """What a mapping document matches an event by: `event` for a track,
    otherwise the type."""
    return str(event["event"] if event["type"] == "track" else event["type"])


def value_at(document: Any, path: str) -> Any:
    """The value at a dotted path such as `properties.products[0].sku`, or None."""
    for step in path.split("."):
        match = _STEP.match(step)
        assert match is not None, f"unexpected path step {step!r} in {path}"
        if not isinstance(document, dict):
            return None
        document = document.get(match["name"])
        if match["index"] is not None:
            index = int(match["index"])
            if not isinstance(document, list) or index >= len(document):
                return None
            document = document[index]
    return document


def is_present(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def default_mapping(vendor: Vendor) -> MappingDocument:
    variant = vendor.variant("default")
    assert variant is not None
    return MappingDocument.model_validate(variant.default_config)


def sources_by_event(vendor: Vendor) -> Iterator[tuple[str, set[str]]]:
    """Each sample event kind the vendor's default variant maps, with the
    source paths of that kind's own mappings."""
    document = default_mapping(vendor)
    for kind in sorted({mapping_key(event) for event in EVENTS}):
        mapping = document.events.get(kind)
        if mapping is None and document.defaults.action == "drop":
            continue
        own = mapping.mappings if mapping is not None and mapping.enabled else []
        yield kind, {entry.source for entry in own if entry.source is not None}


def test_every_line_is_one_canonical_event() -> None:
    lines = sample_events_text().splitlines()

    problems = {
        number: [f"{problem.field}: {problem.message}" for problem in found]
        for number, event in enumerate(EVENTS, start=1)
        if (found := event_problems(event))
    }

    assert len(lines) == len(EVENTS)
    assert all(line.startswith("{") for line in lines)
    assert 30 <= len(EVENTS) <= 60
    assert problems == {}


def test_the_events_cover_the_standard_journey() -> None:
    kinds = {mapping_key(event) for event in EVENTS}

    assert kinds >= STANDARD_EVENTS


def test_several_visitors_make_the_journeys() -> None:
    visitors = {event["anonymousId"] for event in EVENTS}
    buyers = {
        event["anonymousId"]
        for event in EVENTS
        if mapping_key(event) == "order_completed"
    }

    assert len(visitors) >= 5
    assert len(buyers) >= 3


def test_every_event_has_an_id_a_utc_timestamp_and_consent() -> None:
    message_ids = [event["messageId"] for event in EVENTS]

    assert len(set(message_ids)) == len(EVENTS)
    for event in EVENTS:
        assert event["timestamp"].endswith("Z")
        assert datetime.fromisoformat(event["timestamp"]).tzinfo is not None
        consent = event["context"]["consent"]
        assert consent["analytics"] is True
        assert isinstance(consent["marketing"], bool)
    assert {event["context"]["consent"]["marketing"] for event in EVENTS} == {
        True,
        False,
    }


def test_the_events_come_in_time_order() -> None:
    timestamps = [datetime.fromisoformat(event["timestamp"]) for event in EVENTS]

    assert timestamps == sorted(timestamps)


def test_page_views_carry_the_page_and_the_browser() -> None:
    pages = [event for event in EVENTS if event["type"] == "page"]

    for event in pages:
        context = event["context"]
        assert {"url", "title", "referrer", "path"} <= set(context["page"])
        assert context["userAgent"].startswith("Mozilla/5.0 (")
        assert context["locale"]
        assert context["ip"]
    assert any("campaign" in event["context"] for event in pages)
    assert any("campaign" not in event["context"] for event in pages)


def test_orders_carry_their_totals_and_products() -> None:
    orders = [event for event in EVENTS if mapping_key(event) == "order_completed"]

    for order in orders:
        properties = order["properties"]
        for field in ("order_id", "revenue", "tax", "shipping", "currency"):
            assert properties.get(field) is not None, field
        assert properties["products"]
        for product in properties["products"]:
            assert set(product) >= PRODUCT_FIELDS


def test_identify_events_name_the_user_and_their_traits() -> None:
    identifies = [event for event in EVENTS if event["type"] == "identify"]

    for event in identifies:
        assert event["userId"]
        assert event["traits"]["email"]
    assert any(set(event["traits"]) >= TRAITS for event in identifies)


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda vendor: vendor.key)
def test_every_default_mapping_source_is_in_a_sample_event(vendor: Vendor) -> None:
    """An event kind's own mappings must find their source in at least one
    sample event of that kind; the global mappings, which apply to every event
    the variant maps, in at least one of those events."""
    global_sources = {
        entry.source
        for entry in default_mapping(vendor).global_.mappings
        if entry.source is not None
    }
    mapped_events: list[dict[str, Any]] = []
    missing: list[str] = []

    for kind, sources in sources_by_event(vendor):
        events = [event for event in EVENTS if mapping_key(event) == kind]
        mapped_events.extend(events)
        missing.extend(
            f"{kind}: {source}"
            for source in sorted(sources)
            if not any(is_present(value_at(event, source)) for event in events)
        )
    missing.extend(
        f"global: {source}"
        for source in sorted(global_sources)
        if not any(is_present(value_at(event, source)) for event in mapped_events)
    )

    assert missing == []
