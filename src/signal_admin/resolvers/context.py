"""What every resolver is given: the shared services, who is calling, and the
request's metadata for the audit trail."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

from anyio import CapacityLimiter
from redis.asyncio import Redis

from signal_admin.catalog.loader import Catalog
from signal_admin.config import Settings
from signal_admin.errors import Forbidden, Unauthorized
from signal_admin.persistence.database import Database
from signal_admin.processing.runtime import Deadline
from signal_admin.ratelimit import RateLimiter
from signal_admin.security.crypto import Cipher
from signal_admin.security.permissions import Permission, role_has
from signal_admin.security.tokens import TokenService

if TYPE_CHECKING:
    from signal_admin.live.bus import LiveBus
    from signal_admin.processing.sandbox import Sandbox
    from signal_admin.resolvers.crypto import ReEncryptionWorkers
    from signal_admin.resolvers.live import LiveSockets


@dataclass(slots=True)
class Services:
    """Long-lived parts, built once at start-up and shared by every request."""

    settings: Settings
    db: Database
    tokens: TokenService
    cipher: Cipher
    limiter: RateLimiter
    catalog: Catalog
    redis: Redis | None = None
    # This process's re-encryption work, while the app runs.
    re_encryption: ReEncryptionWorkers | None = None
    # Where stage events are published; custom JavaScript.
    live: LiveBus | None = None
    sandbox: Sandbox | None = None
    # This process's open live sockets, of both faces.
    live_sockets: LiveSockets | None = None
    _processing_slots: CapacityLimiter | None = None

    def processing_slots(self) -> CapacityLimiter:
        """The worker threads dry runs may use at once, made on first use
        (a limiter belongs to the event loop that made it)."""
        if self._processing_slots is None:
            self._processing_slots = CapacityLimiter(self.settings.processing_threads)
        return self._processing_slots


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller, as loaded from the database on this request."""

    user_id: str
    org_id: str
    email: str
    role: str
    session_id: str
    token_expires_at: datetime | None = None

    def can(self, permission: Permission) -> bool:
        return role_has(self.role, permission)


@dataclass(frozen=True, slots=True)
class RequestMeta:
    request_id: str | None = None
    ip_address: str | None = None
    user_agent: str | None = None


@dataclass(slots=True)
class RequestContext:
    services: Services
    meta: RequestMeta
    principal: Principal | None = None
    # The time budget of the request's dry runs, from the first one on: every
    # dry run of one request (several GraphQL mutations) shares it.
    dry_run_deadline: Deadline | None = None

    @property
    def db(self) -> Database:
        return self.services.db

    @property
    def settings(self) -> Settings:
        return self.services.settings

    def authenticated(self) -> Principal:
        if self.principal is None:
            raise Unauthorized()
        return self.principal

    def require(self, permission: Permission) -> Principal:
        """The caller, if their role grants `permission`; checked before
        anything is loaded, so a refusal reveals nothing."""
        principal = self.authenticated()
        if not principal.can(permission):
            raise Forbidden(
                f"Your role ({principal.role}) lacks the permission to "
                f"{permission.value}."
            )
        return principal


P = ParamSpec("P")
R = TypeVar("R")
Operation = Callable[Concatenate[RequestContext, P], Awaitable[R]]

_REQUIRED: dict[Callable[..., object], Permission] = {}


def requires(
    permission: Permission,
) -> Callable[[Operation[P, R]], Operation[P, R]]:
    """Declare the permission an operation needs. The check runs first, before
    the operation reads its input or anything else, and a face can make the
    same check earlier still with `permission_of`."""

    def guard(operation: Operation[P, R]) -> Operation[P, R]:
        @functools.wraps(operation)
        async def guarded(
            ctx: RequestContext, /, *args: P.args, **kwargs: P.kwargs
        ) -> R:
            ctx.require(permission)
            return await operation(ctx, *args, **kwargs)

        _REQUIRED[guarded] = permission
        return guarded

    return guard


def permission_of(operation: Callable[..., object]) -> Permission:
    """The permission `operation` was declared with by `requires`."""
    return _REQUIRED[operation]
