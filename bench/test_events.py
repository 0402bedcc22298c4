"""Test events per second through a pipeline with three integrations (GA4, the
Meta Conversions API and TikTok, installed from the catalog), each with one
transformation of three steps: a filter, a compute and an enrich.

    .venv/bin/python -m bench.test_events                 # about two minutes
    .venv/bin/python -m bench.test_events --duration 5    # quicker, noisier

The service runs as one process on loopback with production settings
(PostgreSQL, Redis, one worker, a rate limit too high to refuse anything), and
wrk, a separate process, posts to `POST /v1/admin/pipelines/{id}/test-events`
with two bodies cut from the shipped sample events: one `order_completed`
event per request, and a batch of 100 events per request. Two pipelines are
measured, alike but for one step: in the "JavaScript" one, the GA4
transformation ends with a `code` step, so the difference is what V8 costs.

Before any load, each body is sent once and the answer checked: every
integration has `transformed` stages whose payload carries what its
transformation wrote, and no stage is an error. After each measured run the
service's own request log gives the slowest request as the service timed it,
and how many reached the request's time budget (their events would carry
`TIMEOUT` stages, which wrk does not see); the service process's CPU time over
the run, divided by the events it answered, gives a cost per event that other
work on the machine disturbs less than the rates do.

Needs wrk (Debian package `wrk`).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import sys
import tempfile
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis

from bench.options import add_service_options
from bench.run import (
    VENV_BIN,
    Figures,
    Settings,
    Target,
    cli,
    log,
    machine,
    process,
    recreate_database,
    service_environment,
    wrk,
)
from bench.seed import INSTALLS, _call, login
from signal_admin.processing.paths import get_path, parse_path
from signal_admin.processing.samples import sample_events

SERVICE_PORT = 8194
OWNER_EMAIL = "bench-events@example.com"
BATCH_SIZE = 100
TEST_EVENTS_ROUTE = "/v1/admin/pipelines/{pipeline_id}/test-events"
BUDGET_MS = 5000.0  # DRY_RUN_BUDGET_SECONDS, left at its default

CONFIGS: dict[str, dict[str, Any]] = {
    **dict(INSTALLS),
    "tiktok": {"pixel_code": "CBENCH0000000000001", "access_token": "bench-tt"},
}
VENDORS = ("ga4", "meta_capi", "tiktok")
JAVASCRIPT_STEP = {
    "type": "code",
    "source": "function process(event) { event.js = true; return event; }",
}


@dataclass(frozen=True, slots=True)
class VendorTransformation:
    """One vendor's transformation, and a value it writes (path, value), by
    which the check before the load knows it ran."""

    steps: tuple[dict[str, Any], ...]
    mark: tuple[str, Any]


TRANSFORMATIONS = {
    "ga4": VendorTransformation(
        steps=(
            {"type": "filter", "condition": "event.client_id IS NOT NULL"},
            {
                "type": "compute",
                "fields": {
                    "events[0].params.value": (
                        "ROUND(COALESCE(event.events[0].params.value, 0), 2)"
                    )
                },
            },
            {"type": "enrich", "fields": {"events[0].params.channel": "web"}},
        ),
        mark=("events[0].params.channel", "web"),
    ),
    "meta_capi": VendorTransformation(
        steps=(
            {"type": "filter", "condition": "event.data[0].action_source = 'website'"},
            {
                "type": "compute",
                "fields": {
                    "data[0].custom_data.currency": (
                        "UPPER(COALESCE(event.data[0].custom_data.currency, 'EUR'))"
                    )
                },
            },
            {"type": "enrich", "fields": {"data[0].data_processing_options": []}},
        ),
        mark=("data[0].data_processing_options", []),
    ),
    "tiktok": VendorTransformation(
        steps=(
            {"type": "filter", "condition": "event.data[0].event_id IS NOT NULL"},
            {
                "type": "compute",
                "fields": {
                    "data[0].properties.value": (
                        "ROUND(COALESCE(event.data[0].properties.value, 0), 2)"
                    )
                },
            },
            {"type": "enrich", "fields": {"partner_name": "northpeak"}},
        ),
        mark=("partner_name", "northpeak"),
    ),
}


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    javascript: bool

    def steps(self, vendor: str) -> list[dict[str, Any]]:
        steps = list(TRANSFORMATIONS[vendor].steps)
        if self.javascript and vendor == "ga4":
            steps.append(JAVASCRIPT_STEP)
        return steps

    def marks(self, vendor: str) -> list[tuple[str, Any]]:
        marks = [TRANSFORMATIONS[vendor].mark]
        if self.javascript and vendor == "ga4":
            marks.append(("js", True))
        return marks


VARIANTS = (Variant("expressions", False), Variant("JavaScript", True))


@dataclass(frozen=True, slots=True)
class Row:
    variant: str
    events_per_request: int
    figures: Figures
    slowest_ms: float
    over_budget: int
    cpu_ms_per_event: float


# Set-up -----------------------------------------------------------------------


async def create_pipelines(
    url: str, email: str, password: str
) -> tuple[str, dict[str, str]]:
    """One pipeline per variant, each with its own three catalog installs and
    their transformations; answer a bearer token and the pipeline ids."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        token = await login(client, email, password)
        client.headers["Authorization"] = f"Bearer {token}"

        pipeline_ids = {}
        for variant in VARIANTS:
            pipeline = await _call(
                client,
                "POST",
                "/pipelines",
                json={"name": f"Test events ({variant.name})", "type": "web"},
            )
            for vendor in VENDORS:
                installed = await _call(
                    client,
                    "POST",
                    f"/integration-catalog/{vendor}/install",
                    json={
                        "name": f"{vendor} ({variant.name})",
                        "config": CONFIGS[vendor],
                    },
                )
                template_id = installed["template"]["id"]
                await _call(
                    client,
                    "POST",
                    f"/pipelines/{pipeline['id']}/integrations",
                    json={"integration_id": template_id},
                )
                await _call(
                    client,
                    "POST",
                    "/transformations",
                    json={
                        "name": f"{vendor} clean-up ({variant.name})",
                        "integration_id": template_id,
                        "config": {"steps": variant.steps(vendor)},
                    },
                )
            pipeline_ids[variant.name] = pipeline["id"]
        return token, pipeline_ids


