"""User routes: the organisation's members and their invitations."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from signal_admin.persistence.models import User
from signal_admin.resolvers import users
from signal_admin.resolvers.users import (
    UserCreate,
    UserFilter,
    UserRole,
    UserStatus,
    UserUpdate,
)
from signal_admin.resolvers.validation import parse
from signal_admin.rest_compat import API_PREFIX
from signal_admin.rest_compat.auth import UserOut, user_body
from signal_admin.rest_compat.dependencies import (
    DEFAULT_LIMIT,
    Context,
    Cursor,
    IfMatch,
    Limit,
    etag,
    permitted,
)
from signal_admin.rest_compat.idempotency import IdempotencyKey, idempotent
from signal_admin.rest_compat.lists import list_body

router = APIRouter(prefix=f"{API_PREFIX}/users", tags=["Users"])


class UserWithInviteOut(UserOut):
    invite_token: str | None


class UserList(BaseModel):
    data: list[UserOut]
    next_cursor: str | None
    has_more: bool


def _one(user: User, status_code: int = 200, **extra: Any) -> JSONResponse:
    return JSONResponse(
        {**user_body(user), **extra},
        status_code=status_code,
        headers={"ETag": etag(user.version)},
    )


@router.get("", response_model=UserList, dependencies=[permitted(users.list_users)])
async def list_users(
    ctx: Context,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
    role: UserRole | None = None,
    status: UserStatus | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """List the organisation's users, oldest first."""
    filters = parse(UserFilter, {"role": role, "status": status, "q": q})
    page = await users.list_users(ctx, filters, cursor=cursor, limit=limit)
    return list_body(page, user_body)


@router.post(
    "",
    status_code=201,
    response_model=UserWithInviteOut,
    dependencies=[permitted(users.create_user)],
)
async def create_user(
    ctx: Context, request: Request, body: UserCreate, key: IdempotencyKey = None
) -> Response:
    """Add a user: active with a password, else invited with a one-time token."""

    async def create() -> Response:
        created = await users.create_user(ctx, body)
        return _one(created.user, 201, invite_token=created.invite_token)

    return await idempotent(ctx, request, key, create)


@router.get(
    "/{user_id}", response_model=UserOut, dependencies=[permitted(users.get_user)]
)
async def get_user(ctx: Context, user_id: str) -> JSONResponse:
    """One user."""
    return _one(await users.get_user(ctx, user_id))


@router.patch(
    "/{user_id}", response_model=UserOut, dependencies=[permitted(users.update_user)]
)
async def update_user(
    ctx: Context, user_id: str, body: UserUpdate, version: IfMatch
) -> JSONResponse:
    """Change a user's name, role or status, within the guard rails of roles."""
    user = await users.update_user(ctx, user_id, body, expected_version=version)
    return _one(user)


@router.delete(
    "/{user_id}",
    status_code=204,
    response_class=Response,
    dependencies=[permitted(users.delete_user)],
)
async def delete_user(ctx: Context, user_id: str, version: IfMatch) -> Response:
    """Remove a user and end their sessions; the audit trail keeps their row."""
    await users.delete_user(ctx, user_id, expected_version=version)
    return Response(status_code=204)


@router.post(
    "/{user_id}/reinvite",
    response_model=UserWithInviteOut,
    dependencies=[permitted(users.reinvite_user)],
)
async def reinvite_user(ctx: Context, user_id: str) -> JSONResponse:
    """Issue an invited user a new invite token; the previous one stops working."""
    reinvited = await users.reinvite_user(ctx, user_id)
    return _one(reinvited.user, invite_token=reinvited.invite_token)
