"""AES-256-GCM sealing of secrets at rest."""

from __future__ import annotations

import base64

import pytest

from signal_admin.security.crypto import NONCE_BYTES, Cipher, DecryptionError

KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
OTHER_KEY = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"


class TestCipher:
    def test_decrypts_what_it_encrypted(self) -> None:
        cipher = Cipher(KEY)

        sealed = cipher.encrypt("sk_secret", "sec_1")

        assert cipher.decrypt(sealed.ciphertext, "sec_1") == "sk_secret"

    def test_ciphertext_does_not_hold_the_plaintext(self) -> None:
        sealed = Cipher(KEY).encrypt("sk_plaintext_value", "sec_1")

        raw = base64.b64decode(sealed.ciphertext)
        assert b"sk_plaintext_value" not in raw
        assert "sk_plaintext_value" not in sealed.ciphertext

    def test_uses_a_fresh_nonce_for_every_value(self) -> None:
        cipher = Cipher(KEY)

        first = base64.b64decode(cipher.encrypt("same", "sec_1").ciphertext)
        second = base64.b64decode(cipher.encrypt("same", "sec_1").ciphertext)

        assert first[:NONCE_BYTES] != second[:NONCE_BYTES]
        assert first != second

    def test_ciphertext_moved_to_another_row_does_not_decrypt(self) -> None:
        cipher = Cipher(KEY)
        sealed = cipher.encrypt("sk_secret", "sec_1")

        with pytest.raises(DecryptionError):
            cipher.decrypt(sealed.ciphertext, "sec_2")

    def test_tampered_ciphertext_does_not_decrypt(self) -> None:
        cipher = Cipher(KEY)
        raw = bytearray(base64.b64decode(cipher.encrypt("sk_secret", "s").ciphertext))
        raw[-1] ^= 1

        with pytest.raises(DecryptionError):
            cipher.decrypt(base64.b64encode(bytes(raw)).decode(), "s")

    def test_value_of_an_unknown_key_does_not_decrypt(self) -> None:
        sealed = Cipher(OTHER_KEY).encrypt("sk_secret", "sec_1")

        with pytest.raises(DecryptionError):
            Cipher(KEY).decrypt(sealed.ciphertext, "sec_1")

    def test_reads_values_of_the_previous_key_during_rotation(self) -> None:
        sealed = Cipher(OTHER_KEY).encrypt("sk_secret", "sec_1")

        rotated = Cipher(KEY, previous_key_hex=OTHER_KEY)

        assert rotated.decrypt(sealed.ciphertext, "sec_1") == "sk_secret"

    def test_writes_with_the_current_key_during_rotation(self) -> None:
        rotated = Cipher(KEY, previous_key_hex=OTHER_KEY)

        sealed = rotated.encrypt("sk_secret", "sec_1")

        assert sealed.key_id == Cipher(KEY).current_key_id
        assert sealed.key_id != Cipher(OTHER_KEY).current_key_id

    def test_key_id_reveals_nothing_of_the_key(self) -> None:
        key_id = Cipher(KEY).current_key_id

        assert len(key_id) == 16
        assert key_id not in KEY

    def test_value_that_is_not_base64_does_not_decrypt(self) -> None:
        with pytest.raises(DecryptionError):
            Cipher(KEY).decrypt("not base64!", "sec_1")
