"""Argon2id password hashing, run in a worker thread so the event loop never
waits on it."""

from __future__ import annotations

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256

_hasher = PasswordHasher()
# Verified against when the email is unknown, so both answers take as long.
_DUMMY_HASH = _hasher.hash("signal-admin dummy password for unknown emails")


async def hash_password(password: str) -> str:
    return await anyio.to_thread.run_sync(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; a missing hash is checked against a dummy
    one so that the time taken does not reveal whether an account exists."""
    return await anyio.to_thread.run_sync(
        _verify, password_hash or _DUMMY_HASH, password, password_hash is not None
    )


def _verify(password_hash: str, password: str, real: bool) -> bool:
    try:
        _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    return real
