"""Signing in and out, refreshing tokens, and the caller's own profile."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry

from signal_admin.errors import DomainError
from signal_admin.persistence.models import User as UserRow
from signal_admin.resolvers import auth
from signal_admin.schema.context import Info
from signal_admin.schema.errors import UserError, user_errors_or_raise
from signal_admin.schema.fields import mutation_field, query_field
from signal_admin.schema.inputs import given


@strawberry.enum(description="What a member of an organisation may do.")
class Role(Enum):
    OWNER = strawberry.enum_value(
        "owner", description="Everything, including the organisation and its keys."
    )
    ADMIN = strawberry.enum_value(
        "admin", description="Everything but the organisation and its keys."
    )
    EDITOR = strawberry.enum_value(
        "editor", description="Reads, and creates and edits configuration."
    )
    VIEWER = strawberry.enum_value("viewer", description="Reads configuration.")


@strawberry.enum(description="Whether a user can sign in.")
class UserStatus(Enum):
    ACTIVE = strawberry.enum_value("active", description="Can sign in.")
    INVITED = strawberry.enum_value(
        "invited", description="Has not accepted the invitation yet."
    )
    DISABLED = strawberry.enum_value("disabled", description="Cannot sign in.")


@strawberry.type(description="A person in an organisation.")
class User:
    id: strawberry.ID = strawberry.field(description="The user's id (usr_…).")
    org_id: strawberry.ID = strawberry.field(
        description="The organisation the user belongs to."
    )
    email: str | None = strawberry.field(
        description="The sign-in address; null for callers who may not read users."
    )
    name: str = strawberry.field(description="The name shown to others.")
    role: Role = strawberry.field(description="What the user may do.")
    status: UserStatus = strawberry.field(description="Whether the user can sign in.")
    last_login_at: datetime | None = strawberry.field(
        description=(
            "The last successful sign-in; null if never, and for callers who "
            "may not read users."
        )
    )
    version: int = strawberry.field(
        description="1, then one more on every change; pass it as expectedVersion."
    )
    created_at: datetime = strawberry.field(description="When the user was added.")
    updated_at: datetime = strawberry.field(description="The last change.")

    @classmethod
    def from_row(cls, user: UserRow) -> User:
        return cls(
            id=strawberry.ID(user.id),
            org_id=strawberry.ID(user.org_id),
            email=user.email,
            name=user.name,
            role=Role(user.role),
            status=UserStatus(user.status),
            last_login_at=user.last_login_at,
            version=user.version,
            created_at=user.created_at,
            updated_at=user.updated_at,
        )


@strawberry.type(description="An access token and the refresh token that renews it.")
class TokenPair:
    access_token: str = strawberry.field(
        description="Send it as `Authorization: Bearer <token>`."
    )
    refresh_token: str = strawberry.field(
        description="Spend it once with refreshToken for a new pair."
    )
    token_type: str = strawberry.field(description="Always Bearer.")
    expires_in: int = strawberry.field(
        description="Seconds until the access token expires."
    )

    @classmethod
    def from_pair(cls, pair: auth.TokenPair) -> TokenPair:
        return cls(
            access_token=pair.access_token,
            refresh_token=pair.refresh_token,
            token_type=pair.token_type,
            expires_in=pair.expires_in,
        )


@strawberry.input(description="An email and password to sign in with.")
class LoginInput:
    email: str = strawberry.field(description="The sign-in address.")
    password: str = strawberry.field(description="The password.")


@strawberry.input(description="A refresh token to spend.")
class RefreshTokenInput:
    refresh_token: str = strawberry.field(
        description="The refresh token of the last pair issued."
    )


@strawberry.input(description="The refresh token of the session to end.")
class LogoutInput:
    refresh_token: str = strawberry.field(
        description="A refresh token of one of the caller's own sessions."
    )


@strawberry.input(description="An invitation to accept, and the password to set.")
class AcceptInviteInput:
    invite_token: str = strawberry.field(
        description="The token createUser or reinviteUser gave for this user."
    )
    password: str = strawberry.field(description="The password, 12 to 256 characters.")
    name: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="The name to go by; the one the invitation gave when left out.",
    )


@strawberry.input(description="A new name, or a password change, or both.")
class UpdateMeInput:
    name: str | None = strawberry.field(
        default=strawberry.UNSET, description="The new name, 1 to 200 characters."
    )
    current_password: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="The present password; needed to set a new one.",
    )
    new_password: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="The new password. Every other session is signed out.",
    )


@strawberry.type(description="The result of login.")
class LoginPayload:
    token_pair: TokenPair | None = strawberry.field(
        default=None, description="The new session's tokens; null on failure."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list,
        description="Why the sign-in failed, e.g. INVALID_CREDENTIALS.",
    )


@strawberry.type(description="The result of refreshToken.")
class RefreshTokenPayload:
    token_pair: TokenPair | None = strawberry.field(
        default=None, description="The new tokens; null on failure."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list,
        description="Why the token was refused, e.g. INVALID_REFRESH_TOKEN.",
    )


@strawberry.type(description="The result of logout.")
class LogoutPayload:
    user_errors: list[UserError] = strawberry.field(
        default_factory=list,
        description="Why the session could not be ended; empty on success.",
    )


@strawberry.type(description="The result of acceptInvite.")
class AcceptInvitePayload:
    token_pair: TokenPair | None = strawberry.field(
        default=None, description="The first session's tokens; null on failure."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list,
        description=(
            "What to fix, e.g. INVALID_TOKEN for an unknown, used or expired "
            "invitation."
        ),
    )


@strawberry.type(description="The result of updateMe.")
class UpdateMePayload:
    user: User | None = strawberry.field(
        default=None, description="The caller as changed; null on failure."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="What to fix in the input."
    )


@strawberry.type
class AuthQuery:
    @query_field(description="The signed-in user.")
    async def me(self, info: Info) -> User:
        return User.from_row(await auth.get_me(info.context.request))


@strawberry.type
class AuthMutation:
    @mutation_field(description="Sign in with email and password; opens a session.")
    async def login(
        self,
        info: Info,
        input: Annotated[LoginInput, strawberry.argument(description="Credentials.")],
    ) -> LoginPayload | None:
        try:
            pair = await auth.login(info.context.request, input.email, input.password)
        except DomainError as error:
            return LoginPayload(user_errors=user_errors_or_raise(error))
        return LoginPayload(token_pair=TokenPair.from_pair(pair))

    @mutation_field(
        description=(
            "Spend a refresh token for a new pair in the same session. A token "
            "spent twice signs the user out everywhere."
        )
    )
    async def refresh_token(
        self,
        info: Info,
        input: Annotated[
            RefreshTokenInput, strawberry.argument(description="The token to spend.")
        ],
    ) -> RefreshTokenPayload | None:
        try:
            pair = await auth.refresh(info.context.request, input.refresh_token)
        except DomainError as error:
            return RefreshTokenPayload(user_errors=user_errors_or_raise(error))
        return RefreshTokenPayload(token_pair=TokenPair.from_pair(pair))

    @mutation_field(
        description="End a session of the caller's, with its access tokens."
    )
    async def logout(
        self,
        info: Info,
        input: Annotated[
            LogoutInput, strawberry.argument(description="The session to end.")
        ],
    ) -> LogoutPayload | None:
        try:
            await auth.logout(info.context.request, input.refresh_token)
        except DomainError as error:
            return LogoutPayload(user_errors=user_errors_or_raise(error))
        return LogoutPayload()

    @mutation_field(
        description=(
            "Accept an invitation: set a password, become active and sign in. "
            "Needs no access token."
        )
    )
    async def accept_invite(
        self,
        info: Info,
        input: Annotated[
            AcceptInviteInput, strawberry.argument(description="The invitation.")
        ],
    ) -> AcceptInvitePayload | None:
        try:
            pair = await auth.accept_invite(info.context.request, **given(input))
        except DomainError as error:
            return AcceptInvitePayload(user_errors=user_errors_or_raise(error))
        return AcceptInvitePayload(token_pair=TokenPair.from_pair(pair))

    @mutation_field(
        description=(
            "Change the caller's name or password; a password change signs out "
            "every other session."
        )
    )
    async def update_me(
        self,
        info: Info,
        input: Annotated[
            UpdateMeInput, strawberry.argument(description="What to change.")
        ],
    ) -> UpdateMePayload | None:
        try:
            user = await auth.update_me(info.context.request, **given(input))
        except DomainError as error:
            return UpdateMePayload(user_errors=user_errors_or_raise(error))
        return UpdateMePayload(user=User.from_row(user))
