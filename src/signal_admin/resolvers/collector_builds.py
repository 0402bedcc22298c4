"""Collector builds: a pipeline's JavaScript collector, built from its
settings at one moment and kept, byte for byte, as the build that moment made.

A build reads the pipeline's `js_builder_config`, its key, the consent
defaults in `config.consent`, the cross-domain domains of `identity_config`,
and the vendors of its enabled attachments that run in the browser. Changing
any of those later leaves earlier builds as they were: a site that pinned a
build's `integrity` keeps loading exactly the bytes it pinned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from pydantic import BaseModel, ConfigDict
from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, defer

from signal_admin.collector import ScriptSettings, render
from signal_admin.errors import (
    FieldProblem,
    InvalidPipelineKey,
    NotFound,
    ValidationFailed,
)
from signal_admin.persistence.ids import check_id, new_id
from signal_admin.persistence.models import (
    CollectorBuild,
    IntegrationRevision,
    IntegrationTemplate,
    Pipeline,
    PipelineIntegration,
)
from signal_admin.persistence.pagination import Page, check_page_size, fetch_page
from signal_admin.persistence.text import is_storable
from signal_admin.persistence.types import utc_now
from signal_admin.resolvers import audit, sources
from signal_admin.resolvers.context import RequestContext, requires
from signal_admin.security.permissions import Permission

log = structlog.get_logger(__name__)

# The most a built script may weigh gzipped; settings that would make it
# heavier (thousands of cross-domain domains or consent categories) are refused.
MAX_GZIP_BYTES = 8 * 1024

# Attachments whose pinned revision delivers from the page itself.
BROWSER_DELIVERY_MODES = ("client_side", "hybrid")
_ID_DRAWS = 16
MAX_KEY_LENGTH = 64


class BuildRequest(BaseModel):
    """A collector build takes no options: an empty object, or no body."""

    model_config = ConfigDict(extra="forbid", strict=True)


@requires(Permission.BUILD_COLLECTORS)
async def build_collector(
    ctx: RequestContext, pipeline_id: str, *, audited_as: str = "pipeline"
) -> CollectorBuild:
    """Build the pipeline's collector from its settings as they are now.
    `audited_as` names the resource the caller addressed: `pipeline`, or
    `source` for the legacy route."""
    principal = ctx.authenticated()
    kind = audited_as.capitalize()
    check_id(pipeline_id, "pip", kind)
    async with ctx.db.transaction() as session:
        # Locked, so two builds of one pipeline take versions one after the other.
        pipeline = await session.scalar(
            select(Pipeline)
            .where(Pipeline.id == pipeline_id, Pipeline.org_id == principal.org_id)
            .with_for_update()
        )
        if pipeline is None:
            raise NotFound.of(kind, pipeline_id)
        vendors = await _browser_vendors(session, pipeline.id)
        script = render(script_settings(pipeline, vendors))
        if script.gzip_size_bytes > MAX_GZIP_BYTES:
            raise ValidationFailed(
                f"The script would weigh {script.gzip_size_bytes} bytes gzipped, "
                f"over the {MAX_GZIP_BYTES} a collector may; list fewer "
                "cross-domain domains or consent categories.",
                [
                    FieldProblem(
                        "script",
                        "TOO_LARGE",
                        f"{script.gzip_size_bytes} bytes gzipped, over "
                        f"{MAX_GZIP_BYTES}",
                    )
                ],
            )
        latest = (
            await session.execute(
                select(CollectorBuild.id, CollectorBuild.version)
                .where(CollectorBuild.pipeline_id == pipeline.id)
                .order_by(CollectorBuild.version.desc())
                .limit(1)
            )
        ).first()
        build = CollectorBuild(
            id=_id_after(latest.id if latest else None),
            org_id=pipeline.org_id,
            pipeline_id=pipeline.id,
            version=latest.version + 1 if latest else 1,
            pipeline_key=pipeline.pipeline_key,
            script_filename=pipeline.js_builder_config["script_filename"],
            global_variable=pipeline.js_builder_config["global_variable"],
            size_bytes=script.size_bytes,
            gzip_size_bytes=script.gzip_size_bytes,
            sha256=script.sha256,
            integrity=script.integrity,
            vendors=list(vendors),
            script=script.text,
            created_by=principal.user_id,
            created_at=utc_now(),
        )
        session.add(build)
        audit.record(
            session,
            ctx,
            action=f"{audited_as}.collector_built",
            resource_type=audited_as,
            resource_id=pipeline.id,
            metadata={
                "build_id": build.id,
                "version": build.version,
                "script_filename": build.script_filename,
                "sha256": build.sha256,
            },
        )
        await session.flush()
    log.info(
        "collector.built",
        pipeline_id=pipeline_id,
        build_id=build.id,
        version=build.version,
        gzip_size_bytes=build.gzip_size_bytes,
    )
    return build


@requires(Permission.READ_CONFIGURATION)
async def list_builds(
    ctx: RequestContext, pipeline_id: str, *, cursor: str | None, limit: int
) -> Page[CollectorBuild]:
    """The pipeline's builds, newest first, without their scripts."""
    principal = ctx.authenticated()
    async with ctx.db.read() as session:
        await _owned_pipeline(session, principal.org_id, pipeline_id)
        statement = (
            select(CollectorBuild)
            .where(CollectorBuild.pipeline_id == pipeline_id)
            .options(defer(CollectorBuild.script, raiseload=True))
        )
        return await fetch_page(
            session,
            statement,
            CollectorBuild.id,
            cursor=cursor,
            limit=limit,
            descending=True,
        )


