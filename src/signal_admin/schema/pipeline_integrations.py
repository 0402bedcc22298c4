"""Pipeline integrations: a template attached to a pipeline, pinned to one of
its revisions.

An attachment reaches its pipeline, template and revisions through the
request's loaders, so the UI's graph of pipelines, their attachments and what
those pin costs one SELECT per level whatever the number of pipelines.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from signal_admin.errors import DomainError, NotFound
from signal_admin.persistence.models import IntegrationRevision as RevisionRow
from signal_admin.persistence.models import IntegrationTemplate as TemplateRow
from signal_admin.persistence.models import Pipeline as PipelineRow
from signal_admin.persistence.models import PipelineIntegration as AttachmentRow
from signal_admin.resolvers import pipeline_integrations, templates
from signal_admin.resolvers.pipeline_integrations import Attachment
from signal_admin.schema.context import GraphQLContext, Info
from signal_admin.schema.errors import UserError, field_path, user_errors_or_raise
from signal_admin.schema.execution import batched, once_per_row, one
from signal_admin.schema.fields import mutation_field, query_field
from signal_admin.schema.inputs import expected_version, given
from signal_admin.schema.loaders import (
    PipelineKey,
    RevisionIdKey,
    TemplateKey,
)
from signal_admin.schema.pipelines import Pipeline
from signal_admin.schema.templates import (
    IntegrationRevision,
    IntegrationTemplate,
    latest_revisions,
)

if TYPE_CHECKING:
    from signal_admin.schema.transformations import Transformation


async def _template_rows(
    context: GraphQLContext, attachments: Sequence[PipelineIntegration]
) -> list[TemplateRow]:
    """The attached templates: those a mutation has just read, the others loaded."""
    keys = [
        TemplateKey(a.org_id, a.template_id) for a in attachments if a.written is None
    ]
    loaded = iter(await context.loaders.template_by_id.load_many(keys))
    found = []
    for attachment in attachments:
        row = (
            next(loaded) if attachment.written is None else attachment.written.template
        )
        if row is None:
            raise NotFound.of("Integration template", attachment.template_id)
        found.append(row)
    return found


async def _revision_rows(
    context: GraphQLContext, attachments: Sequence[PipelineIntegration]
) -> list[RevisionRow]:
    """The pinned revisions: those a mutation has just read, the others loaded."""
    keys = [
        RevisionIdKey(a.org_id, a.revision_id) for a in attachments if a.written is None
    ]
    loaded = iter(await context.loaders.revision_by_id.load_many(keys))
    found = []
    for attachment in attachments:
        row = (
            next(loaded) if attachment.written is None else attachment.written.revision
        )
        if row is None:
            raise NotFound.of("Revision", attachment.revision_id)
        found.append(row)
    return found


async def _pipeline_rows(
    context: GraphQLContext, attachments: Sequence[PipelineIntegration]
) -> list[PipelineRow]:
    keys = [PipelineKey(a.org_id, a.pipeline_id) for a in attachments]
    rows = await context.loaders.pipeline_by_id.load_many(keys)
    found = []
    for attachment, row in zip(attachments, rows, strict=True):
        if row is None:
            raise NotFound.of("Pipeline", attachment.pipeline_id)
        found.append(row)
    return found


async def pipelines_of(
    context: GraphQLContext, attachments: Sequence[PipelineIntegration]
) -> list[Pipeline]:
    return [
        Pipeline.from_row(row) for row in await _pipeline_rows(context, attachments)
    ]


async def templates_of(
    context: GraphQLContext, attachments: Sequence[PipelineIntegration]
) -> list[IntegrationTemplate]:
    rows = await _template_rows(context, attachments)
    return once_per_row(rows, IntegrationTemplate.from_row)


async def revisions_of(
    context: GraphQLContext, attachments: Sequence[PipelineIntegration]
) -> list[IntegrationRevision]:
    rows = await _revision_rows(context, attachments)
    return once_per_row(rows, IntegrationRevision.from_row)


async def latest_revisions_of(
    context: GraphQLContext, attachments: Sequence[PipelineIntegration]
) -> list[IntegrationRevision]:
    templates = await _template_rows(context, attachments)
    return await latest_revisions(context, templates)


async def upgrades_available(
    context: GraphQLContext, attachments: Sequence[PipelineIntegration]
) -> list[bool]:
    templates = await _template_rows(context, attachments)
    revisions = await _revision_rows(context, attachments)
    return [
        revision.revision_number < template.latest_revision
        for template, revision in zip(templates, revisions, strict=True)
    ]


async def unresolved_parameters_of(
    context: GraphQLContext, attachments: Sequence[PipelineIntegration]
) -> list[list[str]]:
    pipelines = await _pipeline_rows(context, attachments)
    revisions = await _revision_rows(context, attachments)
    return [
        pipeline_integrations.missing_parameters(revision.config, pipeline.parameters)
        for pipeline, revision in zip(pipelines, revisions, strict=True)
    ]


async def transformations_of(
    context: GraphQLContext, attachments: Sequence[PipelineIntegration]
) -> list[list[Transformation]]:
    # Imported here: that module builds on the schema's template types.
    from signal_admin.schema.transformations import transformations_of_templates

    keys = [TemplateKey(a.org_id, a.template_id) for a in attachments]
    return await transformations_of_templates(context, keys)


@strawberry.type(
    description="A template attached to a pipeline, pinned to one of its revisions."
)
class PipelineIntegration:
    id: strawberry.ID = strawberry.field(description="The attachment's id (pi_…).")
    enabled: bool = strawberry.field(
        description="Whether the pipeline sends events to it."
    )
    consent_categories: list[str] = strawberry.field(
        description="The consent categories an event needs to be sent to it."
    )
    version: int = strawberry.field(
        description="1, then one more on every change; pass it as expectedVersion."
    )
    created_at: datetime = strawberry.field(description="When it was attached.")
    updated_at: datetime = strawberry.field(description="The last change.")
    org_id: strawberry.Private[str]
    pipeline_id: strawberry.Private[str]
    template_id: strawberry.Private[str]
    revision_id: strawberry.Private[str]
    written: strawberry.Private[Attachment | None] = None

    @classmethod
    def from_row(cls, row: AttachmentRow) -> PipelineIntegration:
        return cls(
            id=strawberry.ID(row.id),
            enabled=row.enabled,
            consent_categories=list(row.consent_categories),
            version=row.version,
            created_at=row.created_at,
            updated_at=row.updated_at,
            org_id=row.org_id,
            pipeline_id=row.pipeline_id,
            template_id=row.template_id,
            revision_id=row.revision_id,
        )

    @classmethod
    def from_attachment(cls, attachment: Attachment) -> PipelineIntegration:
        """An attachment a mutation has just written, with the template and
        revision it read, so its payload needs no query for them."""
        written = cls.from_row(attachment.row)
        written.written = attachment
        return written

    @query_field(description="The pipeline it is attached to.")
    @batched(pipelines_of)
    async def pipeline(self, info: Info) -> Pipeline:
        return await one(pipelines_of, info.context, self)

    @query_field(description="The attached template.")
    @batched(templates_of)
    async def template(self, info: Info) -> IntegrationTemplate:
        return await one(templates_of, info.context, self)

    @query_field(description="The pinned revision, whose config the pipeline uses.")
    @batched(revisions_of)
    async def revision(self, info: Info) -> IntegrationRevision:
        return await one(revisions_of, info.context, self)

    @query_field(description="The template's newest revision.")
    @batched(latest_revisions_of)
    async def latest_revision(self, info: Info) -> IntegrationRevision:
        return await one(latest_revisions_of, info.context, self)

    @query_field(description="Whether the template has a newer revision than the pin.")
    @batched(upgrades_available)
    async def upgrade_available(self, info: Info) -> bool:
        return await one(upgrades_available, info.context, self)

    @query_field(
        description="The {{pipeline_param.KEY}} keys the pinned config uses that "
        "the pipeline's parameters lack, checked when read."
    )
    @batched(unresolved_parameters_of)
    async def unresolved_parameters(self, info: Info) -> list[str]:
        return await one(unresolved_parameters_of, info.context, self)

    @query_field(
        description="The transformations run on its payloads, in the order "
        "they run (by name): the enabled ones of its template and of the "
        "whole organisation."
    )
    @batched(transformations_of)
    async def transformations(
        self, info: Info
    ) -> list[
        Annotated[
            Transformation, strawberry.lazy("signal_admin.schema.transformations")
        ]
    ]:
        return await one(transformations_of, info.context, self)


async def attachments_of_pipelines(
    context: GraphQLContext, keys: Sequence[PipelineKey]
) -> list[list[PipelineIntegration]]:
    """Each pipeline's `integrations`, oldest first."""
    groups = await context.loaders.attachments_by_pipeline.load_many(keys)
    return [[PipelineIntegration.from_row(row) for row in rows] for rows in groups]


