"""The service as real processes (`signal-admin serve`) on the test database
and Redis, for tests that need real sockets: live streams, two replicas,
shutdown.

The servers share the suite's database, signing key and encryption key, so
an organisation and a signed-in member made by the in-process factories are
valid on them too. Without Redis each server has its own in-process bus, so
events meant for one of its listeners must be sent through that server.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from signal_admin.config import Settings
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_JWT_SECRET

# Settings are read case-insensitively, so a stray variable in any case counts.
_SETTING_NAMES = {name.upper() for name in Settings.model_fields}
_SERVE = (sys.executable, "-m", "signal_admin.cli", "serve")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RunningServer:
    """One `signal-admin serve` process."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.api = f"{self.url}/v1/admin"
        self.ws = f"ws://127.0.0.1:{port}/v1/admin"
        self.log = log

    def wait_until_healthy(self) -> None:
        for _ in range(400):
            if self.process.poll() is not None:
                pytest.fail(f"serve exited: {self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        pytest.fail(f"serve did not answer /health: {self.log.read_text()}")

    def terminate(self) -> int:
        """SIGTERM, then the exit code (waiting at most 30 s)."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class Servers:
    """Starts servers for one test and stops them when it ends."""

    def __init__(self, folder: Path, database_url: str, redis_url: str | None) -> None:
        self.folder = folder
        self.database_url = database_url
        self.redis_url = redis_url
        self._running: list[RunningServer] = []

    def start(self, **settings: object) -> RunningServer:
        """A server on a free port; `settings` override the environment
        (`live_heartbeat_seconds=0.5`)."""
        env = {
            name: value
            for name, value in os.environ.items()
            if name.upper() not in _SETTING_NAMES
        }
        env.update(
            {
                "DATABASE_URL": self.database_url,
                "JWT_SECRET": TEST_JWT_SECRET,
                "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
                "SIGNAL_DATA_DIR": str(self.folder / "data"),
                "RATE_LIMIT_PER_MINUTE": "100000",
                "LOGIN_ATTEMPTS_PER_MINUTE": "100000",
                "LOG_FORMAT": "json",
            }
        )
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        env.update({name.upper(): str(value) for name, value in settings.items()})
        port = free_port()
        log = self.folder / f"serve-{port}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [*_SERVE, "--port", str(port)],
                cwd=self.folder,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        server = RunningServer(process, port, log)
        self._running.append(server)
        server.wait_until_healthy()
        return server

    def stop_all(self) -> None:
        for server in self._running:
            server.stop()


@pytest.fixture
def servers(
    tmp_path: Path, migrated_database: str, redis_url: str | None
) -> Iterator[Servers]:
    started = Servers(tmp_path, migrated_database, redis_url)
    yield started
    started.stop_all()
