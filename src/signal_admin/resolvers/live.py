"""Live streams, shared by the REST socket and GraphQL subscriptions: who may
open one, which items it shows, and how long its socket may stay open.

A socket is opened through `LiveSockets.open`, which takes one of the user's
slots (at most `LIVE_SOCKETS_PER_USER` across every replica) and registers
it with this process's watch. The watch checks the sessions behind every
open socket in one query each `LIVE_SESSION_CHECK_SECONDS`, and ends the
sockets whose session was revoked or whose user was disabled or deleted; it
also keeps the slots of open sockets from expiring. The token's own expiry is
each face's to enforce, since a client may send a newer one in band.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol

import structlog
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import select

from signal_admin.errors import (
    DomainError,
    FieldProblem,
    InvalidToken,
    NotFound,
    ValidationFailed,
)
from signal_admin.live.bus import (
    LOST,
    STAGES,
    UNREACHABLE,
    BusUnavailable,
    Feed,
    LiveBus,
    Message,
)
from signal_admin.persistence.database import AfterCommit
from signal_admin.persistence.ids import check_id
from signal_admin.persistence.models import AuthSession, Pipeline, User
from signal_admin.resolvers import audit
from signal_admin.resolvers.audit_logs import AuditLogFilter
from signal_admin.resolvers.auth import authenticate
from signal_admin.resolvers.context import (
    Principal,
    RequestContext,
    Services,
    requires,
)
from signal_admin.resolvers.users import ACTIVE
from signal_admin.resolvers.validation import parse
from signal_admin.security.permissions import Permission

log = structlog.get_logger(__name__)

MAX_FILTER_VALUES = 100
# A slot not refreshed for this long is free again: a replica that crashed
# gives its users' sockets back within it.
SLOT_TTL_SECONDS = 90.0

FilterValue = Annotated[str, StringConstraints(min_length=1, max_length=200)]
FilterValues = Annotated[list[FilterValue], Field(max_length=MAX_FILTER_VALUES)]


class StageFilterInput(BaseModel):
    """The stream's filter as a client sends it; every list given must
    contain the item's value."""

    model_config = ConfigDict(extra="forbid")

    stages: FilterValues | None = None
    event_types: FilterValues | None = None
    event_names: FilterValues | None = None
    integration_ids: FilterValues | None = None


class TooManySockets(DomainError):
    code = "TOO_MANY_SOCKETS"
    status = 429
    default_message = "You have too many live sockets open."


@dataclass(frozen=True, slots=True)
class StageFilter:
    """Which stage events a listener keeps. An empty condition keeps
    everything; `integration_ids` matches a stage's template or attachment,
    so stages that belong to no integration do not match it."""

    pipeline_id: str | None = None
    stages: frozenset[str] | None = None
    event_types: frozenset[str] | None = None
    event_names: frozenset[str] | None = None
    integration_ids: frozenset[str] | None = None

    def __call__(self, message: Message) -> bool:
        item = message.data
        if self.pipeline_id is not None and item.get("pipeline_id") != self.pipeline_id:
            return False
        if not _one_of(item.get("stage"), self.stages):
            return False
        event = item.get("event")
        event = event if isinstance(event, dict) else {}
        if not _one_of(event.get("type"), self.event_types):
            return False
        if not _one_of(event.get("event"), self.event_names):
            return False
        return self.integration_ids is None or any(
            _one_of(item.get(name), self.integration_ids)
            for name in ("integration_id", "pipeline_integration_id")
        )


def _one_of(value: object, wanted: frozenset[str] | None) -> bool:
    """Whether `value` is among `wanted` (anything is, when nothing is
    named). Items may come from outside the service (the data plane), so a
    value that is not a string matches nothing rather than failing."""
    return wanted is None or (isinstance(value, str) and value in wanted)


