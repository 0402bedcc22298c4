"""Collector builds: a pipeline's `collectorBuilds` and `buildCollector`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from signal_admin.errors import DomainError
from signal_admin.persistence.models import CollectorBuild as BuildRow
from signal_admin.resolvers import collector_builds
from signal_admin.schema.auth import User
from signal_admin.schema.context import GraphQLContext, Info
from signal_admin.schema.errors import UserError, user_errors_or_raise
from signal_admin.schema.execution import batched, one
from signal_admin.schema.fields import mutation_field, query_field
from signal_admin.schema.loaders import BuildsKey
from signal_admin.schema.templates import authors_of


@strawberry.type(
    description="One built JavaScript collector of a pipeline; it never changes."
)
class CollectorBuild:
    id: strawberry.ID = strawberry.field(description="The build's id (bld_…).")
    pipeline_id: strawberry.ID = strawberry.field(description="The pipeline built.")
    version: int = strawberry.field(description="Counts the pipeline's builds: 1, 2, …")
    pipeline_key: str = strawberry.field(
        description="The key written into the script; a rotation leaves it on "
        "earlier builds."
    )
    script_filename: str = strawberry.field(
        description="The file name sites load it as."
    )
    global_variable: str = strawberry.field(
        description="The global the script defines on `window`."
    )
    size_bytes: int = strawberry.field(description="The script's size.")
    gzip_size_bytes: int = strawberry.field(description="Its size once gzipped.")
    sha256: str = strawberry.field(description="SHA-256 of the script, in hex.")
    integrity: str = strawberry.field(
        description="The Subresource Integrity value for a script tag (sha384-…)."
    )
    vendors: list[str] = strawberry.field(
        description="Vendor keys of the enabled integrations that run in the page."
    )
    created_at: datetime = strawberry.field(description="When it was built.")
    org_id: strawberry.Private[str]
    created_by_id: strawberry.Private[str | None]

    @classmethod
    def from_row(cls, build: BuildRow) -> CollectorBuild:
        return cls(
            id=strawberry.ID(build.id),
            pipeline_id=strawberry.ID(build.pipeline_id),
            version=build.version,
            pipeline_key=build.pipeline_key,
            script_filename=build.script_filename,
            global_variable=build.global_variable,
            size_bytes=build.size_bytes,
            gzip_size_bytes=build.gzip_size_bytes,
            sha256=build.sha256,
            integrity=build.integrity,
            vendors=list(build.vendors),
            created_at=build.created_at,
            org_id=build.org_id,
            created_by_id=build.created_by,
        )

    @query_field(description="Who built it; null if that user is gone.")
    @batched(authors_of)
    async def created_by(self, info: Info) -> User | None:
        return await one(authors_of, info.context, self)


async def builds_of_pipeline(
    context: GraphQLContext, org_id: str, pipeline_id: str, first: int
) -> list[CollectorBuild]:
    """The newest `first` builds of one pipeline; the loader reads those of
    every pipeline on the page in one statement."""
    key = BuildsKey(org_id, pipeline_id, first)
    rows = await context.loaders.builds_by_pipeline.load(key)
    return [CollectorBuild.from_row(row) for row in rows]


@strawberry.input(description="The pipeline whose collector to build.")
class BuildCollectorInput:
    pipeline_id: strawberry.ID = strawberry.field(description="The pipeline.")


@strawberry.type(description="The result of buildCollector.")
class BuildCollectorPayload:
    build: CollectorBuild | None = strawberry.field(
        default=None, description="The new build; null on failure."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="What to fix in the input."
    )


@strawberry.type
class CollectorMutation:
    @mutation_field(
        description="Build the pipeline's JavaScript collector from its settings "
        "as they are now."
    )
    async def build_collector(
        self,
        info: Info,
        input: Annotated[
            BuildCollectorInput, strawberry.argument(description="The pipeline.")
        ],
    ) -> BuildCollectorPayload | None:
        try:
            build = await collector_builds.build_collector(
                info.context.request, input.pipeline_id
            )
        except DomainError as error:
            return BuildCollectorPayload(user_errors=user_errors_or_raise(error))
        return BuildCollectorPayload(build=CollectorBuild.from_row(build))
