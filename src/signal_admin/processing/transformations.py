"""Transformation documents: their validation, their compiled form, and a run
of their steps over one object.

A transformation's config is `{"steps": [...]}`. Each step gets the previous
step's output; expressions call the object `event` and targets are paths
relative to it (`params.value`). `docs/transformations.md` describes the
document for users.

    problems = transformation_problems(config)      # [] when it can run
    transformation = compiled(config)               # parsed once, then cached
    outcome = run_transformation(
        transformation, payload, javascript=runner, context={"org_id": …}
    )
    outcome.as_dict()                               # one item of a test answer

A run never changes the object it is given, and never raises for what a step
does: a step's failure is handled by its `on_error` and reported in the outcome.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol, TypeVar

from signal_admin.errors import FieldProblem
from signal_admin.processing.expressions import (
    MAX_LENGTH,
    Clock,
    Expression,
    ExpressionEvaluationError,
    ExpressionSyntaxError,
    evaluate,
    parse,
)
from signal_admin.processing.expressions.evaluator import utc_now
from signal_admin.processing.expressions.values import kind_of
from signal_admin.processing.paths import (
    MISSING,
    Path,
    PathError,
    get_path,
    parse_path,
    set_path,
)
from signal_admin.processing.runtime import (
    TIMEOUT,
    Deadline,
    JavaScriptRunner,
    StepFailure,
)

STEP_TYPES: Final = ("filter", "map", "transform", "enrich", "compute", "code")
ON_ERROR: Final = ("skip", "drop", "fail")
ON_MISSING: Final = ("skip", "null", "error")
MAX_STEPS: Final = 100
# Mappings of one `map` step, fields of one `enrich` or `compute` step.
MAX_ENTRIES: Final = 100
MAX_SOURCE_BYTES: Final = 64 * 1024
CACHE_ENTRIES: Final = 256
CACHE_TEXT_SIZE: Final = 8 * 1024 * 1024

# The codes of a step's error, as test answers and stage events carry them.
EXPRESSION_ERROR: Final = "EXPRESSION_ERROR"
PATH_CONFLICT: Final = "PATH_CONFLICT"
MISSING_VALUE: Final = "MISSING_VALUE"
JAVASCRIPT_UNAVAILABLE: Final = "JAVASCRIPT_UNAVAILABLE"

_COMMON_FIELDS: Final = ("type", "on_error")
_STEP_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "filter": ("condition",),
    "map": ("mappings", "on_missing"),
    "transform": ("field", "expression"),
    "enrich": ("fields",),
    "compute": ("fields",),
    "code": ("source",),
}

StepStatus = Literal["ok", "dropped", "error"]
_Item = TypeVar("_Item")


# -- running a step


@dataclass(frozen=True)
class _Run:
    """What one run hands every step."""

    javascript: JavaScriptRunner | None
    context: Mapping[str, Any]
    clock: Clock

    def value(self, expression: Expression, target: dict[str, Any], where: str) -> Any:
        try:
            return evaluate(expression, target, clock=self.clock)
        except ExpressionEvaluationError as error:
            raise StepFailure(EXPRESSION_ERROR, f"{where}: {error.message}") from None


class _Action(Protocol):
    def apply(self, target: dict[str, Any], run: _Run) -> dict[str, Any] | None:
        """The step's output, or None when it drops the object. `target` is
        never changed: a step that writes, writes into a copy."""
        ...


@dataclass(frozen=True)
class _Filter:
    condition: Expression

    def apply(self, target: dict[str, Any], run: _Run) -> dict[str, Any] | None:
        verdict = run.value(self.condition, target, "condition")
        if verdict is not None and not isinstance(verdict, bool):
            raise StepFailure(
                EXPRESSION_ERROR,
                f"condition: gave a {kind_of(verdict)}, not TRUE, FALSE or NULL",
            )
        return target if verdict is True else None


@dataclass(frozen=True)
class _Entry:
    """One `path: expression` of a `map` or `compute` step."""

    text: str
    path: Path
    expression: Expression


@dataclass(frozen=True)
class _Map:
    mappings: tuple[_Entry, ...]
    on_missing: str

    def apply(self, target: dict[str, Any], run: _Run) -> dict[str, Any] | None:
        output: dict[str, Any] = {}
        for entry in self.mappings:
            value = run.value(entry.expression, target, entry.text)
            if value is None and self.on_missing == "skip":
                continue
            if value is None and self.on_missing == "error":
                raise StepFailure(
                    MISSING_VALUE,
                    f"{entry.text}: {entry.expression.text} gave NULL",
                )
            _write(output, entry.path, entry.text, copy.deepcopy(value))
        return output


@dataclass(frozen=True)
class _Transform:
    text: str
    field: Path
    expression: Expression

    def apply(self, target: dict[str, Any], run: _Run) -> dict[str, Any] | None:
        if get_path(target, self.field) is MISSING:
            return target
        value = run.value(self.expression, target, "expression")
        output = copy.deepcopy(target)
        _write(output, self.field, self.text, copy.deepcopy(value))
        return output


@dataclass(frozen=True)
class _Enrich:
    fields: tuple[tuple[str, Path, Any], ...]

    def apply(self, target: dict[str, Any], run: _Run) -> dict[str, Any] | None:
        output = copy.deepcopy(target)
        for text, path, literal in self.fields:
            _write(output, path, text, copy.deepcopy(literal))
        return output


@dataclass(frozen=True)
class _Compute:
    fields: tuple[_Entry, ...]

    def apply(self, target: dict[str, Any], run: _Run) -> dict[str, Any] | None:
        # Every expression reads the object as the step found it.
        values = [
            copy.deepcopy(run.value(entry.expression, target, entry.text))
            for entry in self.fields
        ]
        output = copy.deepcopy(target)
        for entry, value in zip(self.fields, values, strict=True):
            _write(output, entry.path, entry.text, value)
        return output


@dataclass(frozen=True)
class _Code:
    source: str

    def apply(self, target: dict[str, Any], run: _Run) -> dict[str, Any] | None:
        if run.javascript is None:
            raise StepFailure(
                JAVASCRIPT_UNAVAILABLE, "Custom JavaScript cannot run here."
            )
        return run.javascript(self.source, copy.deepcopy(target), run.context)


def _write(document: dict[str, Any], path: Path, text: str, value: Any) -> None:
    try:
        set_path(document, path, value)
    except PathError as error:
        raise StepFailure(PATH_CONFLICT, f"{text}: {error}") from None


# -- the compiled document


@dataclass(frozen=True)
class CompiledStep:
    index: int
    type: str
    on_error: str
    action: _Action


@dataclass(frozen=True)
class CompiledTransformation:
    """A valid step document with its expressions parsed and paths read."""

    steps: tuple[CompiledStep, ...]


class InvalidTransformationConfig(ValueError):
    """`compiled` was given a document with problems; `problems` lists them."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__(
            "The transformation is not valid: "
            + "; ".join(f"{p.field}: {p.message}" for p in problems)
        )


