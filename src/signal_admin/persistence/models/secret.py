from __future__ import annotations

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from signal_admin.persistence.models.base import Base, Timestamped


class Secret(Base, Timestamped):
    """One encrypted value: base64 of nonce + AES-256-GCM ciphertext and tag,
    with this row's id as associated data.

    Secrets live apart from the rows that use them, so re-encryption under a
    new key rewrites ciphertexts without touching an immutable revision.
    `owner_id` names the one revision or pipeline a secret belongs to; reads
    and deletes go through it, never through an id alone.
    """

    __tablename__ = "secrets"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(40), index=True)
    owner_id: Mapped[str | None] = mapped_column(String(40), index=True)
    ciphertext: Mapped[str] = mapped_column(Text)
    key_id: Mapped[str] = mapped_column(String(16), index=True)
