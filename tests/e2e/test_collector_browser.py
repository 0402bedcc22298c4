"""The collector in a real browser: a shop page loads the pipeline's built
script from the service, with its `integrity` checked, and the events the page
records reach the pipeline's collection endpoint in the data plane's format.

Both sites are local servers the test runs: the shop, and the endpoint the
pipeline's `js_builder_config.endpoint` names, on another origin. Needs
Debian's `chromium` (see tests/browser.py).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser import (
    LocalSite,
    ReceivedRequest,
    Tab,
    chromium,
    local_site,
    require_chromium,
)
from tests.factories import Factory, Member
from tests.servers import RunningServer, Servers

ISO_MILLISECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

# The queue stub of docs/collector.md: calls made before the script has loaded
# wait in an array, and the script replays them.
PAGE = """<!doctype html>
<html>
<head>
<meta charset="utf-8">
<title>%TITLE%</title>
<script>
  window._df = window._df || [];
  ["page", "track", "identify", "group", "consent"].forEach(function (name) {
    window._df[name] = window._df[name] || function () {
      window._df.push([name].concat([].slice.call(arguments)));
    };
  });
</script>
<script async src="%SRC%" integrity="%INTEGRITY%" crossorigin="anonymous"></script>
</head>
<body>
<script>
%CALLS%
</script>
</body>
</html>
"""
CHECKOUT_CALLS = """
  _df.consent({analytics: true, marketing: false});
  _df.identify("customer-17", {plan: "pro"});
  _df.track("Order Completed", {order_id: "o-1001", revenue: 42.5, currency: "EUR"});
"""
RETURN_VISIT_CALLS = """
  _df.track("Product Viewed", {sku: "sku-9"});
"""


@pytest.fixture(scope="module", autouse=True)
def chromium_present() -> None:
    """Checked before the module's server starts."""
    require_chromium()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    migrated_database: str,
    redis_url: str | None,
) -> Iterator[RunningServer]:
    started = Servers(
        tmp_path_factory.mktemp("collector"), migrated_database, redis_url
    )
    try:
        yield started.start()
    finally:
        started.stop_all()


@pytest.fixture
def shop() -> Iterator[LocalSite]:
    with local_site() as site:
        yield site


@pytest.fixture
def endpoint() -> Iterator[LocalSite]:
    with local_site() as site:
        yield site


