"""The live stream under load: stage events published into Redis as the data
plane publishes them, received by WebSocket listeners in other processes.

Scenarios (each on one replica, then on two with the listeners spread over
both; the events always go straight into Redis, so "through one replica"
means they reach both through their subscriber connections):

- `fanout`: 1,000 stage events/s of one pipeline to 20 REST listeners that
  want them all (20,000 messages/s);
- `pipelines`: 1,000 stage events/s spread over 50 pipelines to 200 REST
  listeners, four per pipeline, each subscribed to its own pipeline;
- `graphql`: 100 stage events/s to 20 `liveEvents` subscribers over
  graphql-transport-ws;
- `idle`: 1,000 idle REST sockets (100 users, 10 each, the per-user limit),
  subscribed and receiving nothing: growth of the servers' resident memory.

    python -m bench.live                          # everything
    python -m bench.live --scenarios fanout --replicas 1 --duration 5
    python -m bench.live --no-deflate             # clients that do not compress

Each published event carries its publish time and a per-pipeline sequence
number in `event.properties`; a listener records publish-to-receive latency
and checks the order. The first `--warmup` seconds of each run are left out
of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import httpx
import redis
import redis.asyncio
import uvloop
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from bench.options import add_service_options
from bench.run import (
    VENV_BIN,
    Settings,
    cli,
    log,
    recreate_database,
    service_environment,
    wait_until_up,
)
from bench.seed import _call, login

PORTS = (8195, 8196)
OWNER_EMAIL = "bench-live@example.com"
USERS = 100  # 10 sockets each: the 1,000 idle sockets
PIPELINES = 50
SCENARIOS = ("idle", "fanout", "pipelines", "graphql")
TICK_SECONDS = 0.01
GRAPHQL_SUBSCRIPTION = """
subscription Live($pipelineId: ID) {
  liveEvents(pipelineId: $pipelineId) { id stage pipelineId event }
}
"""


@dataclass(frozen=True, slots=True)
class Options:
    database: Settings
    scenarios: tuple[str, ...]
    replicas: tuple[int, ...]
    duration: float
    warmup: float
    client_processes: int
    deflate: bool


@dataclass(frozen=True, slots=True)
class Socket:
    """One listener: where it connects, as whom, and what it subscribes to."""

    url: str
    token: str
    pipeline_id: str
    graphql: bool = False
    deflate: bool = True


@dataclass(slots=True)
class Received:
    """What one client process's listeners got."""

    latencies_ms: list[float] = field(default_factory=list)
    messages: int = 0
    dropped: int = 0
    out_of_order: int = 0
    unfinished: int = 0
    refused: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Row:
    scenario: str
    replicas: int
    listeners: int
    published_per_s: float
    expected: int
    received: Received
    seconds: float
    server_cpu: tuple[float, ...]

    @property
    def delivered_per_s(self) -> float:
        return self.received.messages / self.seconds

    def percentile(self, fraction: float) -> float:
        latencies = sorted(self.received.latencies_ms)
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(fraction * len(latencies)))]


@dataclass(frozen=True, slots=True)
class MemoryRow:
    replicas: int
    sockets: int
    growth_kib: tuple[float, ...]
    refused: int


# Set-up -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class World:
    org_id: str
    pipeline_ids: tuple[str, ...]
    tokens: tuple[str, ...]  # one per user; the owner's first