def transformation_problems(config: Any) -> list[FieldProblem]:
    """Every problem of the step document `config`, all at once; [] if none.

    Fields are named from the config's root (`steps.2.condition`,
    `steps.0.mappings.params.value`). Custom JavaScript is not compiled here:
    only its size is checked.
    """
    reader = _Reader()
    reader.document(config)
    return reader.problems


def compiled(config: Mapping[str, Any]) -> CompiledTransformation:
    """`config` validated and compiled, from a cache keyed by its JSON text.

    Raises `InvalidTransformationConfig` (a `ValueError`) when it has problems.
    The compiled form keeps nothing of `config` itself, so changing `config`
    afterwards changes nothing.
    """
    try:
        text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return _compile(copy.deepcopy(config))
    key = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    found = _CACHE.get(key)
    if found is None:
        found = _compile(json.loads(text))
        _CACHE.put(key, found, len(text))
    return found


class _CompiledCache:
    """The most recently used compiled documents, bounded both in number and
    in the size of their JSON text, so that a stream of large unsaved
    documents (transformation tests) cannot hold much memory."""

    def __init__(self, entries: int, text_size: int) -> None:
        self._entries = entries
        self._text_size = text_size
        self._items: OrderedDict[bytes, tuple[CompiledTransformation, int]] = (
            OrderedDict()
        )
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: bytes) -> CompiledTransformation | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: bytes, value: CompiledTransformation, size: int) -> None:
        if size > self._text_size:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = (value, size)
            self._size += size
            while len(self._items) > self._entries or self._size > self._text_size:
                _, (_, evicted) = self._items.popitem(last=False)
                self._size -= evicted


