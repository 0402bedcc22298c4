"""The JavaScript sandbox of `code` steps and the data layer's `custom_js`.

User source defines `function process(event, context)` and runs in a V8 isolate
from `mini-racer`. Isolates are pooled per (owner, code hash) so the compiled
source is reused; each call still starts from a clean slate:

- before any user code runs, an isolate loses its timers and other host
  facilities, and every built-in object reachable from the global scope is
  frozen, so prototypes and built-ins cannot be changed;
- the user source is compiled once into a function body and that body runs
  again for every call, so top-level `var`, `let` and closures are fresh;
- globals a call adds are deleted before and after the call; an isolate whose
  global scope cannot be cleaned is thrown away.

Promise callbacks that a call queues run after `process` returns; they are
part of the call and must finish within its time limit. An isolate that hit
the time or memory limit is thrown away too, which also stops whatever it was
still running. Calls block the calling thread and are safe from many threads
at once; a pooled isolate serves one call at a time.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Final

from py_mini_racer import (
    JSEvalException,
    JSOOMException,
    JSTimeoutException,
    MiniRacer,
    PythonJSConvertedTypes,
    mini_racer,
)

from signal_admin.processing.runtime import JavaScriptRunner, StepFailure

JS_TIMEOUT: Final = "JS_TIMEOUT"
JS_MEMORY_LIMIT: Final = "JS_MEMORY_LIMIT"
JS_ERROR: Final = "JS_ERROR"
JS_INVALID_SOURCE: Final = "JS_INVALID_SOURCE"
JS_INVALID_RESULT: Final = "JS_INVALID_RESULT"

# How many levels of objects and arrays a returned event may have, itself
# included; deeper results would overflow recursive Python code downstream.
MAX_RESULT_DEPTH: Final = 64

# Trusted set-up work (hardening, compiling the source) gets its own, generous
# time limit: it runs no user code, but a pathological source takes long to parse.
_SETUP_TIME_LIMIT_S = 2.0
# How long `close` waits for calls still running before it frees their isolates.
_CLOSE_WAIT_S = 5.0
_MAX_MESSAGE_CHARS = 1000

_NO_PROCESS = "the source defines no function named process"

# The script name of the harness and of everything Python evaluates; stack
# traces leave out frames with this name.
_HARNESS_URL = "sandbox-harness"
_SOURCE_URL_COMMENT = f"\n//# sourceURL={_HARNESS_URL}"
# Evaluated as a task of its own right after every call; see `settle`.
_SETTLE = f"__sandbox.settle(){_SOURCE_URL_COMMENT}"

# Runs once in every new isolate, before the user source is compiled. It leaves
# a single global, `__sandbox`, that Python calls. `run` answers a string whose
# first character says what happened: R (the rest is the result's JSON),
# E (a thrown error), I (an invalid result), M (over the binary data budget),
# S (an invalid source) or X (the isolate was not clean, nothing ran); a leading
# "!" says the global scope could not be cleaned afterwards. `settle` only
# cleans the global scope again, answering R or !R.
#
# Stack traces name the user source `code.js`, with its own line numbers, and
# leave out every frame of the harness and of the code Python evaluates, which
# are named `_HARNESS_URL`. Harness functions reachable from user code print as
# native functions, so the harness source stays private.
_HARNESS = r"""
(function () {
  'use strict';
  const global = globalThis;
  const {
    defineProperty, freeze, getOwnPropertyDescriptor, getPrototypeOf, hasOwn,
  } = Object;
  const { apply, deleteProperty, ownKeys } = Reflect;
  const { isArray } = Array;
  const { parse, stringify } = JSON;
  const makeFunction = Function;
  const objectPrototype = Object.prototype;
  const SafeSet = Set;
  const toWellFormed = String.prototype.toWellFormed;
  const MAX_DEPTH = %MAX_DEPTH%;
  const CODE_URL = 'code.js';
  const HARNESS_URL = '%HARNESS_URL%';

  // Function.prototype.toString answers native-looking text for the harness's
  // own functions, so user code cannot read the harness source through them.
  const hiddenSource = new WeakSet();
  const functionToString = Function.prototype.toString;
  function toString() {
    if (hiddenSource.has(this)) return 'function () { [native code] }';
    return apply(functionToString, this, []);
  }
  hiddenSource.add(toString);
  defineProperty(Function.prototype, 'toString', { value: toString });

  // Stack traces show user code only: frames of the harness and of the code
  // Python evaluates are left out, and frames of the user source get its own
  // line numbers (its compiled function body starts on line 3).
  const errorToString = Error.prototype.toString;
  const { replace } = String.prototype;
  const CODE_POSITION = /\bcode\.js:(\d+):(\d+)/g;
  function formatStack(error, sites) {
    let text;
    try {
      text = apply(errorToString, error, []);
    } catch {
      text = 'Error';
    }
    for (const site of sites) {
      if (site.getScriptNameOrSourceURL() === HARNESS_URL) continue;
      const frame = apply(replace, String(site), [
        CODE_POSITION, (_match, line, column) =>
          `${CODE_URL}:${Number(line) - 2}:${column}`,
      ]);
      text += `\n    at ${frame}`;
    }
    return text;
  }
  hiddenSource.add(formatStack);
  defineProperty(Error, 'prepareStackTrace', {
    value: formatStack, writable: false, configurable: false,
  });

  const REMOVED = [
    'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval',
    'setImmediate', 'clearImmediate', 'queueMicrotask', '__timer_manager',
    'WebAssembly', 'SharedArrayBuffer', 'Atomics',
    'FinalizationRegistry', 'WeakRef',
  ];
  for (const name of REMOVED) {
    if (hasOwn(global, name) && !deleteProperty(global, name)) {
      // mini-racer declares its timers with `var`, which cannot be deleted.
      defineProperty(global, name, { value: undefined, writable: false });
    }
  }

  // RegExp.$1, RegExp.lastMatch and friends remember the last match, which
  // would let one event read text from the one before it.
  for (const key of ownKeys(RegExp)) {
    const descriptor = getOwnPropertyDescriptor(RegExp, key);
    if (typeof key === 'string' && descriptor.get !== undefined) {
      deleteProperty(RegExp, key);
    }
  }

  // Frozen prototypes would make `object.toString = f` or `this.name = 'X'` in
  // an Error subclass fail; these properties become accessors that create the
  // property on the object assigned to and refuse only the prototype itself.
  function allowOverride(target, key) {
    const descriptor = getOwnPropertyDescriptor(target, key);
    if (descriptor === undefined || !('value' in descriptor)) return;
    const value = descriptor.value;
    const accessors = {
      get() { return value; },
      set(newValue) {
        if (this === target) {
          throw new TypeError(`Cannot change the built-in ${String(key)}`);
        }
        if (hasOwn(this, key)) {
          this[key] = newValue;
          return;
        }
        defineProperty(this, key, {
          value: newValue, writable: true, enumerable: true, configurable: true,
        });
      },
    };
    hiddenSource.add(accessors.get);
    hiddenSource.add(accessors.set);
    defineProperty(target, key, {
      ...accessors, enumerable: descriptor.enumerable, configurable: false,
    });
  }
  for (const key of ownKeys(objectPrototype)) {
    if (key !== '__proto__') allowOverride(objectPrototype, key);
  }
  const errors = [
    Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError,
    URIError, AggregateError,
  ];
  if (typeof SuppressedError === 'function') errors.push(SuppressedError);
  for (const error of errors) {
    for (const key of ['constructor', 'name', 'message', 'toString']) {
      allowOverride(error.prototype, key);
    }
  }
  allowOverride(Function.prototype, 'toString');

  // ArrayBuffer memory lives outside the V8 heap, where the heap limit does not
  // see it: each call may allocate `binaryBudget` bytes of it. Every way to a
  // new buffer goes through the guarded constructors (species lookups find
  // them as `constructor`); the few built-ins that bypass them are removed.
  let binaryBudget = 0;
  let binaryLeft = 0;
  const bufferOf = getOwnPropertyDescriptor(
    getPrototypeOf(Uint8Array.prototype), 'buffer').get;
  const byteLengthOf = getOwnPropertyDescriptor(
    ArrayBuffer.prototype, 'byteLength').get;

  const overBudget = new WeakSet();

  function spend(bytes) {
    if (!(bytes <= binaryLeft)) {
      const error = new RangeError(
        `Binary data is limited to ${binaryBudget} bytes per call`);
      overBudget.add(error);
      throw error;
    }
    binaryLeft -= bytes;
  }

  function count(value) {
    const number = Number(value);
    return number > 0 ? Math.trunc(number) : 0;
  }

  function isArrayBuffer(value) {
    try {
      byteLengthOf.call(value);
      return true;
    } catch {
      return false;
    }
  }

  function guard(name, construct) {
    const Constructor = global[name];
    const guarded = new Proxy(Constructor, {
      construct: (target, args, newTarget) => construct(target, args, newTarget),
    });
    defineProperty(Constructor.prototype, 'constructor', { value: guarded });
    defineProperty(global, name, { value: guarded });
  }

  guard('ArrayBuffer', (target, args, newTarget) => {
    const options = args[1];
    const maxByteLength =
      typeof options === 'object' && options !== null ? options.maxByteLength : 0;
    spend(Math.max(count(args[0]), count(maxByteLength)));
    return Reflect.construct(target, args, newTarget);
  });
  const TYPED_ARRAYS = [
    'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array',
    'Int32Array', 'Uint32Array', 'Float16Array', 'Float32Array', 'Float64Array',
    'BigInt64Array', 'BigUint64Array',
  ];
  for (const name of TYPED_ARRAYS) {
    if (typeof global[name] !== 'function') continue;
    guard(name, (target, args, newTarget) => {
      const source = args[0];
      const isObject = typeof source === 'object' && source !== null;
      if (!isObject) {
        spend(count(source) * target.BYTES_PER_ELEMENT);
        return Reflect.construct(target, args, newTarget);
      }
      if (!isArrayBuffer(source) && source[Symbol.iterator] === undefined) {
        spend(count(source.length) * target.BYTES_PER_ELEMENT);
        return Reflect.construct(target, args, newTarget);
      }
      const made = Reflect.construct(target, args, newTarget);
      if (bufferOf.call(made) !== source) {
        spend(byteLengthOf.call(bufferOf.call(made)));
      }
      return made;
    });
  }
  const typedArrayPrototype = getPrototypeOf(Uint8Array.prototype);
  for (const [target, key] of [
    [ArrayBuffer.prototype, 'transfer'],
    [ArrayBuffer.prototype, 'transferToFixedLength'],
    [typedArrayPrototype, 'toReversed'],
    [typedArrayPrototype, 'toSorted'],
    [typedArrayPrototype, 'with'],
    [Uint8Array, 'fromBase64'],
    [Uint8Array, 'fromHex'],
  ]) {
    deleteProperty(target, key);
  }

  let factory = null;
  let running = false;

  function prepare(source, budget) {
    if (factory !== null) throw new TypeError('The sandbox is already prepared');
    binaryBudget = budget;
    factory = makeFunction(
      `${source}\n;return typeof process === 'function' ? process : undefined;` +
      `\n//# sourceURL=${CODE_URL}`,
    );
  }

  // Parses a source on its own, as a sloppy script that ends where the source
  // ends, so that a syntax error is found in the user's text rather than in
  // the function around it. The source is evaluated behind `throw 0;` in a
  // scratch function's scope: when it parses, only its declarations are bound
  // there and the throw comes before any of it runs. The SyntaxError is left
  // uncaught, since only then does the engine report where it is.
  const parseOnly = makeFunction('text', 'eval(text);');

  function check(source) {
    if (running) throw new TypeError('Not available');
    parseOnly(`throw 0;\n${source}`);
  }

  function run(eventJson, contextJson) {
    if (running || factory === null) throw new TypeError('Not available');
    running = true;
    try {
      if (!resetGlobals()) return '!X';
      binaryLeft = binaryBudget;
      let outcome = callProcess(eventJson, contextJson);
      if (outcome[0] !== 'R') outcome = wellFormed(outcome);
      return resetGlobals() ? outcome : `!${outcome}`;
    } finally {
      running = false;
    }
  }

  // Python evaluates this after every call, as a task of its own: mini-racer
  // runs promise callbacks after a task, not inside it, so once this answers,
  // nothing the call queued is still running.
  function settle() {
    if (running) throw new TypeError('Not available');
    return resetGlobals() ? 'R' : '!R';
  }

  // Messages may hold lone surrogates (from an error or a class name), which
  // cannot leave V8 as UTF-8; results have them escaped by JSON.stringify.
  function wellFormed(text) {
    return apply(toWellFormed, text, []);
  }

  function probe() {
    if (running || factory === null) throw new TypeError('Not available');
    running = true;
    try {
      resetGlobals();
      binaryLeft = binaryBudget;
      return typeof factory() === 'function' ? 'R' : `S${NO_PROCESS}`;
    } catch (error) {
      return wellFormed(`E${describe(error)}`);
    } finally {
      resetGlobals();
      running = false;
    }
  }

  function callProcess(eventJson, contextJson) {
    try {
      const event = parse(eventJson);
      const context = freezeTree(parse(contextJson));
      const process = factory();
      if (typeof process !== 'function') return `S${NO_PROCESS}`;
      return encode(process(event, context));
    } catch (error) {
      return `${overBudget.has(error) ? 'M' : 'E'}${describe(error)}`;
    }
  }

  function encode(result) {
    if (result === null) return 'Rnull';
    if (result === undefined) {
      return 'Iprocess returned undefined; return the event, or null to drop it';
    }
    if (typeof result !== 'object' || isArray(result)) {
      return `Iprocess must return an object or null, not ${kind(result)}`;
    }
    const prototype = getPrototypeOf(result);
    if (prototype !== objectPrototype && prototype !== null) {
      return `Iprocess must return a plain object or null, not ${kind(result)}`;
    }
    let text;
    try {
      text = stringify(result);
    } catch (error) {
      return `Ithe returned event cannot be written as JSON: ${describe(error)}`;
    }
    return textProblem(text) ?? `R${text}`;
  }

  // JSON.stringify writes lone surrogates as \ud800 to \udfff escapes and
  // leaves paired ones unescaped; the lookbehind skips escaped backslashes.
  const LONE_SURROGATE = /(?<!\\)(?:\\\\)*\\ud[89a-f]/;

  function textProblem(text) {
    if (text.indexOf('\\ud') !== -1 && LONE_SURROGATE.test(text)) {
      return 'Itext in the returned event must be valid Unicode, but it holds ' +
        'a lone surrogate (half of a character such as an emoji); ' +
        'String.prototype.toWellFormed() repairs such text';
    }
    if (nestingDepth(text) > MAX_DEPTH) {
      return `Ithe returned event is nested more than ${MAX_DEPTH} levels ` +
        'of objects and arrays deep';
    }
    return null;
  }

  // The deepest nesting of objects and arrays in JSON text; strings are
  // skipped whole, up to their first quote not escaped by a backslash.
  function nestingDepth(text) {
    let depth = 0;
    let deepest = 0;
    for (let index = 0; index < text.length; index++) {
      const code = text.charCodeAt(index);
      if (code === 0x22) {
        let backslashes = 1;
        while (backslashes % 2 === 1) {
          index = text.indexOf('"', index + 1);
          if (index === -1) return deepest;
          backslashes = 0;
          while (text.charCodeAt(index - 1 - backslashes) === 0x5c) backslashes++;
        }
      } else if (code === 0x7b || code === 0x5b) {
        depth++;
        if (depth > deepest) deepest = depth;
      } else if (code === 0x7d || code === 0x5d) {
        depth--;
      }
    }
    return deepest;
  }

  function kind(value) {
    if (isArray(value)) return 'an array';
    if (typeof value !== 'object') return `a ${typeof value}`;
    try {
      const name = getPrototypeOf(value).constructor.name;
      return typeof name === 'string' && name !== '' ? `a ${name}` : 'an object';
    } catch {
      return 'an object';
    }
  }

  function describe(error) {
    try {
      if (error instanceof Error) {
        return `${error.name}: ${error.message}${locate(error.stack)}`;
      }
      return String(error);
    } catch {
      return 'an error that cannot be shown';
    }
  }

  // The first frame of user code, "at process (code.js:1:8)", says where.
  function locate(stack) {
    if (typeof stack !== 'string') return '';
    const match = /\bcode\.js:(\d+):(\d+)/.exec(stack);
    if (match === null || Number(match[1]) < 1) return '';
    return ` (line ${match[1]}, column ${match[2]})`;
  }

  function freezeTree(root) {
    const pending = [root];
    while (pending.length > 0) {
      const value = pending.pop();
      if (typeof value !== 'object' || value === null) continue;
      freeze(value);
      for (const key of ownKeys(value)) pending.push(value[key]);
    }
    return root;
  }

  function resetGlobals() {
    // mini-racer's timer class is a global `class` binding: it cannot be
    // deleted, but nothing may be left in it either.
    if (typeof __TimerManager !== 'undefined') __TimerManager = undefined;
    let clean = true;
    for (const key of ownKeys(global)) {
      if (!baseline.has(key) && !deleteProperty(global, key)) clean = false;
    }
    return clean;
  }

  const NO_PROCESS = %NO_PROCESS%;
  const entryPoints = { prepare, check, run, probe, settle };
  for (const key of ownKeys(entryPoints)) hiddenSource.add(entryPoints[key]);
  defineProperty(global, '__sandbox', { value: freeze(entryPoints) });
  if (typeof __TimerManager !== 'undefined') __TimerManager = undefined;

  function freezeIntrinsics() {
    const hidden = [
      function* () {}, async function () {}, async function* () {},
      [][Symbol.iterator](), ''[Symbol.iterator](), new Map()[Symbol.iterator](),
      new Set()[Symbol.iterator](), /./[Symbol.matchAll](''),
      getOwnPropertyDescriptor((function () { return arguments; })(), 'callee'),
    ];
    if (typeof Iterator === 'function') {
      hidden.push([].values().map((x) => x), Iterator.from({ next() {} }));
    }
    if (typeof Intl === 'object' && typeof Intl.Segmenter === 'function') {
      const segments = new Intl.Segmenter().segment('');
      hidden.push(segments, segments[Symbol.iterator]());
    }
    const seen = new SafeSet();
    const pending = [global, ...hidden];
    while (pending.length > 0) {
      const value = pending.pop();
      const isObject = typeof value === 'object' || typeof value === 'function';
      if (!isObject || value === null || seen.has(value)) continue;
      seen.add(value);
      for (const key of ownKeys(value)) {
        const descriptor = getOwnPropertyDescriptor(value, key);
        pending.push(descriptor.value, descriptor.get, descriptor.set);
        if (value === global && descriptor.configurable) {
          const locked = 'value' in descriptor ? { writable: false } : {};
          defineProperty(global, key, { ...locked, configurable: false });
        } else if (value === global && descriptor.writable) {
          defineProperty(global, key, { writable: false });
        }
      }
      pending.push(getPrototypeOf(value));
      if (value !== global) freeze(value);
    }
  }
  freezeIntrinsics();
  const baseline = new SafeSet(ownKeys(global));
})();
//# sourceURL=%HARNESS_URL%
"""
_HARNESS = (
    _HARNESS.replace("%NO_PROCESS%", json.dumps(_NO_PROCESS))
    .replace("%MAX_DEPTH%", str(MAX_RESULT_DEPTH))
    .replace("%HARNESS_URL%", _HARNESS_URL)
)

# "undefined:5: SyntaxError: Unexpected token '}'\n}\n^" from mini-racer, where
# line 5 is line 3 of the user source.
_SYNTAX_ERROR = re.compile(r"^[^\n]*?:(\d+): (SyntaxError: [^\n]*)\n[^\n]*\n( *)\^")
# A top-level `return` is valid in the function body that a source is, but not
# in a script.
_ILLEGAL_RETURN = "SyntaxError: Illegal return statement"


class SandboxError(StepFailure):
    """Custom JavaScript failed: `code` is one of the JS_* codes and `message`
    says why in the user's terms."""


