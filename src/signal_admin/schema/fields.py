"""How root fields are declared.

`query_field`, `mutation_field` and `subscription_field` are
`strawberry.field`, `strawberry.mutation` and `strawberry.subscription` as
decorators that keep the resolver's type for the type checker. Every mutation
field also clears the request's loaders once it has run, so the fields after
it - its payload's and the next mutation's - read what it wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import strawberry
from strawberry.extensions import FieldExtension
from strawberry.extensions.field_extension import AsyncExtensionResolver

from signal_admin.schema.context import Info

ResolverT = TypeVar("ResolverT", bound=Callable[..., Any])


class ClearsLoaders(FieldExtension):
    """Clears the request's loaders once the field has run, even on error."""

    async def resolve_async(
        self, next_: AsyncExtensionResolver, source: Any, info: Info, **kwargs: Any
    ) -> Any:
        try:
            return await next_(source, info, **kwargs)
        finally:
            info.context.loaders.clear()


def query_field(*, description: str) -> Callable[[ResolverT], ResolverT]:
    return cast(
        Callable[[ResolverT], ResolverT], strawberry.field(description=description)
    )


def mutation_field(*, description: str) -> Callable[[ResolverT], ResolverT]:
    return cast(
        Callable[[ResolverT], ResolverT],
        strawberry.mutation(description=description, extensions=[ClearsLoaders()]),
    )


def subscription_field(*, description: str) -> Callable[[ResolverT], ResolverT]:
    return cast(
        Callable[[ResolverT], ResolverT],
        strawberry.subscription(description=description),
    )
