"""From a canonical event to a vendor payload, as a revision's config describes.

A revision's config is one flat document: the vendor's connection fields next to
the four keys that hold the mapping (`envelope`, `defaults`, `global`,
`events`). Before the mapping runs, `{{pipeline_param.KEY}}` placeholders are
replaced with the pipeline's parameters:

    config = substitute_parameters(revision.config, pipeline.parameters)
    result = build_payload(config, event)
    result.payload    # {"client_id": "…", "events": [{"name": "purchase", …}]}
    result.reason     # None, or why the event was filtered

Only mappings write into the payload, so connection fields (measurement ids,
tokens) never reach it. `docs/mappings.md` describes the document for users.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any, Final

from pydantic import ValidationError

from signal_admin.catalog.models import RESERVED_KEYS, Envelope, MappingDocument
from signal_admin.catalog.models import Mapping as MappingRule
from signal_admin.processing.expressions.errors import ExpressionEvaluationError
from signal_admin.processing.expressions.functions import (
    EPOCH,
    format_iso8601,
    read_timestamp,
)
from signal_admin.processing.expressions.values import to_text
from signal_admin.processing.paths import (
    MISSING,
    Path,
    PathError,
    get_path,
    parse_path,
    set_path,
)
from signal_admin.processing.runtime import StepFailure

PARAMETER: Final = re.compile(r"\{\{\s*pipeline_param\.([A-Za-z0-9_.-]+)\s*\}\}")
INVALID_MAPPING: Final = "INVALID_MAPPING"
MISSING_PIPELINE_PARAMETERS: Final = "MISSING_PIPELINE_PARAMETERS"
FALLBACK: Final = "*"
# Event types matched by their type name; `track` events by their `event`.
_NAMED_BY_TYPE: Final = frozenset({"page", "identify", "group"})
_CACHE_SIZE: Final = 256


# -- pipeline parameters


def parameter_keys(config: Any) -> set[str]:
    """The keys `config` refers to as `{{pipeline_param.KEY}}`, in any text
    value at any depth (object keys are not read)."""
    return {key for text in _texts(config) for key in PARAMETER.findall(text)}


class MissingParameters(StepFailure):
    """The config refers to pipeline parameters the pipeline does not set."""

    def __init__(self, keys: Iterable[str]) -> None:
        self.keys = sorted(keys)
        super().__init__(
            MISSING_PIPELINE_PARAMETERS,
            "The config uses pipeline parameters this pipeline does not set: "
            + ", ".join(self.keys)
            + ".",
        )


def substitute_parameters(config: Any, parameters: Mapping[str, Any]) -> Any:
    """A copy of `config` with every placeholder replaced.

    A text that is exactly one placeholder becomes the parameter's value as it
    is (a number stays a number); placeholders inside longer text are written
    in the value's text form. Raises `MissingParameters` naming every key the
    pipeline lacks, before anything is replaced.
    """
    missing = parameter_keys(config) - set(parameters)
    if missing:
        raise MissingParameters(missing)
    return _substituted(config, parameters)


def _substituted(value: Any, parameters: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        whole = PARAMETER.fullmatch(value)
        if whole is not None:
            return copy.deepcopy(parameters[whole.group(1)])
        return PARAMETER.sub(
            lambda match: _text_form(parameters[match.group(1)]), value
        )
    if isinstance(value, Mapping):
        return {key: _substituted(item, parameters) for key, item in value.items()}
    if isinstance(value, list):
        return [_substituted(item, parameters) for item in value]
    return value


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


# -- the mapping document, read once per distinct document


@dataclass(frozen=True)
class _Rule:
    """One mapping: where its value comes from and where it is written."""

    target: Path
    source: Path | None
    value: Any
    value_map: Mapping[str, Any] | None
    format: str | None = None

    def value_for(self, event: Mapping[str, Any]) -> Any:
        """The value to write, or MISSING when nothing is to be written."""
        if self.source is None:
            found = copy.deepcopy(self.value)
        else:
            found = get_path(event, self.source)
            if found is MISSING or found is None:
                return MISSING
            found = copy.deepcopy(found)
        if self.format is not None:
            found = _formatted(found, self.format)
        if self.value_map is None:
            return found
        key = _text_form(found)
        if key in self.value_map:
            return copy.deepcopy(self.value_map[key])
        if FALLBACK in self.value_map:
            return copy.deepcopy(self.value_map[FALLBACK])
        return found


@dataclass(frozen=True)
class _EventEntry:
    name: str
    vendor_event_name: str | None
    enabled: bool
    rules: tuple[_Rule, ...]


@dataclass(frozen=True)
class _Mapping:
    events_path: Path
    event_name_path: Path
    drop_unmapped: bool
    global_rules: tuple[_Rule, ...]
    events: Mapping[str, _EventEntry]


def _read_mapping(config: Mapping[str, Any]) -> _Mapping:
    """The mapping part of `config`, validated and with its paths parsed, from
    a cache keyed by the mapping part's JSON text."""
    mapping_part = {key: config[key] for key in RESERVED_KEYS if key in config}
    try:
        text = json.dumps(mapping_part, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        return _compile_mapping(mapping_part)
    return _compile_mapping_text(text)


@lru_cache(maxsize=_CACHE_SIZE)
def _compile_mapping_text(text: str) -> _Mapping:
    return _compile_mapping(json.loads(text))


def _compile_mapping(mapping_part: Mapping[str, Any]) -> _Mapping:
    try:
        document = MappingDocument.model_validate(mapping_part)
    except ValidationError as error:
        raise StepFailure(INVALID_MAPPING, _describe(error)) from None
    envelope = document.envelope or Envelope()
    events_path: Path = ()
    if envelope.events_path is not None:
        events_path = _parse(envelope.events_path, "envelope.events_path")
    events = {
        name: _EventEntry(
            name=name,
            vendor_event_name=entry.vendor_event_name,
            enabled=entry.enabled,
            rules=_rules(entry.mappings, f"events.{name}.mappings"),
        )
        for name, entry in document.events.items()
    }
    return _Mapping(
        events_path=events_path,
        event_name_path=events_path
        + _parse(envelope.event_name_field, "envelope.event_name_field"),
        drop_unmapped=document.defaults.action == "drop",
        global_rules=_rules(document.global_.mappings, "global.mappings"),
        events=events,
    )


def _rules(mappings: list[MappingRule], where: str) -> tuple[_Rule, ...]:
    return tuple(
        _Rule(
            target=_parse(rule.target, f"{where}.{index}.target"),
            source=(
                None
                if rule.source is None
                else _parse(rule.source, f"{where}.{index}.source")
            ),
            value=rule.value,
            value_map=rule.value_map,
            format=rule.format,
        )
        for index, rule in enumerate(mappings)
    )


def _parse(text: str, where: str) -> Path:
    try:
        return parse_path(text)
    except PathError as error:
        raise StepFailure(INVALID_MAPPING, f"{where}: {error}") from None


def _describe(error: ValidationError) -> str:
    problems = [
        ".".join(str(part) for part in problem["loc"]) + ": " + problem["msg"]
        for problem in error.errors(include_url=False)
    ]
    return "The mapping is not valid: " + "; ".join(problems)


# -- building the payload


@dataclass(frozen=True)
class MappingResult:
    """The vendor payload, or None when the mapping filtered the event, with
    the reason."""

    payload: dict[str, Any] | None
    reason: str | None


def build_payload(config: Mapping[str, Any], event: Mapping[str, Any]) -> MappingResult:
    """The payload `config`'s mapping builds from `event`.

    Raises `StepFailure` with code `INVALID_MAPPING` when the mapping part of
    `config` is not a valid mapping document, or when its targets contradict
    one another (one writes an object where another needs a list).
    """
    mapping = _read_mapping(config)
    key = _event_key(event)
    entry = mapping.events.get(key) if key is not None else None
    if entry is None and mapping.drop_unmapped:
        unmatched = repr(key) if key is not None else "an event without a name"
        return MappingResult(
            None, f"defaults.action: drop (no mapping for {unmatched})"
        )
    if entry is not None and not entry.enabled:
        return MappingResult(None, f"events.{entry.name}: disabled")

    payload: dict[str, Any] = {}
    _apply(payload, (), mapping.global_rules, event, "global.mappings")
    if entry is not None:
        if get_path(payload, mapping.events_path) is MISSING:
            _write(payload, mapping.events_path, {}, "envelope.events_path")
        if entry.vendor_event_name is not None:
            _write(
                payload,
                mapping.event_name_path,
                entry.vendor_event_name,
                "envelope.event_name_field",
            )
        where = f"events.{entry.name}.mappings"
        _apply(payload, mapping.events_path, entry.rules, event, where)
    return MappingResult(payload, None)


def _event_key(event: Mapping[str, Any]) -> str | None:
    kind = event.get("type")
    if kind == "track":
        name = event.get("event")
        return name if isinstance(name, str) else None
    return kind if isinstance(kind, str) and kind in _NAMED_BY_TYPE else None


def _apply(
    payload: dict[str, Any],
    base: Path,
    rules: tuple[_Rule, ...],
    event: Mapping[str, Any],
    where: str,
) -> None:
    for index, rule in enumerate(rules):
        value = rule.value_for(event)
        if value is not MISSING:
            _write(payload, base + rule.target, value, f"{where}.{index}")


def _write(payload: dict[str, Any], path: Path, value: Any, where: str) -> None:
    try:
        set_path(payload, path, value)
    except PathError as error:
        raise StepFailure(INVALID_MAPPING, f"{where}: {error}") from None


def _formatted(value: Any, layout: str) -> Any:
    """A timestamp written as `layout` says; raises `StepFailure` for a value
    that is no timestamp."""
    try:
        moment = read_timestamp(value, 0)
    except ExpressionEvaluationError:
        raise StepFailure(
            INVALID_MAPPING,
            f"{value!r} is not a timestamp (ISO 8601 text or epoch milliseconds).",
        ) from None
    if layout == "iso8601":
        return format_iso8601(moment)
    microseconds = (moment - EPOCH) // timedelta(microseconds=1)
    divisor = {"epoch_seconds": 1_000_000, "epoch_millis": 1000, "epoch_micros": 1}
    return microseconds // divisor[layout]


def _text_form(value: Any) -> str:
    """How a value reads as text: as `TO_STRING` writes it, `null` for null."""
    if value is None:
        return "null"
    try:
        return to_text(value, 0)
    except ExpressionEvaluationError:
        return repr(value)
