"""Cursors and page sizes of keyset pagination."""

from __future__ import annotations

import base64
import json

import pytest

from signal_admin.errors import InvalidCursor, ValidationFailed
from signal_admin.persistence.pagination import (
    check_page_size,
    decode_cursor,
    encode_cursor,
)


class TestEncodeCursor:
    def test_is_url_safe_base64_of_compact_json_without_padding(self) -> None:
        cursor = encode_cursor({"id": "pip_01J9"})

        assert cursor == "eyJpZCI6InBpcF8wMUo5In0"
        assert "=" not in cursor

    def test_round_trips_through_decode(self) -> None:
        key = {"id": "pip_01J9Z3ABCDEFGHJKMNPQRSTVWX"}

        decoded = decode_cursor(encode_cursor(key))

        assert decoded == key

    def test_uses_only_url_safe_characters(self) -> None:
        cursor = encode_cursor({"id": "??>>~~"})

        assert set(cursor) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )


class TestDecodeCursor:
    @pytest.mark.parametrize(
        "cursor",
        [
            "",
            "%%%",
            "not a cursor",
            base64.urlsafe_b64encode(b"not json").decode(),
            base64.urlsafe_b64encode(b'"pip_01"').decode(),
            base64.urlsafe_b64encode(b'{"key": "pip_01"}').decode(),
            base64.urlsafe_b64encode(b'{"id": 7}').decode(),
            base64.urlsafe_b64encode(b"\xff\xfe").decode(),
            "ñ",
        ],
    )
    def test_refuses_what_this_service_did_not_issue(self, cursor: str) -> None:
        with pytest.raises(InvalidCursor):
            decode_cursor(cursor)

    def test_accepts_padding_a_client_added(self) -> None:
        padded = base64.urlsafe_b64encode(json.dumps({"id": "a"}).encode()).decode()

        assert decode_cursor(padded) == {"id": "a"}


class TestCheckPageSize:
    @pytest.mark.parametrize("limit", [1, 50, 100])
    def test_accepts_one_to_a_hundred(self, limit: int) -> None:
        assert check_page_size(limit) == limit

    @pytest.mark.parametrize("limit", [-1, 0, 101])
    def test_refuses_sizes_outside_the_range(self, limit: int) -> None:
        with pytest.raises(ValidationFailed) as refused:
            check_page_size(limit)

        assert refused.value.details[0].field == "limit"
