"""Write the schema's SDL, the committed `schema.graphql`.

Run from the repository root after changing the schema:

    python -m signal_admin.schema.export            # writes ./schema.graphql
    python -m signal_admin.schema.export other.graphql
"""

from __future__ import annotations

import sys
from pathlib import Path

from signal_admin.schema.root import schema

DEFAULT_PATH = Path("schema.graphql")


def sdl() -> str:
    """The printed schema, as committed: one trailing newline."""
    return str(schema).rstrip("\n") + "\n"


def main(argv: list[str]) -> None:
    path = Path(argv[0]) if argv else DEFAULT_PATH
    path.write_text(sdl(), encoding="utf-8")
    print(f"Wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
