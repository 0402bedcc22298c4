"""The collector script's routes: serving a built script, and building one.

    .venv/bin/python -m bench.collector                 # about two minutes
    .venv/bin/python -m bench.collector --duration 5    # quicker, noisier
    .venv/bin/python -m bench.collector --sqlite        # embedded mode

The service runs as one process on loopback with production settings (one
worker, a rate limit charged on every call but too high to refuse any), on
PostgreSQL and Redis, or with `--sqlite` in embedded mode: a SQLite file in a
temporary folder and no Redis. Through the REST API the run creates a web
pipeline with two client-side integrations attached (GA4 and TikTok templates
whose revision delivers from the browser) and builds its collector.

wrk, a separate process, then loads `GET /collector/{pipeline_key}/d.js` three
ways: taking gzip, taking only the identity encoding, and revalidating a gzip
copy with its ETag in `If-None-Match` (a 304). Before the load each way is
asked once and its answer checked: status, encoding, and the script's sha256.

Last, the builds: `--builds` sequential `POST .../collector/builds`, timed by
the client, for that pipeline and for one with a larger config (20
cross-domain domains and 20 default consent categories, the same two
integrations), each after a few builds left out as warm-up.

Needs wrk (Debian package `wrk`).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import redis

from bench.options import add_service_options
from bench.run import (
    VENV_BIN,
    Settings,
    cli,
    log,
    process,
    recreate_database,
    service_environment,
)
from bench.seed import _call, login
from bench.test_events import service_cpu_seconds

SERVICE_PORT = 8197
OWNER_EMAIL = "bench-collector@example.com"
WARMUP_BUILDS = 10

# Templates whose first revision runs in the browser, so the build lists them.
CLIENT_SIDE_TEMPLATES = (
    ("ga4", {"measurement_id": "G-BENCH00001"}, "client_side"),
    ("tiktok", {"pixel_code": "CBENCH0000000000001"}, "hybrid"),
)
LARGE_DOMAINS = [f"store-{number:02d}.brand-example.com" for number in range(20)]
LARGE_CATEGORIES = [f"purpose_{number:02d}" for number in range(20)]
LARGE_SETTINGS: dict[str, Any] = {
    "identity_config": {
        "cross_domain_enabled": True,
        "cross_domain_domains": LARGE_DOMAINS,
    },
    "config": {"consent": {"enabled": True, "default_categories": LARGE_CATEGORIES}},
}

# Prints the run's figures as one JSON line, bytes read included.
WRK_REPORT = """
done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"status_errors":%d,' ..
    '"socket_errors":%d,"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, summary.bytes, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True, slots=True)
class Options:
    settings: Settings
    builds: int
    embedded: bool


@dataclass(frozen=True, slots=True)
class Request:
    """One way of asking for the published script, and what it must answer."""

    name: str
    headers: dict[str, str]
    status: int
    encoding: str | None


@dataclass(frozen=True, slots=True)
class ServeRow:
    request: Request
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    body_bytes: int
    wire_bytes: float
    failed: int
    cpu_ms: float


@dataclass(frozen=True, slots=True)
class BuildRow:
    pipeline: str
    builds: int
    builds_per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    size_bytes: int
    gzip_size_bytes: int


@dataclass(frozen=True, slots=True)
class World:
    token: str
    pipeline_ids: dict[str, str]
    script_url: str
    sha256: str


# Set-up -----------------------------------------------------------------------


async def create_world(base: str, email: str, password: str) -> World:
    """The two pipelines, each with both client-side templates attached, and
    one build of the small one; answer what the load needs."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        token = await login(client, email, password)
        client.headers["Authorization"] = f"Bearer {token}"

        template_ids = []
        for vendor, config, delivery_mode in CLIENT_SIDE_TEMPLATES:
            created = await _call(
                client,
                "POST",
                "/integration-templates",
                json={
                    "name": f"{vendor} in the browser (bench)",
                    "vendor": vendor,
                    "config": config,
                    "delivery_mode": delivery_mode,
                },
            )
            template_ids.append(created["template"]["id"])

        pipeline_ids = {}
        for name, settings in (
            ("default settings", {}),
            ("20 domains, 20 consent categories", LARGE_SETTINGS),
        ):
            pipeline = await _call(
                client,
                "POST",
                "/pipelines",
                json={"name": f"Collector ({name})", "type": "web", **settings},
            )
            for template_id in template_ids:
                await _call(
                    client,
                    "POST",
                    f"/pipelines/{pipeline['id']}/integrations",
                    json={"integration_id": template_id},
                )
            pipeline_ids[name] = pipeline["id"]

        build = await _call(
            client,
            "POST",
            f"/pipelines/{pipeline_ids['default settings']}/collector/builds",
        )
    if sorted(build["vendors"]) != sorted(v for v, _, _ in CLIENT_SIDE_TEMPLATES):
        sys.exit(f"the build lists vendors {build['vendors']}")
    return World(
        token=token,
        pipeline_ids=pipeline_ids,
        script_url=(
            f"{base}/collector/{build['pipeline_key']}/{build['script_filename']}"
        ),
        sha256=build["sha256"],
    )


def requests_for(world: World) -> list[Request]:
    return [
        Request("gzip", {"Accept-Encoding": "gzip"}, 200, "gzip"),
        Request("identity", {"Accept-Encoding": "identity"}, 200, None),
        Request(
            "revalidation (304)",
            {"Accept-Encoding": "gzip", "If-None-Match": f'"{world.sha256}-gzip"'},
            304,
            "gzip",
        ),
    ]


def check_answer(world: World, request: Request) -> int:
    """Fail loudly unless the route answers `request` as it must; answer the
    body's size as sent."""
    with httpx.Client(timeout=30) as client:
        response = client.get(world.script_url, headers=request.headers)
        body = response.content

    if response.status_code != request.status:
        sys.exit(f"{request.name}: {response.status_code} {response.text[:200]}")
    if response.headers.get("content-encoding") != request.encoding:
        sys.exit(f"{request.name}: encoded {response.headers.get('content-encoding')}")
    if request.status == 200 and hashlib.sha256(body).hexdigest() != world.sha256:
        sys.exit(f"{request.name}: the script is not the build's")
    return response.num_bytes_downloaded


