"""Integration templates and their immutable revisions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "integration_templates",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("vendor", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("catalog_vendor_key", sa.String(length=64), nullable=True),
        sa.Column("catalog_variant_key", sa.String(length=64), nullable=True),
        sa.Column(
            "secret_fields",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("latest_revision", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_integration_templates_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integration_templates")),
        sa.UniqueConstraint(
            "org_id", "name", name=op.f("uq_integration_templates_org_id_name")
        ),
    )
    with op.batch_alter_table("integration_templates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_integration_templates_org_id"), ["org_id"], unique=False
        )

    op.create_table(
        "integration_revisions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("template_id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.Column(
            "config",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("delivery_mode", sa.String(length=20), nullable=False),
        sa.Column("change_summary", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["integration_templates.id"],
            name=op.f("fk_integration_revisions_template_id_integration_templates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integration_revisions")),
        sa.UniqueConstraint(
            "template_id",
            "revision_number",
            name=op.f("uq_integration_revisions_template_id_revision_number"),
        ),
    )
    with op.batch_alter_table("integration_revisions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_integration_revisions_org_id"), ["org_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_integration_revisions_template_id"),
            ["template_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("integration_revisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_integration_revisions_template_id"))
        batch_op.drop_index(batch_op.f("ix_integration_revisions_org_id"))

    op.drop_table("integration_revisions")
    with op.batch_alter_table("integration_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_integration_templates_org_id"))

    op.drop_table("integration_templates")
