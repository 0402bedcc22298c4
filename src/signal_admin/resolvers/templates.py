"""Integration templates and their immutable revisions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from signal_admin.catalog.models import MappingDocument, Variant, Vendor
from signal_admin.errors import (
    AlreadyExists,
    FieldProblem,
    MissingPipelineParameters,
    NotFound,
    PreconditionFailed,
    ResourceInUse,
    RevisionConflict,
    ValidationFailed,
)
from signal_admin.persistence.database import flush_unique, retried_on_conflict
from signal_admin.persistence.ids import check_id, is_id, new_id
from signal_admin.persistence.json_filters import name_contains
from signal_admin.persistence.models import (
    IntegrationRevision,
    IntegrationTemplate,
    Pipeline,
    PipelineIntegration,
    User,
)
from signal_admin.persistence.pagination import Page, fetch_page
from signal_admin.persistence.types import utc_now
from signal_admin.resolvers import (
    audit,
    pipeline_integrations,
    secrets,
    transformations,
)
from signal_admin.resolvers.context import RequestContext, requires
from signal_admin.resolvers.validation import Problems, check_document_size, parse
from signal_admin.security.permissions import Permission

Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]
VendorKey = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,64}$")]
Description = Annotated[str, StringConstraints(max_length=2000)]
DeliveryMode = Literal["server_side", "client_side", "hybrid"]
ChangeSummary = Annotated[str, StringConstraints(max_length=2000)]


class TemplateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: Name
    vendor: VendorKey
    description: Description | None = None
    secret_fields: Annotated[list[VendorKey], Field(max_length=100)] = []
    config: dict[str, Any] = {}
    delivery_mode: DeliveryMode = "server_side"


class TemplateUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: Name | None = None
    description: Description | None = None


class RevisionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    config: dict[str, Any]
    delivery_mode: DeliveryMode = "server_side"
    change_summary: ChangeSummary | None = None
    base_revision_number: Annotated[int, Field(ge=1)] | None = None


class CatalogInstall(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: Name
    variant_key: VendorKey = "default"
    config: dict[str, Any] = {}
    description: Description | None = None


class Rollout(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    revision_id: str
    pipeline_ids: Annotated[list[str], Field(min_length=1, max_length=1000)] | None = (
        None
    )


class TemplateFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vendor: VendorKey | None = None
    q: Annotated[str, StringConstraints(max_length=200)] | None = None


@dataclass(frozen=True, slots=True)
class TemplateWithRevision:
    template: IntegrationTemplate
    revision: IntegrationRevision


@requires(Permission.READ_CONFIGURATION)
async def list_templates(
    ctx: RequestContext,
    filters: TemplateFilter,
    *,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[IntegrationTemplate]:
    principal = ctx.authenticated()
    async with ctx.db.read() as session:
        statement = _filtered(
            select(IntegrationTemplate).where(
                IntegrationTemplate.org_id == principal.org_id
            ),
            filters,
        )
        return await fetch_page(
            session, statement, IntegrationTemplate.id, cursor=cursor, limit=limit
        )


@requires(Permission.READ_CONFIGURATION)
async def get_template(ctx: RequestContext, template_id: str) -> IntegrationTemplate:
    principal = ctx.authenticated()
    async with ctx.db.read() as session:
        return await _template(session, principal.org_id, template_id)


@requires(Permission.WRITE_CONFIGURATION)
@retried_on_conflict
async def create_template(ctx: RequestContext, data: Any) -> TemplateWithRevision:
    problems = Problems()
    fields = problems.parse(TemplateCreate, data)
    problems.extend(
        config_problems(fields.config if fields else _given(data, "config", {}))
    )
    fields = problems.checked(fields)

    async with ctx.db.transaction() as session:
        template = await new_template(
            ctx,
            session,
            name=fields.name,
            vendor=fields.vendor,
            description=fields.description,
            secret_fields=sorted(set(fields.secret_fields)),
        )
        revision = await new_revision(
            ctx, session, template, 1, fields.config, fields.delivery_mode, None
        )
    return TemplateWithRevision(template, revision)


@requires(Permission.WRITE_CONFIGURATION)
@retried_on_conflict
async def install_from_catalog(
    ctx: RequestContext, vendor_key: str, data: Any
) -> TemplateWithRevision:
    """Create a template from a catalog vendor: the variant's default config
    with the given config merged over it, as revision 1."""
    vendor = ctx.services.catalog.get(vendor_key)
    if vendor is None:
        raise NotFound(f"No vendor {vendor_key!r} is in the catalog.")
    fields, variant, config = _installation(vendor, data)

    async with ctx.db.transaction() as session:
        template = await new_template(
            ctx,
            session,
            name=fields.name,
            vendor=vendor.key,
            description=fields.description,
            secret_fields=vendor.secret_fields,
            catalog=(vendor.key, variant.key),
        )
        revision = await new_revision(
            ctx, session, template, 1, config, vendor.delivery_modes[0], None
        )
    return TemplateWithRevision(template, revision)


@requires(Permission.WRITE_CONFIGURATION)
@retried_on_conflict
async def update_template(
    ctx: RequestContext,
    template_id: str,
    data: Any,
    *,
    expected_version: int | None = None,
) -> IntegrationTemplate:
    principal = ctx.authenticated()
    change = parse(TemplateUpdate, data)
    named = change.model_dump(include=change.model_fields_set)
    if named.get("name", "") is None:
        raise ValidationFailed(
            "A template needs a name.",
            [FieldProblem("name", "INVALID", "This field cannot be null.")],
        )

    async with ctx.db.transaction() as session:
        template = await _locked(
            session, principal.org_id, template_id, expected_version
        )
        await change_template(ctx, session, template, named)
    return template


@requires(Permission.DELETE_CONFIGURATION)
@retried_on_conflict
async def delete_template(
    ctx: RequestContext,
    template_id: str,
    *,
    cascade: bool = False,
    expected_version: int | None = None,
) -> None:
    """Delete a template with its revisions, their secrets and its own
    transformations, one audit entry for each row removed. While pipelines use
    it, only `cascade` deletes it, detaching it from each of them."""
    principal = ctx.authenticated()

    async with ctx.db.transaction() as session:
        template = await _locked(
            session, principal.org_id, template_id, expected_version
        )
        attached = list(
            await session.scalars(
                select(PipelineIntegration)
                .where(PipelineIntegration.template_id == template.id)
                .order_by(PipelineIntegration.id)
                .with_for_update()
            )
        )
        if attached and not cascade:
            raise ResourceInUse(
                f"{len(attached)} pipeline(s) use integration template {template.id}; "
                "detach it first or delete with cascade=true."
            )
        await pipeline_integrations.remove(session, ctx, attached)
        await transformations.remove(
            session, ctx, await transformations.of_template(session, template.id)
        )
        revisions = list(
            await session.execute(
                select(IntegrationRevision.id, IntegrationRevision.revision_number)
                .where(IntegrationRevision.template_id == template.id)
                .order_by(IntegrationRevision.revision_number)
            )
        )
        for revision_id, number in revisions:
            audit.record(
                session,
                ctx,
                action="integration_revision.deleted",
                resource_type="integration_revision",
                resource_id=revision_id,
                metadata={"template_id": template.id, "revision_number": number},
            )
        audit.record(
            session,
            ctx,
            action="integration_template.deleted",
            resource_type="integration_template",
            resource_id=template.id,
            changes=audit.diff(_audited(template), {}),
            metadata={"cascade": cascade},
        )
        await session.delete(template)
        await session.flush()
        await secrets.drop(
            session, template.org_id, [revision_id for revision_id, _ in revisions]
        )


@requires(Permission.READ_CONFIGURATION)
async def list_revisions(
    ctx: RequestContext,
    template_id: str,
    *,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[IntegrationRevision]:
    """A template's revisions, newest first."""
    principal = ctx.authenticated()
    async with ctx.db.read() as session:
        template = await _template(session, principal.org_id, template_id)
        statement = select(IntegrationRevision).where(
            IntegrationRevision.template_id == template.id
        )
        return await fetch_page(
            session,
            statement,
            IntegrationRevision.id,
            cursor=cursor,
            limit=limit,
            descending=True,
        )


