"""Request bodies that may be JSON or YAML (the transformation routes).

YAML is read as the JSON it stands for: plain mappings, lists, text, numbers,
booleans and null. Anchors and aliases are refused (a few lines of them can
stand for gigabytes), dates stay text, keys must be text, and `.nan` and
`.inf` are refused as NaN and Infinity are in JSON.
"""

from __future__ import annotations

import math
from typing import Any

import yaml
from fastapi import Request
from pydantic import BaseModel

from signal_admin import strict_json
from signal_admin.errors import BadRequest, InvalidJson

YAML_MEDIA_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml"})


class _JsonLikeLoader(yaml.SafeLoader):
    """SafeLoader without aliases and without timestamps."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.MarkedYAMLError(
                problem="anchors and aliases are not accepted",
                problem_mark=self.peek_event().start_mark,  # type: ignore[no-untyped-call]
            )
        return super().compose_node(parent, index)

    def construct_yaml_float(self, node: Any) -> float:
        value = super().construct_yaml_float(node)
        if not math.isfinite(value):
            raise yaml.MarkedYAMLError(
                problem=".nan and .inf are not JSON numbers",
                problem_mark=node.start_mark,
            )
        return value

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        mapping = super().construct_mapping(node, deep=deep)
        for key in mapping:
            if not isinstance(key, str):
                raise yaml.MarkedYAMLError(
                    problem=f"keys are text; {key!r} is not",
                    problem_mark=node.start_mark,
                )
        return mapping


_JsonLikeLoader.add_constructor(
    "tag:yaml.org,2002:float", _JsonLikeLoader.construct_yaml_float
)
_JsonLikeLoader.yaml_implicit_resolvers = {
    first: [
        (tag, pattern)
        for tag, pattern in resolvers
        if tag != "tag:yaml.org,2002:timestamp"
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def media_type_of(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def json_or_yaml(request: Request) -> Any:
    """The body as a JSON value, read as YAML when it says it is YAML."""
    raw = await request.body()
    if media_type_of(request) in YAML_MEDIA_TYPES:
        return parse_yaml(raw)
    try:
        return strict_json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidJson() from None


def parse_yaml(raw: bytes) -> Any:
    try:
        return yaml.load(raw, Loader=_JsonLikeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise BadRequest(
            f"The body is not valid YAML: {error.problem}{where}."
        ) from None
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError):
        raise BadRequest("The body is not valid YAML.") from None


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