async def build_world(base: str, password: str, org_id: str) -> World:
    """Pipelines, and signed-in users with a live socket allowance each."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        owner = await login(client, OWNER_EMAIL, password)
        client.headers["Authorization"] = f"Bearer {owner}"
        pipelines = [
            await _call(
                client, "POST", "/pipelines", json={"name": f"Live {n}", "type": "web"}
            )
            for n in range(PIPELINES)
        ]
        tokens = [owner]
        for n in range(1, USERS):
            invited = await _call(
                client,
                "POST",
                "/users",
                json={
                    "email": f"bench-live-{n}@example.com",
                    "name": f"Listener {n}",
                    "role": "viewer",
                },
            )
            accepted = await _call(
                client,
                "POST",
                "/auth/accept-invite",
                json={
                    "invite_token": invited["invite_token"],
                    "password": "live listener password",
                },
                headers={"Authorization": ""},
            )
            tokens.append(accepted["access_token"])
    return World(org_id, tuple(p["id"] for p in pipelines), tuple(tokens))


@contextmanager
def replicas(
    count: int, environment: dict[str, str], workdir: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` servers on one PostgreSQL and one Redis, each one process,
    stopped with SIGTERM when the block ends."""
    servers: list[subprocess.Popen[bytes]] = []
    try:
        for port in PORTS[:count]:
            with (workdir / f"service-{port}.log").open("ab") as output:
                server = subprocess.Popen(
                    [str(VENV_BIN / "signal-admin"), "serve", "--port", str(port)],
                    env=environment,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            servers.append(server)
            wait_until_up(f"service-{port}", f"http://127.0.0.1:{port}/health", server)
        yield servers
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
        for server in servers:
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def rss_kib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return float(line.split()[1])
    return float("nan")


def cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# Listeners (client processes) ---------------------------------------------------


def listen_in_process(
    sockets: Sequence[Socket], ready: Queue[int], results: Queue[Received]
) -> None:
    """A client process: open `sockets`, report ready, then read until every
    listener has seen its pipeline's end marker."""
    results.put(uvloop.run(_listen_all(sockets, ready)))


async def _listen_all(sockets: Sequence[Socket], ready: Queue[int]) -> Received:
    received = Received()
    async with _opened(sockets, received) as connections:
        ready.put(len(connections))
        await asyncio.gather(
            *(_read(conn, socket, received) for conn, socket in connections)
        )
    return received


@asynccontextmanager
async def _opened(
    sockets: Sequence[Socket], received: Received
) -> AsyncIterator[list[tuple[ClientConnection, Socket]]]:
    gate = asyncio.Semaphore(20)

    async def open_one(socket: Socket) -> ClientConnection | None:
        async with gate:
            try:
                return await _subscribe(socket)
            except (ConnectionClosed, OSError, RuntimeError) as error:
                received.refused.append(f"{type(error).__name__}: {error}")
                return None

    opened = await asyncio.gather(*(open_one(s) for s in sockets))
    connections = [(c, s) for c, s in zip(opened, sockets, strict=True) if c]
    try:
        yield connections
    finally:
        # As gently as they were opened: a thousand sockets closing at once
        # would be a load of its own.
        async def close_one(conn: ClientConnection) -> None:
            async with gate:
                await conn.close()

        await asyncio.gather(
            *(close_one(conn) for conn, _ in connections), return_exceptions=True
        )


async def _subscribe(socket: Socket) -> ClientConnection:
    if socket.graphql:
        conn = await connect(
            socket.url,
            subprotocols=[Subprotocol("graphql-transport-ws")],
            max_queue=None,
            compression="deflate" if socket.deflate else None,
        )
        await conn.send(
            json.dumps(
                {
                    "type": "connection_init",
                    "payload": {"authorization": f"Bearer {socket.token}"},
                }
            )
        )
        acked = json.loads(await conn.recv())
        if acked.get("type") != "connection_ack":
            raise RuntimeError(f"no connection_ack: {acked}")
        await conn.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {
                        "query": GRAPHQL_SUBSCRIPTION,
                        "variables": {"pipelineId": socket.pipeline_id},
                    },
                }
            )
        )
        return conn
    conn = await connect(
        socket.url,
        additional_headers={"Authorization": f"Bearer {socket.token}"},
        max_queue=None,
        compression="deflate" if socket.deflate else None,
    )
    hello = json.loads(await conn.recv())
    if hello.get("type") != "ready":
        raise RuntimeError(f"no ready message: {hello}")
    await conn.send(
        json.dumps({"type": "subscribe", "pipeline_id": socket.pipeline_id})
    )
    return conn


