"""Sources (legacy): the first version's name for a pipeline, as a view over
the same rows. A source's id is its pipeline's id, and the paths name it so."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from signal_admin.persistence.models import Pipeline
from signal_admin.persistence.types import format_timestamp
from signal_admin.resolvers import collector_builds, sources
from signal_admin.resolvers.collector_builds import BuildRequest
from signal_admin.resolvers.sources import (
    CollectorSettings,
    ConsentSettings,
    CrossDomainSettings,
    Source,
    SourceChange,
    SourceFields,
    SourceReplace,
)
from signal_admin.rest_compat import API_PREFIX
from signal_admin.rest_compat.collector import CollectorBuildOut, build_body
from signal_admin.rest_compat.dependencies import (
    DEFAULT_LIMIT,
    Context,
    Cursor,
    IfMatch,
    Limit,
    etag,
    permitted,
)
from signal_admin.rest_compat.idempotency import IdempotencyKey, idempotent
from signal_admin.rest_compat.lists import list_response

router = APIRouter(prefix=f"{API_PREFIX}/sources", tags=["Sources (legacy)"])


class SourceConfigOut(BaseModel):
    vendors: list[str]
    consent: ConsentSettings
    cross_domain: CrossDomainSettings
    collector: CollectorSettings


class SourceItemOut(BaseModel):
    id: str
    name: str
    pipeline_key: str
    domain: str | None
    created_at: str
    updated_at: str


class SourceOut(SourceItemOut):
    config: SourceConfigOut


class SourceWithSecretOut(SourceOut):
    pipeline_key_secret: str


class SourceList(BaseModel):
    data: list[SourceItemOut]
    next_cursor: str | None
    has_more: bool


def source_item_body(pipeline: Pipeline) -> dict[str, Any]:
    return {
        "id": pipeline.id,
        "name": pipeline.name,
        "pipeline_key": pipeline.pipeline_key,
        "domain": sources.domain_of(pipeline),
        "created_at": format_timestamp(pipeline.created_at),
        "updated_at": format_timestamp(pipeline.updated_at),
    }


def source_body(source: Source) -> dict[str, Any]:
    pipeline = source.pipeline
    return {
        "id": pipeline.id,
        "name": pipeline.name,
        "pipeline_key": pipeline.pipeline_key,
        "domain": source.domain,
        "config": source.config,
        "created_at": format_timestamp(pipeline.created_at),
        "updated_at": format_timestamp(pipeline.updated_at),
    }


def _one(source: Source, status_code: int = 200, **extra: Any) -> JSONResponse:
    return JSONResponse(
        {**source_body(source), **extra},
        status_code=status_code,
        headers={"ETag": etag(source.pipeline.version)},
    )


@router.get(
    "", response_model=SourceList, dependencies=[permitted(sources.list_sources)]
)
async def list_sources(
    ctx: Context,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> JSONResponse:
    """List the organisation's sources (every pipeline), oldest first."""
    page = await sources.list_sources(ctx, q, cursor=cursor, limit=limit)
    return list_response(page, source_item_body)


@router.post(
    "",
    status_code=201,
    response_model=SourceWithSecretOut,
    dependencies=[permitted(sources.create_source)],
)
async def create_source(
    ctx: Context, request: Request, body: SourceFields, key: IdempotencyKey = None
) -> Response:
    """Create a source (a web pipeline); the answer shows its key secret once."""

    async def create() -> Response:
        created = await sources.create_source(ctx, body)
        secret = created.pipeline_key_secret
        return _one(created.source, 201, pipeline_key_secret=secret)

    return await idempotent(ctx, request, key, create)


@router.get(
    "/{pipeline_id}",
    response_model=SourceOut,
    dependencies=[permitted(sources.get_source)],
)
async def get_source(ctx: Context, pipeline_id: str) -> JSONResponse:
    """One source."""
    return _one(await sources.get_source(ctx, pipeline_id))


@router.put(
    "/{pipeline_id}",
    response_model=SourceOut,
    dependencies=[permitted(sources.replace_source)],
)
async def replace_source(
    ctx: Context, pipeline_id: str, body: SourceReplace, version: IfMatch
) -> JSONResponse:
    """Replace every mutable field; those left out take their defaults."""
    source = await sources.replace_source(
        ctx, pipeline_id, body, expected_version=version
    )
    return _one(source)


@router.patch(
    "/{pipeline_id}",
    response_model=SourceOut,
    dependencies=[permitted(sources.update_source)],
)
async def update_source(
    ctx: Context, pipeline_id: str, body: SourceChange, version: IfMatch
) -> JSONResponse:
    """Merge: change the fields named and, inside config, only the keys named."""
    source = await sources.update_source(
        ctx, pipeline_id, body, expected_version=version
    )
    return _one(source)


@router.delete(
    "/{pipeline_id}",
    status_code=204,
    response_class=Response,
    dependencies=[permitted(sources.delete_source)],
)
async def delete_source(ctx: Context, pipeline_id: str, version: IfMatch) -> Response:
    """Delete a source: its pipeline, with its integrations."""
    await sources.delete_source(ctx, pipeline_id, expected_version=version)
    return Response(status_code=204)


@router.post(
    "/{pipeline_id}/build",
    status_code=201,
    response_model=CollectorBuildOut,
    dependencies=[permitted(collector_builds.build_collector)],
)
async def build_source_collector(
    ctx: Context,
    request: Request,
    pipeline_id: str,
    key: IdempotencyKey = None,
    body: Annotated[BuildRequest | None, Body()] = None,
) -> Response:
    """Build the source's collector script from its settings as they are now."""

    async def build() -> Response:
        built = await collector_builds.build_collector(
            ctx, pipeline_id, audited_as=sources.AUDITED_AS
        )
        return JSONResponse(build_body(built), status_code=201)

    return await idempotent(ctx, request, key, build)
