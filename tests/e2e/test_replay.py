"""`signal-admin replay` as a user runs it: a separate process posting events
to a real server on loopback, signed in with SIGNAL_TOKEN or with an email and
a password piped in, and stopped in one line by whatever the server refuses.

One server serves the module; each test opens its own organisation in it."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from signal_admin.processing.samples import sample_events
from tests.e2e.test_cli import CommandLine, assert_failed_in_one_line
from tests.e2e.test_serve import free_port

PASSWORD = "a long enough password"
# Every test signs in from the one loopback address: keep the limits out of
# the way. How replay waits on 429 is covered by the unit tests.
GENEROUS_LIMITS = {
    "RATE_LIMIT_PER_MINUTE": "100000",
    "LOGIN_ATTEMPTS_PER_MINUTE": "100000",
}
UNKNOWN_PIPELINE = "pip_01J00000000000000000000000"
REQUESTS_METRIC = "signal_admin_http_requests_total{"
_shop_numbers = itertools.count(1)


@dataclass
class Server:
    """`signal-admin serve` running in its own folder, and the command line
    that works on the same database."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path
    cli: CommandLine


@dataclass
class Shop:
    """An organisation of its own, with a pipeline and its owner signed in."""

    number: int
    org_id: str
    owner_token: str
    pipeline_id: str

    def email(self, role: str) -> str:
        return f"{role}-{self.number}@example.com"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    cli = CommandLine(tmp_path_factory.mktemp("replay"))
    cli.env.update(GENEROUS_LIMITS)
    migrated = cli.run("migrate")
    assert migrated.returncode == 0, migrated.stderr
    port = free_port()
    log = cli.folder / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "signal_admin.cli", "serve", "--port", str(port)],
            cwd=cli.folder,
            env={**cli.env, "HOST": "127.0.0.1"},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    running = Server(process, f"http://127.0.0.1:{port}", log, cli)
    try:
        _wait_until_healthy(running)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def shop(server: Server) -> Shop:
    number = next(_shop_numbers)
    owner = f"owner-{number}@example.com"
    created = server.cli.run(
        "create-org",
        "--name",
        f"Replay shop {number}",
        "--owner-email",
        owner,
        "--owner-password",
        PASSWORD,
        "--json",
    )
    assert created.returncode == 0, created.stderr
    token = _sign_in(server, owner)
    pipeline = httpx.post(
        f"{server.url}/v1/admin/pipelines",
        json={
            "name": "Storefront",
            "type": "web",
            "domain_allowlist": ["shop.example.com"],
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert pipeline.status_code == 201, pipeline.text
    return Shop(
        number, json.loads(created.stdout)["org_id"], token, pipeline.json()["id"]
    )


def add_member(server: Server, shop: Shop, role: str) -> str:
    """A user of `role` in the shop; answers their email."""
    email = shop.email(role)
    added = server.cli.run(
        "create-user",
        "--org",
        shop.org_id,
        "--email",
        email,
        "--role",
        role,
        "--password",
        PASSWORD,
    )
    assert added.returncode == 0, added.stderr
    return email


def replay(
    server: Server,
    *arguments: str,
    token: str | None = None,
    stdin: str = "",
    url: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `signal-admin replay` against the server (or `url`), with
    SIGNAL_TOKEN set only when `token` is given, and `stdin` piped in."""
    cli = server.cli
    env = {name: value for name, value in cli.env.items() if name != "SIGNAL_TOKEN"}
    if token is not None:
        env["SIGNAL_TOKEN"] = token
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "signal_admin.cli",
            "replay",
            *arguments,
            "--url",
            url or server.url,
        ],
        cwd=cli.folder,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        # No controlling terminal: the password can only come from stdin.
        start_new_session=True,
    )


def write_events(folder: Path, count: int) -> Path:
    path = folder / f"{count}-events.jsonl"
    lines = [
        json.dumps(
            {
                "type": "page",
                "anonymousId": f"visitor-{number}",
                "context": {"page": {"url": f"https://shop.example.com/{number}"}},
            }
        )
        for number in range(count)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def posts_to_test_events(server: Server) -> int:
    """POST requests the server has answered on a test-events route so far."""
    metrics = httpx.get(f"{server.url}/metrics").text
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in metrics.splitlines()
        if line.startswith(REQUESTS_METRIC)
        and 'method="POST"' in line
        and "test-events" in line
    )


def test_replay_sends_the_sample_events_with_signal_token(
    server: Server, shop: Shop
) -> None:
    count = len(sample_events())

    result = replay(
        server, "--sample", "--pipeline", shop.pipeline_id, token=shop.owner_token
    )

    assert result.returncode == 0, result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith(f"replayed {count} events to {shop.pipeline_id} ")
    assert f"received {count}" in summary


def test_replay_signs_in_with_email_and_a_piped_password(
    server: Server, shop: Shop, tmp_path: Path
) -> None:
    editor = add_member(server, shop, "editor")
    events = write_events(tmp_path, 3)

    result = replay(
        server,
        str(events),
        "--pipeline",
        shop.pipeline_id,
        "--email",
        editor,
        stdin=f"{PASSWORD}\n",
    )

    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.strip()
        .splitlines()[-1]
        .startswith(f"replayed 3 events to {shop.pipeline_id} in 1 batch")
    )


def test_a_wrong_password_fails_in_one_line_naming_the_email(
    server: Server, shop: Shop
) -> None:
    editor = add_member(server, shop, "editor")

    result = replay(
        server,
        "--sample",
        "--pipeline",
        shop.pipeline_id,
        "--email",
        editor,
        stdin="not the password\n",
    )

    reason = assert_failed_in_one_line(result)
    assert f"cannot sign in as {editor}: 401 INVALID_CREDENTIALS" in reason
    assert result.stdout == ""


def test_a_bad_token_fails_with_the_servers_message(server: Server, shop: Shop) -> None:
    result = replay(
        server, "--sample", "--pipeline", shop.pipeline_id, token="not-a-token"
    )

    reason = assert_failed_in_one_line(result)
    assert "SIGNAL_TOKEN was refused: 401 " in reason
    assert result.stdout == ""


def test_an_unknown_pipeline_fails_with_404(server: Server, shop: Shop) -> None:
    result = replay(
        server, "--sample", "--pipeline", UNKNOWN_PIPELINE, token=shop.owner_token
    )

    reason = assert_failed_in_one_line(result)
    assert f"pipeline {UNKNOWN_PIPELINE}: 404 NOT_FOUND: " in reason
    assert result.stdout == ""


def test_a_viewer_is_refused_with_403(server: Server, shop: Shop) -> None:
    viewer = _sign_in(server, add_member(server, shop, "viewer"))

    result = replay(server, "--sample", "--pipeline", shop.pipeline_id, token=viewer)

    reason = assert_failed_in_one_line(result)
    assert f"pipeline {shop.pipeline_id}: 403 FORBIDDEN: " in reason
    assert result.stdout == ""


def test_a_bad_line_fails_naming_it_and_sends_nothing(
    server: Server, shop: Shop, tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('{"type": "page", "anonymousId": "a"}\n\n{"type": "page",\n')
    before = posts_to_test_events(server)

    result = replay(
        server, str(events), "--pipeline", shop.pipeline_id, token=shop.owner_token
    )

    reason = assert_failed_in_one_line(result)
    assert f"{events}: line 3 is not valid JSON" in reason
    assert reason.endswith("nothing was sent")
    assert result.stdout == ""
    assert posts_to_test_events(server) == before


def test_250_events_go_in_3_requests(
    server: Server, shop: Shop, tmp_path: Path
) -> None:
    events = write_events(tmp_path, 250)
    before = posts_to_test_events(server)

    result = replay(
        server, str(events), "--pipeline", shop.pipeline_id, token=shop.owner_token
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == [
        "batch 1",
        "batch 2",
        "batch 3",
    ]
    assert "(250 of 250)" in lines[2]
    assert lines[-1].startswith(f"replayed 250 events to {shop.pipeline_id} in 3 ")
    assert "received 250" in lines[-1]
    assert posts_to_test_events(server) - before == 3


def test_a_service_that_is_not_running_fails_in_one_line(
    server: Server, shop: Shop
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"

    result = replay(
        server,
        "--sample",
        "--pipeline",
        shop.pipeline_id,
        url=nowhere,
        token=shop.owner_token,
    )

    reason = assert_failed_in_one_line(result)
    assert f"cannot reach the service at {nowhere}" in reason


def _sign_in(server: Server, email: str) -> str:
    answer = httpx.post(
        f"{server.url}/v1/admin/auth/login",
        json={"email": email, "password": PASSWORD},
    )
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def _wait_until_healthy(server: Server) -> None:
    for _ in range(400):
        if server.process.poll() is not None:
            pytest.fail(f"serve exited: {server.log.read_text()}")
        try:
            if httpx.get(f"{server.url}/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail("serve did not answer /health")
