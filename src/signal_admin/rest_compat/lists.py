"""The list envelope: `{"data": [...], "next_cursor": …, "has_more": …}`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from signal_admin.persistence.pagination import Page

T = TypeVar("T")


def list_body(
    page: Page[T], item_body: Callable[[T], dict[str, Any]]
) -> dict[str, Any]:
    return {
        "data": [item_body(item) for item in page.items],
        "next_cursor": page.next_cursor,
        "has_more": page.has_more,
    }
