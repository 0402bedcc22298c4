"""The JavaScript sandbox of `code` steps: what `process` gets and returns, its
limits, what is removed, and that nothing carries over between calls."""

from __future__ import annotations

import copy
import hashlib
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from signal_admin.processing.runtime import Deadline, StepFailure
from signal_admin.processing.sandbox import (
    JS_ERROR,
    JS_INVALID_RESULT,
    JS_INVALID_SOURCE,
    JS_MEMORY_LIMIT,
    JS_TIMEOUT,
    MAX_RESULT_DEPTH,
    Sandbox,
    SandboxError,
    SandboxLimits,
)

IDENTITY = "function process(event, context) { return event; }"
ENDLESS_LOOP = "function process(event) { while (true) {} }"
MEMORY_BOMB = """
function process(event) {
  const kept = [];
  while (true) kept.push('x'.repeat(64) + kept.length);
}
"""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    """The time limit is wall-clock time, which a busy test machine can use up
    on thread scheduling alone; tests of anything but that limit get a long
    one. The memory limit, checked when V8 collects garbage, stays 8 MB."""
    unhurried = Sandbox(SandboxLimits(time_limit_ms=5_000))
    yield unhurried
    unhurried.close()


@pytest.fixture(scope="module")
def default_sandbox() -> Iterator[Sandbox]:
    shared = Sandbox()
    yield shared
    shared.close()


@pytest.fixture(scope="module")
def brisk_sandbox() -> Iterator[Sandbox]:
    """Endless code times out quickly here, while plain calls still have
    room for a busy test machine."""
    brisk = Sandbox(SandboxLimits(time_limit_ms=250))
    yield brisk
    brisk.close()


def run_error(
    sandbox: Sandbox,
    source: str,
    event: dict[str, Any] | None = None,
    *,
    owner: str = "org_errors",
    time_limit_ms: float | None = None,
) -> SandboxError:
    with pytest.raises(SandboxError) as caught:
        sandbox.run(owner, source, event or {}, {}, time_limit_ms=time_limit_ms)
    return caught.value


def idle_isolates(sandbox: Sandbox, owner: str, source: str) -> int:
    key = (owner, hashlib.sha256(source.encode()).hexdigest())
    pool = sandbox._pools.get(key)
    return 0 if pool is None else len(pool.idle)


def cpu_seconds_while_idle(seconds: float = 0.5) -> float:
    """CPU time this process uses, on all its threads, while the test sleeps."""
    started = time.process_time()
    time.sleep(seconds)
    return time.process_time() - started


def nested_result(depth: int) -> str:
    """A source whose `process` returns objects nested `depth` levels deep."""
    return f"""
    function process(event) {{
      let value = {{}};
      for (let level = 1; level < {depth}; level++) value = {{ value }};
      return value;
    }}
    """


