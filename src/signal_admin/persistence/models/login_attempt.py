from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from signal_admin.persistence.models.base import Base
from signal_admin.persistence.types import UTCDateTime, utc_now


class LoginAttempt(Base):
    """Consecutive login failures for one normalised email, whether or not an
    account has it, so answers never reveal which emails exist."""

    __tablename__ = "login_attempts"

    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    failure_count: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
