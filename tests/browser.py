"""A real browser for tests: headless Chromium driven over the DevTools
protocol, and a small local website for it to visit.

Chromium is Debian's `chromium` package at /usr/bin/chromium. Tests that need
it are skipped when it is missing, unless SIGNAL_REQUIRE_BROWSER=1 (as in CI),
which makes them fail instead. The browser resolves no host names, so a page
can reach 127.0.0.1 and nothing else.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

CHROMIUM = Path(os.environ.get("SIGNAL_CHROMIUM", "/usr/bin/chromium"))
REQUIRE_BROWSER = "SIGNAL_REQUIRE_BROWSER"
# Bounds every wait on the browser or the site, so a broken page fails the test
# instead of hanging it; nothing here waits this long when things work.
PATIENCE_SECONDS = 30.0

_FLAGS = (
    "--headless",
    "--no-sandbox",  # the suite may run as root, where the sandbox refuses
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


def require_chromium() -> None:
    """Skips the calling test when Chromium is missing, or fails it when the
    environment says a browser is required."""
    if CHROMIUM.exists():
        return
    reason = (
        f"needs Chromium at {CHROMIUM}: install Debian's package with "
        "`apt-get install -y --no-install-recommends chromium`"
    )
    if os.environ.get(REQUIRE_BROWSER) == "1":
        pytest.fail(f"{REQUIRE_BROWSER}=1 but the browser test {reason}")
    pytest.skip(reason)


class DevToolsError(Exception):
    pass


class DevTools:
    """One DevTools connection to the browser; pages are reached through
    sessions on it."""

    def __init__(self, socket: ClientConnection) -> None:
        self._socket = socket
        self._ids = itertools.count(1)
        self._events: list[dict[str, Any]] = []

    def call(
        self, method: str, params: dict[str, Any] | None = None, session: str = ""
    ) -> dict[str, Any]:
        message_id = next(self._ids)
        message: dict[str, Any] = {
            "id": message_id,
            "method": method,
            "params": params or {},
        }
        if session:
            message["sessionId"] = session
        self._socket.send(json.dumps(message))
        answer = self._receive_until(lambda received: received.get("id") == message_id)
        if "error" in answer:
            raise DevToolsError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    def wait_for(self, method: str, session: str) -> dict[str, Any]:
        """The first event `method` of `session` not yet waited for."""

        def wanted(received: dict[str, Any]) -> bool:
            return (
                received.get("method") == method
                and received.get("sessionId", "") == session
            )

        for index, event in enumerate(self._events):
            if wanted(event):
                return self._events.pop(index)
        event = self._receive_until(wanted)
        self._events.remove(event)
        return event

    def events(self, method: str, session: str) -> list[dict[str, Any]]:
        return [
            event
            for event in self._events
            if event.get("method") == method and event.get("sessionId") == session
        ]

    def _receive_until(self, wanted: Any) -> dict[str, Any]:
        deadline = time.monotonic() + PATIENCE_SECONDS
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the browser did not answer")
            received: dict[str, Any] = json.loads(self._socket.recv(remaining))
            if "method" in received:
                self._events.append(received)
            if wanted(received):
                return received


@dataclass
class Tab:
    """One page of the browser."""

    devtools: DevTools
    session: str

    def open(self, url: str) -> None:
        """Loads `url` and returns once its load event has fired."""
        navigated = self.devtools.call("Page.navigate", {"url": url}, self.session)
        if "errorText" in navigated:
            raise DevToolsError(f"{url}: {navigated['errorText']}")
        self.devtools.wait_for("Page.loadEventFired", self.session)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited if it is a
        promise)."""
        answer = self.devtools.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            self.session,
        )
        if "exceptionDetails" in answer:
            raise DevToolsError(f"{expression}: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def messages(self) -> list[str]:
        """What the page logged so far: console output, uncaught errors and the
        browser's own messages (such as a failed integrity check)."""
        entries = [
            event["params"]["entry"]["text"]
            for event in self.devtools.events("Log.entryAdded", self.session)
        ]
        entries += [
            str(event["params"]["exceptionDetails"])
            for event in self.devtools.events("Runtime.exceptionThrown", self.session)
        ]
        entries += [
            " ".join(str(arg.get("value")) for arg in event["params"]["args"])
            for event in self.devtools.events("Runtime.consoleAPICalled", self.session)
        ]
        return entries


@dataclass
class Chromium:
    """A running headless Chromium, reached through one DevTools connection."""

    devtools: DevTools

    def new_tab(self) -> Tab:
        target = self.devtools.call("Target.createTarget", {"url": "about:blank"})
        attached = self.devtools.call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        tab = Tab(self.devtools, attached["sessionId"])
        for domain in ("Page", "Runtime", "Log"):
            self.devtools.call(f"{domain}.enable", session=tab.session)
        return tab


@contextmanager
def chromium(folder: Path) -> Iterator[Chromium]:
    """A headless Chromium with a new profile in `folder`, stopped on exit."""
    profile = folder / "profile"
    profile.mkdir()
    log_path = folder / "chromium.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(CHROMIUM), *_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            port, path = _devtools_address(process, profile, log_path)
            with connect(
                f"ws://127.0.0.1:{port}{path}",
                max_size=None,
                open_timeout=PATIENCE_SECONDS,
            ) as socket:
                yield Chromium(DevTools(socket))
        finally:
            _stop(process)


def _devtools_address(
    process: subprocess.Popen[bytes], profile: Path, log: Path
) -> tuple[str, str]:
    """The port and path Chromium writes into its profile once DevTools listens."""
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + PATIENCE_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Chromium exited: {log.read_text(errors='replace')}")
        lines = port_file.read_text().split() if port_file.exists() else []
        if len(lines) == 2:
            return lines[0], lines[1]
        time.sleep(0.05)
    raise TimeoutError("Chromium did not open its DevTools port")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    # The browser's helper processes are in its process group.
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LocalSite:
    """A website on 127.0.0.1: serves the HTML pages it is given and keeps
    every other request it receives. Answers every request with
    `Access-Control-Allow-Origin: *`, as a collection endpoint does.

    Clearing `answering` holds the answers to POST requests (which are kept
    all the same) until it is set again, so a test can leave a page while
    its request is still pending."""

    pages: dict[str, str] = field(default_factory=dict)
    received: queue.Queue[ReceivedRequest] = field(default_factory=queue.Queue)
    answering: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def __post_init__(self) -> None:
        self.answering.set()

    def next_request(self) -> ReceivedRequest:
        """The next request that was not for a page, waiting for it if needed."""
        try:
            return self.received.get(timeout=PATIENCE_SECONDS)
        except queue.Empty:
            raise TimeoutError("the site received no request") from None


def _handler_for(site: LocalSite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            page = site.pages.get(self.path.split("?")[0])
            if page is None:
                self._answer(404, b"")
                return
            self._answer(200, page.encode(), "text/html; charset=utf-8")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            self._keep(self.rfile.read(length))
            site.answering.wait(PATIENCE_SECONDS)
            self._answer(200, b"{}", "application/json")

        def do_OPTIONS(self) -> None:
            self._keep(b"")
            self._answer(204, b"")

        def _keep(self, body: bytes) -> None:
            headers = {name.lower(): value for name, value in self.headers.items()}
            site.received.put(ReceivedRequest(self.command, self.path, headers, body))

        def _answer(self, status: int, body: bytes, content_type: str = "") -> None:
            self.send_response(status)
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Cache-Control", "no-store")
            if content_type:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the test reads what it needs from `site.received`

    return Handler


@contextmanager
def local_site() -> Iterator[LocalSite]:
    site = LocalSite()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(site))
    site.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        site.answering.set()
        server.shutdown()
        server.server_close()
        thread.join()