class TestProcess:
    def test_returns_the_new_event(self, sandbox: Sandbox) -> None:
        source = """
        function process(event, context) {
          return { ...event, region: context.region, total: event.price * 2 };
        }
        """

        result = sandbox.run("org_a", source, {"price": 21}, {"region": "eu"})

        assert result == {"price": 21, "region": "eu", "total": 42}

    def test_null_drops_the_event(self, sandbox: Sandbox) -> None:
        source = "function process(event) { return event.bot ? null : event; }"

        assert sandbox.run("org_a", source, {"bot": True}, {}) is None
        assert sandbox.run("org_a", source, {"bot": False}, {}) == {"bot": False}

    def test_process_may_be_declared_as_a_constant(self, sandbox: Sandbox) -> None:
        source = "const process = (event) => ({ seen: true });"

        assert sandbox.run("org_a", source, {}, {}) == {"seen": True}

    def test_the_callers_event_is_not_mutated(self, sandbox: Sandbox) -> None:
        source = """
        function process(event) {
          event.properties.items.push('added');
          delete event.userId;
          return event;
        }
        """
        event = {"userId": "u1", "properties": {"items": ["a"]}}
        original = copy.deepcopy(event)

        result = sandbox.run("org_a", source, event, {})

        assert event == original
        assert result == {"properties": {"items": ["a", "added"]}}

    def test_the_context_is_read_only(self, sandbox: Sandbox) -> None:
        source = """
        function process(event, context) {
          context.pipeline.name = 'changed';
          context.added = 1;
          return { name: context.pipeline.name, added: context.added ?? null };
        }
        """

        result = sandbox.run("org_a", source, {}, {"pipeline": {"name": "web"}})

        assert result == {"name": "web", "added": None}

    def test_strict_code_that_writes_the_context_fails(self, sandbox: Sandbox) -> None:
        source = """'use strict';
        function process(event, context) { context.name = 'x'; return event; }
        """

        error = run_error(sandbox, source)

        assert error.code == JS_ERROR
        assert "TypeError" in error.message

    def test_assigning_inherited_names_still_works(self, sandbox: Sandbox) -> None:
        source = """'use strict';
        class CheckoutError extends Error {
          constructor(message) { super(message); this.name = 'CheckoutError'; }
        }
        function process(event) {
          const copy = {};
          for (const key of Object.keys(event)) copy[key] = event[key];
          copy.toString = 'plain';
          try { throw new CheckoutError('no cart'); }
          catch (error) { copy.error = String(error); }
          return copy;
        }
        """

        result = sandbox.run("org_a", source, {"constructor": "c"}, {})

        assert result == {
            "constructor": "c",
            "toString": "plain",
            "error": "CheckoutError: no cart",
        }

    def test_the_runner_is_bound_to_its_owner(self, sandbox: Sandbox) -> None:
        run = sandbox.runner("org_runner", time_limit_ms=Deadline.none().remaining_ms)

        assert run(IDENTITY, {"a": 1}, {}) == {"a": 1}