async def _read(conn: ClientConnection, socket: Socket, received: Received) -> None:
    """Read until the end marker; record latency and order of measured
    events."""
    last_seq = -1
    try:
        async for frame in conn:
            now = time.time()
            message = json.loads(frame)
            event = _stage_event(message, socket.graphql, received)
            if event is None:
                continue
            properties = event["event"]["properties"]
            if properties.get("end"):
                return
            seq = properties["seq"]
            if seq <= last_seq:
                received.out_of_order += 1
            last_seq = seq
            if not properties["warmup"]:
                received.messages += 1
                received.latencies_ms.append((now - properties["sent_at"]) * 1000)
    except ConnectionClosed as closed:
        received.refused.append(f"closed {closed.rcvd}")
    received.unfinished += 1


def _stage_event(
    message: dict[str, Any], graphql: bool, received: Received
) -> dict[str, Any] | None:
    if graphql:
        if message.get("type") != "next":
            return None
        event: dict[str, Any] = message["payload"]["data"]["liveEvents"]
        if event["stage"] == "DROPPED_NOTICE":
            received.dropped += 1
            return None
        return event
    kind = message.get("type")
    if kind == "dropped":
        received.dropped += message["count"]
    if kind != "event":
        return None
    data: dict[str, Any] = message["data"]
    return data


# The publisher (a process of its own) -------------------------------------------


def publish_in_process(
    redis_url: str,
    org_id: str,
    pipeline_ids: Sequence[str],
    rate: int,
    seconds: float,
    warmup: float,
    results: Queue[tuple[int, float]],
) -> None:
    results.put(
        asyncio.run(_publish(redis_url, org_id, pipeline_ids, rate, seconds, warmup))
    )


async def _publish(
    redis_url: str,
    org_id: str,
    pipeline_ids: Sequence[str],
    rate: int,
    seconds: float,
    warmup: float,
) -> tuple[int, float]:
    """Publish `rate` stage events a second, round-robin over the pipelines,
    in ticks of `TICK_SECONDS`; answer how many were measured (after the
    warm-up) and over how long."""
    client = redis.asyncio.Redis.from_url(redis_url)
    channel = f"signal:live:{org_id}"
    per_tick = max(1, round(rate * TICK_SECONDS))
    sequences = dict.fromkeys(pipeline_ids, 0)
    cycle = itertools.cycle(pipeline_ids)
    start = time.monotonic()
    measured = 0
    measured_from = start + warmup
    tick = 0
    try:
        while (now := time.monotonic()) < start + warmup + seconds:
            in_warmup = now < measured_from
            async with client.pipeline(transaction=False) as pipe:
                for _ in range(per_tick):
                    pipeline_id = next(cycle)
                    sequences[pipeline_id] += 1
                    pipe.publish(
                        channel,
                        _stage_json(
                            org_id, pipeline_id, sequences[pipeline_id], in_warmup
                        ),
                    )
                await pipe.execute()
            if not in_warmup:
                measured += per_tick
            tick += 1
            await asyncio.sleep(
                max(0.0, start + tick * TICK_SECONDS - time.monotonic())
            )
        async with client.pipeline(transaction=False) as pipe:
            for pipeline_id in pipeline_ids:
                pipe.publish(channel, _stage_json(org_id, pipeline_id, 0, False, True))
            await pipe.execute()
    finally:
        await client.aclose()
    return measured, seconds


def _stage_json(
    org_id: str, pipeline_id: str, seq: int, warmup: bool, end: bool = False
) -> str:
    """A `received` stage event as the data plane writes it."""
    moment = datetime.now(UTC)
    return json.dumps(
        {
            "id": f"evt_bench{seq:010d}",
            "reason": None,
            "org_id": org_id,
            "pipeline_id": pipeline_id,
            "message_id": f"msg-{pipeline_id}-{seq}",
            "stage": "received",
            "integration_id": None,
            "pipeline_integration_id": None,
            "vendor": None,
            "timestamp": moment.isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"
            ),
            "duration_ms": 0.1,
            "event": {
                "type": "track",
                "event": "Order Completed",
                "messageId": f"msg-{pipeline_id}-{seq}",
                "anonymousId": "anon-bench",
                "properties": {
                    "sent_at": time.time(),
                    "seq": seq,
                    "warmup": warmup,
                    "end": end,
                    "revenue": 42.5,
                    "currency": "EUR",
                },
            },
            "payload": None,
            "error": None,
        },
        separators=(",", ":"),
    )


