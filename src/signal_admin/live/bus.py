"""The bus live items travel on: stage events (`Feed.LIVE`) and audit entries
(`Feed.AUDIT`), each on a channel per organisation.

`LiveBus` is the one interface. Publishers hand it JSON-ready dictionaries;
listeners open a bounded `Listener` for one feed of one organisation. Both
implementations fan out locally through a `Fanout`, which never waits for a
listener: each keeps at most its capacity, loses the oldest items when it
falls behind, and is told how many it lost.

- `MemoryBus` serves one process (embedded mode).
- `RedisBus` meets every replica and the data plane on Redis pub/sub
  (`signal:live:{org_id}`, `signal:audit:{org_id}`). Each process keeps one
  subscriber connection, subscribed to the channels of the organisations it
  has listeners for. When that connection is lost, every listener ends with
  `BusUnavailable`; the next `listen` connects afresh.

An item is decoded once per process and serialised once: `Message` carries
its JSON text and a cache where each protocol keeps the frame it built, so
every listener of a protocol sends the same text.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from collections import deque
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, TypeVar

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from signal_admin import strict_json

log = structlog.get_logger(__name__)

LISTENER_QUEUE = 1000
# How deep objects and arrays may nest in an item read from Redis.
MAX_ITEM_DEPTH = 64
# The steps a stage event may record.
STAGES = frozenset(
    {
        "received",
        "rejected",
        "processed",
        "dropped",
        "transformed",
        "filtered",
        "skipped",
        "error",
        "delivered",
        "delivery_failed",
    }
)
UNREACHABLE = "The live event bus (Redis) is unreachable."
LOST = "The connection to the live event bus (Redis) was lost."
# How long Redis may take to confirm a new subscription.
SUBSCRIBE_TIMEOUT_SECONDS = 2.0
T = TypeVar("T")


class Feed(StrEnum):
    LIVE = "live"
    AUDIT = "audit"
    # Configuration changes, for the data plane (resolvers/announcements.py).
    CONFIG = "config"


def channel(feed: Feed, org_id: str) -> str:
    """The Redis channel of one organisation's feed."""
    return f"signal:{feed.value}:{org_id}"


def live_channel(org_id: str) -> str:
    return channel(Feed.LIVE, org_id)


class BusUnavailable(Exception):
    """The bus cannot carry items to this process's listeners: Redis is
    unreachable, or the connection to it was lost."""


class BusClosed(BusUnavailable):
    """The process is shutting down: its sockets close as a restart (1012)."""


class Message:
    """One published item, as every listener of this process shares it."""

    __slots__ = ("_frames", "_text", "data")

    def __init__(self, data: dict[str, Any], text: str | None = None) -> None:
        self.data = data
        self._text = text
        self._frames: dict[Hashable, Any] = {}

    @property
    def text(self) -> str:
        """The item as compact JSON, encoded on first use."""
        if self._text is None:
            self._text = json.dumps(self.data, separators=(",", ":"))
        return self._text

    @property
    def pipeline_id(self) -> str | None:
        value = self.data.get("pipeline_id")
        return value if isinstance(value, str) else None

    def shared(self, key: Hashable, build: Callable[[Message], T]) -> T:
        """What `build` makes of this message, made once for every listener
        asking with the same `key` (a protocol, or a protocol and a
        selection)."""
        if key not in self._frames:
            self._frames[key] = build(self)
        value: T = self._frames[key]
        return value


@dataclass(frozen=True, slots=True)
class Dropped:
    """Items a listener lost because its queue was full."""

    count: int


