"""What every processing step shares: how a step fails, how it runs custom
JavaScript, and how long it may still take.

Processing code is synchronous and free of I/O; callers run it in a worker
thread, never on the event loop, and hand it a `Deadline` for the request's
time budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol


class StepFailure(Exception):
    """A step could not do its work (an expression error, a JavaScript error
    or timeout, a payload that cannot be written). `code` is one of the stage
    error codes users see."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def as_error(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


class JavaScriptRunner(Protocol):
    """Runs `function process(event, context)` from `source` on a copy of
    `event`; answers the returned object, or None when the code drops the
    event. Raises a `StepFailure` (timeout, thrown error, bad result)."""

    def __call__(
        self, source: str, event: Mapping[str, Any], context: Mapping[str, Any]
    ) -> dict[str, Any] | None: ...


class Deadline:
    """A point in time after which work stops; `Deadline.none()` never passes."""

    def __init__(
        self, seconds: float | None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._at = None if seconds is None else clock() + seconds

    @classmethod
    def none(cls) -> Deadline:
        return cls(None)

    @property
    def expired(self) -> bool:
        return self._at is not None and self._clock() >= self._at

    def remaining_ms(self) -> float | None:
        """Milliseconds left (never below 0), or None without a deadline."""
        if self._at is None:
            return None
        return max(0.0, (self._at - self._clock()) * 1000)


TIMEOUT = "TIMEOUT"
