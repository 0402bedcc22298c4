"""Users: the rules for emails, passwords and creating people in an org."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from signal_admin.errors import AlreadyExists, FieldProblem, ValidationFailed
from signal_admin.persistence.ids import new_id
from signal_admin.persistence.models import User
from signal_admin.resolvers import audit
from signal_admin.resolvers.context import RequestContext
from signal_admin.security.passwords import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    hash_password,
)
from signal_admin.security.permissions import Role

ACTIVE = "active"
INVITED = "invited"
DISABLED = "disabled"
MAX_EMAIL_LENGTH = 320
MAX_NAME_LENGTH = 200


@dataclass(frozen=True, slots=True)
class NewUser:
    user: User
    generated_password: str | None


def normalise_email(email: str) -> str:
    return email.strip().lower()


def is_storable(text: str) -> bool:
    """False for text no column can hold: NUL characters (PostgreSQL refuses
    them) and unpaired surrogates (not UTF-8)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
    return None


def generate_password() -> str:
    return secrets.token_urlsafe(18)


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
    """Create an active user in `org_id` with `password`, or a generated one."""
    email = normalise_email(email)
    generated = None if password else generate_password()
    password = password or generated
    assert password is not None
    problems = [p for p in (email_problem(email), password_problem(password)) if p]
    if problems:
        raise ValidationFailed("The user cannot be created.", problems)
    taken = await session.scalar(
        select(func.count()).select_from(User).where(User.email == email)
    )
    if taken:
        raise AlreadyExists(f"A user with the email {email} already exists.")

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
        changes=audit.created({"email": email, "name": name, "role": role.value}),
    )
    return NewUser(user=user, generated_password=generated)
