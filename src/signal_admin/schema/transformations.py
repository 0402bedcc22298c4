"""Transformations: step documents run on vendor payloads, and their tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry

from signal_admin.errors import DomainError, NotFound
from signal_admin.persistence.models import Transformation as TransformationRow
from signal_admin.persistence.models import User as UserRow
from signal_admin.resolvers import transformations
from signal_admin.schema.auth import User
from signal_admin.schema.context import GraphQLContext, Info
from signal_admin.schema.errors import UserError
from signal_admin.schema.execution import batched, once_per_row, one
from signal_admin.schema.fields import mutation_field, query_field
from signal_admin.schema.inputs import expected_version, filters_of, given
from signal_admin.schema.loaders import TemplateKey, UserKey
from signal_admin.schema.pagination import (
    After,
    Connection,
    First,
    edges_of,
    page_info_of,
    page_size,
)
from signal_admin.schema.scalars import JSON
from signal_admin.schema.templates import (
    IntegrationTemplate,
    template_user_errors,
    templates_by_key,
)
from signal_admin.schema.users import user_as_seen_by


async def integrations_of(
    context: GraphQLContext, transformations: Sequence[Transformation]
) -> list[IntegrationTemplate | None]:
    """The template each transformation applies to; null for org-wide ones."""
    keys = [
        TemplateKey(t.org_id, t.template_id) for t in transformations if t.template_id
    ]
    loaded = iter(await templates_by_key(context, keys))
    return [next(loaded) if t.template_id else None for t in transformations]


async def creators_of(
    context: GraphQLContext, transformations: Sequence[Transformation]
) -> list[User | None]:
    """Who created each transformation; null when that user is gone."""
    keys = [
        UserKey(t.org_id, t.created_by_id) for t in transformations if t.created_by_id
    ]
    loaded = iter(await context.loaders.user_by_id.load_many(keys))
    rows = [next(loaded) if t.created_by_id else None for t in transformations]

    def creator(row: UserRow | None) -> User | None:
        if row is None or row.deleted_at is not None:
            return None
        return user_as_seen_by(context, row)

    return once_per_row(rows, creator)


@strawberry.type(
    description="A step document run on the vendor payloads of one template's "
    "integrations, or of every integration when it names none."
)
class Transformation:
    id: strawberry.ID = strawberry.field(description="The transformation's id (tr_…).")
    name: str = strawberry.field(
        description="Unique in the organisation; transformations run in name order."
    )
    description: str | None = strawberry.field(description="What it is for.")
    integration_id: strawberry.ID | None = strawberry.field(
        description="The template it applies to; null for every integration."
    )
    config: JSON = strawberry.field(description='The step document: {"steps": […]}.')
    enabled: bool = strawberry.field(description="Whether it runs.")
    version: int = strawberry.field(
        description="1, then one more on every change; pass it as expectedVersion."
    )
    created_at: datetime = strawberry.field(description="When it was created.")
    updated_at: datetime = strawberry.field(description="The last change.")
    org_id: strawberry.Private[str]
    template_id: strawberry.Private[str | None]
    created_by_id: strawberry.Private[str | None]

    @classmethod
    def from_row(cls, row: TransformationRow) -> Transformation:
        return cls(
            id=strawberry.ID(row.id),
            name=row.name,
            description=row.description,
            integration_id=strawberry.ID(row.template_id) if row.template_id else None,
            config=JSON(row.config),
            enabled=row.enabled,
            version=row.version,
            created_at=row.created_at,
            updated_at=row.updated_at,
            org_id=row.org_id,
            template_id=row.template_id,
            created_by_id=row.created_by,
        )

    @query_field(description="The template it applies to; null for every one.")
    @batched(integrations_of)
    async def integration(self, info: Info) -> IntegrationTemplate | None:
        return await one(integrations_of, info.context, self)

    @query_field(description="Who created it; null if that user is gone.")
    @batched(creators_of)
    async def created_by(self, info: Info) -> User | None:
        return await one(creators_of, info.context, self)


async def transformations_of_templates(
    context: GraphQLContext, keys: Sequence[TemplateKey]
) -> list[list[Transformation]]:
    """The transformations that apply to each template, in name order."""
    groups = await context.loaders.transformations_by_template.load_many(keys)
    return [once_per_row(rows, Transformation.from_row) for rows in groups]


@strawberry.type(description="A page of transformations, oldest first.")
class TransformationConnection(Connection[Transformation]):
    pass


@strawberry.input(description="Which transformations to list.")
class TransformationFilter:
    integration_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="Only those of this template."
    )
    q: str | None = strawberry.field(
        default=strawberry.UNSET, description="Text the name contains, ignoring case."
    )


@strawberry.input(
    description="A new transformation. Only name and config are required; "
    "every problem is reported at once in userErrors."
)
class CreateTransformationInput:
    name: str | None = strawberry.field(
        default=strawberry.UNSET, description="1 to 200 characters; unique."
    )
    description: str | None = strawberry.field(
        default=strawberry.UNSET, description="What it is for."
    )
    integration_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET,
        description="The template it applies to; every integration when left out.",
    )
    config: JSON | None = strawberry.field(
        default=strawberry.UNSET, description='The step document: {"steps": […]}.'
    )
    enabled: bool | None = strawberry.field(
        default=strawberry.UNSET, description="Whether it runs; true."
    )


@strawberry.input(
    description="A change to a transformation: each field named replaces its value."
)
class UpdateTransformationInput:
    id: strawberry.ID = strawberry.field(description="The transformation to change.")
    expected_version: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="Refuse the change unless it is at this version.",
    )
    name: str | None = strawberry.field(
        default=strawberry.UNSET, description="1 to 200 characters; unique."
    )
    description: str | None = strawberry.field(
        default=strawberry.UNSET, description="What it is for; null clears it."
    )
    integration_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET,
        description="The template it applies to; null for every integration.",
    )
    config: JSON | None = strawberry.field(
        default=strawberry.UNSET, description="The whole new step document."
    )
    enabled: bool | None = strawberry.field(
        default=strawberry.UNSET, description="Whether it runs."
    )


@strawberry.input(description="The transformation to delete.")
class DeleteTransformationInput:
    id: strawberry.ID = strawberry.field(description="The transformation.")
    expected_version: int | None = strawberry.field(
        default=strawberry.UNSET, description="Refuse unless it is at this version."
    )


@strawberry.input(
    description="A dry run of a transformation on one to 100 objects: the "
    "saved one named by id, or an unsaved config. Give event or events."
)
class TestTransformationInput:
    id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="A saved transformation to run."
    )
    config: JSON | None = strawberry.field(
        default=strawberry.UNSET, description="An unsaved step document to run."
    )
    event: JSON | None = strawberry.field(
        default=strawberry.UNSET, description="One object to run it on."
    )
    events: list[JSON] | None = strawberry.field(
        default=strawberry.UNSET, description="1 to 100 objects to run it on."
    )


@strawberry.enum(description="How one step of a test run ended.")
class StepStatus(Enum):
    OK = strawberry.enum_value("ok", description="It ran.")
    DROPPED = strawberry.enum_value(
        "dropped", description="A filter, or on_error: drop, dropped the object."
    )
    ERROR = strawberry.enum_value("error", description="It failed.")


@strawberry.type(description="A failure: a code users can act on and a message.")
class ProcessingError:
    code: str = strawberry.field(description="E.g. JS_TIMEOUT, TIMEOUT.")
    message: str = strawberry.field(description="What went wrong.")

    @classmethod
    def from_dict(cls, error: dict[str, Any] | None) -> ProcessingError | None:
        if error is None:
            return None
        return cls(code=str(error["code"]), message=str(error["message"]))


@strawberry.type(description="One step of a transformation test run.")
class TransformationStepResult:
    index: int = strawberry.field(description="The step's place, from 0.")
    type: str = strawberry.field(description="filter, map, transform, enrich, ….")
    status: StepStatus = strawberry.field(description="How it ended.")
    duration_ms: float = strawberry.field(description="How long it took.")
    error: ProcessingError | None = strawberry.field(description="Why it failed.")


@strawberry.type(description="A transformation's run on one object.")
class TransformationTestResult:
    output: JSON | None = strawberry.field(
        description="The object after the last step; null when dropped or stopped."
    )
    dropped: bool = strawberry.field(description="Whether a step dropped it.")
    steps: list[TransformationStepResult] = strawberry.field(
        description="Each step that ran, in order."
    )
    error: ProcessingError | None = strawberry.field(
        description="Why the whole run stopped (on_error: fail, or the time "
        "budget); null otherwise."
    )

    @classmethod
    def from_dict(cls, result: dict[str, Any]) -> TransformationTestResult:
        return cls(
            output=JSON(result["output"]) if result["output"] is not None else None,
            dropped=result["dropped"],
            steps=[
                TransformationStepResult(
                    index=step["index"],
                    type=step["type"],
                    status=StepStatus(step["status"]),
                    duration_ms=step["duration_ms"],
                    error=ProcessingError.from_dict(step["error"]),
                )
                for step in result["steps"]
            ],
            error=ProcessingError.from_dict(result["error"]),
        )


@strawberry.type(description="The result of createTransformation.")
class CreateTransformationPayload:
    transformation: Transformation | None = strawberry.field(
        default=None, description="The new transformation; null on failure."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="What to fix in the input."
    )


@strawberry.type(description="The result of updateTransformation.")
class UpdateTransformationPayload:
    transformation: Transformation | None = strawberry.field(
        default=None, description="The transformation as changed; null on failure."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="What to fix in the input."
    )


@strawberry.type(description="The result of deleteTransformation.")
class DeleteTransformationPayload:
    deleted_id: strawberry.ID | None = strawberry.field(
        default=None, description="The id of the deleted one; null on failure."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="Why it could not be deleted."
    )


@strawberry.type(description="The result of testTransformation.")
class TestTransformationPayload:
    results: list[TransformationTestResult] | None = strawberry.field(
        default=None, description="One result per object, in order; null on failure."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="What to fix in the input."
    )


@strawberry.type
class TransformationsQuery:
    @query_field(description="One transformation; null if none.")
    async def transformation(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="Its id.")],
    ) -> Transformation | None:
        try:
            row = await transformations.get_transformation(info.context.request, id)
        except NotFound:
            return None
        return Transformation.from_row(row)

    @query_field(description="The organisation's transformations, oldest first.")
    async def transformations(
        self,
        info: Info,
        first: First = 50,
        after: After = strawberry.UNSET,
        filter: Annotated[
            TransformationFilter | None,
            strawberry.argument(description="Which transformations to list."),
        ] = strawberry.UNSET,
    ) -> TransformationConnection:
        filters = filters_of(transformations.TransformationFilter, filter)
        ctx = info.context.request
        page = await transformations.list_transformations(
            ctx, filters, cursor=after or None, limit=page_size(first)
        )
        return TransformationConnection(
            edges=edges_of(page, Transformation.from_row),
            page_info=page_info_of(page),
            count=lambda: transformations.count_transformations(ctx, filters),
        )


@strawberry.type
class TransformationsMutation:
    @mutation_field(description="Create a transformation; its steps are checked first.")
    async def create_transformation(
        self,
        info: Info,
        input: Annotated[
            CreateTransformationInput, strawberry.argument(description="It.")
        ],
    ) -> CreateTransformationPayload | None:
        try:
            row = await transformations.create_transformation(
                info.context.request, given(input)
            )
        except DomainError as error:
            return CreateTransformationPayload(user_errors=template_user_errors(error))
        return CreateTransformationPayload(transformation=Transformation.from_row(row))

    @mutation_field(
        description="Change a transformation; a new config is checked first."
    )
    async def update_transformation(
        self,
        info: Info,
        input: Annotated[
            UpdateTransformationInput, strawberry.argument(description="The change.")
        ],
    ) -> UpdateTransformationPayload | None:
        try:
            row = await transformations.update_transformation(
                info.context.request,
                input.id,
                given(input, exclude=("id", "expected_version")),
                expected_version=expected_version(input.expected_version),
            )
        except DomainError as error:
            return UpdateTransformationPayload(user_errors=template_user_errors(error))
        return UpdateTransformationPayload(transformation=Transformation.from_row(row))

    @mutation_field(description="Delete a transformation.")
    async def delete_transformation(
        self,
        info: Info,
        input: Annotated[
            DeleteTransformationInput, strawberry.argument(description="It.")
        ],
    ) -> DeleteTransformationPayload | None:
        try:
            await transformations.delete_transformation(
                info.context.request,
                input.id,
                expected_version=expected_version(input.expected_version),
            )
        except DomainError as error:
            return DeleteTransformationPayload(user_errors=template_user_errors(error))
        return DeleteTransformationPayload(deleted_id=input.id)

    @mutation_field(
        description="Run a saved or an unsaved transformation on one to 100 "
        "objects; nothing is saved."
    )
    async def test_transformation(
        self,
        info: Info,
        input: Annotated[
            TestTransformationInput, strawberry.argument(description="The run.")
        ],
    ) -> TestTransformationPayload | None:
        ctx = info.context.request
        try:
            if input.id:
                results = await transformations.test_saved(
                    ctx, input.id, given(input, exclude=("id",))
                )
            else:
                results = await transformations.test_unsaved(
                    ctx, given(input, exclude=("id",))
                )
        except DomainError as error:
            return TestTransformationPayload(user_errors=template_user_errors(error))
        return TestTransformationPayload(
            results=[TransformationTestResult.from_dict(r) for r in results]
        )