@requires(Permission.USE_LIVE_DEBUGGER)
async def open_stage_stream(
    ctx: RequestContext,
    pipeline_id: str | None,
    conditions: Mapping[str, Any] | None = None,
) -> StageFilter:
    """The filter of a new stream of stage events: the caller's pipeline (404
    for one of another organisation) and the conditions, checked."""
    principal = ctx.authenticated()
    given = _filter_input(conditions)
    if given.stages is not None:
        unknown = sorted(set(given.stages) - STAGES)
        if unknown:
            raise _unknown_stages(unknown)
    if pipeline_id is not None:
        await _check_pipeline(ctx, principal.org_id, pipeline_id)
    return StageFilter(
        pipeline_id=pipeline_id,
        stages=_values(given.stages),
        event_types=_values(given.event_types),
        event_names=_values(given.event_names),
        integration_ids=_values(given.integration_ids),
    )


@dataclass(frozen=True, slots=True)
class AuditFeedFilter:
    """Which audit entries a listener of the audit feed keeps."""

    conditions: AuditLogFilter

    def __call__(self, message: Message) -> bool:
        item, wanted = message.data, self.conditions
        action = item.get("action")
        if wanted.action is not None and not _action_matches(wanted.action, action):
            return False
        for name in ("resource_type", "resource_id", "user_id"):
            value = getattr(wanted, name)
            if value is not None and item.get(name) != value:
                return False
        if wanted.from_ is not None or wanted.to is not None:
            moment = _instant(item.get("timestamp"))
            if moment is None:
                return False
            if wanted.from_ is not None and moment < wanted.from_:
                return False
            if wanted.to is not None and moment > wanted.to:
                return False
        return True


@requires(Permission.READ_AUDIT_LOG)
async def open_audit_stream(
    ctx: RequestContext, conditions: AuditLogFilter
) -> AuditFeedFilter:
    """The filter of a new stream of the organisation's audit entries."""
    return AuditFeedFilter(conditions)


def _action_matches(wanted: str, action: object) -> bool:
    if not isinstance(action, str):
        return False
    if wanted.endswith(".*"):
        return action.startswith(wanted[:-1])
    return action == wanted


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _check_pipeline(ctx: RequestContext, org_id: str, pipeline_id: str) -> None:
    check_id(pipeline_id, "pip", "Pipeline")
    async with ctx.db.read() as session:
        found = await session.scalar(
            select(Pipeline.id).where(
                Pipeline.id == pipeline_id, Pipeline.org_id == org_id
            )
        )
    if found is None:
        raise NotFound.of("Pipeline", pipeline_id)


def _filter_input(conditions: Mapping[str, Any] | None) -> StageFilterInput:
    """The filter, checked; each problem named under `filter.` in the
    message too, since a GraphQL error carries only the message."""
    try:
        return parse(StageFilterInput, dict(conditions or {}))
    except ValidationFailed as error:
        problems = [
            FieldProblem(f"filter.{p.field}", p.code, p.message) for p in error.details
        ]
        named = " ".join(f"{p.field}: {p.message}" for p in problems)
        raise ValidationFailed(f"The filter is not valid. {named}", problems) from None


def _unknown_stages(unknown: list[str]) -> DomainError:
    return ValidationFailed(
        f"Unknown stage {', '.join(unknown)}; stages are {', '.join(sorted(STAGES))}.",
        [
            FieldProblem(
                field="filter.stages",
                code="invalid_choice",
                message=f"Unknown stage {', '.join(unknown)}.",
            )
        ],
    )


