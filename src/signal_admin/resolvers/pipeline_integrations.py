"""Pipeline integrations: a template attached to a pipeline, pinned to one of
its revisions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)
from sqlalchemy import Select, delete, false, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from signal_admin.errors import (
    AlreadyExists,
    FieldProblem,
    MissingPipelineParameters,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)
from signal_admin.persistence.database import is_unique_violation, retried_on_conflict
from signal_admin.persistence.ids import check_id, is_id, new_id
from signal_admin.persistence.models import (
    IntegrationRevision,
    IntegrationTemplate,
    Pipeline,
    PipelineIntegration,
)
from signal_admin.persistence.pagination import Page, fetch_page
from signal_admin.processing.mapping import parameter_keys
from signal_admin.resolvers import audit
from signal_admin.resolvers.context import RequestContext, requires
from signal_admin.resolvers.validation import distinct, parse
from signal_admin.security.permissions import Permission

Category = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)
]
Categories = Annotated[list[Category], Field(max_length=50), AfterValidator(distinct)]
Reference = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class AttachmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    integration_id: Reference
    revision_id: Reference | None = None
    enabled: bool = True
    consent_categories: Categories = []


class AttachmentUpdate(BaseModel):
    """Fields left out stay as they are; a field named must hold a value."""

    model_config = ConfigDict(extra="forbid", strict=True)

    revision_id: Reference | None = None
    enabled: bool | None = None
    consent_categories: Categories | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("This field cannot be null; leave it out to keep it.")
        return value


@dataclass(frozen=True, slots=True)
class Attachment:
    """An attachment with what its answers show of its template, its pinned
    revision and its pipeline's parameters."""

    row: PipelineIntegration
    template: IntegrationTemplate
    revision: IntegrationRevision
    pipeline_parameters: dict[str, str]

    @property
    def upgrade_available(self) -> bool:
        return self.revision.revision_number < self.template.latest_revision

    @property
    def unresolved_parameters(self) -> list[str]:
        return missing_parameters(self.revision.config, self.pipeline_parameters)


def missing_parameters(config: Any, parameters: dict[str, str]) -> list[str]:
    """The `{{pipeline_param.KEY}}` keys of `config` that `parameters` lacks."""
    return sorted(parameter_keys(config) - set(parameters))


@requires(Permission.READ_CONFIGURATION)
async def list_attachments(
    ctx: RequestContext, pipeline_id: str, *, cursor: str | None, limit: int
) -> Page[Attachment]:
    principal = ctx.authenticated()
    async with ctx.db.read() as session:
        pipeline = await _pipeline(session, principal.org_id, pipeline_id, lock=False)
        page = await fetch_page(
            session,
            with_template_and_revision().where(
                PipelineIntegration.pipeline_id == pipeline.id
            ),
            PipelineIntegration.id,
            cursor=cursor,
            limit=limit,
        )
    items = [_view(row, pipeline.parameters) for row in page.items]
    return Page(items=items, has_more=page.has_more, next_cursor=page.next_cursor)


@requires(Permission.READ_CONFIGURATION)
async def get_attachment(
    ctx: RequestContext, pipeline_id: str, attachment_id: str
) -> Attachment:
    principal = ctx.authenticated()
    check_id(attachment_id, "pi", "Pipeline integration")
    async with ctx.db.read() as session:
        pipeline = await _pipeline(session, principal.org_id, pipeline_id, lock=False)
        row = (
            await session.execute(
                with_template_and_revision().where(
                    PipelineIntegration.id == attachment_id,
                    PipelineIntegration.pipeline_id == pipeline.id,
                )
            )
        ).first()
    if row is None:
        raise NotFound.of("Pipeline integration", attachment_id)
    return _view(row, pipeline.parameters)


