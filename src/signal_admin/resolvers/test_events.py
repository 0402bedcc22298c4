"""Test events: canonical events sent through a pipeline's configuration as a
dry run. Nothing is written or delivered; each stage is answered and
published to the live stream once the run is over."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from signal_admin.errors import NotFound
from signal_admin.live.bus import Feed
from signal_admin.persistence.ids import check_id
from signal_admin.persistence.models import (
    Pipeline,
    PipelineIntegration,
    Transformation,
)
from signal_admin.processing.test_events import (
    EventResult,
    IntegrationPlan,
    PipelinePlan,
    TransformationPlan,
    run_test_events,
)
from signal_admin.resolvers import (
    data_layer,
    dry_runs,
    pipeline_integrations,
    secrets,
)
from signal_admin.resolvers.context import RequestContext, requires
from signal_admin.resolvers.validation import parse
from signal_admin.security.permissions import Permission


@requires(Permission.WRITE_TRANSFORMATIONS)
async def send_test_events(
    ctx: RequestContext, pipeline_id: str, data: Any
) -> list[EventResult]:
    """Run 1 to 100 events through the pipeline; one result per event."""
    principal = ctx.authenticated()
    deadline = dry_runs.budget(ctx)
    # Up to 100 events of 256 KiB each: checked off the event loop.
    batch = await dry_runs.off_loop(ctx, lambda: parse(dry_runs.EventBatch, data))
    plan = await _plan(ctx, principal.org_id, pipeline_id)

    javascript = dry_runs.javascript(ctx, principal.org_id, deadline)
    results = await dry_runs.off_loop(
        ctx,
        lambda: run_test_events(
            plan, batch.all(), javascript=javascript, deadline=deadline
        ),
    )

    if ctx.services.live is not None:
        stages = [stage for result in results for stage in result.stages]
        await ctx.services.live.publish(Feed.LIVE, principal.org_id, stages)
    return results


async def _plan(ctx: RequestContext, org_id: str, pipeline_id: str) -> PipelinePlan:
    """Everything the run reads, in one short read transaction."""
    check_id(pipeline_id, "pip", "Pipeline")
    async with ctx.db.read() as session:
        pipeline = await session.scalar(
            select(Pipeline).where(
                Pipeline.id == pipeline_id, Pipeline.org_id == org_id
            )
        )
        if pipeline is None:
            raise NotFound.of("Pipeline", pipeline_id)
        attached = list(
            await session.execute(
                pipeline_integrations.with_template_and_revision()
                .where(
                    PipelineIntegration.pipeline_id == pipeline.id,
                    PipelineIntegration.enabled.is_(True),
                )
                .order_by(PipelineIntegration.id)
            )
        )
        template_ids = [template.id for _, template, _ in attached]
        applying = list(
            await session.scalars(
                select(Transformation)
                .where(
                    Transformation.org_id == org_id,
                    Transformation.enabled.is_(True),
                    or_(
                        Transformation.template_id.is_(None),
                        Transformation.template_id.in_(template_ids),
                    ),
                )
                .order_by(Transformation.name, Transformation.id)
            )
        )
        rules = await data_layer.current_config(session, org_id)

    return PipelinePlan(
        org_id=org_id,
        pipeline_id=pipeline.id,
        parameters=dict(pipeline.parameters),
        data_layer=rules,
        integrations=tuple(
            IntegrationPlan(
                pipeline_integration_id=row.id,
                integration_id=template.id,
                vendor=template.vendor,
                consent_categories=tuple(row.consent_categories),
                config=secrets.masked(revision.config),
                transformations=tuple(
                    TransformationPlan(t.id, t.name, t.config)
                    for t in applying
                    if t.template_id in (None, template.id)
                ),
            )
            for row, template, revision in attached
        ),
    )
