"""Transformation documents: every problem named at once by step and field, and
a run of the steps that reports what each did and never touches its input."""

import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signal_admin.errors import FieldProblem
from signal_admin.processing.runtime import Deadline, StepFailure
from signal_admin.processing.transformations import (
    CompiledTransformation,
    InvalidTransformationConfig,
    StepOutcome,
    TransformationOutcome,
    compiled,
    run_transformation,
    transformation_problems,
)


class FakeJavaScript:
    """Stands in for the sandbox: answers `result`, or raises `failure`."""

    def __init__(
        self,
        result: dict[str, Any] | None = None,
        failure: StepFailure | None = None,
    ) -> None:
        self.result = result
        self.failure = failure
        self.calls: list[tuple[str, Mapping[str, Any], Mapping[str, Any]]] = []

    def __call__(
        self, source: str, event: Mapping[str, Any], context: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        self.calls.append((source, event, context))
        if self.failure is not None:
            raise self.failure
        return self.result


class SteppingClock:
    """A monotonic clock that the test moves forward."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def payload() -> dict[str, Any]:
    return {
        "client_id": "anon-1",
        "events": [
            {
                "name": "purchase",
                "params": {"value": 84.5, "currency": "eur", "items": [{"id": "A"}]},
            }
        ],
        "tags": ["web"],
    }


def run(
    *steps: dict[str, Any],
    target: dict[str, Any] | None = None,
    javascript: FakeJavaScript | None = None,
    deadline: Deadline | None = None,
) -> TransformationOutcome:
    return run_transformation(
        compiled({"steps": list(steps)}),
        payload() if target is None else target,
        javascript=javascript,
        context={"org_id": "org_1"},
        deadline=deadline,
    )


def problems(*steps: Any) -> list[tuple[str, str]]:
    found = transformation_problems({"steps": list(steps)})
    return [(problem.field, problem.code) for problem in found]


# -- validation


def test_a_document_using_every_step_type_has_no_problems() -> None:
    config = {
        "steps": [
            {"type": "filter", "condition": "event.events[0].name = 'purchase'"},
            {
                "type": "map",
                "mappings": {
                    "id": "event.client_id",
                    "v": "event.events[0].params.value",
                },
                "on_missing": "null",
            },
            {"type": "transform", "field": "v", "expression": "event.v * 100"},
            {"type": "enrich", "fields": {"meta.source": "signal", "meta.n": [1, 2]}},
            {"type": "compute", "fields": {"stamp": "NOW()"}, "on_error": "fail"},
            {"type": "code", "source": "function process(e) { return e; }"},
        ]
    }

    assert transformation_problems(config) == []


def test_every_problem_is_named_at_once_by_step_and_field() -> None:
    found = problems(
        {"type": "filter"},
        {"type": "map", "mappings": {"params.value": "event.x +"}, "on_missing": "x"},
        {"type": "compute", "fields": {"a..b": "1"}, "on_error": "retry"},
        {"type": "transform", "field": "v", "expression": 3, "extra": True},
        {"type": "explode"},
        "not a step",
    )

    assert found == [
        ("steps.0.condition", "REQUIRED"),
        ("steps.1.mappings.params.value", "INVALID_EXPRESSION"),
        ("steps.1.on_missing", "INVALID_CHOICE"),
        ("steps.2.on_error", "INVALID_CHOICE"),
        ("steps.2.fields.a..b", "INVALID_PATH"),
        ("steps.3.extra", "UNKNOWN_FIELD"),
        ("steps.3.expression", "INVALID"),
        ("steps.4.type", "INVALID_CHOICE"),
        ("steps.5", "INVALID"),
    ]


def test_a_syntax_error_names_its_position() -> None:
    found = transformation_problems(
        {"steps": [{"type": "filter", "condition": "event.a = = 1"}]}
    )

    assert found == [
        FieldProblem(
            "steps.0.condition",
            "INVALID_EXPRESSION",
            "Expected a value, found '=' at position 10",
        )
    ]


def test_a_step_without_a_type_is_named() -> None:
    assert problems({"condition": "TRUE"}) == [("steps.0.type", "REQUIRED")]


def test_a_document_without_steps_is_named() -> None:
    found = transformation_problems({"stages": []})

    assert [(p.field, p.code) for p in found] == [
        ("stages", "UNKNOWN_FIELD"),
        ("steps", "REQUIRED"),
    ]


def test_a_document_that_is_not_an_object_is_invalid() -> None:
    found = transformation_problems([{"type": "filter"}])

    assert [(p.field, p.code) for p in found] == [("", "INVALID")]


def test_an_empty_list_of_steps_is_valid() -> None:
    assert transformation_problems({"steps": []}) == []


def test_more_than_a_hundred_steps_are_too_many() -> None:
    steps = [{"type": "enrich", "fields": {"a": 1}}] * 101

    assert problems(*steps) == [("steps", "TOO_MANY")]


def test_on_missing_belongs_to_map_steps_only() -> None:
    found = problems({"type": "compute", "fields": {"a": "1"}, "on_missing": "skip"})

    assert found == [("steps.0.on_missing", "UNKNOWN_FIELD")]


def test_a_step_needs_at_least_one_entry() -> None:
    found = problems({"type": "enrich", "fields": {}}, {"type": "map"})

    assert found == [("steps.0.fields", "TOO_FEW"), ("steps.1.mappings", "REQUIRED")]


def test_targets_of_one_step_may_not_contain_each_other() -> None:
    found = problems({"type": "enrich", "fields": {"params": {}, "params.value": 1}})

    assert found == [("steps.0.fields.params.value", "INVALID")]


def test_a_transform_needs_a_valid_field_path() -> None:
    found = problems({"type": "transform", "field": "items[x]", "expression": "1"})

    assert found == [("steps.0.field", "INVALID_PATH")]


def test_an_enrich_value_must_be_json() -> None:
    found = problems({"type": "enrich", "fields": {"ratio": float("nan")}})

    assert found == [("steps.0.fields.ratio", "INVALID")]


def test_javascript_source_is_limited_to_64_kib_of_utf8() -> None:
    three_byte_characters = "€" * (64 * 1024 // 3 + 1)
    source = f"// {three_byte_characters}\nfunction process(e) {{ return e; }}"

    assert problems({"type": "code", "source": source}) == [
        ("steps.0.source", "TOO_LONG")
    ]


def test_javascript_is_not_compiled_during_validation() -> None:
    assert problems({"type": "code", "source": "function process( {"}) == []


def test_an_empty_javascript_source_is_required() -> None:
    assert problems({"type": "code", "source": "  "}) == [
        ("steps.0.source", "REQUIRED")
    ]


# -- compiling


def test_the_same_config_is_compiled_once() -> None:
    config = {"steps": [{"type": "filter", "condition": "event.a = 'cache probe'"}]}

    first = compiled(config)
    second = compiled(copy.deepcopy(config))

    assert first is second


def test_a_config_with_problems_does_not_compile() -> None:
    with pytest.raises(InvalidTransformationConfig) as refused:
        compiled({"steps": [{"type": "filter"}]})

    assert isinstance(refused.value, ValueError)
    assert refused.value.problems == [
        FieldProblem("steps.0.condition", "REQUIRED", "An expression is required.")
    ]


def test_changing_a_config_after_compiling_changes_nothing() -> None:
    config: dict[str, Any] = {"steps": [{"type": "enrich", "fields": {"a": [1]}}]}
    transformation = compiled(config)

    config["steps"][0]["fields"]["a"].append(2)
    outcome = run_transformation(transformation, {}, javascript=None, context={})

    assert outcome.output == {"a": [1]}


# -- filter


def test_a_filter_keeps_the_object_when_its_condition_is_true() -> None:
    outcome = run({"type": "filter", "condition": "event.client_id = 'anon-1'"})

    assert outcome.output == payload()
    assert outcome.steps[0].status == "ok"


@pytest.mark.parametrize("condition", ["event.client_id = 'other'", "event.nope = 1"])
def test_a_filter_drops_the_object_when_its_condition_is_false_or_null(
    condition: str,
) -> None:
    outcome = run(
        {"type": "filter", "condition": condition},
        {"type": "enrich", "fields": {"never": True}},
    )

    assert outcome.output is None
    assert outcome.dropped
    assert outcome.dropped_by == 0
    assert [(s.index, s.status, s.error) for s in outcome.steps] == [
        (0, "dropped", None)
    ]


def test_a_filter_condition_that_is_not_a_truth_value_is_an_error() -> None:
    outcome = run({"type": "filter", "condition": "event.client_id"})

    assert outcome.steps[0].status == "error"
    assert outcome.steps[0].error == {
        "code": "EXPRESSION_ERROR",
        "message": "condition: gave a text, not TRUE, FALSE or NULL",
    }
    assert outcome.output == payload()


# -- map


def test_a_map_builds_a_new_object_from_the_current_one() -> None:
    outcome = run(
        {
            "type": "map",
            "mappings": {
                "user": "event.client_id",
                "order.value": "event.events[0].params.value * 2",
                "order.currency": "UPPER(event.events[0].params.currency)",
            },
        }
    )

    assert outcome.output == {
        "user": "anon-1",
        "order": {"value": 169.0, "currency": "EUR"},
    }


def test_a_map_skips_null_values_by_default() -> None:
    outcome = run({"type": "map", "mappings": {"a": "event.client_id", "b": "event.x"}})

    assert outcome.output == {"a": "anon-1"}


def test_a_map_with_on_missing_null_writes_null() -> None:
    outcome = run({"type": "map", "mappings": {"b": "event.x"}, "on_missing": "null"})

    assert outcome.output == {"b": None}


def test_a_map_with_on_missing_error_fails_the_step() -> None:
    outcome = run(
        {"type": "map", "mappings": {"b": "event.x.y"}, "on_missing": "error"}
    )

    assert outcome.steps[0].error == {
        "code": "MISSING_VALUE",
        "message": "b: event.x.y gave NULL",
    }
    assert outcome.output == payload()


# -- transform, enrich, compute


def test_a_transform_replaces_one_value() -> None:
    outcome = run(
        {
            "type": "transform",
            "field": "events[0].params.currency",
            "expression": "UPPER(event.events[0].params.currency)",
        }
    )

    assert outcome.output is not None
    assert outcome.output["events"][0]["params"]["currency"] == "EUR"


def test_a_transform_leaves_a_field_that_is_not_there_alone() -> None:
    outcome = run({"type": "transform", "field": "user_id", "expression": "'x'"})

    assert outcome.output == payload()
    assert outcome.steps[0].status == "ok"


def test_an_enrich_sets_constant_values() -> None:
    outcome = run(
        {
            "type": "enrich",
            "fields": {"consent.ads": False, "events[0].params.tier": "gold"},
        }
    )

    assert outcome.output is not None
    assert outcome.output["consent"] == {"ads": False}
    assert outcome.output["events"][0]["params"]["tier"] == "gold"


def test_a_compute_sets_values_from_expressions() -> None:
    outcome = run(
        {
            "type": "compute",
            "fields": {
                "events[0].params.value_cents": "event.events[0].params.value * 100",
                "label": "CONCAT(event.client_id, '/', event.events[0].name)",
            },
        }
    )

    assert outcome.output is not None
    assert outcome.output["events"][0]["params"]["value_cents"] == 8450
    assert outcome.output["label"] == "anon-1/purchase"


def test_a_compute_reads_the_object_as_the_step_found_it() -> None:
    outcome = run(
        {"type": "compute", "fields": {"a": "1", "b": "COALESCE(event.a, 0) + 1"}},
        target={},
    )

    assert outcome.output == {"a": 1, "b": 1}


def test_a_transform_turns_an_iso_timestamp_into_ga4_microseconds() -> None:
    outcome = run(
        {
            "type": "transform",
            "field": "timestamp_micros",
            "expression": "DATE_FORMAT(event.timestamp_micros, 'epoch_micros')",
        },
        target={"timestamp_micros": "2026-03-01T10:15:00.250Z"},
    )

    assert outcome.output == {"timestamp_micros": 1772360100250000}


def test_now_reads_the_given_clock() -> None:
    transformation = compiled(
        {"steps": [{"type": "compute", "fields": {"at": "NOW()"}}]}
    )

    outcome = run_transformation(
        transformation,
        {},
        javascript=None,
        context={},
        clock=lambda: datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
    )

    assert outcome.output == {"at": "2026-03-01T12:00:00.000Z"}


# -- code


def test_a_code_step_replaces_the_object_with_what_the_javascript_returns() -> None:
    javascript = FakeJavaScript(result={"rewritten": True})

    outcome = run(
        {"type": "code", "source": "function process(e) { return {rewritten: true}; }"},
        javascript=javascript,
    )

    assert outcome.output == {"rewritten": True}
    assert javascript.calls == [
        (
            "function process(e) { return {rewritten: true}; }",
            payload(),
            {"org_id": "org_1"},
        )
    ]


def test_a_code_step_returning_null_drops_the_object() -> None:
    outcome = run(
        {"type": "code", "source": "function process(e) { return null; }"},
        javascript=FakeJavaScript(result=None),
    )

    assert outcome.dropped
    assert outcome.dropped_by == 0
    assert outcome.steps[0].status == "dropped"


def test_a_code_step_without_a_javascript_runner_is_an_error() -> None:
    outcome = run({"type": "code", "source": "function process(e) { return e; }"})

    assert outcome.steps[0].status == "error"
    assert outcome.steps[0].error is not None
    assert outcome.steps[0].error["code"] == "JAVASCRIPT_UNAVAILABLE"


# -- on_error, for every way a step can fail

FAILING_STEPS: dict[str, tuple[dict[str, Any], str]] = {
    "division by zero": (
        {"type": "compute", "fields": {"ratio": "event.events[0].params.value / 0"}},
        "EXPRESSION_ERROR",
    ),
    "text plus number": (
        {
            "type": "transform",
            "field": "client_id",
            "expression": "event.client_id + 1",
        },
        "EXPRESSION_ERROR",
    ),
    "path write conflict": (
        {"type": "enrich", "fields": {"tags.first": "x"}},
        "PATH_CONFLICT",
    ),
    "javascript failure": (
        {"type": "code", "source": "function process(e) { throw new Error('no'); }"},
        "JAVASCRIPT_ERROR",
    ),
}


def failing_run(kind: str, on_error: str | None) -> TransformationOutcome:
    step, _ = FAILING_STEPS[kind]
    if on_error is not None:
        step = {**step, "on_error": on_error}
    javascript = FakeJavaScript(failure=StepFailure("JAVASCRIPT_ERROR", "Error: no"))
    return run(
        step,
        {"type": "enrich", "fields": {"after": True}},
        javascript=javascript,
    )


@pytest.mark.parametrize("kind", FAILING_STEPS)
def test_on_error_skip_goes_on_with_the_object_unchanged(kind: str) -> None:
    outcome = failing_run(kind, "skip")

    assert outcome.output == {**payload(), "after": True}
    assert not outcome.dropped
    assert outcome.error is None
    assert [(s.status, s.error and s.error["code"]) for s in outcome.steps] == [
        ("error", FAILING_STEPS[kind][1]),
        ("ok", None),
    ]


@pytest.mark.parametrize("kind", FAILING_STEPS)
def test_on_error_drop_drops_the_object(kind: str) -> None:
    outcome = failing_run(kind, "drop")

    assert outcome.output is None
    assert outcome.dropped
    assert outcome.dropped_by == 0
    assert outcome.error is None
    assert [(s.status, s.error and s.error["code"]) for s in outcome.steps] == [
        ("dropped", FAILING_STEPS[kind][1]),
    ]


@pytest.mark.parametrize("kind", FAILING_STEPS)
def test_on_error_fail_stops_the_run_with_the_error(kind: str) -> None:
    outcome = failing_run(kind, "fail")

    assert outcome.output is None
    assert not outcome.dropped
    assert outcome.error is not None
    assert outcome.error["code"] == FAILING_STEPS[kind][1]
    assert outcome.error["message"].startswith("Step 0 (")
    assert [s.status for s in outcome.steps] == ["error"]


def test_skip_is_the_default_on_error() -> None:
    outcome = failing_run("division by zero", None)

    assert outcome.output == {**payload(), "after": True}
    assert outcome.steps[0].status == "error"


def test_an_expression_error_names_the_field_and_position() -> None:
    outcome = failing_run("division by zero", None)

    assert outcome.steps[0].error == {
        "code": "EXPRESSION_ERROR",
        "message": "ratio: Division by zero at position 29",
    }


def test_a_step_that_fails_halfway_leaves_nothing_of_its_writes() -> None:
    outcome = run({"type": "enrich", "fields": {"first": 1, "tags.second": 2}})

    assert outcome.steps[0].status == "error"
    assert outcome.output == payload()


# -- the run as a whole


def test_each_step_gets_the_previous_steps_output() -> None:
    outcome = run(
        {"type": "enrich", "fields": {"n": 1}},
        {"type": "compute", "fields": {"n": "event.n + 1"}},
        {"type": "filter", "condition": "event.n = 2"},
    )

    assert outcome.output is not None
    assert outcome.output["n"] == 2
    assert [(s.index, s.type, s.status) for s in outcome.steps] == [
        (0, "enrich", "ok"),
        (1, "compute", "ok"),
        (2, "filter", "ok"),
    ]


def test_a_run_never_changes_the_object_it_is_given() -> None:
    target = payload()

    run(
        {"type": "transform", "field": "client_id", "expression": "'changed'"},
        {"type": "enrich", "fields": {"events[0].params.items[0].id": "B"}},
        {"type": "compute", "fields": {"tags[1]": "'more'"}},
        {"type": "map", "mappings": {"events": "event.events"}},
        {"type": "enrich", "fields": {"events[0].name": "refund"}},
        target=target,
    )

    assert target == payload()


def test_the_output_shares_nothing_with_the_object_given() -> None:
    target = payload()

    outcome = run(
        {"type": "map", "mappings": {"events": "event.events"}}, target=target
    )
    assert outcome.output is not None
    outcome.output["events"][0]["name"] = "changed"

    assert target["events"][0]["name"] == "purchase"


def test_an_expired_deadline_stops_the_run_before_the_next_step() -> None:
    clock = SteppingClock()
    deadline = Deadline(1.0, clock=clock)

    def slow_javascript(
        source: str, event: Mapping[str, Any], context: Mapping[str, Any]
    ) -> dict[str, Any]:
        clock.now = 2.0
        return dict(event)

    outcome = run_transformation(
        compiled(
            {
                "steps": [
                    {"type": "code", "source": "function process(e) { return e; }"},
                    {"type": "enrich", "fields": {"late": True}},
                ]
            }
        ),
        payload(),
        javascript=slow_javascript,
        context={},
        deadline=deadline,
    )

    assert outcome.output is None
    assert not outcome.dropped
    assert outcome.error == {
        "code": "TIMEOUT",
        "message": "The time budget ran out before step 1 (enrich).",
    }
    assert [s.status for s in outcome.steps] == ["ok"]


def test_an_outcome_reads_as_an_item_of_the_test_answer() -> None:
    outcome = TransformationOutcome(
        output=None,
        dropped=True,
        steps=[StepOutcome(0, "filter", "dropped", 0.02, None)],
        error=None,
        dropped_by=0,
    )

    assert outcome.as_dict() == {
        "output": None,
        "dropped": True,
        "steps": [
            {
                "index": 0,
                "type": "filter",
                "status": "dropped",
                "duration_ms": 0.02,
                "error": None,
            }
        ],
        "error": None,
    }


def test_every_step_reports_how_long_it_took() -> None:
    outcome = run({"type": "enrich", "fields": {"a": 1}})

    assert isinstance(outcome.steps[0].duration_ms, float)
    assert outcome.steps[0].duration_ms >= 0


def test_compiled_transformations_can_be_run_many_times() -> None:
    transformation: CompiledTransformation = compiled(
        {"steps": [{"type": "compute", "fields": {"n": "COALESCE(event.n, 0) + 1"}}]}
    )

    first = run_transformation(transformation, {}, javascript=None, context={})
    second = run_transformation(transformation, {"n": 5}, javascript=None, context={})

    assert (first.output, second.output) == ({"n": 1}, {"n": 6})


# -- any input

WORDS = st.sampled_from(
    ["type", "filter", "map", "transform", "enrich", "compute", "code", "on_error",
     "skip", "drop", "fail", "condition", "mappings", "on_missing", "null", "field",
     "expression", "fields", "source", "a.b", "a[0]", "event.a + 1", "event.a = 1"]
)  # fmt: skip
DOCUMENT_PARTS = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=6)
    | WORDS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(WORDS | st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(DOCUMENT_PARTS, max_size=4),
    target=st.dictionaries(WORDS, DOCUMENT_PARTS, max_size=3),
)
def test_any_document_either_has_problems_or_runs(
    steps: list[Any], target: dict[str, Any]
) -> None:
    config = {"steps": steps}
    found = transformation_problems(config)

    if found:
        with pytest.raises(InvalidTransformationConfig):
            compiled(config)
    else:
        outcome = run_transformation(
            compiled(config), target, javascript=FakeJavaScript(), context={}
        )
        assert outcome.error is None
