"""Filters on JSON columns that read the same on PostgreSQL and SQLite."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, exists, func, select, text, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import InstrumentedAttribute


def array_contains(
    column: InstrumentedAttribute[Any], value: str, dialect: str
) -> ColumnElement[bool]:
    """True where the JSON string array in `column` holds `value`."""
    if dialect == "postgresql":
        return type_coerce(column, JSONB).contains([value])
    elements = func.json_each(column).table_valued("value")
    return exists(
        select(text("1")).select_from(elements).where(elements.c.value == value)
    )


def name_contains(
    column: InstrumentedAttribute[str], fragment: str
) -> ColumnElement[bool]:
    """Case-insensitive substring match, with `%` and `_` taken literally."""
    escaped = (
        fragment.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    )
    return func.lower(column).like(f"%{escaped}%", escape="\\")
