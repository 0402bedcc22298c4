"""Integration catalog routes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from signal_admin.catalog.models import Category, Vendor
from signal_admin.resolvers import catalog, templates
from signal_admin.resolvers.catalog import CatalogFilter
from signal_admin.resolvers.templates import CatalogInstall
from signal_admin.resolvers.validation import Unparsed, parse
from signal_admin.rest_compat import API_PREFIX
from signal_admin.rest_compat.dependencies import (
    DEFAULT_LIMIT,
    Context,
    Cursor,
    Limit,
    permitted,
)
from signal_admin.rest_compat.idempotency import IdempotencyKey, idempotent
from signal_admin.rest_compat.lists import list_response
from signal_admin.rest_compat.schemas import VendorList
from signal_admin.rest_compat.templates import created_body

router = APIRouter(prefix=f"{API_PREFIX}/integration-catalog", tags=["Catalog"])


def vendor_summary(vendor: Vendor) -> dict[str, Any]:
    """A vendor as a list item: without its config fields and variants."""
    return vendor.model_dump(mode="json", exclude={"config_fields", "variants"})


def vendor_body(vendor: Vendor) -> dict[str, Any]:
    """A vendor with its config fields and variants, every field present."""
    return vendor.model_dump(mode="json", by_alias=True)


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
) -> JSONResponse:
    """List the vendors that ship with the service, by key."""
    filters = parse(CatalogFilter, {"category": category, "status": status, "q": q})
    page = await catalog.list_vendors(ctx, filters, cursor=cursor, limit=limit)
    return list_response(page, vendor_summary)


@router.get(
    "/{vendor_key}",
    response_model=Vendor,
    response_model_by_alias=True,
    dependencies=[permitted(catalog.get_vendor)],
)
async def get_vendor(ctx: Context, vendor_key: str) -> JSONResponse:
    """One vendor with its config fields and variants."""
    return JSONResponse(vendor_body(await catalog.get_vendor(ctx, vendor_key)))


@router.post(
    "/{vendor_key}/install",
    status_code=201,
    dependencies=[permitted(templates.install_from_catalog)],
)
async def install(
    ctx: Context,
    request: Request,
    vendor_key: str,
    body: Annotated[CatalogInstall, Unparsed],
    key: IdempotencyKey = None,
) -> Response:
    """Create a template from a vendor and revision 1 of its config, at once."""

    async def create() -> Response:
        return created_body(await templates.install_from_catalog(ctx, vendor_key, body))

    return await idempotent(ctx, request, key, create)
