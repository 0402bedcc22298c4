"""The path of a test event through a pipeline's configuration, as stages.

    results = run_test_events(plan, events, javascript=…, deadline=…)

Each event is validated, passed through the organisation's data layer, then,
for every enabled attachment whose consent categories are granted, turned into
the vendor payload by the pinned revision's mapping and run through the
transformations that apply to it. Each step that happens is recorded as a
stage event (the JSON the live stream carries); nothing is sent anywhere.

The org's PII rules are applied to the `event` of every stage, `received` and
`rejected` included, so no stage shows what the data layer would hide; from
`processed` on, the event is the data layer's own output, its rules applied
once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ulid import ULID

from signal_admin.processing import mapping
from signal_admin.processing import transformations as steps
from signal_admin.processing.data_layer import (
    DataLayerConfig,
    apply_data_layer,
    apply_pii,
)
from signal_admin.processing.events import event_problems, with_message_id
from signal_admin.processing.runtime import (
    TIMEOUT,
    Deadline,
    JavaScriptRunner,
    StepFailure,
)

StageEvent = dict[str, Any]
ALWAYS_GRANTED = "essential"


@dataclass(frozen=True, slots=True)
class TransformationPlan:
    id: str
    name: str
    config: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class IntegrationPlan:
    """One enabled attachment, with its pinned revision's config (secrets
    already masked: no payload is built from connection fields) and the
    transformations that apply to it, in name order."""

    pipeline_integration_id: str
    integration_id: str
    vendor: str
    consent_categories: tuple[str, ...]
    config: Mapping[str, Any]
    transformations: tuple[TransformationPlan, ...] = ()


@dataclass(frozen=True, slots=True)
class PipelinePlan:
    org_id: str
    pipeline_id: str
    parameters: Mapping[str, Any]
    data_layer: DataLayerConfig
    integrations: tuple[IntegrationPlan, ...]


@dataclass(slots=True)
class EventResult:
    message_id: str
    stages: list[StageEvent] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "stages": self.stages}


def run_test_events(
    plan: PipelinePlan,
    events: Sequence[Any],
    *,
    javascript: JavaScriptRunner | None,
    deadline: Deadline,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[EventResult]:
    """One result per event, in order. Events the deadline leaves unreached
    get one `error` stage with code TIMEOUT."""
    run = _Run(plan, javascript, deadline, now)
    return [run.event(event) for event in events]


class _Run:
    def __init__(
        self,
        plan: PipelinePlan,
        javascript: JavaScriptRunner | None,
        deadline: Deadline,
        now: Callable[[], datetime],
    ) -> None:
        self.plan = plan
        self.javascript = javascript
        self.deadline = deadline
        self.now = now
        # Each config with the pipeline's parameters in place, made once per
        # request rather than once per event: the parameters and the pinned
        # configs are the same for every event of the request.
        self.configs: dict[str, Mapping[str, Any] | StepFailure] = {}
        for integration in plan.integrations:
            key = integration.pipeline_integration_id
            try:
                self.configs[key] = mapping.substitute_parameters(
                    integration.config, plan.parameters
                )
            except StepFailure as failure:
                self.configs[key] = failure

    def event(self, raw: Any) -> EventResult:
        message_id = _message_id(raw)
        result = EventResult(message_id)
        if isinstance(raw, Mapping):
            raw = with_message_id(raw, lambda: message_id)
        shown = self._shown(raw)
        if self.deadline.expired:
            result.stages.append(
                self._stage(message_id, "error", shown, error=_timeout())
            )
            return result
        result.stages.append(self._stage(message_id, "received", shown))

        with _timer() as elapsed:
            problems = event_problems(raw)
        if problems:
            error = {
                "code": "INVALID_EVENT",
                "message": f"The event is not valid: {len(problems)} problem(s).",
                "details": [problem.as_dict() for problem in problems],
            }
            result.stages.append(
                self._stage(message_id, "rejected", shown, error=error, ms=elapsed())
            )
            return result

        processed = self._data_layer(message_id, raw, result)
        if processed is not None:
            for integration in self.plan.integrations:
                result.stages.append(
                    self._integration(message_id, processed, integration)
                )
        return result

    def _data_layer(
        self, message_id: str, event: dict[str, Any], result: EventResult
    ) -> dict[str, Any] | None:
        context = {"org_id": self.plan.org_id, "pipeline_id": self.plan.pipeline_id}
        with _timer() as elapsed:
            outcome = apply_data_layer(
                self.plan.data_layer,
                event,
                javascript=self.javascript,
                context=context,
                deadline=self.deadline,
            )
        if outcome.error is not None:
            result.stages.append(
                self._stage(
                    message_id,
                    "error",
                    self._shown(event),
                    error=outcome.error.as_error(),
                    ms=elapsed(),
                )
            )
            return None
        if outcome.event is None:
            result.stages.append(
                self._stage(
                    message_id,
                    "dropped",
                    self._shown(event),
                    reason=outcome.dropped_reason,
                    ms=elapsed(),
                )
            )
            return None
        processed = outcome.event
        # What the routing rules did on the way (a rule that passed the event,
        # one that could not be computed) shows as the stage's reason.
        notes = "; ".join(outcome.notes) or None
        result.stages.append(
            # The data layer has applied the PII rules already: applying them
            # again would hash the hashes.
            self._stage(message_id, "processed", processed, reason=notes, ms=elapsed())
        )
        return processed

    def _integration(
        self, message_id: str, event: dict[str, Any], integration: IntegrationPlan
    ) -> StageEvent:
        # `event` is the data layer's output, its PII rules applied already.
        stage = _IntegrationStage(self, message_id, event, integration)
        if self.deadline.expired:
            return stage("error", error=_timeout())
        missing = _missing_consent(event, integration.consent_categories)
        if missing:
            return stage("skipped", reason=f"consent not granted: {', '.join(missing)}")
        with _timer() as elapsed:
            try:
                return self._deliverable(stage, event, integration, elapsed)
            except StepFailure as failure:
                return stage("error", error=failure.as_error(), ms=elapsed())

    def _deliverable(
        self,
        stage: _IntegrationStage,
        event: dict[str, Any],
        integration: IntegrationPlan,
        elapsed: Callable[[], float],
    ) -> StageEvent:
        config = self.configs[integration.pipeline_integration_id]
        if isinstance(config, StepFailure):
            raise StepFailure(config.code, config.message)
        built = mapping.build_payload(config, event)
        if built.payload is None:
            return stage("filtered", reason=built.reason, ms=elapsed())
        payload = built.payload
        for transformation in integration.transformations:
            outcome = steps.run_transformation(
                _compiled(transformation),
                payload,
                javascript=self.javascript,
                context={
                    "org_id": self.plan.org_id,
                    "pipeline_id": self.plan.pipeline_id,
                    "integration_id": integration.integration_id,
                    "pipeline_integration_id": integration.pipeline_integration_id,
                    "vendor": integration.vendor,
                    "transformation_id": transformation.id,
                },
                deadline=self.deadline,
            )
            if outcome.error is not None:
                error = {**outcome.error, "transformation_id": transformation.id}
                return stage("error", error=error, ms=elapsed())
            if outcome.dropped or outcome.output is None:
                where = (
                    f" at step {outcome.dropped_by}"
                    if outcome.dropped_by is not None
                    else ""
                )
                reason = f"transformation {transformation.name!r}{where}"
                return stage("filtered", reason=reason, ms=elapsed())
            payload = outcome.output
        return stage("transformed", payload=payload, ms=elapsed())

    def _shown(self, event: Any) -> Any:
        """`event` as a stage may show it: with the org's PII rules applied."""
        if not isinstance(event, Mapping):
            return event
        return apply_pii(self.plan.data_layer, event)

    def _stage(
        self,
        message_id: str,
        stage: str,
        event: Any,
        *,
        integration: IntegrationPlan | None = None,
        payload: Any = None,
        reason: str | None = None,
        error: dict[str, Any] | None = None,
        ms: float = 0.0,
    ) -> StageEvent:
        return {
            "id": f"evt_{ULID()}",
            "reason": reason,
            "org_id": self.plan.org_id,
            "pipeline_id": self.plan.pipeline_id,
            "message_id": message_id,
            "stage": stage,
            "integration_id": integration.integration_id if integration else None,
            "pipeline_integration_id": (
                integration.pipeline_integration_id if integration else None
            ),
            "vendor": integration.vendor if integration else None,
            "timestamp": _timestamp(self.now()),
            "duration_ms": round(ms, 3),
            "event": event,
            "payload": payload,
            "error": error,
        }


