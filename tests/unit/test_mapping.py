"""A revision's mapping turns a canonical event into the vendor's payload, after
the pipeline's parameters are substituted into the config."""

from typing import Any

import pytest

from signal_admin.catalog.loader import shipped_catalog
from signal_admin.catalog.models import MappingDocument
from signal_admin.processing.mapping import (
    PARAMETER,
    MappingResult,
    MissingParameters,
    build_payload,
    parameter_keys,
    substitute_parameters,
)
from signal_admin.processing.runtime import StepFailure


def default_config(vendor_key: str) -> dict[str, Any]:
    vendor = next(v for v in shipped_catalog().vendors if v.key == vendor_key)
    variant = vendor.variant("default")
    assert variant is not None
    return variant.default_config


def order_completed(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "track",
        "event": "order_completed",
        "anonymousId": "anon-7f3a",
        "userId": "user-1042",
        "messageId": "msg-0001",
        "timestamp": "2026-03-01T10:15:00.000Z",
        "context": {
            "ip": "203.0.113.9",
            "userAgent": "Mozilla/5.0 (Macintosh)",
            "page": {"url": "https://shop.example/checkout/done", "title": "Thanks"},
        },
        "traits": {"email": "ada@example.com"},
        "properties": {
            "order_id": "ORD-5521",
            "revenue": 84.5,
            "currency": "EUR",
            "tax": 13.49,
            "shipping": 4.9,
            "products": [{"product_id": "SKU-1", "name": "Mug", "price": 39.8}],
        },
    }
    event.update(changes)
    return event


def config_with(**mapping: Any) -> dict[str, Any]:
    """A flat webhook-like config: a connection field and the given mapping keys."""
    return {"url": "https://hooks.example/in", **mapping}


# -- the catalog's default variants


def test_ga4_default_maps_an_order_to_a_measurement_protocol_purchase() -> None:
    result = build_payload(default_config("ga4"), order_completed())

    assert result == MappingResult(
        payload={
            "client_id": "anon-7f3a",
            "user_id": "user-1042",
            "timestamp_micros": 1_772_360_100_000_000,
            "events": [
                {
                    "name": "purchase",
                    "params": {
                        "transaction_id": "ORD-5521",
                        "value": 84.5,
                        "currency": "EUR",
                        "tax": 13.49,
                        "shipping": 4.9,
                        "items": [
                            {"product_id": "SKU-1", "name": "Mug", "price": 39.8}
                        ],
                    },
                }
            ],
        },
        reason=None,
    )


def test_meta_default_maps_an_order_to_a_conversions_api_purchase() -> None:
    result = build_payload(default_config("meta_capi"), order_completed())

    assert result.payload == {
        "data": [
            {
                "action_source": "website",
                "event_id": "msg-0001",
                "event_time": 1_772_360_100,
                "event_source_url": "https://shop.example/checkout/done",
                "user_data": {
                    "client_ip_address": "203.0.113.9",
                    "client_user_agent": "Mozilla/5.0 (Macintosh)",
                    "external_id": "user-1042",
                    "em": "ada@example.com",
                },
                "event_name": "Purchase",
                "custom_data": {
                    "content_type": "product",
                    "order_id": "ORD-5521",
                    "value": 84.5,
                    "currency": "EUR",
                    "contents": [{"product_id": "SKU-1", "name": "Mug", "price": 39.8}],
                },
            }
        ]
    }


def test_connection_fields_never_enter_the_payload() -> None:
    config = {
        **default_config("ga4"),
        "measurement_id": "G-ABC123",
        "api_secret": "s3cr3t",
    }

    payload = build_payload(config, order_completed()).payload

    assert payload is not None
    assert "s3cr3t" not in repr(payload)
    assert "G-ABC123" not in repr(payload)
    assert "debug_mode" not in payload


