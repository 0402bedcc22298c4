"""The audit trail is append-only.

On PostgreSQL one statement trigger on `audit_entries` refuses every UPDATE
and TRUNCATE, and every DELETE unless the transaction has set the purge marker
(`SET LOCAL signal_admin.audit_purge = 'on'`), which only the retention purge
sets. The marker is local to its transaction: it ends with the purge's commit
or rollback and never carries over to the next user of a pooled connection.

SQLite has no setting of a transaction that a trigger could read, so there a
trigger refuses UPDATE only. DELETE stays the purge's alone because the service
has no other statement that deletes entries.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same name as `persistence.audit_retention.PURGE_MARKER`; spelled out so
# that this migration keeps doing what it did whatever the code becomes.
PURGE_MARKER = "signal_admin.audit_purge"

POSTGRESQL_GUARD = f"""
CREATE FUNCTION audit_entries_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
        AND current_setting('{PURGE_MARKER}', true) = 'on'
    THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit_entries is append-only: % refused', TG_OP
        USING HINT = 'Only the retention purge removes entries.';
END;
$$
"""
POSTGRESQL_TRIGGER = """
CREATE TRIGGER audit_entries_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_append_only()
"""
SQLITE_TRIGGER = """
CREATE TRIGGER audit_entries_append_only BEFORE UPDATE ON audit_entries
BEGIN
    SELECT RAISE(ABORT, 'audit_entries is append-only: UPDATE refused');
END
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRESQL_GUARD)
        op.execute(POSTGRESQL_TRIGGER)
    else:
        op.execute(SQLITE_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_entries_append_only ON audit_entries")
        op.execute("DROP FUNCTION IF EXISTS audit_entries_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_entries_append_only")
