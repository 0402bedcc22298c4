"""Sessions: login, refresh with rotation and reuse detection, logout, and
resolving a bearer token to the caller."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import structlog
from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from signal_admin.errors import (
    AccountLocked,
    FieldProblem,
    InvalidCredentials,
    InvalidRefreshToken,
    InvalidToken,
    MissingField,
    RateLimited,
    ValidationFailed,
)
from signal_admin.persistence.ids import new_id
from signal_admin.persistence.models import (
    AuthSession,
    LoginAttempt,
    RefreshToken,
    User,
)
from signal_admin.persistence.text import is_storable
from signal_admin.persistence.types import utc_now
from signal_admin.resolvers import audit
from signal_admin.resolvers.context import Principal, RequestContext, Services
from signal_admin.resolvers.users import (
    ACTIVE,
    INVITED,
    MAX_EMAIL_LENGTH,
    name_problem,
    normalise_email,
    password_problem,
)
from signal_admin.security.passwords import (
    MAX_PASSWORD_LENGTH,
    hash_password,
    verify_password,
)
from signal_admin.security.tokens import TokenClaims, digest

log = structlog.get_logger(__name__)

LOGIN_WINDOW_SECONDS = 60.0
MAX_INVITE_TOKEN_LENGTH = 256


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"


# Built once: it runs on every authenticated request, and building it anew
# would cost about as much as running it.
_CALLER = (
    select(
        User.email,
        User.role,
        User.status,
        User.deleted_at,
        User.org_id,
        AuthSession.revoked_at,
    )
    .join(AuthSession, AuthSession.user_id == User.id)
    .where(User.id == bindparam("user_id"), AuthSession.id == bindparam("session_id"))
)


async def authenticate(services: Services, token: str) -> Principal:
    """The caller behind an access token: user and session in one query, so a
    disabled user or a revoked session is cut off at once."""
    claims = services.tokens.verify_access(token)
    async with services.db.read_rows() as connection:
        caller = (
            await connection.execute(
                _CALLER,
                {"user_id": claims.user_id, "session_id": claims.session_id},
            )
        ).first()
    if (
        caller is None
        or caller.revoked_at is not None
        or not _may_sign_in(caller)
        or caller.org_id != claims.org_id
    ):
        raise InvalidToken()
    return Principal(
        user_id=claims.user_id,
        org_id=caller.org_id,
        email=caller.email,
        role=caller.role,
        session_id=claims.session_id,
        token_expires_at=datetime.fromtimestamp(claims.expires_at, UTC),
    )


async def login(ctx: RequestContext, email: str, password: str) -> TokenPair:
    settings = ctx.settings
    email = normalise_email(email)
    if len(email) > MAX_EMAIL_LENGTH or len(password) > MAX_PASSWORD_LENGTH:
        # No account can have such an email or password: refuse before the
        # input reaches the limiter's keys or the password hasher.
        raise InvalidCredentials()

    decision = await ctx.services.limiter.hit(
        f"login:{email}", settings.login_attempts_per_minute, LOGIN_WINDOW_SECONDS
    )
    if not decision.allowed:
        raise RateLimited(decision.retry_after)
    if not is_storable(email):
        # No account can have such an address, and the database would refuse
        # to look it up.
        raise InvalidCredentials()
    async with ctx.db.read() as session:
        attempt = await session.get(LoginAttempt, email)
        user = await _user_by_email(session, email)
    if attempt and attempt.locked_until and attempt.locked_until > utc_now():
        raise AccountLocked()

    candidate = user if user is not None and _may_sign_in(user) else None
    matches = await verify_password(
        candidate.password_hash if candidate else None, password
    )
    if candidate is None or not matches:
        await _record_failure(ctx, email, user)
        raise InvalidCredentials()

    async with ctx.db.transaction() as session:
        await session.execute(delete(LoginAttempt).where(LoginAttempt.email == email))
        user = await session.get_one(User, candidate.id)
        user.last_login_at = utc_now()
        auth_session = AuthSession(
            id=new_id("ses"),
            user_id=user.id,
            org_id=user.org_id,
            ip_address=ctx.meta.ip_address,
            user_agent=ctx.meta.user_agent,
        )
        session.add(auth_session)
        await session.flush()
        pair = _issue_pair(ctx.services, session, user, auth_session.id)
        audit.record(
            session,
            ctx,
            action="auth.login",
            resource_type="user",
            resource_id=user.id,
            org_id=user.org_id,
            actor_id=user.id,
            actor_email=user.email,
        )
    log.info("auth.login", user_id=user.id, org_id=user.org_id)
    return pair


async def refresh(ctx: RequestContext, refresh_token: str) -> TokenPair:
    claims = ctx.services.tokens.verify_refresh(refresh_token)
    now = utc_now()
    reuse_detected = False

    async with ctx.db.transaction() as session:
        stored = await session.get(RefreshToken, digest(claims.jti))
        user = await session.get(User, claims.user_id)
        auth_session = await session.get(AuthSession, claims.session_id)
        if not _refresh_usable(stored, user, auth_session, claims):
            raise InvalidRefreshToken()
        assert stored is not None
        assert user is not None
        if stored.used_at is not None:
            grace = timedelta(seconds=ctx.settings.refresh_reuse_grace_seconds)
            if now - stored.used_at <= grace:
                raise InvalidRefreshToken()
            await revoke_sessions(session, user.id)
            audit.record(
                session,
                ctx,
                action="auth.token_reuse_detected",
                resource_type="user",
                resource_id=user.id,
                org_id=user.org_id,
                actor_id=user.id,
                actor_email=user.email,
                metadata={"session_id": claims.session_id},
            )
            reuse_detected = True
        else:
            pair = await _rotate(ctx.services, session, stored, user, now)

    if reuse_detected:
        log.warning("auth.token_reuse_detected", user_id=claims.user_id)
        raise InvalidRefreshToken(
            "This refresh token was already used; every session was signed out."
        )
    return pair


async def logout(ctx: RequestContext, refresh_token: str) -> None:
    principal = ctx.authenticated()
    claims = ctx.services.tokens.verify_refresh(refresh_token)
    if claims.user_id != principal.user_id:
        raise InvalidRefreshToken()

    async with ctx.db.transaction() as session:
        auth_session = await session.get(AuthSession, claims.session_id)
        if auth_session is None or auth_session.user_id != principal.user_id:
            raise InvalidRefreshToken()
        if auth_session.revoked_at is None:
            auth_session.revoked_at = utc_now()
        audit.record(
            session,
            ctx,
            action="auth.logout",
            resource_type="user",
            resource_id=principal.user_id,
            metadata={"session_id": auth_session.id},
        )


class InvalidInvite(InvalidToken):
    """An invite token that opens no invitation: unknown, spent, replaced by a
    newer one, or expired. The caller can fix it with a fresh invitation, so
    GraphQL reports it in `userErrors`."""

    default_message = "The invitation is unknown, already used or expired."
    user_fixable = True


async def accept_invite(
    ctx: RequestContext, invite_token: str, password: str, name: str | None = None
) -> TokenPair:
    """Set an invited user's password (and name), make them active and sign
    them in: the answer is the token pair of their first session."""
    problems = [
        problem
        for problem in (
            password_problem(password),
            name_problem(name) if name is not None else None,
        )
        if problem is not None
    ]
    if problems:
        raise ValidationFailed("The invitation cannot be accepted.", problems)
    if len(invite_token) > MAX_INVITE_TOKEN_LENGTH or not is_storable(invite_token):
        raise InvalidInvite()
    token_hash = digest(invite_token)
    async with ctx.db.read() as session:
        if await _invited_user(session, token_hash) is None:
            raise InvalidInvite()
    password_hash = await hash_password(password)

    async with ctx.db.transaction() as session:
        user = await _invited_user(session, token_hash, lock=True)
        if user is None:
            # Accepted, replaced or voided while the password was being hashed.
            raise InvalidInvite()
        before = {"name": user.name, "status": user.status}
        user.name = name.strip() if name is not None else user.name
        user.status = ACTIVE
        user.password_hash = password_hash
        user.invite_token_hash = None
        user.invite_expires_at = None
        user.last_login_at = utc_now()
        pair, session_id = await _open_session(ctx, session, user)
        _record_acceptance(ctx, session, user, before, session_id)
    log.info("user.invite_accepted", user_id=user.id, org_id=user.org_id)
    return pair


async def _open_session(
    ctx: RequestContext, session: AsyncSession, user: User
) -> tuple[TokenPair, str]:
    auth_session = AuthSession(
        id=new_id("ses"),
        user_id=user.id,
        org_id=user.org_id,
        ip_address=ctx.meta.ip_address,
        user_agent=ctx.meta.user_agent,
    )
    session.add(auth_session)
    await session.flush()
    return _issue_pair(ctx.services, session, user, auth_session.id), auth_session.id


def _record_acceptance(
    ctx: RequestContext,
    session: AsyncSession,
    user: User,
    before: dict[str, str],
    session_id: str,
) -> None:
    """Audit the acceptance and the sign-in it is, in the user's name."""
    after = {"name": user.name, "status": user.status}
    for action, changes in (
        ("user.invite_accepted", audit.diff(before, after)),
        ("auth.login", {}),
    ):
        audit.record(
            session,
            ctx,
            action=action,
            resource_type="user",
            resource_id=user.id,
            org_id=user.org_id,
            changes=changes,
            metadata={"session_id": session_id, "via": "invite"},
            actor_id=user.id,
            actor_email=user.email,
        )


