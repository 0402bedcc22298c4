from __future__ import annotations

from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from signal_admin.persistence.models.base import Base, Versioned
from signal_admin.persistence.types import JSONDocument


class PipelineIntegration(Versioned, Base):
    """A template attached to a pipeline, pinned to one of its revisions. A new
    revision never moves a pin: only an explicit change or a rollout does."""

    __tablename__ = "pipeline_integrations"
    __table_args__ = (UniqueConstraint("pipeline_id", "template_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(40), index=True)
    pipeline_id: Mapped[str] = mapped_column(
        ForeignKey("pipelines.id", ondelete="CASCADE"), index=True
    )
    template_id: Mapped[str] = mapped_column(
        ForeignKey("integration_templates.id"), index=True
    )
    revision_id: Mapped[str] = mapped_column(ForeignKey("integration_revisions.id"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    consent_categories: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