@requires(Permission.WRITE_CONFIGURATION)
@retried_on_conflict
async def attach(ctx: RequestContext, pipeline_id: str, data: Any) -> Attachment:
    """Attach a template to a pipeline. The template is locked before the
    pipeline, as every writer of a template's family locks it first; one
    deleted meanwhile is reported as not found."""
    principal = ctx.authenticated()
    fields = parse(AttachmentCreate, data)

    async with ctx.db.transaction() as session:
        template = await _template(session, principal.org_id, fields.integration_id)
        pipeline = await _pipeline(session, principal.org_id, pipeline_id, lock=True)
        if template is None:
            raise _no_template(fields.integration_id)
        revision = await _pinnable(session, template, fields.revision_id)
        check_parameters(revision, pipeline)
        clash = f"Integration {template.id} is already attached to {pipeline.id}."
        try:
            row = await add_attachment(
                session,
                pipeline,
                template,
                revision,
                enabled=fields.enabled,
                consent_categories=fields.consent_categories,
            )
        except IntegrityError as error:
            # The failed flush ended the transaction: use no loaded row here.
            if is_unique_violation(error):
                raise AlreadyExists(clash) from error
            raise _no_template(fields.integration_id) from error
        attachment = Attachment(row, template, revision, pipeline.parameters)
        audit.record(
            session,
            ctx,
            action="pipeline_integration.created",
            resource_type="pipeline_integration",
            resource_id=row.id,
            changes=audit.created(_audited(attachment)),
            metadata={"pipeline_id": pipeline.id, "template_id": template.id},
        )
    return attachment


@requires(Permission.WRITE_CONFIGURATION)
@retried_on_conflict
async def update_attachment(
    ctx: RequestContext,
    pipeline_id: str,
    attachment_id: str,
    data: Any,
    *,
    expected_version: int | None = None,
) -> Attachment:
    """Pin another revision (upgrade or roll back), enable or disable, or
    change the consent categories."""
    principal = ctx.authenticated()
    change = parse(AttachmentUpdate, data)
    named = change.model_dump(include=change.model_fields_set)
    check_id(attachment_id, "pi", "Pipeline integration")

    async with ctx.db.transaction() as session:
        pipeline = await _pipeline(session, principal.org_id, pipeline_id, lock=False)
        template = await _template_of(session, pipeline.id, attachment_id)
        row = await _locked(session, pipeline.id, attachment_id, expected_version)
        revision = await session.get_one(IntegrationRevision, row.revision_id)
        before = _audited(Attachment(row, template, revision, pipeline.parameters))
        if named.get("revision_id"):
            revision = await _pinnable(session, template, named["revision_id"])
            check_parameters(revision, pipeline)
            row.revision_id = revision.id
        for key in ("enabled", "consent_categories"):
            if key in named:
                setattr(row, key, named[key])
        attachment = Attachment(row, template, revision, pipeline.parameters)
        changes = audit.diff(before, _audited(attachment))
        if changes:
            audit.record(
                session,
                ctx,
                action="pipeline_integration.updated",
                resource_type="pipeline_integration",
                resource_id=row.id,
                changes=changes,
                metadata={"pipeline_id": pipeline.id},
            )
        await session.flush()
    return attachment


@requires(Permission.DELETE_CONFIGURATION)
@retried_on_conflict
async def detach(
    ctx: RequestContext,
    pipeline_id: str,
    attachment_id: str,
    *,
    expected_version: int | None = None,
) -> None:
    principal = ctx.authenticated()
    check_id(attachment_id, "pi", "Pipeline integration")

    async with ctx.db.transaction() as session:
        pipeline = await _pipeline(session, principal.org_id, pipeline_id, lock=False)
        await _template_of(session, pipeline.id, attachment_id)
        row = await _locked(session, pipeline.id, attachment_id, expected_version)
        await remove(session, ctx, [row])


async def add_attachment(
    session: AsyncSession,
    pipeline: Pipeline,
    template: IntegrationTemplate,
    revision: IntegrationRevision,
    *,
    enabled: bool,
    consent_categories: list[str],
) -> PipelineIntegration:
    """Insert an attachment in an open transaction, where the template and
    then the pipeline are locked and the parameters checked; the caller
    audits it. A refused insert raises `IntegrityError`."""
    row = PipelineIntegration(
        id=new_id("pi"),
        org_id=pipeline.org_id,
        pipeline_id=pipeline.id,
        template_id=template.id,
        revision_id=revision.id,
        enabled=enabled,
        consent_categories=consent_categories,
    )
    session.add(row)
    await session.flush()
    return row


