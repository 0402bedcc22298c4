"""Keyset pagination shared by REST list envelopes and GraphQL connections.

A cursor is the URL-safe base64 (no padding) of compact JSON naming the last
item's sort key, e.g. `{"id":"pip_01J9…"}`. Pages are fetched with `WHERE id > :after`
and never with OFFSET, so rows inserted while a client pages are neither
skipped nor repeated.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from signal_admin.errors import FieldProblem, InvalidCursor, ValidationFailed
from signal_admin.persistence.text import is_storable

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    has_more: bool
    next_cursor: str | None


def encode_cursor(key: dict[str, Any]) -> str:
    raw = json.dumps(key, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError) as error:
        raise InvalidCursor() from error
    if not isinstance(key, dict) or not isinstance(key.get("id"), str):
        raise InvalidCursor()
    if not is_storable(key["id"]):
        # No row holds such an id, and the database would refuse to compare it.
        raise InvalidCursor()
    return key


def check_page_size(limit: int, field: str = "limit") -> int:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValidationFailed(
            f"{field} must be between 1 and {MAX_PAGE_SIZE}.",
            [FieldProblem(field, "OUT_OF_RANGE", f"between 1 and {MAX_PAGE_SIZE}")],
        )
    return limit


async def fetch_page(
    session: AsyncSession,
    statement: Select[*tuple[Any, ...]],
    id_column: InstrumentedAttribute[str],
    *,
    cursor: str | None,
    limit: int,
    descending: bool = False,
) -> Page[Any]:
    """One page of `statement`'s rows in id order, starting after `cursor`.
    A statement of one entity pages that entity; one of several pages rows
    whose first entity carries the id."""
    check_page_size(limit)
    if cursor is not None:
        after = decode_cursor(cursor)["id"]
        statement = statement.where(
            id_column < after if descending else id_column > after
        )
    order = id_column.desc() if descending else id_column.asc()
    result = await session.execute(statement.order_by(order).limit(limit + 1))
    single = len(statement.column_descriptions) == 1
    rows: Sequence[Any] = result.scalars().all() if single else result.all()
    has_more = len(rows) > limit
    items = rows[:limit]
    next_cursor = None
    if has_more:
        last = items[-1] if single else items[-1][0]
        next_cursor = encode_cursor({"id": last.id})
    return Page(items=items, has_more=has_more, next_cursor=next_cursor)
