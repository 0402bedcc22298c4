"""The application: both faces mounted on one FastAPI app, and the services
they share, opened at start-up and closed at shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from redis.asyncio import BlockingConnectionPool, Redis

from signal_admin import __version__
from signal_admin.catalog.loader import shipped_catalog
from signal_admin.config import Settings
from signal_admin.live.bus import LiveBus, MemoryBus, RedisBus
from signal_admin.logs import configure_logging
from signal_admin.persistence.audit_retention import scheduled_audit_purges
from signal_admin.persistence.database import Database
from signal_admin.processing.sandbox import Sandbox, SandboxLimits
from signal_admin.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from signal_admin.resolvers.announcements import config_announcer
from signal_admin.resolvers.context import Services
from signal_admin.resolvers.crypto import re_encryption_workers
from signal_admin.resolvers.live import (
    LiveSockets,
    MemorySocketSlots,
    RedisSocketSlots,
    SocketSlots,
    audit_publisher,
    watching_live_sockets,
)
from signal_admin.rest_compat import (
    API_PREFIX,
    audit_logs,
    auth,
    catalog,
    collector,
    crypto,
    data_layer,
    health,
    legacy_integrations,
    live,
    organizations,
    pipeline_integrations,
    pipelines,
    sources,
    templates,
    test_events,
    transformations,
    users,
)
from signal_admin.rest_compat.errors import install_error_handlers
from signal_admin.rest_compat.middleware import (
    AdmissionMiddleware,
    BodyLimitMiddleware,
    RequestContextMiddleware,
)
from signal_admin.rest_compat.schemas import ErrorEnvelope
from signal_admin.schema.endpoint import graphql_router
from signal_admin.security.crypto import Cipher
from signal_admin.security.tokens import TokenService

# REST paths that answer without a token (charged to the client address).
PUBLIC_PATHS = frozenset(
    f"{API_PREFIX}{path}"
    for path in (
        "/auth/login",
        "/auth/refresh",
        "/auth/accept-invite",
        "/openapi.json",
        "/docs",
    )
)
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorEnvelope, "description": "The error envelope."},
    "5XX": {"model": ErrorEnvelope, "description": "The error envelope."},
}


def build_services(settings: Settings) -> Services:
    """The long-lived parts; `settings` must already carry its secrets."""
    assert settings.jwt_secret
    assert settings.encryption_key
    redis = (
        # The client owns the pool, so closing the client closes its
        # connections.
        Redis.from_pool(
            BlockingConnectionPool.from_url(
                settings.redis_url,
                max_connections=settings.redis_max_connections,
                timeout=2,
                socket_timeout=2,
                socket_connect_timeout=2,
            )
        )
        if settings.redis_url
        else None
    )
    limiter: RateLimiter = RedisRateLimiter(redis) if redis else MemoryRateLimiter()
    capacity = settings.live_queue_size
    live: LiveBus = (
        RedisBus.from_url(settings.redis_url, redis, capacity)
        if redis and settings.redis_url
        else MemoryBus(capacity)
    )
    slots: SocketSlots = RedisSocketSlots(redis) if redis else MemorySocketSlots()
    services = Services(
        settings=settings,
        db=Database(settings.database_url),
        tokens=TokenService(
            settings.jwt_secret,
            access_ttl=settings.access_token_ttl,
            refresh_ttl=settings.refresh_token_ttl,
            leeway=settings.jwt_leeway_seconds,
        ),
        cipher=Cipher(settings.encryption_key, settings.encryption_key_previous),
        limiter=limiter,
        catalog=shipped_catalog(),
        redis=redis,
        live=live,
        sandbox=Sandbox(
            SandboxLimits(
                time_limit_ms=settings.js_time_limit_ms,
                heap_limit_bytes=settings.js_heap_limit_bytes,
            )
        ),
    )
    services.live_sockets = LiveSockets(services, slots)
    services.db.after_commit(audit_publisher(live))
    services.db.after_commit(config_announcer(live))
    return services


async def close_services(services: Services) -> None:
    if services.live is not None:
        await services.live.close()
    await services.db.dispose()
    if services.sandbox is not None:
        services.sandbox.close()
    if services.redis is not None:
        await services.redis.aclose()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = (settings or Settings()).with_secrets()
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = build_services(settings)
        try:
            async with (
                scheduled_audit_purges(
                    app.state.services.db,
                    older_than_days=settings.audit_retention_days,
                    interval=settings.audit_purge_interval,
                ),
                re_encryption_workers(app.state.services),
                watching_live_sockets(app.state.services),
            ):
                yield
        finally:
            await close_services(app.state.services)

    app = FastAPI(
        title="signal-admin",
        version=__version__,
        summary="Management API of the Signal event-collection platform.",
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None if settings.is_production else f"{API_PREFIX}/docs",
        redoc_url=None,
        redirect_slashes=False,
    )
    install_error_handlers(app)
    for router in (
        auth.router,
        pipelines.router,
        collector.router,
        test_events.router,
        catalog.router,
        templates.router,
        pipeline_integrations.router,
        transformations.router,
        data_layer.router,
        users.router,
        organizations.router,
        audit_logs.router,
        crypto.router,
        live.router,
        sources.router,
        legacy_integrations.router,
    ):
        app.include_router(router, responses=ERROR_RESPONSES)
    app.include_router(graphql_router(settings))
    app.include_router(health.router)
    app.include_router(collector.public_router, responses=ERROR_RESPONSES)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        json_prefix=API_PREFIX,
        yaml_prefixes=(transformations.PREFIX,),
    )
    app.add_middleware(
        AdmissionMiddleware,
        prefix=API_PREFIX,
        public_paths=PUBLIC_PATHS,
        skip=f"{API_PREFIX}/graphql",
    )
    app.add_middleware(
        RequestContextMiddleware, trusted_proxies=settings.trusted_proxies
    )
    return app
