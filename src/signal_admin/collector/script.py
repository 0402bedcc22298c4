"""Builds the collector script of a pipeline from `collector.js`.

The source is read and minified once; a build then only writes the pipeline's
settings into the minified text, in place of its one placeholder, and takes
the sizes and digests a site needs (`integrity` for subresource integrity).
The same settings always give the same bytes.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Final

import rjsmin

SOURCE_FILE: Final = "collector.js"
CONFIG_PLACEHOLDER: Final = "__SIGNAL_CONFIG__"

_GLOBAL_VARIABLE = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
# Characters that could end the script element the text is inlined in, start
# an HTML comment or entity, or end a line in older JavaScript engines; inside
# JSON strings they are written as escapes, which mean the same characters.
_UNSAFE_IN_SCRIPT: Final = str.maketrans(
    {
        "<": "\\u003c",
        ">": "\\u003e",
        "&": "\\u0026",
        "\u2028": "\\u2028",
        "\u2029": "\\u2029",
    }
)


@dataclass(frozen=True, slots=True)
class ScriptSettings:
    """What a pipeline's collector is built with.

    `endpoint` None sends to the page's own origin. `consent` is what events
    carry in `context.consent` until the page calls `consent(...)`; None sends
    none. An empty `cross_domain_domains` turns cross-domain linking off.
    """

    pipeline_key: str
    endpoint: str | None
    global_variable: str
    batch_size: int
    flush_interval_ms: int
    consent: dict[str, bool] | None
    cross_domain_domains: tuple[str, ...]
    vendors: tuple[str, ...]

    def __post_init__(self) -> None:
        if not _GLOBAL_VARIABLE.match(self.global_variable):
            raise ValueError(
                f"global_variable must be a JavaScript name: {self.global_variable!r}"
            )
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.flush_interval_ms < 0:
            raise ValueError("flush_interval_ms must not be negative")


@dataclass(frozen=True, slots=True)
class Script:
    """A built script: the text sites load, its sizes and its digests."""

    text: str
    size_bytes: int
    gzip_size_bytes: int
    sha256: str
    integrity: str


def render(settings: ScriptSettings) -> Script:
    """The collector script configured with `settings`."""
    text = _minified_source().replace(CONFIG_PLACEHOLDER, _config_literal(settings))
    data = text.encode()
    return Script(
        text=text,
        size_bytes=len(data),
        gzip_size_bytes=len(gzip.compress(data, compresslevel=9, mtime=0)),
        sha256=hashlib.sha256(data).hexdigest(),
        integrity="sha384-"
        + base64.b64encode(hashlib.sha384(data).digest()).decode("ascii"),
    )


def _config_literal(settings: ScriptSettings) -> str:
    """The settings as a JSON object that stays inert inside a script element."""
    config = {
        "pipeline_key": settings.pipeline_key,
        "endpoint": settings.endpoint,
        "global_variable": settings.global_variable,
        "batch_size": settings.batch_size,
        "flush_interval_ms": settings.flush_interval_ms,
        "consent": settings.consent,
        "cross_domain_domains": list(settings.cross_domain_domains),
        "vendors": list(settings.vendors),
    }
    literal = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return literal.translate(_UNSAFE_IN_SCRIPT)


@cache
def _minified_source() -> str:
    source = resources.files(__package__).joinpath(SOURCE_FILE).read_text("utf-8")
    minified: str = rjsmin.jsmin(source, keep_bang_comments=True)
    if minified.count(CONFIG_PLACEHOLDER) != 1:
        raise RuntimeError(f"{SOURCE_FILE} must hold {CONFIG_PLACEHOLDER} once")
    return minified