class TestErrors:
    def test_a_thrown_error_names_the_error_and_its_line(
        self, sandbox: Sandbox
    ) -> None:
        source = "function process(event) {\n  return event.missing.field;\n}"

        error = run_error(sandbox, source)

        assert error.code == JS_ERROR
        assert error.message.startswith("TypeError: Cannot read properties of")
        assert "(line 2, column" in error.message

    def test_a_thrown_value_is_the_message(self, sandbox: Sandbox) -> None:
        error = run_error(sandbox, "function process() { throw 'no consent'; }")

        assert (error.code, error.message) == (JS_ERROR, "no consent")

    def test_a_sandbox_error_is_a_step_failure(self, sandbox: Sandbox) -> None:
        error = run_error(sandbox, "function process() { throw new Error('x'); }")

        assert isinstance(error, StepFailure)
        assert error.as_error() == {
            "code": JS_ERROR,
            "message": "Error: x (line 1, column 28)",
        }

    @pytest.mark.parametrize(
        ("returned", "expected"),
        [
            ("[event]", "not an array"),
            ("42", "not a number"),
            ("'text'", "not a string"),
            ("undefined", "process returned undefined"),
            ("new Map()", "not a Map"),
            ("Promise.resolve(event)", "not a Promise"),
        ],
    )
    def test_a_result_that_is_not_an_object_or_null_is_invalid(
        self, sandbox: Sandbox, returned: str, expected: str
    ) -> None:
        source = f"function process(event) {{ return {returned}; }}"

        error = run_error(sandbox, source)

        assert error.code == JS_INVALID_RESULT
        assert expected in error.message

    @pytest.mark.parametrize(
        "body", ["const e = {}; e.self = e; return e;", "return { big: 10n };"]
    )
    def test_a_result_that_is_not_json_is_invalid(
        self, sandbox: Sandbox, body: str
    ) -> None:
        error = run_error(sandbox, f"function process(event) {{ {body} }}")

        assert error.code == JS_INVALID_RESULT
        assert "cannot be written as JSON" in error.message

    @pytest.mark.parametrize("depth", [MAX_RESULT_DEPTH + 1, 1000])
    def test_a_result_nested_too_deep_is_invalid(
        self, sandbox: Sandbox, depth: int
    ) -> None:
        error = run_error(sandbox, nested_result(depth))

        assert error.code == JS_INVALID_RESULT
        assert f"nested more than {MAX_RESULT_DEPTH} levels" in error.message

    def test_a_result_nested_up_to_the_limit_is_accepted(
        self, sandbox: Sandbox
    ) -> None:
        result = sandbox.run("org_a", nested_result(MAX_RESULT_DEPTH), {}, {})

        depth = 0
        while result is not None:
            depth += 1
            result = result.get("value")
        assert depth == MAX_RESULT_DEPTH

    @pytest.mark.parametrize(
        "returned",
        [
            "{ text: 'ok \\ud800' }",
            "{ ['key\\udc00']: 1 }",
            "{ list: ['😀'.slice(0, 1)] }",
        ],
    )
    def test_a_result_with_a_lone_surrogate_is_invalid(
        self, sandbox: Sandbox, returned: str
    ) -> None:
        error = run_error(sandbox, f"function process() {{ return {returned}; }}")

        assert error.code == JS_INVALID_RESULT
        assert "must be valid Unicode" in error.message

    def test_text_that_only_looks_like_a_surrogate_escape_is_kept(
        self, sandbox: Sandbox
    ) -> None:
        source = r"""
        function process() {
          return { emoji: '😀', escaped: '\\ud800', brackets: '[[{{' };
        }
        """

        result = sandbox.run("org_a", source, {}, {})

        assert result == {"emoji": "😀", "escaped": "\\ud800", "brackets": "[[{{"}

    @pytest.mark.parametrize(
        ("source", "expected"),
        [
            ("function process() { throw 'bad \\ud800'; }", (JS_ERROR, "bad \ufffd")),
            (
                "class A { static name = 'A\\ud800'; }\n"
                "function process() { return new A(); }",
                (
                    JS_INVALID_RESULT,
                    "process must return a plain object or null, not a A\ufffd",
                ),
            ),
        ],
    )
    def test_a_lone_surrogate_in_a_message_is_replaced(
        self, sandbox: Sandbox, source: str, expected: tuple[str, str]
    ) -> None:
        error = run_error(sandbox, source)

        assert (error.code, error.message) == expected

    def test_a_stack_trace_shows_only_user_code(self, sandbox: Sandbox) -> None:
        source = """function fail() {
          return new Error('where').stack;
        }
        function process() { return { stack: [0].map(fail)[0] }; }
        """

        result = sandbox.run("org_a", source, {}, {})

        assert result is not None
        assert result["stack"].splitlines() == [
            "Error: where",
            "    at fail (code.js:2:18)",
            "    at Array.map (<anonymous>)",
            "    at process (code.js:4:50)",
        ]

    def test_the_sandbox_source_is_hidden(self, sandbox: Sandbox) -> None:
        source = """
        function process() {
          const getter = Object.getOwnPropertyDescriptor(Object.prototype, 'toString');
          return {
            entry: String(__sandbox.run),
            accessor: String(getter.get),
            own: String(function own() { return 1; }),
          };
        }
        """

        result = sandbox.run("org_a", source, {}, {})

        assert result == {
            "entry": "function () { [native code] }",
            "accessor": "function () { [native code] }",
            "own": "function own() { return 1; }",
        }

    def test_a_syntax_error_is_an_invalid_source(self, sandbox: Sandbox) -> None:
        error = run_error(sandbox, "function process(event) {\n  return event.\n}")

        assert error.code == JS_INVALID_SOURCE
        assert error.message == "SyntaxError: Unexpected token '}' (line 3, column 1)"

    def test_a_missing_brace_is_the_end_of_the_source(self, sandbox: Sandbox) -> None:
        error = run_error(sandbox, "function process(e, c) { return e; ")

        assert error.code == JS_INVALID_SOURCE
        assert error.message == (
            "SyntaxError: Unexpected end of input (line 1, column 36)"
        )

    def test_an_extra_brace_is_named_where_it_is(self, sandbox: Sandbox) -> None:
        source = "function process(event) {\n  return event;\n}}\nconst x = 1;"

        error = run_error(sandbox, source)

        assert error.code == JS_INVALID_SOURCE
        assert error.message == "SyntaxError: Unexpected token '}' (line 3, column 2)"

    def test_a_bad_token_names_its_line_and_column(self, sandbox: Sandbox) -> None:
        source = "function process(event) {\n  const a = 1;\n  let b = a ** ;\n}"

        error = run_error(sandbox, source)

        assert error.code == JS_INVALID_SOURCE
        assert error.message == "SyntaxError: Unexpected token ';' (line 3, column 16)"

    def test_a_strict_mode_error_is_named(self, sandbox: Sandbox) -> None:
        source = "'use strict';\nwith (Math) {}\nfunction process(event) {"

        error = run_error(sandbox, source)

        assert error.message == (
            "SyntaxError: Strict mode code may not include a with statement "
            "(line 2, column 1)"
        )

    def test_a_source_that_only_a_function_refuses_never_runs(
        self, sandbox: Sandbox
    ) -> None:
        # Parsed on its own, without its "use strict", this source is a valid
        # script that throws at once; checking it must not run it.
        source = "'use strict';\nthrow new Error('it ran');\nwith (Math) {}"

        error = run_error(sandbox, source)

        assert error.message == (
            "SyntaxError: Strict mode code may not include a with statement "
            "(line 3, column 1)"
        )

    def test_user_code_cannot_use_the_syntax_check(self, sandbox: Sandbox) -> None:
        source = """
        function process() {
          try {
            __sandbox.check('globalThis.leaked = 1;');
            return { refused: false };
          } catch (error) {
            return { refused: error instanceof TypeError };
          }
        }
        """

        assert sandbox.run("org_a", source, {}, {}) == {"refused": True}

    def test_a_top_level_return_is_valid(self, sandbox: Sandbox) -> None:
        source = "if (false) return;\n" + IDENTITY

        assert sandbox.run("org_a", source, {"a": 1}, {}) == {"a": 1}

    def test_a_source_without_process_is_invalid(self, sandbox: Sandbox) -> None:
        error = run_error(sandbox, "function handle(event) { return event; }")

        assert error.code == JS_INVALID_SOURCE

    def test_a_source_over_the_size_limit_is_invalid(self, sandbox: Sandbox) -> None:
        padding = "// " + "é" * 33_000 + "\n"

        error = run_error(sandbox, padding + IDENTITY)

        assert error.code == JS_INVALID_SOURCE
        assert "at most 65536" in error.message