async def _invited_user(
    session: AsyncSession, token_hash: str, *, lock: bool = False
) -> User | None:
    """The user whose open invitation `token_hash` names, if any."""
    statement = select(User).where(
        User.invite_token_hash == token_hash,
        User.status == INVITED,
        User.deleted_at.is_(None),
        User.invite_expires_at > utc_now(),
    )
    if lock:
        statement = statement.with_for_update()
    return await session.scalar(statement)


async def get_me(ctx: RequestContext) -> User:
    principal = ctx.authenticated()
    async with ctx.db.read() as session:
        return await session.get_one(User, principal.user_id)


async def update_me(
    ctx: RequestContext,
    *,
    name: str | None = None,
    current_password: str | None = None,
    new_password: str | None = None,
) -> User:
    """Change the caller's name, or their password (which signs out every other
    session of theirs)."""
    principal = ctx.authenticated()
    problems = _me_problems(name, current_password, new_password)
    if any(problem.code == "REQUIRED" for problem in problems):
        raise MissingField("Your profile change misses a field.", problems)
    if problems:
        raise ValidationFailed("Your profile cannot be changed.", problems)

    async with ctx.db.read() as session:
        user = await session.get_one(User, principal.user_id)
    if new_password is not None:
        assert current_password is not None
        if not await verify_password(user.password_hash, current_password):
            raise ValidationFailed(
                "The current password is incorrect.",
                [FieldProblem("current_password", "INVALID", "Incorrect password.")],
            )
        password_hash = await hash_password(new_password)

    async with ctx.db.transaction() as session:
        user = await _locked_user(session, principal.user_id)
        if name is not None and name != user.name:
            audit.record(
                session,
                ctx,
                action="user.updated",
                resource_type="user",
                resource_id=user.id,
                changes=audit.diff({"name": user.name}, {"name": name}),
            )
            user.name = name
        if new_password is not None:
            user.password_hash = password_hash
            await revoke_sessions(session, user.id, keep=principal.session_id)
            audit.record(
                session,
                ctx,
                action="user.password_changed",
                resource_type="user",
                resource_id=user.id,
            )
        await session.flush()
    return user


