"""A recursive-descent parser from tokens to an `Expression`.

Precedence, loosest first: `OR`; `AND`; `NOT`; comparisons (`= == != <> < <= >
>=`, `IS [NOT] NULL`, `[NOT] IN`, `[NOT] LIKE`, `[NOT] CONTAINS`), which do not
chain; `+ - ||`; `* / %`; unary minus. Binary operators group to the left.

The text's length, its nesting of parentheses, calls and lists, and the depth of
the resulting tree are bounded, so that no input can exhaust the interpreter's
stack: anything beyond them is a syntax error like any other.
"""

from __future__ import annotations

from collections.abc import Callable

from signal_admin.processing.expressions.errors import ExpressionSyntaxError
from signal_admin.processing.expressions.functions import FUNCTIONS
from signal_admin.processing.expressions.nodes import (
    Binary,
    Call,
    Contains,
    Expression,
    InList,
    IsNull,
    Like,
    Literal,
    Logical,
    Negate,
    Node,
    Not,
    Path,
    children,
)
from signal_admin.processing.expressions.tokens import Token, TokenKind, tokenize

MAX_LENGTH = 10_000
MAX_NESTING = 20
MAX_DEPTH = 100

_COMPARISONS = ("=", "==", "!=", "<>", "<", "<=", ">", ">=")
_RESERVED = frozenset(
    {"AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "CONTAINS", "TRUE", "FALSE"}
)


def parse_text(text: str) -> Expression:
    if len(text) > MAX_LENGTH:
        raise ExpressionSyntaxError(
            f"Expression longer than {MAX_LENGTH} characters", MAX_LENGTH
        )
    parser = _Parser(tokenize(text))
    root = parser.expression()
    parser.expect_end()
    return Expression(text, root)


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self._tokens = tokens
        self._index = 0
        self._nesting = 0
        self._depths: dict[int, int] = {}

    # -- grammar, loosest first

    def expression(self) -> Node:
        return self._or()

    def expect_end(self) -> None:
        token = self._peek()
        if token.kind is not TokenKind.END:
            raise ExpressionSyntaxError(
                f"Unexpected {_describe(token)}", token.position
            )

    def _or(self) -> Node:
        return self._logical("OR", self._and)

    def _and(self) -> Node:
        return self._logical("AND", self._not)

    def _logical(self, keyword: str, operand: Callable[[], Node]) -> Node:
        start = self._peek().position
        operands = [operand()]
        while self._peek().is_keyword(keyword):
            self._advance()
            operands.append(operand())
        if len(operands) == 1:
            return operands[0]
        return self._node(Logical(start, keyword, tuple(operands)))

    def _not(self) -> Node:
        negations: list[Token] = []
        while self._peek().is_keyword("NOT"):
            negations.append(self._advance())
        node = self._comparison()
        for token in reversed(negations):
            node = self._node(Not(token.position, node))
        return node

    def _comparison(self) -> Node:
        left = self._additive()
        node = self._comparison_tail(left)
        if node is not left and self._at_comparison():
            token = self._peek()
            raise ExpressionSyntaxError(
                "Comparisons do not chain; add parentheses", token.position
            )
        return node

    def _comparison_tail(self, left: Node) -> Node:
        token = self._peek()
        if token.kind is TokenKind.SYMBOL and token.text in _COMPARISONS:
            self._advance()
            return self._node(
                Binary(token.position, token.text, left, self._additive())
            )
        if token.is_keyword("IS"):
            self._advance()
            negated = self._accept_keyword("NOT")
            self._expect_keyword("NULL")
            return self._node(IsNull(token.position, left, negated))

        negated = token.is_keyword("NOT") and self._peek(1).is_keyword(
            "IN", "LIKE", "CONTAINS"
        )
        if negated:
            self._advance()
        operator = self._peek()
        if operator.is_keyword("IN"):
            self._advance()
            items = self._parenthesized_list(operator)
            return self._node(InList(operator.position, left, items, negated))
        if operator.is_keyword("LIKE"):
            self._advance()
            return self._node(Like(operator.position, left, self._additive(), negated))
        if operator.is_keyword("CONTAINS"):
            self._advance()
            item = self._additive()
            return self._node(Contains(operator.position, left, item, negated))
        return left

    def _at_comparison(self) -> bool:
        token = self._peek()
        return (token.kind is TokenKind.SYMBOL and token.text in _COMPARISONS) or (
            token.is_keyword("IS", "IN", "LIKE", "CONTAINS")
            or (
                token.is_keyword("NOT")
                and self._peek(1).is_keyword("IN", "LIKE", "CONTAINS")
            )
        )

    def _additive(self) -> Node:
        node = self._multiplicative()
        while (token := self._peek()).is_symbol("+", "-", "||"):
            self._advance()
            right = self._multiplicative()
            node = self._node(Binary(token.position, token.text, node, right))
        return node

    def _multiplicative(self) -> Node:
        node = self._unary()
        while (token := self._peek()).is_symbol("*", "/", "%"):
            self._advance()
            right = self._unary()
            node = self._node(Binary(token.position, token.text, node, right))
        return node

    def _unary(self) -> Node:
        signs: list[Token] = []
        while self._peek().is_symbol("-"):
            signs.append(self._advance())
        node = self._primary()
        for token in reversed(signs):
            node = self._node(Negate(token.position, node))
        return node

    def _primary(self) -> Node:
        token = self._advance()
        if token.kind is TokenKind.NUMBER:
            return Literal(token.position, token.number)
        if token.kind is TokenKind.TEXT:
            return Literal(token.position, token.text)
        if token.is_symbol("("):
            self._enter(token)
            node = self.expression()
            self._expect_symbol(")", token)
            self._nesting -= 1
            return node
        if token.kind is TokenKind.WORD:
            return self._word(token)
        raise ExpressionSyntaxError(
            f"Expected a value, found {_describe(token)}", token.position
        )

    def _word(self, token: Token) -> Node:
        word = token.text.upper()
        if word in ("TRUE", "FALSE"):
            return Literal(token.position, word == "TRUE")
        if word == "NULL":
            return Literal(token.position, None)
        if self._peek().is_symbol("("):
            return self._call(token)
        if token.text == "event":
            return self._path(token)
        if word in FUNCTIONS:
            following = self._peek()
            raise ExpressionSyntaxError(
                f"Expected '(' after {word}, found {_describe(following)}",
                following.position,
            )
        if word in _RESERVED:
            raise ExpressionSyntaxError(
                f"Expected a value, found {word}", token.position
            )
        raise ExpressionSyntaxError(
            f"Unknown name {token.text!r}; paths start with 'event'", token.position
        )

    def _call(self, name: Token) -> Node:
        function = FUNCTIONS.get(name.text.upper())
        if function is None:
            raise ExpressionSyntaxError(f"Unknown function {name.text}", name.position)
        arguments = self._parenthesized_list(name, allow_empty=True)
        count = len(arguments)
        if count < function.min_arguments or (
            function.max_arguments is not None and count > function.max_arguments
        ):
            arity = _arity(function.min_arguments, function.max_arguments)
            raise ExpressionSyntaxError(
                f"{name.text.upper()} takes {arity}, not {count}",
                name.position,
            )
        return self._node(Call(name.position, name.text.upper(), arguments))

    def _path(self, start: Token) -> Node:
        segments: list[str | int] = []
        while True:
            token = self._peek()
            if token.is_symbol("."):
                self._advance()
                key = self._advance()
                if key.kind is not TokenKind.WORD:
                    raise ExpressionSyntaxError(
                        f"Expected a key after '.', found {_describe(key)}",
                        key.position,
                    )
                segments.append(key.text)
            elif token.is_symbol("["):
                self._advance()
                segments.append(self._subscript())
            else:
                return Path(start.position, tuple(segments))

    def _subscript(self) -> str | int:
        token = self._advance()
        if token.kind is TokenKind.TEXT:
            segment: str | int = token.text
        elif token.kind is TokenKind.NUMBER and isinstance(token.number, int):
            segment = token.number
        else:
            raise ExpressionSyntaxError(
                "Expected a list index or a quoted key inside [ ]", token.position
            )
        closing = self._advance()
        if not closing.is_symbol("]"):
            raise ExpressionSyntaxError(
                f"Expected ']', found {_describe(closing)}", closing.position
            )
        return segment

    def _parenthesized_list(
        self, owner: Token, *, allow_empty: bool = False
    ) -> tuple[Node, ...]:
        opening = self._advance()
        if not opening.is_symbol("("):
            raise ExpressionSyntaxError(
                f"Expected '(' after {owner.text.upper()}, found {_describe(opening)}",
                opening.position,
            )
        self._enter(opening)
        items: list[Node] = []
        if not (allow_empty and self._peek().is_symbol(")")):
            items.append(self.expression())
            while self._peek().is_symbol(","):
                self._advance()
                items.append(self.expression())
        self._expect_symbol(")", opening)
        self._nesting -= 1
        return tuple(items)

    # -- plumbing

    def _node(self, node: Node) -> Node:
        """Records the node's depth and refuses trees deeper than `MAX_DEPTH`."""
        depth = 1 + max((self._depths.get(id(c), 0) for c in children(node)), default=0)
        if depth > MAX_DEPTH:
            raise ExpressionSyntaxError(
                f"Expression nested deeper than {MAX_DEPTH} operations", node.position
            )
        self._depths[id(node)] = depth
        return node

    def _enter(self, opening: Token) -> None:
        self._nesting += 1
        if self._nesting > MAX_NESTING:
            raise ExpressionSyntaxError(
                f"Parentheses nested deeper than {MAX_NESTING}", opening.position
            )

    def _peek(self, ahead: int = 0) -> Token:
        return self._tokens[min(self._index + ahead, len(self._tokens) - 1)]

    def _advance(self) -> Token:
        token = self._peek()
        if token.kind is not TokenKind.END:
            self._index += 1
        return token

    def _accept_keyword(self, keyword: str) -> bool:
        if self._peek().is_keyword(keyword):
            self._advance()
            return True
        return False

    def _expect_keyword(self, keyword: str) -> None:
        token = self._advance()
        if not token.is_keyword(keyword):
            raise ExpressionSyntaxError(
                f"Expected {keyword}, found {_describe(token)}", token.position
            )

    def _expect_symbol(self, symbol: str, opening: Token) -> None:
        token = self._advance()
        if not token.is_symbol(symbol):
            raise ExpressionSyntaxError(
                f"Expected {symbol!r} to close the {opening.text!r} at position "
                f"{opening.position}, found {_describe(token)}",
                token.position,
            )


def _describe(token: Token) -> str:
    if token.kind is TokenKind.END:
        return "the end of the expression"
    if token.kind is TokenKind.TEXT:
        return "a text"
    return repr(token.text)


def _arity(minimum: int, maximum: int | None) -> str:
    if maximum is None:
        return f"at least {minimum} argument{'s' if minimum != 1 else ''}"
    if minimum == maximum:
        return f"{minimum} argument{'s' if minimum != 1 else ''}"
    return f"{minimum} to {maximum} arguments"