class _IntegrationStage:
    """Builds the stage events of one integration of one event."""

    def __init__(
        self, run: _Run, message_id: str, event: Any, integration: IntegrationPlan
    ) -> None:
        self.run, self.message_id = run, message_id
        self.event, self.integration = event, integration

    def __call__(
        self,
        stage: str,
        *,
        payload: Any = None,
        reason: str | None = None,
        error: dict[str, Any] | None = None,
        ms: float = 0.0,
    ) -> StageEvent:
        return self.run._stage(
            self.message_id,
            stage,
            self.event,
            integration=self.integration,
            payload=payload,
            reason=reason,
            error=error,
            ms=ms,
        )


def _compiled(transformation: TransformationPlan) -> steps.CompiledTransformation:
    """The saved steps, compiled; a document saved under older rules that it
    no longer passes is the integration's error, not the request's."""
    try:
        return steps.compiled(transformation.config)
    except steps.InvalidTransformationConfig as error:
        raise StepFailure(
            "INVALID_TRANSFORMATION",
            f"Transformation {transformation.name!r} no longer passes "
            f"validation: {error}",
        ) from None


def _missing_consent(event: Mapping[str, Any], categories: Sequence[str]) -> list[str]:
    """The categories the event's `context.consent` does not grant."""
    context = event.get("context")
    consent = context.get("consent") if isinstance(context, Mapping) else None
    granted = consent if isinstance(consent, Mapping) else {}
    return [
        category
        for category in categories
        if category != ALWAYS_GRANTED and granted.get(category) is not True
    ]


def _message_id(event: Any) -> str:
    given = event.get("messageId") if isinstance(event, Mapping) else None
    if isinstance(given, str) and given:
        return given
    generated: str = with_message_id({})["messageId"]
    return generated


def _timeout() -> dict[str, Any]:
    return {
        "code": TIMEOUT,
        "message": "The request's time budget ran out before this was processed.",
    }


@contextmanager
def _timer() -> Iterator[Callable[[], float]]:
    started = time.perf_counter()
    finished: list[float] = []

    def elapsed() -> float:
        end = finished[0] if finished else time.perf_counter()
        return (end - started) * 1000

    yield elapsed
    finished.append(time.perf_counter())


def _timestamp(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
