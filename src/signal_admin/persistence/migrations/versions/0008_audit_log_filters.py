"""Indexes for the audit log's filters.

An organisation's log grows with every change, so each filter of
`GET /v1/admin/audit-logs` that can pick a few entries out of many has an
index starting with the organisation: by action (kept in byte order on
PostgreSQL, so that a prefix such as `pipeline.*` is a range of it whatever
the database's collation), by actor, by resource type and by time. Entries by
resource id already had one. The retention purge, which looks for old entries
of every organisation at once, has an index by time alone.

Building an index holds back writes to the audit table, and so every change,
until it is done; on a large log, migrate when the service is quiet.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "audit_entries"


def upgrade() -> None:
    op.create_index(
        "ix_audit_entries_org_id_action",
        TABLE,
        ["org_id", "action", "id"],
        postgresql_ops={"action": "text_pattern_ops"},
    )
    op.create_index(
        "ix_audit_entries_org_id_user_id", TABLE, ["org_id", "user_id", "id"]
    )
    op.create_index(
        "ix_audit_entries_org_id_resource_type",
        TABLE,
        ["org_id", "resource_type", "id"],
    )
    op.create_index("ix_audit_entries_org_id_timestamp", TABLE, ["org_id", "timestamp"])
    op.create_index("ix_audit_entries_timestamp", TABLE, ["timestamp"])


def downgrade() -> None:
    op.drop_index("ix_audit_entries_timestamp", TABLE)
    op.drop_index("ix_audit_entries_org_id_timestamp", TABLE)
    op.drop_index("ix_audit_entries_org_id_resource_type", TABLE)
    op.drop_index("ix_audit_entries_org_id_user_id", TABLE)
    op.drop_index("ix_audit_entries_org_id_action", TABLE)
