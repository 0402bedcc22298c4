"""The organisation route: the caller's own organisation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from signal_admin.persistence.models import Organization
from signal_admin.persistence.types import format_timestamp
from signal_admin.resolvers import organizations
from signal_admin.resolvers.organizations import OrganizationUpdate
from signal_admin.rest_compat import API_PREFIX
from signal_admin.rest_compat.dependencies import Context, IfMatch, etag, permitted

router = APIRouter(prefix=f"{API_PREFIX}/org", tags=["Organisation"])


class OrganizationOut(BaseModel):
    id: str
    name: str
    version: int
    created_at: str
    updated_at: str


def organization_body(organization: Organization) -> dict[str, Any]:
    return {
        "id": organization.id,
        "name": organization.name,
        "version": organization.version,
        "created_at": format_timestamp(organization.created_at),
        "updated_at": format_timestamp(organization.updated_at),
    }


def _one(organization: Organization) -> JSONResponse:
    return JSONResponse(
        organization_body(organization), headers={"ETag": etag(organization.version)}
    )


@router.get(
    "",
    response_model=OrganizationOut,
    dependencies=[permitted(organizations.get_organization)],
)
async def get_organization(ctx: Context) -> JSONResponse:
    """The caller's organisation."""
    return _one(await organizations.get_organization(ctx))


@router.patch(
    "",
    response_model=OrganizationOut,
    dependencies=[permitted(organizations.update_organization)],
)
async def update_organization(
    ctx: Context, body: OrganizationUpdate, version: IfMatch
) -> JSONResponse:
    """Rename the organisation (owner only)."""
    organization = await organizations.update_organization(
        ctx, body, expected_version=version
    )
    return _one(organization)
