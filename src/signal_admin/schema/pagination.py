"""Relay-style connections over the service's keyset pages.

`first` is the page size (1 to 100) and `after` the cursor of the last edge
already seen; cursors are the same opaque strings the REST face hands out.
`totalCount` runs its count only when a query selects it, so a connection is
given the count to run rather than its result.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar

import strawberry

from signal_admin.persistence.pagination import (
    DEFAULT_PAGE_SIZE,
    Page,
    check_page_size,
    encode_cursor,
)
from signal_admin.schema.context import Info
from signal_admin.schema.execution import batched, one
from signal_admin.schema.fields import query_field

# The arguments every connection field takes.
First = Annotated[int | None, strawberry.argument(description="Page size, 1 to 100.")]
After = Annotated[
    str | None,
    strawberry.argument(description="The endCursor of the previous page."),
]

NodeT = TypeVar("NodeT")
RowT = TypeVar("RowT")


@strawberry.type(description="Where a page ends, and whether more follow.")
class PageInfo:
    has_next_page: bool = strawberry.field(
        description="Whether another page follows this one."
    )
    end_cursor: str | None = strawberry.field(
        description="The cursor of the last edge, to pass as `after`; null when "
        "the page is empty."
    )


async def cursors_of(context: object, edges: Sequence[Edge[Any]]) -> list[str]:
    """Each edge's cursor, made only when a query selects it."""
    return [cursor_of(edge.node) for edge in edges]


@strawberry.type(description="One item of a page, with its cursor.")
class Edge(Generic[NodeT]):
    @query_field(
        description="Opaque; pass it as `after` to read the items after this one."
    )
    @batched(cursors_of)
    async def cursor(self, info: Info) -> str:
        return await one(cursors_of, info.context, self)

    node: NodeT = strawberry.field(description="The item.")


@strawberry.type(description="A page of items, oldest first.")
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]] = strawberry.field(description="The page's items.")
    page_info: PageInfo = strawberry.field(description="Where the page ends.")
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @query_field(
        description="How many items match on all pages; counted only when selected."
    )
    async def total_count(self) -> int:
        return await self.count()


def page_size(first: int | None) -> int:
    """The `first` argument as a page size: 50 when null, else 1 to 100."""
    if first is None:
        return DEFAULT_PAGE_SIZE
    return check_page_size(first, "first")


def cursor_of(row: Any) -> str:
    return encode_cursor({"id": row.id})


def edges_of(page: Page[RowT], node_of: Callable[[RowT], NodeT]) -> list[Edge[NodeT]]:
    return [Edge(node=node_of(row)) for row in page.items]


def page_info_of(page: Page[Any]) -> PageInfo:
    last = page.items[-1] if page.items else None
    return PageInfo(
        has_next_page=page.has_more,
        end_cursor=cursor_of(last) if last is not None else None,
    )
