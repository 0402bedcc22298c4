"""`signal-admin replay` without a server: reading the lines, cutting them into
batches, pacing them at a rate, signing in, and what each answer of the
service makes of the run. A fake transport stands in for the service."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from signal_admin.cli import main
from signal_admin.replay import (
    AdminApi,
    ReplayFailed,
    parse_event_lines,
    replay_batch_size,
    replay_events,
    sign_in,
)

BASE_URL = "http://127.0.0.1:8084/v1/admin"
PIPELINE = "pip_01JREPLAY"
TEST_EVENTS = f"/v1/admin/pipelines/{PIPELINE}/test-events"


def page_view(number: int) -> dict[str, Any]:
    return {"type": "page", "anonymousId": f"visitor-{number}"}


def refusal(status: int, code: str, message: str, **headers: str) -> httpx.Response:
    body = {"error": {"code": code, "message": message}}
    return httpx.Response(status, json=body, headers=headers)


class FakeService:
    """Answers like the service: a token pair for the right password, and for
    each test event a result with `stages`. Answers put in `queued` go first,
    whatever was asked."""

    def __init__(self, stages: tuple[str, ...] = ("received", "processed")) -> None:
        self.stages = stages
        self.queued: list[httpx.Response] = []
        self.requests: list[httpx.Request] = []
        self.issued = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.queued:
            return self.queued.pop(0)
        path = request.url.path
        if path.endswith(("/auth/login", "/auth/refresh")):
            return self._token_pair(request)
        if path.endswith("/auth/logout"):
            return httpx.Response(204)
        events = json.loads(request.content)["events"]
        results = [
            {
                "message_id": f"msg-{number}",
                "stages": [{"stage": stage} for stage in self.stages],
            }
            for number, _ in enumerate(events)
        ]
        return httpx.Response(200, json={"results": results})

    def batches(self) -> list[int]:
        return [
            len(json.loads(request.content)["events"])
            for request in self.requests
            if request.url.path == TEST_EVENTS
        ]

    def to(self, path_end: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path.endswith(path_end)]

    def _token_pair(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if body.get("password", "right") != "right":
            return refusal(
                401, "INVALID_CREDENTIALS", "The email or password is incorrect."
            )
        self.issued += 1
        pair = {
            "access_token": f"access-{self.issued}",
            "refresh_token": f"refresh-{self.issued}",
            "token_type": "Bearer",
            "expires_in": 900,
        }
        return httpx.Response(200, json=pair)


class FakeClock:
    """Time that passes only when the replay sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def service() -> FakeService:
    return FakeService()


@pytest.fixture
def http(service: FakeService) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(service), base_url=BASE_URL)


def replay(
    http: httpx.Client,
    events: list[dict[str, Any]],
    *,
    rate: float | None = None,
    clock: FakeClock | None = None,
    lines: list[str] | None = None,
) -> Any:
    clock = clock or FakeClock()
    api = AdminApi(http, "a-token", sleep=clock.sleep)
    return replay_events(
        api,
        PIPELINE,
        events,
        rate=rate,
        clock=clock,
        sleep=clock.sleep,
        report=(lines if lines is not None else []).append,
    )


class TestParseEventLines:
    def test_blank_lines_are_skipped(self) -> None:
        text = '{"type": "page"}\n\n   \n{"type": "identify"}\n'

        events = parse_event_lines(text, "events.jsonl")

        assert events == [{"type": "page"}, {"type": "identify"}]

    def test_a_line_that_is_not_json_is_named_by_its_number(self) -> None:
        text = '{"type": "page"}\n\n{"type": "page",\n'

        with pytest.raises(ReplayFailed) as failure:
            parse_event_lines(text, "events.jsonl")

        message = str(failure.value)
        assert message.startswith("events.jsonl: line 3 is not valid JSON")
        assert message.endswith("nothing was sent")

    def test_a_line_that_is_not_an_object_is_named_with_its_kind(self) -> None:
        with pytest.raises(ReplayFailed) as failure:
            parse_event_lines('{"type": "page"}\n[1, 2]\n', "events.jsonl")

        assert "line 2 is a JSON list, not an object" in str(failure.value)

    def test_every_bad_line_is_named_at_once(self) -> None:
        text = '"page"\n{"type": "page"}\nnull\n'

        with pytest.raises(ReplayFailed) as failure:
            parse_event_lines(text, "events.jsonl")

        message = str(failure.value)
        assert "line 1 is a JSON string" in message
        assert "line 3 is a JSON null" in message

    def test_nan_is_not_json(self) -> None:
        with pytest.raises(ReplayFailed) as failure:
            parse_event_lines('{"properties": {"revenue": NaN}}', "events.jsonl")

        assert "line 1 is not valid JSON (NaN is not a JSON number)" in str(
            failure.value
        )

    def test_a_line_separator_inside_a_string_stays_in_its_event(self) -> None:
        text = '{"name": "one\u2028two"}\n{"name": "three"}\n'

        events = parse_event_lines(text, "events.jsonl")

        assert [event["name"] for event in events] == ["one\u2028two", "three"]

    def test_a_file_without_events_is_refused(self) -> None:
        with pytest.raises(ReplayFailed) as failure:
            parse_event_lines("\n\n", "empty.jsonl")

        assert str(failure.value) == "empty.jsonl holds no events; nothing was sent"


