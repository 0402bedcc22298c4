"""What the API tests need beyond the factories: apps with shrunk settings,
tokens forged with the test key, and direct reads and writes of the rows a
test cannot reach through the API."""

from __future__ import annotations

import re
import warnings
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import jwt
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from jwt.warnings import InsecureKeyLengthWarning
from sqlalchemy import select, update

from signal_admin.app import create_app
from signal_admin.persistence.models import AuditEntry, AuthSession, Secret, User
from signal_admin.persistence.types import utc_now
from tests.conftest import TEST_JWT_SECRET, make_settings

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@asynccontextmanager
async def dedicated_app(
    database_url: str, redis_url: str | None, **overrides: object
) -> AsyncIterator[FastAPI]:
    """An app of its own, on the suite's database, with some settings changed."""
    application = create_app(make_settings(database_url, redis_url, **overrides))
    async with LifespanManager(application):
        yield application


@asynccontextmanager
async def client_of(
    app: FastAPI, *, address: str = "127.0.0.1"
) -> AsyncIterator[AsyncClient]:
    """An HTTP client of `app` whose requests come from `address`."""
    transport = ASGITransport(app=app, client=(address, 50_000))
    async with AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def forged_token(
    token: str,
    *,
    key: str = TEST_JWT_SECRET,
    algorithm: str = "HS256",
    without: Iterable[str] = (),
    **changes: Any,
) -> str:
    """`token`'s claims with `changes` applied and `without` removed, signed
    with `key` (the service's own key unless told otherwise)."""
    claims = {**claims_of(token), **changes}
    for name in without:
        del claims[name]
    with warnings.catch_warnings():
        # A forgery may pair the key with an algorithm it is too short for.
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode(claims, key, algorithm=algorithm)


def unsigned_token(token: str) -> str:
    """`token`'s claims under `alg: none`, with no signature at all."""
    return jwt.encode(claims_of(token), "", algorithm="none")


async def set_user(app: FastAPI, user_id: str, **values: Any) -> None:
    """Change a user's row directly, as another replica or an operator would."""
    async with app.state.services.db.transaction() as session:
        await session.execute(update(User).where(User.id == user_id).values(**values))


async def revoke_session(app: FastAPI, session_id: str) -> None:
    async with app.state.services.db.transaction() as session:
        await session.execute(
            update(AuthSession)
            .where(AuthSession.id == session_id)
            .values(revoked_at=utc_now())
        )


async def audit_entries(
    app: FastAPI, org_id: str, action: str | None = None
) -> list[AuditEntry]:
    """The org's audit entries, oldest first, optionally of one action."""
    statement = select(AuditEntry).where(AuditEntry.org_id == org_id)
    if action is not None:
        statement = statement.where(AuditEntry.action == action)
    async with app.state.services.db.read() as session:
        return list(await session.scalars(statement.order_by(AuditEntry.id)))


async def stored_secrets(app: FastAPI, org_id: str) -> list[Secret]:
    """The org's rows of the secrets table, as stored."""
    async with app.state.services.db.read() as session:
        return list(
            await session.scalars(select(Secret).where(Secret.org_id == org_id))
        )