@dataclass(frozen=True)
class SandboxLimits:
    time_limit_ms: float = 50
    heap_limit_bytes: int = 8 * 1024 * 1024
    max_source_bytes: int = 64 * 1024


class _StaleIsolate(Exception):
    """The isolate's global scope was changed after its last call finished (by
    a promise callback) and could not be cleaned; the call did not run."""


class _Isolate:
    """One V8 isolate holding one compiled source; used by one thread at once."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, source: str, limits: SandboxLimits
    ) -> None:
        self.broken = False
        self._loop = loop
        self._exits = ExitStack()
        try:
            racer = self._exits.enter_context(mini_racer(loop))
            self._racer: MiniRacer | None = racer
            racer.eval(_HARNESS, timeout_sec=_SETUP_TIME_LIMIT_S)
        except BaseException as error:
            self.close()
            if isinstance(error, Exception):
                raise SandboxError(
                    JS_ERROR, "the JavaScript engine could not start"
                ) from None
            raise

        try:
            _compile(racer, source, limits)
        except BaseException:
            self.close()
            raise
        racer.set_hard_memory_limit(limits.heap_limit_bytes)

    def call(
        self, event_json: str, context_json: str, time_limit_ms: float
    ) -> dict[str, Any] | None:
        outcome = self._evaluate(
            f"__sandbox.run({json.dumps(event_json)}, {json.dumps(context_json)})"
            + _SOURCE_URL_COMMENT,
            time_limit_ms,
        )
        if outcome == "X":
            raise _StaleIsolate
        if outcome.startswith("R"):
            answer: dict[str, Any] | None = json.loads(outcome[1:])
            return answer
        raise _outcome_error(outcome)

    def probe(self, time_limit_ms: float) -> str | None:
        """Runs the source's top level once, without calling `process`; answers
        what is wrong with it, or None."""
        try:
            outcome = self._evaluate(
                f"__sandbox.probe(){_SOURCE_URL_COMMENT}", time_limit_ms
            )
        except SandboxError as error:
            return _PROBE_PROBLEMS.get(error.code, error.message)
        if outcome.startswith("R"):
            return None
        if outcome.startswith("E"):
            return f"the top-level code throws {_clip(outcome[1:])}"
        return outcome[1:]

    def close(self) -> None:
        """Frees the isolate; mini-racer first terminates whatever JavaScript
        it is still running, such as endless promise callbacks."""
        self.broken = True
        self._racer = None
        self._exits.close()

    def _evaluate(self, code: str, time_limit_ms: float) -> str:
        """Runs harness `code` and whatever it leaves queued within the time
        limit; answers its outcome string without the "!" mark, which instead
        marks the isolate broken."""
        racer = self._racer
        if racer is None:
            raise SandboxError(JS_ERROR, "the JavaScript isolate was closed")
        try:
            outcome, settled = asyncio.run_coroutine_threadsafe(
                _evaluate_settled(racer, code, time_limit_ms / 1000), self._loop
            ).result()
        except TimeoutError:
            self.broken = True
            raise SandboxError(
                JS_TIMEOUT, f"the code ran longer than {time_limit_ms:g} ms"
            ) from None
        except Exception as error:  # anything the engine raises is mapped
            self.broken = True
            raise self._engine_error(error) from None
        finally:
            if racer.was_hard_memory_limit_reached():
                self.broken = True
        if not isinstance(outcome, str) or settled not in ("R", "!R"):
            self.broken = True
            raise SandboxError(JS_ERROR, "the JavaScript engine answered nonsense")
        if outcome.startswith("!") or settled == "!R":
            self.broken = True
            outcome = outcome[1:]
        return outcome

    def _engine_error(self, error: Exception) -> SandboxError:
        memory_exceeded = self._racer is not None and (
            self._racer.was_hard_memory_limit_reached()
        )
        if isinstance(error, JSOOMException) or memory_exceeded:
            return SandboxError(JS_MEMORY_LIMIT, "the code used too much memory")
        if isinstance(error, JSEvalException):
            return SandboxError(JS_ERROR, _clip(_first_js_error(str(error))))
        return SandboxError(JS_ERROR, "the JavaScript engine failed")


async def _evaluate_settled(
    racer: MiniRacer, code: str, time_limit_s: float
) -> tuple[PythonJSConvertedTypes, PythonJSConvertedTypes]:
    """Evaluates `code`, then `_SETTLE`, both within `time_limit_s`.

    mini-racer runs the promise callbacks (microtasks) that an evaluation
    queued after it has answered, before it starts the next one; so `_SETTLE`,
    queued at once behind `code`, answers only when they have all finished. A
    timeout stops a running evaluation; callbacks still running are stopped
    when the caller closes the isolate.
    """
    evaluations = [
        asyncio.ensure_future(racer.eval_cancelable(code)),
        asyncio.ensure_future(racer.eval_cancelable(_SETTLE)),
    ]
    try:
        async with asyncio.timeout(time_limit_s):
            return await evaluations[0], await evaluations[1]
    finally:
        for evaluation in evaluations:
            evaluation.cancel()
        await asyncio.gather(*evaluations, return_exceptions=True)


def _compile(racer: MiniRacer, source: str, limits: SandboxLimits) -> None:
    prepare = f"__sandbox.prepare({json.dumps(source)}, {limits.heap_limit_bytes})"
    try:
        racer.eval(prepare, timeout_sec=_SETUP_TIME_LIMIT_S)
    except JSTimeoutException:
        raise SandboxError(
            JS_INVALID_SOURCE, "the source takes too long to compile"
        ) from None
    except JSEvalException as error:
        raise _compile_error(racer, str(error), source) from None
    except Exception:  # anything else the engine raises is mapped
        raise SandboxError(JS_ERROR, "the JavaScript engine failed") from None


_PROBE_PROBLEMS = {
    JS_TIMEOUT: "the top-level code runs longer than the time limit",
    JS_MEMORY_LIMIT: "the top-level code uses more memory than the limit",
}


def _outcome_error(outcome: str) -> SandboxError:
    code = {
        "E": JS_ERROR,
        "I": JS_INVALID_RESULT,
        "M": JS_MEMORY_LIMIT,
        "S": JS_INVALID_SOURCE,
    }
    return SandboxError(code.get(outcome[:1], JS_ERROR), _clip(outcome[1:]))


def _compile_error(racer: MiniRacer, text: str, source: str) -> SandboxError:
    """The error of a source that did not compile as a function body; `text` is
    mini-racer's report of it.

    Compiled inside a function, a source with a brace too many or too few
    reaches into the code around it, and the engine then names a token the user
    never wrote. The source parsed on its own finds such an error where it is;
    of the two errors, the earlier one is the source's first (a script only
    refuses a top-level `return`, and sees no "use strict" behind the throw
    that keeps it from running).
    """
    match = _SYNTAX_ERROR.match(text)
    if match is None:
        return SandboxError(JS_INVALID_SOURCE, _clip(_first_js_error(text)))
    lines = source.count("\n") + 1
    message, line, column = match[2], int(match[1]) - 2, len(match[3]) + 1
    in_source = 1 <= line <= lines
    alone = _syntax_error_alone(racer, source)
    if alone is not None and (not in_source or alone[1:] <= (line, column)):
        message, line, column = alone
        in_source = True
    if in_source:
        where = f" (line {line}, column {column})"
    else:
        where = " (at the end of the source)"
    return SandboxError(JS_INVALID_SOURCE, _clip(message) + where)


def _syntax_error_alone(racer: MiniRacer, source: str) -> tuple[str, int, int] | None:
    """The first syntax error of `source` parsed on its own as a script, with
    its line and column in the source; None when it parses, when the error is
    only that a script cannot `return`, or when the check fails."""
    check = f"__sandbox.check({json.dumps(source)})"
    try:
        racer.eval(check, timeout_sec=_SETUP_TIME_LIMIT_S)
    except JSTimeoutException:
        return None
    except JSEvalException as error:
        # The first line of the checked text is the harness's `throw 0;`.
        match = _SYNTAX_ERROR.match(str(error))
    except Exception:  # anything else the engine raises leaves the check out
        return None
    else:
        return None
    if match is None or match[2] == _ILLEGAL_RETURN:
        return None
    line, column = int(match[1]) - 1, len(match[3]) + 1
    if not 1 <= line <= source.count("\n") + 1:
        return None
    return match[2], line, column


def _first_js_error(text: str) -> str:
    """The "Name: message" line of mini-racer's error report, which starts
    with a source excerpt and ends with a stack."""
    for line in text.splitlines():
        if re.match(r"^[A-Za-z]*Error: ", line):
            return line
    return text.strip().splitlines()[0] if text.strip() else "JavaScript failed"


def _clip(message: str) -> str:
    if len(message) <= _MAX_MESSAGE_CHARS:
        return message
    return message[: _MAX_MESSAGE_CHARS - 1] + "…"


@dataclass
class _CodePool:
    """The idle isolates of one (owner, code hash), or why the code cannot run."""

    idle: list[_Isolate] = field(default_factory=list)
    invalid_source: str | None = None
    retired: bool = False


class Sandbox:
    """Runs custom JavaScript under `limits`, pooling up to `isolates_per_code`
    idle isolates for each of the `max_pooled_codes` most recently used codes.

    `close` frees every isolate; the application calls it on shutdown.
    """

    def __init__(
        self,
        limits: SandboxLimits = SandboxLimits(),
        *,
        isolates_per_code: int = 4,
        max_pooled_codes: int = 128,
    ) -> None:
        self._limits = limits
        self._isolates_per_code = isolates_per_code
        self._max_pooled_codes = max_pooled_codes
        self._pools: OrderedDict[tuple[str, str], _CodePool] = OrderedDict()
        self._state = threading.Condition()
        self._busy = 0
        self._closed = False
        # mini-racer drives every isolate through an asyncio loop; one loop
        # thread serves them all, while each isolate executes on its own thread.
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(
            target=self._loop.run_forever, name="js-sandbox", daemon=True
        )
        self._loop_thread.start()

    def source_problems(self, source: str) -> list[str]:
        """What stops `source` from running, or [] when it is fine. Compiles
        the source and runs its top level once in a scratch isolate."""
        size_problem = self._size_problem(source)
        if size_problem is not None:
            return [size_problem]

        self._enter()
        try:
            isolate = _Isolate(self._loop, source, self._limits)
            try:
                problem = isolate.probe(self._limits.time_limit_ms)
            finally:
                isolate.close()
        except SandboxError as error:
            return [error.message]
        finally:
            self._leave()
        return [] if problem is None else [problem]

    def run(
        self,
        owner: str,
        source: str,
        event: Mapping[str, Any],
        context: Mapping[str, Any],
        *,
        time_limit_ms: float | None = None,
    ) -> dict[str, Any] | None:
        """Calls `process` on a copy of `event` and a frozen `context`; answers
        the new event, or None when the code drops it. `time_limit_ms` (what is
        left of the caller's budget) can only shorten the sandbox's limit.
        `event` and `context` must hold JSON values. Raises `SandboxError`."""
        size_problem = self._size_problem(source)
        if size_problem is not None:
            raise SandboxError(JS_INVALID_SOURCE, size_problem)
        limit_ms = self._limits.time_limit_ms
        if time_limit_ms is not None:
            limit_ms = min(limit_ms, time_limit_ms)
        if limit_ms <= 0:
            raise SandboxError(JS_TIMEOUT, "no time was left to run the code")
        event_json = json.dumps(event, allow_nan=False, separators=(",", ":"))
        context_json = json.dumps(context, allow_nan=False, separators=(",", ":"))
        key = (
            owner,
            hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest(),
        )

        self._enter()
        try:
            return self._run_pooled(key, source, event_json, context_json, limit_ms)
        finally:
            self._leave()

    def runner(
        self, owner: str, *, time_limit_ms: Callable[[], float | None] | None = None
    ) -> JavaScriptRunner:
        """A `JavaScriptRunner` for `owner`; `time_limit_ms`, when given, is
        asked before every call for what is left of the caller's budget."""

        def run_for_owner(
            source: str, event: Mapping[str, Any], context: Mapping[str, Any]
        ) -> dict[str, Any] | None:
            remaining_ms = None if time_limit_ms is None else time_limit_ms()
            return self.run(owner, source, event, context, time_limit_ms=remaining_ms)

        return run_for_owner

    def close(self) -> None:
        """Frees every isolate once running calls are done; later calls raise
        RuntimeError."""
        with self._state:
            if self._closed:
                return
            self._closed = True
            self._state.wait_for(lambda: self._busy == 0, timeout=_CLOSE_WAIT_S)
            idle = [isolate for pool in self._pools.values() for isolate in pool.idle]
            self._pools.clear()

        for isolate in idle:
            isolate.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop_thread.join()
        self._loop.close()

    def _run_pooled(
        self,
        key: tuple[str, str],
        source: str,
        event_json: str,
        context_json: str,
        limit_ms: float,
    ) -> dict[str, Any] | None:
        # A stale isolate did not run the call, so one retry on a new one is safe.
        for _attempt in range(2):
            pool, isolate = self._check_out(key, source)
            try:
                return isolate.call(event_json, context_json, limit_ms)
            except _StaleIsolate:
                isolate.broken = True
            finally:
                self._check_in(pool, isolate)
        raise SandboxError(JS_ERROR, "the JavaScript isolate could not be reset")

    def _check_out(
        self, key: tuple[str, str], source: str
    ) -> tuple[_CodePool, _Isolate]:
        with self._state:
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = _CodePool()
                evicted = self._evict_least_recent()
            else:
                self._pools.move_to_end(key)
                evicted = []
            invalid_source = pool.invalid_source
            isolate = pool.idle.pop() if pool.idle else None

        for old in evicted:
            old.close()
        if invalid_source is not None:
            raise SandboxError(JS_INVALID_SOURCE, invalid_source)
        if isolate is not None:
            return pool, isolate
        try:
            return pool, _Isolate(self._loop, source, self._limits)
        except SandboxError as error:
            if error.code == JS_INVALID_SOURCE:
                with self._state:
                    pool.invalid_source = error.message
            raise

    def _check_in(self, pool: _CodePool, isolate: _Isolate) -> None:
        with self._state:
            keep = (
                not isolate.broken
                and not pool.retired
                and not self._closed
                and len(pool.idle) < self._isolates_per_code
            )
            if keep:
                pool.idle.append(isolate)
        if not keep:
            isolate.close()

    def _evict_least_recent(self) -> list[_Isolate]:
        evicted: list[_Isolate] = []
        while len(self._pools) > self._max_pooled_codes:
            _key, pool = self._pools.popitem(last=False)
            pool.retired = True
            evicted.extend(pool.idle)
            pool.idle.clear()
        return evicted

    def _enter(self) -> None:
        with self._state:
            if self._closed:
                raise RuntimeError("the JavaScript sandbox is closed")
            self._busy += 1

    def _leave(self) -> None:
        with self._state:
            self._busy -= 1
            self._state.notify_all()

    def _size_problem(self, source: str) -> str | None:
        size = len(source.encode("utf-8", "surrogatepass"))
        if size > self._limits.max_source_bytes:
            return (
                f"the source is {size} bytes; "
                f"at most {self._limits.max_source_bytes} are allowed"
            )
        return None
