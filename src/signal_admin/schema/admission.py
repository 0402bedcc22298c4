"""What a document must pass before it runs, and what it is charged.

Each check answers a refusal with its own code before any field executes:

- anonymous callers may only sign in (`login`, `refreshToken`, `acceptInvite`)
  and ask for `__typename`; anything else, introspection included, is
  `UNAUTHORIZED`. This runs before validation, so anonymous callers learn
  nothing about the schema from validation messages;
- a document may hold at most 10 mutation fields and one `login`
  (`TOO_MANY_MUTATIONS`).

The rate limit charges a query document once and a mutation document once per
root field. Every answer reports the document's cost, its node count: each
selected field counts once for every item of the lists around it; a list field
holds as many items as its `first` argument asks for, or as its connection's
`first` for a connection's edges, and 10 when nothing says.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
)

from signal_admin.errors import Unauthorized
from signal_admin.resolvers.context import Principal
from signal_admin.schema.document import Operation
from signal_admin.schema.errors import TooManyMutations

ANONYMOUS_FIELDS = frozenset({"login", "refreshToken", "acceptInvite", "__typename"})
MAX_MUTATION_FIELDS = 10
MAX_LOGINS = 1
DEFAULT_LIST_SIZE = 10


def is_anonymous(operation: Operation) -> bool:
    """Whether the operation only does what anonymous callers may do."""
    return all(name in ANONYMOUS_FIELDS for name in operation.root_fields().values())


def check_caller(operation: Operation, principal: Principal | None) -> None:
    """Refuse an anonymous caller anything but signing in."""
    if principal is None and not is_anonymous(operation):
        raise Unauthorized(
            "Authentication is required: sign in with login, then send the "
            "access token as 'Authorization: Bearer <token>'."
        )


def check_mutations(operation: Operation) -> None:
    if operation.type is not OperationType.MUTATION:
        return
    names = _mutation_fields(operation)
    if len(names) > MAX_MUTATION_FIELDS:
        raise TooManyMutations(
            f"A document may hold at most {MAX_MUTATION_FIELDS} mutation fields; "
            f"this one holds {len(names)}."
        )
    if names.count("login") > MAX_LOGINS:
        raise TooManyMutations("A document may hold only one login.")


def rate_cost(operation: Operation) -> int:
    """Requests charged against the rate limit: one per root mutation field,
    or one for a document of queries."""
    if operation.type is not OperationType.MUTATION:
        return 1
    return max(1, len(_mutation_fields(operation)))


def node_cost(
    schema: GraphQLSchema, operation: Operation, variables: dict[str, Any]
) -> int:
    """The document's node count; the document must be valid."""
    root = schema.get_root_type(operation.type)
    assert root is not None
    counter = _NodeCounter(schema, operation.fragments, variables)
    return counter.count(operation.definition.selection_set, root, 1, None)


def _mutation_fields(operation: Operation) -> list[str]:
    return [
        name for name in operation.root_fields().values() if not name.startswith("__")
    ]


class _NodeCounter:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, Any],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables

    def count(
        self,
        selection_set: SelectionSetNode,
        parent: GraphQLNamedType,
        repeat: int,
        page_size: int | None,
    ) -> int:
        """Nodes under `selection_set` on `parent`, `repeat` times over;
        `page_size` is the `first` of the connection `parent` is, if any."""
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += repeat + self._below(selection, parent, repeat, page_size)
                continue
            if isinstance(selection, InlineFragmentNode):
                fragment: InlineFragmentNode | FragmentDefinitionNode = selection
            else:
                assert isinstance(selection, FragmentSpreadNode)
                fragment = self.fragments[selection.name.value]
            condition = fragment.type_condition
            scope = self.schema.get_type(condition.name.value) if condition else parent
            assert scope is not None
            total += self.count(fragment.selection_set, scope, repeat, page_size)
        return total

    def _below(
        self,
        node: FieldNode,
        parent: GraphQLNamedType,
        repeat: int,
        page_size: int | None,
    ) -> int:
        field = _field_of(parent, node.name.value)
        if node.selection_set is None or field is None:
            return 0
        first = self._first(field, node)
        child = get_named_type(field.type)
        if not isinstance(get_nullable_type(field.type), GraphQLList):
            return self.count(node.selection_set, child, repeat, first)
        items = page_size if page_size is not None else first
        factor = DEFAULT_LIST_SIZE if items is None else max(0, items)
        return self.count(node.selection_set, child, repeat * factor, None)

    def _first(self, field: GraphQLField, node: FieldNode) -> int | None:
        """The field's `first` argument; its default when left out or null."""
        if "first" not in field.args:
            return None
        value: Any = None
        for argument in node.arguments or ():
            if argument.name.value != "first":
                continue
            if isinstance(argument.value, IntValueNode):
                value = int(argument.value.value)
            elif isinstance(argument.value, VariableNode):
                value = self.variables.get(argument.value.name.value)
        if value is None:
            value = field.args["first"].default_value
        return value if isinstance(value, int) else None


def _field_of(parent: GraphQLNamedType, name: str) -> GraphQLField | None:
    if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
        return None
    field: GraphQLField | None = parent.fields.get(name)
    return field
