"""Dotted paths into JSON-like documents: `context.page.url`, `items[0].sku`.

Mappings, data-layer rules and transformation targets all name places in an
event or a payload this way. Reading a path that is not there gives `MISSING`
(distinct from a JSON null that is there); writing creates the objects and lists
on the way; removing a path that is not there does nothing.

    path = parse_path("params.items[0].item_id")   # ("params", "items", 0, "item_id")
    set_path(payload, path, "SKU-1")
    get_path(payload, path)                         # "SKU-1"
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Final

Segment = str | int
Path = tuple[Segment, ...]

# A name is a JSON key as people write them in paths; an index is [digits].
_STEP = re.compile(r"([A-Za-z_$][\w$-]*)((?:\[\d{1,6}\])*)")
_INDEX = re.compile(r"\[(\d+)\]")
MAX_INDEX: Final = 999
MAX_SEGMENTS: Final = 32


class _Missing:
    """The value of a path that leads nowhere."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()


class PathError(ValueError):
    """A path that cannot be parsed, or a write that the document's shape refuses."""


@lru_cache(maxsize=4096)
def parse_path(text: str) -> Path:
    """The segments of `text`; raises `PathError` saying what is wrong."""
    if not isinstance(text, str) or not text:
        raise PathError("A path is a non-empty text such as properties.revenue.")
    segments: list[Segment] = []
    for step in text.split("."):
        match = _STEP.fullmatch(step)
        if match is None:
            raise PathError(
                f"{text!r} is not a path: each step is a name, optionally "
                "followed by [index], e.g. items[0].sku."
            )
        segments.append(match.group(1))
        for index in _INDEX.findall(match.group(2)):
            if int(index) > MAX_INDEX:
                raise PathError(f"{text!r} uses an index above {MAX_INDEX}.")
            segments.append(int(index))
    if len(segments) > MAX_SEGMENTS:
        raise PathError(f"{text!r} is deeper than {MAX_SEGMENTS} steps.")
    return tuple(segments)


def is_path(text: Any) -> bool:
    try:
        parse_path(text)
    except (PathError, TypeError):
        return False
    return True


def get_path(document: Any, path: Path) -> Any:
    """The value at `path`, or `MISSING` when some step is not there."""
    value = document
    for segment in path:
        if isinstance(segment, str) and isinstance(value, Mapping):
            if segment not in value:
                return MISSING
            value = value[segment]
        elif isinstance(segment, int) and isinstance(value, list):
            if segment >= len(value):
                return MISSING
            value = value[segment]
        else:
            return MISSING
    return value


def set_path(document: dict[str, Any], path: Path, value: Any) -> None:
    """Writes `value` at `path`, creating objects (for names) and lists (for
    indexes) on the way; a list grows with nulls up to the index. Raises
    `PathError` when a step meets a value of the other kind (a name inside a
    text, an index inside an object)."""
    container: Any = document
    for position, segment in enumerate(path):
        last = position == len(path) - 1
        following = None if last else path[position + 1]
        empty: Any = [] if isinstance(following, int) else {}
        if isinstance(segment, str):
            if not isinstance(container, dict):
                raise PathError(_refused(path, position, "an object"))
            if last:
                container[segment] = value
                return
            child = container.get(segment)
            if not isinstance(child, (dict, list)):
                child = container[segment] = empty
        else:
            if not isinstance(container, list):
                raise PathError(_refused(path, position, "a list"))
            container.extend([None] * (segment + 1 - len(container)))
            if last:
                container[segment] = value
                return
            child = container[segment]
            if not isinstance(child, (dict, list)):
                child = container[segment] = empty
        container = child


def delete_path(document: Any, path: Path) -> bool:
    """Removes the key at `path` (an index is set to null, so later items keep
    their places); True when something was there."""
    parent = get_path(document, path[:-1]) if len(path) > 1 else document
    last = path[-1]
    if isinstance(last, str) and isinstance(parent, dict) and last in parent:
        del parent[last]
        return True
    if isinstance(last, int) and isinstance(parent, list) and last < len(parent):
        parent[last] = None
        return True
    return False


def format_path(path: Path) -> str:
    text = ""
    for segment in path:
        text += f"[{segment}]" if isinstance(segment, int) else f".{segment}"
    return text.lstrip(".")


def _refused(path: Path, position: int, kind: str) -> str:
    where = format_path(path[:position]) or "the document"
    return f"Cannot write {format_path(path)}: {where} is not {kind}."
