"""Column types shared by every model."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

JSONDocument = JSON().with_variant(JSONB(), "postgresql")


def utc_now() -> datetime:
    """The current instant in UTC, at the millisecond precision the API shows."""
    return truncate_to_ms(datetime.now(UTC))


def truncate_to_ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC timestamp with milliseconds, on every database.

    SQLite keeps no time zone, so values are stored as naive UTC and made aware
    again when read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        value = truncate_to_ms(value.astimezone(UTC))
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def result_processor(
        self, dialect: Dialect, coltype: object
    ) -> Callable[[Any], datetime | None] | None:
        if dialect.name == "postgresql" and dialect.driver == "asyncpg":
            # asyncpg reads a timestamptz as an aware datetime in UTC already;
            # skipping the conversion saves a call per value of every row.
            return None
        return super().result_processor(dialect, coltype)

    def process_result_value(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def format_timestamp(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with milliseconds and a `Z`: `2026-02-25T14:30:00.123Z`."""
    if moment is None:
        return None
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    # isoformat is cheaper than strftime, and truncates to the millisecond as
    # the API shows it; "+00:00" becomes "Z".
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"