@requires(Permission.READ_CONFIGURATION)
async def get_build(
    ctx: RequestContext, pipeline_id: str, build_id: str
) -> CollectorBuild:
    """One build of the pipeline, script included."""
    principal = ctx.authenticated()
    check_id(pipeline_id, "pip", "Pipeline")
    check_id(build_id, "bld", "Collector build")
    async with ctx.db.read() as session:
        build = await session.scalar(
            select(CollectorBuild).where(
                CollectorBuild.id == build_id,
                CollectorBuild.pipeline_id == pipeline_id,
                CollectorBuild.org_id == principal.org_id,
            )
        )
        if build is None:
            # Say which of the two is missing: the pipeline, or only the build.
            await _owned_pipeline(session, principal.org_id, pipeline_id)
            raise NotFound.of("Collector build", build_id)
    return build


@requires(Permission.READ_CONFIGURATION)
async def latest_builds(
    ctx: RequestContext, pipeline_ids: Sequence[str], limit: int
) -> list[CollectorBuild]:
    """Up to `limit` of the newest builds of each of `pipeline_ids` in the
    organisation, without their scripts, newest first: one statement for any
    number of pipelines."""
    principal = ctx.authenticated()
    check_page_size(limit)
    rank = (
        func.row_number()
        .over(
            partition_by=CollectorBuild.pipeline_id,
            order_by=CollectorBuild.version.desc(),
        )
        .label("rank")
    )
    ranked = (
        select(CollectorBuild, rank)
        .where(
            CollectorBuild.org_id == principal.org_id,
            CollectorBuild.pipeline_id.in_(pipeline_ids),
        )
        .subquery()
    )
    build = aliased(CollectorBuild, ranked)
    async with ctx.db.read() as session:
        rows = await session.scalars(
            select(build)
            .where(ranked.c.rank <= limit)
            .options(defer(build.script, raiseload=True))
            .order_by(build.pipeline_id, build.version.desc())
        )
        return list(rows)


@dataclass(frozen=True, slots=True)
class PublishedScript:
    """The script a site loads, and what its answer's headers say of it."""

    text: str
    sha256: str


