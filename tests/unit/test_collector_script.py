"""The built collector script, run in V8 against a small fake browser: what it
exposes, the events and batches it sends, when it sends them, what it keeps
between page loads, and that the build writes its settings in safely."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from py_mini_racer import MiniRacer

from signal_admin.collector import Script, ScriptSettings, render

PIPELINE_KEY = "dk_0123456789abcdefghijABCDEFGHIJ"
ENDPOINT = "https://collect.example.com"
PAGE_URL = "https://shop.example.com/cart?step=2"
ISO_MILLISECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
UUID_V4 = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
)
DEFAULTS = ScriptSettings(
    pipeline_key=PIPELINE_KEY,
    endpoint=ENDPOINT,
    global_variable="_df",
    batch_size=3,
    flush_interval_ms=1000,
    consent=None,
    cross_domain_domains=(),
    vendors=(),
)

# The parts of a browser the collector touches, as plain objects: `window`,
# `document`, cookies, localStorage, timers that run only when the test says,
# `fetch` that answers what the test queued, `sendBeacon`, and event listeners.
# `__browser` is how the test reads and drives them. `%STATE%` is replaced by
# the page's starting state.
FAKE_BROWSER = r"""
var __browser = (function (state) {
  var cookies = state.cookies;
  var storage = state.storage;
  var listeners = [];
  var timers = [];
  var browser = {
    requests: [],
    answers: [],
    beacons: [],
    cookieWrites: [],
    cookies: cookies,
    storage: storage,
    timers: timers,
    fireTimers: function (onlyDelay) {
      var due = timers.filter(function (timer) {
        return onlyDelay === undefined || timer.delay === onlyDelay;
      });
      due.forEach(function (timer) { timers.splice(timers.indexOf(timer), 1); });
      due.forEach(function (timer) { timer.callback(); });
    },
    nextTimer: 1,
    dispatch: function (target, type, event) {
      listeners.forEach(function (entry) {
        if (entry.target === target && entry.type === type) entry.listener(event);
      });
    }
  };
  function listen(target) {
    target.addEventListener = function (type, listener) {
      listeners.push({ target: target, type: type, listener: listener });
    };
  }
  function Blob(parts, options) {
    this.text = parts.join('');
    this.type = options.type;
  }

  // The global object is the window, as in a browser, so page code can call
  // `_df.track(...)` directly.
  var window = globalThis;
  Object.assign(window, {
    location: state.location,
    navigator: {
      userAgent: 'FakeBrowser/1.0',
      language: 'en-GB',
      sendBeacon: function (address, blob) {
        browser.beacons.push({ url: address, type: blob.type, body: blob.text });
        return true;
      }
    },
    localStorage: {
      getItem: function (key) { return key in storage ? storage[key] : null; },
      setItem: function (key, value) { storage[key] = String(value); },
      removeItem: function (key) { delete storage[key]; }
    },
    setTimeout: function (callback, delay) {
      var id = browser.nextTimer++;
      timers.push({ id: id, callback: callback, delay: delay });
      return id;
    },
    clearTimeout: function (id) {
      var index = timers.findIndex(function (timer) { return timer.id === id; });
      if (index >= 0) timers.splice(index, 1);
    },
    fetch: function (address, options) {
      browser.requests.push({ url: address, options: options });
      var answer = browser.answers.length ? browser.answers.shift() : 200;
      if (answer === 'network error') {
        return Promise.reject(new TypeError('Failed to fetch'));
      }
      return Promise.resolve({ ok: answer >= 200 && answer < 300, status: answer });
    },
    Blob: Blob
  });
  if (state.withoutFetch) {
    delete window.fetch;
    window.XMLHttpRequest = function () {
      var request = this;
      request.headers = {};
      request.open = function (method, address) {
        request.method = method;
        request.url = address;
      };
      request.setRequestHeader = function (name, value) {
        request.headers[name] = value;
      };
      request.send = function (body) {
        browser.requests.push({
          url: request.url,
          options: { method: request.method, headers: request.headers, body: body }
        });
        var answer = browser.answers.length ? browser.answers.shift() : 200;
        if (answer === 'network error') {
          request.onerror();
        } else {
          request.status = answer;
          request.onload();
        }
      };
    };
  }
  if (state.beaconRefused) {
    window.navigator.sendBeacon = function () { return false; };
  }
  if (state.randomUUID) {
    window.crypto = { randomUUID: function () { return state.randomUUID; } };
  }
  if (state.queued) {
    window[state.global] = state.queued;
  }

  var document = { title: 'Cart', referrer: 'https://search.example.org/' };
  Object.defineProperty(document, 'cookie', {
    get: function () {
      return Object.keys(cookies).map(function (name) {
        return name + '=' + cookies[name];
      }).join('; ');
    },
    set: function (text) {
      browser.cookieWrites.push(text);
      var pair = text.split(';')[0];
      var equals = pair.indexOf('=');
      cookies[pair.slice(0, equals)] = pair.slice(equals + 1);
    }
  });
  listen(window);
  listen(document);

  window.window = window;
  window.document = document;
  return browser;
})(%STATE%);
"""


class FakePage:
    """One page load of the built script in a fresh V8 isolate."""

    def __init__(
        self,
        script: Script,
        *,
        url: str = PAGE_URL,
        cookies: dict[str, str] | None = None,
        storage: dict[str, str] | None = None,
        queued: list[list[Any]] | None = None,
        global_variable: str = "_df",
        random_uuid: str | None = None,
        without_fetch: bool = False,
        beacon_refused: bool = False,
    ) -> None:
        parts = urlsplit(url)
        location = {
            "href": url,
            "protocol": f"{parts.scheme}:",
            "host": parts.netloc,
            "hostname": parts.hostname,
            "pathname": parts.path or "/",
            "search": f"?{parts.query}" if parts.query else "",
        }
        state = {
            "location": location,
            "cookies": cookies or {},
            "storage": storage or {},
            "queued": queued,
            "global": global_variable,
            "randomUUID": random_uuid,
            "withoutFetch": without_fetch,
            "beaconRefused": beacon_refused,
        }
        self.script = script
        self.racer = MiniRacer()
        self.racer.eval(FAKE_BROWSER.replace("%STATE%", json.dumps(state)))
        self.racer.eval(script.text)

    def run(self, code: str) -> None:
        self.racer.eval(code)

    def value(self, expression: str) -> Any:
        return json.loads(str(self.racer.eval(f"JSON.stringify({expression})")))

    def answer_next_sends_with(self, *answers: int | str) -> None:
        self.run(f"__browser.answers.push(...{json.dumps(answers)})")

    def fire_timers(self) -> None:
        self.run("__browser.fireTimers()")

    def run_next_tasks(self) -> None:
        """Runs what the page queued with `setTimeout(..., 0)`."""
        self.run("__browser.fireTimers(0)")

    def requests(self) -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = self.value("__browser.requests")
        return sent

    def batches(self) -> list[list[dict[str, Any]]]:
        """The events of every request sent, request by request."""
        return [
            json.loads(sent["options"]["body"])["batch"] for sent in self.requests()
        ]

    def events(self) -> list[dict[str, Any]]:
        return [event for batch in self.batches() for event in batch]


@pytest.fixture
def pages() -> Iterator[list[FakePage]]:
    opened: list[FakePage] = []
    yield opened
    for page in opened:
        page.racer.close()


@pytest.fixture
def load(pages: list[FakePage]) -> Any:
    """Loads the script built with `settings` into a new fake page."""

    def load_page(settings: ScriptSettings = DEFAULTS, **page: Any) -> FakePage:
        opened = FakePage(
            render(settings), global_variable=settings.global_variable, **page
        )
        pages.append(opened)
        return opened

    return load_page


def with_settings(**changes: Any) -> ScriptSettings:
    return dataclasses.replace(DEFAULTS, **changes)


# --- The global ---------------------------------------------------------------


def test_the_global_exposes_the_five_calls(load: Any) -> None:
    page = load()

    kinds = page.value(
        "['page', 'track', 'identify', 'group', 'consent']"
        ".map(function (name) { return typeof window._df[name]; })"
    )

    assert kinds == ["function"] * 5


def test_the_global_takes_the_configured_name(load: Any) -> None:
    page = load(with_settings(global_variable="signals"))

    page.run("signals.track('Viewed'); signals.flush()")

    assert page.value("typeof window._df") == "undefined"
    assert [event["event"] for event in page.events()] == ["Viewed"]


def test_the_vendors_of_the_build_are_readable_but_fixed(load: Any) -> None:
    page = load(with_settings(vendors=("ga4", "meta_pixel")))

    page.run("try { _df.vendors.push('x'); } catch (e) {} _df.vendors = [];")

    assert page.value("_df.vendors") == ["ga4", "meta_pixel"]


def test_calls_queued_before_the_script_loaded_are_replayed_in_order(
    load: Any,
) -> None:
    queued = [
        ["consent", {"analytics": True}],
        ["identify", "user-7"],
        ["track", "Early Click", {"button": "buy"}],
    ]

    page = load(queued=queued)
    page.fire_timers()

    identify, track = page.events()
    assert identify["type"] == "identify"
    assert identify["userId"] == "user-7"
    assert track["event"] == "Early Click"
    assert track["properties"] == {"button": "buy"}
    assert track["context"]["consent"] == {"analytics": True}
    assert page.value("typeof _df.track") == "function"


def test_a_second_copy_of_the_script_on_the_page_changes_nothing(load: Any) -> None:
    page = load()
    page.run("_df.track('A'); var first = _df;")

    page.run(page.script.text)
    page.run("_df.track('B'); _df.flush()")

    assert page.value("first === _df")
    assert [event["event"] for event in page.events()] == ["A", "B"]


# --- Events and batches -------------------------------------------------------


def test_a_full_batch_is_sent_at_once_with_the_documented_body(load: Any) -> None:
    page = load()

    page.run(
        "_df.track('Product Viewed', {sku: 'A-1'});"
        "_df.track('Product Added', {sku: 'A-1', quantity: 2});"
        "_df.page('Cart');"
    )

    (sent,) = page.requests()
    assert sent["url"] == f"{ENDPOINT}/v1/batch"
    assert sent["options"]["method"] == "POST"
    assert sent["options"]["headers"] == {"Content-Type": "text/plain"}
    body = json.loads(sent["options"]["body"])
    assert set(body) == {"pipeline_key", "sent_at", "batch"}
    assert body["pipeline_key"] == PIPELINE_KEY
    assert ISO_MILLISECONDS.match(body["sent_at"])
    assert [event["type"] for event in body["batch"]] == ["track", "track", "page"]
    assert page.value("__browser.timers.length") == 0


def test_a_track_event_is_a_canonical_event_with_the_page_context(
    load: Any,
) -> None:
    page = load()

    page.run("_df.track('Order Completed', {revenue: 42.5, currency: 'EUR'})")
    page.fire_timers()

    (event,) = page.events()
    assert event["type"] == "track"
    assert event["event"] == "Order Completed"
    assert event["properties"] == {"revenue": 42.5, "currency": "EUR"}
    assert UUID_V4.match(event["messageId"])
    assert UUID_V4.match(event["anonymousId"])
    assert ISO_MILLISECONDS.match(event["timestamp"])
    assert "userId" not in event
    assert event["context"] == {
        "page": {
            "url": PAGE_URL,
            "path": "/cart",
            "referrer": "https://search.example.org/",
            "title": "Cart",
            "search": "?step=2",
        },
        "userAgent": "FakeBrowser/1.0",
        "locale": "en-GB",
    }


def test_page_and_group_events_carry_their_own_fields(load: Any) -> None:
    page = load()

    page.run("_df.page('Checkout', {step: 2}); _df.group(42, {plan: 'team'})")
    page.fire_timers()

    viewed, grouped = page.events()
    assert viewed["type"] == "page"
    assert viewed["name"] == "Checkout"
    assert viewed["properties"] == {"step": 2}
    assert grouped["type"] == "group"
    assert grouped["groupId"] == "42"
    assert grouped["traits"] == {"plan": "team"}


def test_every_event_has_its_own_message_id(load: Any) -> None:
    page = load()

    page.run("_df.track('A'); _df.track('B'); _df.track('C')")

    message_ids = {event["messageId"] for event in page.events()}
    assert len(message_ids) == 3


def test_properties_changed_after_the_call_are_not_sent(load: Any) -> None:
    page = load()

    page.run("var cart = {items: 1}; _df.track('Cart Viewed', cart); cart.items = 9;")
    page.fire_timers()

    (event,) = page.events()
    assert event["properties"] == {"items": 1}


def test_fewer_events_than_a_batch_leave_when_the_interval_ends(load: Any) -> None:
    page = load(with_settings(batch_size=10, flush_interval_ms=2500))
    page.run("_df.track('A'); _df.track('B')")
    waiting = page.requests()
    delays = page.value("__browser.timers.map(function (t) { return t.delay; })")

    page.fire_timers()

    assert waiting == []
    assert delays == [2500]
    assert [[event["event"] for event in batch] for batch in page.batches()] == [
        ["A", "B"]
    ]


def test_without_an_endpoint_the_page_origin_receives_the_batches(
    load: Any,
) -> None:
    page = load(with_settings(endpoint=None))

    page.run("_df.track('A'); _df.flush()")

    (sent,) = page.requests()
    assert sent["url"] == "https://shop.example.com/v1/batch"


def test_a_failed_batch_is_sent_again_with_the_next_batch(load: Any) -> None:
    page = load(with_settings(batch_size=2))
    page.answer_next_sends_with(500)
    page.run("_df.track('A1'); _df.track('A2')")
    page.run_next_tasks()

    page.run("_df.track('B1'); _df.track('B2')")

    assert [[event["event"] for event in batch] for batch in page.batches()] == [
        ["A1", "A2"],
        ["A1", "A2", "B1", "B2"],
    ]


def test_a_batch_that_fails_twice_is_dropped(load: Any) -> None:
    page = load(with_settings(batch_size=1))
    page.answer_next_sends_with(503, "network error")
    page.run("_df.track('A')")
    page.run_next_tasks()
    page.run("_df.track('B')")
    page.run_next_tasks()

    page.run("_df.track('C')")

    assert [[event["event"] for event in batch] for batch in page.batches()] == [
        ["A"],
        ["A", "B"],
        ["B", "C"],
    ]


def test_a_failed_batch_is_retried_when_the_timer_fires_even_if_nothing_follows(
    load: Any,
) -> None:
    page = load(with_settings(batch_size=1))
    page.answer_next_sends_with("network error")
    page.run("_df.track('A')")
    page.run_next_tasks()

    page.fire_timers()

    assert [[event["event"] for event in batch] for batch in page.batches()] == [
        ["A"],
        ["A"],
    ]


def test_a_send_that_fails_as_the_page_is_left_is_not_sent_again(load: Any) -> None:
    page = load(with_settings(batch_size=1))
    page.answer_next_sends_with("network error")
    page.run("_df.track('A')")

    page.run("__browser.dispatch(window, 'pagehide', {})")

    assert len(page.requests()) == 1
    assert page.value("__browser.beacons") == []


def test_without_fetch_batches_go_with_xml_http_request(load: Any) -> None:
    page = load(with_settings(batch_size=1), without_fetch=True)
    page.answer_next_sends_with(502)
    page.run("_df.track('A')")
    page.run_next_tasks()

    page.run("_df.track('B')")

    first, second = page.requests()
    assert first["url"] == f"{ENDPOINT}/v1/batch"
    assert first["options"]["method"] == "POST"
    assert first["options"]["headers"] == {"Content-Type": "text/plain"}
    assert [[event["event"] for event in batch] for batch in page.batches()] == [
        ["A"],
        ["A", "B"],
    ]
    assert second["options"]["headers"] == {"Content-Type": "text/plain"}


def test_hiding_the_page_sends_the_waiting_events_with_a_beacon(load: Any) -> None:
    page = load(with_settings(batch_size=10))
    page.run("_df.track('Leaving')")

    page.run(
        "document.visibilityState = 'hidden';"
        "__browser.dispatch(document, 'visibilitychange', {});"
    )

    (beacon,) = page.value("__browser.beacons")
    assert beacon["url"] == f"{ENDPOINT}/v1/batch"
    assert beacon["type"] == "text/plain"
    body = json.loads(beacon["body"])
    assert body["pipeline_key"] == PIPELINE_KEY
    assert [event["event"] for event in body["batch"]] == ["Leaving"]
    assert page.requests() == []


def test_leaving_the_page_sends_the_waiting_events_with_a_beacon(load: Any) -> None:
    page = load(with_settings(batch_size=10))
    page.run("_df.track('Leaving')")

    page.run("__browser.dispatch(window, 'pagehide', {})")

    (beacon,) = page.value("__browser.beacons")
    assert [event["event"] for event in json.loads(beacon["body"])["batch"]] == [
        "Leaving"
    ]


def test_a_refused_beacon_leaves_as_a_request_instead(load: Any) -> None:
    page = load(with_settings(batch_size=10), beacon_refused=True)
    page.run("_df.track('Leaving')")

    page.run("__browser.dispatch(window, 'pagehide', {})")

    (sent,) = page.requests()
    assert sent["options"]["keepalive"] is True
    assert [event["event"] for event in page.events()] == ["Leaving"]


# --- Identity -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "secure"),
    [("https://shop.example.com/", True), ("http://shop.example.com/", False)],
)
def test_a_new_visitor_gets_an_anonymous_id_in_a_cookie_and_local_storage(
    load: Any, url: str, secure: bool
) -> None:
    page = load(url=url)

    page.run("_df.track('A'); _df.flush()")

    (event,) = page.events()
    anonymous_id = event["anonymousId"]
    assert UUID_V4.match(anonymous_id)
    assert page.value("__browser.storage._dfid") == anonymous_id
    (written,) = page.value("__browser.cookieWrites")
    attributes = [part.strip() for part in written.split(";")]
    assert attributes[0] == f"_dfid={anonymous_id}"
    assert {"Max-Age=31536000", "Path=/", "SameSite=Lax"} <= set(attributes)
    assert ("Secure" in attributes) is secure


def test_crypto_random_uuid_is_used_when_the_browser_has_it(load: Any) -> None:
    page = load(random_uuid="0b5c7f4e-1a2b-4c3d-8e9f-0a1b2c3d4e5f")

    page.run("_df.track('A'); _df.flush()")

    (event,) = page.events()
    assert event["anonymousId"] == "0b5c7f4e-1a2b-4c3d-8e9f-0a1b2c3d4e5f"


def test_a_later_page_load_keeps_the_anonymous_id(load: Any) -> None:
    first = load()
    first.run("_df.track('A'); _df.flush()")
    cookies = first.value("__browser.cookies")
    storage = first.value("__browser.storage")

    second = load(cookies=cookies, storage=storage)
    second.run("_df.track('B'); _df.flush()")

    assert second.events()[0]["anonymousId"] == first.events()[0]["anonymousId"]


def test_the_cookie_alone_restores_local_storage(load: Any) -> None:
    page = load(cookies={"theme": "dark", "_dfid": "kept-id-1"})

    page.run("_df.track('A'); _df.flush()")

    assert page.events()[0]["anonymousId"] == "kept-id-1"
    assert page.value("__browser.storage._dfid") == "kept-id-1"


def test_local_storage_alone_restores_the_cookie(load: Any) -> None:
    page = load(storage={"_dfid": "kept-id-2"})

    page.run("_df.track('A'); _df.flush()")

    assert page.events()[0]["anonymousId"] == "kept-id-2"
    assert page.value("__browser.cookies._dfid") == "kept-id-2"


def test_the_cookie_wins_over_local_storage(load: Any) -> None:
    page = load(cookies={"_dfid": "from-cookie"}, storage={"_dfid": "from-storage"})

    page.run("_df.track('A'); _df.flush()")

    assert page.events()[0]["anonymousId"] == "from-cookie"
    assert page.value("__browser.storage._dfid") == "from-cookie"


def test_the_user_id_is_sent_after_identify_and_on_later_page_loads(
    load: Any,
) -> None:
    first = load()
    first.run(
        "_df.track('Before');"
        "_df.identify('user-42', {email: 'ada@example.com'});"
        "_df.track('After');"
    )
    second = load(storage=first.value("__browser.storage"))
    second.run("_df.track('Next Visit'); _df.flush()")

    before, identify, after = first.events()
    assert "userId" not in before
    assert identify["type"] == "identify"
    assert identify["userId"] == "user-42"
    assert identify["traits"] == {"email": "ada@example.com"}
    assert after["userId"] == "user-42"
    assert second.events()[0]["userId"] == "user-42"


def test_reset_forgets_the_user_and_starts_a_new_anonymous_id(load: Any) -> None:
    page = load()
    page.run("_df.identify('user-42'); _df.reset(); _df.track('Signed Out')")
    page.fire_timers()

    identify, signed_out = page.events()

    assert "userId" not in signed_out
    assert signed_out["anonymousId"] != identify["anonymousId"]
    assert page.value("__browser.storage._dfid") == signed_out["anonymousId"]


# --- Consent ------------------------------------------------------------------


def test_events_carry_the_configured_consent_until_the_page_sets_its_own(
    load: Any,
) -> None:
    page = load(with_settings(consent={"analytics": True, "marketing": False}))

    page.run(
        "_df.track('Before');"
        "_df.consent({analytics: true, marketing: true});"
        "_df.track('After');"
    )
    page.fire_timers()

    before, after = page.events()
    assert before["context"]["consent"] == {"analytics": True, "marketing": False}
    assert after["context"]["consent"] == {"analytics": True, "marketing": True}


def test_without_configured_consent_events_carry_none_until_it_is_set(
    load: Any,
) -> None:
    page = load()

    page.run("_df.track('Before'); _df.consent({analytics: true}); _df.track('After')")
    page.fire_timers()

    before, after = page.events()
    assert "consent" not in before["context"]
    assert after["context"]["consent"] == {"analytics": True}


# --- Cross-domain -------------------------------------------------------------


def test_an_id_in_the_landing_url_is_adopted_across_domains(load: Any) -> None:
    page = load(
        with_settings(cross_domain_domains=("shop.example.com", "blog.example.net")),
        url="https://shop.example.com/?utm_source=blog&_dfid=carried-id-9",
        cookies={"_dfid": "older-id"},
    )

    page.run("_df.track('Landed'); _df.flush()")

    assert page.events()[0]["anonymousId"] == "carried-id-9"
    assert page.value("__browser.cookies._dfid") == "carried-id-9"


def test_an_id_in_the_landing_url_is_ignored_without_cross_domain(
    load: Any,
) -> None:
    page = load(url="https://shop.example.com/?_dfid=planted", cookies={"_dfid": "own"})

    page.run("_df.track('Landed'); _df.flush()")

    assert page.events()[0]["anonymousId"] == "own"


CLICK_ON_LINK = """
var link = {tagName: 'A', href: %HREF%, protocol: 'https:', host: %HOST%,
            hostname: %HOST%, parentNode: null};