def test_page_events_are_matched_by_their_type() -> None:
    event = {
        "type": "page",
        "anonymousId": "anon-1",
        "context": {"page": {"url": "https://shop.example/", "title": "Home"}},
    }

    payload = build_payload(default_config("ga4"), event).payload

    assert payload is not None
    assert payload["events"] == [
        {
            "name": "page_view",
            "params": {"page_location": "https://shop.example/", "page_title": "Home"},
        }
    ]


def test_track_events_are_matched_by_their_exact_name() -> None:
    event = order_completed(event="Order Completed")

    result = build_payload(default_config("ga4"), event)

    assert result == MappingResult(
        None, "defaults.action: drop (no mapping for 'Order Completed')"
    )


# -- defaults and disabled events


def test_an_unmapped_event_is_filtered_when_the_default_is_drop() -> None:
    config = config_with(defaults={"action": "drop"}, events={})

    result = build_payload(config, order_completed(event="Signed Up"))

    assert result == MappingResult(
        None, "defaults.action: drop (no mapping for 'Signed Up')"
    )


def test_drop_is_the_default_action() -> None:
    result = build_payload(config_with(), order_completed())

    assert result.payload is None


def test_an_unmapped_event_passes_with_only_the_global_mappings() -> None:
    config = config_with(
        envelope={"events_path": "events[0]", "event_name_field": "name"},
        defaults={"action": "pass"},
        **{"global": {"mappings": [{"source": "anonymousId", "target": "client_id"}]}},
        events={"order_completed": {"vendor_event_name": "purchase"}},
    )

    result = build_payload(config, order_completed(event="Signed Up"))

    assert result == MappingResult({"client_id": "anon-7f3a"}, None)


def test_a_disabled_event_is_filtered() -> None:
    config = config_with(
        defaults={"action": "pass"},
        events={"order_completed": {"vendor_event_name": "purchase", "enabled": False}},
    )

    result = build_payload(config, order_completed())

    assert result == MappingResult(None, "events.order_completed: disabled")


# -- the envelope


def test_event_mappings_write_inside_the_events_path() -> None:
    config = config_with(
        envelope={"events_path": "batch.items[0]", "event_name_field": "kind"},
        events={
            "order_completed": {
                "vendor_event_name": "order",
                "mappings": [{"source": "properties.order_id", "target": "id"}],
            }
        },
    )

    payload = build_payload(config, order_completed()).payload

    assert payload == {"batch": {"items": [{"kind": "order", "id": "ORD-5521"}]}}


def test_a_null_events_path_writes_everything_at_the_root() -> None:
    config = config_with(
        envelope={"events_path": None, "event_name_field": "event_name"},
        **{"global": {"mappings": [{"source": "messageId", "target": "id"}]}},
        events={
            "order_completed": {
                "vendor_event_name": "purchase",
                "mappings": [{"source": "properties.revenue", "target": "revenue"}],
            }
        },
    )

    payload = build_payload(config, order_completed()).payload

    assert payload == {"id": "msg-0001", "event_name": "purchase", "revenue": 84.5}


def test_without_an_envelope_the_name_is_written_as_event_at_the_root() -> None:
    config = config_with(events={"order_completed": {"vendor_event_name": "purchase"}})

    payload = build_payload(config, order_completed()).payload

    assert payload == {"event": "purchase"}


def test_an_event_mapping_overrides_a_global_mapping_of_the_same_target() -> None:
    config = config_with(
        **{"global": {"mappings": [{"value": "global", "target": "source"}]}},
        events={
            "order_completed": {
                "mappings": [{"value": "event", "target": "source"}],
            }
        },
    )

    payload = build_payload(config, order_completed()).payload

    assert payload == {"source": "event"}


# -- one mapping


def mapped(rule: dict[str, Any], event: dict[str, Any] | None = None) -> Any:
    """The payload of a flat config holding `rule` as its only mapping."""
    config = config_with(events={"order_completed": {"mappings": [rule]}})
    result = build_payload(config, event or order_completed())
    return result.payload


