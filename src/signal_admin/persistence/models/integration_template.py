from __future__ import annotations

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from signal_admin.persistence.models.base import Base, Versioned
from signal_admin.persistence.types import JSONDocument


class IntegrationTemplate(Versioned, Base):
    """A vendor configuration an organisation keeps, with immutable revisions.
    `latest_revision` is the highest revision number written so far."""

    __tablename__ = "integration_templates"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    vendor: Mapped[str] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    catalog_vendor_key: Mapped[str | None] = mapped_column(String(64))
    catalog_variant_key: Mapped[str | None] = mapped_column(String(64))
    secret_fields: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    latest_revision: Mapped[int] = mapped_column(default=0)
