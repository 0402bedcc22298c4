"""Planned execution answers exactly what graphql-core's own execution answers,
data and errors alike, while calling each batched field once per level."""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Any, ClassVar

import pytest
import strawberry
from strawberry.types import ExecutionResult

from signal_admin.schema.execution import (
    PlannedExecutionContext,
    batched,
    once_per_row,
    one,
)


class Calls:
    """How many times each batch function ran in one execution."""

    counts: ClassVar[dict[str, int]] = {}

    @classmethod
    def record(cls, name: str) -> None:
        cls.counts[name] = cls.counts.get(name, 0) + 1


@strawberry.enum
class Colour(Enum):
    RED = "red"
    BLUE = "blue"


async def owners_of(context: Any, items: Sequence[Item]) -> list[Owner | None]:
    Calls.record("owner")
    return [OWNERS.get(item.owner_id) for item in items]


async def labels_of(context: Any, items: Sequence[Item]) -> list[list[str] | None]:
    Calls.record("labels")
    return [None if item.id == "broken-labels" else ["a", item.id] for item in items]


async def checks_of(context: Any, items: Sequence[Item]) -> list[bool]:
    Calls.record("check")
    if any(item.id == "explodes" for item in items):
        raise ValueError("the check failed")
    return [True for _ in items]


async def children_of(context: Any, owners: Sequence[Owner]) -> list[list[Item]]:
    Calls.record("children")
    return [[Item(id=f"{owner.id}-child", owner_id=None)] for owner in owners]


@strawberry.type
class Owner:
    id: strawberry.ID
    name: str

    @strawberry.field
    @batched(children_of)
    async def children(self, info: strawberry.Info) -> list[Item]:
        return await one(children_of, info.context, self)

    @strawberry.field
    async def greeting(self, polite: bool = False) -> str:
        return f"Dear {self.name}" if polite else f"Hi {self.name}"


@strawberry.type
class Item:
    id: strawberry.ID
    owner_id: strawberry.Private[str | None]
    colour: Colour = Colour.RED
    size: int = 3
    note: str | None = None

    @strawberry.field
    @batched(owners_of)
    async def owner(self, info: strawberry.Info) -> Owner | None:
        return await one(owners_of, info.context, self)

    @strawberry.field
    @batched(labels_of)
    async def labels(self, info: strawberry.Info) -> list[str]:
        return await one(labels_of, info.context, self)

    @strawberry.field
    @batched(checks_of)
    async def check(self, info: strawberry.Info) -> bool:
        return await one(checks_of, info.context, self)


OWNERS = {
    "o1": Owner(id=strawberry.ID("o1"), name="Ada"),
    "o2": Owner(id=strawberry.ID("o2"), name="Grace"),
}
ITEMS: dict[str, list[Item]] = {}


@strawberry.type
class Query:
    @strawberry.field
    def items(self, set: str = "plain") -> list[Item]:
        return ITEMS[set]

    @strawberry.field
    def first(self) -> Item:
        return ITEMS["plain"][0]


def _items(*ids: str, owner: str | None = "o1") -> list[Item]:
    return [Item(id=strawberry.ID(i), owner_id=owner) for i in ids]


ITEMS.update(
    plain=[
        *_items("i1", "i2", "i3"),
        *_items("i4", owner="o2"),
        *_items("i5", owner=None),
    ],
    explodes=_items("i1", "explodes", "i3"),
    broken_labels=_items("i1", "broken-labels"),
    big=[Item(id=strawberry.ID("big"), owner_id="o1", size=2**31)],
)

planned = strawberry.Schema(Query, execution_context_class=PlannedExecutionContext)
standard = strawberry.Schema(Query)


async def both(query: str, **variables: Any) -> tuple[ExecutionResult, ExecutionResult]:
    Calls.counts = {}
    mine = await planned.execute(query, variable_values=variables)
    calls = dict(Calls.counts)
    reference = await standard.execute(query, variable_values=variables)
    Calls.counts = calls
    return mine, reference


def same(mine: ExecutionResult, reference: ExecutionResult) -> None:
    assert mine.data == reference.data
    assert [(e.message, e.path) for e in mine.errors or []] == [
        (e.message, e.path) for e in reference.errors or []
    ]


QUERIES = {
    "nested relations": "{ items { id colour size owner { name children { id } } } }",
    "aliases and typename": (
        "{ items { __typename key: id again: id owner { who: name __typename } } }"
    ),
    "fragments": """
        query { items { ...ItemParts owner { ... on Owner { id } } } }
        fragment ItemParts on Item { id labels note }
    """,
    "field with arguments below": "{ items { owner { greeting(polite: true) } } }",
    "single object": "{ first { id labels owner { name } } }",
}


@pytest.mark.parametrize("query", QUERIES.values(), ids=QUERIES.keys())
async def test_plans_answer_what_graphql_core_answers(query: str) -> None:
    mine, reference = await both(query)

    assert mine.errors is None
    same(mine, reference)


async def test_skip_and_include_follow_the_variables() -> None:
    query = """
        query ($skip: Boolean!) {
          items { id @skip(if: $skip) owner @include(if: $skip) { name } }
        }
    """
    for skip in (True, False):
        same(*await both(query, skip=skip))


async def test_each_batched_field_runs_once_per_level() -> None:
    mine, _ = await both("{ items { owner { children { owner { name } } } } }")

    assert mine.errors is None
    assert Calls.counts == {"owner": 2, "children": 1}


async def test_an_error_in_a_batched_field_is_reported_as_graphql_core_would() -> None:
    mine, reference = await both('{ items(set: "explodes") { id check } }')

    assert mine.errors is not None
    assert mine.errors[0].message == "the check failed"
    same(mine, reference)


async def test_a_null_in_a_non_null_field_is_reported_as_graphql_core_would() -> None:
    mine, reference = await both('{ items(set: "broken_labels") { id labels } }')

    assert mine.errors is not None
    assert "Cannot return null for non-nullable field Item.labels" in (
        mine.errors[0].message
    )
    same(mine, reference)


async def test_an_int_out_of_range_is_reported_as_graphql_core_would() -> None:
    mine, reference = await both('{ items(set: "big") { size } }')

    assert mine.errors is not None
    same(mine, reference)


def test_once_per_row_makes_one_view_per_distinct_row() -> None:
    shared, other = object(), object()
    made: list[object] = []

    def view(row: object) -> int:
        made.append(row)
        return len(made)

    assert once_per_row([shared, other, shared, shared], view) == [1, 2, 1, 1]
    assert made == [shared, other]
