from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from signal_admin.persistence.models.base import Base
from signal_admin.persistence.types import JSONDocument, UTCDateTime, utc_now


class IntegrationRevision(Base):
    """One immutable version of a template's config. Secret values are not in
    `config`: each secret field holds `{"$secret": "<secret id>"}`, a row of
    `secrets` this revision owns."""

    __tablename__ = "integration_revisions"
    __table_args__ = (UniqueConstraint("template_id", "revision_number"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    template_id: Mapped[str] = mapped_column(
        ForeignKey("integration_templates.id", ondelete="CASCADE"), index=True
    )
    org_id: Mapped[str] = mapped_column(String(40), index=True)
    revision_number: Mapped[int] = mapped_column()
    config: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    delivery_mode: Mapped[str] = mapped_column(String(20))
    change_summary: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