async def attachments_of_templates(
    context: GraphQLContext, keys: Sequence[TemplateKey]
) -> list[list[PipelineIntegration]]:
    """Each template's `attachments`, oldest first."""
    groups = await context.loaders.attachments_by_template.load_many(keys)
    return [[PipelineIntegration.from_row(row) for row in rows] for rows in groups]


@strawberry.input(
    description="A template to attach to a pipeline, pinned to one of its revisions."
)
class AttachIntegrationInput:
    pipeline_id: strawberry.ID = strawberry.field(description="The pipeline.")
    integration_id: strawberry.ID = strawberry.field(
        description="The template to attach (tmpl_…); once per pipeline."
    )
    revision_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET,
        description="The template's revision to pin; the latest when left out.",
    )
    enabled: bool | None = strawberry.field(
        default=strawberry.UNSET, description="Send events to it; true."
    )
    consent_categories: list[str] | None = strawberry.field(
        default=strawberry.UNSET,
        description="Consent categories an event needs, up to 50; none.",
    )


@strawberry.input(
    description="A change to an attachment: pin another revision (upgrade or "
    "roll back), enable or disable it, or change its consent categories. "
    "Fields left out stay as they are."
)
class UpdatePipelineIntegrationInput:
    pipeline_id: strawberry.ID = strawberry.field(description="The pipeline.")
    id: strawberry.ID = strawberry.field(description="The attachment to change.")
    expected_version: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="Refuse the change unless the attachment is at this version.",
    )
    revision_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="The template's revision to pin."
    )
    enabled: bool | None = strawberry.field(
        default=strawberry.UNSET, description="Send events to it."
    )
    consent_categories: list[str] | None = strawberry.field(
        default=strawberry.UNSET, description="Consent categories an event needs."
    )