def _me_problems(
    name: str | None, current_password: str | None, new_password: str | None
) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    if name is not None and (problem := name_problem(name)):
        problems.append(problem)
    if (current_password is None) != (new_password is None):
        missing = "current_password" if current_password is None else "new_password"
        problems.append(
            FieldProblem(
                missing,
                "REQUIRED",
                "A password change needs current_password and new_password.",
            )
        )
    if new_password is not None:
        problem = password_problem(new_password, "new_password")
        if problem:
            problems.append(problem)
    if name is None and new_password is None and current_password is None:
        problems.append(
            FieldProblem("name", "REQUIRED", "Give a name or a new password.")
        )
    return problems


async def _locked_user(session: AsyncSession, user_id: str) -> User:
    return (
        await session.scalars(select(User).where(User.id == user_id).with_for_update())
    ).one()


async def revoke_sessions(
    session: AsyncSession, user_id: str, *, keep: str | None = None
) -> None:
    """Revoke every open session of a user, except `keep`."""
    statement = update(AuthSession).where(
        AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
    )
    if keep is not None:
        statement = statement.where(AuthSession.id != keep)
    await session.execute(statement.values(revoked_at=utc_now()))


class _Account(Protocol):
    status: str
    deleted_at: datetime | None


def _may_sign_in(user: _Account) -> bool:
    return user.status == ACTIVE and user.deleted_at is None