var label = {tagName: 'SPAN', parentNode: link};
__browser.dispatch(document, 'click', {target: label});
link.href;
"""


@pytest.mark.parametrize(
    ("href", "host", "decorated"),
    [
        (
            "https://blog.example.net/post?id=3#top",
            "blog.example.net",
            "https://blog.example.net/post?id=3&_dfid=visitor-1#top",
        ),
        (
            "https://www.blog.example.net/?_dfid=stale&x=1",
            "www.blog.example.net",
            "https://www.blog.example.net/?x=1&_dfid=visitor-1",
        ),
        ("https://elsewhere.example.org/", "elsewhere.example.org", None),
    ],
)
def test_links_to_the_listed_domains_carry_the_anonymous_id(
    load: Any, href: str, host: str, decorated: str | None
) -> None:
    page = load(
        with_settings(cross_domain_domains=("blog.example.net",)),
        cookies={"_dfid": "visitor-1"},
    )

    followed = page.racer.eval(
        CLICK_ON_LINK.replace("%HREF%", json.dumps(href)).replace(
            "%HOST%", json.dumps(host)
        )
    )

    assert followed == (decorated or href)


def test_a_wildcard_domain_takes_in_its_subdomains(load: Any) -> None:
    page = load(
        with_settings(cross_domain_domains=("*.shop.example",)),
        cookies={"_dfid": "visitor-1"},
    )
    href = "https://eu.shop.example/cart"

    followed = page.racer.eval(
        CLICK_ON_LINK.replace("%HREF%", json.dumps(href)).replace(
            "%HOST%", json.dumps("eu.shop.example")
        )
    )

    assert followed == "https://eu.shop.example/cart?_dfid=visitor-1"


# --- The build ----------------------------------------------------------------


def test_the_settings_are_written_into_the_script() -> None:
    script = render(with_settings(global_variable="_signal"))

    assert PIPELINE_KEY in script.text
    assert '"global_variable":"_signal"' in script.text
    assert ENDPOINT in script.text


def test_the_script_is_minified_and_well_under_8_kib_gzipped() -> None:
    script = render(
        with_settings(
            consent={"analytics": True, "marketing": False},
            cross_domain_domains=("a.example.com", "b.example.com"),
            vendors=("ga4", "meta_pixel"),
        )
    )

    assert script.gzip_size_bytes < 8192
    assert script.gzip_size_bytes == len(
        gzip.compress(script.text.encode(), compresslevel=9, mtime=0)
    )
    assert script.size_bytes == len(script.text.encode())
    assert "// " not in script.text
    assert script.text.startswith("/*! signal collector */")


def test_the_digests_are_those_of_the_script_text() -> None:
    script = render(DEFAULTS)
    data = script.text.encode()

    assert script.sha256 == hashlib.sha256(data).hexdigest()
    assert script.integrity == "sha384-" + base64.b64encode(
        hashlib.sha384(data).digest()
    ).decode("ascii")


def test_the_same_settings_build_the_same_bytes() -> None:
    first = render(with_settings(consent={"b": True, "a": False}))
    second = render(with_settings(consent={"a": False, "b": True}))

    assert first == second


def test_different_settings_build_different_scripts() -> None:
    assert render(DEFAULTS).sha256 != render(with_settings(batch_size=4)).sha256


HOSTILE = "dk_</script><script>alert(1)</script>\u2028\u2029<!--&amp;'\"\\"


def test_setting_text_cannot_break_out_of_the_script(load: Any) -> None:
    settings = with_settings(
        pipeline_key=HOSTILE, endpoint=f"https://c.example.com/{HOSTILE}"
    )
    script = render(settings)
    page = load(settings)

    page.run("_df.track('A'); _df.flush()")

    for unsafe in ("</", "<!--", "\u2028", "\u2029", "&amp;"):
        assert unsafe not in script.text
    (sent,) = page.requests()
    assert json.loads(sent["options"]["body"])["pipeline_key"] == HOSTILE
    assert sent["url"] == f"https://c.example.com/{HOSTILE}/v1/batch"


@pytest.mark.parametrize(
    "change",
    [{"global_variable": "window.x"}, {"batch_size": 0}, {"flush_interval_ms": -1}],
)
def test_settings_the_script_cannot_use_are_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(change))):
        with_settings(**change)