@requires(Permission.READ_CONFIGURATION)
async def get_revision(
    ctx: RequestContext, template_id: str, revision_id: str
) -> IntegrationRevision:
    principal = ctx.authenticated()
    check_id(template_id, "tmpl", "Integration template")
    check_id(revision_id, "rev", "Revision")
    async with ctx.db.read() as session:
        revision = await session.scalar(
            select(IntegrationRevision).where(
                IntegrationRevision.id == revision_id,
                IntegrationRevision.template_id == template_id,
                IntegrationRevision.org_id == principal.org_id,
            )
        )
    if revision is None:
        raise NotFound.of("Revision", revision_id)
    return revision


@requires(Permission.WRITE_CONFIGURATION)
@retried_on_conflict
async def create_revision(
    ctx: RequestContext, template_id: str, data: Any
) -> IntegrationRevision:
    """Write the template's next revision. Numbers never skip or repeat: the
    template row is locked while the next one is taken."""
    principal = ctx.authenticated()
    problems = Problems()
    fields = problems.parse(RevisionCreate, data)
    problems.extend(
        config_problems(fields.config if fields else _given(data, "config", None))
    )
    fields = problems.checked(fields)

    async with ctx.db.transaction() as session:
        template = await _locked(session, principal.org_id, template_id, None)
        base = fields.base_revision_number
        if base is not None and base != template.latest_revision:
            raise RevisionConflict(
                f"Revision {base} is not the latest: revision "
                f"{template.latest_revision} is."
            )
        revision = await new_revision(
            ctx,
            session,
            template,
            template.latest_revision + 1,
            fields.config,
            fields.delivery_mode,
            fields.change_summary,
        )
    return revision


