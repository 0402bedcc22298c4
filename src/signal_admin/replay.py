"""Replaying events into a running service: a JSON-lines file (or the shipped
e-commerce sample) posted to a pipeline's test-events route in batches, as a
signed-in user, at an optional rate.

    replay_file(Path("events.jsonl"), pipeline_id="pip_…", url=REPLAY_URL,
                email=None, rate=20.0)   # SIGNAL_TOKEN signs in

It is a client of the service like any other: it talks HTTP to `url`, obeys
roles and rate limits, and reads none of the server's settings.
`docs/replay.md` describes it for users.
"""

from __future__ import annotations

import getpass
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote

import httpx

from signal_admin import __version__
from signal_admin.processing.samples import SAMPLE_FILE, sample_events_text
from signal_admin.rest_compat import API_PREFIX

REPLAY_URL = "http://127.0.0.1:8084"
TOKEN_VARIABLE = "SIGNAL_TOKEN"
REPLAY_USER_AGENT = f"signal-admin/{__version__} (replay)"
# The test-events route takes 1 to 100 events per request.
REPLAY_BATCH = 100
REPLAY_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
# Answers of 429 one request may get before the replay gives up.
RATE_LIMIT_RETRIES = 5
# Stages in the order an event meets them; any other follows by name.
STAGE_ORDER = (
    "received",
    "rejected",
    "processed",
    "dropped",
    "transformed",
    "filtered",
    "skipped",
    "error",
)
FAILED_STAGES = frozenset({"rejected", "error"})


class ReplayFailed(Exception):
    """Stops a replay; the message is the one line the operator sees."""


def replay_file(
    path: Path | None,
    *,
    pipeline_id: str,
    url: str,
    email: str | None,
    rate: float | None,
) -> None:
    """Send the events of `path` (the shipped sample when None) through the
    pipeline's test events, printing a line per batch and a summary."""
    source, text = _source(path)
    events = parse_event_lines(text, source)

    with httpx.Client(
        base_url=f"{url}{API_PREFIX}",
        timeout=REPLAY_TIMEOUT,
        headers={"User-Agent": REPLAY_USER_AGENT},
    ) as http:
        api = sign_in(http, email=email, token=os.environ.get(TOKEN_VARIABLE))
        try:
            tally = replay_events(api, pipeline_id, events, rate=rate)
        finally:
            api.sign_out()

    print(tally.summary(pipeline_id), flush=True)


