"""Sources (legacy): what the first version of the API called a pipeline.

A source is a view over a pipeline row, never a row of its own, so what one
face writes the other reads. Its fields map onto the pipeline's:

- `domain` is the first entry of `domain_allowlist`; writing it makes the
  allowlist exactly that one domain, and null or "" empties it;
- `config.consent` is kept in the pipeline's `config` under `consent`;
- `config.cross_domain` is `identity_config`, its keys renamed;
- `config.collector` is two keys of `js_builder_config`, renamed;
- `config.vendors` lists the vendors of the pipeline's attachments and is
  ignored when written.

`config` is a free document that `/pipelines` writes as it likes, so a
source reads each stored key through its own validation: a value that
fails it (a string at `consent.enabled`, a list with one bad category)
reads as that key's default. A write of a section stores what the source
showed for such keys, never the value it could not read.

A write changes only the stored keys a source shows: the rest of `config`
and of `js_builder_config` stays as it was. Every write is a pipeline write
audited as `source.*`.

What a client read it may send back: `id` and `pipeline_key` must then be
the source's own, and `created_at`, `updated_at` and `config.vendors` are
ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from signal_admin.errors import NotFound
from signal_admin.persistence.ids import check_id
from signal_admin.persistence.models import (
    IntegrationTemplate,
    Pipeline,
    PipelineIntegration,
)
from signal_admin.persistence.pagination import Page
from signal_admin.resolvers import pipelines
from signal_admin.resolvers.context import RequestContext, requires
from signal_admin.resolvers.pipeline_integrations import Categories
from signal_admin.resolvers.pipelines import (
    Domain,
    DomainList,
    GlobalVariable,
    Name,
    PipelineCreate,
    PipelineFilter,
    PlainText,
    ScriptFilename,
)
from signal_admin.resolvers.validation import Problems, parse
from signal_admin.security.permissions import Permission

AUDITED_AS = "source"
NOUN = "Source"


def _blank_as_null(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


SourceDomain = Annotated[Domain | None, BeforeValidator(_blank_as_null)]
Provider = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    PlainText,
]
Vendors = Annotated[
    Any, Field(description="Read-only: the vendors of the attached integrations.")
]
ReadOnlyText = Annotated[str, StringConstraints(max_length=100)]
OwnValue = Annotated[
    ReadOnlyText | None,
    Field(description="Read-only: when sent back, it must be the source's own."),
]
IgnoredValue = Annotated[
    ReadOnlyText | None, Field(description="Read-only: ignored when written.")
]


class _ReadBack(BaseModel):
    """The fields an answer carries that a write cannot change, accepted so
    that a client may send back what it read: `id` and `pipeline_key` must
    be the source's own, the timestamps are ignored."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: OwnValue = None
    pipeline_key: OwnValue = None
    created_at: IgnoredValue = None
    updated_at: IgnoredValue = None


# Whole sections, for create and replace: a key left out takes its default.


class ConsentSettings(BaseModel):
    """Consent management on the source's pages."""

    model_config = ConfigDict(extra="forbid", strict=True)

    enabled: bool = False
    default_categories: Categories = []
    provider: Provider | None = None


class CrossDomainSettings(BaseModel):
    """Following a visitor across the source's domains."""

    model_config = ConfigDict(extra="forbid", strict=True)

    enabled: bool = False
    domains: DomainList = []


class CollectorSettings(BaseModel):
    """The collector script's file name and the global it exposes."""

    model_config = ConfigDict(extra="forbid", strict=True)

    filename: ScriptFilename = "d.js"
    global_var: GlobalVariable = "_df"


class SourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    vendors: Vendors = None
    consent: ConsentSettings = ConsentSettings()
    cross_domain: CrossDomainSettings = CrossDomainSettings()
    collector: CollectorSettings = CollectorSettings()