async def published_script(
    ctx: RequestContext, pipeline_key: str, script_filename: str
) -> PublishedScript:
    """The newest build that carries `pipeline_key`, for anyone: sites load
    it without a token. A pipeline's current key serves the newest build made
    since the key was issued; the key it had before its last rotation, until
    that key expires, serves the newest build made with it, so a page that
    pinned that build's `integrity` keeps working through the grace period.

    A key that names no pipeline, or an expired one, is refused with
    INVALID_PIPELINE_KEY. A file name other than that build's, or a key no
    build carries yet (the pipeline was not built since the rotation), is
    not found."""
    if len(pipeline_key) > MAX_KEY_LENGTH or not is_storable(pipeline_key):
        # No key is that long or holds such text; the database is not asked.
        raise InvalidPipelineKey()
    async with ctx.db.read() as session:
        pipeline_id = await session.scalar(
            select(Pipeline.id).where(_accepts_key(pipeline_key)).limit(1)
        )
        if pipeline_id is None:
            raise InvalidPipelineKey()
        newest = await session.execute(
            select(
                CollectorBuild.script_filename,
                CollectorBuild.script,
                CollectorBuild.sha256,
            )
            .where(
                CollectorBuild.pipeline_key == pipeline_key,
                CollectorBuild.pipeline_id == pipeline_id,
            )
            .order_by(CollectorBuild.version.desc())
            .limit(1)
        )
        row = newest.first()
    if row is None:
        raise NotFound(
            "No collector build carries this key yet: build the collector "
            "again after rotating the pipeline's key."
        )
    if row.script_filename != script_filename:
        # The name is not repeated: anyone may ask, with a name of any length.
        raise NotFound("This pipeline's newest collector build has another name.")
    return PublishedScript(text=row.script, sha256=row.sha256)


def script_settings(pipeline: Pipeline, vendors: Sequence[str]) -> ScriptSettings:
    """What the script is built with, read from the pipeline's settings."""
    builder = pipeline.js_builder_config
    identity = pipeline.identity_config
    return ScriptSettings(
        pipeline_key=pipeline.pipeline_key,
        endpoint=builder.get("endpoint"),
        global_variable=builder["global_variable"],
        batch_size=builder["batch_size"],
        flush_interval_ms=builder["flush_interval_ms"],
        consent=consent_defaults(pipeline),
        cross_domain_domains=(
            tuple(identity.get("cross_domain_domains", ()))
            if identity.get("cross_domain_enabled")
            else ()
        ),
        vendors=tuple(vendors),
    )


def consent_defaults(pipeline: Pipeline) -> dict[str, bool] | None:
    """The consent a page starts with, from the pipeline's `config.consent`
    read as a source shows it (a key that does not validate reads as its
    default): when consent is managed (`enabled`), its `default_categories`
    are granted until the page calls `consent()`; otherwise events carry no
    consent."""
    consent = sources.consent_of(pipeline)
    if not consent["enabled"]:
        return None
    return dict.fromkeys(consent["default_categories"], True)


async def _browser_vendors(session: AsyncSession, pipeline_id: str) -> list[str]:
    """The vendor keys of the pipeline's enabled attachments whose pinned
    revision runs in the browser, each once, in order."""
    vendors = await session.scalars(
        select(IntegrationTemplate.vendor)
        .join(
            PipelineIntegration,
            PipelineIntegration.template_id == IntegrationTemplate.id,
        )
        .join(
            IntegrationRevision,
            IntegrationRevision.id == PipelineIntegration.revision_id,
        )
        .where(
            PipelineIntegration.pipeline_id == pipeline_id,
            PipelineIntegration.enabled.is_(True),
            IntegrationRevision.delivery_mode.in_(BROWSER_DELIVERY_MODES),
        )
        .distinct()
        .order_by(IntegrationTemplate.vendor)
    )
    return list(vendors)


def _id_after(previous: str | None) -> str:
    """A new build id that sorts after the pipeline's previous build, so
    lists in id order are in build order even for builds made within one
    millisecond (ids are ordered by time only to the millisecond). A few
    draws settle it; should a clock that went back make none sort after,
    versions still say the order."""
    build_id = new_id("bld")
    for _ in range(_ID_DRAWS):
        if previous is None or build_id > previous:
            break
        build_id = new_id("bld")
    return build_id


def _accepts_key(pipeline_key: str) -> ColumnElement[bool]:
    return or_(
        Pipeline.pipeline_key == pipeline_key,
        (Pipeline.previous_pipeline_key == pipeline_key)
        & (Pipeline.previous_key_expires_at > utc_now()),
    )


async def _owned_pipeline(session: AsyncSession, org_id: str, pipeline_id: str) -> None:
    check_id(pipeline_id, "pip", "Pipeline")
    found = await session.scalar(
        select(Pipeline.id).where(Pipeline.id == pipeline_id, Pipeline.org_id == org_id)
    )
    if found is None:
        raise NotFound.of("Pipeline", pipeline_id)