async def remove(
    session: AsyncSession,
    ctx: RequestContext,
    rows: Sequence[PipelineIntegration],
    *,
    resource_type: str = "pipeline_integration",
) -> None:
    """Delete attachments, one audit entry for each (also in cascades), named
    `resource_type` (`integration` when addressed by the legacy routes). One
    that a concurrent transaction removed first is that one's to audit."""
    if not rows:
        return
    removed = set(
        await session.scalars(
            delete(PipelineIntegration)
            .where(PipelineIntegration.id.in_([row.id for row in rows]))
            .returning(PipelineIntegration.id)
        )
    )
    for row in rows:
        if row.id not in removed:
            continue
        audit.record(
            session,
            ctx,
            action=f"{resource_type}.deleted",
            resource_type=resource_type,
            resource_id=row.id,
            metadata={"pipeline_id": row.pipeline_id, "template_id": row.template_id},
        )
    await session.flush()


def with_template_and_revision() -> Select[
    PipelineIntegration, IntegrationTemplate, IntegrationRevision
]:
    """Attachments, each with its template and its pinned revision."""
    return (
        select(PipelineIntegration, IntegrationTemplate, IntegrationRevision)
        .join(
            IntegrationTemplate,
            IntegrationTemplate.id == PipelineIntegration.template_id,
        )
        .join(
            IntegrationRevision,
            IntegrationRevision.id == PipelineIntegration.revision_id,
        )
    )


def _view(row: Any, parameters: dict[str, str]) -> Attachment:
    attachment, template, revision = row
    return Attachment(attachment, template, revision, parameters)


async def _pipeline(
    session: AsyncSession, org_id: str, pipeline_id: str, *, lock: bool
) -> Pipeline:
    check_id(pipeline_id, "pip", "Pipeline")
    statement = select(Pipeline).where(
        Pipeline.id == pipeline_id, Pipeline.org_id == org_id
    )
    pipeline = await session.scalar(statement.with_for_update() if lock else statement)
    if pipeline is None:
        raise NotFound.of("Pipeline", pipeline_id)
    return pipeline


async def _template(
    session: AsyncSession, org_id: str, template_id: str
) -> IntegrationTemplate | None:
    """The template to attach, locked; None if the organisation has none of
    that id (or it was deleted while this waited for the lock)."""
    if not is_id(template_id, "tmpl"):
        return None
    template: IntegrationTemplate | None = await session.scalar(
        select(IntegrationTemplate)
        .where(
            IntegrationTemplate.id == template_id,
            IntegrationTemplate.org_id == org_id,
        )
        .with_for_update()
    )
    return template


def _no_template(template_id: str) -> ValidationFailed:
    return ValidationFailed(
        f"Integration template {template_id} was not found.",
        [FieldProblem("integration_id", "NOT_FOUND", "No such template.")],
    )


async def _template_of(
    session: AsyncSession, pipeline_id: str, attachment_id: str
) -> IntegrationTemplate:
    """The template of an attachment, locked before the attachment is."""
    template = await session.scalar(
        select(IntegrationTemplate)
        .where(
            IntegrationTemplate.id
            == select(PipelineIntegration.template_id)
            .where(
                PipelineIntegration.id == attachment_id,
                PipelineIntegration.pipeline_id == pipeline_id,
            )
            .scalar_subquery()
        )
        .with_for_update()
    )
    if template is None:
        raise NotFound.of("Pipeline integration", attachment_id)
    return template


async def _pinnable(
    session: AsyncSession, template: IntegrationTemplate, revision_id: str | None
) -> IntegrationRevision:
    """The revision to pin: the given one, which must be the template's, or
    the latest."""
    statement = select(IntegrationRevision).where(
        IntegrationRevision.template_id == template.id
    )
    if revision_id is None:
        statement = statement.where(
            IntegrationRevision.revision_number == template.latest_revision
        )
    elif is_id(revision_id, "rev"):
        statement = statement.where(IntegrationRevision.id == revision_id)
    else:
        statement = statement.where(false())
    revision = await session.scalar(statement)
    if revision is None:
        raise ValidationFailed(
            f"Revision {revision_id} is not a revision of {template.id}.",
            [FieldProblem("revision_id", "INVALID", "Not this template's revision.")],
        )
    return revision


