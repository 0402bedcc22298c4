"""Pipeline integration routes: templates attached to a pipeline."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from signal_admin.persistence.types import format_timestamp
from signal_admin.resolvers import pipeline_integrations
from signal_admin.resolvers.pipeline_integrations import (
    Attachment,
    AttachmentCreate,
    AttachmentUpdate,
)
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

router = APIRouter(
    prefix=f"{API_PREFIX}/pipelines/{{pipeline_id}}/integrations",
    tags=["Pipeline integrations"],
)


def attachment_body(attachment: Attachment) -> dict[str, Any]:
    row, template, revision = attachment.row, attachment.template, attachment.revision
    return {
        "id": row.id,
        "pipeline_id": row.pipeline_id,
        "integration_id": template.id,
        "integration_name": template.name,
        "vendor": template.vendor,
        "revision_id": revision.id,
        "revision_number": revision.revision_number,
        "latest_revision": template.latest_revision,
        "upgrade_available": attachment.upgrade_available,
        "enabled": row.enabled,
        "consent_categories": row.consent_categories,
        "unresolved_parameters": attachment.unresolved_parameters,
        "version": row.version,
        "created_at": format_timestamp(row.created_at),
        "updated_at": format_timestamp(row.updated_at),
    }


def _one(attachment: Attachment, status_code: int = 200) -> JSONResponse:
    return JSONResponse(
        attachment_body(attachment),
        status_code=status_code,
        headers={"ETag": etag(attachment.row.version)},
    )


@router.get(
    "",
    response_model=dict[str, Any],
    dependencies=[permitted(pipeline_integrations.list_attachments)],
)
async def list_attachments(
    ctx: Context, pipeline_id: str, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
) -> JSONResponse:
    """The integrations attached to a pipeline, oldest first."""
    page = await pipeline_integrations.list_attachments(
        ctx, pipeline_id, cursor=cursor, limit=limit
    )
    return list_response(page, attachment_body)


@router.post(
    "", status_code=201, dependencies=[permitted(pipeline_integrations.attach)]
)
async def attach(
    ctx: Context,
    request: Request,
    pipeline_id: str,
    body: AttachmentCreate,
    key: IdempotencyKey = None,
) -> Response:
    """Attach a template, pinned to a revision (the latest when none is given)."""

    async def create() -> Response:
        return _one(await pipeline_integrations.attach(ctx, pipeline_id, body), 201)

    return await idempotent(ctx, request, key, create)


@router.get(
    "/{attachment_id}",
    dependencies=[permitted(pipeline_integrations.get_attachment)],
)
async def get_attachment(
    ctx: Context, pipeline_id: str, attachment_id: str
) -> JSONResponse:
    """One attached integration."""
    return _one(
        await pipeline_integrations.get_attachment(ctx, pipeline_id, attachment_id)
    )


@router.patch(
    "/{attachment_id}",
    dependencies=[permitted(pipeline_integrations.update_attachment)],
)
async def update_attachment(
    ctx: Context,
    pipeline_id: str,
    attachment_id: str,
    body: AttachmentUpdate,
    version: IfMatch,
) -> JSONResponse:
    """Pin another revision, enable or disable, or change consent categories."""
    attachment = await pipeline_integrations.update_attachment(
        ctx, pipeline_id, attachment_id, body, expected_version=version
    )
    return _one(attachment)


@router.delete(
    "/{attachment_id}",
    status_code=204,
    response_class=Response,
    dependencies=[permitted(pipeline_integrations.detach)],
)
async def detach(
    ctx: Context, pipeline_id: str, attachment_id: str, version: IfMatch
) -> Response:
    """Detach an integration from the pipeline."""
    await pipeline_integrations.detach(
        ctx, pipeline_id, attachment_id, expected_version=version
    )
    return Response(status_code=204)
