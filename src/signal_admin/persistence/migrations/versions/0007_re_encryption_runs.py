"""Re-encryption runs: rewriting stored ciphertexts under a new key.

One row per run, per organisation: its progress, who started it, the lease of
the process rewriting it (`worker`, `heartbeat_at`) and where its next batch
starts. A partial unique index lets at most one run per organisation be
running.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUNNING = sa.text("status = 'running'")


def upgrade() -> None:
    op.create_table(
        "re_encryption_runs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("unreadable", sa.Integer(), nullable=False),
        sa.Column("started_by", sa.String(length=40), nullable=True),
        sa.Column("worker", sa.String(length=64), nullable=True),
        sa.Column("store", sa.String(length=40), nullable=True),
        sa.Column("position", sa.String(length=40), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_re_encryption_runs")),
    )
    with op.batch_alter_table("re_encryption_runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_re_encryption_runs_org_id_id", ["org_id", "id"], unique=False
        )
        batch_op.create_index(
            "uq_re_encryption_runs_running_org_id",
            ["org_id"],
            unique=True,
            sqlite_where=RUNNING,
            postgresql_where=RUNNING,
        )


def downgrade() -> None:
    with op.batch_alter_table("re_encryption_runs", schema=None) as batch_op:
        batch_op.drop_index("uq_re_encryption_runs_running_org_id")
        batch_op.drop_index("ix_re_encryption_runs_org_id_id")
    op.drop_table("re_encryption_runs")
