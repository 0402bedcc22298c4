"""Secret values at rest: pipeline key secrets and the secret fields of
revision configs, one encrypted row of `secrets` each.

A stored config never holds a secret in clear: each secret field holds
`{"$secret": "<secret id>"}`, a row of `secrets` owned by that revision and
encrypted with its own id as associated data. Answers show `"***"` instead,
and a new revision that sends `"***"` keeps the previous revision's value
(copied into a row of its own, so revisions never share a secret row).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from signal_admin.errors import FieldProblem, ValidationFailed
from signal_admin.persistence.ids import new_id
from signal_admin.persistence.models import Secret
from signal_admin.resolvers.context import RequestContext

MASK = "***"
REFERENCE = "$secret"


async def seal(
    ctx: RequestContext,
    session: AsyncSession,
    org_id: str,
    config: Mapping[str, Any],
    secret_fields: Iterable[str],
    previous: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`config` as stored: secret values encrypted into new rows, `"***"`
    resolved to a copy of the previous revision's value."""
    stored = dict(config)
    for field in secret_fields:
        if field not in config or config[field] is None:
            continue
        value = config[field]
        if value == MASK:
            value = await _previous_value(ctx, session, previous, field)
        if not isinstance(value, str):
            raise ValidationFailed(
                "Secret fields hold text.",
                [FieldProblem(f"config.{field}", "INVALID", "Secrets are strings.")],
            )
        stored[field] = {REFERENCE: await store(ctx, session, org_id, value)}
    return stored


def masked(config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` as answered: every stored secret shown as `"***"`."""
    return {key: MASK if _secret_id(value) else value for key, value in config.items()}


def secret_ids_by_field(config: Mapping[str, Any]) -> dict[str, str]:
    return {key: sid for key, value in config.items() if (sid := _secret_id(value))}


def secret_ids(config: Mapping[str, Any]) -> list[str]:
    return [sid for sid in map(_secret_id, config.values()) if sid]


async def drop(session: AsyncSession, ids: Iterable[str | None]) -> None:
    """Delete the secrets with these ids; None stands for no secret."""
    present = [secret_id for secret_id in ids if secret_id]
    if present:
        await session.execute(delete(Secret).where(Secret.id.in_(present)))


async def _previous_value(
    ctx: RequestContext,
    session: AsyncSession,
    previous: Mapping[str, Any] | None,
    field: str,
) -> str:
    secret_id = _secret_id((previous or {}).get(field))
    secret = await session.get(Secret, secret_id) if secret_id else None
    if secret is None:
        raise ValidationFailed(
            "There is no earlier value to keep.",
            [
                FieldProblem(
                    f"config.{field}",
                    "NO_PREVIOUS_VALUE",
                    '"***" keeps the previous value, and there is none.',
                )
            ],
        )
    return ctx.services.cipher.decrypt(secret.ciphertext, secret.id)


async def store(
    ctx: RequestContext, session: AsyncSession, org_id: str, plaintext: str
) -> str:
    """Encrypt and insert one secret, flushed so rows may reference it at once;
    answers its id."""
    secret_id = new_id("sec")
    sealed = ctx.services.cipher.encrypt(plaintext, secret_id)
    session.add(
        Secret(
            id=secret_id,
            org_id=org_id,
            ciphertext=sealed.ciphertext,
            key_id=sealed.key_id,
        )
    )
    await session.flush()
    return secret_id


def _secret_id(value: Any) -> str | None:
    if isinstance(value, dict) and set(value) == {REFERENCE}:
        reference = value[REFERENCE]
        return reference if isinstance(reference, str) else None
    return None
