"""The audit trail: who changed what, when, from where; read-only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Annotated, Any

import strawberry

from signal_admin.errors import DomainError
from signal_admin.live.bus import Dropped, Feed, Message
from signal_admin.persistence.models import AuditEntry
from signal_admin.persistence.models import User as UserRow
from signal_admin.resolvers import audit_logs, live
from signal_admin.resolvers.context import permission_of
from signal_admin.schema.auth import User
from signal_admin.schema.context import GraphQLContext, Info
from signal_admin.schema.errors import field_path
from signal_admin.schema.execution import batched, once_per_row, one
from signal_admin.schema.fields import query_field, subscription_field
from signal_admin.schema.inputs import given
from signal_admin.schema.loaders import UserKey
from signal_admin.schema.pagination import (
    After,
    Connection,
    First,
    edges_of,
    page_info_of,
    page_size,
)
from signal_admin.schema.scalars import JSON
from signal_admin.schema.streams import FeedStream
from signal_admin.schema.users import user_as_seen_by

_INSTANT = (
    "An ISO 8601 date or time, inclusive; UTC when it names no zone; a date "
    "alone covers its whole day."
)


async def actors_of(
    context: GraphQLContext, entries: Sequence[AuditLog]
) -> list[User | None]:
    """Who made each entry's change, as the caller may see them; null for a
    change no user made (one from the command line). A deleted user is still
    named: the trail keeps saying who acted."""
    keys = [UserKey(e.org_id, e.user_id) for e in entries if e.user_id is not None]
    loaded = iter(await context.loaders.user_by_id.load_many(keys))
    rows = [next(loaded) if e.user_id is not None else None for e in entries]

    def actor(row: UserRow | None) -> User | None:
        return None if row is None else user_as_seen_by(context, row)

    return once_per_row(rows, actor)


@strawberry.type(
    description="One change on the record: who did what to which resource."
)
class AuditLog:
    id: strawberry.ID = strawberry.field(description="The entry's id (log_…).")
    action: str = strawberry.field(
        description="What happened, e.g. pipeline.created or auth.login."
    )
    resource_type: str = strawberry.field(
        description="The kind of resource it happened to, e.g. pipeline."
    )
    resource_id: str | None = strawberry.field(
        description="The id of that resource; null when it has none."
    )
    changes: JSON = strawberry.field(
        description='Per changed field {"old": …, "new": …}; secrets read ***.'
    )
    metadata: JSON = strawberry.field(
        description="What else the action recorded, e.g. the session it ended."
    )
    ip_address: str | None = strawberry.field(
        description="The client address the change came from."
    )
    user_agent: str | None = strawberry.field(
        description="The client's User-Agent header."
    )
    request_id: str | None = strawberry.field(
        description="The X-Request-ID of the request that made the change; "
        "every entry of one request shares it."
    )
    timestamp: datetime = strawberry.field(description="When it happened.")
    org_id: strawberry.Private[str]
    user_id: strawberry.Private[str | None]

    @classmethod
    def from_row(cls, entry: AuditEntry) -> AuditLog:
        return cls(
            id=strawberry.ID(entry.id),
            action=entry.action,
            resource_type=entry.resource_type,
            resource_id=entry.resource_id,
            changes=JSON(entry.changes),
            metadata=JSON(entry.metadata_),
            ip_address=entry.ip_address,
            user_agent=entry.user_agent,
            request_id=entry.request_id,
            timestamp=entry.timestamp,
            org_id=entry.org_id,
            user_id=entry.user_id,
        )

    @classmethod
    def from_published(cls, item: dict[str, Any]) -> AuditLog:
        """An entry as the audit feed carries it."""
        return cls(
            id=strawberry.ID(item["id"]),
            action=item["action"],
            resource_type=item["resource_type"],
            resource_id=item["resource_id"],
            changes=JSON(item["changes"]),
            metadata=JSON(item["metadata"]),
            ip_address=item["ip_address"],
            user_agent=item["user_agent"],
            request_id=item["request_id"],
            timestamp=datetime.fromisoformat(item["timestamp"]),
            org_id=item["org_id"],
            user_id=item["user_id"],
        )

    @query_field(
        description="Who acted; null for a change no user made (the command line)."
    )
    @batched(actors_of)
    async def actor(self, info: Info) -> User | None:
        return await one(actors_of, info.context, self)


@strawberry.type(description="A page of audit entries, newest first.")
class AuditLogConnection(Connection[AuditLog]):
    pass


@strawberry.input(description="Which audit entries to list; every condition must hold.")
class AuditLogFilter:
    action: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="An action (pipeline.created), or every action under a "
        "prefix (pipeline.*).",
    )
    resource_type: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="Only entries about this kind of resource, e.g. pipeline.",
    )
    resource_id: str | None = strawberry.field(
        default=strawberry.UNSET, description="Only entries about this resource."
    )
    user_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="Only entries of this user's actions."
    )
    from_: str | None = strawberry.field(
        default=strawberry.UNSET,
        name="from",
        description=f"Only entries from this time on. {_INSTANT}",
    )
    to: str | None = strawberry.field(
        default=strawberry.UNSET,
        description=f"Only entries up to this time. {_INSTANT}",
    )


def _filter_of(filter_input: AuditLogFilter | None) -> audit_logs.AuditLogFilter:
    conditions = given(filter_input) if filter_input else {}
    if "from_" in conditions:
        conditions["from"] = conditions.pop("from_")
    return audit_logs.audit_log_filter(
        conditions, shown_as=lambda field: ".".join(field_path(field))
    )


@strawberry.type
class AuditLogsQuery:
    @query_field(
        description="The organisation's audit trail, newest first; for owners "
        "and admins."
    )
    async def audit_logs(
        self,
        info: Info,
        first: First = 50,
        after: After = strawberry.UNSET,
        filter: Annotated[
            AuditLogFilter | None,
            strawberry.argument(description="Which entries to list."),
        ] = strawberry.UNSET,
    ) -> AuditLogConnection:
        ctx = info.context.request
        # Refused before the arguments are even read, as on the REST face.
        ctx.require(permission_of(audit_logs.list_audit_logs))
        filters = _filter_of(filter)
        page = await audit_logs.list_audit_logs(
            ctx, filters, cursor=after or None, limit=page_size(first)
        )
        return AuditLogConnection(
            edges=edges_of(page, AuditLog.from_row),
            page_info=page_info_of(page),
            count=lambda: audit_logs.count_audit_logs(ctx, filters),
        )


class EntriesDropped(DomainError):
    """An auditLogAdded subscriber fell behind and lost entries. An AuditLog
    cannot say so, and a trail with a silent gap would mislead, so the
    subscription ends; the client reads auditLogs and subscribes again."""

    code = "EVENTS_DROPPED"
    status = 409
    default_message = "This subscription fell behind and lost audit entries."


async def open_audit_log_added(
    context: GraphQLContext, filter_input: AuditLogFilter | None
) -> FeedStream[AuditLog]:
    """The stream of an auditLogAdded subscription, listening once it
    returns."""
    ctx = context.request
    ctx.require(permission_of(live.open_audit_stream))
    wants = await live.open_audit_stream(ctx, _filter_of(filter_input))

    def view(item: Message | Dropped) -> AuditLog:
        if isinstance(item, Dropped):
            raise EntriesDropped(
                f"This subscription fell behind and lost {item.count} audit "
                "entries; read them with auditLogs and subscribe again."
            )
        return AuditLog.from_published(item.data)

    return await FeedStream.open(
        ctx.services.live,
        Feed.AUDIT,
        ctx.authenticated().org_id,
        pipeline_id=None,
        wants=wants,
        view=view,
    )


@strawberry.type
class AuditLogsSubscription:
    @subscription_field(
        description="Audit entries as their changes are committed; for owners "
        "and admins."
    )
    async def audit_log_added(
        self,
        info: Info,
        filter: Annotated[
            AuditLogFilter | None,
            strawberry.argument(description="Which entries to receive."),
        ] = strawberry.UNSET,
    ) -> AsyncIterator[AuditLog]:
        return await open_audit_log_added(info.context, filter)
