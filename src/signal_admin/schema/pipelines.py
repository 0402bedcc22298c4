"""Pipelines: one collection endpoint each (a website, an app or a server)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from signal_admin.errors import DomainError, NotFound
from signal_admin.persistence.models import Pipeline as PipelineRow
from signal_admin.persistence.pagination import check_page_size
from signal_admin.resolvers import pipelines
from signal_admin.schema.context import GraphQLContext, Info
from signal_admin.schema.errors import UserError, user_errors_or_raise
from signal_admin.schema.execution import batched, one
from signal_admin.schema.fields import mutation_field, query_field
from signal_admin.schema.inputs import expected_version, filters_of, given
from signal_admin.schema.loaders import PipelineKey
from signal_admin.schema.pagination import (
    After,
    Connection,
    First,
    edges_of,
    page_info_of,
    page_size,
)
from signal_admin.schema.scalars import JSON

if TYPE_CHECKING:
    from signal_admin.schema.collector import CollectorBuild
    from signal_admin.schema.pipeline_integrations import PipelineIntegration

# How many builds `collectorBuilds` lists when `first` is left out.
DEFAULT_BUILDS = 10


@strawberry.enum(description="What a pipeline collects events from.")
class PipelineType(Enum):
    WEB = strawberry.enum_value("web", description="A website.")
    APP = strawberry.enum_value("app", description="A mobile or desktop app.")
    SERVER = strawberry.enum_value("server", description="A backend service.")


@strawberry.enum(description="Where sites load the collector script from.")
class ScriptDeliveryMethod(Enum):
    CDN = strawberry.enum_value("cdn", description="From the CDN.")
    SELF_HOSTED = strawberry.enum_value(
        "self_hosted", description="From the site's own server."
    )


@strawberry.type(description="How the JavaScript collector of a pipeline is built.")
class JsBuilderConfig:
    script_filename: str = strawberry.field(
        description="The script's file name, e.g. d.js."
    )
    global_variable: str = strawberry.field(
        description="The global the script exposes, e.g. _df."
    )
    delivery_method: ScriptDeliveryMethod = strawberry.field(
        description="Where sites load the script from."
    )
    endpoint: str | None = strawberry.field(
        description="The first-party collection URL the script sends events to."
    )
    batch_size: int = strawberry.field(description="Events sent together, 1 to 100.")
    flush_interval_ms: int = strawberry.field(
        description="The longest an event waits before it is sent, in ms."
    )


@strawberry.type(description="How visitors are recognised across domains.")
class IdentityConfig:
    cross_domain_enabled: bool = strawberry.field(
        description="Whether the identity follows visitors across domains."
    )
    cross_domain_domains: list[str] = strawberry.field(
        description="The domains that share the identity."
    )


async def js_builder_configs_of(
    context: GraphQLContext, nodes: Sequence[Pipeline]
) -> list[JsBuilderConfig]:
    """Each pipeline's collector settings, read only when selected."""
    configs = []
    for pipeline in nodes:
        stored = pipelines.JsBuilderConfig.model_construct(
            **pipeline.stored_js_builder_config
        )
        configs.append(
            JsBuilderConfig(
                script_filename=stored.script_filename,
                global_variable=stored.global_variable,
                delivery_method=ScriptDeliveryMethod(stored.delivery_method),
                endpoint=stored.endpoint,
                batch_size=stored.batch_size,
                flush_interval_ms=stored.flush_interval_ms,
            )
        )
    return configs


async def identity_configs_of(
    context: GraphQLContext, nodes: Sequence[Pipeline]
) -> list[IdentityConfig]:
    """Each pipeline's identity settings, read only when selected."""
    configs = []
    for pipeline in nodes:
        stored = pipelines.IdentityConfig.model_construct(
            **pipeline.stored_identity_config
        )
        configs.append(
            IdentityConfig(
                cross_domain_enabled=stored.cross_domain_enabled,
                cross_domain_domains=stored.cross_domain_domains,
            )
        )
    return configs


async def integrations_of(
    context: GraphQLContext, pipelines: Sequence[Pipeline]
) -> list[list[PipelineIntegration]]:
    # Imported here: that module builds on this one.
    from signal_admin.schema.pipeline_integrations import attachments_of_pipelines

    keys = [PipelineKey(pipeline.org_id, pipeline.id) for pipeline in pipelines]
    return await attachments_of_pipelines(context, keys)


