"""Who is calling, and what the call costs them against the rate limit.

Both faces use these two steps before anything else: resolve the bearer token
to a principal, then charge the principal (or, for anonymous calls, the client
IP) against the shared sliding window.
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class Admission:
    principal: Principal | None
    decision: RateDecision


async def admit(
    services: Services,
    authorization: str | None,
    meta: RequestMeta,
    *,
    token_required: bool,
) -> Admission:
    """Identify the caller and charge one request to them, in that order.

    The charge comes before any refusal of the token, so guessing tokens is
    limited like any other request. Where no token is required, a stale or
    broken one is ignored: a client refreshing because its access token
    expired often still sends it.
    """
    refusal: Unauthorized | None = None
    try:
        principal = await identify(services, authorization)
    except Unauthorized as error:
        principal, refusal = None, error
    decision = await charge(services, principal, meta)
    if token_required and principal is None:
        raise RefusedAfterCharge(refusal or Unauthorized(), decision)
    return Admission(principal, decision)


class RefusedAfterCharge(Exception):
    """An authentication refusal that already cost the caller a request: the
    answer still carries the rate-limit headers."""

    def __init__(self, error: Unauthorized, decision: RateDecision) -> None:
        super().__init__(error.message)
        self.error = error
        self.decision = decision


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
