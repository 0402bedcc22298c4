"""The organisation's data layer: one document, applied to every event before
its integrations. Until it is first set it reads as the defaults, at version
0; every write replaces the whole document and is audited with its diff."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from signal_admin.errors import (
    FieldProblem,
    PreconditionFailed,
    TransactionConflict,
    ValidationFailed,
)
from signal_admin.persistence.database import flush_unique, retried_on_conflict
from signal_admin.persistence.models import DataLayer, Organization
from signal_admin.processing import data_layer as rules
from signal_admin.resolvers import audit, dry_runs
from signal_admin.resolvers.context import RequestContext, requires
from signal_admin.resolvers.validation import Problems, check_document_size
from signal_admin.security.permissions import Permission


class DataLayerReplace(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    config: dict[str, Any]

    _size = field_validator("config")(check_document_size)


@dataclass(frozen=True, slots=True)
class DataLayerView:
    org_id: str
    config: dict[str, Any]
    version: int
    updated_at: datetime | None
    updated_by: str | None


@requires(Permission.READ_CONFIGURATION)
async def get_data_layer(ctx: RequestContext) -> DataLayerView:
    principal = ctx.authenticated()
    async with ctx.db.read() as session:
        row = await session.get(DataLayer, principal.org_id)
    return _view(principal.org_id, row)


async def current_config(session: AsyncSession, org_id: str) -> rules.DataLayerConfig:
    """The organisation's data layer as processing takes it."""
    row = await session.get(DataLayer, org_id)
    try:
        return rules.parse_data_layer(row.config if row else None)
    except rules.InvalidDataLayer as error:
        # Saved under older rules that it no longer passes.
        raise ValidationFailed(
            "The saved data layer no longer passes validation; save it again.",
            [
                FieldProblem(f"data_layer.{p.field}", p.code, p.message)
                for p in error.problems
            ],
        ) from None


@requires(Permission.WRITE_DATA_LAYER)
@retried_on_conflict
async def replace_data_layer(
    ctx: RequestContext, data: Any, *, expected_version: int | None = None
) -> DataLayerView:
    """Replace the whole document; sections left out take their defaults."""
    principal = ctx.authenticated()
    problems = Problems()
    fields = problems.parse(DataLayerReplace, data)
    given = fields.config if fields else _given_config(data)
    if isinstance(given, dict):
        await _check_config(ctx, problems, given)
    fields = problems.checked(fields)
    config = rules.parse_data_layer(fields.config).model_dump(mode="json")

    async with ctx.db.transaction() as session:
        # Writers of one organisation's data layer take turns on its row.
        await session.scalar(
            select(Organization.id)
            .where(Organization.id == principal.org_id)
            .with_for_update()
        )
        row = await session.get(DataLayer, principal.org_id, with_for_update=True)
        current = row.version if row else 0
        if expected_version is not None and expected_version != current:
            raise PreconditionFailed(
                f"The data layer is at version {current}, not {expected_version}."
            )
        before = row.config if row else rules.DEFAULT_DATA_LAYER
        first_set = row is None
        if row is None:
            row = DataLayer(
                org_id=principal.org_id, config=config, updated_by=principal.user_id
            )
            session.add(row)
            await flush_unique(session, TransactionConflict())
        elif row.config != config:
            row.config = config
            row.updated_by = principal.user_id
        changes = audit.diff(before, config)
        if changes or first_set:
            audit.record(
                session,
                ctx,
                action="data_layer.updated",
                resource_type="data_layer",
                resource_id=principal.org_id,
                changes=changes,
            )
        await session.flush()
    return _view(principal.org_id, row)


async def _check_config(
    ctx: RequestContext, problems: Problems, config: dict[str, Any]
) -> None:
    found = [
        FieldProblem(f"config.{problem.field}", problem.code, problem.message)
        for problem in rules.data_layer_problems(config)
    ]
    # The code is compiled whatever else is wrong, so that one answer names
    # every problem; unless the code itself is already refused.
    custom_js = config.get("custom_js")
    code = custom_js.get("code") if isinstance(custom_js, dict) else None
    if (
        isinstance(custom_js, dict)
        and custom_js.get("enabled") is True
        and isinstance(code, str)
        and code.strip()
        and not any(p.field.startswith("config.custom_js.code") for p in found)
    ):
        found += await dry_runs.javascript_problems(
            ctx, [("config.custom_js.code", code)]
        )
    problems.extend(found)


def _given_config(data: Any) -> Any:
    return data.get("config") if isinstance(data, dict) else None


def _view(org_id: str, row: DataLayer | None) -> DataLayerView:
    if row is None:
        return DataLayerView(org_id, rules.DEFAULT_DATA_LAYER, 0, None, None)
    return DataLayerView(
        org_id, row.config, row.version, row.updated_at, row.updated_by
    )
