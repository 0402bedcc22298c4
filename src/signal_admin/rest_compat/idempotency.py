"""The `Idempotency-Key` header on REST routes that create something."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Header, Request, Response

from signal_admin.resolvers import idempotency
from signal_admin.resolvers.context import RequestContext

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Repeats with the same key and body get the first answer.",
    ),
]


async def idempotent(
    ctx: RequestContext,
    request: Request,
    key: str | None,
    create: Callable[[], Awaitable[Response]],
) -> Response:
    """Run `create` once per key: an identical repeat within the window gets the
    first response's status and body again."""
    if key is None:
        return await create()
    body = await request.body()
    fingerprint = idempotency.fingerprint(request.method, request.url.path, body)
    claimed = await idempotency.claim(ctx, key, fingerprint)
    if isinstance(claimed, idempotency.StoredAnswer):
        return Response(
            claimed.body,
            status_code=claimed.status_code,
            media_type="application/json",
            headers={"Idempotent-Replayed": "true"},
        )
    try:
        response = await create()
    except Exception:
        await idempotency.release(ctx, claimed)
        raise
    answer = idempotency.StoredAnswer(response.status_code, bytes(response.body))
    await idempotency.store(ctx, claimed, answer)
    return response
