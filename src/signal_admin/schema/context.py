"""What every GraphQL field is given: the request context the resolvers take,
and the request's dataloaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

import strawberry
from graphql import DocumentNode

from signal_admin.resolvers.context import RequestContext


@dataclass(slots=True)
class Loaders:
    """The dataloaders of one request, one per (target, key), created lazily.

    None exist yet: pipelines have no cross-object fields so far.
    """

    def clear(self) -> None:
        """Forget every cached row, so fields resolved after a write read what
        it wrote."""


@dataclass(slots=True)
class GraphQLContext:
    """The Strawberry context: the resolvers' request context, the document
    the endpoint admitted (which is what executes) and the loaders."""

    request: RequestContext
    document: DocumentNode
    loaders: Loaders = field(default_factory=Loaders)


Info: TypeAlias = strawberry.Info[GraphQLContext, None]
