"""Secret values at rest: pipeline key secrets and the secret fields of
revision configs, one encrypted row of `secrets` each.

A stored config never holds a secret in clear: each secret field holds
`{"$secret": "<secret id>"}`, a row of `secrets` owned by that revision and
encrypted with its own id as associated data. Answers show `"***"` instead,
and a new revision that sends `"***"` keeps the previous revision's value
(copied into a row of its own, so revisions never share a secret row).

Only the service writes such references: a config from a client that holds a
`"$secret"` key anywhere is refused. Every row of `secrets` names its owner (a
revision or a pipeline) and organisation, and secrets are read and deleted
only through both, so an id that found its way into a document can never
reach a secret of another row or organisation.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from signal_admin.errors import FieldProblem, SecretUnreadable, ValidationFailed
from signal_admin.persistence.ids import new_id
from signal_admin.persistence.models import IntegrationRevision, Secret
from signal_admin.resolvers.context import RequestContext
from signal_admin.security.crypto import DecryptionError

log = structlog.get_logger(__name__)

MASK = "***"
REFERENCE = "$secret"


@dataclass(frozen=True, slots=True)
class Owner:
    """The row a secret belongs to, a revision or a pipeline, and its
    organisation."""

    org_id: str
    row_id: str


def reference_problems(value: Any, path: str) -> list[FieldProblem]:
    """A problem for every object under `value` (a client's document found
    at `path`) that holds a `"$secret"` key: only the service writes those."""
    return [
        FieldProblem(
            where,
            "RESERVED_KEY",
            f'"{REFERENCE}" is reserved for secrets the service stores; send '
            "a secret field's value as text.",
        )
        for where in _references(value, path)
    ]


async def seal(
    ctx: RequestContext,
    session: AsyncSession,
    owner: Owner,
    config: Mapping[str, Any],
    secret_fields: Iterable[str],
    previous: IntegrationRevision | None = None,
) -> dict[str, Any]:
    """`config` as stored by the revision `owner`: secret values encrypted
    into new rows it owns, `"***"` resolved to a copy of the `previous`
    revision's value."""
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
        stored[field] = {REFERENCE: await store(ctx, session, owner, value)}
    return stored


def masked(config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` as answered: every stored secret shown as `"***"`."""
    return {key: MASK if _secret_id(value) else value for key, value in config.items()}


def secret_ids_by_field(config: Mapping[str, Any]) -> dict[str, str]:
    return {key: sid for key, value in config.items() if (sid := _secret_id(value))}


async def drop(
    session: AsyncSession,
    org_id: str,
    owner_ids: Iterable[str],
    secret_ids: Iterable[str | None] | None = None,
) -> None:
    """Delete the secrets that rows `owner_ids` of organisation `org_id` own:
    all of them, or only those among `secret_ids` (None stands for no
    secret). Secrets of any other row or organisation stay, whatever ids are
    given."""
    statement = delete(Secret).where(
        Secret.org_id == org_id, Secret.owner_id.in_(list(owner_ids))
    )
    if secret_ids is not None:
        present = [secret_id for secret_id in secret_ids if secret_id]
        if not present:
            return
        statement = statement.where(Secret.id.in_(present))
    await session.execute(statement, execution_options={"synchronize_session": False})


async def _previous_value(
    ctx: RequestContext,
    session: AsyncSession,
    previous: IntegrationRevision | None,
    field: str,
) -> str:
    secret_id = _secret_id(previous.config.get(field)) if previous else None
    secret = None
    if previous is not None and secret_id is not None:
        secret = await session.scalar(
            select(Secret).where(
                Secret.id == secret_id,
                Secret.org_id == previous.org_id,
                Secret.owner_id == previous.id,
            )
        )
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
    return opened(ctx, secret.ciphertext, secret.id)


def opened(ctx: RequestContext, ciphertext: str, row_id: str) -> str:
    """The plaintext `ciphertext` of row `row_id` seals; 503 when none of the
    configured keys opens it."""
    try:
        return ctx.services.cipher.decrypt(ciphertext, row_id)
    except DecryptionError:
        log.error("crypto.secret_unreadable", row_id=row_id)
        raise SecretUnreadable() from None


async def store(
    ctx: RequestContext, session: AsyncSession, owner: Owner, plaintext: str
) -> str:
    """Encrypt and insert one secret of `owner`, flushed so rows may reference
    it at once; answers its id."""
    secret_id = new_id("sec")
    sealed = ctx.services.cipher.encrypt(plaintext, secret_id)
    session.add(
        Secret(
            id=secret_id,
            org_id=owner.org_id,
            owner_id=owner.row_id,
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


def _references(value: Any, path: str) -> Iterator[str]:
    if isinstance(value, dict):
        if REFERENCE in value:
            yield path
        for key, item in value.items():
            yield from _references(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _references(item, f"{path}.{index}")
