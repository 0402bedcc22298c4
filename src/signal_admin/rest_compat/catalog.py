"""Integration catalog routes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from signal_admin.catalog.models import Category, Vendor
from signal_admin.resolvers import catalog, templates
from signal_admin.resolvers.catalog import CatalogFilter
from signal_admin.resolvers.templates import CatalogInstall
from signal_admin.resolvers.validation import parse
from signal_admin.rest_compat import API_PREFIX
from signal_admin.rest_compat.dependencies import (
    DEFAULT_LIMIT,
    Context,
    Cursor,
    Limit,
    permitted,
)
from signal_admin.rest_compat.idempotency import IdempotencyKey, idempotent
from signal_admin.rest_compat.lists import list_body
from signal_admin.rest_compat.schemas import VendorList
from signal_admin.rest_compat.templates import created_body

router = APIRouter(prefix=f"{API_PREFIX}/integration-catalog", tags=["Catalog"])


def vendor_body(vendor: Vendor, *, full: bool = True) -> dict[str, Any]:
    """A vendor; list items leave out its config fields and variants."""
    body = vendor.model_dump(exclude={"config_fields", "variants"})
    if full:
        body["config_fields"] = [
            field.model_dump(exclude_none=True) for field in vendor.config_fields
        ]
        body["variants"] = [
            variant.model_dump(by_alias=True) for variant in vendor.variants
        ]
    return body


@router.get(
    "", response_model=VendorList, dependencies=[permitted(catalog.list_vendors)]
)
async def list_vendors(
    ctx: Context,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
    category: Category | None = None,
    status: Literal["ga", "beta"] | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """List the vendors that ship with the service, by key."""
    filters = parse(CatalogFilter, {"category": category, "status": status, "q": q})
    page = await catalog.list_vendors(ctx, filters, cursor=cursor, limit=limit)
    return list_body(page, lambda vendor: vendor_body(vendor, full=False))


@router.get(
    "/{vendor_key}",
    response_model=Vendor,
    response_model_by_alias=True,
    dependencies=[permitted(catalog.get_vendor)],
)
async def get_vendor(ctx: Context, vendor_key: str) -> dict[str, Any]:
    """One vendor with its config fields and variants."""
    return vendor_body(await catalog.get_vendor(ctx, vendor_key))


@router.post(
    "/{vendor_key}/install",
    status_code=201,
    dependencies=[permitted(templates.install_from_catalog)],
)
async def install(
    ctx: Context,
    request: Request,
    vendor_key: str,
    body: CatalogInstall,
    key: IdempotencyKey = None,
) -> Response:
    """Create a template from a vendor and revision 1 of its config, at once."""

    async def create() -> Response:
        return created_body(await templates.install_from_catalog(ctx, vendor_key, body))

    return await idempotent(ctx, request, key, create)
