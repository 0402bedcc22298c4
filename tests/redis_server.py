"""A private `redis-server` on a free loopback port, for tests that stop and
restart Redis under the service (the shared Redis is never touched).

Nothing is saved to disk, so a restarted server starts empty, as a Redis that
was lost and replaced does.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REDIS_SERVER = shutil.which("redis-server")
NOT_INSTALLED = "redis-server is not installed (Debian package redis-server)"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PrivateRedis:
    """One `redis-server` process that a test may stop and start again on
    the same port."""

    def __init__(self, folder: Path) -> None:
        assert REDIS_SERVER is not None
        self._binary = REDIS_SERVER
        self._folder = folder
        self.port = _free_port()
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        assert not self.running
        log = (self._folder / f"redis-{self.port}.log").open("ab")
        self._process = subprocess.Popen(
            [
                self._binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self._folder),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self._wait_until_up()

    def stop(self) -> None:
        """Stop the server; its clients' connections close."""
        if self._process is None:
            return
        process, self._process = self._process, None
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    def _wait_until_up(self) -> None:
        assert self._process is not None
        for _ in range(500):
            if self._process.poll() is not None:
                pytest.fail(f"redis-server exited with {self._process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.01)
        pytest.fail("redis-server did not accept connections")


@contextmanager
def private_redis(folder: Path) -> Iterator[PrivateRedis]:
    """A started private Redis, stopped when the block ends; the test is
    skipped when `redis-server` is not installed."""
    if REDIS_SERVER is None:
        pytest.skip(NOT_INSTALLED)
    server = PrivateRedis(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A private Redis for this test (see `private_redis`)."""
    with private_redis(tmp_path) as server:
        yield server
