"""Throughput and latency of the two read paths the UI leans on, each measured
side by side with its reference in one run, on PostgreSQL and Redis:

- `GET /v1/admin/pipelines?limit=50` against a bare Starlette + asyncpg
  endpoint running the same SELECT and answering the same JSON;
- the pipeline graph query for 50 pipelines with three attachments each against
  PostGraphile 4 serving the same tables with the same selection.

Every server runs as one process on loopback; wrk, a separate process, makes the
load. Before any load, the runner checks that each pair answers the same data.

    python -m bench.run                 # the whole run, a table at the end
    python -m bench.run --duration 5    # a quicker, noisier one

Needs wrk (Debian package `wrk`) and Node.js with npm; the PostGraphile
package is installed into bench/postgraphile on first use.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import redis

from bench.options import add_service_options
from bench.seed import seed

BENCH = Path(__file__).resolve().parent
POSTGRAPHILE = BENCH / "postgraphile"
REPORT_SCRIPT = BENCH / "wrk" / "report.lua"
VENV_BIN = Path(sys.executable).parent

SERVICE_PORT, BARE_PORT, POSTGRAPHILE_PORT = 8191, 8192, 8193
OWNER_EMAIL = "bench-owner@example.com"

# The same selection on both sides; field names differ only where PostGraphile
# names relations after their foreign keys.
SERVICE_GRAPH = """
query Graph($first: Int!) {
  pipelines(first: $first) { edges { node {
    id name slug type enabled labels
    integrations {
      id enabled consentCategories upgradeAvailable
      template { id name vendor }
      revision {
        id revisionNumber deliveryMode createdAt createdBy { id name }
      }
      latestRevision { id revisionNumber }
    }
  } } }
}
"""
POSTGRAPHILE_GRAPH = """
query Graph($org: String!, $first: Int!) {
  allPipelines(first: $first, condition: {orgId: $org}, orderBy: PRIMARY_KEY_ASC) {
    nodes {
      id name slug type enabled labels
      pipelineIntegrationsByPipelineId(orderBy: PRIMARY_KEY_ASC) { nodes {
        id enabled consentCategories upgradeAvailable
        integrationTemplateByTemplateId { id name vendor }
        integrationRevisionByRevisionId {
          id revisionNumber deliveryMode createdAt userByCreatedBy { id name }
        }
        latestRevision { id revisionNumber }
      } }
    }
  }
}
"""


@dataclass(frozen=True, slots=True)
class Settings:
    database: str
    admin_dsn: str
    redis_url: str
    pipelines: int
    duration: int
    warmup: int
    connections: tuple[int, ...]

    @property
    def dsn(self) -> str:
        return self.admin_dsn.rsplit("/", 1)[0] + f"/{self.database}"


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    url: str
    body: dict[str, Any] | None = None
    token: str | None = None


@dataclass(frozen=True, slots=True)
class Figures:
    target: str
    connections: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    failures: int


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# Set-up -----------------------------------------------------------------------


def check_tools() -> None:
    missing = [tool for tool in ("wrk", "node", "npm") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"missing tools: {', '.join(missing)} (wrk: apt-get install wrk)")
    if not (POSTGRAPHILE / "node_modules" / ".bin" / "postgraphile").exists():
        log("installing PostGraphile 4 into bench/postgraphile")
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=POSTGRAPHILE, check=True
        )


async def recreate_database(settings: Settings) -> None:
    admin = await asyncpg.connect(settings.admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{settings.database}"')
        await admin.execute(f'CREATE DATABASE "{settings.database}"')
    finally:
        await admin.close()


async def apply_postgraphile_schema(settings: Settings) -> None:
    connection = await asyncpg.connect(settings.dsn)
    try:
        await connection.execute((POSTGRAPHILE / "schema.sql").read_text())
    finally:
        await connection.close()


def service_environment(settings: Settings, data_dir: str) -> dict[str, str]:
    """Production settings; the rate limit is charged on every call but set
    high enough that the load is never refused."""
    return {
        **os.environ,
        "DATABASE_URL": settings.dsn.replace("postgresql://", "postgresql+asyncpg://"),
        "REDIS_URL": settings.redis_url,
        "SIGNAL_ENV": "production",
        "JWT_SECRET": secrets.token_urlsafe(48),
        "ENCRYPTION_KEY": secrets.token_hex(32),
        "SIGNAL_DATA_DIR": data_dir,
        "RATE_LIMIT_PER_MINUTE": str(10**9),
        "ACCESS_TOKEN_TTL": "3600",
        "LOG_LEVEL": "info",
    }


def cli(environment: dict[str, str], *arguments: str) -> str:
    done = subprocess.run(
        [str(VENV_BIN / "signal-admin"), *arguments],
        env=environment,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


@contextmanager
def process(
    name: str,
    command: list[str],
    environment: dict[str, str],
    ready_url: str,
    log_dir: Path,
    cwd: Path | None = None,
) -> Iterator[None]:
    """Run a server until the block ends; its output goes to a log file."""
    output = (log_dir / f"{name}.log").open("wb")
    child = subprocess.Popen(
        command, env=environment, stdout=output, stderr=subprocess.STDOUT, cwd=cwd
    )
    try:
        wait_until_up(name, ready_url, child)
        yield
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
        output.close()


def wait_until_up(name: str, url: str, child: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if child.poll() is not None:
            sys.exit(f"{name} exited with {child.returncode}; see its log")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    sys.exit(f"{name} did not start within 60 s")


# Checks that each pair answers the same data ---------------------------------------


def fetch(target: Target) -> Any:
    headers = {"Accept": "application/json"}
    if target.token:
        headers["Authorization"] = f"Bearer {target.token}"
    if target.body is None:
        response = httpx.get(target.url, headers=headers, timeout=30)
    else:
        response = httpx.post(target.url, json=target.body, headers=headers, timeout=30)
    response.raise_for_status()
    body = response.json()
    if isinstance(body, dict) and body.get("errors"):
        sys.exit(f"{target.name} answered errors: {body['errors']}")
    return body


def service_graph(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        _pipeline(edge["node"], edge["node"]["integrations"], lambda i: i)
        for edge in body["data"]["pipelines"]["edges"]
    ]


def postgraphile_graph(body: dict[str, Any]) -> list[dict[str, Any]]:
    def rename(attachment: dict[str, Any]) -> dict[str, Any]:
        revision = attachment["integrationRevisionByRevisionId"]
        return {
            **attachment,
            "template": attachment["integrationTemplateByTemplateId"],
            "revision": {**revision, "createdBy": revision["userByCreatedBy"]},
        }

    return [
        _pipeline(node, node["pipelineIntegrationsByPipelineId"]["nodes"], rename)
        for node in body["data"]["allPipelines"]["nodes"]
    ]


def _pipeline(
    node: dict[str, Any],
    attachments: list[dict[str, Any]],
    rename: Callable[[dict[str, Any]], dict[str, Any]],
) -> dict[str, Any]:
    """One pipeline of either answer in a common form: enums and timestamps
    written one way, attachments in id order."""

    def attachment(raw: dict[str, Any]) -> dict[str, Any]:
        item = rename(raw)
        revision = item["revision"]
        return {
            "id": item["id"],
            "enabled": item["enabled"],
            "consentCategories": item["consentCategories"],
            "upgradeAvailable": item["upgradeAvailable"],
            "template": item["template"],
            "revision": {
                "id": revision["id"],
                "revisionNumber": revision["revisionNumber"],
                "deliveryMode": revision["deliveryMode"].lower(),
                "createdAt": datetime.fromisoformat(revision["createdAt"]),
                "createdBy": {
                    "id": revision["createdBy"]["id"],
                    "name": revision["createdBy"]["name"],
                },
            },
            "latestRevision": item["latestRevision"],
        }

    return {
        "id": node["id"],
        "name": node["name"],
        "slug": node["slug"],
        "type": node["type"].lower(),
        "enabled": node["enabled"],
        "labels": node["labels"],
        "integrations": sorted(
            (attachment(raw) for raw in attachments), key=lambda a: a["id"]
        ),
    }


def check_same_answers(pairs: list[tuple[Target, Target]], pipelines: int) -> None:
    service_rest, bare_rest = pairs[0]
    if fetch(service_rest) != fetch(bare_rest):
        sys.exit("the service and the bare endpoint answer different JSON")
    service_graph_target, postgraphile_target = pairs[1]
    ours = service_graph(fetch(service_graph_target))
    theirs = postgraphile_graph(fetch(postgraphile_target))
    for mine, reference in zip(ours, theirs, strict=False):
        if mine != reference:
            sys.exit(
                "the service and PostGraphile answer different graphs:\n"
                f"service:      {mine}\nPostGraphile: {reference}"
            )
    if len(ours) != len(theirs):
        sys.exit("the service and PostGraphile answer different numbers of pipelines")
    attachments = sum(len(pipeline["integrations"]) for pipeline in ours)
    if len(ours) != pipelines or attachments != 3 * pipelines:
        sys.exit(f"expected {pipelines} pipelines with 3 attachments each")
    log(f"answers match: {len(ours)} pipelines, {attachments} attachments")


# Load ---------------------------------------------------------------------------


def wrk(target: Target, connections: int, seconds: int) -> Figures:
    with tempfile.NamedTemporaryFile("w", suffix=".json") as body_file:
        environment = {**os.environ, "BENCH_TOKEN": target.token or ""}
        if target.body is not None:
            json.dump(target.body, body_file)
            body_file.flush()
            environment["BENCH_BODY_FILE"] = body_file.name
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
                str(REPORT_SCRIPT),
                target.url,
            ],
            env=environment,
            check=True,
            capture_output=True,
            text=True,
        )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return Figures(
        target=target.name,
        connections=connections,
        rps=report["requests"] / (report["duration_us"] / 1e6),
        p50_ms=report["p50_us"] / 1000,
        p95_ms=report["p95_us"] / 1000,
        p99_ms=report["p99_us"] / 1000,
        failures=report["non_2xx"] + report["socket_errors"],
    )


def measure(pairs: list[tuple[Target, Target]], settings: Settings) -> list[Figures]:
    results = []
    for pair in pairs:
        for connections in settings.connections:
            for target in pair:
                wrk(target, connections, settings.warmup)
                figures = wrk(target, connections, settings.duration)
                log(
                    f"{target.name} c={connections}: {figures.rps:.0f} req/s, "
                    f"p50 {figures.p50_ms:.1f} ms"
                )
                results.append(figures)
    return results


def table(results: list[Figures], pairs: list[tuple[Target, Target]]) -> str:
    lines = [
        "| what | connections | req/s | p50 ms | p95 ms | p99 ms | failed |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for figures in results:
        lines.append(
            f"| {figures.target} | {figures.connections} | {figures.rps:.0f} | "
            f"{figures.p50_ms:.1f} | {figures.p95_ms:.1f} | {figures.p99_ms:.1f} | "
            f"{figures.failures} |"
        )
    lines += ["", "| ratio (service / reference) | connections | throughput |"]
    lines.append("| --- | ---: | ---: |")
    by_key = {(f.target, f.connections): f for f in results}
    for ours, reference in pairs:
        for connections in sorted({f.connections for f in results}):
            mine = by_key[(ours.name, connections)]
            theirs = by_key[(reference.name, connections)]
            lines.append(
                f"| {ours.name} / {reference.name} | {connections} | "
                f"{mine.rps / theirs.rps:.0%} |"
            )
    return "\n".join(lines)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    node = subprocess.run(["node", "--version"], capture_output=True, text=True)
    return (
        f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, "
        f"Node.js {node.stdout.strip()}"
    )


# The run ------------------------------------------------------------------------


def run(settings: Settings) -> None:
    check_tools()
    asyncio.run(recreate_database(settings))
    redis.Redis.from_url(settings.redis_url).flushdb()

    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        environment = service_environment(settings, str(workdir / "data"))
        cli(environment, "migrate")
        org = json.loads(
            cli(
                environment,
                "create-org",
                "--name",
                "Bench",
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
        log(f"seeding {settings.pipelines} pipelines")
        seeded = asyncio.run(
            seed(base, OWNER_EMAIL, org["owner_password"], settings.pipelines)
        )
        asyncio.run(apply_postgraphile_schema(settings))

        stack.enter_context(
            process(
                "bare",
                [
                    str(VENV_BIN / "uvicorn"),
                    "bench.bare_pipelines:app",
                    "--port",
                    str(BARE_PORT),
                    "--no-access-log",
                    "--log-level",
                    "warning",
                ],
                {
                    **os.environ,
                    "BENCH_DATABASE_DSN": settings.dsn,
                    "BENCH_ORG_ID": org["org_id"],
                },
                f"http://127.0.0.1:{BARE_PORT}/v1/admin/pipelines?limit=1",
                workdir,
                cwd=BENCH.parent,
            )
        )
        stack.enter_context(
            process(
                "postgraphile",
                [
                    str(POSTGRAPHILE / "node_modules" / ".bin" / "postgraphile"),
                    "--connection",
                    settings.dsn,
                    "--schema",
                    "public",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(POSTGRAPHILE_PORT),
                    "--disable-default-mutations",
                    "--disable-graphiql",
                    "--disable-query-log",
                    "--dynamic-json",
                ],
                {**os.environ, "NODE_ENV": "production"},
                f"http://127.0.0.1:{POSTGRAPHILE_PORT}/graphql",
                workdir,
            )
        )

        token = seeded["token"]
        pairs = [
            (
                Target(
                    "service REST",
                    f"{base}/v1/admin/pipelines?limit=50",
                    token=token,
                ),
                Target(
                    "bare Starlette",
                    f"http://127.0.0.1:{BARE_PORT}/v1/admin/pipelines?limit=50",
                ),
            ),
            (
                Target(
                    "service GraphQL",
                    f"{base}/v1/admin/graphql",
                    body={"query": SERVICE_GRAPH, "variables": {"first": 50}},
                    token=token,
                ),
                Target(
                    "PostGraphile 4",
                    f"http://127.0.0.1:{POSTGRAPHILE_PORT}/graphql",
                    body={
                        "query": POSTGRAPHILE_GRAPH,
                        "variables": {"first": 50, "org": org["org_id"]},
                    },
                ),
            ),
        ]
        check_same_answers(pairs, settings.pipelines)
        results = measure(pairs, settings)

    print(f"Machine: {machine()}")
    print(
        f"wrk, 1 thread, {settings.warmup} s warm-up then {settings.duration} s "
        f"per row; {settings.pipelines} pipelines, 3 attachments each\n"
    )
    print(table(results, pairs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_service_options(
        parser,
        database="signal_bench",
        redis_env="BENCH_REDIS_URL",
        redis_url="redis://127.0.0.1:6379/14",
    )
    parser.add_argument("--pipelines", type=int, default=50)
    parser.add_argument("--duration", type=int, default=20, help="seconds per row")
    parser.add_argument("--warmup", type=int, default=3, help="seconds before each")
    parser.add_argument(
        "--connections", default="1,10", help="comma-separated concurrency levels"
    )
    args = parser.parse_args()
    run(
        Settings(
            database=args.database,
            admin_dsn=args.admin_dsn,
            redis_url=args.redis_url,
            pipelines=args.pipelines,
            duration=args.duration,
            warmup=args.warmup,
            connections=tuple(int(c) for c in args.connections.split(",")),
        )
    )


if __name__ == "__main__":
    main()
