"""The two ways an expression can fail: it cannot be read, or it cannot be computed.

Both carry the character offset (0-based) of the place they concern, and say it
in their message, so a transformation document's validation can point at it.
"""

from __future__ import annotations


class ExpressionError(Exception):
    def __init__(self, message: str, position: int) -> None:
        self.position = position
        self.message = f"{message} at position {position}"
        super().__init__(self.message)


class ExpressionSyntaxError(ExpressionError):
    """The text is not an expression: raised by `parse`, never by `evaluate`."""


class ExpressionEvaluationError(ExpressionError):
    """The expression is well formed but cannot be computed for this event.

    Division by zero, text where a number is needed, ordering a text against a
    number: a transformation step's `on_error` decides what happens next.
    """