_CACHE: Final = _CompiledCache(CACHE_ENTRIES, CACHE_TEXT_SIZE)


def _compile(config: Any) -> CompiledTransformation:
    reader = _Reader()
    steps = reader.document(config)
    if reader.problems:
        raise InvalidTransformationConfig(reader.problems)
    return CompiledTransformation(steps)


class _Reader:
    """Reads a step document into compiled steps, gathering every problem."""

    def __init__(self) -> None:
        self.problems: list[FieldProblem] = []

    def report(self, field: str, code: str, message: str) -> None:
        self.problems.append(FieldProblem(field, code, message))

    def document(self, config: Any) -> tuple[CompiledStep, ...]:
        if not isinstance(config, Mapping):
            self.report(
                "", "INVALID", 'A transformation is an object: {"steps": [...]}.'
            )
            return ()
        for key in config:
            if key != "steps":
                self.report(
                    str(key), "UNKNOWN_FIELD", "A transformation holds steps only."
                )
        steps = config.get("steps")
        if steps is None:
            self.report("steps", "REQUIRED", "A transformation has a list of steps.")
            return ()
        if not isinstance(steps, list):
            self.report("steps", "INVALID", "steps is a list of step objects.")
            return ()
        if len(steps) > MAX_STEPS:
            self.report("steps", "TOO_MANY", f"At most {MAX_STEPS} steps.")
        compiled_steps = (self.step(index, step) for index, step in enumerate(steps))
        return tuple(step for step in compiled_steps if step is not None)

    def step(self, index: int, step: Any) -> CompiledStep | None:
        where = f"steps.{index}"
        if not isinstance(step, Mapping):
            self.report(where, "INVALID", "A step is an object with a type.")
            return None
        kind = step.get("type")
        if kind is None:
            self.report(f"{where}.type", "REQUIRED", "Every step has a type.")
        elif kind not in STEP_TYPES:
            self.report(
                f"{where}.type",
                "INVALID_CHOICE",
                f"The type is one of {', '.join(STEP_TYPES)}.",
            )
        on_error = self.choice(step, "on_error", where, ON_ERROR)
        if kind not in STEP_TYPES:
            return None
        allowed = _COMMON_FIELDS + _STEP_FIELDS[kind]
        for key in step:
            if key not in allowed:
                self.report(
                    f"{where}.{key}",
                    "UNKNOWN_FIELD",
                    f"A {kind} step takes {', '.join(allowed)}.",
                )
        action = self.action(kind, step, where)
        if action is None:
            return None
        return CompiledStep(index, kind, on_error, action)

    def action(self, kind: str, step: Mapping[str, Any], where: str) -> _Action | None:
        match kind:
            case "filter":
                condition = self.expression(step.get("condition"), f"{where}.condition")
                return None if condition is None else _Filter(condition)
            case "map":
                mappings = self.entries(
                    step.get("mappings"), f"{where}.mappings", self.entry
                )
                on_missing = self.choice(step, "on_missing", where, ON_MISSING)
                return None if mappings is None else _Map(mappings, on_missing)
            case "transform":
                text = step.get("field")
                field = self.path(text, f"{where}.field", required=True)
                expression = self.expression(
                    step.get("expression"), f"{where}.expression"
                )
                if field is None or expression is None:
                    return None
                return _Transform(str(text), field, expression)
            case "enrich":
                fields = self.entries(
                    step.get("fields"), f"{where}.fields", self.literal
                )
                return None if fields is None else _Enrich(fields)
            case "compute":
                entries = self.entries(
                    step.get("fields"), f"{where}.fields", self.entry
                )
                return None if entries is None else _Compute(entries)
            case _:
                source = self.source(step.get("source"), f"{where}.source")
                return None if source is None else _Code(source)

    def choice(
        self, step: Mapping[str, Any], key: str, where: str, choices: tuple[str, ...]
    ) -> str:
        value = step.get(key, choices[0])
        if value not in choices:
            self.report(
                f"{where}.{key}", "INVALID_CHOICE", f"One of {', '.join(choices)}."
            )
            return choices[0]
        return str(value)

    def expression(self, text: Any, field: str) -> Expression | None:
        if text is None:
            self.report(field, "REQUIRED", "An expression is required.")
            return None
        if not isinstance(text, str):
            self.report(field, "INVALID", "An expression is a text.")
            return None
        if len(text) > MAX_LENGTH:
            self.report(field, "TOO_LONG", f"At most {MAX_LENGTH} characters.")
            return None
        try:
            return parse(text)
        except ExpressionSyntaxError as error:
            self.report(field, "INVALID_EXPRESSION", error.message)
            return None

    def path(self, text: Any, field: str, *, required: bool = False) -> Path | None:
        if text is None and required:
            self.report(field, "REQUIRED", "A path is required, e.g. params.value.")
            return None
        if not isinstance(text, str):
            self.report(field, "INVALID_PATH", "A path is a text, e.g. params.value.")
            return None
        try:
            return parse_path(text)
        except PathError as error:
            self.report(field, "INVALID_PATH", str(error))
            return None

    def entries(
        self,
        value: Any,
        field: str,
        read: Callable[[str, Path, Any, str], _Item | None],
    ) -> tuple[_Item, ...] | None:
        """The `{path: …}` object at `field`, each entry read by `read`. Paths
        that contain one another are refused: only their order would decide
        what the step writes."""
        if value is None:
            self.report(field, "REQUIRED", "An object of path: value entries.")
            return None
        if not isinstance(value, Mapping):
            self.report(field, "INVALID", "An object of path: value entries.")
            return None
        if not value:
            self.report(field, "TOO_FEW", "At least one entry.")
            return None
        known = len(self.problems)
        if len(value) > MAX_ENTRIES:
            self.report(field, "TOO_MANY", f"At most {MAX_ENTRIES} entries.")
        items: list[_Item] = []
        paths: dict[Path, str] = {}
        for key, item in value.items():
            path = self.path(key, f"{field}.{key}")
            if path is None:
                continue
            clash = next((text for p, text in paths.items() if _overlap(p, path)), None)
            if clash is not None:
                self.report(
                    f"{field}.{key}",
                    "INVALID",
                    f"{key} overlaps {clash}, which the same step also sets.",
                )
            paths[path] = key
            read_item = read(key, path, item, f"{field}.{key}")
            if read_item is not None:
                items.append(read_item)
        return None if len(self.problems) > known else tuple(items)

    def entry(self, text: str, path: Path, value: Any, field: str) -> _Entry | None:
        expression = self.expression(value, field)
        return None if expression is None else _Entry(text, path, expression)

    def literal(
        self, text: str, path: Path, value: Any, field: str
    ) -> tuple[str, Path, Any] | None:
        if not _is_json(value):
            self.report(
                field,
                "INVALID",
                "A value is JSON: a text, number, boolean, null, list or object.",
            )
            return None
        return (text, path, value)

    def source(self, source: Any, field: str) -> str | None:
        if source is None or (isinstance(source, str) and not source.strip()):
            self.report(field, "REQUIRED", "The JavaScript source is required.")
            return None
        if not isinstance(source, str):
            self.report(field, "INVALID", "The source is a text.")
            return None
        if len(source.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
            self.report(
                field, "TOO_LONG", f"At most {MAX_SOURCE_BYTES // 1024} KiB of UTF-8."
            )
            return None
        return source


def _overlap(first: Path, second: Path) -> bool:
    shorter = min(len(first), len(second))
    return first[:shorter] == second[:shorter]


def _is_json(value: Any) -> bool:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, Mapping):
            if not all(isinstance(key, str) for key in item):
                return False
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                return False
        elif item is not None and not isinstance(item, str | int):
            return False
    return True