@strawberry.type(description="One collection endpoint: a website, an app or a server.")
class Pipeline:
    id: strawberry.ID = strawberry.field(description="The pipeline's id (pip_…).")
    name: str = strawberry.field(description="Unique in the organisation.")
    slug: str = strawberry.field(description="Unique in the organisation.")
    type: PipelineType = strawberry.field(
        description="What the pipeline collects from."
    )
    pipeline_key: str = strawberry.field(
        description="The public key collectors send with events (dk_…)."
    )
    pipeline_key_secret_prefix: str = strawberry.field(
        description="The first characters of the key secret (sk_ and four more)."
    )
    domain_allowlist: list[str] = strawberry.field(
        description="The domains allowed to send events; empty allows any."
    )
    labels: list[str] = strawberry.field(
        description="Free labels; prefix:value makes groups."
    )
    rate_limit_rps: int = strawberry.field(description="Events accepted per second.")
    parameters: JSON = strawberry.field(
        description="Named string values integrations refer to."
    )
    config: JSON = strawberry.field(description="Free-form settings.")
    challenge_token_required: bool = strawberry.field(
        description="Whether collectors must present a challenge token."
    )
    previous_key_expires_at: datetime | None = strawberry.field(
        description="When a rotated-out key stops being accepted; null if none."
    )
    enabled: bool = strawberry.field(description="Whether events are accepted.")
    version: int = strawberry.field(
        description="1, then one more on every change; pass it as expectedVersion."
    )
    created_at: datetime = strawberry.field(description="When it was created.")
    updated_at: datetime = strawberry.field(description="The last change.")
    org_id: strawberry.Private[str]

    stored_js_builder_config: strawberry.Private[dict[str, Any]]
    stored_identity_config: strawberry.Private[dict[str, Any]]

    @classmethod
    def from_row(cls, pipeline: PipelineRow) -> Pipeline:
        return cls(
            id=strawberry.ID(pipeline.id),
            name=pipeline.name,
            slug=pipeline.slug,
            type=PipelineType(pipeline.type),
            pipeline_key=pipeline.pipeline_key,
            pipeline_key_secret_prefix=pipeline.pipeline_key_secret_prefix,
            domain_allowlist=pipeline.domain_allowlist,
            labels=pipeline.labels,
            rate_limit_rps=pipeline.rate_limit_rps,
            parameters=JSON(pipeline.parameters),
            config=JSON(pipeline.config),
            challenge_token_required=pipeline.challenge_token_required,
            previous_key_expires_at=pipeline.previous_key_expires_at,
            enabled=pipeline.enabled,
            version=pipeline.version,
            created_at=pipeline.created_at,
            updated_at=pipeline.updated_at,
            org_id=pipeline.org_id,
            stored_js_builder_config=pipeline.js_builder_config,
            stored_identity_config=pipeline.identity_config,
        )

    @query_field(description="How the JavaScript collector is built.")
    @batched(js_builder_configs_of)
    async def js_builder_config(self, info: Info) -> JsBuilderConfig:
        return await one(js_builder_configs_of, info.context, self)

    @query_field(description="How visitors are recognised across domains.")
    @batched(identity_configs_of)
    async def identity_config(self, info: Info) -> IdentityConfig:
        return await one(identity_configs_of, info.context, self)

    @query_field(description="The templates attached to it, oldest first.")
    @batched(integrations_of)
    async def integrations(
        self, info: Info
    ) -> list[
        Annotated[
            PipelineIntegration,
            strawberry.lazy("signal_admin.schema.pipeline_integrations"),
        ]
    ]:
        return await one(integrations_of, info.context, self)

    @query_field(description="Its newest collector builds, newest first.")
    async def collector_builds(
        self,
        info: Info,
        first: Annotated[
            int | None, strawberry.argument(description="How many, 1 to 100.")
        ] = DEFAULT_BUILDS,
    ) -> list[
        Annotated[CollectorBuild, strawberry.lazy("signal_admin.schema.collector")]
    ]:
        # Imported here: that module builds on this one.
        from signal_admin.schema.collector import builds_of_pipeline

        size = check_page_size(DEFAULT_BUILDS if first is None else first, "first")
        return await builds_of_pipeline(info.context, self.org_id, self.id, size)


@strawberry.type(description="A page of pipelines, oldest first.")
class PipelineConnection(Connection[Pipeline]):
    pass


@strawberry.input(description="Which pipelines to list; every condition must hold.")
class PipelineFilter:
    labels: list[str] | None = strawberry.field(
        default=strawberry.UNSET, description="Labels the pipeline must all carry."
    )
    type: PipelineType | None = strawberry.field(
        default=strawberry.UNSET, description="Only pipelines of this type."
    )
    enabled: bool | None = strawberry.field(
        default=strawberry.UNSET, description="Only enabled, or only disabled, ones."
    )
    q: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="Text the name contains, ignoring case.",
    )


