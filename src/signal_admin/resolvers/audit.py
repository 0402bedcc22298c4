"""Writing the audit trail: one entry per resource changed, in the same
transaction as the change."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from signal_admin.persistence.ids import new_id
from signal_admin.persistence.models import AuditEntry
from signal_admin.persistence.types import format_timestamp
from signal_admin.resolvers.context import RequestContext

MASK = "***"
# Where a write session's `info` lists the entries recorded in it.
RECORDED = "audit_entries"


def diff(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    secret_fields: Iterable[str] = (),
) -> dict[str, dict[str, Any]]:
    """Per changed field `{"old": …, "new": …}`, secret values as `"***"`."""
    secrets = set(secret_fields)
    changes: dict[str, dict[str, Any]] = {}
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if key in secrets:
            before = MASK if before is not None else None
            after = MASK if after is not None else None
        changes[key] = {"old": before, "new": after}
    return changes


def created(
    values: Mapping[str, Any], secret_fields: Iterable[str] = ()
) -> dict[str, Any]:
    return diff({}, values, secret_fields)


def record(
    session: AsyncSession,
    ctx: RequestContext,
    *,
    action: str,
    resource_type: str,
    resource_id: str | None,
    org_id: str | None = None,
    changes: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    actor_id: str | None = None,
    actor_email: str | None = None,
) -> AuditEntry:
    """Add an entry to `session`; it commits or rolls back with the change."""
    principal = ctx.principal
    entry = AuditEntry(
        id=new_id("log"),
        org_id=org_id or ctx.authenticated().org_id,
        action=action,
        user_id=actor_id or (principal.user_id if principal else None),
        user_email=actor_email or (principal.email if principal else None),
        resource_type=resource_type,
        resource_id=resource_id,
        changes=changes or {},
        metadata_=metadata or {},
        ip_address=ctx.meta.ip_address,
        user_agent=ctx.meta.user_agent,
        request_id=ctx.meta.request_id,
    )
    session.add(entry)
    session.info.setdefault(RECORDED, []).append(entry)
    return entry


def recorded(info: dict[str, Any]) -> list[AuditEntry]:
    """The entries a committed session's `info` says it recorded."""
    entries: list[AuditEntry] = info.get(RECORDED, [])
    return entries


def entry_body(entry: AuditEntry) -> dict[str, Any]:
    """An entry as the API shows it (`GET /v1/admin/audit-logs`)."""
    return {
        "id": entry.id,
        "action": entry.action,
        "user_id": entry.user_id,
        "user_email": entry.user_email,
        "resource_type": entry.resource_type,
        "resource_id": entry.resource_id,
        "changes": entry.changes,
        "metadata": entry.metadata_,
        "ip_address": entry.ip_address,
        "user_agent": entry.user_agent,
        "request_id": entry.request_id,
        "timestamp": format_timestamp(entry.timestamp),
    }


def published_entry(entry: AuditEntry) -> dict[str, Any]:
    """An entry as the audit feed carries it (`signal:audit:{org_id}`): as
    the API shows it, with its organisation."""
    return {"org_id": entry.org_id, **entry_body(entry)}