# Scenarios --------------------------------------------------------------------


def spread(items: Sequence[Socket], parts: int) -> list[list[Socket]]:
    return [list(items[n::parts]) for n in range(parts) if items[n::parts]]


def wait_until_subscribed(redis_url: str, org_id: str, subscribers: int) -> None:
    """Wait until `subscribers` processes (the replicas in use) have
    subscribed to the organisation's channel."""
    client = redis.Redis.from_url(redis_url)
    channel = f"signal:live:{org_id}"
    try:
        for _ in range(600):
            ((_, count),) = client.pubsub_numsub(channel)
            if count >= subscribers:
                time.sleep(1.0)  # the last subscribe messages, still in flight
                return
            time.sleep(0.05)
    finally:
        client.close()
    sys.exit(f"only {count} of {subscribers} replicas subscribed to {channel}")


def wait_until_sockets_closed(redis_url: str) -> None:
    """Wait until the servers have given back every live-socket slot of the
    last scenario, so the next one starts with every user's allowance."""
    client = redis.Redis.from_url(redis_url)
    try:
        for waited in range(1200):
            keys = list(client.scan_iter("signal:live-sockets:*"))
            if sum(client.zcard(key) for key in keys) == 0:
                if waited > 10:
                    log(f"slots were given back only after {waited / 10:.0f} s")
                return
            time.sleep(0.1)
    finally:
        client.close()
    sys.exit("live-socket slots were still held two minutes after the sockets closed")


def start_listeners(
    sockets: Sequence[Socket], processes: int
) -> tuple[list[multiprocessing.process.BaseProcess], Queue[Received], int]:
    context = multiprocessing.get_context("spawn")
    ready: Queue[int] = context.Queue()
    results: Queue[Received] = context.Queue()
    children: list[multiprocessing.process.BaseProcess] = [
        context.Process(target=listen_in_process, args=(part, ready, results))
        for part in spread(sockets, processes)
    ]
    for child in children:
        child.start()
    opened = sum(ready.get(timeout=300) for _ in children)
    return children, results, opened


def collect(
    children: list[multiprocessing.process.BaseProcess], results: Queue[Received]
) -> Received:
    total = Received()
    for _ in children:
        part = results.get(timeout=120)
        total.latencies_ms += part.latencies_ms
        total.messages += part.messages
        total.dropped += part.dropped
        total.out_of_order += part.out_of_order
        total.unfinished += part.unfinished
        total.refused += part.refused
    for child in children:
        child.join(timeout=30)
    return total


