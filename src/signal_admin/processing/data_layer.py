"""The organisation's data layer: the rules every event meets before any
integration sees it, and the checks its document must pass to be saved.

    config = parse_data_layer(document)            # None: the defaults
    result = apply_data_layer(config, event, javascript=runner, context={...})
    result.stage                                   # "processed" | "dropped" | "error"

The steps run in a fixed order: bot filtering, PII, custom JavaScript, routing
rules. Each works on a copy; the caller's event is never changed. `apply_pii`
also serves alone, to hash and redact an event before it is shown anywhere.
`docs/data-layer.md` describes the document for users.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from signal_admin.errors import FieldProblem
from signal_admin.processing import expressions
from signal_admin.processing.bots import is_only_wildcards, known_bot, matching_pattern
from signal_admin.processing.paths import (
    MISSING,
    Path,
    PathError,
    delete_path,
    get_path,
    parse_path,
)
from signal_admin.processing.runtime import (
    TIMEOUT,
    Deadline,
    JavaScriptRunner,
    StepFailure,
)

MAX_FIELDS: Final = 100
MAX_PATH_LENGTH: Final = 200
MAX_PATTERNS: Final = 100
MAX_PATTERN_LENGTH: Final = 200
MAX_ROUTING_RULES: Final = 100
MAX_CODE_BYTES: Final = 64 * 1024
MAX_DESCRIPTION_LENGTH: Final = 500
TIMEOUT_MINUTES: Final = (1, 1440)
MAX_DURATION_HOURS: Final = (1, 168)

JAVASCRIPT_UNAVAILABLE: Final = "JAVASCRIPT_UNAVAILABLE"


# -- the document


def _checked_path(text: str) -> str:
    if len(text) > MAX_PATH_LENGTH:
        raise PydanticCustomError(
            "TOO_LONG",
            "A path has at most {limit} characters.",
            {"limit": MAX_PATH_LENGTH},
        )
    try:
        parse_path(text)
    except PathError as error:
        raise PydanticCustomError(
            "INVALID_PATH", "{reason}", {"reason": str(error)}
        ) from None
    return text


def _checked_pattern(pattern: str) -> str:
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PydanticCustomError(
            "TOO_LONG",
            "A pattern has at most {limit} characters.",
            {"limit": MAX_PATTERN_LENGTH},
        )
    if is_only_wildcards(pattern):
        raise PydanticCustomError(
            "INVALID",
            "A pattern needs text besides * and spaces; this one would match every "
            "user agent.",
        )
    return pattern


FieldPath = Annotated[str, AfterValidator(_checked_path)]
UserAgentPattern = Annotated[str, AfterValidator(_checked_pattern)]


class _Section(BaseModel):
    # Strict: a document is JSON, and "30" or "yes" there is a mistake to name,
    # not a value to guess at.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PiiRules(_Section):
    enabled: bool = True
    hash_fields: list[FieldPath] = Field(default_factory=list, max_length=MAX_FIELDS)
    redact_fields: list[FieldPath] = Field(default_factory=list, max_length=MAX_FIELDS)
    hash_algorithm: Literal["sha256"] = "sha256"


class BotFiltering(_Section):
    enabled: bool = True
    block_known_bots: bool = True
    block_empty_user_agent: bool = False
    custom_patterns: list[UserAgentPattern] = Field(
        default_factory=list, max_length=MAX_PATTERNS
    )


class Session(_Section):
    """Read by the data plane, which keeps sessions; processing here has no
    sessions to time out."""

    timeout_minutes: int = Field(30, ge=TIMEOUT_MINUTES[0], le=TIMEOUT_MINUTES[1])
    max_duration_hours: int = Field(
        24, ge=MAX_DURATION_HOURS[0], le=MAX_DURATION_HOURS[1]
    )
    track_session_start: bool = False
    track_session_end: bool = False


class CustomJs(_Section):
    enabled: bool = False
    # Checked when left out too: enabled code must be there.
    code: str = Field("", validate_default=True)
    description: str = Field("", max_length=MAX_DESCRIPTION_LENGTH)

    @field_validator("code")
    @classmethod
    def _code_fits(cls, code: str, info: ValidationInfo) -> str:
        if len(code.encode("utf-8", "surrogatepass")) > MAX_CODE_BYTES:
            raise PydanticCustomError(
                "TOO_LONG",
                "The code has at most {limit} bytes (UTF-8).",
                {"limit": MAX_CODE_BYTES},
            )
        if info.data.get("enabled") is True and not code.strip():
            raise PydanticCustomError(
                "REQUIRED",
                "Enabled custom JavaScript needs code defining "
                "function process(event, context).",
            )
        return code


class RoutingRule(_Section):
    condition: str
    action: Literal["drop", "pass"]

    @field_validator("condition")
    @classmethod
    def _condition_parses(cls, condition: str) -> str:
        if not condition.strip():
            raise PydanticCustomError("REQUIRED", "A rule needs a condition.")
        try:
            expressions.parse(condition)
        except expressions.ExpressionSyntaxError as error:
            raise PydanticCustomError(
                "INVALID_EXPRESSION", "{reason}", {"reason": error.message}
            ) from None
        return condition


class DataLayerConfig(_Section):
    """An organisation's data-layer document; every field has its default, so
    `DataLayerConfig()` is the data layer of an organisation that never set one."""

    pii_rules: PiiRules = Field(default_factory=PiiRules)
    bot_filtering: BotFiltering = Field(default_factory=BotFiltering)
    session: Session = Field(default_factory=Session)
    custom_js: CustomJs = Field(default_factory=CustomJs)
    routing_rules: list[RoutingRule] = Field(
        default_factory=list, max_length=MAX_ROUTING_RULES
    )


DEFAULT_DATA_LAYER: Final[dict[str, Any]] = DataLayerConfig().model_dump(mode="json")


class InvalidDataLayer(ValueError):
    """A document that is not a data layer; `problems` names every reason."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