@strawberry.input(
    description="How to build the JavaScript collector; fields left out take "
    "their defaults."
)
class JsBuilderConfigInput:
    script_filename: str | None = strawberry.field(
        default=strawberry.UNSET, description="The script's file name; d.js."
    )
    global_variable: str | None = strawberry.field(
        default=strawberry.UNSET, description="The global it exposes; _df."
    )
    delivery_method: ScriptDeliveryMethod | None = strawberry.field(
        default=strawberry.UNSET, description="Where sites load it from; CDN."
    )
    endpoint: str | None = strawberry.field(
        default=strawberry.UNSET, description="The collection URL it sends to."
    )
    batch_size: int | None = strawberry.field(
        default=strawberry.UNSET, description="Events sent together, 1 to 100; 10."
    )
    flush_interval_ms: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="The longest an event waits, 100 to 60000 ms; 1000.",
    )


@strawberry.input(description="How visitors are recognised across domains.")
class IdentityConfigInput:
    cross_domain_enabled: bool | None = strawberry.field(
        default=strawberry.UNSET, description="Follow visitors across domains."
    )
    cross_domain_domains: list[str] | None = strawberry.field(
        default=strawberry.UNSET, description="The domains that share the identity."
    )


@strawberry.input(
    description="The fields a pipeline is created with or changed by. Each is "
    "optional in the schema, so the service can check them all and report every "
    "problem at once in userErrors."
)
class PipelineFieldsInput:
    name: str | None = strawberry.field(
        default=strawberry.UNSET, description="1 to 200 characters; unique."
    )
    type: PipelineType | None = strawberry.field(
        default=strawberry.UNSET, description="What it collects from."
    )
    slug: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="Unique; made from the name when a new pipeline has none.",
    )
    domain_allowlist: list[str] | None = strawberry.field(
        default=strawberry.UNSET, description="Allowed domains; empty allows any."
    )
    labels: list[str] | None = strawberry.field(
        default=strawberry.UNSET, description="Free labels."
    )
    rate_limit_rps: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="Events per second; 1000 for a new pipeline.",
    )
    challenge_token_required: bool | None = strawberry.field(
        default=strawberry.UNSET,
        description="Require a challenge token; false for a new pipeline.",
    )
    parameters: JSON | None = strawberry.field(
        default=strawberry.UNSET, description="An object of string values."
    )
    config: JSON | None = strawberry.field(
        default=strawberry.UNSET, description="An object of free-form settings."
    )
    js_builder_config: JsBuilderConfigInput | None = strawberry.field(
        default=strawberry.UNSET, description="How the collector is built."
    )
    identity_config: IdentityConfigInput | None = strawberry.field(
        default=strawberry.UNSET, description="Cross-domain identity."
    )
    enabled: bool | None = strawberry.field(
        default=strawberry.UNSET, description="Accept events; true for a new pipeline."
    )


@strawberry.input(
    description="A new pipeline. Only name and type are required; the service "
    "checks every field and reports all problems at once in userErrors."
)
class CreatePipelineInput(PipelineFieldsInput):
    pass


@strawberry.input(description="The pipeline an update applies to.")
class PipelineUpdateTarget:
    id: strawberry.ID = strawberry.field(description="The pipeline to change.")
    expected_version: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="Refuse the change unless the pipeline is at this version.",
    )


@strawberry.input(
    description="A change to a pipeline: each field named replaces the stored "
    "one whole; fields left out stay as they are."
)
class UpdatePipelineInput(PipelineUpdateTarget, PipelineFieldsInput):
    """The target is the first base so that the id and version come first in
    the schema, before the fields that change."""


@strawberry.input(description="The pipeline to delete, with its integrations.")
class DeletePipelineInput:
    id: strawberry.ID = strawberry.field(description="The pipeline to delete.")
    expected_version: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="Refuse unless the pipeline is at this version.",
    )


@strawberry.input(description="The pipeline whose key and secret to replace.")
class RotatePipelineKeyInput:
    id: strawberry.ID = strawberry.field(description="The pipeline.")
    expected_version: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="Refuse unless the pipeline is at this version.",
    )
    grace_seconds: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="How long the old key keeps working, 0 to 86400; 0.",
    )


@strawberry.type(description="The result of createPipeline.")
class CreatePipelinePayload:
    pipeline: Pipeline | None = strawberry.field(
        default=None, description="The new pipeline; null on failure."
    )
    pipeline_key_secret: str | None = strawberry.field(
        default=None,
        description="The key secret (sk_…), shown this once and never again.",
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="What to fix in the input."
    )


@strawberry.type(description="The result of updatePipeline.")
class UpdatePipelinePayload:
    pipeline: Pipeline | None = strawberry.field(
        default=None, description="The pipeline as changed; null on failure."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="What to fix in the input."
    )