@strawberry.input(description="The attachment to remove from its pipeline.")
class DetachIntegrationInput:
    pipeline_id: strawberry.ID = strawberry.field(description="The pipeline.")
    id: strawberry.ID = strawberry.field(description="The attachment to remove.")
    expected_version: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="Refuse unless the attachment is at this version.",
    )


@strawberry.type(description="The result of attachIntegration.")
class AttachIntegrationPayload:
    pipeline_integration: PipelineIntegration | None = strawberry.field(
        default=None, description="The new attachment; null on failure."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="What to fix in the input."
    )


@strawberry.type(description="The result of updatePipelineIntegration.")
class UpdatePipelineIntegrationPayload:
    pipeline_integration: PipelineIntegration | None = strawberry.field(
        default=None, description="The attachment as changed; null on failure."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="What to fix in the input."
    )


@strawberry.type(description="The result of detachIntegration.")
class DetachIntegrationPayload:
    deleted_id: strawberry.ID | None = strawberry.field(
        default=None, description="The id of the removed attachment; null on failure."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="Why it could not be removed."
    )


def input_path(field: str) -> list[str]:
    """Where a problem sits. Input names are camel-cased (`revision_id` →
    `["revisionId"]`); a missing pipeline parameter keeps its key as the
    pipeline's parameters spell it (`parameters.api_host` →
    `["parameters", "api_host"]`)."""
    name, _, key = field.partition(".")
    if name == "parameters" and key:
        return ["parameters", key]
    return field_path(field)