def bodies() -> dict[int, dict[str, Any]]:
    """The request bodies by events per request, cut from the sample events."""
    events = sample_events()
    order = next(e for e in events if e.get("event") == "order_completed")
    batch = list(itertools.islice(itertools.cycle(events), BATCH_SIZE))
    return {1: {"event": order}, BATCH_SIZE: {"events": batch}}


# The check before the load ------------------------------------------------------


def check_answer(target: Target, variant: Variant, events: int) -> Counter[str]:
    """Fail loudly unless every event has a result, no stage is an error, and
    each vendor has transformed stages carrying what its transformation wrote;
    answer how many stages of each (vendor, stage) there were."""
    assert target.body is not None
    response = httpx.post(
        target.url,
        json=target.body,
        headers={"Authorization": f"Bearer {target.token}"},
        timeout=30,
    )
    if response.status_code != 200:
        sys.exit(f"{target.name}: {response.status_code} {response.text}")
    results = response.json()["results"]
    if len(results) != events:
        sys.exit(f"{target.name}: {len(results)} results for {events} events")

    outcomes: Counter[str] = Counter()
    for result in results:
        for stage in result["stages"]:
            if stage["stage"] == "error":
                sys.exit(f"{target.name}: an error stage: {stage}")
            if stage["vendor"] is None:
                continue
            outcomes[f"{stage['vendor']} {stage['stage']}"] += 1
            if stage["stage"] == "transformed":
                check_marks(target.name, variant, stage)

    for vendor in VENDORS:
        if outcomes[f"{vendor} transformed"] == 0:
            sys.exit(f"{target.name}: no transformed stage for {vendor}")
    return outcomes


def check_marks(name: str, variant: Variant, stage: dict[str, Any]) -> None:
    for path, value in variant.marks(stage["vendor"]):
        found = get_path(stage["payload"], parse_path(path))
        if found != value:
            sys.exit(
                f"{name}: {stage['vendor']}'s transformation did not run: "
                f"{path} is {found!r} in {stage['payload']}"
            )


# Load ---------------------------------------------------------------------------