class TestLimits:
    def test_an_endless_loop_times_out(self, default_sandbox: Sandbox) -> None:
        error = run_error(default_sandbox, ENDLESS_LOOP, owner="org_limits")

        assert error.code == JS_TIMEOUT

    def test_the_callers_budget_lowers_the_limit(self, sandbox: Sandbox) -> None:
        error = run_error(sandbox, ENDLESS_LOOP, owner="org_limits", time_limit_ms=20)

        assert error.code == JS_TIMEOUT

    def test_an_exhausted_budget_runs_nothing(self, sandbox: Sandbox) -> None:
        error = run_error(sandbox, IDENTITY, owner="org_limits", time_limit_ms=0)

        assert error.code == JS_TIMEOUT

    def test_the_callers_budget_never_raises_the_limit(
        self, default_sandbox: Sandbox
    ) -> None:
        error = run_error(
            default_sandbox, ENDLESS_LOOP, owner="org_limits", time_limit_ms=60_000
        )

        assert error.code == JS_TIMEOUT
        assert error.message == "the code ran longer than 50 ms"

    def test_a_memory_bomb_hits_the_memory_limit(self, sandbox: Sandbox) -> None:
        error = run_error(sandbox, MEMORY_BOMB, owner="org_limits")

        assert error.code == JS_MEMORY_LIMIT

    def test_binary_data_has_a_budget_per_call(self, sandbox: Sandbox) -> None:
        source = """
        function process(event) {
          const kept = [];
          while (true) kept.push(new Uint8Array(1024 * 1024).fill(1));
        }
        """

        error = run_error(sandbox, source)

        assert error.code == JS_MEMORY_LIMIT
        assert "Binary data is limited to 8388608 bytes per call" in error.message

    def test_binary_data_copies_count_against_the_budget(
        self, sandbox: Sandbox
    ) -> None:
        source = """
        function process(event) {
          const original = new Uint8Array(4 * 1024 * 1024);
          const kept = [];
          while (true) kept.push(original.slice().buffer.slice(0));
        }
        """

        error = run_error(sandbox, source)

        assert error.code == JS_MEMORY_LIMIT

    def test_typed_arrays_within_the_budget_work(self, sandbox: Sandbox) -> None:
        source = """
        class Bytes extends Uint8Array {}
        function process(event) {
          const bytes = Bytes.from(event.values);
          const view = new DataView(bytes.buffer);
          return {
            doubled: Array.from(bytes.map((b) => b * 2)),
            first: view.getUint8(0),
            subclass: bytes.slice(1) instanceof Bytes,
            typed: bytes instanceof Uint8Array,
          };
        }
        """

        result = sandbox.run("org_binary", source, {"values": [1, 2, 3]}, {})

        assert result == {
            "doubled": [2, 4, 6],
            "first": 1,
            "subclass": True,
            "typed": True,
        }

    def test_the_code_works_again_after_a_memory_bomb(self, sandbox: Sandbox) -> None:
        source = """
        function process(event) {
          const kept = [];
          while (event.bomb) kept.push('x'.repeat(64) + kept.length);
          return { kept: kept.length };
        }
        """
        run_error(sandbox, source, {"bomb": True}, owner="org_bomb")

        result = sandbox.run("org_bomb", source, {"bomb": False}, {})

        assert result == {"kept": 0}
        assert idle_isolates(sandbox, "org_bomb", source) == 1

    def test_the_same_code_works_after_a_timeout_and_a_memory_bomb(
        self, sandbox: Sandbox
    ) -> None:
        source = """
        function process(event) {
          if (event.mode === 'loop') while (true) {}
          if (event.mode === 'bomb') {
            const kept = [];
            while (true) kept.push('x'.repeat(64) + kept.length);
          }
          return { mode: event.mode };
        }
        """
        timeout = run_error(
            sandbox, source, {"mode": "loop"}, owner="org_recovers", time_limit_ms=50
        )
        memory = run_error(sandbox, source, {"mode": "bomb"}, owner="org_recovers")

        result = sandbox.run("org_recovers", source, {"mode": "plain"}, {})

        assert (timeout.code, memory.code) == (JS_TIMEOUT, JS_MEMORY_LIMIT)
        assert result == {"mode": "plain"}

    def test_an_isolate_that_hit_a_limit_is_not_pooled(self, sandbox: Sandbox) -> None:
        run_error(sandbox, ENDLESS_LOOP, owner="org_discard", time_limit_ms=50)

        assert idle_isolates(sandbox, "org_discard", ENDLESS_LOOP) == 0


