"""The streams behind subscription fields: one bus listener each, its items
made into schema objects.

A stream is opened by its field's resolver, which authorises the caller and
checks the arguments first, and it is listening once `open` returns: a
subscription that was refused never listens, and one that was admitted misses
nothing published after that. The WebSocket endpoint reads the same stream one
item at a time (`next_item`) so that subscribers of one document share each
event's execution.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Generic, TypeVar

from signal_admin.live.bus import (
    UNREACHABLE,
    BusUnavailable,
    Dropped,
    Feed,
    Listener,
    LiveBus,
    Message,
)

T = TypeVar("T")
Item = Message | Dropped


class FeedStream(Generic[T]):
    """One subscription's items of one feed of an organisation, as `view`
    makes them; an async iterator, closed with `aclose`."""

    def __init__(
        self, listener: Listener, stack: AsyncExitStack, view: Callable[[Item], T]
    ) -> None:
        self._listener = listener
        self._stack = stack
        self._view = view

    @classmethod
    async def open(
        cls,
        bus: LiveBus | None,
        feed: Feed,
        org_id: str,
        *,
        pipeline_id: str | None,
        wants: Callable[[Message], bool],
        view: Callable[[Item], T],
    ) -> FeedStream[T]:
        """Register a listener; `BusUnavailable` when the bus cannot carry
        items to this process."""
        if bus is None:
            raise BusUnavailable(UNREACHABLE)
        stack = AsyncExitStack()
        listener = await stack.enter_async_context(
            bus.listen(feed, org_id, pipeline_id=pipeline_id, wants=wants)
        )
        return cls(listener, stack, view)

    async def next_item(self) -> Item:
        """The next item as the bus hands it: a message, or the count of those
        lost since the last one."""
        return await self._listener.next()

    def view(self, item: Item) -> T:
        return self._view(item)

    def __aiter__(self) -> FeedStream[T]:
        return self

    async def __anext__(self) -> T:
        return self._view(await self.next_item())

    async def aclose(self) -> None:
        """Stop listening."""
        await self._stack.aclose()
