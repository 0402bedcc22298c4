"""Which text the database can hold.

PostgreSQL refuses NUL characters in text columns and in JSON documents, and
no database can encode an unpaired surrogate as UTF-8. SQLite would store a
NUL, so the rule is the service's own: such text is refused on every database
before it reaches one.
"""

from __future__ import annotations

import re

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def is_storable(text: str) -> bool:
    """False for text holding a NUL character or an unpaired surrogate."""
    return _UNSTORABLE.search(text) is None