class TestQueuedWork:
    """Promise callbacks run after `process` returns; they count as part of the
    call, and nothing of them survives it."""

    @pytest.mark.parametrize(
        "endless",
        [
            "function loop() { Promise.resolve().then(loop); } loop();",
            "(async () => { for (;;) await null; })();",
            "Promise.resolve().then(() => { for (;;) {} });",
        ],
    )
    def test_endless_promise_callbacks_time_out_and_stop(
        self, brisk_sandbox: Sandbox, endless: str
    ) -> None:
        source = f"""
        function process(event) {{
          if (event.endless) {{ {endless} }}
          return event;
        }}
        """

        error = run_error(brisk_sandbox, source, {"endless": True})

        assert error.code == JS_TIMEOUT
        assert cpu_seconds_while_idle() < 0.2
        assert idle_isolates(brisk_sandbox, "org_errors", source) == 0

    def test_the_same_and_other_code_work_after_endless_callbacks(
        self, brisk_sandbox: Sandbox
    ) -> None:
        source = """
        function process(event) {
          if (event.endless) Promise.resolve().then(() => { for (;;) {} });
          return event;
        }
        """
        run_error(brisk_sandbox, source, {"endless": True}, owner="org_queued")

        same = brisk_sandbox.run("org_queued", source, {"endless": False}, {})
        other = brisk_sandbox.run("org_queued", IDENTITY, {"a": 1}, {})

        assert (same, other) == ({"endless": False}, {"a": 1})

    def test_finite_promise_callbacks_are_fine(self, brisk_sandbox: Sandbox) -> None:
        source = """
        let settled = 0;
        function process(event) {
          (async () => { for (let i = 0; i < 100; i++) await null; settled++; })();
          return { settled };
        }
        """

        result = brisk_sandbox.run("org_queued", source, {}, {})

        assert result == {"settled": 0}
        assert idle_isolates(brisk_sandbox, "org_queued", source) == 1

    def test_endless_callbacks_at_the_top_level_are_a_source_problem(
        self, brisk_sandbox: Sandbox
    ) -> None:
        source = "Promise.resolve().then(() => { for (;;) {} });\n" + IDENTITY

        problems = brisk_sandbox.source_problems(source)

        assert problems == ["the top-level code runs longer than the time limit"]
        assert cpu_seconds_while_idle() < 0.2


