"""Users: an email is unique among users not deleted, and an organisation has
exactly one owner.

The unique constraint on `users.email` becomes a unique index that leaves
deleted users out, so a removed person's address can be invited again; a second
partial unique index allows one owner per organisation.

SQLite cannot drop a constraint in place, so there the table is rebuilt. With
foreign keys enforced, dropping the old table would cascade to the sessions
and refresh tokens of every user; they are copied aside and put back, so the
upgrade signs nobody out.

Downgrading fails while a deleted user and a live one share an email.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op
from alembic.operations import BatchOperations

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOT_DELETED = sa.text("deleted_at IS NULL")
OWNER = sa.text("role = 'owner'")
# Tables whose rows a rebuild of `users` would delete through ON DELETE
# CASCADE, parents first.
DEPENDENT_TABLES = ("auth_sessions", "refresh_tokens")


def upgrade() -> None:
    with _users_rebuilt() as batch_op:
        batch_op.drop_constraint("uq_users_email", type_="unique")
        batch_op.create_index(
            "uq_users_email_not_deleted",
            ["email"],
            unique=True,
            postgresql_where=NOT_DELETED,
            sqlite_where=NOT_DELETED,
        )
        batch_op.create_index(
            "uq_users_org_id_owner",
            ["org_id"],
            unique=True,
            postgresql_where=OWNER,
            sqlite_where=OWNER,
        )


def downgrade() -> None:
    with _users_rebuilt() as batch_op:
        batch_op.drop_index("uq_users_org_id_owner")
        batch_op.drop_index("uq_users_email_not_deleted")
        batch_op.create_unique_constraint("uq_users_email", ["email"])


@contextmanager
def _users_rebuilt() -> Iterator[BatchOperations]:
    """A batch of changes to `users`, keeping the rows of tables that refer
    to it when SQLite rebuilds the table."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        for table in DEPENDENT_TABLES:
            op.execute(f"CREATE TEMP TABLE kept_{table} AS SELECT * FROM {table}")
    with op.batch_alter_table("users", schema=None) as batch_op:
        yield batch_op
    if sqlite:
        for table in DEPENDENT_TABLES:
            op.execute(f"INSERT OR IGNORE INTO {table} SELECT * FROM kept_{table}")
            op.execute(f"DROP TABLE kept_{table}")
