"""The sliding-window limiters, in process and through Redis."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from signal_admin import ratelimit
from signal_admin.metrics import REGISTRY
from signal_admin.ratelimit import MemoryRateLimiter, RedisRateLimiter

REDIS_URL = os.environ.get("TEST_REDIS_URL")
# Nothing listens on port 1: connecting fails at once.
CLOSED_PORT = "redis://127.0.0.1:1/0"


def _failures_counted() -> float:
    value = REGISTRY.get_sample_value("signal_admin_rate_limiter_failures_total")
    return value or 0.0


class FakeClock:
    """Stands in for the `time` module inside the limiter."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(ratelimit, "time", fake)
    return fake


class TestMemoryRateLimiter:
    async def test_allows_up_to_the_limit(self, clock: FakeClock) -> None:
        limiter = MemoryRateLimiter()

        decisions = [await limiter.hit("k", 3, 60) for _ in range(3)]

        assert [d.allowed for d in decisions] == [True, True, True]
        assert [d.remaining for d in decisions] == [2, 1, 0]

    async def test_refuses_the_request_over_the_limit(self, clock: FakeClock) -> None:
        limiter = MemoryRateLimiter()
        for _ in range(3):
            await limiter.hit("k", 3, 60)

        decision = await limiter.hit("k", 3, 60)

        assert decision.allowed is False
        assert decision.remaining == 0
        assert decision.limit == 3

    async def test_retry_after_counts_until_the_oldest_request_leaves(
        self, clock: FakeClock
    ) -> None:
        limiter = MemoryRateLimiter()
        await limiter.hit("k", 2, 60)
        clock.now += 20
        await limiter.hit("k", 2, 60)
        clock.now += 10.5

        decision = await limiter.hit("k", 2, 60)

        assert decision.retry_after == 30
        assert decision.reset_at == 1_000_060

    async def test_retry_after_is_at_least_one_second(self, clock: FakeClock) -> None:
        limiter = MemoryRateLimiter()
        await limiter.hit("k", 1, 60)
        clock.now += 59.999

        decision = await limiter.hit("k", 1, 60)

        assert decision.allowed is False
        assert decision.retry_after == 1

    async def test_window_slides_instead_of_resetting(self, clock: FakeClock) -> None:
        limiter = MemoryRateLimiter()
        await limiter.hit("k", 2, 60)
        clock.now += 59
        await limiter.hit("k", 2, 60)
        clock.now += 2

        allowed = await limiter.hit("k", 2, 60)
        refused = await limiter.hit("k", 2, 60)

        assert allowed.allowed is True
        assert refused.allowed is False

    async def test_burst_across_a_minute_boundary_cannot_double_the_limit(
        self, clock: FakeClock
    ) -> None:
        limiter = MemoryRateLimiter()
        clock.now = 1_000_020.0 + 59
        for _ in range(5):
            await limiter.hit("k", 5, 60)
        clock.now += 2

        decisions = [await limiter.hit("k", 5, 60) for _ in range(5)]

        assert [d.allowed for d in decisions] == [False] * 5

    async def test_refused_requests_are_not_counted(self, clock: FakeClock) -> None:
        limiter = MemoryRateLimiter()
        await limiter.hit("k", 1, 60)
        for _ in range(10):
            await limiter.hit("k", 1, 60)
        clock.now += 60.001

        decision = await limiter.hit("k", 1, 60)

        assert decision.allowed is True

    async def test_keys_have_separate_windows(self, clock: FakeClock) -> None:
        limiter = MemoryRateLimiter()
        await limiter.hit("a", 1, 60)

        decision = await limiter.hit("b", 1, 60)

        assert decision.allowed is True

    async def test_reset_is_when_the_oldest_request_leaves(
        self, clock: FakeClock
    ) -> None:
        limiter = MemoryRateLimiter()
        await limiter.hit("k", 5, 60)
        clock.now += 10

        decision = await limiter.hit("k", 5, 60)

        assert decision.reset_at == 1_000_060
        assert decision.retry_after == 0

    async def test_forgets_keys_whose_window_has_passed(self, clock: FakeClock) -> None:
        limiter = MemoryRateLimiter(sweep_interval=60)
        for address in range(100):
            await limiter.hit(f"ip:{address}", 5, 60)
        clock.now += 61

        await limiter.hit("ip:new", 5, 60)

        assert limiter.tracked_keys == 1

    async def test_keeps_keys_still_inside_their_window(self, clock: FakeClock) -> None:
        limiter = MemoryRateLimiter(sweep_interval=60)
        await limiter.hit("login:a", 1, 600)
        clock.now += 61

        await limiter.hit("ip:new", 5, 60)
        refused = await limiter.hit("login:a", 1, 600)

        assert limiter.tracked_keys == 2
        assert refused.allowed is False


class TestRedisRateLimiterWhenUnreachable:
    async def test_lets_the_request_through(self) -> None:
        redis = Redis.from_url(CLOSED_PORT)
        limiter = RedisRateLimiter(redis)

        decisions = [await limiter.hit("k", 1, 60) for _ in range(2)]
        await redis.aclose()

        assert [d.allowed for d in decisions] == [True, True]

    async def test_counts_the_failure(self) -> None:
        redis = Redis.from_url(CLOSED_PORT)
        limiter = RedisRateLimiter(redis)
        before = _failures_counted()

        await limiter.hit("k", 1, 60)
        await redis.aclose()

        assert _failures_counted() == before + 1


@pytest.mark.skipif(REDIS_URL is None, reason="set TEST_REDIS_URL to test with Redis")
class TestRedisRateLimiter:
    @pytest.fixture
    async def limiter(self) -> AsyncIterator[RedisRateLimiter]:
        assert REDIS_URL is not None
        redis = Redis.from_url(REDIS_URL)
        yield RedisRateLimiter(redis, prefix=f"test:{uuid.uuid4().hex}:")
        await redis.aclose()

    async def test_allows_up_to_the_limit_then_refuses(
        self, limiter: RedisRateLimiter
    ) -> None:
        decisions = [await limiter.hit("k", 3, 60) for _ in range(4)]

        assert [d.allowed for d in decisions] == [True, True, True, False]
        assert [d.remaining for d in decisions] == [2, 1, 0, 0]
        assert decisions[-1].retry_after >= 1

    async def test_window_slides(
        self, limiter: RedisRateLimiter, clock: FakeClock
    ) -> None:
        await limiter.hit("k", 2, 60)
        clock.now += 59
        await limiter.hit("k", 2, 60)
        clock.now += 2

        allowed = await limiter.hit("k", 2, 60)
        refused = await limiter.hit("k", 2, 60)

        assert allowed.allowed is True
        assert refused.allowed is False
        assert refused.retry_after == 58

    async def test_instances_share_one_window(self, limiter: RedisRateLimiter) -> None:
        assert REDIS_URL is not None
        redis = Redis.from_url(REDIS_URL)
        other = RedisRateLimiter(redis, prefix=limiter._prefix)
        await limiter.hit("k", 1, 60)

        decision = await other.hit("k", 1, 60)
        await redis.aclose()

        assert decision.allowed is False
