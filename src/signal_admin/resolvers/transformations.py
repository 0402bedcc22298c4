"""Transformations: step documents run on vendor payloads, and their tests.

A transformation applies to the integrations of one template, or to every
integration of the organisation when it names none. Its document is checked
on every save, its JavaScript compiled, and every problem named at once with
the step and field (`config.steps.2.condition`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator
from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from signal_admin.errors import (
    AlreadyExists,
    DomainError,
    FieldProblem,
    InvalidTransformation,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)
from signal_admin.persistence.database import flush_unique, retried_on_conflict
from signal_admin.persistence.ids import check_id, is_id, new_id
from signal_admin.persistence.json_filters import name_contains
from signal_admin.persistence.models import IntegrationTemplate, Transformation
from signal_admin.persistence.pagination import Page, fetch_page
from signal_admin.processing import transformations as steps
from signal_admin.processing.runtime import Deadline
from signal_admin.resolvers import audit, dry_runs
from signal_admin.resolvers.context import RequestContext, requires
from signal_admin.resolvers.validation import Problems, check_document_size
from signal_admin.security.permissions import Permission

Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]
Description = Annotated[str, StringConstraints(max_length=2000)]
Reference = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class TransformationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: Name
    description: Description | None = None
    integration_id: Reference | None = None
    config: dict[str, Any]
    enabled: bool = True

    _size = field_validator("config")(check_document_size)


class TransformationUpdate(BaseModel):
    """Each field named replaces the stored one; `integration_id` and
    `description` may be set to null, the others must hold a value."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: Name | None = None
    description: Description | None = None
    integration_id: Reference | None = None
    config: dict[str, Any] | None = None
    enabled: bool | None = None

    _size = field_validator("config")(check_document_size)

    @field_validator("name", "config", "enabled", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("This field cannot be null; leave it out to keep it.")
        return value


class TransformationFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    integration_id: Reference | None = None
    q: Annotated[str, StringConstraints(max_length=200)] | None = None


class UnsavedTest(dry_runs.EventBatch):
    config: dict[str, Any]

    _size = field_validator("config")(check_document_size)


@requires(Permission.READ_CONFIGURATION)
async def list_transformations(
    ctx: RequestContext,
    filters: TransformationFilter,
    *,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[Transformation]:
    principal = ctx.authenticated()
    async with ctx.db.read() as session:
        statement = _filtered(
            select(Transformation).where(Transformation.org_id == principal.org_id),
            filters,
        )
        return await fetch_page(
            session, statement, Transformation.id, cursor=cursor, limit=limit
        )


@requires(Permission.READ_CONFIGURATION)
async def count_transformations(
    ctx: RequestContext, filters: TransformationFilter
) -> int:
    principal = ctx.authenticated()
    async with ctx.db.read() as session:
        statement = _filtered(
            select(func.count())
            .select_from(Transformation)
            .where(Transformation.org_id == principal.org_id),
            filters,
        )
        return int(await session.scalar(statement) or 0)


@requires(Permission.READ_CONFIGURATION)
async def get_transformation(
    ctx: RequestContext, transformation_id: str
) -> Transformation:
    principal = ctx.authenticated()
    async with ctx.db.read() as session:
        return await _transformation(session, principal.org_id, transformation_id)


@requires(Permission.WRITE_TRANSFORMATIONS)
@retried_on_conflict
async def create_transformation(ctx: RequestContext, data: Any) -> Transformation:
    principal = ctx.authenticated()
    problems = Problems()
    fields = problems.parse(TransformationCreate, data)
    await _check_config(ctx, problems, _given_config(fields, data))
    fields = _checked(problems, fields)

    async with ctx.db.transaction() as session:
        await _check_template(session, principal.org_id, fields.integration_id)
        transformation = Transformation(
            id=new_id("tr"),
            org_id=principal.org_id,
            name=fields.name,
            description=fields.description,
            template_id=fields.integration_id,
            config=fields.config,
            enabled=fields.enabled,
            created_by=principal.user_id,
        )
        session.add(transformation)
        await flush_unique(session, _name_taken(fields.name))
        audit.record(
            session,
            ctx,
            action="transformation.created",
            resource_type="transformation",
            resource_id=transformation.id,
            changes=audit.created(_audited(transformation)),
        )
    return transformation


@requires(Permission.WRITE_TRANSFORMATIONS)
@retried_on_conflict
async def update_transformation(
    ctx: RequestContext,
    transformation_id: str,
    data: Any,
    *,
    expected_version: int | None = None,
) -> Transformation:
    principal = ctx.authenticated()
    problems = Problems()
    change = problems.parse(TransformationUpdate, data)
    if change is None or "config" in change.model_fields_set:
        await _check_config(ctx, problems, _given_config(change, data))
    change = _checked(problems, change)
    named = change.model_dump(include=change.model_fields_set)

    async with ctx.db.transaction() as session:
        transformation = await _transformation(
            session, principal.org_id, transformation_id, lock=True
        )
        _check_version(transformation, expected_version)
        if "integration_id" in named:
            await _check_template(session, principal.org_id, named["integration_id"])
            named["template_id"] = named.pop("integration_id")
        before = _audited(transformation)
        for key, value in named.items():
            setattr(transformation, key, value)
        changes = audit.diff(before, _audited(transformation))
        if changes:
            audit.record(
                session,
                ctx,
                action="transformation.updated",
                resource_type="transformation",
                resource_id=transformation.id,
                changes=changes,
            )
        await flush_unique(session, _name_taken(transformation.name))
    return transformation


@requires(Permission.WRITE_TRANSFORMATIONS)
@retried_on_conflict
async def delete_transformation(
    ctx: RequestContext,
    transformation_id: str,
    *,
    expected_version: int | None = None,
) -> None:
    principal = ctx.authenticated()
    async with ctx.db.transaction() as session:
        transformation = await _transformation(
            session, principal.org_id, transformation_id, lock=True
        )
        _check_version(transformation, expected_version)
        await remove(session, ctx, [transformation])


async def remove(
    session: AsyncSession, ctx: RequestContext, rows: Sequence[Transformation]
) -> None:
    """Delete `rows`, one audit entry each (a template's own go with it)."""
    for transformation in rows:
        audit.record(
            session,
            ctx,
            action="transformation.deleted",
            resource_type="transformation",
            resource_id=transformation.id,
            changes=audit.diff(_audited(transformation), {}),
        )
        await session.delete(transformation)
    await session.flush()


async def of_template(session: AsyncSession, template_id: str) -> list[Transformation]:
    """The template's own transformations, locked, for deleting with it."""
    rows = await session.scalars(
        select(Transformation)
        .where(Transformation.template_id == template_id)
        .order_by(Transformation.id)
        .with_for_update()
    )
    return list(rows)


@requires(Permission.WRITE_TRANSFORMATIONS)
async def test_unsaved(ctx: RequestContext, data: Any) -> list[dict[str, Any]]:
    """Run an unsaved document on the given objects; nothing is written."""
    principal = ctx.authenticated()
    deadline = dry_runs.budget(ctx)
    problems = Problems()
    # Up to 100 objects and a document: checked off the event loop.
    fields = await dry_runs.off_loop(ctx, lambda: problems.parse(UnsavedTest, data))
    await _check_config(ctx, problems, _given_config(fields, data))
    fields = _checked(problems, fields)
    return await _run(ctx, principal.org_id, None, fields.config, fields, deadline)


@requires(Permission.WRITE_TRANSFORMATIONS)
async def test_saved(
    ctx: RequestContext, transformation_id: str, data: Any
) -> list[dict[str, Any]]:
    """Run the saved document (enabled or not) on the given objects."""
    principal = ctx.authenticated()
    deadline = dry_runs.budget(ctx)
    async with ctx.db.read() as session:
        transformation = await _transformation(
            session, principal.org_id, transformation_id
        )
    problems = Problems()
    batch = _checked(
        problems,
        await dry_runs.off_loop(ctx, lambda: problems.parse(dry_runs.EventBatch, data)),
    )
    return await _run(
        ctx,
        principal.org_id,
        transformation,
        transformation.config,
        batch,
        deadline,
    )


async def _run(
    ctx: RequestContext,
    org_id: str,
    transformation: Transformation | None,
    config: dict[str, Any],
    batch: dry_runs.EventBatch,
    deadline: Deadline,
) -> list[dict[str, Any]]:
    try:
        compiled = steps.compiled(config)
    except steps.InvalidTransformationConfig as error:
        # Saved under older rules that it no longer passes.
        raise InvalidTransformation(
            "The saved steps no longer pass validation; save them again.",
            [
                FieldProblem(f"config.{p.field}", p.code, p.message)
                for p in error.problems
            ],
        ) from None
    javascript = dry_runs.javascript(ctx, org_id, deadline)
    context = {
        "org_id": org_id,
        "transformation_id": transformation.id if transformation else None,
        "integration_id": transformation.template_id if transformation else None,
        "test": True,
    }

    def run_all() -> list[dict[str, Any]]:
        return [
            steps.run_transformation(
                compiled,
                target,
                javascript=javascript,
                context=context,
                deadline=deadline,
            ).as_dict()
            for target in batch.all()
        ]

    return await dry_runs.off_loop(ctx, run_all)


async def _check_config(ctx: RequestContext, problems: Problems, config: Any) -> None:
    """Note every problem of a step document: its steps and fields, then the
    JavaScript of its `code` steps once the rest holds."""
    if not isinstance(config, dict):
        return  # not even an object: the body's model says so
    found = [
        FieldProblem(f"config.{problem.field}", problem.code, problem.message)
        for problem in steps.transformation_problems(config)
    ]
    # Every code step's source is compiled whatever else is wrong, so that one
    # answer names every problem; unless the source itself is already refused.
    refused = {problem.field for problem in found}
    listed = config.get("steps")
    sources = [
        (field, step["source"])
        for index, step in enumerate(listed if isinstance(listed, list) else [])
        if isinstance(step, dict)
        and step.get("type") == "code"
        and isinstance(step.get("source"), str)
        and step["source"].strip()
        and (field := f"config.steps.{index}.source") not in refused
    ]
    problems.extend(found + await dry_runs.javascript_problems(ctx, sources))


def _checked(problems: Problems, value: Any) -> Any:
    """`problems.checked`, answering INVALID_TRANSFORMATION when every problem
    is inside the step document."""
    try:
        return problems.checked(value)
    except DomainError as error:
        if error.details and all(
            problem.field == "config" or problem.field.startswith("config.")
            for problem in error.details
        ):
            raise InvalidTransformation(
                f"The transformation's steps are not valid: {_first(error.details)}",
                error.details,
            ) from None
        raise


def _first(details: Sequence[FieldProblem]) -> str:
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    return f"{details[0].field}: {details[0].message}{more}"


def _given_config(fields: BaseModel | None, data: Any) -> Any:
    if fields is not None:
        return getattr(fields, "config", None)
    return data.get("config") if isinstance(data, dict) else None


async def _check_template(
    session: AsyncSession, org_id: str, template_id: str | None
) -> None:
    if template_id is None:
        return
    found = is_id(template_id, "tmpl") and await session.scalar(
        select(IntegrationTemplate.id).where(
            IntegrationTemplate.id == template_id,
            IntegrationTemplate.org_id == org_id,
        )
    )
    if not found:
        raise ValidationFailed(
            f"Integration template {template_id} was not found.",
            [
                FieldProblem(
                    "integration_id",
                    "NOT_FOUND",
                    "No integration template of this organisation has this id.",
                )
            ],
        )


def _filtered(statement: Select[Any], filters: TransformationFilter) -> Select[Any]:
    if filters.integration_id:
        statement = statement.where(
            Transformation.template_id == filters.integration_id
        )
    if filters.q:
        statement = statement.where(name_contains(Transformation.name, filters.q))
    return statement


async def _transformation(
    session: AsyncSession, org_id: str, transformation_id: str, *, lock: bool = False
) -> Transformation:
    check_id(transformation_id, "tr", "Transformation")
    statement = select(Transformation).where(
        Transformation.id == transformation_id, Transformation.org_id == org_id
    )
    transformation = await session.scalar(
        statement.with_for_update() if lock else statement
    )
    if transformation is None:
        raise NotFound.of("Transformation", transformation_id)
    return transformation


def _check_version(transformation: Transformation, expected: int | None) -> None:
    if expected is not None and expected != transformation.version:
        raise PreconditionFailed(
            f"Transformation {transformation.id} is at version "
            f"{transformation.version}, not {expected}."
        )


def _name_taken(name: str) -> AlreadyExists:
    return AlreadyExists(f"A transformation named {name!r} already exists.")


def _audited(transformation: Transformation) -> dict[str, Any]:
    return {
        "name": transformation.name,
        "description": transformation.description,
        "integration_id": transformation.template_id,
        "config": transformation.config,
        "enabled": transformation.enabled,
    }


@requires(Permission.READ_CONFIGURATION)
async def transformations_of_templates(
    ctx: RequestContext, template_ids: Sequence[str]
) -> list[Transformation]:
    """The organisation's enabled transformations that apply to any of
    `template_ids`: their own and the organisation-wide ones, in no set
    order."""
    principal = ctx.authenticated()
    async with ctx.db.read() as session:
        rows = await session.scalars(
            select(Transformation).where(
                Transformation.org_id == principal.org_id,
                Transformation.enabled.is_(True),
                or_(
                    Transformation.template_id.in_(template_ids),
                    Transformation.template_id.is_(None),
                ),
            )
        )
        return list(rows)
