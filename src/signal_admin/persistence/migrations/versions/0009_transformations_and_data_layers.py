"""Transformations and the organisation's data layer.

A transformation is a step document run on the payloads of one template's
integrations (or of every integration when `template_id` is null); it goes when
its template goes. A data layer is one document per organisation; no row means
the defaults.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "data_layers",
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("config", JSON_DOCUMENT, nullable=False),
        sa.Column("updated_by", sa.String(length=40), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_data_layers_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_data_layers")),
    )
    op.create_table(
        "transformations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("template_id", sa.String(length=40), nullable=True),
        sa.Column("config", JSON_DOCUMENT, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_transformations_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["integration_templates.id"],
            name=op.f("fk_transformations_template_id_integration_templates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transformations")),
        sa.UniqueConstraint(
            "org_id", "name", name=op.f("uq_transformations_org_id_name")
        ),
    )
    with op.batch_alter_table("transformations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_transformations_org_id_template_id",
            ["org_id", "template_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("transformations", schema=None) as batch_op:
        batch_op.drop_index("ix_transformations_org_id_template_id")
    op.drop_table("transformations")
    op.drop_table("data_layers")
