"""The event bus stage events are published to.

`LiveBus` is the one interface publishers use. `MemoryBus` serves one process
(embedded mode): publishing hands each event to the listeners of its
organisation, never waiting for them; each listener keeps at most
`LISTENER_QUEUE` events and, when it falls behind, loses the oldest and is
told how many. `RedisBus` publishes across replicas.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = structlog.get_logger(__name__)

StageEvent = dict[str, Any]
LISTENER_QUEUE = 1000


class LiveBus(Protocol):
    async def publish(self, org_id: str, events: Sequence[StageEvent]) -> None:
        """Hand `events` to the organisation's listeners, in order."""


class Listener:
    """One listener's bounded queue of stage events."""

    def __init__(self, capacity: int = LISTENER_QUEUE) -> None:
        self._events: deque[StageEvent] = deque(maxlen=capacity)
        self._ready = asyncio.Event()
        self.dropped = 0

    def offer(self, event: StageEvent) -> None:
        if len(self._events) == self._events.maxlen:
            self.dropped += 1
        self._events.append(event)
        self._ready.set()

    async def next(self) -> StageEvent:
        while not self._events:
            self._ready.clear()
            await self._ready.wait()
        return self._events.popleft()

    def take_dropped(self) -> int:
        """How many events were lost since the last call."""
        count, self.dropped = self.dropped, 0
        return count


class MemoryBus:
    """The in-process bus of embedded mode."""

    def __init__(self) -> None:
        self._listeners: dict[str, set[Listener]] = {}

    async def publish(self, org_id: str, events: Sequence[StageEvent]) -> None:
        for listener in tuple(self._listeners.get(org_id, ())):
            for event in events:
                listener.offer(event)

    @asynccontextmanager
    async def listen(self, org_id: str) -> AsyncIterator[Listener]:
        listener = Listener()
        self._listeners.setdefault(org_id, set()).add(listener)
        try:
            yield listener
        finally:
            listeners = self._listeners.get(org_id, set())
            listeners.discard(listener)
            if not listeners:
                self._listeners.pop(org_id, None)


class RedisBus:
    """Publishes to `signal:live:{org_id}`, where every replica (and the data
    plane) meets. A Redis outage loses the live copy of the events, never the
    request that produced them."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def publish(self, org_id: str, events: Sequence[StageEvent]) -> None:
        if not events:
            return
        channel = live_channel(org_id)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for event in events:
                    pipe.publish(channel, json.dumps(event, separators=(",", ":")))
                await pipe.execute()
        except (RedisError, OSError) as error:
            log.warning(
                "live.publish_failed",
                org_id=org_id,
                events=len(events),
                error=type(error).__name__,
            )


def live_channel(org_id: str) -> str:
    return f"signal:live:{org_id}"
