"""The request's dataloaders: one per (target, key), each gathering the loads
of one execution step into a single SELECT in a short session of its own.

Every key starts with the organisation id of the object that refers to the
row, and a row is only handed back for a key whose organisation it belongs to.
The reads themselves are also scoped to the caller's organisation, so a loader
never answers another organisation's row. Results come in key order, with
None for a key that names no row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import NamedTuple, TypeVar

from strawberry.dataloader import DataLoader

from signal_admin.persistence.models import (
    CollectorBuild,
    IntegrationRevision,
    IntegrationTemplate,
    Pipeline,
    PipelineIntegration,
    Transformation,
    User,
)
from signal_admin.resolvers import (
    collector_builds,
    pipeline_integrations,
    templates,
    transformations,
)
from signal_admin.resolvers.context import RequestContext

KeyT = TypeVar("KeyT", bound=Hashable)
RowT = TypeVar("RowT")


class TemplateKey(NamedTuple):
    org_id: str
    template_id: str


class RevisionKey(NamedTuple):
    org_id: str
    template_id: str
    revision_number: int


class UserKey(NamedTuple):
    org_id: str
    user_id: str


class PipelineKey(NamedTuple):
    org_id: str
    pipeline_id: str


class BuildsKey(NamedTuple):
    org_id: str
    pipeline_id: str
    first: int


class RevisionIdKey(NamedTuple):
    org_id: str
    revision_id: str


def in_key_order(
    keys: Sequence[KeyT], rows: Iterable[RowT], key_of: Callable[[RowT], KeyT]
) -> list[RowT | None]:
    """`rows` matched to `keys` by the key each row answers, None for misses."""
    found = {key_of(row): row for row in rows}
    return [found.get(key) for key in keys]


def grouped_in_key_order(
    keys: Sequence[KeyT], rows: Iterable[RowT], key_of: Callable[[RowT], KeyT]
) -> list[list[RowT]]:
    """`rows` gathered under the key each answers, in their order; [] for
    keys that none answers."""
    groups: defaultdict[KeyT, list[RowT]] = defaultdict(list)
    for row in rows:
        groups[key_of(row)].append(row)
    return [groups.get(key, []) for key in keys]


class TemplateByIdLoader(DataLoader[TemplateKey, IntegrationTemplate | None]):
    """Templates by id: a revision's `template`."""

    def __init__(self, ctx: RequestContext) -> None:
        super().__init__(load_fn=self._load)
        self._ctx = ctx

    async def _load(self, keys: list[TemplateKey]) -> list[IntegrationTemplate | None]:
        ids = sorted({key.template_id for key in keys})
        rows = await templates.templates_by_ids(self._ctx, ids)
        return in_key_order(keys, rows, lambda row: TemplateKey(row.org_id, row.id))


class RevisionByTemplateAndNumberLoader(
    DataLoader[RevisionKey, IntegrationRevision | None]
):
    """Revisions by template and number: a template's `latestRevision`."""

    def __init__(self, ctx: RequestContext) -> None:
        super().__init__(load_fn=self._load)
        self._ctx = ctx

    async def _load(self, keys: list[RevisionKey]) -> list[IntegrationRevision | None]:
        numbers = sorted({(key.template_id, key.revision_number) for key in keys})
        rows = await templates.revisions_by_number(self._ctx, numbers)
        return in_key_order(
            keys,
            rows,
            lambda row: RevisionKey(row.org_id, row.template_id, row.revision_number),
        )


class UserByIdLoader(DataLoader[UserKey, User | None]):
    """Users by id, deleted ones included: a revision's `createdBy`, an
    audit entry's `actor`."""

    def __init__(self, ctx: RequestContext) -> None:
        super().__init__(load_fn=self._load)
        self._ctx = ctx

    async def _load(self, keys: list[UserKey]) -> list[User | None]:
        ids = sorted({key.user_id for key in keys})
        rows = await templates.revision_authors(self._ctx, ids)
        return in_key_order(keys, rows, lambda row: UserKey(row.org_id, row.id))


