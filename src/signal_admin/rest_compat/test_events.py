"""Test events: a dry run of events through a pipeline's configuration."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Response

from signal_admin.resolvers import test_events
from signal_admin.resolvers.dry_runs import EventBatch
from signal_admin.resolvers.validation import Unparsed
from signal_admin.rest_compat import API_PREFIX
from signal_admin.rest_compat.dependencies import Context, permitted
from signal_admin.rest_compat.documents import rendered_off_loop

router = APIRouter(prefix=f"{API_PREFIX}/pipelines", tags=["Pipelines"])


@router.post(
    "/{pipeline_id}/test-events",
    response_model=dict[str, Any],
    dependencies=[permitted(test_events.send_test_events)],
)
async def send_test_events(
    ctx: Context, pipeline_id: str, body: Annotated[EventBatch, Unparsed]
) -> Response:
    """Send 1 to 100 events through the pipeline as a dry run; nothing is
    delivered, each stage is answered and published to the live stream."""
    results = await test_events.send_test_events(ctx, pipeline_id, body)
    return await rendered_off_loop(
        {"results": [result.as_dict() for result in results]}
    )
