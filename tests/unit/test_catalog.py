"""Every vendor file that ships loads, fits the catalog's schema, and maps the
standard e-commerce events."""

import re
from pathlib import Path

import pytest

from signal_admin.catalog.loader import (
    VENDOR_DIR,
    CatalogError,
    load_catalog,
    shipped_catalog,
)
from signal_admin.catalog.models import RESERVED_KEYS, MappingDocument, Vendor

EXPECTED = {
    "advertising": {
        "meta_capi", "google_ads", "tiktok", "pinterest", "snapchat", "linkedin",
        "the_trade_desk", "microsoft_ads", "reddit", "x_ads", "criteo",
    },
    "analytics": {"ga4", "amplitude", "mixpanel", "posthog", "heap", "matomo"},
    "attribution": {"appsflyer", "adjust", "branch"},
    "cdp": {"braze", "hubspot", "klaviyo", "customer_io", "segment"},
    "cloud_storage": {"bigquery", "snowflake", "s3", "redshift"},
    "other": {"webhook"},
}  # fmt: skip
STANDARD_EVENTS = {
    "page",
    "product_viewed",
    "product_added",
    "checkout_started",
    "order_completed",
    "identify",
}
VENDORS = shipped_catalog().vendors


def test_the_catalog_holds_every_expected_vendor_in_its_category() -> None:
    by_category: dict[str, set[str]] = {}
    for vendor in VENDORS:
        by_category.setdefault(vendor.category, set()).add(vendor.key)

    assert by_category == EXPECTED


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda vendor: vendor.key)
def test_default_variant_maps_every_standard_event(vendor: Vendor) -> None:
    default = vendor.variant("default")

    assert default is not None
    document = MappingDocument.model_validate(default.default_config)
    assert set(document.events) >= STANDARD_EVENTS
    for name in STANDARD_EVENTS:
        assert document.events[name].mappings or document.events[name].vendor_event_name


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda vendor: vendor.key)
def test_vendor_asks_for_credentials_as_secrets_and_no_reserved_keys(
    vendor: Vendor,
) -> None:
    keys = {field.key for field in vendor.config_fields}

    assert keys.isdisjoint(RESERVED_KEYS)
    assert vendor.config_fields, "a vendor asks for at least one connection field"
    for field in vendor.config_fields:
        if field.pattern:
            re.compile(field.pattern)
        looks_secret = any(
            word in field.key for word in ("secret", "token", "password", "api_key")
        )
        if looks_secret and not field.key.endswith(("_id", "_url", "_header")):
            assert field.type == "secret", f"{field.key} should be a secret field"


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda vendor: vendor.key)
def test_default_config_holds_no_secret_values(vendor: Vendor) -> None:
    default = vendor.variant("default")
    assert default is not None

    assert set(default.default_config).isdisjoint(vendor.secret_fields)


def test_a_broken_file_names_itself(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("key: broken\nname: 3\n")

    with pytest.raises(CatalogError, match=r"^broken\.yaml: "):
        load_catalog(tmp_path)


def test_a_file_whose_key_differs_from_its_name_is_refused(tmp_path: Path) -> None:
    source = VENDOR_DIR / "ga4.yaml"
    (tmp_path / "other.yaml").write_text(source.read_text())

    with pytest.raises(CatalogError, match="must match the name"):
        load_catalog(tmp_path)


def test_a_config_field_may_not_use_a_reserved_mapping_key(tmp_path: Path) -> None:
    source = VENDOR_DIR / "ga4.yaml"
    text = source.read_text().replace("key: debug_mode", "key: events", 1)
    (tmp_path / "ga4.yaml").write_text(text)

    with pytest.raises(CatalogError, match="reserved"):
        load_catalog(tmp_path)
