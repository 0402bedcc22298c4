"""Who is calling, and what the call costs them against the rate limit.

Both faces use these two steps before anything else: resolve the bearer token
to a principal, then charge the principal (or, for anonymous calls, the client
IP) against the shared sliding window.
"""

from __future__ import annotations

from signal_admin.errors import InvalidToken, RateLimited, Unauthorized
from signal_admin.metrics import RATE_LIMIT_REFUSALS
from signal_admin.ratelimit import RateDecision
from signal_admin.resolvers.auth import authenticate
from signal_admin.resolvers.context import Principal, RequestMeta, Services


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer …` header; None when absent."""
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("The Authorization header must be 'Bearer <token>'.")
    return token.strip()


async def identify(services: Services, authorization: str | None) -> Principal | None:
    token = bearer_token(authorization)
    if token is None:
        return None
    return await authenticate(services, token)


async def require_principal(services: Services, authorization: str | None) -> Principal:
    principal = await identify(services, authorization)
    if principal is None:
        raise Unauthorized()
    return principal


async def charge(
    services: Services,
    principal: Principal | None,
    meta: RequestMeta,
    *,
    cost: int = 1,
) -> RateDecision:
    """Charge `cost` requests to the caller's window; raise 429 when it is full."""
    settings = services.settings
    key = f"user:{principal.user_id}" if principal else f"ip:{meta.ip_address}"
    decision: RateDecision | None = None
    for _ in range(max(1, cost)):
        decision = await services.limiter.hit(
            key, settings.rate_limit_per_minute, settings.rate_limit_window_seconds
        )
        if not decision.allowed:
            RATE_LIMIT_REFUSALS.labels(limit="user" if principal else "ip").inc()
            raise RateLimitedWith(decision)
    assert decision is not None
    return decision


class RateLimitedWith(RateLimited):
    """A 429 that remembers the window, so the answer carries its headers."""

    def __init__(self, decision: RateDecision) -> None:
        super().__init__(decision.retry_after)
        self.decision = decision
