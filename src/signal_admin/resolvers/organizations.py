"""Organisations: creating one with its owner, and reading the caller's."""

from __future__ import annotations

from dataclasses import dataclass

from signal_admin.errors import FieldProblem, ValidationFailed
from signal_admin.persistence.ids import new_id
from signal_admin.persistence.models import Organization, User
from signal_admin.resolvers.context import RequestContext
from signal_admin.resolvers.users import MAX_NAME_LENGTH, add_user
from signal_admin.security.permissions import Role


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


async def get_organization(ctx: RequestContext) -> Organization:
    principal = ctx.authenticated()
    async with ctx.db.read() as session:
        return await session.get_one(Organization, principal.org_id)
