"""Users: the organisation's members, their invitations and their roles."""

from __future__ import annotations

from typing import Annotated

import strawberry

from signal_admin.errors import DomainError, NotFound
from signal_admin.persistence.models import User as UserRow
from signal_admin.resolvers import users
from signal_admin.schema.auth import Role, User, UserStatus
from signal_admin.schema.context import GraphQLContext, Info
from signal_admin.schema.errors import UserError, user_errors_or_raise
from signal_admin.schema.fields import mutation_field, query_field
from signal_admin.schema.inputs import expected_version, filters_of, given
from signal_admin.schema.pagination import (
    After,
    Connection,
    First,
    edges_of,
    page_info_of,
    page_size,
)
from signal_admin.security.permissions import Permission


def user_as_seen_by(context: GraphQLContext, user: UserRow) -> User:
    """A user as the caller may see them: other users' email and last sign-in
    are hidden from roles that may not read users."""
    seen = User.from_row(user)
    principal = context.request.authenticated()
    if user.id != principal.user_id and not principal.can(Permission.MANAGE_USERS):
        seen.email = None
        seen.last_login_at = None
    return seen


@strawberry.type(description="A page of users, oldest first.")
class UserConnection(Connection[User]):
    pass


@strawberry.input(description="Which users to list; every condition must hold.")
class UserFilter:
    role: Role | None = strawberry.field(
        default=strawberry.UNSET, description="Only users with this role."
    )
    status: UserStatus | None = strawberry.field(
        default=strawberry.UNSET, description="Only users with this status."
    )
    q: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="Text the name contains, ignoring case.",
    )


@strawberry.input(
    description="A new member. Email, name and role are required; without a "
    "password the user is invited. Each field is optional in the schema so the "
    "service can report every problem at once in userErrors."
)
class CreateUserInput:
    email: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="The sign-in address; unique across the service, ignoring case.",
    )
    name: str | None = strawberry.field(
        default=strawberry.UNSET, description="1 to 200 characters."
    )
    role: Role | None = strawberry.field(
        default=strawberry.UNSET, description="Admin, editor or viewer; never owner."
    )
    password: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="12 to 256 characters; leave it out to send an invitation.",
    )


@strawberry.input(
    description="A change to a user: each field named replaces the stored one; "
    "fields left out stay as they are."
)
class UpdateUserInput:
    id: strawberry.ID = strawberry.field(description="The user to change.")
    expected_version: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="Refuse the change unless the user is at this version.",
    )
    name: str | None = strawberry.field(
        default=strawberry.UNSET, description="1 to 200 characters."
    )
    role: Role | None = strawberry.field(
        default=strawberry.UNSET,
        description=(
            "The new role; OWNER hands ownership over, making the caller an admin."
        ),
    )
    status: UserStatus | None = strawberry.field(
        default=strawberry.UNSET,
        description="ACTIVE or DISABLED; disabling signs the user out everywhere.",
    )


@strawberry.input(description="The user to remove.")
class DeleteUserInput:
    id: strawberry.ID = strawberry.field(description="The user to remove.")
    expected_version: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="Refuse unless the user is at this version.",
    )


@strawberry.input(description="The invited user to send a new invitation to.")
class ReinviteUserInput:
    id: strawberry.ID = strawberry.field(description="An invited user.")


@strawberry.type(description="The result of createUser.")
class CreateUserPayload:
    user: User | None = strawberry.field(
        default=None, description="The new user; null on failure."
    )
    invite_token: str | None = strawberry.field(
        default=None,
        description=(
            "For an invited user, the token that accepts the invitation, valid "
            "for 7 days and shown this once; null otherwise."
        ),
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="What to fix in the input."
    )


@strawberry.type(description="The result of updateUser.")
class UpdateUserPayload:
    user: User | None = strawberry.field(
        default=None, description="The user as changed; null on failure."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="What to fix in the input."
    )


@strawberry.type(description="The result of deleteUser.")
class DeleteUserPayload:
    deleted_user_id: strawberry.ID | None = strawberry.field(
        default=None, description="The id of the removed user; null on failure."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="Why the user could not be removed."
    )