def test_a_source_is_a_dotted_path_with_list_indexes() -> None:
    payload = mapped({"source": "properties.products[0].product_id", "target": "sku"})

    assert payload == {"sku": "SKU-1"}


def test_a_missing_source_writes_nothing() -> None:
    payload = mapped({"source": "properties.coupon", "target": "coupon"})

    assert payload == {}


def test_a_null_source_writes_nothing() -> None:
    payload = mapped(
        {"source": "userId", "target": "user_id"}, order_completed(userId=None)
    )

    assert payload == {}


@pytest.mark.parametrize(
    ("layout", "written"),
    [
        ("epoch_seconds", 1_772_360_100),
        ("epoch_millis", 1_772_360_100_000),
        ("epoch_micros", 1_772_360_100_000_000),
        ("iso8601", "2026-03-01T10:15:00.000Z"),
    ],
)
def test_a_format_writes_the_timestamp_as_the_vendor_reads_it(
    layout: str, written: Any
) -> None:
    event = order_completed(timestamp="2026-03-01T11:15:00+01:00")

    payload = mapped({"source": "timestamp", "target": "time", "format": layout}, event)

    assert payload == {"time": written}


def test_a_format_reads_epoch_milliseconds_too() -> None:
    event = order_completed(properties={"at": 1_772_360_100_000})

    payload = mapped(
        {"source": "properties.at", "target": "time", "format": "epoch_seconds"},
        event,
    )

    assert payload == {"time": 1_772_360_100}


def test_a_format_on_a_value_that_is_no_timestamp_is_an_invalid_mapping() -> None:
    event = order_completed(properties={"at": "next tuesday"})

    with pytest.raises(StepFailure) as failure:
        mapped({"source": "properties.at", "target": "t", "format": "iso8601"}, event)

    assert failure.value.code == "INVALID_MAPPING"
    assert "next tuesday" in failure.value.message


def test_a_value_is_written_as_a_literal() -> None:
    payload = mapped({"value": {"channel": "web"}, "target": "meta"})

    assert payload == {"meta": {"channel": "web"}}


def test_a_value_map_translates_the_value() -> None:
    rule = {
        "source": "properties.currency",
        "target": "currency",
        "value_map": {"EUR": "euro", "*": "other"},
    }

    assert mapped(rule) == {"currency": "euro"}


def test_a_value_map_falls_back_to_its_star_entry() -> None:
    rule = {
        "source": "properties.currency",
        "target": "currency",
        "value_map": {"USD": "dollar", "*": "other"},
    }

    assert mapped(rule) == {"currency": "other"}


def test_a_value_outside_a_value_map_without_a_star_is_kept() -> None:
    rule = {
        "source": "properties.currency",
        "target": "currency",
        "value_map": {"USD": "dollar"},
    }

    assert mapped(rule) == {"currency": "EUR"}


def test_a_value_map_is_case_sensitive() -> None:
    rule = {
        "source": "properties.currency",
        "target": "currency",
        "value_map": {"eur": "euro"},
    }

    assert mapped(rule) == {"currency": "EUR"}


@pytest.mark.parametrize(
    ("value", "key"), [(2, "2"), (2.0, "2"), (2.5, "2.5"), (True, "true")]
)
def test_numbers_and_booleans_are_looked_up_by_their_text(value: Any, key: str) -> None:
    rule = {"source": "properties.tier", "target": "tier", "value_map": {key: "found"}}
    event = order_completed(properties={"tier": value})

    assert mapped(rule, event) == {"tier": "found"}


def test_the_payload_shares_nothing_with_the_event() -> None:
    event = order_completed()

    payload = mapped({"source": "properties.products", "target": "items"}, event)
    payload["items"][0]["price"] = 0

    assert event["properties"]["products"][0]["price"] == 39.8


# -- documents that cannot map