def check_parameters(revision: IntegrationRevision, pipeline: Pipeline) -> None:
    """422 `MISSING_PIPELINE_PARAMETERS` naming every parameter the revision
    uses that the pipeline lacks."""
    missing = missing_parameters(revision.config, pipeline.parameters)
    if missing:
        raise MissingPipelineParameters(
            f"Pipeline {pipeline.id} lacks the parameters {', '.join(missing)}.",
            [
                FieldProblem(
                    f"parameters.{key}", "MISSING", "The revision uses this parameter."
                )
                for key in missing
            ],
        )


async def _locked(
    session: AsyncSession,
    pipeline_id: str,
    attachment_id: str,
    expected_version: int | None,
) -> PipelineIntegration:
    row = await session.scalar(
        select(PipelineIntegration)
        .where(
            PipelineIntegration.id == attachment_id,
            PipelineIntegration.pipeline_id == pipeline_id,
        )
        .with_for_update()
    )
    if row is None:
        raise NotFound.of("Pipeline integration", attachment_id)
    if expected_version is not None and expected_version != row.version:
        raise PreconditionFailed(
            f"Pipeline integration {attachment_id} is at version {row.version}, "
            f"not {expected_version}."
        )
    return row


def _audited(attachment: Attachment) -> dict[str, Any]:
    return {
        "revision_id": attachment.revision.id,
        "revision_number": attachment.revision.revision_number,
        "enabled": attachment.row.enabled,
        "consent_categories": attachment.row.consent_categories,
    }


@requires(Permission.READ_CONFIGURATION)
async def attachments_of_pipelines(
    ctx: RequestContext, pipeline_ids: Sequence[str]
) -> list[PipelineIntegration]:
    """The organisation's attachments to any of `pipeline_ids`, oldest first."""
    principal = ctx.authenticated()
    async with ctx.db.read() as session:
        rows = await session.scalars(
            select(PipelineIntegration)
            .where(
                PipelineIntegration.org_id == principal.org_id,
                PipelineIntegration.pipeline_id.in_(pipeline_ids),
            )
            .order_by(PipelineIntegration.id)
        )
        return list(rows)


@requires(Permission.READ_CONFIGURATION)
async def attachments_of_templates(
    ctx: RequestContext, template_ids: Sequence[str]
) -> list[PipelineIntegration]:
    """The organisation's attachments of any of `template_ids`, oldest first."""
    principal = ctx.authenticated()
    async with ctx.db.read() as session:
        rows = await session.scalars(
            select(PipelineIntegration)
            .where(
                PipelineIntegration.org_id == principal.org_id,
                PipelineIntegration.template_id.in_(template_ids),
            )
            .order_by(PipelineIntegration.id)
        )
        return list(rows)


@requires(Permission.READ_CONFIGURATION)
async def pipelines_by_ids(
    ctx: RequestContext, pipeline_ids: Sequence[str]
) -> list[Pipeline]:
    """The organisation's pipelines among `pipeline_ids` (an attachment's
    pipeline), in no set order; ids that name none are left out."""
    principal = ctx.authenticated()
    async with ctx.db.read() as session:
        rows = await session.scalars(
            select(Pipeline).where(
                Pipeline.org_id == principal.org_id, Pipeline.id.in_(pipeline_ids)
            )
        )
        return list(rows)


@requires(Permission.READ_CONFIGURATION)
async def revisions_by_ids(
    ctx: RequestContext, revision_ids: Sequence[str]
) -> list[IntegrationRevision]:
    """The organisation's revisions among `revision_ids` (the revisions
    attachments pin), in no set order; ids that name none are left out."""
    principal = ctx.authenticated()
    async with ctx.db.read() as session:
        rows = await session.scalars(
            select(IntegrationRevision).where(
                IntegrationRevision.org_id == principal.org_id,
                IntegrationRevision.id.in_(revision_ids),
            )
        )
        return list(rows)
