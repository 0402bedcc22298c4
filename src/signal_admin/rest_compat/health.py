"""Health and metrics, outside `/v1/admin` and without a token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from signal_admin.metrics import REGISTRY
from signal_admin.resolvers.crypto import crypto_health
from signal_admin.rest_compat.crypto import CryptoHealthOut, crypto_health_body
from signal_admin.rest_compat.dependencies import services_of

router = APIRouter(tags=["Health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """200 while the process is up."""
    return {"status": "ok"}


@router.get("/health/ready")
async def ready(request: Request) -> JSONResponse:
    """200 when the database answers, else 503; Redis is reported, not required."""
    services = services_of(request)
    database = await services.db.ping()
    body: dict[str, Any] = {
        "status": "ready" if database else "unavailable",
        "database": "ok" if database else "down",
        "redis": await _redis_state(services.redis),
    }
    return JSONResponse(body, status_code=200 if database else 503)


@router.get(
    "/health/crypto",
    response_model=CryptoHealthOut,
    responses={503: {"model": CryptoHealthOut, "description": "A key is unhealthy."}},
)
async def health_crypto(request: Request) -> JSONResponse:
    """200 when the encryption keys open every stored secret, else 503."""
    health = await crypto_health(services_of(request))
    return JSONResponse(
        crypto_health_body(health), status_code=200 if health.healthy else 503
    )


@router.get("/metrics", response_class=Response)
async def metrics() -> Response:
    """Prometheus text format."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


async def _redis_state(redis: Any) -> str:
    if redis is None:
        return "not_configured"
    try:
        await redis.ping()
    except (RedisError, OSError):
        return "down"
    return "ok"
