"""Pipeline integrations: templates attached to pipelines at a pinned revision.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pipeline_integrations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("pipeline_id", sa.String(length=40), nullable=False),
        sa.Column("template_id", sa.String(length=40), nullable=False),
        sa.Column("revision_id", sa.String(length=40), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column(
            "consent_categories",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipelines.id"],
            name=op.f("fk_pipeline_integrations_pipeline_id_pipelines"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["revision_id"],
            ["integration_revisions.id"],
            name=op.f("fk_pipeline_integrations_revision_id_integration_revisions"),
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["integration_templates.id"],
            name=op.f("fk_pipeline_integrations_template_id_integration_templates"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_integrations")),
        sa.UniqueConstraint(
            "pipeline_id",
            "template_id",
            name=op.f("uq_pipeline_integrations_pipeline_id_template_id"),
        ),
    )
    with op.batch_alter_table("pipeline_integrations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pipeline_integrations_org_id"), ["org_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_pipeline_integrations_pipeline_id"),
            ["pipeline_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_pipeline_integrations_template_id"),
            ["template_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("pipeline_integrations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pipeline_integrations_template_id"))
        batch_op.drop_index(batch_op.f("ix_pipeline_integrations_pipeline_id"))
        batch_op.drop_index(batch_op.f("ix_pipeline_integrations_org_id"))

    op.drop_table("pipeline_integrations")
