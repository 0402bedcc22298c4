"""Integrations (legacy): the first version's name for a pipeline integration.

A legacy integration is one attachment seen together with its template and
its pinned revision: `id` is the attachment's, `source_id` its pipeline's,
`type` and `name` the template's, `config` the pinned revision's. No table of
its own holds it, so what this face writes the current routes read, and the
other way round.

Creating one makes a template linked to the catalog vendor's default variant,
its revision 1 and the attachment, in one transaction. Changing its config
writes the template's next revision and pins this attachment to it, leaving
every other pipeline that uses the template where it was; a rename renames
the template. Audit entries name the attachment in the legacy vocabulary
(`integration.*`), next to the entries of the templates and revisions made
along the way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from signal_admin.catalog.models import Vendor
from signal_admin.errors import NotFound, PreconditionFailed
from signal_admin.persistence.database import retried_on_conflict
from signal_admin.persistence.ids import check_id, is_id
from signal_admin.persistence.models import (
    IntegrationRevision,
    IntegrationTemplate,
    Pipeline,
    PipelineIntegration,
)
from signal_admin.persistence.pagination import Page, fetch_page
from signal_admin.resolvers import audit, pipeline_integrations, secrets, templates
from signal_admin.resolvers.context import RequestContext, requires
from signal_admin.resolvers.pipeline_integrations import Categories, Reference
from signal_admin.resolvers.templates import Name
from signal_admin.resolvers.validation import Problems, parse
from signal_admin.security.permissions import Permission

KIND = "Integration"
VendorKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
ReadOnlyText = Annotated[str, StringConstraints(max_length=100)]


class _ReadBack(BaseModel):
    """The fields an answer carries that a write cannot change, accepted so
    that a client may send back what it read: `id`, `source_id` and `type`
    must be the integration's own, the others are ignored."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: ReadOnlyText | None = None
    source_id: ReadOnlyText | None = None
    type: ReadOnlyText | None = None
    created_at: ReadOnlyText | None = None
    updated_at: ReadOnlyText | None = None


class LegacyIntegrationCreate(BaseModel):
    """A new integration: `type` is a catalog vendor's key, and `config` holds
    its connection fields (and any mapping keys that override the default
    variant's)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    source_id: Reference
    type: VendorKey
    name: Name
    config: dict[str, Any]
    enabled: bool = True
    consent_categories: Categories = []


class LegacyIntegrationReplace(_ReadBack):
    """Every mutable field: those left out take their defaults, as on
    creation, and `config` replaces the whole config."""

    name: Name
    config: dict[str, Any]
    enabled: bool = True
    consent_categories: Categories = []


class LegacyIntegrationUpdate(_ReadBack):
    """A merge: fields left out stay as they are, and `config` changes only
    the keys it names, at any depth."""

    name: Name | None = None
    config: dict[str, Any] | None = None
    enabled: bool | None = None
    consent_categories: Categories | None = None

    @field_validator("name", "config", "enabled", "consent_categories", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("This field cannot be null; leave it out to keep it.")
        return value


class LegacyIntegrationFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source_id: Annotated[str, Field(max_length=100)] | None = None


@dataclass(frozen=True, slots=True)
class LegacyIntegration:
    """An attachment with the template and the pinned revision it shows."""

    row: PipelineIntegration
    template: IntegrationTemplate
    revision: IntegrationRevision

    @property
    def version(self) -> int:
        """1, then more on every change of the attachment or its template
        (whose name the integration shows), so that `If-Match` catches a
        rename made through the templates' routes too."""
        return self.row.version + self.template.version - 1

    @property
    def updated_at(self) -> datetime:
        return max(self.row.updated_at, self.template.updated_at)

    @property
    def config(self) -> dict[str, Any]:
        """The pinned revision's config, every secret as `"***"`."""
        return secrets.masked(self.revision.config)


