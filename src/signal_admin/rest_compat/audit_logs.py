"""Audit log routes: the organisation's audit trail, read-only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from signal_admin.resolvers import audit, audit_logs
from signal_admin.rest_compat import API_PREFIX
from signal_admin.rest_compat.dependencies import (
    DEFAULT_LIMIT,
    Context,
    Cursor,
    Limit,
    permitted,
)
from signal_admin.rest_compat.lists import list_response
from signal_admin.rest_compat.schemas import AuditLogList

router = APIRouter(prefix=f"{API_PREFIX}/audit-logs", tags=["Audit logs"])

_INSTANT = (
    "ISO 8601 date or time, inclusive; UTC when it names no zone; a date alone "
    "covers its whole day."
)


@router.get(
    "",
    response_model=AuditLogList,
    dependencies=[permitted(audit_logs.list_audit_logs)],
)
async def list_audit_logs(
    ctx: Context,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
    action: Annotated[
        str | None,
        Query(description="An action (pipeline.created), or a prefix (pipeline.*)."),
    ] = None,
    resource_type: Annotated[
        str | None, Query(description="Only entries about this kind of resource.")
    ] = None,
    resource_id: Annotated[
        str | None, Query(description="Only entries about this resource.")
    ] = None,
    user_id: Annotated[
        str | None, Query(description="Only entries of this user's actions.")
    ] = None,
    from_: Annotated[
        str | None, Query(alias="from", description=f"From this time. {_INSTANT}")
    ] = None,
    to: Annotated[str | None, Query(description=f"Up to this time. {_INSTANT}")] = None,
) -> JSONResponse:
    """List the organisation's audit entries, newest first."""
    filters = audit_logs.audit_log_filter(
        {
            "action": action,
            "resource_type": resource_type,
            "resource_id": resource_id,
            "user_id": user_id,
            "from": from_,
            "to": to,
        }
    )
    page = await audit_logs.list_audit_logs(ctx, filters, cursor=cursor, limit=limit)
    return list_response(page, audit.entry_body)