@strawberry.type(description="The result of reinviteUser.")
class ReinviteUserPayload:
    user: User | None = strawberry.field(
        default=None, description="The invited user; null on failure."
    )
    invite_token: str | None = strawberry.field(
        default=None,
        description=(
            "The new invite token, shown this once; the previous one no longer works."
        ),
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="What to fix in the input."
    )


_ID_FIELDS = ("id", "expected_version")


@strawberry.type
class UsersQuery:
    @query_field(description="One user of the organisation; null if none.")
    async def user(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="Its id.")],
    ) -> User | None:
        try:
            row = await users.get_user(info.context.request, id)
        except NotFound:
            return None
        return user_as_seen_by(info.context, row)

    @query_field(description="The organisation's users, oldest first.")
    async def users(
        self,
        info: Info,
        first: First = 50,
        after: After = strawberry.UNSET,
        filter: Annotated[
            UserFilter | None,
            strawberry.argument(description="Which users to list."),
        ] = strawberry.UNSET,
    ) -> UserConnection:
        filters = filters_of(users.UserFilter, filter)
        ctx = info.context.request
        page = await users.list_users(
            ctx, filters, cursor=after or None, limit=page_size(first)
        )
        return UserConnection(
            edges=edges_of(page, lambda row: user_as_seen_by(info.context, row)),
            page_info=page_info_of(page),
            count=lambda: users.count_users(ctx, filters),
        )


@strawberry.type
class UsersMutation:
    @mutation_field(
        description=(
            "Add a member: active with a password, or invited without one (the "
            "payload then shows the invite token once)."
        )
    )
    async def create_user(
        self,
        info: Info,
        input: Annotated[CreateUserInput, strawberry.argument(description="The user.")],
    ) -> CreateUserPayload | None:
        try:
            created = await users.create_user(info.context.request, given(input))
        except DomainError as error:
            return CreateUserPayload(user_errors=user_errors_or_raise(error))
        return CreateUserPayload(
            user=user_as_seen_by(info.context, created.user),
            invite_token=created.invite_token,
        )

    @mutation_field(
        description=(
            "Change a user's name, role or status. Nobody changes their own role; "
            "only the owner makes someone owner, and becomes an admin in turn."
        )
    )
    async def update_user(
        self,
        info: Info,
        input: Annotated[
            UpdateUserInput, strawberry.argument(description="The change.")
        ],
    ) -> UpdateUserPayload | None:
        try:
            row = await users.update_user(
                info.context.request,
                input.id,
                given(input, exclude=_ID_FIELDS),
                expected_version=expected_version(input.expected_version),
            )
        except DomainError as error:
            return UpdateUserPayload(user_errors=user_errors_or_raise(error))
        return UpdateUserPayload(user=user_as_seen_by(info.context, row))

    @mutation_field(
        description=(
            "Remove a user and sign them out everywhere; the audit trail keeps "
            "naming them. The owner cannot be removed."
        )
    )
    async def delete_user(
        self,
        info: Info,
        input: Annotated[DeleteUserInput, strawberry.argument(description="The user.")],
    ) -> DeleteUserPayload | None:
        try:
            await users.delete_user(
                info.context.request,
                input.id,
                expected_version=expected_version(input.expected_version),
            )
        except DomainError as error:
            return DeleteUserPayload(user_errors=user_errors_or_raise(error))
        return DeleteUserPayload(deleted_user_id=input.id)

    @mutation_field(
        description=(
            "Send an invited user a new invite token; the old one stops working."
        )
    )
    async def reinvite_user(
        self,
        info: Info,
        input: Annotated[
            ReinviteUserInput, strawberry.argument(description="The invited user.")
        ],
    ) -> ReinviteUserPayload | None:
        try:
            reinvited = await users.reinvite_user(info.context.request, input.id)
        except DomainError as error:
            return ReinviteUserPayload(user_errors=user_errors_or_raise(error))
        return ReinviteUserPayload(
            user=user_as_seen_by(info.context, reinvited.user),
            invite_token=reinvited.invite_token,
        )
