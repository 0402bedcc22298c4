"""The integration catalog: the vendors that ship with the service."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

from signal_admin.catalog.models import Category, Vendor
from signal_admin.errors import NotFound
from signal_admin.persistence.pagination import (
    Page,
    check_page_size,
    decode_cursor,
    encode_cursor,
)
from signal_admin.resolvers.context import RequestContext, requires
from signal_admin.security.permissions import Permission


class CatalogFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: Category | None = None
    status: Literal["ga", "beta"] | None = None
    q: Annotated[str, StringConstraints(max_length=200)] | None = None


@requires(Permission.READ_CONFIGURATION)
async def list_vendors(
    ctx: RequestContext,
    filters: CatalogFilter,
    *,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[Vendor]:
    """Vendors in key order, filtered; the same keyset pages as stored lists,
    with the vendor key as the sort key."""
    check_page_size(limit)
    after = decode_cursor(cursor)["id"] if cursor else None
    matching = [
        vendor
        for vendor in ctx.services.catalog.vendors
        if _matches(vendor, filters) and (after is None or vendor.key > after)
    ]
    items = matching[:limit]
    has_more = len(matching) > limit
    next_cursor = encode_cursor({"id": items[-1].key}) if has_more else None
    return Page(items=items, has_more=has_more, next_cursor=next_cursor)


@requires(Permission.READ_CONFIGURATION)
async def all_vendors(ctx: RequestContext, filters: CatalogFilter) -> list[Vendor]:
    return [v for v in ctx.services.catalog.vendors if _matches(v, filters)]


@requires(Permission.READ_CONFIGURATION)
async def get_vendor(ctx: RequestContext, vendor_key: str) -> Vendor:
    vendor = ctx.services.catalog.get(vendor_key)
    if vendor is None:
        raise NotFound(f"No vendor {vendor_key!r} is in the catalog.")
    return vendor


def _matches(vendor: Vendor, filters: CatalogFilter) -> bool:
    return (
        (filters.category is None or vendor.category == filters.category)
        and (filters.status is None or vendor.status == filters.status)
        and (not filters.q or filters.q.lower() in vendor.name.lower())
    )
