from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from signal_admin.persistence.models.base import Base, Versioned
from signal_admin.persistence.types import UTCDateTime

_NOT_DELETED = text("deleted_at IS NULL")
_OWNER = text("role = 'owner'")


class User(Versioned, Base):
    """A person in one organisation. Deleted users keep their row (`deleted_at`)
    so the audit trail still names them."""

    __tablename__ = "users"
    __table_args__ = (
        # Emails are stored trimmed and lower-cased, so a plain unique index
        # makes addresses unique across the service regardless of case. It
        # leaves deleted users out, so an address can be invited again.
        Index(
            "uq_users_email_not_deleted",
            "email",
            unique=True,
            postgresql_where=_NOT_DELETED,
            sqlite_where=_NOT_DELETED,
        ),
        # Exactly one owner per organisation: the rules of ownership transfer
        # keep it so, and the database refuses a second one whatever happens.
        Index(
            "uq_users_org_id_owner",
            "org_id",
            unique=True,
            postgresql_where=_OWNER,
            sqlite_where=_OWNER,
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    # SHA-256 of the open invitation's token; the token itself is never kept.
    invite_token_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    invite_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