class ApiRefusal(ReplayFailed):
    """The service answered with an error: its status, code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        super().__init__(f"{status} {code}: {message}")

    @classmethod
    def of(cls, answer: httpx.Response) -> ApiRefusal:
        try:
            error = answer.json()["error"]
            code, message = str(error["code"]), str(error["message"])
            details = error.get("details") or []
        except (ValueError, TypeError, KeyError):
            return cls(answer.status_code, answer.reason_phrase, answer.text[:200])
        problems = [
            f"{problem.get('field')}: {problem.get('message')}"
            for problem in details[:5]
            if isinstance(problem, dict)
        ]
        return cls(answer.status_code, code, " ".join([message, *problems]))


class AdminApi:
    """The admin REST API as one signed-in user: the bearer token on every
    request, a wait and a retry on 429, and, for a session this command opened
    itself, a refresh when the access token expires and a logout at the end."""

    def __init__(
        self,
        http: httpx.Client,
        access_token: str,
        *,
        refresh_token: str | None = None,
        credential: str = TOKEN_VARIABLE,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.http = http
        self.access_token = access_token
        self.refresh_token = refresh_token
        self.credential = credential
        self.sleep = sleep

    def post(self, path: str, body: dict[str, Any]) -> Any:
        answer = self._post(path, body)
        if self._expired(answer):
            self._refresh()
            answer = self._post(path, body)
        if answer.is_error:
            raise ApiRefusal.of(answer)
        return _json_of(answer)

    def sign_out(self) -> None:
        """End the session this command opened; a token it was given stays."""
        if self.refresh_token is None:
            return
        with suppress(httpx.HTTPError):
            self.http.post(
                "/auth/logout",
                json={"refresh_token": self.refresh_token},
                headers=self._headers(),
            )
        self.refresh_token = None

    def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return post_patiently(self.http, path, body, self._headers(), self.sleep)

    def _expired(self, answer: httpx.Response) -> bool:
        """Whether the access token expired in a session that can renew it."""
        return (
            answer.status_code == 401
            and self.refresh_token is not None
            and ApiRefusal.of(answer).code == "EXPIRED_TOKEN"
        )

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    def _refresh(self) -> None:
        answer = post_patiently(
            self.http,
            "/auth/refresh",
            {"refresh_token": self.refresh_token},
            {},
            self.sleep,
        )
        if answer.is_error:
            refusal = ApiRefusal.of(answer)
            raise ReplayFailed(
                f"the session expired and could not be renewed: {refusal}"
            )
        pair = _json_of(answer)
        self.access_token = pair["access_token"]
        self.refresh_token = pair["refresh_token"]


@dataclass
class ReplayTally:
    """What the service answered so far, summed over the batches."""

    total: int
    sent: int = 0
    batches: int = 0
    events_with_errors: int = 0
    seconds: float = 0.0
    stages: Counter[str] = field(default_factory=Counter)

    def add(self, answer: Any, size: int) -> Counter[str]:
        """Count one batch's answer and return its stage counts."""
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list):
            raise ReplayFailed(
                "the service answered test events without `results`; "
                "is it a version that has test events?"
            )
        counts: Counter[str] = Counter()
        for result in results:
            stages = result.get("stages") if isinstance(result, dict) else None
            names = [
                str(stage.get("stage"))
                for stage in stages or []
                if isinstance(stage, dict)
            ]
            counts.update(names)
            if FAILED_STAGES.intersection(names):
                self.events_with_errors += 1
        self.sent += size
        self.batches += 1
        self.stages.update(counts)
        return counts

    def batch_line(self, size: int, counts: Counter[str]) -> str:
        return (
            f"batch {self.batches}: {size} events sent "
            f"({self.sent} of {self.total}): {describe_stages(counts)}"
        )

    def summary(self, pipeline_id: str) -> str:
        batches = "batch" if self.batches == 1 else "batches"
        errors = (
            f"{self.events_with_errors} events with errors"
            if self.events_with_errors
            else "no errors"
        )
        return (
            f"replayed {self.sent} events to {pipeline_id} in {self.batches} "
            f"{batches}, {self.seconds:.1f} s: {describe_stages(self.stages)}; "
            f"{errors}"
        )

    def stopped(self, reason: str) -> str:
        if not self.sent:
            return reason
        return f"stopped after {self.sent} of {self.total} events: {reason}"


def parse_event_lines(text: str, source: str) -> list[dict[str, Any]]:
    """The events of a JSON-lines text, one object per line, blank lines
    skipped; any line that is not a JSON object fails the whole file."""
    events: list[dict[str, Any]] = []
    problems: list[str] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line, parse_constant=_refuse_constant)
        except ValueError as error:
            reason = error.msg if isinstance(error, json.JSONDecodeError) else error
            problems.append(f"line {number} is not valid JSON ({reason})")
            continue
        if not isinstance(event, dict):
            problems.append(
                f"line {number} is a JSON {_json_kind(event)}, not an object"
            )
            continue
        events.append(event)

    if problems:
        more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise ReplayFailed(
            f"{source}: {'; '.join(problems[:3])}{more}; nothing was sent"
        )
    if not events:
        raise ReplayFailed(f"{source} holds no events; nothing was sent")
    return events


def replay_batch_size(rate: float | None) -> int:
    """Events per request: as many as the route takes, or one second's worth
    when a rate is set, so the events spread over time."""
    if rate is None:
        return REPLAY_BATCH
    return max(1, min(REPLAY_BATCH, math.floor(rate)))


def replay_events(
    api: AdminApi,
    pipeline_id: str,
    events: list[dict[str, Any]],
    *,
    rate: float | None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    report: Callable[[str], None] = lambda line: print(line, flush=True),
) -> ReplayTally:
    """Post `events` in batches, one after the other. With a `rate`, each
    batch waits until the events before it have had their time at that rate;
    without, the next batch goes as soon as the service has answered."""
    size = replay_batch_size(rate)
    path = f"/pipelines/{quote(pipeline_id, safe='')}/test-events"
    tally = ReplayTally(total=len(events))
    started = clock()

    for first in range(0, len(events), size):
        if rate is not None:
            wait = started + first / rate - clock()
            if wait > 0:
                sleep(wait)
        batch = events[first : first + size]
        try:
            answer = api.post(path, {"events": batch})
        except ApiRefusal as refusal:
            reason = _explain_refusal(refusal, pipeline_id, api.credential)
            raise ReplayFailed(tally.stopped(reason)) from refusal
        except ReplayFailed as failure:
            raise ReplayFailed(tally.stopped(str(failure))) from failure
        counts = tally.add(answer, len(batch))
        report(tally.batch_line(len(batch), counts))

    tally.seconds = clock() - started
    return tally


