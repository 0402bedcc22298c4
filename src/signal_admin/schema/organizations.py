"""The caller's organisation."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from signal_admin.errors import DomainError
from signal_admin.persistence.models import Organization as OrganizationRow
from signal_admin.resolvers import organizations
from signal_admin.schema.context import Info
from signal_admin.schema.errors import UserError, user_errors_or_raise
from signal_admin.schema.fields import mutation_field, query_field
from signal_admin.schema.inputs import expected_version, given


@strawberry.type(description="An organisation: every other object belongs to one.")
class Organization:
    id: strawberry.ID = strawberry.field(description="The organisation's id (org_…).")
    name: str = strawberry.field(description="1 to 200 characters.")
    version: int = strawberry.field(
        description="1, then one more on every change; pass it as expectedVersion."
    )
    created_at: datetime = strawberry.field(description="When it was created.")
    updated_at: datetime = strawberry.field(description="The last change.")

    @classmethod
    def from_row(cls, organization: OrganizationRow) -> Organization:
        return cls(
            id=strawberry.ID(organization.id),
            name=organization.name,
            version=organization.version,
            created_at=organization.created_at,
            updated_at=organization.updated_at,
        )


@strawberry.input(description="A change to the organisation; only the owner may.")
class UpdateOrganizationInput:
    expected_version: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="Refuse the change unless the organisation is at this version.",
    )
    name: str | None = strawberry.field(
        default=strawberry.UNSET, description="The new name, 1 to 200 characters."
    )


@strawberry.type(description="The result of updateOrganization.")
class UpdateOrganizationPayload:
    organization: Organization | None = strawberry.field(
        default=None, description="The organisation as changed; null on failure."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="What to fix in the input."
    )


@strawberry.type
class OrganizationQuery:
    @query_field(description="The caller's organisation.")
    async def organization(self, info: Info) -> Organization:
        row = await organizations.get_organization(info.context.request)
        return Organization.from_row(row)


@strawberry.type
class OrganizationMutation:
    @mutation_field(description="Rename the organisation (owner only).")
    async def update_organization(
        self,
        info: Info,
        input: Annotated[
            UpdateOrganizationInput, strawberry.argument(description="The change.")
        ],
    ) -> UpdateOrganizationPayload | None:
        try:
            row = await organizations.update_organization(
                info.context.request,
                given(input, exclude=("expected_version",)),
                expected_version=expected_version(input.expected_version),
            )
        except DomainError as error:
            return UpdateOrganizationPayload(user_errors=user_errors_or_raise(error))
        return UpdateOrganizationPayload(organization=Organization.from_row(row))
