"""Prefixed, time-ordered identifiers (`pip_01J9Z3…`)."""

from __future__ import annotations

import re
from functools import cache

from ulid import ULID

from signal_admin.errors import NotFound


def new_id(prefix: str) -> str:
    return f"{prefix}_{ULID()}"


def is_id(value: str, prefix: str) -> bool:
    """Whether `value` has the shape of an id this service issues with
    `prefix`: the prefix, `_` and a ULID in Crockford base32 capitals."""
    return _id_pattern(prefix).fullmatch(value) is not None


def check_id(value: str, prefix: str, kind: str) -> None:
    """Refuse an id this service cannot have issued with 404, without asking
    the database, which may refuse such text outright (a NUL character)."""
    if not is_id(value, prefix):
        raise NotFound.of(kind, value)


@cache
def _id_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"{re.escape(prefix)}_[0-9A-HJKMNP-TV-Z]{{26}}")
