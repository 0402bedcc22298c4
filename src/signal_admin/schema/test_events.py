"""Test events: a dry run of events through a pipeline's configuration."""

from __future__ import annotations

from typing import Annotated

import strawberry

from signal_admin.errors import DomainError
from signal_admin.processing.test_events import EventResult
from signal_admin.resolvers import test_events
from signal_admin.schema.context import Info
from signal_admin.schema.errors import UserError
from signal_admin.schema.fields import mutation_field
from signal_admin.schema.inputs import given
from signal_admin.schema.live import LiveEvent
from signal_admin.schema.scalars import JSON
from signal_admin.schema.templates import template_user_errors


@strawberry.input(
    description="Events to send through a pipeline as a dry run: event or events."
)
class SendTestEventsInput:
    pipeline_id: strawberry.ID = strawberry.field(description="The pipeline.")
    event: JSON | None = strawberry.field(
        default=strawberry.UNSET, description="One canonical event."
    )
    events: list[JSON] | None = strawberry.field(
        default=strawberry.UNSET, description="1 to 100 canonical events."
    )


@strawberry.type(description="What happened to one test event.")
class TestEventResult:
    message_id: str = strawberry.field(description="The event's messageId.")
    stages: list[LiveEvent] = strawberry.field(
        description="Its stages, in the order they happened."
    )

    @classmethod
    def from_result(cls, result: EventResult) -> TestEventResult:
        return cls(
            message_id=result.message_id,
            stages=[LiveEvent.from_stage(stage) for stage in result.stages],
        )


@strawberry.type(description="The result of sendTestEvents.")
class SendTestEventsPayload:
    results: list[TestEventResult] | None = strawberry.field(
        default=None, description="One result per event, in order; null on failure."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="What to fix in the input."
    )


@strawberry.type
class TestEventsMutation:
    @mutation_field(
        description="Send 1 to 100 events through a pipeline as a dry run: "
        "nothing is delivered; each stage is answered and published live."
    )
    async def send_test_events(
        self,
        info: Info,
        input: Annotated[
            SendTestEventsInput, strawberry.argument(description="The events.")
        ],
    ) -> SendTestEventsPayload | None:
        try:
            results = await test_events.send_test_events(
                info.context.request,
                input.pipeline_id,
                given(input, exclude=("pipeline_id",)),
            )
        except DomainError as error:
            return SendTestEventsPayload(user_errors=template_user_errors(error))
        return SendTestEventsPayload(
            results=[TestEventResult.from_result(result) for result in results]
        )
