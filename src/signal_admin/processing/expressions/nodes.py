"""The parsed form of an expression: an immutable tree of nodes.

Every node remembers the character offset it was written at, so evaluation
errors point at the operator or function that failed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Literal:
    position: int
    value: bool | int | float | str | None


@dataclass(frozen=True, slots=True)
class Path:
    """`event` followed by keys (`.name`, `['name']`) and list indexes (`[0]`)."""

    position: int
    segments: tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Negate:
    position: int
    operand: Node


@dataclass(frozen=True, slots=True)
class Not:
    position: int
    operand: Node


@dataclass(frozen=True, slots=True)
class Logical:
    """`AND` or `OR` over two or more operands, evaluated left to right."""

    position: int
    operator: str
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Binary:
    """Arithmetic (`+ - * / %`), concatenation (`||`) and comparisons."""

    position: int
    operator: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class IsNull:
    position: int
    operand: Node
    negated: bool


@dataclass(frozen=True, slots=True)
class InList:
    position: int
    operand: Node
    items: tuple[Node, ...]
    negated: bool


@dataclass(frozen=True, slots=True)
class Like:
    position: int
    operand: Node
    pattern: Node
    negated: bool


@dataclass(frozen=True, slots=True)
class Contains:
    position: int
    container: Node
    item: Node
    negated: bool


@dataclass(frozen=True, slots=True)
class Call:
    position: int
    name: str
    arguments: tuple[Node, ...]


Node = (
    Literal
    | Path
    | Negate
    | Not
    | Logical
    | Binary
    | IsNull
    | InList
    | Like
    | Contains
    | Call
)


@dataclass(frozen=True, slots=True)
class Expression:
    """A parsed expression, ready to evaluate against any number of events."""

    text: str
    root: Node

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"


def children(node: Node) -> tuple[Node, ...]:
    match node:
        case Literal() | Path():
            return ()
        case Negate(operand=operand) | Not(operand=operand) | IsNull(operand=operand):
            return (operand,)
        case Logical(operands=operands):
            return operands
        case Binary(left=left, right=right):
            return (left, right)
        case InList(operand=operand, items=items):
            return (operand, *items)
        case Like(operand=operand, pattern=pattern):
            return (operand, pattern)
        case Contains(container=container, item=item):
            return (container, item)
        case Call(arguments=arguments):
            return arguments