def attachment_user_errors(error: DomainError) -> list[UserError]:
    """`user_errors_or_raise`, with paths that keep parameter keys as written."""
    if error.user_fixable and error.details:
        return [
            UserError(
                field=input_path(problem.field),
                code=problem.code,
                message=problem.message,
            )
            for problem in error.details
        ]
    return user_errors_or_raise(error)


_TARGET_FIELDS = ("pipeline_id", "id", "expected_version")


@strawberry.input(description="A revision to pin on many pipelines at once.")
class RolloutRevisionInput:
    template_id: strawberry.ID = strawberry.field(description="The template.")
    revision_id: strawberry.ID = strawberry.field(
        description="The revision of that template to pin."
    )
    pipeline_ids: list[strawberry.ID] | None = strawberry.field(
        default=strawberry.UNSET,
        description="Only these pipelines; every pipeline using it when left out.",
    )


@strawberry.type(description="The result of rolloutRevision.")
class RolloutRevisionPayload:
    pipeline_integrations: list[PipelineIntegration] = strawberry.field(
        default_factory=list,
        description="Every attachment the rollout covered; empty on failure.",
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="What to fix in the input."
    )


@strawberry.type
class PipelineIntegrationsMutation:
    @mutation_field(
        description="Attach a template to a pipeline, pinned to a revision "
        "(the latest when none is given)."
    )
    async def attach_integration(
        self,
        info: Info,
        input: Annotated[
            AttachIntegrationInput,
            strawberry.argument(description="The pipeline and the template."),
        ],
    ) -> AttachIntegrationPayload | None:
        try:
            attachment = await pipeline_integrations.attach(
                info.context.request,
                input.pipeline_id,
                given(input, exclude=("pipeline_id",)),
            )
        except DomainError as error:
            return AttachIntegrationPayload(user_errors=attachment_user_errors(error))
        return AttachIntegrationPayload(
            pipeline_integration=PipelineIntegration.from_attachment(attachment)
        )

    @mutation_field(
        description="Pin one revision on every pipeline using the template, or "
        "on those listed, all or nothing."
    )
    async def rollout_revision(
        self,
        info: Info,
        input: Annotated[
            RolloutRevisionInput,
            strawberry.argument(description="The template, revision and pipelines."),
        ],
    ) -> RolloutRevisionPayload | None:
        try:
            moved = await templates.rollout(
                info.context.request,
                input.template_id,
                given(input, exclude=("template_id",)),
            )
        except DomainError as error:
            return RolloutRevisionPayload(user_errors=attachment_user_errors(error))
        return RolloutRevisionPayload(
            pipeline_integrations=[
                PipelineIntegration.from_attachment(attachment) for attachment in moved
            ]
        )

    @mutation_field(
        description="Pin another revision, enable or disable, or change the "
        "consent categories of an attachment."
    )
    async def update_pipeline_integration(
        self,
        info: Info,
        input: Annotated[
            UpdatePipelineIntegrationInput,
            strawberry.argument(description="The change."),
        ],
    ) -> UpdatePipelineIntegrationPayload | None:
        try:
            attachment = await pipeline_integrations.update_attachment(
                info.context.request,
                input.pipeline_id,
                input.id,
                given(input, exclude=_TARGET_FIELDS),
                expected_version=expected_version(input.expected_version),
            )
        except DomainError as error:
            return UpdatePipelineIntegrationPayload(
                user_errors=attachment_user_errors(error)
            )
        return UpdatePipelineIntegrationPayload(
            pipeline_integration=PipelineIntegration.from_attachment(attachment)
        )

    @mutation_field(description="Remove an attachment from its pipeline.")
    async def detach_integration(
        self,
        info: Info,
        input: Annotated[
            DetachIntegrationInput,
            strawberry.argument(description="The attachment."),
        ],
    ) -> DetachIntegrationPayload | None:
        try:
            await pipeline_integrations.detach(
                info.context.request,
                input.pipeline_id,
                input.id,
                expected_version=expected_version(input.expected_version),
            )
        except DomainError as error:
            return DetachIntegrationPayload(user_errors=attachment_user_errors(error))
        return DetachIntegrationPayload(deleted_id=input.id)
