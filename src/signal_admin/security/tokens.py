"""JWT access and refresh tokens (HS256).

Verification pins the algorithm, requires every claim the service relies on and
allows a few seconds of clock leeway; the caller learns only *why* a token was
refused as one of the domain errors.

Access tokens come back on every request, so the claims of the ones verified
recently are kept, keyed by the whole token: only the exact string whose
signature was checked can hit, its expiry is checked again on every use, and
a token that fails verification is never kept. What a token grants is not
cached: the caller's session and user are still read on every request.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import jwt

from signal_admin.errors import (
    ExpiredToken,
    InvalidRefreshToken,
    InvalidToken,
    Unauthorized,
)

ISSUER = "signal-admin"
AUDIENCE = "signal-admin"
ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "sid", "jti", "type"]

MAX_TOKEN_LENGTH = 4096
# Verified access tokens remembered per process: at most ~4 MiB of tokens.
VERIFIED_TOKENS_KEPT = 1024
LAST_TIMESTAMP = 253_402_300_800  # 10000-01-01T00:00:00Z

TokenType = Literal["access", "refresh"]


@dataclass(frozen=True, slots=True)
class TokenClaims:
    type: TokenType
    user_id: str
    org_id: str
    session_id: str
    jti: str
    issued_at: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    jti: str
    expires_at: int


class TokenService:
    """Issues and verifies tokens. `clock` is the time a remembered token's
    expiry is checked against; tests move it."""

    def __init__(
        self,
        secret: str,
        *,
        access_ttl: int,
        refresh_ttl: int,
        leeway: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self._leeway = leeway
        self._clock = clock
        self._verified: dict[str, TokenClaims] = {}

    def issue_access(
        self, *, user_id: str, org_id: str, session_id: str, role: str
    ) -> IssuedToken:
        return self._issue("access", user_id, org_id, session_id, {"role": role})

    def issue_refresh(
        self, *, user_id: str, org_id: str, session_id: str
    ) -> IssuedToken:
        return self._issue("refresh", user_id, org_id, session_id, {})

    def verify_access(self, token: str) -> TokenClaims:
        claims = self._verified.get(token)
        if claims is None:
            claims = self._verify(token, "access", InvalidToken)
            self._remember(token, claims)
        elif claims.expires_at <= self._clock() - self._leeway:
            # The test PyJWT applies when it verifies.
            self._verified.pop(token, None)
            raise ExpiredToken()
        return claims

    def _remember(self, token: str, claims: TokenClaims) -> None:
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            # The oldest goes first; one still in use is verified again.
            del self._verified[next(iter(self._verified))]
        self._verified[token] = claims

    def verify_refresh(self, token: str) -> TokenClaims:
        return self._verify(token, "refresh", InvalidRefreshToken)

    def _issue(
        self,
        token_type: TokenType,
        user_id: str,
        org_id: str,
        session_id: str,
        extra: dict[str, Any],
    ) -> IssuedToken:
        now = int(time.time())
        ttl = self.access_ttl if token_type == "access" else self.refresh_ttl
        jti = secrets.token_urlsafe(24)
        claims = {
            "type": token_type,
            "sub": user_id,
            "org_id": org_id,
            "sid": session_id,
            "iss": ISSUER,
            "aud": AUDIENCE,
            "jti": jti,
            "iat": now,
            "exp": now + ttl,
            **extra,
        }
        token = jwt.encode(claims, self._secret, algorithm=ALGORITHM)
        return IssuedToken(token=token, jti=jti, expires_at=now + ttl)

    def _verify(
        self, token: str, expected: TokenType, invalid: type[Unauthorized]
    ) -> TokenClaims:
        if len(token) > MAX_TOKEN_LENGTH:
            raise invalid()
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=self._leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as error:
            if expected == "access":
                raise ExpiredToken() from error
            raise invalid("The refresh token has expired.") from error
        except (jwt.PyJWTError, OverflowError, ValueError, TypeError) as error:
            # Out-of-range numeric claims fail in date arithmetic, not in
            # PyJWT's own checks; they are as invalid as a bad signature.
            raise invalid() from error
        if claims.get("type") != expected or not isinstance(claims.get("org_id"), str):
            raise invalid()
        if not all(_is_timestamp(claims[name]) for name in ("iat", "exp")):
            raise invalid()
        return TokenClaims(
            type=expected,
            user_id=str(claims["sub"]),
            org_id=claims["org_id"],
            session_id=str(claims["sid"]),
            jti=str(claims["jti"]),
            issued_at=int(claims["iat"]),
            expires_at=int(claims["exp"]),
        )


def _is_timestamp(value: object) -> bool:
    """Whether a claim is an epoch time a date can hold (before the year 10000)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and 0 <= value < LAST_TIMESTAMP
    )


def digest(value: str) -> str:
    """SHA-256 hex digest of a token, key or jti: what the database keeps."""
    return hashlib.sha256(value.encode()).hexdigest()


def random_base62(length: int) -> str:
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    return "".join(secrets.choice(alphabet) for _ in range(length))