class TestRemovedFacilities:
    @pytest.mark.parametrize(
        "name",
        [
            "setTimeout",
            "setInterval",
            "clearTimeout",
            "setImmediate",
            "queueMicrotask",
            "WebAssembly",
            "SharedArrayBuffer",
            "Atomics",
            "require",
            "fetch",
            "XMLHttpRequest",
            "__TimerManager",
        ],
    )
    def test_the_facility_is_unavailable(self, sandbox: Sandbox, name: str) -> None:
        source = f"function process() {{ return {{ type: typeof {name} }}; }}"

        assert sandbox.run("org_removed", source, {}, {}) == {"type": "undefined"}

    def test_a_static_import_is_a_syntax_error(self, sandbox: Sandbox) -> None:
        source = "import fs from 'fs';\n" + IDENTITY

        error = run_error(sandbox, source)

        assert error.code == JS_INVALID_SOURCE
        assert "import" in error.message

    def test_a_dynamic_import_cannot_load_anything(self, sandbox: Sandbox) -> None:
        source = """
        function process() {
          let loaded = false;
          import('fs').then(() => { loaded = true; }, () => {});
          return { loaded };
        }
        """

        assert sandbox.run("org_removed", source, {}, {}) == {"loaded": False}
        assert sandbox.source_problems(source) == []

    def test_the_old_timer_class_cannot_carry_values(self, sandbox: Sandbox) -> None:
        source = """
        function process(event) {
          const before = typeof __TimerManager;
          __TimerManager = event.secret;
          return { before };
        }
        """
        sandbox.run("org_removed", source, {"secret": "s3cr3t"}, {})

        result = sandbox.run("org_removed", source, {"secret": "other"}, {})

        assert result == {"before": "undefined"}