class PipelineByIdLoader(DataLoader[PipelineKey, Pipeline | None]):
    """Pipelines by id: an attachment's `pipeline` and the parameters its
    `unresolvedParameters` are checked against."""

    def __init__(self, ctx: RequestContext) -> None:
        super().__init__(load_fn=self._load)
        self._ctx = ctx

    async def _load(self, keys: list[PipelineKey]) -> list[Pipeline | None]:
        ids = sorted({key.pipeline_id for key in keys})
        rows = await pipeline_integrations.pipelines_by_ids(self._ctx, ids)
        return in_key_order(keys, rows, lambda row: PipelineKey(row.org_id, row.id))


class RevisionByIdLoader(DataLoader[RevisionIdKey, IntegrationRevision | None]):
    """Revisions by id: the revision an attachment pins."""

    def __init__(self, ctx: RequestContext) -> None:
        super().__init__(load_fn=self._load)
        self._ctx = ctx

    async def _load(
        self, keys: list[RevisionIdKey]
    ) -> list[IntegrationRevision | None]:
        ids = sorted({key.revision_id for key in keys})
        rows = await pipeline_integrations.revisions_by_ids(self._ctx, ids)
        return in_key_order(keys, rows, lambda row: RevisionIdKey(row.org_id, row.id))


class AttachmentsByPipelineLoader(DataLoader[PipelineKey, list[PipelineIntegration]]):
    """Attachments by pipeline, oldest first: a pipeline's `integrations`."""

    def __init__(self, ctx: RequestContext) -> None:
        super().__init__(load_fn=self._load)
        self._ctx = ctx

    async def _load(self, keys: list[PipelineKey]) -> list[list[PipelineIntegration]]:
        ids = sorted({key.pipeline_id for key in keys})
        rows = await pipeline_integrations.attachments_of_pipelines(self._ctx, ids)
        return grouped_in_key_order(
            keys, rows, lambda row: PipelineKey(row.org_id, row.pipeline_id)
        )


class AttachmentsByTemplateLoader(DataLoader[TemplateKey, list[PipelineIntegration]]):
    """Attachments by template, oldest first: a template's `attachments`."""

    def __init__(self, ctx: RequestContext) -> None:
        super().__init__(load_fn=self._load)
        self._ctx = ctx

    async def _load(self, keys: list[TemplateKey]) -> list[list[PipelineIntegration]]:
        ids = sorted({key.template_id for key in keys})
        rows = await pipeline_integrations.attachments_of_templates(self._ctx, ids)
        return grouped_in_key_order(
            keys, rows, lambda row: TemplateKey(row.org_id, row.template_id)
        )


class TransformationsByTemplateLoader(DataLoader[TemplateKey, list[Transformation]]):
    """The transformations that run on a template's integrations: its own and
    the organisation-wide ones that are enabled, in name order, as they run."""

    def __init__(self, ctx: RequestContext) -> None:
        super().__init__(load_fn=self._load)
        self._ctx = ctx

    async def _load(self, keys: list[TemplateKey]) -> list[list[Transformation]]:
        ids = sorted({key.template_id for key in keys})
        rows = await transformations.transformations_of_templates(self._ctx, ids)
        rows = sorted(rows, key=lambda row: (row.name, row.id))
        return [
            [
                row
                for row in rows
                if row.org_id == key.org_id
                and row.template_id in (None, key.template_id)
            ]
            for key in keys
        ]


class BuildsByPipelineLoader(DataLoader[BuildsKey, list[CollectorBuild]]):
    """The newest `first` builds of a pipeline, newest first: a pipeline's
    `collectorBuilds`. One SELECT for each page size asked for."""

    def __init__(self, ctx: RequestContext) -> None:
        super().__init__(load_fn=self._load)
        self._ctx = ctx

    async def _load(self, keys: list[BuildsKey]) -> list[list[CollectorBuild]]:
        groups: defaultdict[BuildsKey, list[CollectorBuild]] = defaultdict(list)
        for first in sorted({key.first for key in keys}):
            ids = sorted({key.pipeline_id for key in keys if key.first == first})
            for row in await collector_builds.latest_builds(self._ctx, ids, first):
                groups[BuildsKey(row.org_id, row.pipeline_id, first)].append(row)
        return [groups.get(key, []) for key in keys]