class Listener:
    """One listener's bounded queue.

    `wants` picks the items the listener keeps, before they take room in its
    queue; `pipeline_id`, when set, limits it to that pipeline's items and
    lets the fan-out skip it for every other pipeline.
    """

    def __init__(
        self,
        *,
        pipeline_id: str | None = None,
        wants: Callable[[Message], bool] | None = None,
        capacity: int = LISTENER_QUEUE,
    ) -> None:
        self.pipeline_id = pipeline_id
        self.wants = wants
        self._messages: deque[Message] = deque(maxlen=capacity)
        self._ready = asyncio.Event()
        self._dropped = 0
        self._ended: BusUnavailable | None = None

    def offer(self, message: Message) -> None:
        if self.wants is not None and not self.wants(message):
            return
        if len(self._messages) == self._messages.maxlen:
            self._dropped += 1
        self._messages.append(message)
        self._ready.set()

    def end(self, error: BusUnavailable) -> None:
        """Stop the listener: its next `next()` raises `error`."""
        self._ended = error
        self._ready.set()

    async def next(self) -> Message | Dropped:
        """The next item, or first the count of those lost since the last
        call."""
        while True:
            if self._ended is not None:
                raise self._ended
            if self._dropped:
                count, self._dropped = self._dropped, 0
                return Dropped(count)
            if self._messages:
                return self._messages.popleft()
            self._ready.clear()
            await self._ready.wait()

    @property
    def queued(self) -> int:
        return len(self._messages)


class Fanout:
    """This process's listeners, by feed and organisation and, within those,
    by pipeline (None for listeners of every pipeline)."""

    def __init__(self) -> None:
        self._listeners: dict[tuple[Feed, str], dict[str | None, set[Listener]]] = {}

    def add(self, feed: Feed, org_id: str, listener: Listener) -> bool:
        """Register `listener`; answers whether it is the first of its feed
        and organisation."""
        scopes = self._listeners.setdefault((feed, org_id), {})
        first = not scopes
        scopes.setdefault(listener.pipeline_id, set()).add(listener)
        return first

    def remove(self, feed: Feed, org_id: str, listener: Listener) -> bool:
        """Forget `listener`; answers whether it was the last of its feed and
        organisation."""
        scopes = self._listeners.get((feed, org_id))
        if scopes is None:
            return False
        listeners = scopes.get(listener.pipeline_id, set())
        listeners.discard(listener)
        if not listeners:
            scopes.pop(listener.pipeline_id, None)
        if scopes:
            return False
        del self._listeners[(feed, org_id)]
        return True

    def has_listeners(self, feed: Feed, org_id: str) -> bool:
        return (feed, org_id) in self._listeners

    def deliver(self, feed: Feed, org_id: str, messages: Sequence[Message]) -> None:
        scopes = self._listeners.get((feed, org_id))
        if not scopes:
            return
        everything = tuple(scopes.get(None, ()))
        for message in messages:
            for listener in everything:
                _offer(listener, message)
            pipeline_id = message.pipeline_id
            if pipeline_id is not None:
                for listener in tuple(scopes.get(pipeline_id, ())):
                    _offer(listener, message)

    def end_all(self, error: BusUnavailable) -> None:
        for scopes in self._listeners.values():
            for listeners in scopes.values():
                for listener in listeners:
                    listener.end(error)

    @property
    def listener_count(self) -> int:
        return sum(
            len(listeners)
            for scopes in self._listeners.values()
            for listeners in scopes.values()
        )


def _offer(listener: Listener, message: Message) -> None:
    """Offer `message` to one listener; a filter that fails on an odd item
    skips it for that listener alone."""
    try:
        listener.offer(message)
    except Exception as error:
        log.warning("live.item_skipped", error=repr(error))


class LiveBus(Protocol):
    async def publish(
        self, feed: Feed, org_id: str, items: Sequence[dict[str, Any]]
    ) -> None:
        """Hand `items` to the organisation's listeners of `feed`, in order,
        without waiting for any of them. Never raises: a bus that cannot
        carry them logs it, since the live copy is never the only one."""

    def listen(
        self,
        feed: Feed,
        org_id: str,
        *,
        pipeline_id: str | None = None,
        wants: Callable[[Message], bool] | None = None,
    ) -> AbstractAsyncContextManager[Listener]:
        """A listener for the organisation's items of `feed`, registered for
        the block's duration. Raises `BusUnavailable` when the bus cannot
        carry items to this process."""

    async def close(self) -> None:
        """End every listener and release connections."""