@strawberry.type(description="The result of deletePipeline.")
class DeletePipelinePayload:
    deleted_pipeline_id: strawberry.ID | None = strawberry.field(
        default=None, description="The id of the deleted pipeline; null on failure."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="Why it could not be deleted."
    )


@strawberry.type(description="The result of rotatePipelineKey.")
class RotatePipelineKeyPayload:
    pipeline: Pipeline | None = strawberry.field(
        default=None, description="The pipeline with its new key; null on failure."
    )
    pipeline_key_secret: str | None = strawberry.field(
        default=None,
        description="The new key secret (sk_…), shown this once and never again.",
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="What to fix in the input."
    )


_ID_FIELDS = ("id", "expected_version")


@strawberry.type
class PipelinesQuery:
    @query_field(description="One pipeline of the organisation; null if none.")
    async def pipeline(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="Its id.")],
    ) -> Pipeline | None:
        try:
            row = await pipelines.get_pipeline(info.context.request, id)
        except NotFound:
            return None
        return Pipeline.from_row(row)

    @query_field(description="The organisation's pipelines, oldest first.")
    async def pipelines(
        self,
        info: Info,
        first: First = 50,
        after: After = strawberry.UNSET,
        filter: Annotated[
            PipelineFilter | None,
            strawberry.argument(description="Which pipelines to list."),
        ] = strawberry.UNSET,
    ) -> PipelineConnection:
        filters = filters_of(pipelines.PipelineFilter, filter)
        ctx = info.context.request
        page = await pipelines.list_pipelines(
            ctx, filters, cursor=after or None, limit=page_size(first)
        )
        return PipelineConnection(
            edges=edges_of(page, Pipeline.from_row),
            page_info=page_info_of(page),
            count=lambda: pipelines.count_pipelines(ctx, filters),
        )


@strawberry.type
class PipelinesMutation:
    @mutation_field(
        description="Create a pipeline; the payload shows its key secret once."
    )
    async def create_pipeline(
        self,
        info: Info,
        input: Annotated[
            CreatePipelineInput, strawberry.argument(description="The pipeline.")
        ],
    ) -> CreatePipelinePayload | None:
        try:
            created = await pipelines.create_pipeline(
                info.context.request, given(input)
            )
        except DomainError as error:
            return CreatePipelinePayload(user_errors=user_errors_or_raise(error))
        return CreatePipelinePayload(
            pipeline=Pipeline.from_row(created.pipeline),
            pipeline_key_secret=created.pipeline_key_secret,
        )

    @mutation_field(description="Replace the fields named in the input.")
    async def update_pipeline(
        self,
        info: Info,
        input: Annotated[
            UpdatePipelineInput, strawberry.argument(description="The change.")
        ],
    ) -> UpdatePipelinePayload | None:
        try:
            row = await pipelines.update_pipeline(
                info.context.request,
                input.id,
                given(input, exclude=_ID_FIELDS),
                expected_version=expected_version(input.expected_version),
            )
        except DomainError as error:
            return UpdatePipelinePayload(user_errors=user_errors_or_raise(error))
        return UpdatePipelinePayload(pipeline=Pipeline.from_row(row))

    @mutation_field(description="Delete a pipeline with its integrations.")
    async def delete_pipeline(
        self,
        info: Info,
        input: Annotated[
            DeletePipelineInput, strawberry.argument(description="The pipeline.")
        ],
    ) -> DeletePipelinePayload | None:
        try:
            await pipelines.delete_pipeline(
                info.context.request,
                input.id,
                expected_version=expected_version(input.expected_version),
            )
        except DomainError as error:
            return DeletePipelinePayload(user_errors=user_errors_or_raise(error))
        return DeletePipelinePayload(deleted_pipeline_id=input.id)

    @mutation_field(
        description=(
            "Issue a new key and secret; the old key stops working at once, or "
            "after graceSeconds."
        )
    )
    async def rotate_pipeline_key(
        self,
        info: Info,
        input: Annotated[
            RotatePipelineKeyInput, strawberry.argument(description="The pipeline.")
        ],
    ) -> RotatePipelineKeyPayload | None:
        try:
            rotated = await pipelines.rotate_pipeline_key(
                info.context.request,
                input.id,
                given(input, exclude=_ID_FIELDS),
                expected_version=expected_version(input.expected_version),
            )
        except DomainError as error:
            return RotatePipelineKeyPayload(user_errors=user_errors_or_raise(error))
        return RotatePipelineKeyPayload(
            pipeline=Pipeline.from_row(rotated.pipeline),
            pipeline_key_secret=rotated.pipeline_key_secret,
        )