class TestIsolation:
    def test_a_global_does_not_reach_the_next_call(self, sandbox: Sandbox) -> None:
        source = """
        var calls = (typeof calls === 'number' ? calls : 0) + 1;
        function process(event) {
          const seen = typeof globalThis.lastUser === 'string' ? lastUser : null;
          globalThis.lastUser = event.userId;
          implicitGlobal = event.userId;
          (0, eval)('var evalGlobal = 1');
          return { seen, calls, implicit: typeof implicitGlobal };
        }
        """
        sandbox.run("org_iso", source, {"userId": "alice"}, {})

        result = sandbox.run("org_iso", source, {"userId": "bob"}, {})

        assert result == {"seen": None, "calls": 1, "implicit": "string"}

    def test_a_global_does_not_reach_another_owner(self, sandbox: Sandbox) -> None:
        source = """
        function process(event) {
          const seen = typeof secret === 'string' ? secret : null;
          globalThis.secret = event.secret;
          return { seen };
        }
        """
        sandbox.run("org_one", source, {"secret": "one's"}, {})

        result = sandbox.run("org_two", source, {"secret": "two's"}, {})

        assert result == {"seen": None}

    def test_prototype_pollution_does_not_carry_over(self, sandbox: Sandbox) -> None:
        source = """
        function process(event) {
          const seen = { object: ({}).leak ?? null, array: [].leak ?? null };
          Object.prototype.leak = event.secret;
          Array.prototype.leak = event.secret;
          Object.getPrototypeOf(function* () {}).leak = event.secret;
          return seen;
        }
        """
        sandbox.run("org_iso", source, {"secret": "s"}, {})

        result = sandbox.run("org_iso", source, {"secret": "t"}, {})

        assert result == {"object": None, "array": None}

    def test_replacing_a_built_in_does_not_carry_over(self, sandbox: Sandbox) -> None:
        source = """
        function process(event) {
          const parsed = JSON.parse('{"a": 1}');
          JSON.parse = () => ({ hijacked: true });
          Math.max = () => 0;
          return { parsed, max: Math.max(1, 2) };
        }
        """
        sandbox.run("org_iso", source, {}, {})

        result = sandbox.run("org_iso", source, {}, {})

        assert result == {"parsed": {"a": 1}, "max": 2}

    def test_the_last_regexp_match_is_forgotten(self, sandbox: Sandbox) -> None:
        source = """
        function process(event) {
          const previous = typeof RegExp.$1 === 'string' ? RegExp.$1 : null;
          /email=(\\S+)/.exec(event.text);
          return { previous };
        }
        """
        sandbox.run("org_iso", source, {"text": "email=a@example.com"}, {})

        result = sandbox.run("org_iso", source, {"text": ""}, {})

        assert result == {"previous": None}

    def test_a_global_set_after_the_call_is_removed(self, sandbox: Sandbox) -> None:
        source = """
        function process(event) {
          const seen = typeof later === 'string' ? later : null;
          Promise.resolve().then(() => { globalThis.later = event.secret; });
          return { seen };
        }
        """
        sandbox.run("org_iso", source, {"secret": "s"}, {})

        result = sandbox.run("org_iso", source, {"secret": "t"}, {})

        assert result == {"seen": None}

    def test_an_undeletable_global_retires_the_isolate(self, sandbox: Sandbox) -> None:
        source = """
        function process(event) {
          const seen = typeof pinned === 'string' ? pinned : null;
          Object.defineProperty(globalThis, 'pinned', { value: event.secret });
          return { seen };
        }
        """
        sandbox.run("org_iso", source, {"secret": "s"}, {})

        result = sandbox.run("org_iso", source, {"secret": "t"}, {})

        assert result == {"seen": None}


