"""Transformation routes; bodies that carry a step document may be YAML."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from signal_admin.persistence.models import Transformation
from signal_admin.persistence.types import format_timestamp
from signal_admin.resolvers import transformations
from signal_admin.resolvers.dry_runs import EventBatch
from signal_admin.resolvers.transformations import (
    TransformationCreate,
    TransformationFilter,
    TransformationUpdate,
    UnsavedTest,
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
from signal_admin.rest_compat.documents import (
    json_or_yaml,
    json_or_yaml_openapi,
    rendered_off_loop,
)
from signal_admin.rest_compat.idempotency import IdempotencyKey, idempotent
from signal_admin.rest_compat.lists import list_response

PREFIX = f"{API_PREFIX}/transformations"
router = APIRouter(prefix=PREFIX, tags=["Transformations"])


def transformation_body(transformation: Transformation) -> dict[str, Any]:
    return {
        "id": transformation.id,
        "org_id": transformation.org_id,
        "name": transformation.name,
        "description": transformation.description,
        "integration_id": transformation.template_id,
        "config": transformation.config,
        "enabled": transformation.enabled,
        "version": transformation.version,
        "created_by": transformation.created_by,
        "created_at": format_timestamp(transformation.created_at),
        "updated_at": format_timestamp(transformation.updated_at),
    }


def _one(transformation: Transformation, status_code: int = 200) -> JSONResponse:
    return JSONResponse(
        transformation_body(transformation),
        status_code=status_code,
        headers={"ETag": etag(transformation.version)},
    )


@router.get(
    "",
    response_model=dict[str, Any],
    dependencies=[permitted(transformations.list_transformations)],
)
async def list_transformations(
    ctx: Context,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
    integration_id: str | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> JSONResponse:
    """List the organisation's transformations, oldest first."""
    filters = parse(TransformationFilter, {"integration_id": integration_id, "q": q})
    page = await transformations.list_transformations(
        ctx, filters, cursor=cursor, limit=limit
    )
    return list_response(page, transformation_body)


@router.post(
    "",
    status_code=201,
    dependencies=[permitted(transformations.create_transformation)],
    openapi_extra=json_or_yaml_openapi(TransformationCreate),
)
async def create_transformation(
    ctx: Context, request: Request, key: IdempotencyKey = None
) -> Response:
    """Create a transformation; its steps are checked before it is saved."""
    body = await json_or_yaml(request)

    async def create() -> Response:
        return _one(await transformations.create_transformation(ctx, body), 201)

    return await idempotent(ctx, request, key, create)


@router.post(
    "/test",
    response_model=dict[str, Any],
    dependencies=[permitted(transformations.test_unsaved)],
    openapi_extra=json_or_yaml_openapi(UnsavedTest),
)
async def test_unsaved(ctx: Context, request: Request) -> Response:
    """Run an unsaved step document on one to 100 objects; nothing is saved."""
    results = await transformations.test_unsaved(ctx, await json_or_yaml(request))
    return await rendered_off_loop({"results": results})


@router.get(
    "/{transformation_id}",
    dependencies=[permitted(transformations.get_transformation)],
)
async def get_transformation(ctx: Context, transformation_id: str) -> JSONResponse:
    """One transformation."""
    return _one(await transformations.get_transformation(ctx, transformation_id))


@router.patch(
    "/{transformation_id}",
    dependencies=[permitted(transformations.update_transformation)],
    openapi_extra=json_or_yaml_openapi(TransformationUpdate),
)
async def update_transformation(
    ctx: Context, request: Request, transformation_id: str, version: IfMatch
) -> JSONResponse:
    """Replace the fields named; a new config is checked before it is saved."""
    transformation = await transformations.update_transformation(
        ctx, transformation_id, await json_or_yaml(request), expected_version=version
    )
    return _one(transformation)


@router.delete(
    "/{transformation_id}",
    status_code=204,
    response_class=Response,
    dependencies=[permitted(transformations.delete_transformation)],
)
async def delete_transformation(
    ctx: Context, transformation_id: str, version: IfMatch
) -> Response:
    """Delete a transformation."""
    await transformations.delete_transformation(
        ctx, transformation_id, expected_version=version
    )
    return Response(status_code=204)


@router.post(
    "/{transformation_id}/test",
    response_model=dict[str, Any],
    dependencies=[permitted(transformations.test_saved)],
    openapi_extra=json_or_yaml_openapi(EventBatch),
)
async def test_saved(
    ctx: Context, request: Request, transformation_id: str
) -> Response:
    """Run the saved transformation on one to 100 objects; nothing is saved."""
    results = await transformations.test_saved(
        ctx, transformation_id, await json_or_yaml(request)
    )
    return await rendered_off_loop({"results": results})
