from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from signal_admin.persistence.models.base import Base, Versioned
from signal_admin.persistence.types import JSONDocument, UTCDateTime


class Pipeline(Versioned, Base):
    """One collection endpoint: a website, an app or a server."""

    __tablename__ = "pipelines"
    __table_args__ = (
        UniqueConstraint("org_id", "name"),
        UniqueConstraint("org_id", "slug"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(20))
    pipeline_key: Mapped[str] = mapped_column(String(64), unique=True)
    key_secret_id: Mapped[str] = mapped_column(ForeignKey("secrets.id"))
    pipeline_key_secret_prefix: Mapped[str] = mapped_column(String(16))
    previous_pipeline_key: Mapped[str | None] = mapped_column(String(64), index=True)
    previous_key_secret_id: Mapped[str | None] = mapped_column(ForeignKey("secrets.id"))
    previous_key_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    domain_allowlist: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    labels: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    rate_limit_rps: Mapped[int] = mapped_column(default=1000)
    challenge_token_required: Mapped[bool] = mapped_column(Boolean, default=False)
    parameters: Mapped[dict[str, str]] = mapped_column(JSONDocument, default=dict)
    config: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    js_builder_config: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    identity_config: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