class SourceFields(BaseModel):
    """A new source: what it shows but a write cannot set (`id`,
    `pipeline_key`, the timestamps) is refused here."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: Name
    domain: SourceDomain = None
    config: SourceConfig = SourceConfig()


class SourceReplace(_ReadBack, SourceFields):
    """Every mutable field of a source, with the read-back fields."""


# Partial changes, for the legacy merge: only what is named changes.


class _Change(BaseModel):
    """Fields left out stay as they are. A field named must hold a value,
    except those in `nullable`, for which null is a value."""

    model_config = ConfigDict(extra="forbid", strict=True)
    nullable: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*")
    @classmethod
    def _not_null(cls, value: object, info: ValidationInfo) -> object:
        if value is None and info.field_name not in cls.nullable:
            raise ValueError("This field cannot be null; leave it out to keep it.")
        return value


class ConsentChange(_Change):
    nullable = frozenset({"provider"})

    enabled: bool | None = None
    default_categories: Categories | None = None
    provider: Provider | None = None


class CrossDomainChange(_Change):
    enabled: bool | None = None
    domains: DomainList | None = None


class CollectorChange(_Change):
    filename: ScriptFilename | None = None
    global_var: GlobalVariable | None = None


class SourceConfigChange(_Change):
    nullable = frozenset({"vendors"})

    vendors: Vendors = None
    consent: ConsentChange | None = None
    cross_domain: CrossDomainChange | None = None
    collector: CollectorChange | None = None


class SourceChange(_ReadBack, _Change):
    """A legacy merge: the top-level fields named, and inside `config` only
    the keys named, at any depth; with the read-back fields."""

    nullable = frozenset({"domain", *_ReadBack.model_fields})

    name: Name | None = None
    domain: SourceDomain = None
    config: SourceConfigChange | None = None


@dataclass(frozen=True, slots=True)
class _Section:
    """Where one section of a source's `config` is stored: a document of the
    pipeline (`field`), or one key of it (`key`), with the stored name of
    each of the section's keys, and the model that validates the section."""

    field: str
    key: str | None
    stored_names: dict[str, str]
    settings: type[BaseModel]

    def read(self, pipeline: Pipeline) -> dict[str, Any]:
        shown, _ = self._shown(self._stored(getattr(pipeline, self.field)))
        return shown

    def written(
        self, document: dict[str, Any], values: dict[str, Any]
    ) -> dict[str, Any]:
        """The pipeline's `field` document with `values` (named as the source
        names them) written over the stored ones, and each stored key the
        source could not read written as the default it showed; nothing else
        in it changes."""
        shown, unreadable = self._shown(self._stored(document))
        repaired = {name: shown[name] for name in unreadable}
        renamed = {
            self.stored_names[name]: value
            for name, value in {**repaired, **values}.items()
        }
        if self.key is None:
            return {**document, **renamed}
        return {**document, self.key: {**self._stored(document), **renamed}}

    def _shown(self, stored: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """The section as a source shows it, and the names of the stored keys
        it could not read. Each stored key is validated alone, as the source
        validates a write: a key left out, or one that fails (a list with one
        bad item fails whole), shows its default."""
        shown = self.settings().model_dump()
        unreadable: list[str] = []
        for name, stored_name in self.stored_names.items():
            if stored_name not in stored:
                continue
            try:
                checked = self.settings.model_validate({name: stored[stored_name]})
            except ValidationError:
                unreadable.append(name)
            else:
                shown[name] = checked.model_dump()[name]
        return shown, unreadable

    def _stored(self, document: dict[str, Any]) -> dict[str, Any]:
        # `config` is a free document: another face may have put anything at
        # `consent`, which then reads as the defaults.
        stored = document if self.key is None else document.get(self.key)
        return stored if isinstance(stored, dict) else {}


_SECTIONS = {
    "consent": _Section(
        field="config",
        key="consent",
        stored_names={
            "enabled": "enabled",
            "default_categories": "default_categories",
            "provider": "provider",
        },
        settings=ConsentSettings,
    ),
    "cross_domain": _Section(
        field="identity_config",
        key=None,
        stored_names={
            "enabled": "cross_domain_enabled",
            "domains": "cross_domain_domains",
        },
        settings=CrossDomainSettings,
    ),
    "collector": _Section(
        field="js_builder_config",
        key=None,
        stored_names={"filename": "script_filename", "global_var": "global_variable"},
        settings=CollectorSettings,
    ),
}


def consent_of(pipeline: Pipeline) -> dict[str, Any]:
    """The pipeline's consent settings as a source shows them, each stored
    key that does not validate read as its default; the collector build
    reads them the same way."""
    return _SECTIONS["consent"].read(pipeline)


@dataclass(frozen=True, slots=True)
class Source:
    """A pipeline seen as a source, with the vendors of its attachments."""

    pipeline: Pipeline
    vendors: Sequence[str]

    @property
    def domain(self) -> str | None:
        return domain_of(self.pipeline)

    @property
    def config(self) -> dict[str, Any]:
        sections = {
            name: section.read(self.pipeline) for name, section in _SECTIONS.items()
        }
        return {"vendors": list(self.vendors), **sections}


@dataclass(frozen=True, slots=True)
class SourceWithSecret:
    """A new source and its pipeline's key secret, in clear this one time."""

    source: Source
    pipeline_key_secret: str


def domain_of(pipeline: Pipeline) -> str | None:
    """A source has one domain: the first its pipeline allows."""
    return pipeline.domain_allowlist[0] if pipeline.domain_allowlist else None


@requires(Permission.READ_CONFIGURATION)
async def list_sources(
    ctx: RequestContext, q: str | None, *, cursor: str | None, limit: int
) -> Page[Pipeline]:
    """Every pipeline, whatever its type, oldest first. List items show no
    `config`, so no vendors are loaded."""
    filters = parse(PipelineFilter, {"q": q})
    return await pipelines.list_pipelines(ctx, filters, cursor=cursor, limit=limit)


@requires(Permission.READ_CONFIGURATION)
async def get_source(ctx: RequestContext, source_id: str) -> Source:
    principal = ctx.authenticated()
    check_id(source_id, "pip", NOUN)

    async with ctx.db.read() as session:
        pipeline = await session.scalar(
            select(Pipeline).where(
                Pipeline.id == source_id, Pipeline.org_id == principal.org_id
            )
        )
        if pipeline is None:
            raise NotFound.of(NOUN, source_id)
        vendors = await vendors_by_pipeline(session, principal.org_id, [pipeline.id])
    return Source(pipeline, vendors[pipeline.id])


@requires(Permission.WRITE_CONFIGURATION)
async def create_source(ctx: RequestContext, data: Any) -> SourceWithSecret:
    """Create a `web` pipeline from the source's fields."""
    fields = parse(SourceFields, data)

    created = await pipelines.store_pipeline(
        ctx, _new_pipeline(fields), audited_as=AUDITED_AS
    )

    return SourceWithSecret(Source(created.pipeline, []), created.pipeline_key_secret)


@requires(Permission.WRITE_CONFIGURATION)
async def replace_source(
    ctx: RequestContext,
    source_id: str,
    data: Any,
    *,
    expected_version: int | None = None,
) -> Source:
    """Replace every mutable field; those left out take their defaults."""
    fields = parse(SourceReplace, data)

    pipeline = await pipelines.change_pipeline(
        ctx,
        source_id,
        lambda stored: _replacement(stored, fields),
        expected_version=expected_version,
        audited_as=AUDITED_AS,
    )

    return await _with_vendors(ctx, pipeline)


@requires(Permission.WRITE_CONFIGURATION)
async def update_source(
    ctx: RequestContext,
    source_id: str,
    data: Any,
    *,
    expected_version: int | None = None,
) -> Source:
    """Merge: change the top-level fields named and, inside `config`, only
    the keys named."""
    change = parse(SourceChange, data)

    pipeline = await pipelines.change_pipeline(
        ctx,
        source_id,
        lambda stored: _merge(stored, change),
        expected_version=expected_version,
        audited_as=AUDITED_AS,
    )

    return await _with_vendors(ctx, pipeline)


@requires(Permission.DELETE_CONFIGURATION)
async def delete_source(
    ctx: RequestContext, source_id: str, *, expected_version: int | None = None
) -> None:
    """Delete the pipeline with its attachments, as deleting a pipeline does."""
    await pipelines.remove_pipeline(
        ctx, source_id, expected_version=expected_version, audited_as=AUDITED_AS
    )


async def vendors_by_pipeline(
    session: AsyncSession, org_id: str, pipeline_ids: Sequence[str]
) -> dict[str, list[str]]:
    """Per pipeline, the vendor keys of its attachments, enabled or not, each
    once, oldest attachment first; one query for any number of pipelines."""
    rows = await session.execute(
        select(PipelineIntegration.pipeline_id, IntegrationTemplate.vendor)
        .join(
            IntegrationTemplate,
            IntegrationTemplate.id == PipelineIntegration.template_id,
        )
        .where(
            PipelineIntegration.org_id == org_id,
            PipelineIntegration.pipeline_id.in_(pipeline_ids),
        )
        .order_by(PipelineIntegration.id)
    )
    vendors: dict[str, list[str]] = {pipeline_id: [] for pipeline_id in pipeline_ids}
    for pipeline_id, vendor in rows:
        if vendor not in vendors[pipeline_id]:
            vendors[pipeline_id].append(vendor)
    return vendors


async def _with_vendors(ctx: RequestContext, pipeline: Pipeline) -> Source:
    async with ctx.db.read() as session:
        vendors = await vendors_by_pipeline(session, pipeline.org_id, [pipeline.id])
    return Source(pipeline, vendors[pipeline.id])


def _new_pipeline(fields: SourceFields) -> PipelineCreate:
    """A `web` pipeline holding the source's fields; the rest of its
    settings take the pipeline defaults."""
    documents = {
        section.field: section.written({}, getattr(fields.config, name).model_dump())
        for name, section in _SECTIONS.items()
    }
    return PipelineCreate.model_validate(
        {
            "name": fields.name,
            "type": "web",
            "domain_allowlist": _allowlist(fields.domain),
            **documents,
        }
    )


def _replacement(pipeline: Pipeline, fields: SourceReplace) -> dict[str, Any]:
    """The pipeline fields a replacement writes: all a source shows."""
    _check_read_back(pipeline, fields)

    named: dict[str, Any] = {
        "name": fields.name,
        "domain_allowlist": _allowlist(fields.domain),
    }
    for name, section in _SECTIONS.items():
        values: BaseModel = getattr(fields.config, name)
        named[section.field] = section.written(
            getattr(pipeline, section.field), values.model_dump()
        )
    return named


def _merge(pipeline: Pipeline, change: SourceChange) -> dict[str, Any]:
    """The pipeline fields a merge writes: only those under what it names."""
    _check_read_back(pipeline, change)

    named: dict[str, Any] = {}
    if "name" in change.model_fields_set:
        named["name"] = change.name
    if "domain" in change.model_fields_set:
        named["domain_allowlist"] = _allowlist(change.domain)
    config = change.config
    if config is None:
        return named
    for name, section in _SECTIONS.items():
        values: _Change | None = getattr(config, name)
        if values is not None:
            written = values.model_dump(include=values.model_fields_set)
            named[section.field] = section.written(
                getattr(pipeline, section.field), written
            )
    return named


def _check_read_back(pipeline: Pipeline, sent: _ReadBack) -> None:
    """Refuse an `id` or `pipeline_key` sent back that is not the source's
    own: a source cannot be renamed to another id or given another key."""
    problems = Problems()
    own = {"id": pipeline.id, "pipeline_key": pipeline.pipeline_key}
    problems.read_only("source", sent, own)
    error = problems.error()
    if error is not None:
        raise error


def _allowlist(domain: str | None) -> list[str]:
    return [domain] if domain else []