@requires(Permission.WRITE_CONFIGURATION)
@retried_on_conflict
async def rollout(
    ctx: RequestContext, template_id: str, data: Any
) -> list[pipeline_integrations.Attachment]:
    """Pin one revision on many pipelines at once, all or none: every listed
    pipeline must use the template and define the parameters it needs."""
    principal = ctx.authenticated()
    fields = parse(Rollout, data)

    async with ctx.db.transaction() as session:
        template = await _locked(session, principal.org_id, template_id, None)
        revision = (
            await session.scalar(
                select(IntegrationRevision).where(
                    IntegrationRevision.id == fields.revision_id,
                    IntegrationRevision.template_id == template.id,
                )
            )
            if is_id(fields.revision_id, "rev")
            else None
        )
        if revision is None:
            raise ValidationFailed(
                f"Revision {fields.revision_id} is not a revision of {template.id}.",
                [
                    FieldProblem(
                        "revision_id", "INVALID", "Not this template's revision."
                    )
                ],
            )
        targets = await _rollout_targets(session, template, fields.pipeline_ids)
        _check_rollout_parameters(revision, targets)
        for row, pipeline in targets:
            if row.revision_id == revision.id:
                continue
            before = await session.get_one(IntegrationRevision, row.revision_id)
            row.revision_id = revision.id
            audit.record(
                session,
                ctx,
                action="pipeline_integration.updated",
                resource_type="pipeline_integration",
                resource_id=row.id,
                changes={
                    "revision_id": {"old": before.id, "new": revision.id},
                    "revision_number": {
                        "old": before.revision_number,
                        "new": revision.revision_number,
                    },
                },
                metadata={"pipeline_id": pipeline.id, "rollout": True},
            )
        await session.flush()
        return [
            pipeline_integrations.Attachment(
                row, template, revision, pipeline.parameters
            )
            for row, pipeline in targets
        ]