def data_layer_problems(document: Any) -> list[FieldProblem]:
    """Every way `document` is not a data layer, all at once; [] if none.
    Fields are named from the document's root (`routing_rules.2.condition`).
    None stands for a document never set, which is the defaults."""
    try:
        parse_data_layer(document)
    except InvalidDataLayer as error:
        return error.problems
    return []


def parse_data_layer(document: Any) -> DataLayerConfig:
    """`document` as a data layer; None gives the defaults. Raises
    `InvalidDataLayer` (a `ValueError`) naming every problem."""
    if document is None:
        return DataLayerConfig()
    if isinstance(document, DataLayerConfig):
        return document
    if not isinstance(document, Mapping):
        raise InvalidDataLayer(
            [FieldProblem("", "INVALID", "A data layer is a JSON object.")]
        )
    try:
        return DataLayerConfig.model_validate(document)
    except PydanticValidationError as error:
        problems = [_problem(detail) for detail in error.errors(include_url=False)]
        raise InvalidDataLayer(problems) from None


_CODES: Final = {
    "missing": "REQUIRED",
    "extra_forbidden": "UNKNOWN_FIELD",
    "string_too_long": "TOO_LONG",
    "too_long": "TOO_MANY",
    "literal_error": "INVALID_CHOICE",
    "greater_than_equal": "OUT_OF_RANGE",
    "less_than_equal": "OUT_OF_RANGE",
}
_MESSAGES: Final = {
    "missing": "This field is required.",
    "extra_forbidden": "This field is not accepted here.",
    "model_type": "This field is a JSON object.",
    "list_type": "This field is a list.",
    "string_type": "This field is a text.",
    "bool_type": "This field is true or false.",
    "int_type": "This field is a whole number.",
}
_RANGES: Final = {
    "session.timeout_minutes": (
        f"The timeout is between {TIMEOUT_MINUTES[0]} and {TIMEOUT_MINUTES[1]} minutes."
    ),
    "session.max_duration_hours": (
        f"The maximum duration is between {MAX_DURATION_HOURS[0]} and "
        f"{MAX_DURATION_HOURS[1]} hours."
    ),
}


def _problem(detail: ErrorDetails) -> FieldProblem:
    kind = detail["type"]
    field = ".".join(str(part) for part in detail["loc"])
    # Our own validators name their code as the error's type.
    code = kind if kind.isupper() else _CODES.get(kind, "INVALID")
    if code == "OUT_OF_RANGE":
        message = _RANGES.get(field, detail["msg"])
    elif kind == "too_long":
        message = f"At most {detail.get('ctx', {}).get('max_length')} items."
    else:
        message = _MESSAGES.get(kind, detail["msg"])
    return FieldProblem(field, code, message)


# -- applying it


@dataclass(frozen=True)
class DataLayerResult:
    """What the data layer did with one event: kept it (`event`), dropped it
    (`dropped_reason`), or failed on it (`error`, from custom JavaScript).

    `notes` tell what else happened on the way, for people reading the result:
    a routing rule that passed the event, or one that could not be evaluated
    and so did not match.
    """

    event: dict[str, Any] | None
    dropped_reason: str | None
    error: StepFailure | None
    notes: tuple[str, ...] = ()

    @classmethod
    def processed(
        cls, event: dict[str, Any], notes: tuple[str, ...] = ()
    ) -> DataLayerResult:
        return cls(event, None, None, notes)

    @classmethod
    def dropped(cls, reason: str, notes: tuple[str, ...] = ()) -> DataLayerResult:
        return cls(None, reason, None, notes)

    @classmethod
    def failed(cls, error: StepFailure) -> DataLayerResult:
        return cls(None, None, error)

    @property
    def stage(self) -> Literal["processed", "dropped", "error"]:
        if self.error is not None:
            return "error"
        return "dropped" if self.event is None else "processed"