def test_an_invalid_mapping_document_is_an_invalid_mapping_failure() -> None:
    config = config_with(events={"order_completed": {"mappings": [{"target": "x"}]}})

    with pytest.raises(StepFailure) as failure:
        build_payload(config, order_completed())

    assert failure.value.code == "INVALID_MAPPING"
    assert "events.order_completed.mappings.0" in failure.value.message


def test_targets_that_contradict_each_other_are_an_invalid_mapping_failure() -> None:
    config = config_with(
        **{"global": {"mappings": [{"value": "x", "target": "items.first"}]}},
        events={"order_completed": {"mappings": [{"value": 1, "target": "items[0]"}]}},
    )

    with pytest.raises(StepFailure, match=r"events\.order_completed\.mappings\.0"):
        build_payload(config, order_completed())


def test_a_target_index_beyond_the_path_limit_is_an_invalid_mapping_failure() -> None:
    config = config_with(
        events={"order_completed": {"mappings": [{"value": 1, "target": "a[5000]"}]}}
    )

    with pytest.raises(StepFailure, match="index above 999"):
        build_payload(config, order_completed())


def test_a_mapping_document_is_validated_once_for_many_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    validations: list[object] = []
    validate = MappingDocument.model_validate

    def counting(document: object) -> MappingDocument:
        validations.append(document)
        return validate(document)

    monkeypatch.setattr(MappingDocument, "model_validate", counting)
    config = config_with(events={"cache_probe_event": {"vendor_event_name": "probe"}})

    for _ in range(3):
        build_payload(dict(config), {"type": "track", "event": "cache_probe_event"})

    assert len(validations) == 1


# -- pipeline parameters


def test_parameter_keys_are_found_in_texts_at_any_depth() -> None:
    config = {
        "measurement_id": "{{pipeline_param.ga4_id}}",
        "events": {
            "x": {
                "mappings": [
                    {"value": "{{ pipeline_param.region }}/{{pipeline_param.ga4_id}}"}
                ]
            }
        },
        "{{pipeline_param.not_a_value}}": 1,
    }

    assert parameter_keys(config) == {"ga4_id", "region"}


def test_the_parameter_pattern_takes_dots_and_dashes_in_keys() -> None:
    match = PARAMETER.fullmatch("{{pipeline_param.eu-west.pixel_id}}")

    assert match is not None
    assert match.group(1) == "eu-west.pixel_id"


def test_a_text_that_is_one_placeholder_becomes_the_value_as_it_is() -> None:
    config = {
        "pixel_id": "{{pipeline_param.pixel}}",
        "debug": "{{pipeline_param.debug}}",
    }

    result = substitute_parameters(config, {"pixel": 123456789012, "debug": True})

    assert result == {"pixel_id": 123456789012, "debug": True}


def test_placeholders_inside_longer_text_are_written_as_text() -> None:
    config = {"url": "https://{{pipeline_param.host}}/v{{pipeline_param.version}}/in"}

    result = substitute_parameters(config, {"host": "hooks.example", "version": 2})

    assert result == {"url": "https://hooks.example/v2/in"}


def test_substitution_reaches_mapping_values_and_leaves_the_config_unchanged() -> None:
    config = config_with(
        events={
            "x": {"mappings": [{"value": "{{pipeline_param.store}}", "target": "s"}]}
        }
    )

    result = substitute_parameters(config, {"store": "berlin"})

    assert result["events"]["x"]["mappings"][0]["value"] == "berlin"
    assert config["events"]["x"]["mappings"][0]["value"] == "{{pipeline_param.store}}"


def test_every_missing_parameter_is_named_at_once() -> None:
    config = {
        "pixel_id": "{{pipeline_param.pixel}}",
        "token": "{{pipeline_param.token}}",
        "region": "{{pipeline_param.region}}",
    }

    with pytest.raises(MissingParameters) as missing:
        substitute_parameters(config, {"region": "eu"})

    assert missing.value.code == "MISSING_PIPELINE_PARAMETERS"
    assert missing.value.keys == ["pixel", "token"]
    assert missing.value.message.endswith("pixel, token.")
