"""Reading the audit trail: the organisation's entries, newest first, narrowed
by action, resource, actor and time.

Entries are written by `resolvers.audit` in the transaction of each change;
nothing here, nor anywhere else in the API, changes or removes one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError
from sqlalchemy import ColumnElement, and_, func, select

from signal_admin.errors import ValidationFailed
from signal_admin.persistence.models import AuditEntry
from signal_admin.persistence.pagination import Page, fetch_page
from signal_admin.persistence.types import truncate_to_ms
from signal_admin.resolvers.context import RequestContext, requires
from signal_admin.resolvers.validation import parse
from signal_admin.security.permissions import Permission

PREFIX_WILDCARD = ".*"
MAX_ID_LENGTH = 64

# `pipeline.created`, or `pipeline.*` for every action under `pipeline.`.
_ACTION = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?")
_RESOURCE_TYPE = re.compile(r"[a-z][a-z0-9_]*")
_LAST_MILLISECOND_OF_DAY = timedelta(days=1, milliseconds=-1)


def _action(value: str) -> str:
    if not _ACTION.fullmatch(value):
        raise PydanticCustomError(
            "string_pattern_mismatch",
            "Use an action such as pipeline.created, or a prefix such as pipeline.*.",
        )
    return value


def _resource_type(value: str) -> str:
    if not _RESOURCE_TYPE.fullmatch(value):
        raise PydanticCustomError(
            "string_pattern_mismatch",
            "Use a resource type such as pipeline or pipeline_integration.",
        )
    return value


def _instant(value: object, *, end_of_day: bool) -> object:
    """An ISO 8601 date or date and time as an instant in UTC. A time without
    a zone is UTC, like every timestamp the service shows; a date alone is
    its first millisecond, or with `end_of_day` its last."""
    if isinstance(value, datetime):
        return _in_utc(value)
    if not isinstance(value, str):
        return value
    try:
        day = date.fromisoformat(value)
    except ValueError:
        pass
    else:
        moment = datetime.combine(day, time(), tzinfo=UTC)
        return moment + _LAST_MILLISECOND_OF_DAY if end_of_day else moment
    try:
        return _in_utc(datetime.fromisoformat(value))
    except (ValueError, OverflowError):
        raise PydanticCustomError(
            "string_pattern_mismatch",
            "Use an ISO 8601 date or time, such as 2026-02-25 or 2026-02-25T14:30:00Z.",
        ) from None


def _in_utc(moment: datetime) -> datetime:
    """`moment` in UTC at the millisecond, the precision entries keep."""
    if moment.tzinfo is None:
        return truncate_to_ms(moment.replace(tzinfo=UTC))
    return truncate_to_ms(moment.astimezone(UTC))


def _start_of(value: object) -> object:
    return _instant(value, end_of_day=False)


def _end_of(value: object) -> object:
    return _instant(value, end_of_day=True)


Action = Annotated[
    str, StringConstraints(min_length=1, max_length=80), AfterValidator(_action)
]
ResourceType = Annotated[
    str, StringConstraints(min_length=1, max_length=60), AfterValidator(_resource_type)
]
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)]


class AuditLogFilter(BaseModel):
    """Which entries to list; every condition given must hold. Both time
    bounds are inclusive, to the millisecond the service keeps."""

    model_config = ConfigDict(extra="forbid")

    action: Action | None = None
    resource_type: ResourceType | None = None
    resource_id: Identifier | None = None
    user_id: Identifier | None = None
    from_: Annotated[datetime | None, BeforeValidator(_start_of)] = Field(
        default=None, alias="from"
    )
    to: Annotated[datetime | None, BeforeValidator(_end_of)] = None

    @field_validator("to")
    @classmethod
    def _not_before_from(
        cls, value: datetime | None, info: ValidationInfo
    ) -> datetime | None:
        start = info.data.get("from_")
        if value is not None and start is not None and value < start:
            raise PydanticCustomError(
                "greater_than_equal", "It may not be earlier than from."
            )
        return value


def audit_log_filter(
    conditions: Mapping[str, Any],
    *,
    shown_as: Callable[[str], str] = str,
) -> AuditLogFilter:
    """The filter `conditions` describe, null ones left out. A problem answers
    422 naming every problem in the message as well as in `details`, since a
    GraphQL error carries only the message; `shown_as` gives a field's name
    as the face spells it."""
    given = {name: value for name, value in conditions.items() if value is not None}
    try:
        return parse(AuditLogFilter, given)
    except ValidationFailed as error:
        named = " ".join(f"{shown_as(p.field)}: {p.message}" for p in error.details)
        raise ValidationFailed(
            f"The audit log filter is not valid. {named}", error.details
        ) from None


@requires(Permission.READ_AUDIT_LOG)
async def list_audit_logs(
    ctx: RequestContext,
    filters: AuditLogFilter,
    *,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[AuditEntry]:
    """The organisation's audit entries matching `filters`, newest first."""
    principal = ctx.authenticated()
    async with ctx.db.read() as session:
        conditions = _conditions(
            principal.org_id, filters, session.get_bind().dialect.name
        )
        return await fetch_page(
            session,
            select(AuditEntry).where(*conditions),
            AuditEntry.id,
            cursor=cursor,
            limit=limit,
            descending=True,
        )


@requires(Permission.READ_AUDIT_LOG)
async def count_audit_logs(ctx: RequestContext, filters: AuditLogFilter) -> int:
    """How many of the organisation's entries match `filters`, on all pages."""
    principal = ctx.authenticated()
    async with ctx.db.read() as session:
        conditions = _conditions(
            principal.org_id, filters, session.get_bind().dialect.name
        )
        statement = select(func.count()).select_from(AuditEntry).where(*conditions)
        return int(await session.scalar(statement) or 0)


def _conditions(
    org_id: str, filters: AuditLogFilter, dialect: str
) -> list[ColumnElement[bool]]:
    conditions = [AuditEntry.org_id == org_id]
    if filters.action is not None:
        conditions.append(_action_matches(filters.action, dialect))
    if filters.resource_type is not None:
        conditions.append(AuditEntry.resource_type == filters.resource_type)
    if filters.resource_id is not None:
        conditions.append(AuditEntry.resource_id == filters.resource_id)
    if filters.user_id is not None:
        conditions.append(AuditEntry.user_id == filters.user_id)
    if filters.from_ is not None:
        conditions.append(AuditEntry.timestamp >= filters.from_)
    if filters.to is not None:
        conditions.append(AuditEntry.timestamp <= filters.to)
    return conditions


def _action_matches(action: str, dialect: str) -> ColumnElement[bool]:
    """The exact action, or for `pipeline.*` every action that starts with
    `pipeline.`: the actions from `pipeline.` up to, not including,
    `pipeline/`, the character after the dot. The range is compared byte by
    byte whatever the database's collation (PostgreSQL's pattern operators,
    SQLite's binary comparison), so `pipeline_integration.created` is never
    in it, and the index on actions serves it."""
    if not action.endswith(PREFIX_WILDCARD):
        return AuditEntry.action == action
    lowest = action.removesuffix("*")
    beyond = lowest[:-1] + chr(ord(".") + 1)
    if dialect == "postgresql":
        return and_(
            AuditEntry.action.op("~>=~", is_comparison=True)(lowest),
            AuditEntry.action.op("~<~", is_comparison=True)(beyond),
        )
    return and_(AuditEntry.action >= lowest, AuditEntry.action < beyond)
