"""Splitting an expression's text into tokens, each with its character offset."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from signal_admin.processing.expressions.errors import ExpressionSyntaxError
from signal_admin.processing.expressions.values import read_number


class TokenKind(Enum):
    NUMBER = "number"
    TEXT = "text"
    WORD = "word"
    SYMBOL = "symbol"
    END = "end"


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokenKind
    # For words, the text as written; keywords are compared in upper case.
    # For symbols, the operator; for texts, the unquoted value.
    text: str
    position: int
    number: int | float | None = None

    def is_keyword(self, *keywords: str) -> bool:
        return self.kind is TokenKind.WORD and self.text.upper() in keywords

    def is_symbol(self, *symbols: str) -> bool:
        return self.kind is TokenKind.SYMBOL and self.text in symbols


# Longest first, so `<=` is not read as `<` then `=`.
_SYMBOLS = (
    "==", "!=", "<>", "<=", ">=", "||",
    "=", "<", ">", "+", "-", "*", "/", "%", "(", ")", ",", ".", "[", "]",
)  # fmt: skip
_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SPACE = frozenset(" \t\r\n")


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char in _SPACE:
            position += 1
        elif char == "'":
            token, position = _read_text(text, position)
            tokens.append(token)
        elif number := _NUMBER.match(text, position):
            tokens.append(_number_token(number.group(), position))
            position = number.end()
        elif word := _WORD.match(text, position):
            tokens.append(Token(TokenKind.WORD, word.group(), position))
            position = word.end()
        else:
            symbol = next((s for s in _SYMBOLS if text.startswith(s, position)), None)
            if symbol is None:
                raise ExpressionSyntaxError(f"Unexpected character {char!r}", position)
            tokens.append(Token(TokenKind.SYMBOL, symbol, position))
            position += len(symbol)

    tokens.append(Token(TokenKind.END, "", len(text)))
    return tokens


def _read_text(text: str, start: int) -> tuple[Token, int]:
    """Reads a quoted text from its opening quote; `''` inside stands for `'`."""
    parts: list[str] = []
    position = start + 1
    while True:
        closing = text.find("'", position)
        if closing == -1:
            raise ExpressionSyntaxError("Unterminated text", start)
        parts.append(text[position:closing])
        if text.startswith("''", closing):
            parts.append("'")
            position = closing + 2
        else:
            return Token(TokenKind.TEXT, "".join(parts), start), closing + 1


def _number_token(literal: str, position: int) -> Token:
    number = read_number(literal)
    if number is None:
        raise ExpressionSyntaxError("Number out of range", position)
    return Token(TokenKind.NUMBER, literal, position, number)
