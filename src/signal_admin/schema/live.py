"""Stage events: what happened to one event at one step, as the live stream
and test events carry it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any

import strawberry

from signal_admin.live.bus import Dropped, Feed, Message
from signal_admin.persistence.ids import new_id
from signal_admin.resolvers import live
from signal_admin.schema.context import GraphQLContext, Info
from signal_admin.schema.fields import subscription_field
from signal_admin.schema.inputs import given
from signal_admin.schema.scalars import JSON
from signal_admin.schema.streams import FeedStream


@strawberry.enum(description="The step a stage event records.")
class LiveStage(Enum):
    RECEIVED = strawberry.enum_value("received", description="The event arrived.")
    REJECTED = strawberry.enum_value(
        "rejected", description="It is not a valid event; error lists why."
    )
    PROCESSED = strawberry.enum_value(
        "processed", description="The data layer let it through."
    )
    DROPPED = strawberry.enum_value(
        "dropped", description="The data layer dropped it; reason says why."
    )
    TRANSFORMED = strawberry.enum_value(
        "transformed", description="An integration's payload is ready."
    )
    FILTERED = strawberry.enum_value(
        "filtered", description="A mapping default or a transformation dropped it."
    )
    SKIPPED = strawberry.enum_value(
        "skipped", description="Consent the integration needs was not granted."
    )
    ERROR = strawberry.enum_value("error", description="A step failed.")
    DELIVERED = strawberry.enum_value(
        "delivered", description="The data plane delivered it."
    )
    DELIVERY_FAILED = strawberry.enum_value(
        "delivery_failed", description="The data plane could not deliver it."
    )
    DROPPED_NOTICE = strawberry.enum_value(
        "dropped_notice",
        description="Only on liveEvents: the subscriber fell behind and lost "
        "droppedCount events; the other fields describe nothing.",
    )


@strawberry.type(description="Why a stage failed.")
class StageError:
    code: str = strawberry.field(description="E.g. INVALID_EVENT, JS_TIMEOUT.")
    message: str = strawberry.field(description="What went wrong.")
    details: JSON | None = strawberry.field(
        description="For INVALID_EVENT, one {field, code, message} per problem."
    )


@strawberry.type(description="What happened to one event at one step.")
class LiveEvent:
    id: strawberry.ID = strawberry.field(description="The stage event's id (evt_…).")
    stage: LiveStage = strawberry.field(description="The step.")
    reason: str | None = strawberry.field(
        description="Why it was dropped, filtered or skipped."
    )
    org_id: strawberry.ID = strawberry.field(description="The organisation.")
    pipeline_id: strawberry.ID | None = strawberry.field(
        description="The pipeline; on a DROPPED_NOTICE, the subscription's "
        "pipeline (null when it watches every pipeline)."
    )
    message_id: str | None = strawberry.field(
        description="The event's messageId; null on a DROPPED_NOTICE."
    )
    integration_id: strawberry.ID | None = strawberry.field(
        description="The template, for an integration's stage."
    )
    pipeline_integration_id: strawberry.ID | None = strawberry.field(
        description="The attachment, for an integration's stage."
    )
    vendor: str | None = strawberry.field(description="The integration's vendor.")
    timestamp: datetime = strawberry.field(description="When it happened.")
    duration_ms: float = strawberry.field(description="How long the step took.")
    event: JSON | None = strawberry.field(
        description="The event, with the organisation's PII rules applied."
    )
    payload: JSON | None = strawberry.field(
        description="The integration's vendor payload, once built."
    )
    error: StageError | None = strawberry.field(description="Why the step failed.")
    vendor_response: JSON | None = strawberry.field(
        default=None,
        description="On DELIVERED and DELIVERY_FAILED, what the vendor answered.",
    )
    dropped_count: int | None = strawberry.field(
        default=None,
        description="On a DROPPED_NOTICE, how many events this subscriber lost "
        "because it fell behind; null on every other stage.",
    )

    @classmethod
    def dropped_notice(
        cls, org_id: str, pipeline_id: str | None, dropped: Dropped
    ) -> LiveEvent:
        """The notice that stands for the events a subscriber lost."""
        return cls(
            id=strawberry.ID(new_id("evt")),
            stage=LiveStage.DROPPED_NOTICE,
            reason=f"{dropped.count} events were dropped: the subscriber fell behind.",
            org_id=strawberry.ID(org_id),
            pipeline_id=None if pipeline_id is None else strawberry.ID(pipeline_id),
            message_id=None,
            integration_id=None,
            pipeline_integration_id=None,
            vendor=None,
            timestamp=datetime.now(UTC),
            duration_ms=0.0,
            event=None,
            payload=None,
            error=None,
            dropped_count=dropped.count,
        )

    @classmethod
    def from_stage(cls, stage: dict[str, Any]) -> LiveEvent:
        """The stage event as published. The fields a stage event must have
        are read strictly (an item without them cannot be shown); the
        optional ones may be missing, as from a data plane that leaves them
        out."""
        error = stage.get("error")
        payload = stage.get("payload")
        vendor_response = stage.get("vendor_response")
        return cls(
            id=strawberry.ID(stage["id"]),
            stage=LiveStage(stage["stage"]),
            reason=stage.get("reason"),
            org_id=strawberry.ID(stage["org_id"]),
            pipeline_id=strawberry.ID(stage["pipeline_id"]),
            message_id=stage.get("message_id"),
            integration_id=stage.get("integration_id"),
            pipeline_integration_id=stage.get("pipeline_integration_id"),
            vendor=stage.get("vendor"),
            timestamp=datetime.fromisoformat(stage["timestamp"]),
            duration_ms=float(stage.get("duration_ms") or 0.0),
            event=JSON(stage.get("event")),
            payload=JSON(payload) if payload is not None else None,
            error=(
                None
                if error is None
                else StageError(
                    code=error["code"],
                    message=error["message"],
                    details=JSON(error["details"]) if "details" in error else None,
                )
            ),
            vendor_response=(
                JSON(vendor_response) if vendor_response is not None else None
            ),
        )


@strawberry.input(
    description="Which stage events to receive; every list given must contain "
    "the event's value."
)
class LiveEventFilter:
    stages: list[LiveStage] | None = strawberry.field(
        default=strawberry.UNSET, description="Only these stages."
    )
    event_types: list[str] | None = strawberry.field(
        default=strawberry.UNSET,
        description="Only events of these types (track, page, identify, group).",
    )
    event_names: list[str] | None = strawberry.field(
        default=strawberry.UNSET,
        description="Only events with these names (a track event's event).",
    )
    integration_ids: list[strawberry.ID] | None = strawberry.field(
        default=strawberry.UNSET,
        description="Only the stages of these integrations: a template's or "
        "an attachment's id.",
    )


async def open_live_events(
    context: GraphQLContext,
    pipeline_id: strawberry.ID | None,
    filter_input: LiveEventFilter | None,
) -> FeedStream[LiveEvent]:
    """The stream of a liveEvents subscription, listening once it returns."""
    ctx = context.request
    wants = await live.open_stage_stream(
        ctx, pipeline_id or None, given(filter_input) if filter_input else {}
    )
    org_id = ctx.authenticated().org_id

    def view(item: Message | Dropped) -> LiveEvent:
        if isinstance(item, Dropped):
            return LiveEvent.dropped_notice(org_id, wants.pipeline_id, item)
        return LiveEvent.from_stage(item.data)

    return await FeedStream.open(
        ctx.services.live,
        Feed.LIVE,
        org_id,
        pipeline_id=wants.pipeline_id,
        wants=wants,
        view=view,
    )


@strawberry.type
class LiveSubscription:
    @subscription_field(
        description="Stage events as they happen, of one pipeline or of every "
        "pipeline of the organisation; a DROPPED_NOTICE says how many this "
        "subscriber lost when it fell behind."
    )
    async def live_events(
        self,
        info: Info,
        pipeline_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="Only this pipeline's events."),
        ] = strawberry.UNSET,
        filter: Annotated[
            LiveEventFilter | None,
            strawberry.argument(description="Which events to receive."),
        ] = strawberry.UNSET,
    ) -> AsyncIterator[LiveEvent]:
        return await open_live_events(info.context, pipeline_id, filter)
