from __future__ import annotations

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from signal_admin.persistence.models.base import Base, Versioned
from signal_admin.persistence.types import JSONDocument


class Transformation(Versioned, Base):
    """A step document run on the vendor payload of every integration of one
    template (`template_id`), or of every integration of the organisation
    when `template_id` is null. Deleting the template deletes its own."""

    __tablename__ = "transformations"
    __table_args__ = (
        UniqueConstraint("org_id", "name"),
        Index("ix_transformations_org_id_template_id", "org_id", "template_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    template_id: Mapped[str | None] = mapped_column(
        ForeignKey("integration_templates.id", ondelete="CASCADE")
    )
    config: Mapped[dict[str, object]] = mapped_column(JSONDocument)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str | None] = mapped_column(String(40))
