"""Request bodies that may be JSON or YAML (the transformation routes).

YAML is read as the JSON it stands for, and nothing more:

- values are mappings, lists, texts, decimal integers, floats, `true`,
  `false` and `null` (YAML 1.2's core spelling); everything YAML 1.1 would
  turn into something else (`yes`, `on`, `012`, `1:30`, dates, `!!binary`,
  `!!set`, Python tags) stays text or is refused;
- anchors and aliases are refused (a few lines of them can stand for
  gigabytes), as are duplicate keys, keys that are not text, `.nan` and `.inf`;
- a YAML body is at most 256 KiB, and is parsed in a worker thread (libyaml
  scans it; composing and checking are Python), so a large one never stalls
  other requests.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from typing import Any

import anyio.to_thread
import yaml
from fastapi import Request, Response
from pydantic import BaseModel
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from signal_admin import strict_json
from signal_admin.errors import BadRequest, InvalidJson, PayloadTooLarge

YAML_MEDIA_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml"})
MAX_YAML_BYTES = 256 * 1024

_TAG = "tag:yaml.org,2002:"
_SCALARS: dict[str, re.Pattern[str]] = {
    "bool": re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    "int": re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"),
    "float": re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|(?:0|[1-9][0-9]*)(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    "null": re.compile(r"^(?:~|null|Null|NULL|)$"),
}


def _scan_parser() -> type:
    """libyaml's parser, or PyYAML's own where libyaml is not installed."""
    try:
        from yaml._yaml import CParser
    except ImportError:
        from yaml.parser import Parser
        from yaml.reader import Reader
        from yaml.scanner import Scanner

        class PythonParser(Reader, Scanner, Parser):
            def __init__(self, stream: Any) -> None:
                Reader.__init__(self, stream)
                Scanner.__init__(self)
                Parser.__init__(self)

        return PythonParser
    return CParser


_Parser: Any = _scan_parser()


class _JsonLikeLoader(
    Composer,
    _Parser,  # type: ignore[misc]
    SafeConstructor,
    Resolver,
):
    """Parses with libyaml, composes in Python (so that aliases are refused
    before anything is built), and constructs JSON values only."""

    def __init__(self, stream: Any) -> None:
        _Parser.__init__(self, stream)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        Composer.__init__(self)

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.MarkedYAMLError(
                problem="anchors and aliases are not accepted",
                problem_mark=self.peek_event().start_mark,
            )
        return super().compose_node(parent, index)

    def construct_yaml_int(self, node: Any) -> int:
        try:
            return int(self.construct_scalar(node))
        except ValueError:
            raise yaml.MarkedYAMLError(
                problem="the integer has too many digits",
                problem_mark=node.start_mark,
            ) from None

    def construct_yaml_float(self, node: Any) -> float:
        value = super().construct_yaml_float(node)
        if not math.isfinite(value):
            raise yaml.MarkedYAMLError(
                problem=".nan, .inf and numbers beyond a double are not JSON numbers",
                problem_mark=node.start_mark,
            )
        return value

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str):
                raise yaml.MarkedYAMLError(
                    problem=f"keys are text; {key!r} is not",
                    problem_mark=key_node.start_mark,
                )
            if key in seen:
                raise yaml.MarkedYAMLError(
                    problem=f"the key {key!r} is given twice",
                    problem_mark=key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# Only the tags of JSON values; any other (`!!binary`, `!!set`, a Python tag)
# meets construct_undefined and is refused.
_JsonLikeLoader.yaml_constructors = {
    None: SafeConstructor.construct_undefined,
    **{
        f"{_TAG}{name}": SafeConstructor.yaml_constructors[f"{_TAG}{name}"]
        for name in ("null", "bool", "str", "seq", "map")
    },
    f"{_TAG}int": _JsonLikeLoader.construct_yaml_int,
    f"{_TAG}float": _JsonLikeLoader.construct_yaml_float,
}
_JsonLikeLoader.yaml_implicit_resolvers = {}
_FIRST_CHARACTERS = {
    "bool": list("tTfF"),
    "int": list("-+0123456789"),
    "float": list("-+0123456789."),
    "null": ["~", "n", "N", ""],
}
for _name, _pattern in _SCALARS.items():
    _JsonLikeLoader.add_implicit_resolver(
        f"{_TAG}{_name}", _pattern, _FIRST_CHARACTERS[_name]
    )


def media_type_of(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def json_or_yaml(request: Request) -> Any:
    """The body as a JSON value, read as YAML when it says it is YAML."""
    raw = await request.body()
    if media_type_of(request) in YAML_MEDIA_TYPES:
        if len(raw) > MAX_YAML_BYTES:
            raise PayloadTooLarge(
                f"A YAML body is at most {MAX_YAML_BYTES // 1024} KiB; "
                "send larger ones as JSON."
            )
        return await anyio.to_thread.run_sync(parse_yaml, raw)
    try:
        return strict_json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidJson() from None


def parse_yaml(raw: bytes) -> Any:
    """`raw` as the JSON value its YAML stands for; raises BadRequest naming
    the line and column of the first problem."""
    text = _decoded(raw)
    try:
        return yaml.load(text, Loader=_JsonLikeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise BadRequest(
            f"The body is not valid YAML: {error.problem}{where}."
        ) from None
    except (yaml.YAMLError, RecursionError):
        raise BadRequest("The body is not valid YAML.") from None


def _decoded(raw: bytes) -> str:
    """The body's text: UTF-8, or UTF-16 when it starts with that BOM; a
    leading BOM is not part of the document."""
    try:
        if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            text = raw.decode("utf-16")
        else:
            text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("The body is not valid YAML: it is not UTF-8 text.") from None
    return text.removeprefix("\ufeff")


async def rendered_off_loop(body: Any) -> Response:
    """`body` as a JSON answer, encoded in a worker thread: a dry run's answer
    for 100 events runs to megabytes, which would hold up every other request
    for as long as it takes to encode on the event loop."""
    content = await anyio.to_thread.run_sync(_encoded, body)
    return Response(content, media_type="application/json")


def _encoded(body: Any) -> bytes:
    text = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.encode("utf-8")


def json_or_yaml_openapi(model: type[BaseModel]) -> dict[str, Any]:
    """The `openapi_extra` of a route whose body is `model` as JSON or YAML."""
    schema = model.model_json_schema()
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": schema},
                "application/yaml": {"schema": schema},
            },
        }
    }