# -- outcomes


@dataclass(frozen=True)
class StepOutcome:
    index: int
    type: str
    status: StepStatus
    duration_ms: float
    error: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "type": self.type,
            "status": self.status,
            "duration_ms": self.duration_ms,
            "error": self.error,
        }


@dataclass(frozen=True)
class TransformationOutcome:
    """What a run did: the output (None when dropped or stopped), each step
    that ran, the error that stopped the run, and the step that dropped."""

    output: dict[str, Any] | None
    dropped: bool
    steps: list[StepOutcome]
    error: dict[str, Any] | None
    dropped_by: int | None

    def as_dict(self) -> dict[str, Any]:
        """One item of a transformation test answer."""
        return {
            "output": self.output,
            "dropped": self.dropped,
            "steps": [step.as_dict() for step in self.steps],
            "error": self.error,
        }


def run_transformation(
    transformation: CompiledTransformation,
    target: Mapping[str, Any],
    *,
    javascript: JavaScriptRunner | None,
    context: Mapping[str, Any],
    deadline: Deadline | None = None,
    clock: Clock | None = None,
) -> TransformationOutcome:
    """Runs the steps in order over a copy of `target`.

    `javascript` runs `code` steps (already bound to the request's deadline by
    the caller); without it a `code` step fails like any other step. The
    deadline is checked before each step; `clock` answers `NOW()`.
    """
    run = _Run(javascript, context, clock or utc_now)
    current: dict[str, Any] = copy.deepcopy(dict(target))
    outcomes: list[StepOutcome] = []
    for step in transformation.steps:
        if deadline is not None and deadline.expired:
            message = f"The time budget ran out before step {step.index} ({step.type})."
            return TransformationOutcome(
                None, False, outcomes, {"code": TIMEOUT, "message": message}, None
            )

        started = time.perf_counter()
        try:
            result = step.action.apply(current, run)
        except StepFailure as failure:
            if step.on_error == "drop":
                outcomes.append(_outcome(step, "dropped", started, failure.as_error()))
                return TransformationOutcome(None, True, outcomes, None, step.index)
            outcomes.append(_outcome(step, "error", started, failure.as_error()))
            if step.on_error == "fail":
                return TransformationOutcome(
                    None, False, outcomes, _stopped_by(step, failure), None
                )
            continue

        if result is None:
            outcomes.append(_outcome(step, "dropped", started, None))
            return TransformationOutcome(None, True, outcomes, None, step.index)
        outcomes.append(_outcome(step, "ok", started, None))
        current = result
    return TransformationOutcome(current, False, outcomes, None, None)


def _outcome(
    step: CompiledStep,
    status: StepStatus,
    started: float,
    error: dict[str, Any] | None,
) -> StepOutcome:
    duration_ms = round((time.perf_counter() - started) * 1000, 3)
    return StepOutcome(step.index, step.type, status, duration_ms, error)


def _stopped_by(step: CompiledStep, failure: StepFailure) -> dict[str, Any]:
    message = f"Step {step.index} ({step.type}) failed: {failure.message}"
    return {"code": failure.code, "message": message}