def sign_in(
    http: httpx.Client,
    *,
    email: str | None,
    token: str | None,
    read_password: Callable[[str], str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> AdminApi:
    """The API as the user of `email`, signed in with a password read now, or
    else as the holder of the access token `token`."""
    if email:
        password = (read_password or _read_password)(email)
        if not password:
            raise ReplayFailed(f"no password given for {email}")
        answer = post_patiently(
            http, "/auth/login", {"email": email, "password": password}, {}, sleep
        )
        if answer.is_error:
            refusal = ApiRefusal.of(answer)
            raise ReplayFailed(f"cannot sign in as {email}: {refusal}")
        pair = _json_of(answer)
        return AdminApi(
            http,
            pair["access_token"],
            refresh_token=pair["refresh_token"],
            credential=f"the session of {email}",
            sleep=sleep,
        )

    token = (token or "").strip().removeprefix("Bearer ").strip()
    if not token:
        raise ReplayFailed(
            f"replay needs credentials: set {TOKEN_VARIABLE} to an access token, "
            "or pass --email to sign in with a password"
        )
    return AdminApi(http, token, sleep=sleep)


def post_patiently(
    http: httpx.Client,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
    sleep: Callable[[float], None] = time.sleep,
) -> httpx.Response:
    """POST `body`; on 429, wait as long as `Retry-After` says and try again,
    a few times at most. Any other answer is the caller's to read."""
    for _ in range(RATE_LIMIT_RETRIES):
        answer = _send(http, path, body, headers)
        if answer.status_code != 429:
            return answer
        wait = _retry_after(answer)
        print(
            f"signal-admin: rate limited; retrying in {wait} s",
            file=sys.stderr,
            flush=True,
        )
        sleep(wait)
    return _send(http, path, body, headers)


def describe_stages(counts: Counter[str]) -> str:
    if not counts:
        return "no stages"
    known = [stage for stage in STAGE_ORDER if counts[stage]]
    others = sorted(stage for stage in counts if stage not in STAGE_ORDER)
    return ", ".join(f"{stage} {counts[stage]}" for stage in [*known, *others])


def _source(path: Path | None) -> tuple[str, str]:
    """The name the messages use for the events' file, and its text; the
    shipped sample when no path is given."""
    if path is None:
        return SAMPLE_FILE, sample_events_text()
    try:
        return str(path), path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ReplayFailed(f"{path} is not UTF-8 text: {error.reason}") from error
    except OSError as error:
        raise ReplayFailed(f"cannot read {path}: {error.strerror}") from error


def _read_password(email: str) -> str:
    """Prompted for on a terminal; otherwise the first line of standard input,
    so scripts can pipe it in."""
    if sys.stdin.isatty():
        return getpass.getpass(f"password for {email}: ")
    return sys.stdin.readline().rstrip("\r\n")


def _send(
    http: httpx.Client, path: str, body: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    try:
        return http.post(path, json=body, headers=headers)
    except httpx.TransportError as error:
        reason = str(error) or type(error).__name__
        raise ReplayFailed(
            f"cannot reach the service at {_root_of(http)}: {reason} "
            "(is `signal-admin serve` running there? see --url)"
        ) from error


def _json_of(answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except ValueError as error:
        raise ReplayFailed(
            f"the service at {answer.request.url} answered {answer.status_code} "
            "with a body that is not JSON"
        ) from error


def _retry_after(answer: httpx.Response) -> int:
    value = answer.headers.get("Retry-After", "")
    return max(1, int(value)) if value.isdigit() else 1


def _explain_refusal(refusal: ApiRefusal, pipeline_id: str, credential: str) -> str:
    if refusal.status == 401:
        return f"{credential} was refused: {refusal}"
    if refusal.status == 403:
        return (
            f"pipeline {pipeline_id}: {refusal} "
            "(sending test events takes the editor role or above)"
        )
    return f"pipeline {pipeline_id}: {refusal}"


def _root_of(http: httpx.Client) -> str:
    url = http.base_url
    return f"{url.scheme}://{url.netloc.decode('ascii')}"


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return "number"