@pytest.mark.parametrize(
    ("rate", "size"),
    [(None, 100), (1000.0, 100), (100.0, 100), (25.0, 25), (2.5, 2), (0.2, 1)],
)
def test_a_batch_holds_one_seconds_worth_of_events_at_most_100(
    rate: float | None, size: int
) -> None:
    assert replay_batch_size(rate) == size


class TestReplayEvents:
    def test_250_events_go_in_three_requests(
        self, http: httpx.Client, service: FakeService
    ) -> None:
        lines: list[str] = []

        tally = replay(http, [page_view(n) for n in range(250)], lines=lines)

        assert service.batches() == [100, 100, 50]
        assert tally.sent == 250
        assert tally.stages == Counter(received=250, processed=250)
        assert lines == [
            "batch 1: 100 events sent (100 of 250): received 100, processed 100",
            "batch 2: 100 events sent (200 of 250): received 100, processed 100",
            "batch 3: 50 events sent (250 of 250): received 50, processed 50",
        ]

    def test_the_summary_sums_the_stages_and_counts_events_with_errors(
        self, http: httpx.Client, service: FakeService
    ) -> None:
        service.stages = ("received", "processed", "transformed", "error")

        tally = replay(http, [page_view(n) for n in range(3)])

        assert tally.summary(PIPELINE) == (
            f"replayed 3 events to {PIPELINE} in 1 batch, 0.0 s: received 3, "
            "processed 3, transformed 3, error 3; 3 events with errors"
        )

    def test_without_a_rate_nothing_waits(self, http: httpx.Client) -> None:
        clock = FakeClock()

        replay(http, [page_view(n) for n in range(250)], clock=clock)

        assert clock.sleeps == []

    def test_with_a_rate_each_batch_waits_for_its_turn(
        self, http: httpx.Client, service: FakeService
    ) -> None:
        clock = FakeClock()

        tally = replay(http, [page_view(n) for n in range(50)], rate=20, clock=clock)

        assert service.batches() == [20, 20, 10]
        assert clock.sleeps == [1.0, 1.0]
        assert tally.seconds == 2.0

    def test_a_slow_answer_counts_towards_the_wait(self, service: FakeService) -> None:
        clock = FakeClock()

        def slow(request: httpx.Request) -> httpx.Response:
            clock.now += 0.75
            return service(request)

        http = httpx.Client(transport=httpx.MockTransport(slow), base_url=BASE_URL)

        replay(http, [page_view(n) for n in range(30)], rate=10, clock=clock)

        assert clock.sleeps == [0.25, 0.25]

    def test_a_429_waits_as_long_as_retry_after_says_and_tries_again(
        self, http: httpx.Client, service: FakeService
    ) -> None:
        clock = FakeClock()
        service.queued = [
            refusal(
                429, "RATE_LIMITED", "Retry after 7 seconds.", **{"Retry-After": "7"}
            )
        ]

        tally = replay(http, [page_view(n) for n in range(5)], clock=clock)

        assert clock.sleeps == [7]
        assert service.batches() == [5, 5]
        assert tally.sent == 5

    def test_a_429_that_does_not_pass_stops_the_replay(
        self, http: httpx.Client, service: FakeService
    ) -> None:
        limited = refusal(429, "RATE_LIMITED", "Retry after 1 seconds.")
        service.queued = [limited] * 6

        with pytest.raises(ReplayFailed) as failure:
            replay(http, [page_view(1)])

        assert "429 RATE_LIMITED" in str(failure.value)
        assert len(service.batches()) == 6

    @pytest.mark.parametrize(
        ("answer", "expected"),
        [
            (
                refusal(401, "INVALID_TOKEN", "The token is invalid."),
                "SIGNAL_TOKEN was refused: 401 INVALID_TOKEN: The token is invalid.",
            ),
            (
                refusal(403, "FORBIDDEN", "You are not allowed to do this."),
                f"pipeline {PIPELINE}: 403 FORBIDDEN: You are not allowed to do "
                "this. (sending test events takes the editor role or above)",
            ),
            (
                refusal(404, "NOT_FOUND", f"Pipeline {PIPELINE} was not found."),
                f"pipeline {PIPELINE}: 404 NOT_FOUND: "
                f"Pipeline {PIPELINE} was not found.",
            ),
            (
                httpx.Response(
                    422,
                    json={
                        "error": {
                            "code": "VALIDATION_ERROR",
                            "message": "The input is invalid.",
                            "details": [
                                {
                                    "field": "events",
                                    "code": "TOO_LONG",
                                    "message": "At most 100 events.",
                                }
                            ],
                        }
                    },
                ),
                f"pipeline {PIPELINE}: 422 VALIDATION_ERROR: The input is invalid. "
                "events: At most 100 events.",
            ),
        ],
    )
    def test_a_refusal_stops_the_replay_with_the_services_message(
        self,
        http: httpx.Client,
        service: FakeService,
        answer: httpx.Response,
        expected: str,
    ) -> None:
        service.queued = [answer]

        with pytest.raises(ReplayFailed) as failure:
            replay(http, [page_view(n) for n in range(150)])

        assert str(failure.value) == expected
        assert service.batches() == [100]

    def test_a_refusal_after_some_batches_says_how_far_the_replay_got(
        self, service: FakeService
    ) -> None:
        def forbid_second(request: httpx.Request) -> httpx.Response:
            if len(service.requests) == 1:
                return refusal(403, "FORBIDDEN", "You are not allowed to do this.")
            return service(request)

        http = httpx.Client(
            transport=httpx.MockTransport(forbid_second), base_url=BASE_URL
        )

        with pytest.raises(ReplayFailed) as failure:
            replay(http, [page_view(n) for n in range(150)])

        assert str(failure.value).startswith(
            f"stopped after 100 of 150 events: pipeline {PIPELINE}: 403 FORBIDDEN"
        )

    def test_an_unreachable_service_is_one_line(self) -> None:
        def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("[Errno 111] Connection refused")

        http = httpx.Client(transport=httpx.MockTransport(refuse), base_url=BASE_URL)

        with pytest.raises(ReplayFailed) as failure:
            replay(http, [page_view(1)])

        assert str(failure.value).startswith(
            "cannot reach the service at http://127.0.0.1:8084: "
            "[Errno 111] Connection refused"
        )

    def test_an_answer_without_results_is_refused(
        self, http: httpx.Client, service: FakeService
    ) -> None:
        service.queued = [httpx.Response(200, json={"data": []})]

        with pytest.raises(ReplayFailed) as failure:
            replay(http, [page_view(1)])

        assert "without `results`" in str(failure.value)

    def test_the_pipeline_id_stays_one_path_segment(
        self, http: httpx.Client, service: FakeService
    ) -> None:
        api = AdminApi(http, "a-token")

        replay_events(api, "../me", [page_view(1)], rate=None, report=print)

        assert service.requests[0].url.raw_path == (
            b"/v1/admin/pipelines/..%2Fme/test-events"
        )