async def _rollout_targets(
    session: AsyncSession, template: IntegrationTemplate, pipeline_ids: list[str] | None
) -> list[tuple[PipelineIntegration, Pipeline]]:
    """The attachments a rollout moves, or a 422 naming every pipeline that
    cannot take the revision."""
    statement = (
        select(PipelineIntegration, Pipeline)
        .join(Pipeline, Pipeline.id == PipelineIntegration.pipeline_id)
        .where(PipelineIntegration.template_id == template.id)
        .order_by(PipelineIntegration.id)
        # The attachments only: a pipeline is locked before its attachments.
        .with_for_update(of=PipelineIntegration)
    )
    if pipeline_ids is not None:
        statement = statement.where(PipelineIntegration.pipeline_id.in_(pipeline_ids))
    targets = [(row, pipeline) for row, pipeline in (await session.execute(statement))]
    found = {pipeline.id for _, pipeline in targets}
    unused = [
        FieldProblem(
            f"pipeline_ids.{index}",
            "NOT_ATTACHED",
            f"{pipeline_id} does not use this template.",
        )
        for index, pipeline_id in enumerate(pipeline_ids or [])
        if pipeline_id not in found
    ]
    if unused:
        raise ValidationFailed("Some pipelines do not use this template.", unused)
    return targets


