"""Integration template and revision routes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from signal_admin.errors import MethodNotAllowed
from signal_admin.persistence.models import IntegrationRevision, IntegrationTemplate
from signal_admin.persistence.types import format_timestamp
from signal_admin.resolvers import secrets, templates
from signal_admin.resolvers.templates import (
    RevisionCreate,
    Rollout,
    TemplateCreate,
    TemplateFilter,
    TemplateUpdate,
    TemplateWithRevision,
)
from signal_admin.resolvers.validation import Unparsed, parse
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
from signal_admin.rest_compat.pipeline_integrations import attachment_body

_REVISION = "/{template_id}/revisions/{revision_id}"

router = APIRouter(
    prefix=f"{API_PREFIX}/integration-templates", tags=["Integration templates"]
)


def template_body(template: IntegrationTemplate) -> dict[str, Any]:
    return {
        "id": template.id,
        "org_id": template.org_id,
        "name": template.name,
        "vendor": template.vendor,
        "description": template.description,
        "catalog_vendor_key": template.catalog_vendor_key,
        "catalog_variant_key": template.catalog_variant_key,
        "secret_fields": template.secret_fields,
        "latest_revision": template.latest_revision,
        "version": template.version,
        "created_at": format_timestamp(template.created_at),
        "updated_at": format_timestamp(template.updated_at),
    }


def revision_body(revision: IntegrationRevision) -> dict[str, Any]:
    return {
        "id": revision.id,
        "integration_id": revision.template_id,
        "org_id": revision.org_id,
        "revision_number": revision.revision_number,
        "config": secrets.masked(revision.config),
        "delivery_mode": revision.delivery_mode,
        "change_summary": revision.change_summary,
        "created_by": revision.created_by,
        "created_at": format_timestamp(revision.created_at),
    }


def created_body(created: TemplateWithRevision) -> JSONResponse:
    return JSONResponse(
        {
            "template": template_body(created.template),
            "revision": revision_body(created.revision),
        },
        status_code=201,
    )


def _one(template: IntegrationTemplate) -> JSONResponse:
    return JSONResponse(
        template_body(template), headers={"ETag": etag(template.version)}
    )


@router.get(
    "",
    response_model=dict[str, Any],
    dependencies=[permitted(templates.list_templates)],
)
async def list_templates(
    ctx: Context,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
    vendor: str | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> JSONResponse:
    """List the organisation's integration templates, oldest first."""
    filters = parse(TemplateFilter, {"vendor": vendor, "q": q})
    page = await templates.list_templates(ctx, filters, cursor=cursor, limit=limit)
    return list_response(page, template_body)


@router.post("", status_code=201, dependencies=[permitted(templates.create_template)])
async def create_template(
    ctx: Context,
    request: Request,
    body: Annotated[TemplateCreate, Unparsed],
    key: IdempotencyKey = None,
) -> Response:
    """Create a template and its revision 1."""

    async def create() -> Response:
        return created_body(await templates.create_template(ctx, body))

    return await idempotent(ctx, request, key, create)


@router.get("/{template_id}", dependencies=[permitted(templates.get_template)])
async def get_template(ctx: Context, template_id: str) -> JSONResponse:
    """One integration template."""
    return _one(await templates.get_template(ctx, template_id))


@router.patch("/{template_id}", dependencies=[permitted(templates.update_template)])
async def update_template(
    ctx: Context, template_id: str, body: TemplateUpdate, version: IfMatch
) -> JSONResponse:
    """Change a template's name or description; its config changes by revision."""
    template = await templates.update_template(
        ctx, template_id, body, expected_version=version
    )
    return _one(template)


@router.delete(
    "/{template_id}",
    status_code=204,
    response_class=Response,
    dependencies=[permitted(templates.delete_template)],
)
async def delete_template(
    ctx: Context, template_id: str, version: IfMatch, cascade: bool = False
) -> Response:
    """Delete a template with its revisions (`cascade` also detaches it)."""
    await templates.delete_template(
        ctx, template_id, cascade=cascade, expected_version=version
    )
    return Response(status_code=204)


@router.get(
    "/{template_id}/revisions",
    response_model=dict[str, Any],
    dependencies=[permitted(templates.list_revisions)],
)
async def list_revisions(
    ctx: Context, template_id: str, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
) -> JSONResponse:
    """A template's revisions, newest first."""
    page = await templates.list_revisions(ctx, template_id, cursor=cursor, limit=limit)
    return list_response(page, revision_body)


@router.post(
    "/{template_id}/revisions",
    status_code=201,
    dependencies=[permitted(templates.create_revision)],
)
async def create_revision(
    ctx: Context,
    request: Request,
    template_id: str,
    body: Annotated[RevisionCreate, Unparsed],
    key: IdempotencyKey = None,
) -> Response:
    """Write the next revision; `"***"` for a secret keeps its previous value."""

    async def create() -> Response:
        revision = await templates.create_revision(ctx, template_id, body)
        return JSONResponse(revision_body(revision), status_code=201)

    return await idempotent(ctx, request, key, create)


@router.get(
    "/{template_id}/revisions/{revision_id}",
    response_model=dict[str, Any],
    dependencies=[permitted(templates.get_revision)],
)
async def get_revision(
    ctx: Context, template_id: str, revision_id: str
) -> JSONResponse:
    """One revision."""
    revision = await templates.get_revision(ctx, template_id, revision_id)
    return JSONResponse(revision_body(revision))


@router.post(
    "/{template_id}/rollout",
    response_model=dict[str, Any],
    dependencies=[permitted(templates.rollout)],
)
async def rollout(ctx: Context, template_id: str, body: Rollout) -> JSONResponse:
    """Pin one revision on every pipeline using the template (or those listed)."""
    moved = await templates.rollout(ctx, template_id, body)
    return JSONResponse({"data": [attachment_body(attachment) for attachment in moved]})


@router.put(_REVISION, operation_id="replace_revision", status_code=405)
@router.patch(_REVISION, operation_id="patch_revision", status_code=405)
@router.delete(_REVISION, operation_id="delete_revision", status_code=405)
async def change_revision(ctx: Context, template_id: str, revision_id: str) -> None:
    """Revisions never change once written: write a new one instead."""
    raise MethodNotAllowed(
        "Revisions cannot change once written; create a new revision instead."
    )
