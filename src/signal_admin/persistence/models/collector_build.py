from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from signal_admin.persistence.models.base import Base
from signal_admin.persistence.types import JSONDocument, UTCDateTime, utc_now


class CollectorBuild(Base):
    """One built collector script of a pipeline, immutable once written.

    `version` counts a pipeline's builds from 1. The script is kept whole, so
    the bytes a site loads are the ones `sha256` and `integrity` were taken of,
    whatever the pipeline's settings became since. `pipeline_key` is the key
    written into it: after a rotation, older builds still carry the old key.
    """

    __tablename__ = "collector_builds"
    __table_args__ = (
        UniqueConstraint("pipeline_id", "version"),
        Index("ix_collector_builds_pipeline_key_version", "pipeline_key", "version"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(40))
    pipeline_id: Mapped[str] = mapped_column(
        ForeignKey("pipelines.id", ondelete="CASCADE")
    )
    version: Mapped[int] = mapped_column()
    pipeline_key: Mapped[str] = mapped_column(String(64))
    script_filename: Mapped[str] = mapped_column(String(80))
    global_variable: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column()
    gzip_size_bytes: Mapped[int] = mapped_column()
    sha256: Mapped[str] = mapped_column(String(64))
    integrity: Mapped[str] = mapped_column(String(80))
    vendors: Mapped[list[str]] = mapped_column(JSONDocument)
    script: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