# Load -------------------------------------------------------------------------


def wrk(
    url: str, headers: dict[str, str], connections: int, seconds: int, script: Path
) -> dict[str, int]:
    header_options = [
        option
        for name, value in headers.items()
        for option in ("--header", f"{name}: {value}")
    ]
    done = subprocess.run(
        [
            "wrk",
            "--threads",
            "1",
            "--connections",
            str(connections),
            "--duration",
            f"{seconds}s",
            "--timeout",
            "10s",
            "--script",
            str(script),
            *header_options,
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    report: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def measure_serving(world: World, settings: Settings, workdir: Path) -> list[ServeRow]:
    script = workdir / "report.lua"
    script.write_text(WRK_REPORT)
    rows = []
    for request in requests_for(world):
        body_bytes = check_answer(world, request)
        for connections in settings.connections:
            wrk(world.script_url, request.headers, connections, settings.warmup, script)
            cpu_before = service_cpu_seconds()
            report = wrk(
                world.script_url,
                request.headers,
                connections,
                settings.duration,
                script,
            )
            cpu_seconds = service_cpu_seconds() - cpu_before

            answers = max(report["requests"], 1)
            row = ServeRow(
                request=request,
                connections=connections,
                rps=report["requests"] / (report["duration_us"] / 1e6),
                p50_ms=report["p50_us"] / 1000,
                p99_ms=report["p99_us"] / 1000,
                body_bytes=body_bytes,
                wire_bytes=report["bytes"] / answers,
                failed=report["status_errors"] + report["socket_errors"],
                cpu_ms=cpu_seconds * 1000 / answers,
            )
            log(
                f"{request.name} c={connections}: {row.rps:,.0f} req/s, "
                f"p50 {row.p50_ms:.2f} ms"
            )
            rows.append(row)
    return rows


def measure_builds(base: str, world: World, builds: int) -> list[BuildRow]:
    rows = []
    with httpx.Client(
        base_url=base,
        headers={"Authorization": f"Bearer {world.token}"},
        timeout=30,
    ) as client:
        for name, pipeline_id in world.pipeline_ids.items():
            url = f"/v1/admin/pipelines/{pipeline_id}/collector/builds"
            for _ in range(WARMUP_BUILDS):
                build(client, url)
            row = time_builds(client, url, name, builds)
            log(
                f"builds, {name}: {row.builds_per_second:.1f}/s, "
                f"p50 {row.p50_ms:.1f} ms"
            )
            rows.append(row)
    return rows


def build(client: httpx.Client, url: str) -> dict[str, Any]:
    response = client.post(url)
    if response.status_code != 201:
        sys.exit(f"build: {response.status_code} {response.text[:300]}")
    made: dict[str, Any] = response.json()
    return made


def time_builds(client: httpx.Client, url: str, name: str, builds: int) -> BuildRow:
    durations = []
    started = time.perf_counter()
    for _ in range(builds):
        before = time.perf_counter()
        made = build(client, url)
        durations.append((time.perf_counter() - before) * 1000)
    elapsed = time.perf_counter() - started

    durations.sort()
    return BuildRow(
        pipeline=name,
        builds=builds,
        builds_per_second=builds / elapsed,
        p50_ms=percentile(durations, 50),
        p99_ms=percentile(durations, 99),
        max_ms=durations[-1],
        size_bytes=made["size_bytes"],
        gzip_size_bytes=made["gzip_size_bytes"],
    )


def percentile(ordered: Sequence[float], rank: float) -> float:
    """The nearest-rank percentile of values already in order."""
    index = max(0, min(len(ordered) - 1, round(rank / 100 * len(ordered)) - 1))
    return ordered[index]


# Report -----------------------------------------------------------------------


def serving_table(rows: list[ServeRow]) -> str:
    lines = [
        "| `GET /collector/{key}/d.js` | connections | req/s | p50 ms | p99 ms "
        "| body bytes | bytes/answer on the wire | service CPU ms/answer | failed |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row.request.name} | {row.connections} | {row.rps:,.0f} "
            f"| {row.p50_ms:.2f} | {row.p99_ms:.2f} | {row.body_bytes:,} "
            f"| {row.wire_bytes:,.0f} | {row.cpu_ms:.2f} | {row.failed} |"
        )
    return "\n".join(lines)


def builds_table(rows: list[BuildRow]) -> str:
    lines = [
        "| `POST …/collector/builds`, sequential | builds | builds/s | p50 ms "
        "| p99 ms | max ms | script bytes | gzipped |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row.pipeline} | {row.builds} | {row.builds_per_second:.1f} "
            f"| {row.p50_ms:.1f} | {row.p99_ms:.1f} | {row.max_ms:.1f} "
            f"| {row.size_bytes:,} | {row.gzip_size_bytes:,} |"
        )
    return "\n".join(lines)


def machine(options: Options) -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    if options.embedded:
        stores = f"SQLite {sqlite3.sqlite_version}, no Redis"
    else:
        redis_info = redis.Redis.from_url(options.settings.redis_url).info()
        stores = (
            f"PostgreSQL {asyncio.run(postgresql_version(options.settings))}, "
            f"Redis {redis_info['redis_version']}"
        )
    wrk_banner = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    return (
        f"{cpu} ({os.cpu_count()} cores), {memory_kib // 2**20} GiB; "
        f"Python {platform.python_version()}, {stores}, "
        f"{wrk_banner.stdout.split('[')[0].strip()}"
    )


async def postgresql_version(settings: Settings) -> str:
    connection = await asyncpg.connect(settings.admin_dsn)
    try:
        version: str = await connection.fetchval("SHOW server_version")
    finally:
        await connection.close()
    return version.split()[0]


# The run ------------------------------------------------------------------------


def environment_for(options: Options, workdir: Path) -> dict[str, str]:
    """Production settings on PostgreSQL and Redis, or, embedded, on a SQLite
    file with neither Redis nor the PostgreSQL database."""
    environment = service_environment(options.settings, str(workdir / "data"))
    if options.embedded:
        environment["DATABASE_URL"] = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
        del environment["REDIS_URL"]
    return environment


def run(options: Options) -> None:
    if shutil.which("wrk") is None:
        sys.exit("missing tool: wrk (apt-get install wrk)")
    settings = options.settings
    if not options.embedded:
        asyncio.run(recreate_database(settings))
        redis.Redis.from_url(settings.redis_url).flushdb()

    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        environment = environment_for(options, workdir)
        cli(environment, "migrate")
        org = json.loads(
            cli(
                environment,
                "create-org",
                "--name",
                "Bench collector",
                "--owner-email",
                OWNER_EMAIL,
                "--json",
            )
        )
        base = f"http://127.0.0.1:{SERVICE_PORT}"
        stack.enter_context(
            process(
                "service",
                [str(VENV_BIN / "signal-admin"), "serve", "--port", str(SERVICE_PORT)],
                environment,
                f"{base}/health",
                workdir,
            )
        )
        log("creating the pipelines and templates, and the first build")
        world = asyncio.run(create_world(base, OWNER_EMAIL, org["owner_password"]))
        serve_rows = measure_serving(world, settings, workdir)
        build_rows = measure_builds(base, world, options.builds)

    print(
        f"Machine: {machine(options)}; load average {os.getloadavg()[0]:.2f} at the end"
    )
    print(
        f"wrk, 1 thread, {settings.warmup} s warm-up then {settings.duration} s "
        f"per row; builds after {WARMUP_BUILDS} left out\n"
    )
    print(serving_table(serve_rows))
    print()
    print(builds_table(build_rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_service_options(
        parser,
        database="signal_bench_collector",
        redis_env="BENCH_COLLECTOR_REDIS_URL",
        redis_url="redis://127.0.0.1:6379/13",
    )
    parser.add_argument(
        "--sqlite",
        action="store_true",
        help="embedded mode: a SQLite file and no Redis instead",
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per row")
    parser.add_argument("--warmup", type=int, default=3, help="seconds before each")
    parser.add_argument(
        "--connections", default="1,10", help="comma-separated concurrency levels"
    )
    parser.add_argument(
        "--builds", type=int, default=200, help="sequential builds per pipeline"
    )
    args = parser.parse_args()
    run(
        Options(
            settings=Settings(
                database=args.database,
                admin_dsn=args.admin_dsn,
                redis_url=args.redis_url,
                pipelines=2,
                duration=args.duration,
                warmup=args.warmup,
                connections=tuple(int(c) for c in args.connections.split(",")),
            ),
            builds=args.builds,
            embedded=args.sqlite,
        )
    )


if __name__ == "__main__":
    main()
