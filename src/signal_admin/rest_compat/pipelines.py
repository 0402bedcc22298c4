"""Pipeline routes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.responses import JSONResponse

from signal_admin.persistence.models import Pipeline
from signal_admin.persistence.types import format_timestamp
from signal_admin.resolvers import pipelines
from signal_admin.resolvers.pipelines import (
    PipelineCreate,
    PipelineFilter,
    PipelineType,
    PipelineUpdate,
    RotateKey,
)
from signal_admin.resolvers.validation import parse
from signal_admin.rest_compat import API_PREFIX
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
from signal_admin.rest_compat.schemas import (
    PipelineList,
    PipelineOut,
    PipelineWithSecretOut,
)

LabelFilter = Annotated[list[str], Query(description="Every label must match.")]

router = APIRouter(prefix=f"{API_PREFIX}/pipelines", tags=["Pipelines"])


def pipeline_body(pipeline: Pipeline) -> dict[str, Any]:
    return {
        "id": pipeline.id,
        "org_id": pipeline.org_id,
        "name": pipeline.name,
        "slug": pipeline.slug,
        "type": pipeline.type,
        "pipeline_key": pipeline.pipeline_key,
        "pipeline_key_secret_prefix": pipeline.pipeline_key_secret_prefix,
        "domain_allowlist": pipeline.domain_allowlist,
        "labels": pipeline.labels,
        "rate_limit_rps": pipeline.rate_limit_rps,
        "challenge_token_required": pipeline.challenge_token_required,
        "parameters": pipeline.parameters,
        "config": pipeline.config,
        "js_builder_config": pipeline.js_builder_config,
        "identity_config": pipeline.identity_config,
        "previous_key_expires_at": format_timestamp(pipeline.previous_key_expires_at),
        "enabled": pipeline.enabled,
        "version": pipeline.version,
        "created_at": format_timestamp(pipeline.created_at),
        "updated_at": format_timestamp(pipeline.updated_at),
    }


def _one(pipeline: Pipeline, status_code: int = 200, **extra: Any) -> JSONResponse:
    return JSONResponse(
        {**pipeline_body(pipeline), **extra},
        status_code=status_code,
        headers={"ETag": etag(pipeline.version)},
    )


@router.get(
    "", response_model=PipelineList, dependencies=[permitted(pipelines.list_pipelines)]
)
async def list_pipelines(
    ctx: Context,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
    # FastAPI copies parameter defaults per request, so a list default is safe.
    label: LabelFilter = [],  # noqa: B006
    type: PipelineType | None = None,
    enabled: bool | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> JSONResponse:
    """List the organisation's pipelines, oldest first."""
    filters = parse(
        PipelineFilter, {"labels": label, "type": type, "enabled": enabled, "q": q}
    )
    page = await pipelines.list_pipelines(ctx, filters, cursor=cursor, limit=limit)
    return list_response(page, pipeline_body)


@router.post(
    "",
    status_code=201,
    response_model=PipelineWithSecretOut,
    dependencies=[permitted(pipelines.create_pipeline)],
)
async def create_pipeline(
    ctx: Context, request: Request, body: PipelineCreate, key: IdempotencyKey = None
) -> Response:
    """Create a pipeline; the answer shows its key secret, this one time."""

    async def create() -> Response:
        created = await pipelines.create_pipeline(ctx, body)
        secret = created.pipeline_key_secret
        return _one(created.pipeline, 201, pipeline_key_secret=secret)

    return await idempotent(ctx, request, key, create)


@router.get(
    "/{pipeline_id}",
    response_model=PipelineOut,
    dependencies=[permitted(pipelines.get_pipeline)],
)
async def get_pipeline(ctx: Context, pipeline_id: str) -> JSONResponse:
    """One pipeline."""
    return _one(await pipelines.get_pipeline(ctx, pipeline_id))


@router.patch(
    "/{pipeline_id}",
    response_model=PipelineOut,
    dependencies=[permitted(pipelines.update_pipeline)],
)
async def update_pipeline(
    ctx: Context, pipeline_id: str, body: PipelineUpdate, version: IfMatch
) -> JSONResponse:
    """Replace the fields named in the body; the others stay as they were."""
    pipeline = await pipelines.update_pipeline(
        ctx,
        pipeline_id,
        body,
        expected_version=version,
    )
    return _one(pipeline)


@router.delete(
    "/{pipeline_id}",
    status_code=204,
    response_class=Response,
    dependencies=[permitted(pipelines.delete_pipeline)],
)
async def delete_pipeline(ctx: Context, pipeline_id: str, version: IfMatch) -> Response:
    """Delete a pipeline with its integrations."""
    await pipelines.delete_pipeline(ctx, pipeline_id, expected_version=version)
    return Response(status_code=204)


@router.post(
    "/{pipeline_id}/rotate-key",
    response_model=PipelineWithSecretOut,
    dependencies=[permitted(pipelines.rotate_pipeline_key)],
)
async def rotate_key(
    ctx: Context,
    pipeline_id: str,
    version: IfMatch,
    body: Annotated[RotateKey | None, Body()] = None,
) -> JSONResponse:
    """Issue a new key and secret; the old key works for `grace_seconds` more."""
    rotated = await pipelines.rotate_pipeline_key(
        ctx,
        pipeline_id,
        body or RotateKey(),
        expected_version=version,
    )
    return _one(rotated.pipeline, pipeline_key_secret=rotated.pipeline_key_secret)