class MemoryBus:
    """The in-process bus of embedded mode."""

    def __init__(self, capacity: int = LISTENER_QUEUE) -> None:
        self.fanout = Fanout()
        self._capacity = capacity

    async def publish(
        self, feed: Feed, org_id: str, items: Sequence[dict[str, Any]]
    ) -> None:
        if self.fanout.has_listeners(feed, org_id):
            self.fanout.deliver(feed, org_id, [Message(item) for item in items])

    @asynccontextmanager
    async def listen(
        self,
        feed: Feed,
        org_id: str,
        *,
        pipeline_id: str | None = None,
        wants: Callable[[Message], bool] | None = None,
    ) -> AsyncIterator[Listener]:
        listener = Listener(
            pipeline_id=pipeline_id, wants=wants, capacity=self._capacity
        )
        self.fanout.add(feed, org_id, listener)
        try:
            yield listener
        finally:
            self.fanout.remove(feed, org_id, listener)

    async def close(self) -> None:
        self.fanout.end_all(BusClosed("The service is shutting down."))


class RedisBus:
    """Pub/sub on Redis, shared by every replica and the data plane.

    Publishing uses the service's Redis client. Listening uses one subscriber
    connection of its own, opened by the first listener and made without
    retries, so that a lost connection is seen at once: events published
    while it was down are gone, and the listeners must know it.
    """

    def __init__(
        self, redis: Redis, subscriber: Redis, capacity: int = LISTENER_QUEUE
    ) -> None:
        self._redis = redis
        self._subscriber = subscriber
        self._capacity = capacity
        self.fanout = Fanout()
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._subscribed: set[str] = set()
        self._confirming: dict[str, asyncio.Future[None]] = {}
        self._lock = asyncio.Lock()

    @classmethod
    def from_url(
        cls, url: str, redis: Redis, capacity: int = LISTENER_QUEUE
    ) -> RedisBus:
        subscriber = Redis.from_url(
            url,
            retry=Retry(NoBackoff(), 0),
            socket_connect_timeout=2,
            socket_keepalive=True,
            health_check_interval=15,
        )
        return cls(redis, subscriber, capacity)

    async def publish(
        self, feed: Feed, org_id: str, items: Sequence[dict[str, Any]]
    ) -> None:
        if not items:
            return
        name = channel(feed, org_id)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for item in items:
                    pipe.publish(name, json.dumps(item, separators=(",", ":")))
                await pipe.execute()
        except (RedisError, OSError) as error:
            log.warning(
                "live.publish_failed",
                feed=feed.value,
                org_id=org_id,
                items=len(items),
                error=type(error).__name__,
            )

    @asynccontextmanager
    async def listen(
        self,
        feed: Feed,
        org_id: str,
        *,
        pipeline_id: str | None = None,
        wants: Callable[[Message], bool] | None = None,
    ) -> AsyncIterator[Listener]:
        listener = Listener(
            pipeline_id=pipeline_id, wants=wants, capacity=self._capacity
        )
        await self._subscribe(feed, org_id, listener)
        try:
            yield listener
        finally:
            await self._unsubscribe(feed, org_id, listener)

    async def close(self) -> None:
        self.fanout.end_all(BusClosed("The service is shutting down."))
        async with self._lock:
            await self._disconnect()
        await self._subscriber.aclose()

    @property
    def subscribed_channels(self) -> frozenset[str]:
        return frozenset(self._subscribed)

    async def _subscribe(self, feed: Feed, org_id: str, listener: Listener) -> None:
        """Register `listener`, subscribing this process to its channel first
        if it is the channel's first: the listener is returned only once
        Redis has confirmed the subscription, so nothing published after
        `listen` returns can be missed."""
        name = channel(feed, org_id)
        async with self._lock:
            self.fanout.add(feed, org_id, listener)
            if name in self._subscribed:
                return
            try:
                await self._confirmed_subscription(name)
            except (RedisError, OSError, TimeoutError, BusUnavailable) as error:
                self.fanout.remove(feed, org_id, listener)
                log.warning("live.subscribe_failed", channel=name, error=repr(error))
                if not self._subscribed:
                    await self._disconnect()
                raise BusUnavailable(UNREACHABLE) from error
            self._subscribed.add(name)

    async def _confirmed_subscription(self, name: str) -> None:
        if self._pubsub is None:
            self._pubsub = self._subscriber.pubsub()
        confirmed = asyncio.get_running_loop().create_future()
        self._confirming[name] = confirmed
        try:
            await self._pubsub.subscribe(name)
            if self._reader is None:
                # A context of its own: the reader serves every listener, so
                # its log lines carry no request id of the one that started it.
                self._reader = asyncio.create_task(
                    self._read(self._pubsub),
                    name="live-bus-reader",
                    context=contextvars.Context(),
                )
            async with asyncio.timeout(SUBSCRIBE_TIMEOUT_SECONDS):
                await confirmed
        finally:
            self._confirming.pop(name, None)

    async def _unsubscribe(self, feed: Feed, org_id: str, listener: Listener) -> None:
        name = channel(feed, org_id)
        async with self._lock:
            if not self.fanout.remove(feed, org_id, listener):
                return
            if name not in self._subscribed:
                return
            self._subscribed.discard(name)
            if not self._subscribed:
                # The last listener left: close the connection rather than keep
                # an idle subscriber.
                await self._disconnect()
                return
            if self._pubsub is not None:
                try:
                    await self._pubsub.unsubscribe(name)
                except (RedisError, OSError) as error:
                    log.warning(
                        "live.unsubscribe_failed", channel=name, error=str(error)
                    )

    async def _read(self, pubsub: PubSub) -> None:
        """Hand every message of the subscriber connection to the local
        listeners, and confirm subscriptions, until the connection fails or
        is closed."""
        try:
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is None:
                    continue
                if message["type"] == "message":
                    self._deliver(message)
                elif message["type"] == "subscribe":
                    self._confirm(_text(message.get("channel")))
        except asyncio.CancelledError:
            raise
        except (RedisError, OSError) as error:
            log.warning("live.subscriber_lost", error=str(error))
            await self._lost()
        except Exception:
            log.exception("live.subscriber_failed")
            await self._lost()

    def _confirm(self, name: str) -> None:
        confirmed = self._confirming.get(name)
        if confirmed is not None and not confirmed.done():
            confirmed.set_result(None)

    def _deliver(self, message: dict[str, Any]) -> None:
        name = _text(message.get("channel"))
        _, _, rest = name.partition(":")
        feed_name, _, org_id = rest.partition(":")
        try:
            feed = Feed(feed_name)
        except ValueError:
            return
        decoded = decode_item(message.get("data"), org_id, feed)
        if decoded is not None:
            self.fanout.deliver(feed, org_id, [decoded])

    async def _lost(self) -> None:
        for confirmed in self._confirming.values():
            if not confirmed.done():
                confirmed.set_exception(BusUnavailable(LOST))
        async with self._lock:
            self._reader = None
            self.fanout.end_all(BusUnavailable(LOST))
            self._subscribed.clear()
            await self._disconnect()

    async def _disconnect(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            with suppress(asyncio.CancelledError):
                await reader
        pubsub, self._pubsub = self._pubsub, None
        self._subscribed.clear()
        if pubsub is not None:
            with suppress(RedisError, OSError):
                await pubsub.aclose()


def decode_item(data: object, org_id: str, feed: Feed = Feed.LIVE) -> Message | None:
    """A message read from an organisation's channel, or None (logged as
    `live.item_refused`) when it is not what the channel carries: a JSON
    object of that organisation (an item naming another never reaches this
    one's listeners), nested at most `MAX_ITEM_DEPTH` deep, and on the live
    feed a stage event."""
    problem: str | None
    try:
        text = _text(data)
        item = strict_json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        item, problem = None, "not JSON"
    else:
        problem = _problem_of(item, org_id, feed)
    if problem is not None:
        log.warning("live.item_refused", org_id=org_id, reason=problem)
        return None
    return Message(item, text)


def _problem_of(item: object, org_id: str, feed: Feed) -> str | None:
    if not isinstance(item, dict) or item.get("org_id") != org_id:
        return "not an object of this organisation"
    if strict_json.nesting_depth(item) > MAX_ITEM_DEPTH:
        return "nested too deep"
    if feed is Feed.LIVE and not is_stage_event(item):
        return "not a stage event"
    return None


def is_stage_event(item: dict[str, Any]) -> bool:
    """Whether `item` has a stage event's required fields, of their types."""
    event = item.get("event")
    return (
        isinstance(item.get("id"), str)
        and isinstance(item.get("pipeline_id"), str)
        and item.get("stage") in STAGES
        and _is_timestamp(item.get("timestamp"))
        and isinstance(item.get("message_id"), str | None)
        and isinstance(event, dict | None)
    )


def _is_timestamp(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return value if isinstance(value, str) else ""