class TestSignIn:
    def test_signal_token_is_sent_as_the_bearer_token(
        self, http: httpx.Client, service: FakeService
    ) -> None:
        api = sign_in(http, email=None, token=" Bearer tok-123\n")

        replay_events(api, PIPELINE, [page_view(1)], rate=None, report=print)

        assert service.requests[0].headers["Authorization"] == "Bearer tok-123"

    def test_no_token_and_no_email_is_refused(self, http: httpx.Client) -> None:
        with pytest.raises(ReplayFailed) as failure:
            sign_in(http, email=None, token="")

        assert "set SIGNAL_TOKEN to an access token, or pass --email" in str(
            failure.value
        )

    def test_email_signs_in_with_the_password_read_and_uses_its_token(
        self, http: httpx.Client, service: FakeService
    ) -> None:
        api = sign_in(
            http,
            email="editor@example.com",
            token="ignored-when-an-email-is-given",
            read_password=lambda email: "right",
        )
        replay_events(api, PIPELINE, [page_view(1)], rate=None, report=print)
        api.sign_out()

        (login,) = service.to("/auth/login")
        assert json.loads(login.content) == {
            "email": "editor@example.com",
            "password": "right",
        }
        (sent,) = service.to("/test-events")
        assert sent.headers["Authorization"] == "Bearer access-1"
        (logout,) = service.to("/auth/logout")
        assert json.loads(logout.content) == {"refresh_token": "refresh-1"}

    def test_a_wrong_password_names_the_email(self, http: httpx.Client) -> None:
        with pytest.raises(ReplayFailed) as failure:
            sign_in(
                http,
                email="editor@example.com",
                token=None,
                read_password=lambda email: "wrong",
            )

        assert str(failure.value) == (
            "cannot sign in as editor@example.com: 401 INVALID_CREDENTIALS: "
            "The email or password is incorrect."
        )

    def test_an_empty_password_is_not_sent(
        self, http: httpx.Client, service: FakeService
    ) -> None:
        with pytest.raises(ReplayFailed):
            sign_in(
                http,
                email="editor@example.com",
                token=None,
                read_password=lambda email: "",
            )

        assert service.requests == []

    def test_an_expired_session_is_renewed_and_the_batch_sent_again(
        self, http: httpx.Client, service: FakeService
    ) -> None:
        api = sign_in(
            http,
            email="editor@example.com",
            token=None,
            read_password=lambda e: "right",
        )
        service.queued = [refusal(401, "EXPIRED_TOKEN", "The token has expired.")]

        tally = replay_events(api, PIPELINE, [page_view(1)], rate=None, report=print)

        assert tally.sent == 1
        (refresh,) = service.to("/auth/refresh")
        assert json.loads(refresh.content) == {"refresh_token": "refresh-1"}
        assert service.to("/test-events")[-1].headers["Authorization"] == (
            "Bearer access-2"
        )

    def test_an_expired_signal_token_is_not_renewed(
        self, http: httpx.Client, service: FakeService
    ) -> None:
        api = sign_in(http, email=None, token="old-token")
        service.queued = [refusal(401, "EXPIRED_TOKEN", "The token has expired.")]

        with pytest.raises(ReplayFailed) as failure:
            replay_events(api, PIPELINE, [page_view(1)], rate=None, report=print)

        assert "SIGNAL_TOKEN was refused: 401 EXPIRED_TOKEN" in str(failure.value)
        assert service.to("/auth/refresh") == []


class TestCommandLine:
    @pytest.mark.parametrize(
        "arguments",
        [
            ["replay", "events.jsonl", "--sample", "--pipeline", PIPELINE],
            ["replay", "--pipeline", PIPELINE],
            ["replay", "--sample", "--pipeline", PIPELINE, "--rate", "0"],
            ["replay", "--sample", "--pipeline", PIPELINE, "--rate", "nan"],
            ["replay", "--sample", "--pipeline", PIPELINE, "--url", "ftp://host"],
            ["replay", "--sample"],
        ],
    )
    def test_a_malformed_replay_command_line_exits_with_status_2(
        self, arguments: list[str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        with pytest.raises(SystemExit) as exited:
            main(arguments)

        assert exited.value.code == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1

    def test_a_bad_line_fails_before_credentials_are_needed(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        monkeypatch.delenv("SIGNAL_TOKEN", raising=False)
        events = tmp_path / "events.jsonl"
        events.write_text('{"type": "page"}\nnot json\n')

        with pytest.raises(SystemExit) as exited:
            main(["replay", str(events), "--pipeline", PIPELINE])

        assert exited.value.code == 1
        error = capsys.readouterr().err
        assert error.startswith(f"signal-admin: {events}: line 2 is not valid JSON")