def sockets_for(
    scenario: str, world: World, urls: Sequence[str], graphql_urls: Sequence[str]
) -> tuple[list[Socket], list[str], int]:
    """The listeners of a scenario, the pipelines published to, and the
    rate."""
    if scenario == "fanout":
        pipeline = world.pipeline_ids[0]
        sockets = [
            Socket(urls[n % len(urls)], world.tokens[n // 10], pipeline)
            for n in range(20)
        ]
        return sockets, [pipeline], 1000
    if scenario == "pipelines":
        sockets = [
            Socket(
                urls[n % len(urls)],
                world.tokens[n // 10],
                world.pipeline_ids[n % PIPELINES],
            )
            for n in range(200)
        ]
        return sockets, list(world.pipeline_ids), 1000
    pipeline = world.pipeline_ids[1]
    sockets = [
        Socket(graphql_urls[n % len(urls)], world.tokens[n // 10], pipeline, True)
        for n in range(20)
    ]
    return sockets, [pipeline], 100


def run_stream(
    scenario: str,
    world: World,
    servers: list[subprocess.Popen[bytes]],
    options: Options,
) -> Row:
    count = len(servers)
    urls = [f"ws://127.0.0.1:{port}/v1/admin/debug/live" for port in PORTS[:count]]
    graphql_urls = [f"ws://127.0.0.1:{port}/v1/admin/graphql" for port in PORTS]
    sockets, pipelines, rate = sockets_for(scenario, world, urls, graphql_urls)
    sockets = [replace(socket, deflate=options.deflate) for socket in sockets]
    redis_url = options.database.redis_url

    children, results, opened = start_listeners(sockets, options.client_processes)
    wait_until_subscribed(redis_url, world.org_id, count)
    cpu_before = [cpu_seconds(server.pid) for server in servers]
    context = multiprocessing.get_context("spawn")
    published: Queue[tuple[int, float]] = context.Queue()
    publisher = context.Process(
        target=publish_in_process,
        args=(
            redis_url,
            world.org_id,
            pipelines,
            rate,
            options.duration,
            options.warmup,
            published,
        ),
    )
    publisher.start()
    measured, seconds = published.get(timeout=options.duration + 120)
    publisher.join()
    cpu_after = [cpu_seconds(server.pid) for server in servers]
    received = collect(children, results)

    # Events go round-robin over the pipelines, and listeners are spread
    # evenly over them.
    expected = measured * len(sockets) // len(pipelines)
    row = Row(
        scenario=scenario,
        replicas=count,
        listeners=opened,
        published_per_s=measured / seconds,
        expected=expected,
        received=received,
        seconds=seconds,
        server_cpu=tuple(
            (after - before) / (seconds + options.warmup)
            for before, after in zip(cpu_before, cpu_after, strict=True)
        ),
    )
    log(
        f"{scenario} on {count}: {row.delivered_per_s:,.0f} msg/s delivered, "
        f"p50 {row.percentile(0.5):.1f} ms, p99 {row.percentile(0.99):.1f} ms, "
        f"{received.dropped} dropped, refused {received.refused[:3]}"
    )
    return row


def run_idle(
    world: World, servers: list[subprocess.Popen[bytes]], options: Options
) -> MemoryRow:
    count = len(servers)
    urls = [f"ws://127.0.0.1:{port}/v1/admin/debug/live" for port in PORTS[:count]]
    sockets = [
        Socket(
            urls[n % count],
            world.tokens[n // 10],
            world.pipeline_ids[n % PIPELINES],
            deflate=options.deflate,
        )
        for n in range(USERS * 10)
    ]
    # One socket first, so that what the first one loads is not counted.
    warm, warm_results, _ = start_listeners(sockets[:count], 1)
    time.sleep(1.0)
    before = [rss_kib(server.pid) for server in servers]

    children, results, opened = start_listeners(
        sockets[count:], options.client_processes
    )
    time.sleep(3.0)
    after = [rss_kib(server.pid) for server in servers]
    _end_every_pipeline(options.database.redis_url, world)
    received = collect(children, results)
    collect(warm, warm_results)

    row = MemoryRow(
        replicas=count,
        sockets=opened,
        growth_kib=tuple(a - b for a, b in zip(after, before, strict=True)),
        refused=len(received.refused),
    )
    log(f"idle on {count}: {opened} sockets, RSS growth {row.growth_kib} KiB")
    return row


def _end_every_pipeline(redis_url: str, world: World) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        for pipeline_id in world.pipeline_ids:
            client.publish(
                f"signal:live:{world.org_id}",
                _stage_json(world.org_id, pipeline_id, 0, False, True),
            )
    finally:
        client.close()


# Report -----------------------------------------------------------------------


def stream_table(rows: list[Row]) -> str:
    lines = [
        "| scenario | replicas | listeners | published/s | delivered msg/s "
        "| delivered / expected | p50 ms | p99 ms | max ms | dropped | out of order "
        "| server CPU |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: |",
    ]
    for row in rows:
        latencies = row.received.latencies_ms
        lines.append(
            f"| {row.scenario} | {row.replicas} | {row.listeners} "
            f"| {row.published_per_s:,.0f} | {row.delivered_per_s:,.0f} "
            f"| {row.received.messages / max(1, row.expected):.1%} "
            f"| {row.percentile(0.5):.1f} | {row.percentile(0.99):.1f} "
            f"| {max(latencies, default=float('nan')):.1f} "
            f"| {row.received.dropped} | {row.received.out_of_order} "
            f"| {' + '.join(f'{cpu:.0%}' for cpu in row.server_cpu)} |"
        )
    return "\n".join(lines)


def memory_table(rows: list[MemoryRow]) -> str:
    lines = [
        "| idle sockets | replicas | RSS growth MiB (per replica) "
        "| per socket KiB | refused |",
        "| ---: | ---: | --- | ---: | ---: |",
    ]
    for row in rows:
        per_socket = sum(row.growth_kib) / max(1, row.sockets)
        lines.append(
            f"| {row.sockets} | {row.replicas} "
            f"| {' + '.join(f'{g / 1024:.1f}' for g in row.growth_kib)} "
            f"| {per_socket:.1f} | {row.refused} |"
        )
    return "\n".join(lines)


def machine(redis_url: str) -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    redis_version = redis.Redis.from_url(redis_url).info()["redis_version"]
    return (
        f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, "
        f"Redis {redis_version}"
    )


# The run ------------------------------------------------------------------------


def run(options: Options) -> None:
    settings = options.database
    asyncio.run(recreate_database(settings))
    redis.Redis.from_url(settings.redis_url).flushdb()
    stream_rows: list[Row] = []
    memory_rows: list[MemoryRow] = []

    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        environment = {
            **service_environment(settings, str(workdir / "data")),
            "LOGIN_ATTEMPTS_PER_MINUTE": str(10**9),
        }
        cli(environment, "migrate")
        org = json.loads(
            cli(
                environment,
                "create-org",
                "--name",
                "Bench live",
                "--owner-email",
                OWNER_EMAIL,
                "--json",
            )
        )
        world: World | None = None
        for count in options.replicas:
            with replicas(count, environment, workdir) as servers:
                if world is None:
                    log("creating the pipelines and users")
                    world = asyncio.run(
                        build_world(
                            f"http://127.0.0.1:{PORTS[0]}",
                            org["owner_password"],
                            org["org_id"],
                        )
                    )
                for scenario in options.scenarios:
                    wait_until_sockets_closed(settings.redis_url)
                    if scenario == "idle":
                        memory_rows.append(run_idle(world, servers, options))
                    else:
                        stream_rows.append(
                            run_stream(scenario, world, servers, options)
                        )
        redis_failures = sum(
            text.count("live.slots_unreachable") + text.count("store_unreachable")
            for text in (path.read_text() for path in workdir.glob("service-*.log"))
        )

    print(
        f"Machine: {machine(settings.redis_url)}; "
        f"load average {os.getloadavg()[0]:.2f} at the end"
    )
    print(f"Redis calls the servers could not make: {redis_failures}")
    print(
        f"{options.duration:g} s measured after {options.warmup:g} s of warm-up per "
        f"row; listeners in {options.client_processes} client processes, "
        f"permessage-deflate {'offered' if options.deflate else 'not offered'}\n"
    )
    if stream_rows:
        print(stream_table(stream_rows))
        print()
    if memory_rows:
        print(memory_table(memory_rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_service_options(
        parser,
        database="signal_bench_live",
        redis_env="BENCH_LIVE_REDIS_URL",
        redis_url="redis://127.0.0.1:6379/13",
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated, of {', '.join(SCENARIOS)}",
    )
    parser.add_argument("--replicas", default="1,2", help="comma-separated: 1, 2")
    parser.add_argument("--duration", type=float, default=10, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=2, help="seconds before")
    parser.add_argument(
        "--client-processes", type=int, default=2, help="processes of listeners"
    )
    parser.add_argument(
        "--no-deflate",
        action="store_true",
        help="clients do not offer permessage-deflate (browsers do)",
    )
    args = parser.parse_args()
    scenarios = tuple(args.scenarios.split(","))
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    run(
        Options(
            database=Settings(
                database=args.database,
                admin_dsn=args.admin_dsn,
                redis_url=args.redis_url,
                pipelines=PIPELINES,
                duration=int(args.duration),
                warmup=int(args.warmup),
                connections=(),
            ),
            scenarios=scenarios,
            replicas=tuple(int(r) for r in args.replicas.split(",")),
            duration=args.duration,
            warmup=args.warmup,
            client_processes=args.client_processes,
            deflate=not args.no_deflate,
        )
    )


if __name__ == "__main__":
    main()
