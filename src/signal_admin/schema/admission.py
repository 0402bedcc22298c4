"""What a document must pass before it runs, and what it is charged.

Each check answers a refusal with its own code before any field executes:

- anonymous callers may only sign in (`login`, `refreshToken`, `acceptInvite`)
  and ask for `__typename`; anything else, introspection included, is
  `UNAUTHORIZED`. This runs before validation, so anonymous callers learn
  nothing about the schema from validation messages;
- selections may nest at most 12 deep, fragments expanded
  (`QUERY_TOO_DEEP`), and a document may hold at most 30 aliases
  (`TOO_MANY_ALIASES`). Both are read from the document alone, before it is
  validated, which bounds the work validation does;
- a document may ask for at most 50,000 nodes (`QUERY_TOO_COMPLEX`);
- a document may hold at most 10 mutation fields and one `login`
  (`TOO_MANY_MUTATIONS`).

The token limit is enforced while parsing (see `document`).

The rate limit charges a query document once and a mutation document once per
root field. Every answer reports the document's cost, its node count: each
selected field counts once for every item of the lists around it; a list field
holds as many items as its `first` argument asks for, or as its connection's
`first` for a connection's edges, and 10 when nothing says.

The introspection fields `__schema` and `__type` count for depth and nodes as
one field each, and what is selected under them does not count: their answer
is bounded by the size of the schema, and the standard introspection query
that GraphiQL and code generators send nests its type references deeper than
12.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    DocumentNode,
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
    Visitor,
    get_named_type,
    get_nullable_type,
    visit,
)

from signal_admin.errors import Unauthorized
from signal_admin.resolvers.context import Principal
from signal_admin.schema.document import Operation
from signal_admin.schema.errors import (
    QueryTooComplex,
    QueryTooDeep,
    TooManyAliases,
    TooManyMutations,
)

ANONYMOUS_FIELDS = frozenset({"login", "refreshToken", "acceptInvite", "__typename"})
INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})
MAX_MUTATION_FIELDS = 10
MAX_LOGINS = 1
MAX_DEPTH = 12
MAX_ALIASES = 30
MAX_NODES = 50_000
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


def check_shape(operation: Operation) -> None:
    """Refuse a document nested too deeply or holding too many aliases."""
    if selection_depth(operation) > MAX_DEPTH:
        raise QueryTooDeep(f"Selections may nest at most {MAX_DEPTH} deep.")
    if (aliases := alias_count(operation.document)) > MAX_ALIASES:
        raise TooManyAliases(
            f"A document may hold at most {MAX_ALIASES} aliases; this one holds "
            f"{aliases}."
        )


def check_cost(cost: int) -> None:
    if cost > MAX_NODES:
        raise QueryTooComplex(
            f"A document may ask for at most {MAX_NODES} nodes; this one asks "
            f"for {cost}."
        )


def selection_depth(operation: Operation) -> int:
    """How deep the operation's fields nest, fragments expanded: `{ me { id } }`
    is 2. Counting stops one level past the limit, so the walk stays short
    whatever the document; introspection fields do not count what is under
    them.

    The walk keeps its own stack and enters a fragment again only at a greater
    depth than before, so neither long chains of fragments nor fragments spread
    many times (or inside themselves) make it expensive.
    """
    fragments = operation.fragments
    entered: dict[str, int] = {}
    pending = [(operation.definition.selection_set, 0)]
    deepest = 0
    while pending:
        selection_set, depth = pending.pop()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                deepest = max(deepest, depth + 1)
                if (
                    selection.selection_set
                    and depth + 1 <= MAX_DEPTH
                    and selection.name.value not in INTROSPECTION_FIELDS
                ):
                    pending.append((selection.selection_set, depth + 1))
            elif isinstance(selection, InlineFragmentNode):
                pending.append((selection.selection_set, depth))
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is not None and entered.get(name, -1) < depth:
                    entered[name] = depth
                    pending.append((fragment.selection_set, depth))
    return deepest


def alias_count(document: DocumentNode) -> int:
    """The aliases written in the document, in every operation and fragment."""
    counter = _AliasCounter()
    visit(document, counter)
    return counter.aliases


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


class _AliasCounter(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.aliases = 0

    def enter_field(self, node: FieldNode, *_: object) -> None:
        if node.alias is not None:
            self.aliases += 1


class _NodeCounter:
    """Counts nodes; a count grows in proportion to `repeat`, so each fragment
    is counted once per place it can land (its type and page size) and then
    scaled, which keeps fragments spread many times cheap to count."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, Any],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.fragment_counts: dict[tuple[str, str, int | None], int] = {}

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
                scope = self._scope(selection, parent)
                total += self.count(selection.selection_set, scope, repeat, page_size)
                continue
            assert isinstance(selection, FragmentSpreadNode)
            total += repeat * self._fragment(selection.name.value, parent, page_size)
        return total

    def _fragment(
        self, name: str, parent: GraphQLNamedType, page_size: int | None
    ) -> int:
        """Nodes under one spread of the fragment `name`."""
        key = (name, parent.name, page_size)
        if key not in self.fragment_counts:
            fragment = self.fragments[name]
            scope = self._scope(fragment, parent)
            self.fragment_counts[key] = self.count(
                fragment.selection_set, scope, 1, page_size
            )
        return self.fragment_counts[key]

    def _scope(
        self,
        fragment: InlineFragmentNode | FragmentDefinitionNode,
        parent: GraphQLNamedType,
    ) -> GraphQLNamedType:
        condition = fragment.type_condition
        scope = self.schema.get_type(condition.name.value) if condition else parent
        assert scope is not None
        return scope

    def _below(
        self,
        node: FieldNode,
        parent: GraphQLNamedType,
        repeat: int,
        page_size: int | None,
    ) -> int:
        if node.selection_set is None or node.name.value in INTROSPECTION_FIELDS:
            return 0
        field = _field_of(parent, node.name.value)
        if field is None:
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
