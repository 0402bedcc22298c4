"""Re-encryption routes: start and watch the rewriting of the organisation's
stored secrets under the current key; and the body of `/health/crypto`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from signal_admin.persistence.types import format_timestamp
from signal_admin.resolvers import crypto
from signal_admin.resolvers.crypto import CryptoHealth, ReEncryption
from signal_admin.rest_compat import API_PREFIX
from signal_admin.rest_compat.dependencies import Context, permitted
from signal_admin.rest_compat.idempotency import IdempotencyKey, idempotent

router = APIRouter(prefix=f"{API_PREFIX}/crypto", tags=["Encryption"])


class ReEncryptionOut(BaseModel):
    id: str | None
    status: str
    total: int
    done: int
    unreadable: int
    remaining: int
    started_by: str | None
    started_at: str | None
    heartbeat_at: str | None
    finished_at: str | None
    failure_reason: str | None


class CryptoChecksOut(BaseModel):
    key_valid: bool
    round_trip: bool
    previous_key_valid: bool | None


class CryptoHealthOut(BaseModel):
    status: str
    dual_key_mode: bool
    checks: CryptoChecksOut


def re_encryption_body(re_encryption: ReEncryption) -> dict[str, Any]:
    run = re_encryption.run
    return {
        "id": run.id if run else None,
        "status": re_encryption.status,
        "total": re_encryption.total,
        "done": re_encryption.done,
        "unreadable": re_encryption.unreadable,
        "remaining": re_encryption.remaining,
        "started_by": run.started_by if run else None,
        "started_at": format_timestamp(run.started_at) if run else None,
        "heartbeat_at": format_timestamp(run.heartbeat_at) if run else None,
        "finished_at": format_timestamp(run.finished_at) if run else None,
        "failure_reason": run.error if run else None,
    }


def crypto_health_body(health: CryptoHealth) -> dict[str, Any]:
    return {
        "status": "healthy" if health.healthy else "unhealthy",
        "dual_key_mode": health.dual_key_mode,
        "checks": {
            "key_valid": health.key_valid,
            "round_trip": health.round_trip,
            "previous_key_valid": health.previous_key_valid,
        },
    }


@router.post(
    "/re-encrypt",
    status_code=202,
    response_model=ReEncryptionOut,
    dependencies=[permitted(crypto.start_re_encryption)],
)
async def start_re_encryption(
    ctx: Context, request: Request, key: IdempotencyKey = None
) -> Response:
    """Start re-encrypting the organisation's secrets under the current key, or
    resume a run that stopped (owner only); 409 while one is running."""

    async def start() -> Response:
        started = await crypto.start_re_encryption(ctx)
        return JSONResponse(re_encryption_body(started), status_code=202)

    return await idempotent(ctx, request, key, start)


@router.get(
    "/re-encrypt",
    response_model=ReEncryptionOut,
    dependencies=[permitted(crypto.get_re_encryption)],
)
async def get_re_encryption(ctx: Context) -> JSONResponse:
    """Progress of the organisation's latest re-encryption run (owner only)."""
    return JSONResponse(re_encryption_body(await crypto.get_re_encryption(ctx)))
