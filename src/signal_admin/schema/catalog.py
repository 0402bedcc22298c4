"""The integration catalog: the vendors that ship with the service."""

from __future__ import annotations

from typing import Annotated

import strawberry

from signal_admin.catalog.models import ConfigField as ConfigFieldModel
from signal_admin.catalog.models import Variant as VariantModel
from signal_admin.catalog.models import Vendor
from signal_admin.errors import NotFound
from signal_admin.resolvers import catalog
from signal_admin.schema.context import Info
from signal_admin.schema.fields import query_field
from signal_admin.schema.inputs import filters_of
from signal_admin.schema.scalars import JSON


@strawberry.type(description="A connection setting a vendor asks for.")
class CatalogConfigField:
    key: str = strawberry.field(description="The key in a revision's config.")
    label: str = strawberry.field(description="What a form shows.")
    type: str = strawberry.field(
        description="string, secret, number, boolean, select, url or json."
    )
    required: bool = strawberry.field(description="Whether install needs it.")
    placeholder: str | None = strawberry.field(description="An example value.")
    help_text: str | None = strawberry.field(description="Where to find it.")
    pattern: str | None = strawberry.field(
        description="A regular expression the value must match."
    )
    options: list[str] | None = strawberry.field(
        description="The choices of a select field."
    )

    @classmethod
    def from_model(cls, field: ConfigFieldModel) -> CatalogConfigField:
        return cls(**field.model_dump())


@strawberry.type(description="A ready-made mapping of a vendor's events.")
class CatalogVariant:
    key: str = strawberry.field(description="default, or another variant's key.")
    name: str = strawberry.field(description="Its name.")
    description: str = strawberry.field(description="What it maps.")
    default_config: JSON = strawberry.field(
        description="The mapping document merged under the config at install."
    )

    @classmethod
    def from_model(cls, variant: VariantModel) -> CatalogVariant:
        return cls(
            key=variant.key,
            name=variant.name,
            description=variant.description,
            default_config=JSON(variant.default_config),
        )


@strawberry.type(description="A vendor events can be forwarded to.")
class CatalogVendor:
    key: str = strawberry.field(description="Its key, e.g. ga4.")
    name: str = strawberry.field(description="Its name.")
    description: str = strawberry.field(description="What it does.")
    category: str = strawberry.field(
        description="advertising, analytics, attribution, cdp, cloud_storage or other."
    )
    status: str = strawberry.field(description="ga or beta.")
    website: str = strawberry.field(description="The API's documentation.")
    delivery_modes: list[str] = strawberry.field(
        description="server_side, client_side and/or hybrid."
    )
    config_fields: list[CatalogConfigField] = strawberry.field(
        description="The connection settings it asks for."
    )
    variants: list[CatalogVariant] = strawberry.field(
        description="Its ready-made mappings."
    )

    @classmethod
    def from_model(cls, vendor: Vendor) -> CatalogVendor:
        return cls(
            key=vendor.key,
            name=vendor.name,
            description=vendor.description,
            category=vendor.category,
            status=vendor.status,
            website=vendor.website,
            delivery_modes=list(vendor.delivery_modes),
            config_fields=[
                CatalogConfigField.from_model(f) for f in vendor.config_fields
            ],
            variants=[CatalogVariant.from_model(v) for v in vendor.variants],
        )


@strawberry.input(description="Which vendors to list.")
class CatalogFilter:
    category: str | None = strawberry.field(
        default=strawberry.UNSET, description="Only this category."
    )
    status: str | None = strawberry.field(
        default=strawberry.UNSET, description="ga or beta."
    )
    q: str | None = strawberry.field(
        default=strawberry.UNSET, description="Name contains, any case."
    )


@strawberry.type
class CatalogQuery:
    @query_field(description="The vendors that ship with the service, by key.")
    async def catalog_vendors(
        self,
        info: Info,
        filter: Annotated[
            CatalogFilter | None, strawberry.argument(description="Which ones.")
        ] = strawberry.UNSET,
    ) -> list[CatalogVendor]:
        filters = filters_of(catalog.CatalogFilter, filter)
        vendors = await catalog.all_vendors(info.context.request, filters)
        return [CatalogVendor.from_model(vendor) for vendor in vendors]

    @query_field(description="One vendor by key; null if the catalog has none.")
    async def catalog_vendor(
        self,
        info: Info,
        key: Annotated[str, strawberry.argument(description="The vendor's key.")],
    ) -> CatalogVendor | None:
        try:
            vendor = await catalog.get_vendor(info.context.request, key)
        except NotFound:
            return None
        return CatalogVendor.from_model(vendor)