def served_test_events(service_log: Path, offset: int) -> list[float]:
    """How long each test-events request logged after `offset` took, in ms,
    as the service timed it."""
    durations = []
    with service_log.open("rb") as lines:
        lines.seek(offset)
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("event") == "http.request" and (
                entry.get("route") == TEST_EVENTS_ROUTE
            ):
                durations.append(float(entry["duration_ms"]))
    return durations


def service_cpu_seconds() -> float:
    """CPU time the service has used so far: user and system time of this
    process's child named `signal-admin`, from /proc."""
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = stat_file.read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        if name == "signal-admin" and int(fields[1]) == os.getpid():
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    sys.exit("the service process is gone")


def measure(
    targets: list[tuple[Variant, int, Target]],
    settings: Settings,
    service_log: Path,
) -> list[Row]:
    rows = []
    for variant, events, target in targets:
        for connections in settings.connections:
            wrk(target, connections, settings.warmup)
            offset = service_log.stat().st_size
            cpu_before = service_cpu_seconds()
            figures = wrk(target, connections, settings.duration)
            cpu_seconds = service_cpu_seconds() - cpu_before
            durations = served_test_events(service_log, offset) or [0.0]
            row = Row(
                variant=variant.name,
                events_per_request=events,
                figures=figures,
                slowest_ms=max(durations),
                over_budget=sum(d >= BUDGET_MS for d in durations),
                cpu_ms_per_event=cpu_seconds * 1000 / (len(durations) * events),
            )
            log(
                f"{target.name} c={connections}: {figures.rps:.1f} req/s, "
                f"{figures.rps * events:.0f} events/s, p50 {figures.p50_ms:.1f} ms"
            )
            rows.append(row)
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        "| transformations | events/request | connections | req/s | events/s "
        "| p50 ms | p95 ms | p99 ms | failed | slowest in service ms "
        "| service CPU ms/event |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        figures = row.figures
        lines.append(
            f"| {row.variant} | {row.events_per_request} | {figures.connections} "
            f"| {figures.rps:,.1f} | {figures.rps * row.events_per_request:,.0f} "
            f"| {figures.p50_ms:.1f} | {figures.p95_ms:.1f} | {figures.p99_ms:.1f} "
            f"| {figures.failures} "
            f"| {row.slowest_ms:,.0f} | {row.cpu_ms_per_event:.2f} |"
        )
    over = sum(row.over_budget for row in rows)
    lines.append("")
    lines.append(f"Requests that reached the {BUDGET_MS / 1000:.0f} s budget: {over}")
    return "\n".join(lines)


# The run ------------------------------------------------------------------------


def run(settings: Settings) -> None:
    if shutil.which("wrk") is None:
        sys.exit("missing tool: wrk (apt-get install wrk)")
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
                "Bench events",
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
        log("creating the pipelines, integrations and transformations")
        token, pipeline_ids = asyncio.run(
            create_pipelines(base, OWNER_EMAIL, org["owner_password"])
        )

        targets = []
        for variant in VARIANTS:
            for events, body in bodies().items():
                target = Target(
                    f"{variant.name}, {events} event(s)/request",
                    f"{base}/v1/admin/pipelines/{pipeline_ids[variant.name]}"
                    "/test-events",
                    body=body,
                    token=token,
                )
                outcomes = check_answer(target, variant, events)
                log(f"{target.name}: {dict(sorted(outcomes.items()))}")
                targets.append((variant, events, target))
        rows = measure(targets, settings, workdir / "service.log")

    print(f"Machine: {machine()}; load average {os.getloadavg()[0]:.2f} at the end")
    print(
        f"wrk, 1 thread, {settings.warmup} s warm-up then {settings.duration} s "
        "per row\n"
    )
    print(table(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_service_options(
        parser,
        database="signal_bench_events",
        redis_env="BENCH_EVENTS_REDIS_URL",
        redis_url="redis://127.0.0.1:6379/13",
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per row")
    parser.add_argument("--warmup", type=int, default=3, help="seconds before each")
    parser.add_argument(
        "--connections", default="1,4", help="comma-separated concurrency levels"
    )
    args = parser.parse_args()
    run(
        Settings(
            database=args.database,
            admin_dsn=args.admin_dsn,
            redis_url=args.redis_url,
            pipelines=len(VARIANTS),
            duration=args.duration,
            warmup=args.warmup,
            connections=tuple(int(c) for c in args.connections.split(",")),
        )
    )


if __name__ == "__main__":
    main()
