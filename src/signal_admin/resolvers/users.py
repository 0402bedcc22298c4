"""Users: the people of an organisation, their invitations, and the guard rails
that keep exactly one owner in charge of it."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal

import structlog
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
    field_validator,
)
from sqlalchemy import Select, false, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from signal_admin.errors import (
    AlreadyExists,
    FieldProblem,
    Forbidden,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)
from signal_admin.persistence.database import flush_unique
from signal_admin.persistence.ids import check_id, new_id
from signal_admin.persistence.json_filters import name_contains
from signal_admin.persistence.models import User
from signal_admin.persistence.pagination import Page, fetch_page
from signal_admin.persistence.text import is_storable
from signal_admin.persistence.types import format_timestamp, utc_now
from signal_admin.resolvers import audit
from signal_admin.resolvers.context import Principal, RequestContext, requires
from signal_admin.resolvers.validation import parse
from signal_admin.security.passwords import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    hash_password,
)
from signal_admin.security.permissions import Permission, Role
from signal_admin.security.tokens import digest, random_base62

log = structlog.get_logger(__name__)

ACTIVE = "active"
INVITED = "invited"
DISABLED = "disabled"
MAX_EMAIL_LENGTH = 320
MAX_NAME_LENGTH = 200
INVITE_TOKEN_PREFIX = "inv_"

UserRole = Literal["owner", "admin", "editor", "viewer"]
UserStatus = Literal["active", "invited", "disabled"]


@dataclass(frozen=True, slots=True)
class NewUser:
    user: User
    generated_password: str | None


@dataclass(frozen=True, slots=True)
class UserWithInvite:
    """A user and, for an invitation just issued, its token in clear this one
    time."""

    user: User
    invite_token: str | None


def normalise_email(email: str) -> str:
    return email.strip().lower()


def email_problem(email: str, field: str = "email") -> FieldProblem | None:
    local, _, domain = email.partition("@")
    if (
        not local
        or "." not in domain
        or len(email) > MAX_EMAIL_LENGTH
        or " " in email
        or not is_storable(email)
    ):
        return FieldProblem(field, "INVALID", "Enter a valid email address.")
    return None


def name_problem(name: str, field: str = "name") -> FieldProblem | None:
    if not 1 <= len(name.strip()) <= MAX_NAME_LENGTH:
        return FieldProblem(field, "INVALID_LENGTH", "Names are 1 to 200 characters.")
    if not is_storable(name):
        return FieldProblem(
            field, "INVALID", "Names may not hold NUL characters or lone surrogates."
        )
    return None


def password_problem(password: str, field: str = "password") -> FieldProblem | None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        return FieldProblem(
            field,
            "INVALID_LENGTH",
            f"Passwords are {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} "
            "characters long.",
        )
    if not is_storable(password):
        return FieldProblem(
            field,
            "INVALID",
            "Passwords may not hold NUL characters or lone surrogates.",
        )
    return None


def generate_password() -> str:
    return secrets.token_urlsafe(18)


def _normalised(value: object) -> object:
    return normalise_email(value) if isinstance(value, str) else value


def _check_email(email: str) -> str:
    if email_problem(email):
        raise ValueError("Enter a valid email address.")
    return email


def _check_storable(text: str) -> str:
    if not is_storable(text):
        raise ValueError("This may not hold NUL characters or lone surrogates.")
    return text


Email = Annotated[
    str,
    BeforeValidator(_normalised),
    StringConstraints(max_length=MAX_EMAIL_LENGTH),
    AfterValidator(_check_email),
]
PersonName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME_LENGTH),
    AfterValidator(_check_storable),
]
Password = Annotated[
    str,
    StringConstraints(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH),
    AfterValidator(_check_storable),
]


class UserCreate(BaseModel):
    """A new member: active with a password, or invited without one."""

    model_config = ConfigDict(extra="forbid", strict=True)

    email: Email
    name: PersonName
    role: UserRole
    password: Password | None = None


class UserUpdate(BaseModel):
    """A partial change: only the fields named are replaced."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: PersonName | None = None
    role: UserRole | None = None
    status: UserStatus | None = None

    @field_validator("*")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # `None` above means "not named"; naming a field with null is refused.
        if value is None:
            raise ValueError("This field cannot be null; leave it out to keep it.")
        return value


class UserFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: UserRole | None = None
    status: UserStatus | None = None
    q: Annotated[str, StringConstraints(max_length=200)] | None = None


# The fields an audit diff compares; never a password hash or an invite token.
_AUDITED_FIELDS = ("email", "name", "role", "status")


@requires(Permission.MANAGE_USERS)
async def list_users(
    ctx: RequestContext,
    filters: UserFilter,
    *,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[User]:
    """The organisation's users, oldest first; deleted ones are left out."""
    principal = ctx.authenticated()
    async with ctx.db.read() as session:
        statement = _filtered(select(User), principal.org_id, filters)
        return await fetch_page(session, statement, User.id, cursor=cursor, limit=limit)


@requires(Permission.MANAGE_USERS)
async def count_users(ctx: RequestContext, filters: UserFilter) -> int:
    """How many of the organisation's users match `filters`, on all pages."""
    principal = ctx.authenticated()
    async with ctx.db.read() as session:
        statement = _filtered(
            select(func.count()).select_from(User), principal.org_id, filters
        )
        return int(await session.scalar(statement) or 0)


@requires(Permission.MANAGE_USERS)
async def get_user(ctx: RequestContext, user_id: str) -> User:
    principal = ctx.authenticated()
    check_id(user_id, "usr", "User")
    async with ctx.db.read() as session:
        user = await session.scalar(
            select(User).where(
                User.id == user_id,
                User.org_id == principal.org_id,
                User.deleted_at.is_(None),
            )
        )
    if user is None:
        raise NotFound.of("User", user_id)
    return user


@requires(Permission.MANAGE_USERS)
async def create_user(ctx: RequestContext, data: Any) -> UserWithInvite:
    """Add a member: active when a password is given, else invited, with an
    invite token shown this once."""
    principal = ctx.authenticated()
    fields = parse(UserCreate, data)
    if fields.role == Role.OWNER.value:
        raise Forbidden(
            "Users are never created as owner: an organisation has exactly one, "
            "who may hand ownership to an active user."
        )
    password_hash = await hash_password(fields.password) if fields.password else None
    invite_token = None if fields.password else _new_invite_token()

    async with ctx.db.transaction() as session:
        await _check_email_free(session, fields.email)
        user = User(
            id=new_id("usr"),
            org_id=principal.org_id,
            email=fields.email,
            name=fields.name,
            role=fields.role,
            status=INVITED if invite_token else ACTIVE,
            password_hash=password_hash,
        )
        if invite_token:
            _set_invite(ctx, user, invite_token)
        session.add(user)
        audit.record(
            session,
            ctx,
            action="user.invited" if invite_token else "user.created",
            resource_type="user",
            resource_id=user.id,
            changes=audit.created(_audited(user)),
        )
        await flush_unique(session, _email_taken(fields.email))
    log.info("user.created", user_id=user.id, org_id=user.org_id, status=user.status)
    return UserWithInvite(user, invite_token)


@requires(Permission.MANAGE_USERS)
async def update_user(
    ctx: RequestContext,
    user_id: str,
    data: Any,
    *,
    expected_version: int | None = None,
) -> User:
    """Change a member's name, role or status, within the guard rails. Making
    someone owner makes the caller, the owner until now, an admin; disabling a
    user signs out every session of theirs."""
    principal = ctx.authenticated()
    change = parse(UserUpdate, data)
    named = change.model_dump(include=change.model_fields_set)

    async with ctx.db.transaction() as session:
        user = await _locked(session, principal.org_id, user_id, expected_version)
        _check_guard_rails(principal, user, named)
        _check_status_change(user, named.get("status", user.status))
        before = _audited(user)

        if named.get("role") == Role.OWNER and user.role != Role.OWNER:
            await _step_down_as_owner(session, ctx, principal, new_owner=user)
        for key, value in named.items():
            setattr(user, key, value)
        if user.status == DISABLED and before["status"] != DISABLED:
            await _cut_off(session, user)
        changes = audit.diff(before, _audited(user))
        if changes:
            audit.record(
                session,
                ctx,
                action="user.updated",
                resource_type="user",
                resource_id=user.id,
                changes=changes,
            )
        await session.flush()
    return user


@requires(Permission.MANAGE_USERS)
async def delete_user(
    ctx: RequestContext, user_id: str, *, expected_version: int | None = None
) -> None:
    """Remove a member: gone from every list and signed out everywhere, while
    the row stays so that the audit trail keeps naming them. Their email is
    free to be used again."""
    principal = ctx.authenticated()

    async with ctx.db.transaction() as session:
        user = await _locked(session, principal.org_id, user_id, expected_version)
        _check_may_touch(principal, user)
        if user.role == Role.OWNER:
            raise Forbidden(
                "The owner cannot be disabled or deleted: hand ownership to "
                "another user first."
            )
        audit.record(
            session,
            ctx,
            action="user.deleted",
            resource_type="user",
            resource_id=user.id,
            changes=audit.diff(_audited(user), {}),
        )
        user.deleted_at = utc_now()
        await _cut_off(session, user)
        await session.flush()
    log.info("user.deleted", user_id=user_id, org_id=principal.org_id)


@requires(Permission.MANAGE_USERS)
async def reinvite_user(ctx: RequestContext, user_id: str) -> UserWithInvite:
    """Issue a new invite token for an invited user; the previous one stops
    working at once."""
    principal = ctx.authenticated()
    invite_token = _new_invite_token()

    async with ctx.db.transaction() as session:
        user = await _locked(session, principal.org_id, user_id, None)
        _check_may_touch(principal, user)
        if user.status != INVITED:
            raise ValidationFailed(
                "Only an invited user can be invited again.",
                [
                    FieldProblem(
                        "status", "INVALID", f"The user is {user.status}, not invited."
                    )
                ],
            )
        previous_expiry = user.invite_expires_at
        _set_invite(ctx, user, invite_token)
        audit.record(
            session,
            ctx,
            action="user.reinvited",
            resource_type="user",
            resource_id=user.id,
            changes={
                "invite_expires_at": {
                    "old": format_timestamp(previous_expiry),
                    "new": format_timestamp(user.invite_expires_at),
                }
            },
        )
        await session.flush()
    log.info("user.reinvited", user_id=user.id, org_id=user.org_id)
    return UserWithInvite(user, invite_token)


async def add_user(
    session: AsyncSession,
    ctx: RequestContext,
    *,
    org_id: str,
    email: str,
    name: str,
    role: Role,
    password: str | None,
) -> NewUser:
    """Create an active user in `org_id` with `password`, or a generated one.
    The operator's way in (a new organisation's owner, the command line): no
    caller's permission is checked."""
    email = normalise_email(email)
    generated = None if password else generate_password()
    password = password or generated
    assert password is not None
    problems = [p for p in (email_problem(email), password_problem(password)) if p]
    if problems:
        raise ValidationFailed("The user cannot be created.", problems)
    await _check_email_free(session, email)

    user = User(
        id=new_id("usr"),
        org_id=org_id,
        email=email,
        name=name,
        role=role.value,
        status=ACTIVE,
        password_hash=await hash_password(password),
    )
    session.add(user)
    audit.record(
        session,
        ctx,
        action="user.created",
        resource_type="user",
        resource_id=user.id,
        org_id=org_id,
        changes=audit.created(_audited(user)),
    )
    return NewUser(user=user, generated_password=generated)


def _filtered(statement: Select[Any], org_id: str, filters: UserFilter) -> Select[Any]:
    statement = statement.where(User.org_id == org_id, User.deleted_at.is_(None))
    if filters.q is not None and not is_storable(filters.q):
        # Nothing stored holds such text, and the database would refuse to
        # even compare it.
        return statement.where(false())
    if filters.role is not None:
        statement = statement.where(User.role == filters.role)
    if filters.status is not None:
        statement = statement.where(User.status == filters.status)
    if filters.q:
        statement = statement.where(name_contains(User.name, filters.q))
    return statement


async def _locked(
    session: AsyncSession, org_id: str, user_id: str, expected_version: int | None
) -> User:
    check_id(user_id, "usr", "User")
    user = await session.scalar(
        select(User)
        .where(User.id == user_id, User.org_id == org_id, User.deleted_at.is_(None))
        .with_for_update()
    )
    if user is None:
        raise NotFound.of("User", user_id)
    if expected_version is not None and expected_version != user.version:
        raise PreconditionFailed(
            f"User {user_id} is at version {user.version}, not {expected_version}."
        )
    return user


def _check_may_touch(principal: Principal, user: User) -> None:
    """Only the owner changes the owner's account. Decided from the rows, not
    from the caller's role when the request began: an organisation has one
    owner, so an owner who is not the caller means the caller is not the
    owner, even after handing ownership over earlier in the same request."""
    if user.role == Role.OWNER and user.id != principal.user_id:
        raise Forbidden("Only the owner may change or remove the owner's account.")


def _check_guard_rails(principal: Principal, user: User, named: dict[str, Any]) -> None:
    """Refuse, naming the rule, a change the guard rails of roles forbid."""
    _check_may_touch(principal, user)
    role = named.get("role", user.role)
    status = named.get("status", user.status)
    if role != user.role:
        if user.id == principal.user_id:
            raise Forbidden("Nobody can change their own role.")
        if role == Role.OWNER and principal.role != Role.OWNER:
            raise Forbidden("Only the owner can make someone the owner.")
        if role == Role.OWNER and status != ACTIVE:
            raise Forbidden("Ownership can only pass to an active user.")
    if role == Role.OWNER and status == DISABLED:
        raise Forbidden(
            "The owner cannot be disabled or deleted: hand ownership to another "
            "user first."
        )


def _check_status_change(user: User, status: str) -> None:
    """Statuses move between active and disabled; only an invitation makes
    someone invited, and only accepting it makes them active the first time."""
    if status == user.status:
        return
    if status == INVITED:
        raise ValidationFailed(
            "A user cannot be made invited again.",
            [
                FieldProblem(
                    "status",
                    "INVALID",
                    "Only a new user is invited; an invited user can be reinvited.",
                )
            ],
        )
    if status == ACTIVE and user.password_hash is None:
        raise ValidationFailed(
            "This user has never set a password.",
            [
                FieldProblem(
                    "status",
                    "INVALID",
                    "A user who was invited becomes active by accepting the "
                    "invitation.",
                )
            ],
        )


async def _step_down_as_owner(
    session: AsyncSession, ctx: RequestContext, principal: Principal, new_owner: User
) -> None:
    """Make the caller, the owner until now, an admin, in the transaction that
    makes `new_owner` the owner."""
    owner = await session.scalar(
        select(User)
        .where(User.id == principal.user_id, User.org_id == principal.org_id)
        .with_for_update()
    )
    if owner is None or owner.role != Role.OWNER:
        # The caller lost ownership since this request was authenticated.
        raise Forbidden("Only the owner can make someone the owner.")
    owner.role = Role.ADMIN.value
    audit.record(
        session,
        ctx,
        action="user.updated",
        resource_type="user",
        resource_id=owner.id,
        changes={"role": {"old": Role.OWNER.value, "new": Role.ADMIN.value}},
        metadata={"new_owner_id": new_owner.id},
    )
    # Written before the new owner is: the database keeps one owner per
    # organisation, and would refuse a moment with two.
    await session.flush()


async def _cut_off(session: AsyncSession, user: User) -> None:
    """End every session of `user` and void any open invitation."""
    # Imported here: the sessions module builds on this one.
    from signal_admin.resolvers.auth import revoke_sessions

    user.invite_token_hash = None
    user.invite_expires_at = None
    await revoke_sessions(session, user.id)


async def _check_email_free(session: AsyncSession, email: str) -> None:
    taken = await session.scalar(
        select(User.id).where(User.email == email, User.deleted_at.is_(None)).limit(1)
    )
    if taken is not None:
        raise _email_taken(email)


def _email_taken(email: str) -> AlreadyExists:
    return AlreadyExists(f"A user with the email {email} already exists.")


def _new_invite_token() -> str:
    return INVITE_TOKEN_PREFIX + random_base62(40)


def _set_invite(ctx: RequestContext, user: User, invite_token: str) -> None:
    """Only the token's hash is kept; the clear token goes to the caller once."""
    user.invite_token_hash = digest(invite_token)
    user.invite_expires_at = utc_now() + timedelta(
        seconds=ctx.settings.invite_token_ttl
    )


def _audited(user: User) -> dict[str, Any]:
    return {name: getattr(user, name) for name in _AUDITED_FIELDS}
