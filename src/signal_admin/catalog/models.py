"""The shape of a catalog vendor file and of the mapping document its variants
carry. A file that does not fit stops start-up with its name and the problem."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

RESERVED_KEYS = frozenset({"envelope", "defaults", "global", "events"})
Category = Literal[
    "advertising", "analytics", "attribution", "cdp", "cloud_storage", "other"
]

Key = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,64}$")]
Path = Annotated[
    str,
    StringConstraints(
        pattern=r"^[A-Za-z_$][\w$]*(\[\d+\])?(\.[A-Za-z_$][\w$]*(\[\d+\])?)*$"
    ),
]
FieldType = Literal["string", "secret", "number", "boolean", "select", "url", "json"]
_PYTHON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "secret": str,
    "url": str,
    "select": str,
    "number": (int, float),
    "boolean": bool,
    "json": (dict, list),
}
_URL = re.compile(r"https?://\S+")
DeliveryMode = Literal["server_side", "client_side", "hybrid"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConfigField(_Strict):
    key: Key
    label: str
    type: FieldType
    required: bool = False
    placeholder: str | None = None
    help_text: str | None = None
    pattern: str | None = None
    options: list[str] | None = None

    @model_validator(mode="after")
    def _check(self) -> ConfigField:
        if self.key in RESERVED_KEYS:
            raise ValueError(f"config field {self.key!r} uses a reserved mapping key")
        if (self.type == "select") != bool(self.options):
            raise ValueError("select fields, and only they, list their options")
        if self.pattern is not None:
            re.compile(self.pattern)
        return self

    def problem_with(self, value: Any) -> str | None:
        """What is wrong with `value` as this field's setting, or None. A
        `pattern` must match the whole value: a trailing newline is not
        ignored."""
        expected = _PYTHON_TYPES[self.type]
        if not isinstance(value, expected) or (
            self.type == "number" and isinstance(value, bool)
        ):
            return f"Expected a {self.type} value."
        if not isinstance(value, str):
            return None
        if self.type == "url" and not _URL.fullmatch(value):
            return "Expected an http(s) URL."
        if self.type == "select" and self.options and value not in self.options:
            return f"Expected one of {', '.join(self.options)}."
        if self.pattern and not re.fullmatch(self.pattern, value):
            return "The value does not have the expected format."
        return None


class Envelope(_Strict):
    events_path: Path | None = None
    event_name_field: Path = "event"


class Defaults(_Strict):
    action: Literal["drop", "pass"] = "drop"


TimestampFormat = Literal["epoch_seconds", "epoch_millis", "epoch_micros", "iso8601"]


class Mapping(_Strict):
    target: Path
    source: Path | None = None
    value: Any = None
    value_map: dict[str, Any] | None = None
    # A timestamp (ISO 8601 text or epoch milliseconds) written in the form
    # the vendor reads: GA4 takes microseconds, Meta seconds.
    format: TimestampFormat | None = None

    @model_validator(mode="after")
    def _one_origin(self) -> Mapping:
        given = self.model_fields_set
        if ("source" in given) == ("value" in given):
            raise ValueError("a mapping takes either source or value")
        return self


class GlobalMappings(_Strict):
    mappings: list[Mapping] = []


class EventMapping(_Strict):
    vendor_event_name: str | None = None
    enabled: bool = True
    mappings: list[Mapping] = []


class MappingDocument(BaseModel):
    """A revision's config: connection fields at the top level, next to the
    four reserved keys that hold the mapping."""

    model_config = ConfigDict(extra="allow", frozen=True)

    envelope: Envelope | None = None
    defaults: Defaults = Defaults()
    global_: GlobalMappings = Field(default=GlobalMappings(), alias="global")
    events: dict[str, EventMapping] = {}


class Variant(_Strict):
    key: Key
    name: str
    description: str
    default_config: dict[str, Any]

    @model_validator(mode="after")
    def _check_mapping(self) -> Variant:
        MappingDocument.model_validate(self.default_config)
        return self


class Vendor(_Strict):
    key: Key
    name: str
    description: str
    category: Category
    status: Literal["ga", "beta"]
    website: Annotated[str, StringConstraints(pattern=r"^https://")]
    delivery_modes: Annotated[list[DeliveryMode], Field(min_length=1)]
    config_fields: list[ConfigField]
    variants: Annotated[list[Variant], Field(min_length=1)]

    @model_validator(mode="after")
    def _check(self) -> Vendor:
        field_keys = [field.key for field in self.config_fields]
        if len(set(field_keys)) != len(field_keys):
            raise ValueError("config field keys must be unique")
        variant_keys = [variant.key for variant in self.variants]
        if "default" not in variant_keys or len(set(variant_keys)) != len(variant_keys):
            raise ValueError("variant keys must be unique and include 'default'")
        return self

    @property
    def secret_fields(self) -> list[str]:
        return [field.key for field in self.config_fields if field.type == "secret"]

    def variant(self, key: str) -> Variant | None:
        return next((v for v in self.variants if v.key == key), None)