@dataclass(frozen=True, slots=True)
class _Change:
    """What one PUT or PATCH asks for, once validated; None keeps a field."""

    read_back: _ReadBack
    name: str | None
    enabled: bool | None
    consent_categories: list[str] | None
    config: dict[str, Any] | None
    merge_config: bool


@requires(Permission.READ_CONFIGURATION)
async def list_integrations(
    ctx: RequestContext,
    filters: LegacyIntegrationFilter,
    *,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[LegacyIntegration]:
    """The organisation's attachments, oldest first, each read with its
    template and pinned revision in the same statement."""
    principal = ctx.authenticated()
    statement = pipeline_integrations.with_template_and_revision().where(
        PipelineIntegration.org_id == principal.org_id
    )
    if filters.source_id is not None:
        statement = statement.where(
            PipelineIntegration.pipeline_id == filters.source_id
        )
    async with ctx.db.read() as session:
        page = await fetch_page(
            session, statement, PipelineIntegration.id, cursor=cursor, limit=limit
        )
    items = [LegacyIntegration(*row) for row in page.items]
    return Page(items=items, has_more=page.has_more, next_cursor=page.next_cursor)


@requires(Permission.READ_CONFIGURATION)
async def get_integration(
    ctx: RequestContext, integration_id: str
) -> LegacyIntegration:
    principal = ctx.authenticated()
    check_id(integration_id, "pi", KIND)
    async with ctx.db.read() as session:
        row = (
            await session.execute(
                pipeline_integrations.with_template_and_revision().where(
                    PipelineIntegration.id == integration_id,
                    PipelineIntegration.org_id == principal.org_id,
                )
            )
        ).first()
    if row is None:
        raise NotFound.of(KIND, integration_id)
    return LegacyIntegration(*row)


@requires(Permission.WRITE_CONFIGURATION)
@retried_on_conflict
async def create_integration(ctx: RequestContext, data: Any) -> LegacyIntegration:
    """Create a template of a catalog vendor, its revision 1 and its
    attachment to the source, all or nothing. The config is the vendor's
    default variant's with the given one merged over it, as an install from
    the catalog makes it; an unknown source is named in `details`, as an
    attachment names an unknown template."""
    principal = ctx.authenticated()
    problems = Problems()
    fields = problems.parse(LegacyIntegrationCreate, data)
    vendor, config = _vendor_and_config(ctx, problems, fields, data)
    source_id = fields.source_id if fields else _given(data, "source_id")

    async with ctx.db.transaction() as session:
        pipeline = await _source(session, principal.org_id, source_id)
        if pipeline is None and isinstance(source_id, str):
            problems.add("source_id", "NOT_FOUND", "No such source.")
        fields = problems.checked(fields)
        vendor, config = problems.checked(vendor), problems.checked(config)
        pipeline = problems.checked(pipeline)
        template = await templates.new_template(
            ctx,
            session,
            name=fields.name,
            vendor=vendor.key,
            description=None,
            secret_fields=vendor.secret_fields,
            catalog=(vendor.key, "default"),
        )
        revision = await templates.new_revision(
            ctx, session, template, 1, config, vendor.delivery_modes[0], None
        )
        pipeline_integrations.check_parameters(revision, pipeline)
        row = await pipeline_integrations.add_attachment(
            session,
            pipeline,
            template,
            revision,
            enabled=fields.enabled,
            consent_categories=fields.consent_categories,
        )
        integration = LegacyIntegration(row, template, revision)
        audit.record(
            session,
            ctx,
            action="integration.created",
            resource_type="integration",
            resource_id=row.id,
            changes=audit.created(_audited(integration)),
            metadata={"pipeline_id": pipeline.id, "template_id": template.id},
        )
    return integration


@requires(Permission.WRITE_CONFIGURATION)
@retried_on_conflict
async def replace_integration(
    ctx: RequestContext,
    integration_id: str,
    data: Any,
    *,
    expected_version: int | None = None,
) -> LegacyIntegration:
    """Replace the name, the config, `enabled` and the consent categories."""
    fields = parse(LegacyIntegrationReplace, data)
    change = _Change(
        read_back=fields,
        name=fields.name,
        enabled=fields.enabled,
        consent_categories=fields.consent_categories,
        config=fields.config,
        merge_config=False,
    )
    return await _apply(ctx, integration_id, change, expected_version)


@requires(Permission.WRITE_CONFIGURATION)
@retried_on_conflict
async def update_integration(
    ctx: RequestContext,
    integration_id: str,
    data: Any,
    *,
    expected_version: int | None = None,
) -> LegacyIntegration:
    """Change the fields named; inside `config`, only the keys named."""
    fields = parse(LegacyIntegrationUpdate, data)
    change = _Change(
        read_back=fields,
        name=fields.name,
        enabled=fields.enabled,
        consent_categories=fields.consent_categories,
        config=fields.config,
        merge_config=True,
    )
    return await _apply(ctx, integration_id, change, expected_version)


@requires(Permission.DELETE_CONFIGURATION)
@retried_on_conflict
async def delete_integration(
    ctx: RequestContext, integration_id: str, *, expected_version: int | None = None
) -> None:
    """Detach the integration from its source; the template and its
    revisions stay, for other pipelines and for the record."""
    principal = ctx.authenticated()
    check_id(integration_id, "pi", KIND)

    async with ctx.db.transaction() as session:
        current = await _locked(
            session, principal.org_id, integration_id, expected_version
        )
        await pipeline_integrations.remove(
            session, ctx, [current.row], resource_type="integration"
        )


async def _apply(
    ctx: RequestContext,
    integration_id: str,
    change: _Change,
    expected_version: int | None,
) -> LegacyIntegration:
    """Write what a PUT or PATCH asks for: a new revision pinned here when
    the config differs from the pinned one (`"***"` keeping a secret), a
    rename of the template, and the attachment's own fields."""
    principal = ctx.authenticated()
    check_id(integration_id, "pi", KIND)

    async with ctx.db.transaction() as session:
        current = await _locked(
            session, principal.org_id, integration_id, expected_version
        )
        row, template, pinned = current.row, current.template, current.revision
        config = _checked_config(ctx, current, change)
        before = _audited(current)

        revision = pinned
        if config != current.config:
            revision = await templates.new_revision(
                ctx,
                session,
                template,
                template.latest_revision + 1,
                config,
                pinned.delivery_mode,
                f"Config changed through integration {row.id}.",
                base=pinned,
            )
            pipeline = await session.get_one(Pipeline, row.pipeline_id)
            pipeline_integrations.check_parameters(revision, pipeline)
            row.revision_id = revision.id
        if change.name is not None:
            await templates.change_template(
                ctx, session, template, {"name": change.name}
            )
        if change.enabled is not None:
            row.enabled = change.enabled
        if change.consent_categories is not None:
            row.consent_categories = change.consent_categories
        integration = LegacyIntegration(row, template, revision)
        changes = audit.diff(before, _audited(integration))
        if changes:
            audit.record(
                session,
                ctx,
                action="integration.updated",
                resource_type="integration",
                resource_id=row.id,
                changes=changes,
                metadata={"pipeline_id": row.pipeline_id, "template_id": template.id},
            )
        await session.flush()
    return integration


def _checked_config(
    ctx: RequestContext, current: LegacyIntegration, change: _Change
) -> dict[str, Any]:
    """The config the change leaves: the given one, merged over the pinned
    one for a PATCH. The read-back fields, the vendor's connection fields
    (for a template installed from the catalog) and the mapping document are
    checked together, and one error names every problem."""
    problems = Problems()
    own = {
        "id": current.row.id,
        "source_id": current.row.pipeline_id,
        "type": current.template.vendor,
    }
    problems.read_only("integration", change.read_back, own)
    config = current.config
    if change.config is not None:
        config = (
            templates.merged(config, change.config)
            if change.merge_config
            else change.config
        )
        vendor = _catalog_vendor(ctx, current.template)
        if vendor is not None:
            problems.extend(templates.connection_problems(vendor, config))
        problems.extend(templates.config_problems(config))
    return problems.checked(config)


def _vendor_and_config(
    ctx: RequestContext,
    problems: Problems,
    fields: LegacyIntegrationCreate | None,
    data: Any,
) -> tuple[Vendor | None, dict[str, Any] | None]:
    """The catalog vendor `type` names and the config of revision 1, every
    problem with either noted in `problems`."""
    vendor_key = fields.type if fields else _given(data, "type")
    vendor = (
        ctx.services.catalog.get(vendor_key) if isinstance(vendor_key, str) else None
    )
    if vendor is None and isinstance(vendor_key, str):
        problems.add("type", "INVALID_CHOICE", "Not a vendor of the catalog.")
    given = fields.config if fields else _given(data, "config")
    if not isinstance(given, dict):
        return vendor, None
    variant = vendor.variant("default") if vendor else None
    config = templates.merged(variant.default_config if variant else {}, given)
    if vendor is not None:
        problems.extend(templates.connection_problems(vendor, config))
    problems.extend(templates.config_problems(config))
    return vendor, config


def _catalog_vendor(
    ctx: RequestContext, template: IntegrationTemplate
) -> Vendor | None:
    key = template.catalog_vendor_key
    return ctx.services.catalog.get(key) if key else None


def _given(data: Any, key: str) -> Any:
    """A field of a body that did not validate as a whole, as sent."""
    return data.get(key) if isinstance(data, Mapping) else None


async def _source(
    session: AsyncSession, org_id: str, source_id: Any
) -> Pipeline | None:
    """The organisation's pipeline `source_id` names, locked as attaching
    locks it; None for an id of no pipeline of the organisation."""
    if not isinstance(source_id, str) or not is_id(source_id, "pip"):
        return None
    pipeline: Pipeline | None = await session.scalar(
        select(Pipeline)
        .where(Pipeline.id == source_id, Pipeline.org_id == org_id)
        .with_for_update()
    )
    return pipeline


async def _locked(
    session: AsyncSession,
    org_id: str,
    integration_id: str,
    expected_version: int | None,
) -> LegacyIntegration:
    """The integration, its template locked before its attachment as every
    writer of a template's family locks them, and `If-Match` checked once
    both are found."""
    template = await session.scalar(
        select(IntegrationTemplate)
        .where(
            IntegrationTemplate.id
            == select(PipelineIntegration.template_id)
            .where(
                PipelineIntegration.id == integration_id,
                PipelineIntegration.org_id == org_id,
            )
            .scalar_subquery()
        )
        .with_for_update()
    )
    row = None
    if template is not None:
        row = await session.scalar(
            select(PipelineIntegration)
            .where(
                PipelineIntegration.id == integration_id,
                PipelineIntegration.template_id == template.id,
            )
            .with_for_update()
        )
    if template is None or row is None:
        raise NotFound.of(KIND, integration_id)
    revision = await session.get_one(IntegrationRevision, row.revision_id)
    current = LegacyIntegration(row, template, revision)
    if expected_version is not None and expected_version != current.version:
        raise PreconditionFailed(
            f"Integration {integration_id} is at version {current.version}, "
            f"not {expected_version}."
        )
    return current


def _audited(integration: LegacyIntegration) -> dict[str, Any]:
    """The integration's fields as its audit entries show them; its config is
    on the entry of the revision that holds it."""
    return {
        "source_id": integration.row.pipeline_id,
        "type": integration.template.vendor,
        "name": integration.template.name,
        "enabled": integration.row.enabled,
        "consent_categories": integration.row.consent_categories,
        "revision_id": integration.revision.id,
        "revision_number": integration.revision.revision_number,
    }
