from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from signal_admin.persistence.models.base import Base
from signal_admin.persistence.types import UTCDateTime, utc_now

RUNNING = "running"


class ReEncryptionRun(Base):
    """One pass that rewrites an organisation's stored ciphertexts under the
    current encryption key, in batches.

    The row is also the run's lease: `worker` names the process rewriting it
    and `heartbeat_at` moves on with every batch, so a run whose process
    stopped can be told apart and taken over. `store` and `position` are
    where the next batch starts (a store of ciphertexts and the last id done
    in it), so a run taken over continues rather than starts again. At most
    one run per organisation is running at a time.
    """

    __tablename__ = "re_encryption_runs"
    __table_args__ = (
        Index("ix_re_encryption_runs_org_id_id", "org_id", "id"),
        Index(
            "uq_re_encryption_runs_running_org_id",
            "org_id",
            unique=True,
            sqlite_where=text(f"status = '{RUNNING}'"),
            postgresql_where=text(f"status = '{RUNNING}'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default=RUNNING)
    key_id: Mapped[str] = mapped_column(String(16))
    total: Mapped[int] = mapped_column(default=0)
    done: Mapped[int] = mapped_column(default=0)
    unreadable: Mapped[int] = mapped_column(default=0)
    started_by: Mapped[str | None] = mapped_column(String(40))
    worker: Mapped[str | None] = mapped_column(String(64))
    store: Mapped[str | None] = mapped_column(String(40))
    position: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
