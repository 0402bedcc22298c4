"""A GraphQL document made ready to run: parsed, its operation chosen, checked
against the schema and its variables coerced.

Parsing stops at the token limit, so an oversized document costs no more to
refuse than an ordinary one costs to read. Parsing and validation are cached
per document text (bounded, and only for documents of ordinary size), since
clients send the same few documents over and over.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    GraphQLSyntaxError,
    InlineFragmentNode,
    ListValueNode,
    Node,
    ObjectValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    get_operation_ast,
    parse,
    print_ast,
    specified_rules,
)
from graphql.execution.values import get_variable_values
from graphql.pyutils import inspect
from graphql.validation import MaxIntrospectionDepthRule
from strawberry.schema.schema import validate_document

from signal_admin.schema.errors import (
    InvalidDocument,
    QueryTooLarge,
    UnparsableDocument,
)

MAX_TOKENS = 5_000
CACHE_SIZE = 256
CACHED_DOCUMENT_CHARS = 16 * 1024
# Introspection lists (`fields`, `interfaces`, …) may nest only three deep, so
# a query that walks the schema's cycles over and over is refused.
RULES = (*specified_rules, MaxIntrospectionDepthRule)


@dataclass(frozen=True, slots=True)
class Operation:
    """The one operation of a document that a request runs."""

    text: str
    document: DocumentNode
    definition: OperationDefinitionNode

    @property
    def type(self) -> OperationType:
        return self.definition.operation

    @property
    def fragments(self) -> dict[str, FragmentDefinitionNode]:
        return {
            definition.name.value: definition
            for definition in self.document.definitions
            if isinstance(definition, FragmentDefinitionNode)
        }

    def root_fields(self) -> dict[str, str]:
        """The top-level fields, fragments expanded: response key → field name.
        Fields sharing a response key run once, so they count once."""
        fields: dict[str, str] = {}
        for field in selected_fields(self.definition.selection_set, self.fragments):
            key = field.alias.value if field.alias else field.name.value
            fields.setdefault(key, field.name.value)
        return fields


def read_operation(query: str, operation_name: str | None) -> Operation:
    """Parse `query` and pick the operation to run; not yet validated."""
    document = _parsed(query) if _cacheable(query) else _parse(query)
    definition = get_operation_ast(document, operation_name)
    if definition is None:
        message = _missing_operation(document, operation_name)
        raise InvalidDocument([GraphQLError(message)])
    return Operation(query, document, definition)


def validate(
    schema: GraphQLSchema, operation: Operation, variables: dict[str, Any] | None
) -> dict[str, Any]:
    """Check the document against the schema and answer the operation's
    coerced variables."""
    document = operation.document
    if _cacheable(operation.text):
        errors = _validation_errors(schema, document)
    else:
        errors = _validate(schema, document)
    if errors:
        raise InvalidDocument(_without_values(errors, _literals(document)))
    coerced = get_variable_values(
        schema,
        operation.definition.variable_definitions or (),
        variables or {},
        max_errors=20,
    )
    if isinstance(coerced, list):
        raise InvalidDocument(_without_values(coerced, _renderings(variables)))
    return coerced.coerced


VALUE_NOT_SHOWN = "(value not shown)"


def _without_values(
    errors: list[GraphQLError], renderings: Iterable[str]
) -> list[GraphQLError]:
    """`errors` with the values they quote taken out. A refusal says where a
    value is wrong and why, never what it was: it may be a secret, and error
    messages travel further than answers (logs, screenshots, bug reports)."""
    longest_first = sorted(set(renderings), key=len, reverse=True)
    cleaned = []
    for error in errors:
        message = error.message
        for rendering in longest_first:
            message = message.replace(rendering, VALUE_NOT_SHOWN)
        if message != error.message:
            error = GraphQLError(
                message,
                error.nodes,
                error.source,
                error.positions,
                error.path,
                error.original_error,
                error.extensions,
            )
        cleaned.append(error)
    return cleaned


def _literals(document: DocumentNode) -> Iterator[str]:
    """How graphql-core quotes each text, list and object literal of
    `document` in its messages."""
    pending: list[Node] = [document]
    while pending:
        node = pending.pop()
        if isinstance(node, StringValueNode | ListValueNode | ObjectValueNode):
            yield print_ast(node)
        for key in node.keys:
            child = getattr(node, key, None)
            if isinstance(child, Node):
                pending.append(child)
            elif isinstance(child, tuple | list):
                pending.extend(item for item in child if isinstance(item, Node))


def _renderings(value: Any) -> Iterator[str]:
    """How graphql-core quotes each text, list and object within the
    variables `value` in its messages."""
    if isinstance(value, dict):
        yield inspect(value)
        for item in value.values():
            yield from _renderings(item)
    elif isinstance(value, list):
        yield inspect(value)
        for item in value:
            yield from _renderings(item)
    elif isinstance(value, str):
        yield inspect(value)


def selected_fields(
    selection_set: SelectionSetNode,
    fragments: dict[str, FragmentDefinitionNode],
    _seen: frozenset[str] = frozenset(),
) -> Iterator[FieldNode]:
    """The fields of a selection set with its fragments expanded. Fragments that
    are unknown or spread inside themselves are skipped (validation names
    them), so this is safe on a document not yet validated."""
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from selected_fields(selection.selection_set, fragments, _seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in _seen:
                yield from selected_fields(
                    fragment.selection_set, fragments, _seen | {name}
                )


def _parse(query: str) -> DocumentNode:
    # max_tokens counts comments too, so padding a document with comments does
    # not get it past the limit.
    try:
        return parse(query, max_tokens=MAX_TOKENS)
    except GraphQLSyntaxError as error:
        if error.description.startswith("Document contains more than"):
            raise QueryTooLarge(
                f"A document may hold at most {MAX_TOKENS} tokens."
            ) from None
        raise UnparsableDocument([error]) from None
    except GraphQLError as error:
        raise UnparsableDocument([error]) from None


@lru_cache(maxsize=CACHE_SIZE)
def _parsed(query: str) -> DocumentNode:
    return _parse(query)


def _validate(schema: GraphQLSchema, document: DocumentNode) -> list[GraphQLError]:
    return validate_document(schema, document, RULES)


@lru_cache(maxsize=CACHE_SIZE)
def _validation_errors(
    schema: GraphQLSchema, document: DocumentNode
) -> list[GraphQLError]:
    return _validate(schema, document)


def _cacheable(query: str) -> bool:
    return len(query) <= CACHED_DOCUMENT_CHARS


def _missing_operation(document: DocumentNode, operation_name: str | None) -> str:
    if operation_name:
        return f"The document has no operation named {operation_name!r}."
    operations = sum(
        isinstance(definition, OperationDefinitionNode)
        for definition in document.definitions
    )
    if operations > 1:
        return "The document holds several operations: name one in operationName."
    return "The document holds no operation."
