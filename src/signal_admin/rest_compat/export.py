"""Write the REST contract: `python -m signal_admin.rest_compat.export openapi.json`.

The committed file is checked against the code by the test suite, so every
change to the REST contract shows up in review.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from signal_admin.app import create_app
from signal_admin.config import Settings

_EXPORT_SECRETS = {"jwt_secret": "x" * 32, "encryption_key": "0" * 64}


def openapi_document() -> dict[str, Any]:
    app = create_app(Settings.model_validate(_EXPORT_SECRETS))
    return app.openapi()


def render() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"


def main() -> None:
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "openapi.json")
    target.write_text(render())
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
