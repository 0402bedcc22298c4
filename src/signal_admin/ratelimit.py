"""Sliding-window rate limits, in-process or shared through Redis.

The window is a log of request times: a request is allowed while fewer than
`limit` requests fall in the last `window` seconds. Unlike fixed minute buckets,
a burst at the end of one minute and the start of the next cannot double the
limit.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from signal_admin.metrics import RATE_LIMITER_FAILURES

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: int  # epoch seconds when the oldest counted request leaves the window
    retry_after: int  # whole seconds until a request would be allowed; 0 if allowed


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window: float) -> RateDecision: ...


def _decision(
    allowed: bool, limit: int, count: int, oldest: float, now: float, window: float
) -> RateDecision:
    reset_at = oldest + window if count else now + window
    retry_after = 0 if allowed else max(1, math.ceil(reset_at - now))
    return RateDecision(
        allowed=allowed,
        limit=limit,
        remaining=max(0, limit - count),
        reset_at=math.ceil(reset_at),
        retry_after=retry_after,
    )


class MemoryRateLimiter:
    """One process's limiter: a deque of request times per key.

    Keys whose window has emptied are swept out now and then, so a stream of
    one-off callers (client addresses, unknown emails) does not grow memory
    without bound.
    """

    def __init__(self, sweep_interval: float = 60.0) -> None:
        self._logs: dict[str, deque[float]] = {}
        self._windows: dict[str, float] = {}
        self._sweep_interval = sweep_interval
        self._next_sweep = 0.0

    @property
    def tracked_keys(self) -> int:
        """How many keys the limiter holds request times for."""
        return len(self._logs)

    async def hit(self, key: str, limit: int, window: float) -> RateDecision:
        now = time.time()
        if now >= self._next_sweep:
            self._sweep(now)
        entries = self._logs.setdefault(key, deque())
        self._windows[key] = window
        while entries and entries[0] <= now - window:
            entries.popleft()
        allowed = len(entries) < limit
        if allowed:
            entries.append(now)
        decision = _decision(
            allowed, limit, len(entries), entries[0] if entries else now, now, window
        )
        if not entries:
            self._forget(key)
        return decision

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + self._sweep_interval
        stale = [
            key
            for key, entries in self._logs.items()
            if not entries or entries[-1] <= now - self._windows[key]
        ]
        for key in stale:
            self._forget(key)

    def _forget(self, key: str) -> None:
        del self._logs[key]
        del self._windows[key]


# Trims the key's sorted set to the window, adds the request when there is room
# and answers {allowed, count, oldest score}, atomically on the Redis server.
_SLIDING_WINDOW_SCRIPT = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
local allowed = 0
if count < limit then
  redis.call('ZADD', key, now, ARGV[4])
  count = count + 1
  allowed = 1
end
redis.call('PEXPIRE', key, math.ceil(window * 1000))
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {allowed, count, oldest[2] or tostring(now)}
"""


class RedisRateLimiter:
    """The limiter shared by every replica. When Redis cannot be reached it
    lets the request through, logs a warning and counts a metric: an outage of
    Redis must not become an outage of the API."""

    def __init__(self, redis: Redis, prefix: str = "signal:ratelimit:") -> None:
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(_SLIDING_WINDOW_SCRIPT)

    async def hit(self, key: str, limit: int, window: float) -> RateDecision:
        now = time.time()
        try:
            allowed, count, oldest = await self._script(
                keys=[self._prefix + key],
                args=[now, window, limit, f"{now}:{uuid.uuid4().hex}"],
            )
        except (RedisError, OSError) as error:
            RATE_LIMITER_FAILURES.inc()
            log.warning("ratelimit.store_unreachable", error=str(error))
            return RateDecision(True, limit, limit, math.ceil(now + window), 0)
        return _decision(bool(allowed), limit, int(count), float(oldest), now, window)
