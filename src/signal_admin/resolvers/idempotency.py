"""Idempotent creation: the first answer to a request sent with an
`Idempotency-Key` is kept for a day and given again to an identical repeat.

A record is claimed before the operation runs, so a repeat that arrives while
the first is still running is refused (409) rather than run twice. The claim
expires after a short lock, so a crash between the operation and storing its
answer does not block the key for the whole day.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from signal_admin.errors import AlreadyExists, BadRequest, IdempotencyKeyReused
from signal_admin.persistence.ids import new_id
from signal_admin.persistence.models import IdempotencyRecord
from signal_admin.persistence.types import utc_now
from signal_admin.resolvers.context import RequestContext
from signal_admin.resolvers.secrets import opened
from signal_admin.security.tokens import digest

MAX_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    status_code: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Claim:
    """A request's hold on its key, until its answer is stored or dropped."""

    record_id: str
    user_id: str
    key_hash: str


def fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(f"{method} {path}\n".encode() + body).hexdigest()


async def claim(
    ctx: RequestContext, key: str, request_fingerprint: str
) -> Claim | StoredAnswer:
    """Claim `key` for this request, or answer the stored first response."""
    principal = ctx.authenticated()
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise BadRequest("Idempotency-Key must be 1 to 255 printable characters.")
    key_hash = digest(key)
    now = utc_now()
    settings = ctx.settings

    try:
        async with ctx.db.transaction() as session:
            record = await session.scalar(
                select(IdempotencyRecord)
                .where(
                    IdempotencyRecord.user_id == principal.user_id,
                    IdempotencyRecord.key_hash == key_hash,
                )
                .with_for_update()
            )
            if record is not None and record.expires_at <= now:
                await session.delete(record)
                await session.flush()
                record = None
            if record is None:
                record = IdempotencyRecord(
                    id=new_id("idem"),
                    user_id=principal.user_id,
                    org_id=principal.org_id,
                    key_hash=key_hash,
                    request_hash=request_fingerprint,
                    locked_until=now
                    + timedelta(seconds=settings.idempotency_lock_seconds),
                    expires_at=now
                    + timedelta(seconds=settings.idempotency_ttl_seconds),
                )
                session.add(record)
                return Claim(record.id, principal.user_id, key_hash)
            if record.request_hash != request_fingerprint:
                raise IdempotencyKeyReused()
            if record.status_code is not None and record.response_ciphertext:
                body = opened(ctx, record.response_ciphertext, record.id)
                return StoredAnswer(record.status_code, body.encode())
            if record.locked_until > now:
                raise _still_running()
            record.locked_until = now + timedelta(
                seconds=settings.idempotency_lock_seconds
            )
            return Claim(record.id, principal.user_id, key_hash)
    except IntegrityError as error:
        # A concurrent request inserted the same key first.
        raise _still_running() from error


async def store(ctx: RequestContext, claim: Claim, answer: StoredAnswer) -> None:
    sealed = ctx.services.cipher.encrypt(answer.body.decode(), claim.record_id)
    async with ctx.db.transaction() as session:
        record = await session.get(IdempotencyRecord, claim.record_id)
        if record is None:
            return
        record.status_code = answer.status_code
        record.response_ciphertext = sealed.ciphertext
        record.response_key_id = sealed.key_id


async def release(ctx: RequestContext, claim: Claim) -> None:
    """Drop the claim of a request that failed, so the key can be used again."""
    async with ctx.db.transaction() as session:
        await session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.id == claim.record_id)
        )


def _still_running() -> AlreadyExists:
    return AlreadyExists(
        "A request with this Idempotency-Key is still being processed."
    )