class TestConcurrency:
    def test_concurrent_calls_each_get_their_own_answer(self, sandbox: Sandbox) -> None:
        source = """
        function process(event) {
          globalThis.current = event.n;
          let sum = 0;
          for (let i = 0; i < 2000; i++) sum += i % 7;
          return { n: current, sum };
        }
        """

        def call(n: int) -> dict[str, Any] | None:
            return sandbox.run("org_threads", source, {"n": n}, {})

        with ThreadPoolExecutor(max_workers=8) as workers:
            results = list(workers.map(call, range(200)))

        expected_sum = sum(i % 7 for i in range(2000))
        assert results == [{"n": n, "sum": expected_sum} for n in range(200)]

    def test_idle_isolates_per_code_are_capped(self) -> None:
        sandbox = Sandbox(isolates_per_code=2)
        try:
            with ThreadPoolExecutor(max_workers=8) as workers:
                list(
                    workers.map(
                        lambda n: sandbox.run("org_cap", IDENTITY, {"n": n}, {}),
                        range(64),
                    )
                )

            assert 1 <= idle_isolates(sandbox, "org_cap", IDENTITY) <= 2
        finally:
            sandbox.close()

    def test_the_least_recently_used_code_is_evicted(self) -> None:
        sandbox = Sandbox(max_pooled_codes=2)
        sources = [f"{IDENTITY} // version {n}" for n in range(3)]
        try:
            for source in sources:
                sandbox.run("org_lru", source, {}, {})

            assert idle_isolates(sandbox, "org_lru", sources[0]) == 0
            assert idle_isolates(sandbox, "org_lru", sources[2]) == 1
            assert sandbox.run("org_lru", sources[0], {"a": 1}, {}) == {"a": 1}
        finally:
            sandbox.close()

    def test_a_closed_sandbox_refuses_calls(self) -> None:
        sandbox = Sandbox()
        sandbox.run("org_closed", IDENTITY, {}, {})

        sandbox.close()

        with pytest.raises(RuntimeError):
            sandbox.run("org_closed", IDENTITY, {}, {})


class TestSourceProblems:
    def test_a_good_source_has_none(self, sandbox: Sandbox) -> None:
        assert sandbox.source_problems(IDENTITY) == []

    def test_a_syntax_error_names_its_line_and_column(self, sandbox: Sandbox) -> None:
        source = "function process(event) {\n  return event +;\n}"

        problems = sandbox.source_problems(source)

        assert problems == ["SyntaxError: Unexpected token ';' (line 2, column 17)"]

    def test_a_missing_brace_is_named_at_the_end(self, sandbox: Sandbox) -> None:
        source = "function process(event) {\n  return event;\n"

        problems = sandbox.source_problems(source)

        assert problems == ["SyntaxError: Unexpected end of input (line 3, column 1)"]

    def test_an_extra_brace_is_named(self, sandbox: Sandbox) -> None:
        source = "function process(event) {\n  return event;\n}\n}"

        problems = sandbox.source_problems(source)

        assert problems == ["SyntaxError: Unexpected token '}' (line 4, column 1)"]

    def test_a_bad_token_on_line_3_is_named(self, sandbox: Sandbox) -> None:
        source = "const a = 1;\nfunction process(event) {\n  return event..a;\n}"

        problems = sandbox.source_problems(source)

        assert problems == ["SyntaxError: Unexpected token '.' (line 3, column 16)"]

    def test_a_missing_process_function_is_named(self, sandbox: Sandbox) -> None:
        problems = sandbox.source_problems("const handler = () => null;")

        assert problems == ["the source defines no function named process"]

    def test_a_throwing_top_level_is_named(self, sandbox: Sandbox) -> None:
        problems = sandbox.source_problems("throw new Error('setup failed');")

        assert problems == [
            "the top-level code throws Error: setup failed (line 1, column 7)"
        ]

    def test_an_endless_top_level_is_named(self, default_sandbox: Sandbox) -> None:
        problems = default_sandbox.source_problems("while (true) {}")

        assert problems == ["the top-level code runs longer than the time limit"]

    def test_an_oversized_source_is_named_without_compiling(self) -> None:
        small = Sandbox(SandboxLimits(max_source_bytes=10))
        try:
            problems = small.source_problems(IDENTITY)
        finally:
            small.close()

        assert problems == [
            f"the source is {len(IDENTITY)} bytes; at most 10 are allowed"
        ]
