"""Stage events: what happened to one event at one step, as the live stream
and test events carry it."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry

from signal_admin.schema.scalars import JSON


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
    pipeline_id: strawberry.ID = strawberry.field(description="The pipeline.")
    message_id: str = strawberry.field(description="The event's messageId.")
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

    @classmethod
    def from_stage(cls, stage: dict[str, Any]) -> LiveEvent:
        error = stage["error"]
        return cls(
            id=strawberry.ID(stage["id"]),
            stage=LiveStage(stage["stage"]),
            reason=stage["reason"],
            org_id=strawberry.ID(stage["org_id"]),
            pipeline_id=strawberry.ID(stage["pipeline_id"]),
            message_id=stage["message_id"],
            integration_id=stage["integration_id"],
            pipeline_integration_id=stage["pipeline_integration_id"],
            vendor=stage["vendor"],
            timestamp=datetime.fromisoformat(stage["timestamp"]),
            duration_ms=stage["duration_ms"],
            event=JSON(stage["event"]),
            payload=JSON(stage["payload"]) if stage["payload"] is not None else None,
            error=(
                None
                if error is None
                else StageError(
                    code=error["code"],
                    message=error["message"],
                    details=JSON(error["details"]) if "details" in error else None,
                )
            ),
        )
