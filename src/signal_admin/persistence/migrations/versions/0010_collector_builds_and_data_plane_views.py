"""Collector builds, and the views the data plane reads its configuration from.

A build is one immutable script of a pipeline; it goes when its pipeline goes.
The `data_plane_*` views are the data plane's whole read model: it is granted
SELECT on them and on nothing else, so the tables behind them can change as
long as the views keep their columns (docs/data-plane.md).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

# Each view by name, with the SELECT that defines it. The columns are a
# contract with the data plane: add to them, never rename or drop one.
DATA_PLANE_VIEWS = {
    "data_plane_pipelines": """
        SELECT id, org_id, name, type, pipeline_key, key_secret_id,
               previous_pipeline_key, previous_key_secret_id,
               previous_key_expires_at, domain_allowlist, rate_limit_rps,
               challenge_token_required, parameters, config, identity_config,
               enabled, version, updated_at
        FROM pipelines
    """,
    "data_plane_integrations": """
        SELECT pi.id, pi.org_id, pi.pipeline_id, pi.template_id,
               t.name AS template_name, t.vendor, t.secret_fields,
               t.version AS template_version,
               r.id AS revision_id, r.revision_number, r.delivery_mode,
               r.config, pi.consent_categories, pi.version, pi.updated_at
        FROM pipeline_integrations AS pi
        JOIN integration_templates AS t ON t.id = pi.template_id
        JOIN integration_revisions AS r ON r.id = pi.revision_id
        WHERE pi.enabled
    """,
    "data_plane_transformations": """
        SELECT id, org_id, template_id, name, config, version, updated_at
        FROM transformations
        WHERE enabled
    """,
    "data_plane_data_layers": """
        SELECT org_id, config, version, updated_at
        FROM data_layers
    """,
    "data_plane_secrets": """
        SELECT id, org_id, owner_id, ciphertext, key_id
        FROM secrets
    """,
}


def upgrade() -> None:
    op.create_table(
        "collector_builds",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("pipeline_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("pipeline_key", sa.String(length=64), nullable=False),
        sa.Column("script_filename", sa.String(length=80), nullable=False),
        sa.Column("global_variable", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("gzip_size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("integrity", sa.String(length=80), nullable=False),
        sa.Column("vendors", JSON_DOCUMENT, nullable=False),
        sa.Column("script", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipelines.id"],
            name=op.f("fk_collector_builds_pipeline_id_pipelines"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collector_builds")),
        sa.UniqueConstraint(
            "pipeline_id",
            "version",
            name=op.f("uq_collector_builds_pipeline_id_version"),
        ),
    )
    with op.batch_alter_table("collector_builds", schema=None) as batch_op:
        # The public route's lookup: a key's newest build.
        batch_op.create_index(
            "ix_collector_builds_pipeline_key_version",
            ["pipeline_key", "version"],
            unique=False,
        )
    for name, definition in DATA_PLANE_VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {definition}")


def downgrade() -> None:
    for name in reversed(DATA_PLANE_VIEWS):
        op.execute(f"DROP VIEW {name}")
    with op.batch_alter_table("collector_builds", schema=None) as batch_op:
        batch_op.drop_index("ix_collector_builds_pipeline_key_version")
    op.drop_table("collector_builds")