async def _user_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(
        select(User).where(User.email == email, User.deleted_at.is_(None))
    )


def _refresh_usable(
    stored: RefreshToken | None,
    user: User | None,
    auth_session: AuthSession | None,
    claims: TokenClaims,
) -> bool:
    return (
        stored is not None
        and user is not None
        and auth_session is not None
        and stored.session_id == auth_session.id
        and auth_session.user_id == user.id
        and auth_session.revoked_at is None
        and stored.expires_at > utc_now()
        and _may_sign_in(user)
        and user.org_id == claims.org_id
    )


async def _rotate(
    services: Services,
    session: AsyncSession,
    stored: RefreshToken,
    user: User,
    now: datetime,
) -> TokenPair:
    # The conditional UPDATE picks exactly one winner among racing refreshes:
    # the others find the token already spent and match no row.
    spent = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.jti_hash == stored.jti_hash, RefreshToken.used_at.is_(None))
        .values(used_at=now)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        raise InvalidRefreshToken()
    return _issue_pair(services, session, user, stored.session_id)


def _issue_pair(
    services: Services, session: AsyncSession, user: User, session_id: str
) -> TokenPair:
    tokens = services.tokens
    access = tokens.issue_access(
        user_id=user.id, org_id=user.org_id, session_id=session_id, role=user.role
    )
    refresh_token = tokens.issue_refresh(
        user_id=user.id, org_id=user.org_id, session_id=session_id
    )
    session.add(
        RefreshToken(
            jti_hash=digest(refresh_token.jti),
            session_id=session_id,
            user_id=user.id,
            expires_at=datetime.fromtimestamp(refresh_token.expires_at, UTC),
        )
    )
    return TokenPair(
        access_token=access.token,
        refresh_token=refresh_token.token,
        expires_in=tokens.access_ttl,
    )


async def _record_failure(ctx: RequestContext, email: str, user: User | None) -> None:
    """Count a failed login for the email, locking it after too many in a row.
    A failure for an unknown email is logged but belongs to no org's audit."""
    settings = ctx.settings
    now = utc_now()

    async with ctx.db.transaction() as session:
        failures = await _count_failure(session, email, now)
        if failures >= settings.lockout_threshold:
            await session.execute(
                update(LoginAttempt)
                .where(LoginAttempt.email == email)
                .values(
                    failure_count=0,
                    locked_until=now + timedelta(seconds=settings.lockout_seconds),
                )
            )
        if user is not None:
            audit.record(
                session,
                ctx,
                action="auth.login_failed",
                resource_type="user",
                resource_id=user.id,
                org_id=user.org_id,
                actor_id=user.id,
                actor_email=user.email,
                metadata={"locked": failures >= settings.lockout_threshold},
            )
    log.info("auth.login_failed", email=email, known=user is not None)


async def _count_failure(session: AsyncSession, email: str, now: datetime) -> int:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(LoginAttempt)
        .values(email=email, failure_count=1, updated_at=now)
        .on_conflict_do_update(
            index_elements=[LoginAttempt.email],
            set_={"failure_count": LoginAttempt.failure_count + 1, "updated_at": now},
        )
        .returning(LoginAttempt.failure_count)
    )
    return int((await session.execute(statement)).scalar_one())
