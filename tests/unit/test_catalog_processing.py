"""The catalog's promise that each vendor's `default` variant handles the
standard e-commerce journey: every shipped sample event runs through every
vendor's default mapping without an error stage, and the purchase reaches
each vendor as a payload."""

from __future__ import annotations

from typing import Any

import pytest

from signal_admin.catalog.loader import shipped_catalog
from signal_admin.catalog.models import Vendor
from signal_admin.processing.data_layer import parse_data_layer
from signal_admin.processing.mapping import parameter_keys
from signal_admin.processing.runtime import Deadline
from signal_admin.processing.samples import sample_events
from signal_admin.processing.test_events import (
    IntegrationPlan,
    PipelinePlan,
    run_test_events,
)

VENDORS = shipped_catalog().vendors


def _plan(vendor: Vendor) -> PipelinePlan:
    config = vendor.variant("default").default_config  # type: ignore[union-attr]
    return PipelinePlan(
        org_id="org_catalog",
        pipeline_id="pip_catalog",
        parameters={key: f"param-{key}" for key in parameter_keys(config)},
        data_layer=parse_data_layer(None),
        integrations=(
            IntegrationPlan(
                pipeline_integration_id="pi_catalog",
                integration_id="tmpl_catalog",
                vendor=vendor.key,
                consent_categories=(),
                config=config,
            ),
        ),
    )


def _integration_stages(vendor: Vendor) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    results = run_test_events(
        _plan(vendor), sample_events(), javascript=None, deadline=Deadline.none()
    )
    pairs = []
    for event, result in zip(sample_events(), results, strict=True):
        stages = [stage for stage in result.stages if stage["vendor"] == vendor.key]
        assert len(stages) == 1, result.stages
        pairs.append((event, stages[0]))
    return pairs


@pytest.mark.parametrize("vendor", VENDORS, ids=[vendor.key for vendor in VENDORS])
def test_every_sample_event_runs_through_the_default_variant_without_error(
    vendor: Vendor,
) -> None:
    errors = [
        (event.get("event") or event["type"], stage["error"])
        for event, stage in _integration_stages(vendor)
        if stage["stage"] == "error"
    ]

    assert errors == []


@pytest.mark.parametrize("vendor", VENDORS, ids=[vendor.key for vendor in VENDORS])
def test_the_default_variant_turns_a_purchase_into_a_payload(vendor: Vendor) -> None:
    purchases = [
        stage
        for event, stage in _integration_stages(vendor)
        if event.get("event") == "order_completed"
    ]

    assert purchases
    for stage in purchases:
        assert stage["stage"] == "transformed", stage
        assert stage["payload"]
