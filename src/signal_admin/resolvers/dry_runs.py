"""What transformation tests and test events share: the events they take, the
time budget of a request, and running the processing steps off the event loop.

Processing code is synchronous (expressions, mappings, custom JavaScript in
V8), so a dry run executes in a worker thread, one request at a time per
thread, and the event loop keeps serving other requests meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from signal_admin.errors import FieldProblem
from signal_admin.processing.runtime import Deadline, JavaScriptRunner
from signal_admin.resolvers.context import RequestContext
from signal_admin.resolvers.validation import check_document_size

MAX_EVENTS = 100
T = TypeVar("T")


class EventBatch(BaseModel):
    """`event` (one object) or `events` (1 to 100 objects), not both."""

    model_config = ConfigDict(extra="forbid", strict=True)

    event: dict[str, Any] | None = None
    events: (
        Annotated[list[dict[str, Any]], Field(min_length=1, max_length=MAX_EVENTS)]
        | None
    ) = None

    @field_validator("event")
    @classmethod
    def _event_size(cls, event: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if event is None else check_document_size(event)

    @field_validator("events")
    @classmethod
    def _events_size(
        cls, events: list[dict[str, Any]] | None
    ) -> list[dict[str, Any]] | None:
        for event in events or []:
            check_document_size(event)
        return events

    @model_validator(mode="after")
    def _one_of_them(self) -> EventBatch:
        if (self.event is None) == (self.events is None):
            raise ValueError("Give either event (one object) or events (a list).")
        return self

    def all(self) -> list[dict[str, Any]]:
        return [self.event] if self.event is not None else list(self.events or [])


def budget(ctx: RequestContext) -> Deadline:
    """The request's time budget, counted from its first dry run, so that the
    dry runs of one request (several mutations of a GraphQL document) share
    one budget rather than having one each."""
    if ctx.dry_run_deadline is None:
        ctx.dry_run_deadline = Deadline(ctx.settings.dry_run_budget_seconds)
    return ctx.dry_run_deadline


def javascript(
    ctx: RequestContext, owner: str, deadline: Deadline
) -> JavaScriptRunner | None:
    """Custom JavaScript for `owner`'s code, each call limited by what is left
    of the request's budget; None where the service runs no sandbox."""
    sandbox = ctx.services.sandbox
    if sandbox is None:
        return None
    return sandbox.runner(owner, time_limit_ms=deadline.remaining_ms)


async def javascript_problems(
    ctx: RequestContext, sources: Sequence[tuple[str, str]]
) -> list[FieldProblem]:
    """What keeps each (field, source) from running: a syntax error, no
    `process` function, too much source. Compiled off the event loop."""
    sandbox = ctx.services.sandbox
    if sandbox is None or not sources:
        return []

    def check() -> list[FieldProblem]:
        return [
            FieldProblem(field, "INVALID_JAVASCRIPT", message)
            for field, source in sources
            for message in sandbox.source_problems(source)
        ]

    return await off_loop(ctx, check)


async def off_loop(ctx: RequestContext, work: Callable[[], T]) -> T:
    """`work()` in a worker thread; at most PROCESSING_THREADS run at once."""
    return await anyio.to_thread.run_sync(work, limiter=ctx.services.processing_slots())
