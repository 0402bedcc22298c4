"""The service as a real process: the README's first steps over real HTTP, and
a clean exit on SIGTERM."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_cli import CommandLine

README_GRAPHQL_QUERY = (
    "{ pipelines(first: 10) { totalCount edges { node { id name pipelineKey "
    "jsBuilderConfig { scriptFilename } } } } }"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self.log = log


@pytest.fixture
def demo(tmp_path: Path) -> tuple[CommandLine, str]:
    cli = CommandLine(tmp_path)
    assert cli.run("migrate").returncode == 0
    seeded = cli.run("seed-demo")
    assert seeded.returncode == 0, seeded.stderr
    password = re.search(r"password\s+(\S+)", seeded.stdout)
    assert password is not None, seeded.stdout
    return cli, password.group(1)


@pytest.fixture
def server(demo: tuple[CommandLine, str]) -> Iterator[Server]:
    cli, _ = demo
    port = free_port()
    log = cli.folder / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "signal_admin.cli", "serve", "--port", str(port)],
            cwd=cli.folder,
            env=cli.env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    running = Server(process, port, log)
    _wait_until_healthy(running)
    yield running
    if process.poll() is None:
        process.kill()
        process.wait()


def _wait_until_healthy(server: Server) -> None:
    for _ in range(200):
        if server.process.poll() is not None:
            pytest.fail(f"serve exited: {server.log.read_text()}")
        try:
            if httpx.get(f"{server.url}/health").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    pytest.fail("serve did not answer /health")


def test_the_readme_walkthrough_works_against_a_real_server(
    server: Server, demo: tuple[CommandLine, str]
) -> None:
    _, password = demo
    api = f"{server.url}/v1/admin"

    login = httpx.post(
        f"{api}/auth/login", json={"email": "demo@example.com", "password": password}
    )
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    created = httpx.post(
        f"{api}/pipelines",
        json={
            "name": "Storefront",
            "type": "web",
            "domain_allowlist": ["shop.example.com"],
        },
        headers=headers,
    )
    listed = httpx.get(f"{api}/pipelines", params={"limit": 10}, headers=headers)
    graph = httpx.post(
        f"{api}/graphql", json={"query": README_GRAPHQL_QUERY}, headers=headers
    )

    assert login.status_code == 200
    assert created.status_code == 201
    assert created.json()["pipeline_key_secret"].startswith("sk_")
    assert [p["name"] for p in listed.json()["data"]] == ["Demo website", "Storefront"]
    assert graph.status_code == 200
    assert graph.json()["data"]["pipelines"]["totalCount"] == 2
    nodes = [edge["node"] for edge in graph.json()["data"]["pipelines"]["edges"]]
    assert [node["name"] for node in nodes] == ["Demo website", "Storefront"]
    assert nodes[1]["pipelineKey"] == created.json()["pipeline_key"]
    assert nodes[1]["jsBuilderConfig"] == {"scriptFilename": "d.js"}


def test_sigterm_stops_the_server_cleanly(server: Server) -> None:
    server.process.send_signal(signal.SIGTERM)

    exit_code = server.process.wait(timeout=30)

    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert exit_code in (0, -signal.SIGTERM)
    assert "Application shutdown complete." in server.log.read_text()
