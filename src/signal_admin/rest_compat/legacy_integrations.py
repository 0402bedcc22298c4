"""Integrations (legacy): the first version's name for a pipeline
integration, as a view over attachments, templates and revisions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from signal_admin.persistence.types import format_timestamp
from signal_admin.resolvers import legacy_integrations
from signal_admin.resolvers.legacy_integrations import (
    LegacyIntegration,
    LegacyIntegrationCreate,
    LegacyIntegrationFilter,
    LegacyIntegrationReplace,
    LegacyIntegrationUpdate,
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

router = APIRouter(prefix=f"{API_PREFIX}/integrations", tags=["Integrations (legacy)"])


class LegacyIntegrationOut(BaseModel):
    id: str
    source_id: str
    type: str
    name: str
    enabled: bool
    config: dict[str, Any]
    consent_categories: list[str]
    created_at: str
    updated_at: str


class LegacyIntegrationList(BaseModel):
    data: list[LegacyIntegrationOut]
    next_cursor: str | None
    has_more: bool


def integration_body(integration: LegacyIntegration) -> dict[str, Any]:
    row, template = integration.row, integration.template
    return {
        "id": row.id,
        "source_id": row.pipeline_id,
        "type": template.vendor,
        "name": template.name,
        "enabled": row.enabled,
        "config": integration.config,
        "consent_categories": row.consent_categories,
        "created_at": format_timestamp(row.created_at),
        "updated_at": format_timestamp(integration.updated_at),
    }


def _one(integration: LegacyIntegration, status_code: int = 200) -> JSONResponse:
    return JSONResponse(
        integration_body(integration),
        status_code=status_code,
        headers={"ETag": etag(integration.version)},
    )


@router.get(
    "",
    response_model=LegacyIntegrationList,
    dependencies=[permitted(legacy_integrations.list_integrations)],
)
async def list_integrations(
    ctx: Context,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
    source_id: Annotated[
        str | None, Query(description="Only the integrations of this source.")
    ] = None,
) -> JSONResponse:
    """List the organisation's integrations, oldest first."""
    filters = parse(LegacyIntegrationFilter, {"source_id": source_id})
    page = await legacy_integrations.list_integrations(
        ctx, filters, cursor=cursor, limit=limit
    )
    return list_response(page, integration_body)


@router.post(
    "",
    status_code=201,
    response_model=LegacyIntegrationOut,
    dependencies=[permitted(legacy_integrations.create_integration)],
)
async def create_integration(
    ctx: Context,
    request: Request,
    body: Annotated[LegacyIntegrationCreate, Unparsed],
    key: IdempotencyKey = None,
) -> Response:
    """Create an integration on a source: a template, its revision 1, the pin."""

    async def create() -> Response:
        return _one(await legacy_integrations.create_integration(ctx, body), 201)

    return await idempotent(ctx, request, key, create)


@router.get(
    "/{attachment_id}",
    response_model=LegacyIntegrationOut,
    dependencies=[permitted(legacy_integrations.get_integration)],
)
async def get_integration(ctx: Context, attachment_id: str) -> JSONResponse:
    """One integration, with its pinned config (secrets as "***")."""
    return _one(await legacy_integrations.get_integration(ctx, attachment_id))


@router.put(
    "/{attachment_id}",
    response_model=LegacyIntegrationOut,
    dependencies=[permitted(legacy_integrations.replace_integration)],
)
async def replace_integration(
    ctx: Context,
    attachment_id: str,
    body: Annotated[LegacyIntegrationReplace, Unparsed],
    version: IfMatch,
) -> JSONResponse:
    """Replace an integration's name, config, enabled and consent categories."""
    integration = await legacy_integrations.replace_integration(
        ctx, attachment_id, body, expected_version=version
    )
    return _one(integration)


@router.patch(
    "/{attachment_id}",
    response_model=LegacyIntegrationOut,
    dependencies=[permitted(legacy_integrations.update_integration)],
)
async def update_integration(
    ctx: Context,
    attachment_id: str,
    body: Annotated[LegacyIntegrationUpdate, Unparsed],
    version: IfMatch,
) -> JSONResponse:
    """Change the fields named and, inside config, only the keys named."""
    integration = await legacy_integrations.update_integration(
        ctx, attachment_id, body, expected_version=version
    )
    return _one(integration)


@router.delete(
    "/{attachment_id}",
    status_code=204,
    response_class=Response,
    dependencies=[permitted(legacy_integrations.delete_integration)],
)
async def delete_integration(
    ctx: Context, attachment_id: str, version: IfMatch
) -> Response:
    """Detach the integration from its source; its template stays."""
    await legacy_integrations.delete_integration(
        ctx, attachment_id, expected_version=version
    )
    return Response(status_code=204)
