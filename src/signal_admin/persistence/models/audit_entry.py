from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from signal_admin.persistence.models.base import Base
from signal_admin.persistence.types import JSONDocument, UTCDateTime, utc_now


class AuditEntry(Base):
    """One change on the record. Append-only and without foreign keys: users
    are never hard-deleted, so every entry keeps naming its actor."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_org_id_id", "org_id", "id"),
        Index("ix_audit_entries_org_id_resource", "org_id", "resource_id"),
        # The read side's filters (resolvers/audit_logs.py); actions are also
        # matched by prefix, which PostgreSQL's pattern operators serve from
        # this index whatever the database's collation.
        Index(
            "ix_audit_entries_org_id_action",
            "org_id",
            "action",
            "id",
            postgresql_ops={"action": "text_pattern_ops"},
        ),
        Index("ix_audit_entries_org_id_user_id", "org_id", "user_id", "id"),
        Index("ix_audit_entries_org_id_resource_type", "org_id", "resource_type", "id"),
        Index("ix_audit_entries_org_id_timestamp", "org_id", "timestamp"),
        # The retention purge looks for old entries of every organisation.
        Index("ix_audit_entries_timestamp", "timestamp"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(80))
    user_id: Mapped[str | None] = mapped_column(String(40))
    user_email: Mapped[str | None] = mapped_column(String(320))
    resource_type: Mapped[str] = mapped_column(String(60))
    resource_id: Mapped[str | None] = mapped_column(String(40))
    changes: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONDocument, default=dict
    )
    ip_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(500))
    request_id: Mapped[str | None] = mapped_column(String(64))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
