"""The organisation's data layer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from signal_admin.errors import DomainError
from signal_admin.resolvers import data_layer
from signal_admin.resolvers.data_layer import DataLayerView
from signal_admin.schema.context import Info
from signal_admin.schema.errors import UserError
from signal_admin.schema.fields import mutation_field, query_field
from signal_admin.schema.inputs import expected_version, given
from signal_admin.schema.scalars import JSON
from signal_admin.schema.templates import template_user_errors


@strawberry.type(
    description="The organisation's data layer: bot filtering, PII rules, "
    "custom JavaScript and routing rules, applied to every event before its "
    "integrations."
)
class DataLayer:
    org_id: strawberry.ID = strawberry.field(description="The organisation's id.")
    config: JSON = strawberry.field(
        description="The whole document, every section filled in."
    )
    version: int = strawberry.field(
        description="0 until first set, then one more on every change; pass it "
        "as expectedVersion."
    )
    updated_at: datetime | None = strawberry.field(
        description="The last change; null until first set."
    )
    updated_by: strawberry.ID | None = strawberry.field(
        description="The id of the user who made the last change."
    )

    @classmethod
    def from_view(cls, view: DataLayerView) -> DataLayer:
        return cls(
            org_id=strawberry.ID(view.org_id),
            config=JSON(view.config),
            version=view.version,
            updated_at=view.updated_at,
            updated_by=strawberry.ID(view.updated_by) if view.updated_by else None,
        )


@strawberry.input(
    description="The whole new data layer; sections left out take their defaults."
)
class UpdateDataLayerInput:
    config: JSON | None = strawberry.field(
        default=strawberry.UNSET, description="The document."
    )
    expected_version: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="Refuse the change unless the data layer is at this version.",
    )


@strawberry.type(description="The result of updateDataLayer.")
class UpdateDataLayerPayload:
    data_layer: DataLayer | None = strawberry.field(
        default=None, description="The data layer as changed; null on failure."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="What to fix in the input."
    )


@strawberry.type
class DataLayerQuery:
    @query_field(description="The data layer; the defaults until first set.")
    async def data_layer(self, info: Info) -> DataLayer:
        return DataLayer.from_view(
            await data_layer.get_data_layer(info.context.request)
        )


@strawberry.type
class DataLayerMutation:
    @mutation_field(description="Replace the whole data layer.")
    async def update_data_layer(
        self,
        info: Info,
        input: Annotated[
            UpdateDataLayerInput, strawberry.argument(description="The document.")
        ],
    ) -> UpdateDataLayerPayload | None:
        try:
            view = await data_layer.replace_data_layer(
                info.context.request,
                given(input, exclude=("expected_version",)),
                expected_version=expected_version(input.expected_version),
            )
        except DomainError as error:
            return UpdateDataLayerPayload(user_errors=template_user_errors(error))
        return UpdateDataLayerPayload(data_layer=DataLayer.from_view(view))
