"""Reading request bodies as JSON, and only JSON.

Python's `json` module also reads `NaN`, `Infinity` and `-Infinity`, which
are not JSON, and reads `1e999` as infinity: no answer could carry such a
number back and no JSON column stores it. Every body the service reads goes
through `loads`, which refuses them.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

NOT_JSON_NUMBERS = (b"NaN", b"Infinity")
# An exponent of three digits or more: the only way a JSON number can leave
# the range of a float.
_HUGE_EXPONENT = re.compile(rb"[0-9][eE][+-]?[0-9]{3}")


class NotJsonNumber(ValueError):
    """A body holds NaN, Infinity or -Infinity."""


def loads(data: str | bytes) -> Any:
    """`data` as a JSON value; raises ValueError (`NotJsonNumber` for NaN and
    the infinities) when it is not JSON, and RecursionError when it nests
    deeper than Python can follow."""
    return json.loads(data, parse_constant=_refuse, parse_float=_finite)


def holds_non_json_number(data: bytes) -> bool:
    """Whether `data`, a JSON text, holds NaN, an infinity or a number beyond
    the range of a float outside its strings. Cheap for the usual body, which
    holds none of their spellings at all."""
    suspect = any(word in data for word in NOT_JSON_NUMBERS)
    if not suspect and _HUGE_EXPONENT.search(data) is None:
        return False
    try:
        loads(data)
    except NotJsonNumber:
        return True
    except (ValueError, RecursionError, UnicodeDecodeError):
        return False
    return False


def holds_non_json_number_value(value: Any) -> bool:
    """Whether `value`, already read, holds a float that is not finite (found
    without recursion)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return True
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _refuse(constant: str) -> Any:
    raise NotJsonNumber(f"{constant} is not a JSON number.")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NotJsonNumber(f"{text} is beyond the range of a JSON number.")
    return value


def nesting_depth(value: Any) -> int:
    """How deep objects and arrays nest in a JSON value: 0 for a scalar, 1 for
    `{}` or `[1]`, 2 for `{"a": []}`. Walked with a stack of its own, so no
    value is too deep to measure."""
    deepest = 0
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        pending.extend((child, depth + 1) for child in children)
    return deepest
