"""AES-256-GCM for secrets at rest.

A stored value is base64(nonce[12] + ciphertext + tag) with the owning row's id
as associated data, so a ciphertext copied to another row does not decrypt.
Reads try the current key, then the previous one during a rotation.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class DecryptionError(Exception):
    """No configured key opens this ciphertext."""


@dataclass(frozen=True, slots=True)
class Sealed:
    ciphertext: str
    key_id: str


class Cipher:
    def __init__(self, key_hex: str, previous_key_hex: str | None = None) -> None:
        self._current = _Key(key_hex)
        self._previous = _Key(previous_key_hex) if previous_key_hex else None

    @property
    def current_key_id(self) -> str:
        return self._current.key_id

    @property
    def has_previous_key(self) -> bool:
        return self._previous is not None

    @property
    def previous_key_id(self) -> str | None:
        return self._previous.key_id if self._previous is not None else None

    def encrypt(self, plaintext: str, row_id: str) -> Sealed:
        return self._current.encrypt(plaintext.encode(), row_id)

    def reseal(self, ciphertext: str, row_id: str) -> Sealed:
        """The value of `ciphertext`, sealed again under the current key: how a
        rotation moves a stored value off the previous key."""
        return self.encrypt(self.decrypt(ciphertext, row_id), row_id)

    def decrypt(self, ciphertext: str, row_id: str) -> str:
        for key in (self._current, self._previous):
            if key is None:
                continue
            try:
                return key.decrypt(ciphertext, row_id).decode()
            except (InvalidTag, ValueError):
                continue
        raise DecryptionError(f"no configured key decrypts the secret of {row_id}")


class _Key:
    def __init__(self, key_hex: str) -> None:
        raw = bytes.fromhex(key_hex)
        self._aead = AESGCM(raw)
        # A short fingerprint that tells which key sealed a value, without
        # revealing anything about the key.
        self.key_id = hashlib.sha256(b"signal-admin key id" + raw).hexdigest()[:16]

    def encrypt(self, plaintext: bytes, row_id: str) -> Sealed:
        nonce = os.urandom(NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, plaintext, row_id.encode())
        return Sealed(base64.b64encode(sealed).decode(), self.key_id)

    def decrypt(self, ciphertext: str, row_id: str) -> bytes:
        raw = base64.b64decode(ciphertext, validate=True)
        nonce, body = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
        return self._aead.decrypt(nonce, body, row_id.encode())