def apply_data_layer(
    config: DataLayerConfig,
    event: Mapping[str, Any],
    *,
    javascript: JavaScriptRunner | None,
    context: Mapping[str, Any],
    deadline: Deadline | None = None,
) -> DataLayerResult:
    """Runs bot filtering, PII, custom JavaScript and routing rules, in that
    order, on a copy of `event`. `javascript` runs `custom_js.code` with
    `context`; `deadline`, once passed, keeps that code from starting."""
    reason = bot_reason(config.bot_filtering, event)
    if reason is not None:
        return DataLayerResult.dropped(reason)

    current = apply_pii(config, event)

    if config.custom_js.enabled:
        try:
            returned = _run_custom_js(
                config.custom_js.code, current, javascript, context, deadline
            )
        except StepFailure as failure:
            return DataLayerResult.failed(failure)
        if returned is None:
            return DataLayerResult.dropped("custom_js: returned null")
        current = returned

    return _route(config.routing_rules, current)


def bot_reason(rules: BotFiltering, event: Mapping[str, Any]) -> str | None:
    """Why bot filtering drops `event`, or None when it keeps it. An event
    without a user agent is only ever dropped by `block_empty_user_agent`:
    there is nothing for the other rules to match."""
    if not rules.enabled:
        return None
    user_agent = user_agent_of(event)
    if not user_agent:
        if rules.block_empty_user_agent:
            return "bot_filtering: empty user agent"
        return None
    if rules.block_known_bots:
        name = known_bot(user_agent)
        if name is not None:
            return f"bot_filtering: known bot ({name})"
    pattern = matching_pattern(rules.custom_patterns, user_agent)
    if pattern is not None:
        return f"bot_filtering: custom pattern '{pattern}'"
    return None


def user_agent_of(event: Mapping[str, Any]) -> str:
    """The event's `context.userAgent`, trimmed; "" when absent, blank or not
    a text."""
    context = event.get("context")
    user_agent = context.get("userAgent") if isinstance(context, Mapping) else None
    return user_agent.strip() if isinstance(user_agent, str) else ""


def apply_pii(config: DataLayerConfig, event: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `event` with every `hash_fields` value hashed and every
    `redact_fields` path removed (an item of a list becomes null, so later items
    keep their places). Paths that lead nowhere, and nulls, are left alone."""
    copy = _copy_json(event)
    rules = config.pii_rules
    if not rules.enabled:
        return copy
    for text in rules.hash_fields:
        _hash_at(copy, parse_path(text))
    for text in rules.redact_fields:
        delete_path(copy, parse_path(text))
    return copy


def pii_digest(value: Any) -> str:
    """The lowercase hex SHA-256 of `value` trimmed and lowercased: a text as
    it is, any other value as its JSON (keys sorted, no spaces)."""
    text = value if isinstance(value, str) else _json_text(value)
    return hashlib.sha256(
        text.strip().lower().encode("utf-8", "surrogatepass")
    ).hexdigest()


def _hash_at(document: dict[str, Any], path: Path) -> None:
    value = get_path(document, path)
    if value is None or value is MISSING:
        return
    # The value is there, so its parent is an object or a list holding it.
    parent = get_path(document, path[:-1])
    parent[path[-1]] = pii_digest(value)


def _run_custom_js(
    code: str,
    event: dict[str, Any],
    javascript: JavaScriptRunner | None,
    context: Mapping[str, Any],
    deadline: Deadline | None,
) -> dict[str, Any] | None:
    if javascript is None:
        raise StepFailure(
            JAVASCRIPT_UNAVAILABLE, "Custom JavaScript cannot run in this process."
        )
    if deadline is not None and deadline.expired:
        raise StepFailure(
            TIMEOUT, "The time budget ran out before the custom JavaScript ran."
        )
    return javascript(code, event, context)


def _route(rules: list[RoutingRule], event: dict[str, Any]) -> DataLayerResult:
    """The first rule whose condition is TRUE decides; NULL, FALSE, any other
    value and an evaluation error do not match."""
    notes: list[str] = []
    for index, rule in enumerate(rules):
        where = f"routing_rules[{index}]"
        try:
            condition = expressions.parse(rule.condition)
            matched = expressions.evaluate(condition, event) is True
        except expressions.ExpressionEvaluationError as error:
            notes.append(f"{where}: not matched, {error.message}")
            continue
        if not matched:
            continue
        if rule.action == "drop":
            return DataLayerResult.dropped(f"{where}: drop", tuple(notes))
        notes.append(f"{where}: pass")
        break
    return DataLayerResult.processed(event, tuple(notes))


def _copy_json(value: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _copy_value(item) for key, item in value.items()}


def _copy_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return _copy_json(value)
    if isinstance(value, list | tuple):
        return [_copy_value(item) for item in value]
    return value


def _json_text(value: Any) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