async def built_collector(
    server: RunningServer, member: Member, endpoint: LocalSite
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new web pipeline that sends to `endpoint`, and its first build."""
    async with httpx.AsyncClient(headers=member.headers, timeout=30) as http:
        created = await http.post(
            f"{server.api}/pipelines",
            json={
                "name": "Web shop",
                "type": "web",
                "js_builder_config": {
                    "endpoint": endpoint.url,
                    "flush_interval_ms": 100,
                },
            },
        )
        assert created.status_code == 201, created.text
        pipeline: dict[str, Any] = created.json()
        built = await http.post(
            f"{server.api}/pipelines/{pipeline['id']}/collector/builds"
        )
        assert built.status_code == 201, built.text
    return pipeline, built.json()


def shop_page(
    server: RunningServer,
    pipeline: dict[str, Any],
    build: dict[str, Any],
    title: str,
    calls: str,
) -> str:
    src = (
        f"{server.url}/collector/{pipeline['pipeline_key']}/{build['script_filename']}"
    )
    return (
        PAGE.replace("%TITLE%", title)
        .replace("%SRC%", src)
        .replace("%INTEGRITY%", build["integrity"])
        .replace("%CALLS%", calls)
    )


def visit(tab: Tab, url: str, endpoint: LocalSite) -> ReceivedRequest:
    """Opens `url` and returns the first request the endpoint receives."""
    tab.open(url)
    loaded = tab.evaluate("!Array.isArray(window._df) && !!window._df.vendors")
    assert loaded, f"the collector did not run: {tab.messages()}"
    return endpoint.next_request()


def batch_of(request: ReceivedRequest) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(request.body)
    return body


async def test_a_page_sends_its_events_to_the_endpoint_as_the_data_plane_expects(
    server: RunningServer,
    factory: Factory,
    shop: LocalSite,
    endpoint: LocalSite,
    tmp_path: Path,
) -> None:
    org = await factory.org()
    pipeline, build = await built_collector(server, org.owner, endpoint)
    shop.pages["/checkout"] = shop_page(
        server, pipeline, build, "Order confirmed", CHECKOUT_CALLS
    )
    page_url = f"{shop.url}/checkout?order=o-1001"

    def browse() -> ReceivedRequest:
        with chromium(tmp_path) as browser:
            return visit(browser.new_tab(), page_url, endpoint)

    received = await asyncio.to_thread(browse)

    assert received.method == "POST"
    assert received.path == "/v1/batch"
    assert received.headers["content-type"] == "text/plain"
    body = batch_of(received)
    assert set(body) == {"pipeline_key", "sent_at", "batch"}
    assert body["pipeline_key"] == pipeline["pipeline_key"]
    assert ISO_MILLISECONDS.match(body["sent_at"])
    identify, track = body["batch"]
    assert identify["type"] == "identify"
    assert identify["userId"] == "customer-17"
    assert track["type"] == "track"
    assert track["event"] == "Order Completed"
    assert track["properties"] == {
        "order_id": "o-1001",
        "revenue": 42.5,
        "currency": "EUR",
    }
    assert track["anonymousId"] == identify["anonymousId"]
    assert track["userId"] == "customer-17"
    assert track["messageId"] != identify["messageId"]
    assert ISO_MILLISECONDS.match(track["timestamp"])
    assert track["context"]["page"]["url"] == page_url
    assert track["context"]["page"]["path"] == "/checkout"
    assert track["context"]["page"]["title"] == "Order confirmed"
    assert "Chrome" in track["context"]["userAgent"]
    assert track["context"]["consent"] == {"analytics": True, "marketing": False}


async def test_a_return_visit_in_the_same_browser_keeps_the_anonymous_id(
    server: RunningServer,
    factory: Factory,
    shop: LocalSite,
    endpoint: LocalSite,
    tmp_path: Path,
) -> None:
    org = await factory.org()
    pipeline, build = await built_collector(server, org.owner, endpoint)
    shop.pages["/checkout"] = shop_page(
        server, pipeline, build, "Order confirmed", CHECKOUT_CALLS
    )
    shop.pages["/products"] = shop_page(
        server, pipeline, build, "Products", RETURN_VISIT_CALLS
    )

    def browse() -> tuple[ReceivedRequest, ReceivedRequest, str]:
        with chromium(tmp_path) as browser:
            tab = browser.new_tab()
            first = visit(tab, f"{shop.url}/checkout", endpoint)
            second = visit(tab, f"{shop.url}/products", endpoint)
            return first, second, tab.evaluate("document.cookie")

    first, second, cookies = await asyncio.to_thread(browse)

    anonymous_id = batch_of(first)["batch"][0]["anonymousId"]
    second_batch = batch_of(second)["batch"]
    assert [event.get("event") for event in second_batch] == ["Product Viewed"]
    (viewed,) = second_batch
    assert viewed["anonymousId"] == anonymous_id
    assert viewed["userId"] == "customer-17"
    assert f"_dfid={anonymous_id}" in cookies.split("; ")


async def test_events_still_being_sent_as_the_visitor_leaves_are_not_sent_twice(
    server: RunningServer,
    factory: Factory,
    shop: LocalSite,
    endpoint: LocalSite,
    tmp_path: Path,
) -> None:
    org = await factory.org()
    pipeline, build = await built_collector(server, org.owner, endpoint)
    shop.pages["/checkout"] = shop_page(
        server, pipeline, build, "Order confirmed", CHECKOUT_CALLS
    )
    shop.pages["/products"] = shop_page(
        server, pipeline, build, "Products", RETURN_VISIT_CALLS
    )

    def browse() -> ReceivedRequest:
        with chromium(tmp_path) as browser:
            tab = browser.new_tab()
            endpoint.answering.clear()
            visit(tab, f"{shop.url}/checkout", endpoint)
            # The checkout's batch has arrived but is not answered yet: the
            # browser fails that request as the shop page is left.
            after_leaving = visit(tab, f"{shop.url}/products", endpoint)
            endpoint.answering.set()
            return after_leaving

    after_leaving = await asyncio.to_thread(browse)

    sent = [event.get("event") for event in batch_of(after_leaving)["batch"]]
    assert sent == ["Product Viewed"]
