"""The live bus and what decides who sees an item: bounded listeners, the
local fan-out, the in-process bus, the Redis bus between replicas, the
stream filters and the per-user socket slots."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio import Redis

from signal_admin.live.bus import (
    MAX_ITEM_DEPTH,
    BusClosed,
    BusUnavailable,
    Dropped,
    Fanout,
    Feed,
    Listener,
    MemoryBus,
    Message,
    RedisBus,
    live_channel,
)
from signal_admin.resolvers import live
from signal_admin.resolvers.audit_logs import AuditLogFilter
from signal_admin.resolvers.live import (
    SLOT_TTL_SECONDS,
    AuditFeedFilter,
    MemorySocketSlots,
    RedisSocketSlots,
    StageFilter,
)
from tests.redis_server import PrivateRedis, redis_server

__all__ = ["redis_server"]

# Long enough for anything that should happen at once on a busy machine; a
# test only waits this long when it is failing.
PATIENCE = 10.0


def item(n: int, org_id: str = "org_a", pipeline_id: str | None = "pip_1") -> Message:
    """A stage event numbered `n`."""
    return Message(
        {
            "id": f"evt_{n}",
            "n": n,
            "org_id": org_id,
            "pipeline_id": pipeline_id,
            "message_id": f"message-{n}",
            "stage": "received",
            "timestamp": "2026-02-25T14:30:00.123Z",
            "event": {"type": "track", "event": "Order Completed"},
        }
    )


def stage(**fields: Any) -> Message:
    data: dict[str, Any] = {
        "org_id": "org_a",
        "pipeline_id": "pip_1",
        "stage": "received",
        "integration_id": None,
        "pipeline_integration_id": None,
        "event": {"type": "track", "event": "Order Completed"},
    }
    data.update(fields)
    return Message(data)


def audit_entry(**fields: Any) -> Message:
    data: dict[str, Any] = {
        "org_id": "org_a",
        "action": "pipeline.created",
        "resource_type": "pipeline",
        "resource_id": "pip_1",
        "user_id": "usr_1",
        "timestamp": "2026-02-25T14:30:00.123Z",
    }
    data.update(fields)
    return Message(data)


def numbers(messages: list[Message | Dropped]) -> list[Any]:
    return [m.data["n"] if isinstance(m, Message) else m for m in messages]


async def take(listener: Listener, count: int) -> list[Message | Dropped]:
    return [await asyncio.wait_for(listener.next(), PATIENCE) for _ in range(count)]


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Wait until `check` holds (Redis applies a subscriber's commands a
    moment after they are sent)."""
    for _ in range(int(PATIENCE / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    pytest.fail("the condition never held")


def unique_org() -> str:
    return f"org_{uuid.uuid4().hex[:12]}"


class TestListener:
    async def test_keeps_at_most_its_capacity_and_drops_the_oldest(self) -> None:
        listener = Listener(capacity=3)

        for n in range(5):
            listener.offer(item(n))

        assert listener.queued == 3
        assert numbers(await take(listener, 4)) == [Dropped(2), 2, 3, 4]

    async def test_reports_the_drops_before_the_next_item(self) -> None:
        listener = Listener(capacity=2)
        for n in range(3):
            listener.offer(item(n))
        assert numbers(await take(listener, 3)) == [Dropped(1), 1, 2]

        for n in range(3, 6):
            listener.offer(item(n))

        assert numbers(await take(listener, 3)) == [Dropped(1), 4, 5]

    async def test_reports_nothing_dropped_when_it_kept_up(self) -> None:
        listener = Listener(capacity=2)

        listener.offer(item(0))
        first = await listener.next()
        listener.offer(item(1))
        listener.offer(item(2))

        assert numbers([first, *await take(listener, 2)]) == [0, 1, 2]

    async def test_wants_filters_before_queueing(self) -> None:
        listener = Listener(capacity=2, wants=lambda m: m.data["n"] % 2 == 0)

        for n in range(4):
            listener.offer(item(n))

        assert listener.queued == 2
        assert numbers(await take(listener, 2)) == [0, 2]

    async def test_waits_for_an_item(self) -> None:
        listener = Listener()
        waiting = asyncio.create_task(listener.next())
        await asyncio.sleep(0)

        listener.offer(item(7))

        assert numbers([await asyncio.wait_for(waiting, PATIENCE)]) == [7]

    async def test_an_ended_listener_raises_instead_of_waiting(self) -> None:
        listener = Listener()
        waiting = asyncio.create_task(listener.next())
        await asyncio.sleep(0)

        listener.end(BusUnavailable("gone"))

        with pytest.raises(BusUnavailable, match="gone"):
            await asyncio.wait_for(waiting, PATIENCE)


class TestMessage:
    def test_text_is_compact_json_of_the_data(self) -> None:
        message = Message({"a": 1, "b": [1, 2]})

        assert message.text == '{"a":1,"b":[1,2]}'

    def test_keeps_the_text_it_was_read_as(self) -> None:
        message = Message({"a": 1}, text='{"a": 1}')

        assert message.text == '{"a": 1}'

    def test_builds_a_shared_frame_once_per_key(self) -> None:
        message = Message({"a": 1})
        built: list[str] = []

        def build(m: Message) -> str:
            built.append("built")
            return f"frame {m.text}"

        frames = [message.shared("rest", build) for _ in range(3)]
        other = message.shared("graphql", build)

        assert frames == ['frame {"a":1}'] * 3
        assert other == 'frame {"a":1}'
        assert built == ["built", "built"]


class TestFanout:
    async def test_delivers_a_pipelines_items_to_its_listeners_and_to_all_pipeline_ones(
        self,
    ) -> None:
        fanout = Fanout()
        first, second, every = (
            Listener(pipeline_id="pip_1"),
            Listener(pipeline_id="pip_2"),
            Listener(),
        )
        for listener in (first, second, every):
            fanout.add(Feed.LIVE, "org_a", listener)

        fanout.deliver(
            Feed.LIVE,
            "org_a",
            [item(0, pipeline_id="pip_1"), item(1, pipeline_id="pip_2"), item(2)],
        )

        assert numbers(await take(first, first.queued)) == [0, 2]
        assert numbers(await take(second, second.queued)) == [1]
        assert numbers(await take(every, every.queued)) == [0, 1, 2]

    async def test_an_item_of_no_pipeline_reaches_only_all_pipeline_listeners(
        self,
    ) -> None:
        fanout = Fanout()
        scoped, every = Listener(pipeline_id="pip_1"), Listener()
        fanout.add(Feed.LIVE, "org_a", scoped)
        fanout.add(Feed.LIVE, "org_a", every)

        fanout.deliver(Feed.LIVE, "org_a", [item(0, pipeline_id=None)])

        assert scoped.queued == 0
        assert every.queued == 1

    def test_never_delivers_to_another_organisation(self) -> None:
        fanout = Fanout()
        ours, theirs = Listener(), Listener(pipeline_id="pip_1")
        fanout.add(Feed.LIVE, "org_a", ours)
        fanout.add(Feed.LIVE, "org_b", theirs)

        fanout.deliver(Feed.LIVE, "org_a", [item(0, pipeline_id="pip_1")])

        assert ours.queued == 1
        assert theirs.queued == 0

    def test_keeps_the_feeds_apart(self) -> None:
        fanout = Fanout()
        stages, audit = Listener(), Listener()
        fanout.add(Feed.LIVE, "org_a", stages)
        fanout.add(Feed.AUDIT, "org_a", audit)

        fanout.deliver(Feed.AUDIT, "org_a", [item(0)])

        assert stages.queued == 0
        assert audit.queued == 1

    def test_answers_the_first_and_the_last_listener_of_an_organisation(
        self,
    ) -> None:
        fanout = Fanout()
        first, second = Listener(), Listener(pipeline_id="pip_1")

        added = [
            fanout.add(Feed.LIVE, "org_a", first),
            fanout.add(Feed.LIVE, "org_a", second),
        ]
        removed = [
            fanout.remove(Feed.LIVE, "org_a", first),
            fanout.remove(Feed.LIVE, "org_a", second),
        ]

        assert added == [True, False]
        assert removed == [False, True]
        assert not fanout.has_listeners(Feed.LIVE, "org_a")
        assert fanout.listener_count == 0


class TestMemoryBus:
    async def test_a_listener_that_never_reads_neither_holds_up_nor_starves_others(
        self,
    ) -> None:
        bus = MemoryBus(capacity=1000)
        received: list[int] = []

        async with (
            bus.listen(Feed.LIVE, "org_a") as stalled,
            bus.listen(Feed.LIVE, "org_a") as reader,
        ):

            async def read() -> None:
                while len(received) < 10_000:
                    message = await reader.next()
                    assert isinstance(message, Message), message
                    received.append(message.data["n"])

            reading = asyncio.create_task(read())
            for start in range(0, 10_000, 100):
                items = [
                    {"n": n, "org_id": "org_a", "pipeline_id": "pip_1"}
                    for n in range(start, start + 100)
                ]
                await bus.publish(Feed.LIVE, "org_a", items)
                await asyncio.sleep(0)
            await asyncio.wait_for(reading, PATIENCE)

            assert received == list(range(10_000))
            assert stalled.queued == 1000
            assert numbers(await take(stalled, 2)) == [Dropped(9000), 9000]

    async def test_publishes_only_to_the_organisations_listeners(self) -> None:
        bus = MemoryBus()

        async with (
            bus.listen(Feed.LIVE, "org_a", pipeline_id="pip_1") as ours,
            bus.listen(Feed.LIVE, "org_b") as theirs,
        ):
            await bus.publish(Feed.LIVE, "org_a", [item(0).data])

            assert numbers(await take(ours, 1)) == [0]
            assert theirs.queued == 0

    async def test_a_listener_that_left_gets_nothing(self) -> None:
        bus = MemoryBus()
        async with bus.listen(Feed.LIVE, "org_a") as gone:
            pass

        await bus.publish(Feed.LIVE, "org_a", [item(0).data])

        assert gone.queued == 0
        assert bus.fanout.listener_count == 0

    async def test_closing_ends_every_listener_as_a_restart(self) -> None:
        bus = MemoryBus()

        async with bus.listen(Feed.LIVE, "org_a") as listener:
            await bus.close()

            with pytest.raises(BusClosed):
                await asyncio.wait_for(listener.next(), PATIENCE)


class TestStageFilter:
    def test_without_conditions_keeps_everything(self) -> None:
        assert StageFilter()(stage())
        assert StageFilter()(Message({"org_id": "org_a"}))

    def test_pipeline(self) -> None:
        keep = StageFilter(pipeline_id="pip_1")

        assert keep(stage(pipeline_id="pip_1"))
        assert not keep(stage(pipeline_id="pip_2"))

    def test_stages(self) -> None:
        keep = StageFilter(stages=frozenset({"received", "error"}))

        assert keep(stage(stage="received"))
        assert keep(stage(stage="error"))
        assert not keep(stage(stage="processed"))

    def test_event_types(self) -> None:
        keep = StageFilter(event_types=frozenset({"track"}))

        assert keep(stage(event={"type": "track"}))
        assert not keep(stage(event={"type": "page"}))
        assert not keep(stage(event=None))

    def test_event_names(self) -> None:
        keep = StageFilter(event_names=frozenset({"Order Completed"}))

        assert keep(stage(event={"type": "track", "event": "Order Completed"}))
        assert not keep(stage(event={"type": "track", "event": "Cart Viewed"}))
        assert not keep(stage(event="not an object"))

    def test_integration_ids_match_the_template_or_the_attachment(self) -> None:
        keep = StageFilter(integration_ids=frozenset({"int_1", "pin_2"}))

        assert keep(stage(integration_id="int_1", pipeline_integration_id="pin_9"))
        assert keep(stage(integration_id="int_9", pipeline_integration_id="pin_2"))
        assert not keep(stage(integration_id="int_9", pipeline_integration_id="pin_9"))

    def test_integration_ids_skip_stages_of_no_integration(self) -> None:
        keep = StageFilter(integration_ids=frozenset({"int_1"}))

        assert not keep(stage(integration_id=None, pipeline_integration_id=None))

    @pytest.mark.parametrize(
        "odd", [["received"], {"stage": "received"}, 1, None], ids=repr
    )
    def test_a_value_that_is_not_a_string_matches_nothing(self, odd: object) -> None:
        keep = StageFilter(
            stages=frozenset({"received"}),
            event_types=frozenset({"track"}),
            integration_ids=frozenset({"int_1"}),
        )
        matching = {"integration_id": "int_1"}

        assert keep(stage(**matching))
        assert not keep(stage(**{**matching, "stage": odd}))
        assert not keep(stage(**matching, event={"type": odd}))
        assert not keep(stage(integration_id=odd, pipeline_integration_id=odd))

    def test_every_condition_must_hold(self) -> None:
        keep = StageFilter(
            pipeline_id="pip_1",
            stages=frozenset({"transformed"}),
            event_types=frozenset({"track"}),
            event_names=frozenset({"Order Completed"}),
            integration_ids=frozenset({"int_1"}),
        )
        matching = {"stage": "transformed", "integration_id": "int_1"}

        assert keep(stage(**matching))
        assert not keep(stage(**{**matching, "pipeline_id": "pip_2"}))
        assert not keep(stage(**{**matching, "stage": "received"}))
        assert not keep(stage(**{**matching, "integration_id": "int_2"}))
        assert not keep(stage(**matching, event={"type": "page"}))


def audit_filter(**conditions: Any) -> AuditFeedFilter:
    return AuditFeedFilter(AuditLogFilter.model_validate(conditions))


class TestAuditFeedFilter:
    def test_without_conditions_keeps_everything(self) -> None:
        assert audit_filter()(audit_entry())

    def test_an_action(self) -> None:
        keep = audit_filter(action="pipeline.created")

        assert keep(audit_entry(action="pipeline.created"))
        assert not keep(audit_entry(action="pipeline.updated"))
        assert not keep(audit_entry(action=None))

    def test_an_action_prefix(self) -> None:
        keep = audit_filter(action="pipeline.*")

        assert keep(audit_entry(action="pipeline.created"))
        assert keep(audit_entry(action="pipeline.key.rotated"))
        assert not keep(audit_entry(action="pipeline_integration.created"))
        assert not keep(audit_entry(action="user.created"))

    @pytest.mark.parametrize(
        ("name", "wanted", "other"),
        [
            ("resource_type", "pipeline", "template"),
            ("resource_id", "pip_1", "pip_2"),
            ("user_id", "usr_1", "usr_2"),
        ],
    )
    def test_a_field(self, name: str, wanted: str, other: str) -> None:
        keep = audit_filter(**{name: wanted})

        assert keep(audit_entry(**{name: wanted}))
        assert not keep(audit_entry(**{name: other}))

    def test_a_time_range_is_inclusive(self) -> None:
        keep = audit_filter(
            **{"from": "2026-02-25T14:00:00Z", "to": "2026-02-25T15:00:00Z"}
        )

        assert keep(audit_entry(timestamp="2026-02-25T14:00:00.000Z"))
        assert keep(audit_entry(timestamp="2026-02-25T15:00:00.000Z"))
        assert not keep(audit_entry(timestamp="2026-02-25T13:59:59.999Z"))
        assert not keep(audit_entry(timestamp="2026-02-25T15:00:00.001Z"))

    def test_a_date_bound_covers_the_whole_day(self) -> None:
        keep = audit_filter(to="2026-02-25")

        assert keep(audit_entry(timestamp="2026-02-25T23:59:59.999Z"))
        assert not keep(audit_entry(timestamp="2026-02-26T00:00:00.000Z"))

    def test_a_time_range_refuses_entries_without_a_readable_time(self) -> None:
        keep = audit_filter(**{"from": "2026-02-25"})

        assert not keep(audit_entry(timestamp=None))
        assert not keep(audit_entry(timestamp="yesterday"))

    def test_every_condition_must_hold(self) -> None:
        keep = audit_filter(action="pipeline.*", user_id="usr_1")

        assert keep(audit_entry())
        assert not keep(audit_entry(user_id="usr_2"))
        assert not keep(audit_entry(action="user.created"))


class TestMemorySocketSlots:
    async def test_takes_up_to_the_limit_per_user(self) -> None:
        slots = MemorySocketSlots()

        taken = [await slots.take("usr_1", f"s{n}", 2) for n in range(3)]
        other_user = await slots.take("usr_2", "s9", 2)

        assert taken == [True, True, False]
        assert other_user is True

    async def test_a_slot_given_back_is_free_again(self) -> None:
        slots = MemorySocketSlots()
        await slots.take("usr_1", "s1", 1)

        await slots.give_back("usr_1", "s1")

        assert await slots.take("usr_1", "s2", 1) is True


# --- Redis -------------------------------------------------------------------


class Clock:
    """Stands in for the `time` module of the slots."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).timestamp()

    def time(self) -> float:
        return self.now


@pytest.fixture
async def admin(redis_server: PrivateRedis) -> AsyncIterator[Redis]:
    """A plain client of the private Redis, to look at it and publish raw."""
    client = Redis.from_url(redis_server.url())
    yield client
    await client.aclose()


@pytest.fixture
async def replicas(
    redis_server: PrivateRedis,
) -> AsyncIterator[tuple[RedisBus, RedisBus]]:
    """Two buses on one Redis, as two replicas have."""
    clients = [
        Redis.from_url(redis_server.url(), socket_timeout=2, socket_connect_timeout=2)
        for _ in range(2)
    ]
    buses = [RedisBus.from_url(redis_server.url(), client) for client in clients]
    yield buses[0], buses[1]
    for bus, client in zip(buses, clients, strict=True):
        await bus.close()
        await client.aclose()


async def subscriber_connections(admin: Redis) -> int:
    return len(await admin.client_list(_type="pubsub"))


async def channels(admin: Redis) -> set[str]:
    names = await admin.pubsub_channels("signal:*")
    return {name.decode() if isinstance(name, bytes) else name for name in names}


async def until_subscribed(admin: Redis, *names: str) -> None:
    async def subscribed() -> bool:
        return set(names) <= await channels(admin)

    await eventually(subscribed)


class TestRedisBus:
    async def test_one_subscriber_connection_serves_every_listener_and_organisation(
        self, replicas: tuple[RedisBus, RedisBus], admin: Redis
    ) -> None:
        bus, _ = replicas
        orgs = [unique_org() for _ in range(3)]

        async with (
            bus.listen(Feed.LIVE, orgs[0]),
            bus.listen(Feed.LIVE, orgs[0], pipeline_id="pip_1"),
            bus.listen(Feed.LIVE, orgs[1]),
            bus.listen(Feed.AUDIT, orgs[1]),
            bus.listen(Feed.LIVE, orgs[2]),
        ):
            await until_subscribed(
                admin,
                *(live_channel(org) for org in orgs),
                f"signal:audit:{orgs[1]}",
            )

            assert await subscriber_connections(admin) == 1

    async def test_unsubscribes_when_the_last_listener_of_an_organisation_leaves(
        self, replicas: tuple[RedisBus, RedisBus], admin: Redis
    ) -> None:
        bus, _ = replicas
        staying, leaving = unique_org(), unique_org()

        async with bus.listen(Feed.LIVE, staying):
            async with (
                bus.listen(Feed.LIVE, leaving),
                bus.listen(Feed.LIVE, leaving, pipeline_id="pip_1"),
            ):
                await until_subscribed(
                    admin, live_channel(staying), live_channel(leaving)
                )

            async def left() -> bool:
                return await channels(admin) == {live_channel(staying)}

            await eventually(left)
            assert bus.subscribed_channels == {live_channel(staying)}
            assert await subscriber_connections(admin) == 1

        async def closed() -> bool:
            return await subscriber_connections(admin) == 0

        await eventually(closed)

    async def test_a_published_item_reaches_a_listener_of_another_replica_in_order(
        self, replicas: tuple[RedisBus, RedisBus], admin: Redis
    ) -> None:
        publisher, subscriber = replicas
        org = unique_org()

        async with subscriber.listen(Feed.LIVE, org, pipeline_id="pip_1") as listener:
            await until_subscribed(admin, live_channel(org))
            await publisher.publish(
                Feed.LIVE, org, [item(n, org_id=org).data for n in range(50)]
            )

            assert numbers(await take(listener, 50)) == list(range(50))

    async def test_an_item_naming_another_organisation_is_refused(
        self, replicas: tuple[RedisBus, RedisBus], admin: Redis
    ) -> None:
        bus, _ = replicas
        org, other = unique_org(), unique_org()

        async with bus.listen(Feed.LIVE, org) as listener:
            await until_subscribed(admin, live_channel(org))
            await admin.publish(live_channel(org), json.dumps(item(0, other).data))
            await admin.publish(live_channel(org), "not json")
            await admin.publish(live_channel(org), json.dumps([org]))
            await admin.publish(live_channel(org), json.dumps(item(1, org).data))

            assert numbers(await take(listener, 1)) == [1]
            assert listener.queued == 0

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param(
                '{"org_id": "%(org)s", "pipeline_id": "pip_1", "event": '
                + "[" * 2000
                + "]" * 2000
                + "}",
                id="nested-beyond-recursion",
            ),
            pytest.param("%(deep)s", id="nested-beyond-the-limit"),
            pytest.param("%(nan)s", id="nan"),
            pytest.param("%(unknown_stage)s", id="unknown-stage"),
            pytest.param("%(no_timestamp)s", id="no-timestamp"),
            pytest.param("%(numeric_pipeline)s", id="numeric-pipeline"),
        ],
    )
    async def test_an_item_that_is_not_a_stage_event_is_refused_alone(
        self, replicas: tuple[RedisBus, RedisBus], admin: Redis, text: str
    ) -> None:
        bus, _ = replicas
        org = unique_org()
        base = item(0, org).data
        nested: object = "x"
        for _ in range(MAX_ITEM_DEPTH + 1):
            nested = [nested]
        samples = {
            "org": org,
            "deep": json.dumps({**base, "event": {"deep": nested}}),
            "nan": json.dumps(base).replace('"n": 0', '"n": NaN'),
            "unknown_stage": json.dumps({**base, "stage": "pwned"}),
            "no_timestamp": json.dumps(
                {k: v for k, v in base.items() if k != "timestamp"}
            ),
            "numeric_pipeline": json.dumps({**base, "pipeline_id": 5}),
        }

        async with bus.listen(Feed.LIVE, org) as listener:
            await until_subscribed(admin, live_channel(org))
            await admin.publish(live_channel(org), text % samples)
            await admin.publish(live_channel(org), json.dumps(item(1, org).data))

            assert numbers(await take(listener, 1)) == [1]
            assert listener.queued == 0

    async def test_a_malformed_item_does_not_end_filtered_listeners(
        self, replicas: tuple[RedisBus, RedisBus], admin: Redis
    ) -> None:
        bus, _ = replicas
        org = unique_org()
        wants = StageFilter(event_types=frozenset({"track"}))
        odd = {**item(0, org).data, "event": {"type": ["track"]}}
        fine = item(1, org).data

        async with bus.listen(Feed.LIVE, org, wants=wants) as listener:
            await until_subscribed(admin, live_channel(org))
            await admin.publish(live_channel(org), json.dumps(odd))
            await admin.publish(live_channel(org), json.dumps(fine))

            assert numbers(await take(listener, 1)) == [1]

    async def test_keeps_the_text_it_read_for_every_listener(
        self, replicas: tuple[RedisBus, RedisBus], admin: Redis
    ) -> None:
        bus, _ = replicas
        org = unique_org()
        text = json.dumps(item(0, org).data, indent=1)

        async with (
            bus.listen(Feed.LIVE, org) as first,
            bus.listen(Feed.LIVE, org) as second,
        ):
            await until_subscribed(admin, live_channel(org))
            await admin.publish(live_channel(org), text)
            (one,), (two,) = await take(first, 1), await take(second, 1)

        assert isinstance(one, Message)
        assert one is two
        assert one.text == text

    async def test_losing_redis_ends_every_listener_and_a_new_listen_works_after(
        self,
        replicas: tuple[RedisBus, RedisBus],
        redis_server: PrivateRedis,
        admin: Redis,
    ) -> None:
        bus, _ = replicas
        org, other = unique_org(), unique_org()

        async with (
            bus.listen(Feed.LIVE, org) as first,
            bus.listen(Feed.LIVE, org, pipeline_id="pip_1") as second,
            bus.listen(Feed.AUDIT, other) as third,
        ):
            await until_subscribed(admin, live_channel(org), f"signal:audit:{other}")
            redis_server.stop()

            for listener in (first, second, third):
                with pytest.raises(BusUnavailable):
                    await asyncio.wait_for(listener.next(), PATIENCE)

        redis_server.start()
        async with bus.listen(Feed.LIVE, org) as again:
            await until_subscribed(admin, live_channel(org))
            await bus.publish(Feed.LIVE, org, [item(0, org).data])

            assert numbers(await take(again, 1)) == [0]

    async def test_listening_while_redis_is_down_is_refused(
        self, replicas: tuple[RedisBus, RedisBus], redis_server: PrivateRedis
    ) -> None:
        bus, _ = replicas
        redis_server.stop()

        with pytest.raises(BusUnavailable):
            async with bus.listen(Feed.LIVE, unique_org()):
                pass

        assert bus.fanout.listener_count == 0

    async def test_publishing_while_redis_is_down_does_not_raise(
        self, replicas: tuple[RedisBus, RedisBus], redis_server: PrivateRedis
    ) -> None:
        bus, _ = replicas
        redis_server.stop()

        await bus.publish(Feed.LIVE, unique_org(), [item(0).data])

    async def test_closing_ends_every_listener_as_a_restart(
        self, replicas: tuple[RedisBus, RedisBus], admin: Redis
    ) -> None:
        bus, _ = replicas
        org = unique_org()

        async with bus.listen(Feed.LIVE, org) as listener:
            await until_subscribed(admin, live_channel(org))
            await bus.close()

            with pytest.raises(BusClosed):
                await asyncio.wait_for(listener.next(), PATIENCE)


class TestRedisSocketSlots:
    @pytest.fixture
    def clock(self, monkeypatch: pytest.MonkeyPatch) -> Clock:
        fake = Clock()
        monkeypatch.setattr(live, "time", fake)
        return fake

    async def test_counts_a_users_sockets_across_replicas(
        self, admin: Redis, clock: Clock
    ) -> None:
        first, second = RedisSocketSlots(admin), RedisSocketSlots(admin)
        user = f"usr_{uuid.uuid4().hex[:12]}"

        taken = [
            await first.take(user, "a1", 3),
            await second.take(user, "b1", 3),
            await first.take(user, "a2", 3),
            await second.take(user, "b2", 3),
        ]
        someone_else = await second.take(f"usr_{uuid.uuid4().hex[:12]}", "c1", 3)

        assert taken == [True, True, True, False]
        assert someone_else is True

    async def test_a_slot_given_back_on_one_replica_frees_it_on_the_other(
        self, admin: Redis, clock: Clock
    ) -> None:
        first, second = RedisSocketSlots(admin), RedisSocketSlots(admin)
        user = f"usr_{uuid.uuid4().hex[:12]}"
        await first.take(user, "a1", 1)

        refused = await second.take(user, "b1", 1)
        await first.give_back(user, "a1")
        allowed = await second.take(user, "b1", 1)

        assert (refused, allowed) == (False, True)

    async def test_slots_not_kept_expire(self, admin: Redis, clock: Clock) -> None:
        crashed, survivor = RedisSocketSlots(admin), RedisSocketSlots(admin)
        user = f"usr_{uuid.uuid4().hex[:12]}"
        await crashed.take(user, "a1", 2)
        await crashed.take(user, "a2", 2)

        clock.now += SLOT_TTL_SECONDS + 1

        assert await survivor.take(user, "b1", 2) is True
        assert await survivor.take(user, "b2", 2) is True

    async def test_slots_kept_do_not_expire(self, admin: Redis, clock: Clock) -> None:
        first, second = RedisSocketSlots(admin), RedisSocketSlots(admin)
        user = f"usr_{uuid.uuid4().hex[:12]}"
        await first.take(user, "a1", 1)

        clock.now += SLOT_TTL_SECONDS - 1
        await first.keep([(user, "a1")])
        clock.now += SLOT_TTL_SECONDS - 1

        assert await second.take(user, "b1", 1) is False

    async def test_keeping_counts_again_the_slots_a_restarted_redis_lost(
        self, admin: Redis, clock: Clock
    ) -> None:
        slots = RedisSocketSlots(admin)
        user = f"usr_{uuid.uuid4().hex[:12]}"
        await slots.take(user, "a1", 1)
        await admin.delete(f"signal:live-sockets:{user}")

        await slots.keep([(user, "a1")])

        assert await slots.take(user, "a2", 1) is False

    async def test_refuses_a_socket_while_redis_is_down(
        self, admin: Redis, redis_server: PrivateRedis
    ) -> None:
        slots = RedisSocketSlots(admin)
        redis_server.stop()

        with pytest.raises(BusUnavailable):
            await slots.take("usr_1", "a1", 1)
