from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from signal_admin.persistence.models.base import Base, Versioned
from signal_admin.persistence.types import JSONDocument


class DataLayer(Versioned, Base):
    """An organisation's data-layer document, applied to every event before
    its integrations. No row means the organisation never set one: the
    defaults apply."""

    __tablename__ = "data_layers"

    org_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    config: Mapped[dict[str, object]] = mapped_column(JSONDocument)
    updated_by: Mapped[str | None] = mapped_column(String(40))