def _check_rollout_parameters(
    revision: IntegrationRevision, targets: list[tuple[PipelineIntegration, Pipeline]]
) -> None:
    problems = []
    for _, pipeline in targets:
        keys = pipeline_integrations.missing_parameters(
            revision.config, pipeline.parameters
        )
        if keys:
            problems.append(
                FieldProblem(
                    f"pipelines.{pipeline.id}",
                    "MISSING_PIPELINE_PARAMETERS",
                    f"{pipeline.id} lacks {', '.join(keys)}.",
                )
            )
    if problems:
        raise MissingPipelineParameters(
            "Some pipelines lack parameters the revision uses.", problems
        )


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` over `base`: objects merge key by key, anything else replaces."""
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


async def change_template(
    ctx: RequestContext,
    session: AsyncSession,
    template: IntegrationTemplate,
    named: Mapping[str, Any],
) -> None:
    """Set the `name` or `description` that `named` holds on a locked template
    in an open transaction, audited when anything changed; 409 when the name
    is another template's."""
    before = _audited(template)
    for key, value in named.items():
        setattr(template, key, value)
    changes = audit.diff(before, _audited(template))
    if changes:
        audit.record(
            session,
            ctx,
            action="integration_template.updated",
            resource_type="integration_template",
            resource_id=template.id,
            changes=changes,
        )
    await flush_unique(session, _name_taken(template.name))


async def new_template(
    ctx: RequestContext,
    session: AsyncSession,
    *,
    name: str,
    vendor: str,
    description: str | None,
    secret_fields: list[str],
    catalog: tuple[str, str] | None = None,
) -> IntegrationTemplate:
    """Insert a template, to get its revision 1 next in the same open
    transaction, audited; 409 when the name is taken."""
    principal = ctx.authenticated()
    now = utc_now()
    # Written together with its revision 1, so that the template starts at
    # version 1 with `updated_at` equal to `created_at`.
    template = IntegrationTemplate(
        id=new_id("tmpl"),
        org_id=principal.org_id,
        name=name,
        vendor=vendor,
        description=description,
        catalog_vendor_key=catalog[0] if catalog else None,
        catalog_variant_key=catalog[1] if catalog else None,
        secret_fields=secret_fields,
        latest_revision=1,
        created_at=now,
        updated_at=now,
    )
    session.add(template)
    await flush_unique(session, _name_taken(name))
    audit.record(
        session,
        ctx,
        action="integration_template.created",
        resource_type="integration_template",
        resource_id=template.id,
        changes=audit.created(_audited(template)),
    )
    return template


async def new_revision(
    ctx: RequestContext,
    session: AsyncSession,
    template: IntegrationTemplate,
    number: int,
    config: dict[str, Any],
    delivery_mode: str,
    change_summary: str | None,
    *,
    base: IntegrationRevision | None = None,
) -> IntegrationRevision:
    """Write revision `number` of a locked (or new) template. `"***"` keeps a
    secret of `base`, which the audit entry's diff is against too: by default
    the revision just before `number`."""
    previous = base
    if previous is None and number > 1:
        previous = await session.scalar(
            select(IntegrationRevision).where(
                IntegrationRevision.template_id == template.id,
                IntegrationRevision.revision_number == number - 1,
            )
        )
    owner = secrets.Owner(template.org_id, new_id("rev"))
    stored = await secrets.seal(
        ctx, session, owner, config, template.secret_fields, previous
    )
    if template.latest_revision != number:
        template.latest_revision = number
    revision = IntegrationRevision(
        id=owner.row_id,
        template_id=template.id,
        org_id=template.org_id,
        revision_number=number,
        config=stored,
        delivery_mode=delivery_mode,
        change_summary=change_summary,
        created_by=ctx.authenticated().user_id,
    )
    session.add(revision)
    await session.flush()
    audit.record(
        session,
        ctx,
        action="integration_revision.created",
        resource_type="integration_revision",
        resource_id=revision.id,
        changes=_revision_changes(previous.config if previous else {}, config, stored),
        metadata={
            "template_id": template.id,
            "revision_number": revision.revision_number,
        },
    )
    return revision


def _revision_changes(
    previous: dict[str, Any], given: dict[str, Any], stored: dict[str, Any]
) -> dict[str, Any]:
    """The diff from the previous revision, secrets masked. A secret given a
    new value shows as changed even though both sides read `"***"`."""
    before, after = secrets.masked(previous), secrets.masked(stored)
    changes = audit.diff(before, after)
    for field in secrets.secret_ids_by_field(stored):
        if given.get(field) != secrets.MASK:
            changes[field] = {"old": before.get(field), "new": secrets.MASK}
    return changes


def _installation(
    vendor: Vendor, data: Any
) -> tuple[CatalogInstall, Variant, dict[str, Any]]:
    """An install's fields, its variant and the config it yields: the
    variant's default config with the given config merged over it. The body,
    the connection fields and the mapping document are all checked, even when
    the body itself does not fit, and one error names every problem."""
    problems = Problems()
    fields = problems.parse(CatalogInstall, data)
    key = fields.variant_key if fields else _given(data, "variant_key", "default")
    variant = vendor.variant(key) if isinstance(key, str) else None
    if variant is None:
        problems.add("variant_key", "INVALID_CHOICE", "Not one of its variants.")
    given = fields.config if fields else _given(data, "config", {})
    config = None
    if isinstance(given, dict):
        config = merged(variant.default_config if variant else {}, given)
        problems.extend(connection_problems(vendor, config))
        problems.extend(config_problems(config))
    return problems.checked(fields), problems.checked(variant), problems.checked(config)


def _given(data: Any, key: str, default: Any) -> Any:
    """A field of a body that did not validate as a whole, as sent."""
    return data.get(key, default) if isinstance(data, Mapping) else None


def config_problems(config: Any) -> list[FieldProblem]:
    """What keeps `config` from being a mapping document; nothing for a
    config that is not even an object, which its model reports."""
    if not isinstance(config, dict):
        return []
    problems: list[FieldProblem] = []
    try:
        check_document_size(config)
    except ValueError as error:
        problems.append(FieldProblem("config", "TOO_LARGE", str(error)))
    problems += secrets.reference_problems(config, "config")
    try:
        MappingDocument.model_validate(config)
    except ValidationError as error:
        for problem in error.errors(include_url=False):
            if problem["type"] == "string_unicode":
                continue  # unstorable text, which the input's own check names
            path = ".".join(["config", *(str(part) for part in problem["loc"])])
            problems.append(FieldProblem(path, "INVALID", str(problem["msg"])))
    return problems


def connection_problems(vendor: Vendor, config: dict[str, Any]) -> list[FieldProblem]:
    """Every connection field of `vendor` that `config` misses or mistypes."""
    problems: list[FieldProblem] = []
    for field in vendor.config_fields:
        value = config.get(field.key)
        path = f"config.{field.key}"
        if value is None or value == "":
            if field.required:
                problems.append(
                    FieldProblem(path, "REQUIRED", f"{field.label} is required.")
                )
            continue
        problem = field.problem_with(value)
        if problem:
            problems.append(FieldProblem(path, "INVALID", problem))
    return problems


def _filtered(statement: Select[Any], filters: TemplateFilter) -> Select[Any]:
    if filters.vendor:
        statement = statement.where(IntegrationTemplate.vendor == filters.vendor)
    if filters.q:
        statement = statement.where(name_contains(IntegrationTemplate.name, filters.q))
    return statement


async def _template(
    session: AsyncSession, org_id: str, template_id: str
) -> IntegrationTemplate:
    check_id(template_id, "tmpl", "Integration template")
    template = await session.scalar(
        select(IntegrationTemplate).where(
            IntegrationTemplate.id == template_id,
            IntegrationTemplate.org_id == org_id,
        )
    )
    if template is None:
        raise NotFound.of("Integration template", template_id)
    return template


async def _locked(
    session: AsyncSession, org_id: str, template_id: str, expected_version: int | None
) -> IntegrationTemplate:
    check_id(template_id, "tmpl", "Integration template")
    template = await session.scalar(
        select(IntegrationTemplate)
        .where(
            IntegrationTemplate.id == template_id,
            IntegrationTemplate.org_id == org_id,
        )
        .with_for_update()
    )
    if template is None:
        raise NotFound.of("Integration template", template_id)
    if expected_version is not None and expected_version != template.version:
        raise PreconditionFailed(
            f"Integration template {template_id} is at version {template.version}, "
            f"not {expected_version}."
        )
    return template


def _name_taken(name: str) -> AlreadyExists:
    return AlreadyExists(f"An integration template named {name!r} already exists.")


def _audited(template: IntegrationTemplate) -> dict[str, Any]:
    return {
        "name": template.name,
        "vendor": template.vendor,
        "description": template.description,
        "catalog_vendor_key": template.catalog_vendor_key,
        "catalog_variant_key": template.catalog_variant_key,
        "secret_fields": template.secret_fields,
    }


@requires(Permission.READ_CONFIGURATION)
async def count_templates(ctx: RequestContext, filters: TemplateFilter) -> int:
    """How many of the organisation's templates match `filters`, on all pages."""
    principal = ctx.authenticated()
    async with ctx.db.read() as session:
        statement = _filtered(
            select(func.count())
            .select_from(IntegrationTemplate)
            .where(IntegrationTemplate.org_id == principal.org_id),
            filters,
        )
        return int(await session.scalar(statement) or 0)


@requires(Permission.READ_CONFIGURATION)
async def templates_by_ids(
    ctx: RequestContext, template_ids: Sequence[str]
) -> list[IntegrationTemplate]:
    """The organisation's templates among `template_ids`, in no set order;
    ids that name no template of the organisation are left out."""
    principal = ctx.authenticated()
    async with ctx.db.read() as session:
        rows = await session.scalars(
            select(IntegrationTemplate).where(
                IntegrationTemplate.org_id == principal.org_id,
                IntegrationTemplate.id.in_(template_ids),
            )
        )
        return list(rows)


@requires(Permission.READ_CONFIGURATION)
async def revisions_by_number(
    ctx: RequestContext, numbers: Sequence[tuple[str, int]]
) -> list[IntegrationRevision]:
    """The organisation's revisions named by (template id, revision number),
    in no set order; pairs that name none are left out."""
    principal = ctx.authenticated()
    async with ctx.db.read() as session:
        rows = await session.scalars(
            select(IntegrationRevision).where(
                IntegrationRevision.org_id == principal.org_id,
                tuple_(
                    IntegrationRevision.template_id,
                    IntegrationRevision.revision_number,
                ).in_(list(numbers)),
            )
        )
        return list(rows)


@requires(Permission.READ_CONFIGURATION)
async def revision_authors(ctx: RequestContext, user_ids: Sequence[str]) -> list[User]:
    """The organisation's users among `user_ids` (the `created_by` of
    revisions), deleted ones included, in no set order."""
    principal = ctx.authenticated()
    async with ctx.db.read() as session:
        rows = await session.scalars(
            select(User).where(User.org_id == principal.org_id, User.id.in_(user_ids))
        )
        return list(rows)