def _values(values: list[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(values)


# --- Sockets -----------------------------------------------------------------


class SocketSlots(Protocol):
    """How many live sockets each user has open, across every replica."""

    async def take(self, user_id: str, socket_id: str, limit: int) -> bool:
        """Take a slot for `socket_id`; False when the user has `limit`.
        Raises `BusUnavailable` when the count cannot be read."""

    async def keep(self, slots: Iterable[tuple[str, str]]) -> None:
        """Keep the (user, socket) slots of open sockets from expiring.
        Raises `BusUnavailable` when Redis cannot be reached."""

    async def give_back(self, user_id: str, socket_id: str) -> None: ...


class MemorySocketSlots:
    """One process's count, for embedded mode."""

    def __init__(self) -> None:
        self._sockets: dict[str, set[str]] = {}

    async def take(self, user_id: str, socket_id: str, limit: int) -> bool:
        sockets = self._sockets.setdefault(user_id, set())
        if len(sockets) >= limit:
            return False
        sockets.add(socket_id)
        return True

    async def keep(self, slots: Iterable[tuple[str, str]]) -> None:
        return None

    async def give_back(self, user_id: str, socket_id: str) -> None:
        sockets = self._sockets.get(user_id)
        if sockets is not None:
            sockets.discard(socket_id)
            if not sockets:
                del self._sockets[user_id]


# Drops the user's expired slots, then adds this one when there is room;
# answers 1 when it was added.
_TAKE_SLOT = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if redis.call('ZCARD', key) >= limit then
  return 0
end
redis.call('ZADD', key, now + ttl, ARGV[4])
redis.call('PEXPIRE', key, math.ceil(ttl * 1000))
return 1
"""


class RedisSocketSlots:
    """Slots in one sorted set per user, scored by when each expires, so a
    replica that stops without giving its slots back frees them by expiry.
    When Redis cannot be reached no slot can be counted, so no socket is
    opened: `take` raises `BusUnavailable`, as the bus it needs would."""

    def __init__(self, redis: Redis, prefix: str = "signal:live-sockets:") -> None:
        self._redis = redis
        self._prefix = prefix
        self._take = redis.register_script(_TAKE_SLOT)

    async def take(self, user_id: str, socket_id: str, limit: int) -> bool:
        try:
            taken = await self._take(
                keys=[self._prefix + user_id],
                args=[time.time(), SLOT_TTL_SECONDS, limit, socket_id],
            )
        except (RedisError, OSError) as error:
            log.warning("live.slots_unreachable", error=str(error))
            raise BusUnavailable(UNREACHABLE) from error
        return bool(taken)

    async def keep(self, slots: Iterable[tuple[str, str]]) -> None:
        expires = time.time() + SLOT_TTL_SECONDS
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for user_id, socket_id in slots:
                    key = self._prefix + user_id
                    # Added afresh if missing, so that the count is whole again
                    # once a Redis that lost its data is back.
                    pipe.zadd(key, {socket_id: expires})
                    pipe.pexpire(key, int(SLOT_TTL_SECONDS * 1000))
                await pipe.execute()
        except (RedisError, OSError) as error:
            log.warning("live.slots_unreachable", error=str(error))
            raise BusUnavailable(LOST) from error

    async def give_back(self, user_id: str, socket_id: str) -> None:
        try:
            await self._redis.zrem(self._prefix + user_id, socket_id)
        except (RedisError, OSError) as error:
            log.warning("live.slots_unreachable", error=str(error))


@dataclass(slots=True)
class LiveSocket:
    """One open live socket, as the watch sees it. `principal` is replaced
    when the client sends a newer token and when the watch reads the user's
    current role; `ended` is set when the session no longer holds."""

    id: str
    principal: Principal
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    # Set, with `ended`, when the socket ends because Redis was lost rather
    # than because of its session.
    lost: BusUnavailable | None = None


async def renew(services: Services, socket: LiveSocket, token: str) -> None:
    """Carry `socket` on with a newer access token, which moves its expiry.
    The token must authenticate and belong to the socket's user: a socket
    never changes hands."""
    principal = await authenticate(services, token)
    if principal.user_id != socket.principal.user_id:
        raise InvalidToken("The token belongs to another user.")
    socket.principal = principal


class LiveSockets:
    """This process's open live sockets, of both faces."""

    def __init__(self, services: Services, slots: SocketSlots) -> None:
        self._services = services
        self._slots = slots
        self._sockets: dict[str, LiveSocket] = {}

    @property
    def count(self) -> int:
        return len(self._sockets)

    @asynccontextmanager
    async def open(self, principal: Principal) -> AsyncIterator[LiveSocket]:
        """Register a socket of `principal`'s for the block's duration;
        `TooManySockets` when the user already has their limit open,
        `BusUnavailable` when Redis cannot say."""
        socket = LiveSocket(id=uuid.uuid4().hex, principal=principal)
        limit = self._services.settings.live_sockets_per_user
        if not await self._slots.take(principal.user_id, socket.id, limit):
            raise TooManySockets(
                f"You have {limit} live sockets open, the most a user may have; "
                "close one first."
            )
        self._sockets[socket.id] = socket
        try:
            yield socket
        finally:
            del self._sockets[socket.id]
            await self._slots.give_back(principal.user_id, socket.id)

    async def watch(self) -> None:
        """Check the open sockets' sessions and keep their slots, forever."""
        interval = self._services.settings.live_session_check_seconds
        while True:
            await asyncio.sleep(interval)
            try:
                await self.check_sessions()
                await self._slots.keep(
                    (s.principal.user_id, s.id) for s in self._sockets.values()
                )
            except BusUnavailable as error:
                # The sockets can be neither counted nor fed: end them all,
                # subscribed or not.
                for socket in list(self._sockets.values()):
                    socket.lost = error
                    socket.ended.set()
            except Exception:
                log.exception("live.watch_failed")

    async def check_sessions(self) -> None:
        """End the sockets whose session was revoked or whose user may no
        longer sign in; bring the others' role up to date."""
        # Each socket with the session it had when the check began: a socket
        # given a token of another session meanwhile is judged next time.
        sockets = [(s, s.principal.session_id) for s in self._sockets.values()]
        if not sockets:
            return
        session_ids = {session_id for _, session_id in sockets}
        try:
            current = await _sessions_in_force(self._services, session_ids)
        except DomainError as error:
            # The database is unreachable: the sockets stay until it answers.
            log.warning("live.session_check_failed", error=error.code)
            return
        for socket, session_id in sockets:
            if socket.principal.session_id != session_id:
                continue
            role = current.get(session_id)
            if role is None:
                socket.ended.set()
            elif role != socket.principal.role:
                socket.principal = _with_role(socket.principal, role)


async def _sessions_in_force(
    services: Services, session_ids: set[str]
) -> dict[str, str]:
    """Of `session_ids`, those still in force, with their user's current
    role."""
    query = (
        select(AuthSession.id, User.role)
        .join(User, User.id == AuthSession.user_id)
        .where(
            AuthSession.id.in_(session_ids),
            AuthSession.revoked_at.is_(None),
            User.status == ACTIVE,
            User.deleted_at.is_(None),
        )
    )
    async with services.db.read_rows() as connection:
        rows = (await connection.execute(query)).all()
    return {row.id: row.role for row in rows}


def _with_role(principal: Principal, role: str) -> Principal:
    return Principal(
        user_id=principal.user_id,
        org_id=principal.org_id,
        email=principal.email,
        role=role,
        session_id=principal.session_id,
        token_expires_at=principal.token_expires_at,
    )


def audit_publisher(bus: LiveBus) -> AfterCommit:
    """The after-commit hook that publishes a transaction's audit entries to
    the audit feed, so `auditLogAdded` never shows a change that was rolled
    back."""

    async def publish(info: dict[str, Any]) -> None:
        by_org: dict[str, list[dict[str, Any]]] = {}
        for entry in audit.recorded(info):
            by_org.setdefault(entry.org_id, []).append(audit.published_entry(entry))
        for org_id, items in by_org.items():
            await bus.publish(Feed.AUDIT, org_id, items)

    return publish


@asynccontextmanager
async def watching_live_sockets(services: Services) -> AsyncIterator[None]:
    """Run the watch of this process's live sockets while the app runs."""
    assert services.live_sockets is not None
    task = asyncio.create_task(services.live_sockets.watch(), name="live-watch")
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
