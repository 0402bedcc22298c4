"""Organisations: creating one with its owner, and reading and renaming the
caller's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StringConstraints,
    field_validator,
)
from sqlalchemy import select

from signal_admin.errors import FieldProblem, PreconditionFailed, ValidationFailed
from signal_admin.persistence.ids import new_id
from signal_admin.persistence.models import Organization, User
from signal_admin.persistence.text import is_storable
from signal_admin.resolvers import audit
from signal_admin.resolvers.context import RequestContext, requires
from signal_admin.resolvers.users import MAX_NAME_LENGTH, add_user
from signal_admin.resolvers.validation import parse
from signal_admin.security.permissions import Permission, Role


def _check_text(value: str) -> str:
    if not is_storable(value):
        raise ValueError("Names may not hold NUL characters or lone surrogates.")
    return value


OrganizationName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME_LENGTH),
    AfterValidator(_check_text),
]


class OrganizationUpdate(BaseModel):
    """A partial change: only the fields named are replaced."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: OrganizationName | None = None

    @field_validator("*")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # `None` above means "not named"; naming a field with null is refused.
        if value is None:
            raise ValueError("This field cannot be null; leave it out to keep it.")
        return value


@dataclass(frozen=True, slots=True)
class NewOrganization:
    organization: Organization
    owner: User
    owner_password: str | None


async def create_organization(
    ctx: RequestContext, *, name: str, owner_email: str, owner_password: str | None
) -> NewOrganization:
    """Create an organisation and its owner in one transaction."""
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise ValidationFailed(
            "The organisation needs a name.",
            [FieldProblem("name", "INVALID_LENGTH", "1 to 200 characters.")],
        )

    async with ctx.db.transaction() as session:
        organization = Organization(id=new_id("org"), name=name)
        session.add(organization)
        await session.flush()
        owner = await add_user(
            session,
            ctx,
            org_id=organization.id,
            email=owner_email,
            name=owner_email.split("@")[0],
            role=Role.OWNER,
            password=owner_password,
        )
    return NewOrganization(organization, owner.user, owner.generated_password)


@requires(Permission.READ_CONFIGURATION)
async def get_organization(ctx: RequestContext) -> Organization:
    """The caller's organisation."""
    principal = ctx.authenticated()
    async with ctx.db.read() as session:
        return await session.get_one(Organization, principal.org_id)


@requires(Permission.MANAGE_ORGANIZATION)
async def update_organization(
    ctx: RequestContext, data: Any, *, expected_version: int | None = None
) -> Organization:
    """Rename the caller's organisation."""
    principal = ctx.authenticated()
    change = parse(OrganizationUpdate, data)
    named = change.model_dump(include=change.model_fields_set)

    async with ctx.db.transaction() as session:
        organization = (
            await session.scalars(
                select(Organization)
                .where(Organization.id == principal.org_id)
                .with_for_update()
            )
        ).one()
        if expected_version is not None and expected_version != organization.version:
            raise PreconditionFailed(
                f"The organisation is at version {organization.version}, "
                f"not {expected_version}."
            )
        before = {"name": organization.name}
        for key, value in named.items():
            setattr(organization, key, value)
        changes = audit.diff(before, {"name": organization.name})
        if changes:
            audit.record(
                session,
                ctx,
                action="organization.updated",
                resource_type="organization",
                resource_id=organization.id,
                changes=changes,
            )
        await session.flush()
    return organization
