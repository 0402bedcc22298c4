"""Authentication routes: login, refresh, logout, accepting an invitation, and
the caller's profile."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response
from pydantic import BaseModel, ConfigDict, Field

from signal_admin.persistence.models import User
from signal_admin.persistence.types import format_timestamp
from signal_admin.resolvers import auth
from signal_admin.rest_compat import API_PREFIX
from signal_admin.rest_compat.dependencies import Caller, Context

router = APIRouter(prefix=API_PREFIX, tags=["Authentication"])

Password = Annotated[str, Field(max_length=1024)]


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Annotated[str, Field(max_length=320)]
    password: Password


class RefreshBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refresh_token: Annotated[str, Field(max_length=4096)]


class AcceptInviteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    invite_token: Annotated[str, Field(max_length=4096)]
    password: Password
    name: Annotated[str, Field(max_length=1024)] | None = None


class MeUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(max_length=1024)] | None = None
    current_password: Password | None = None
    new_password: Password | None = None


class TokenPairOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "Bearer"
    expires_in: int


class UserOut(BaseModel):
    id: str
    org_id: str
    email: str | None
    name: str
    role: str
    status: str
    last_login_at: str | None
    version: int
    created_at: str
    updated_at: str


def token_pair_body(pair: auth.TokenPair) -> dict[str, Any]:
    return {
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": pair.token_type,
        "expires_in": pair.expires_in,
    }


def user_body(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "org_id": user.org_id,
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "status": user.status,
        "last_login_at": format_timestamp(user.last_login_at),
        "version": user.version,
        "created_at": format_timestamp(user.created_at),
        "updated_at": format_timestamp(user.updated_at),
    }


@router.post("/auth/login", response_model=TokenPairOut)
async def login(ctx: Caller, body: LoginBody) -> dict[str, Any]:
    """Sign in with email and password; answers an access and refresh token."""
    return token_pair_body(await auth.login(ctx, body.email, body.password))


@router.post("/auth/refresh", response_model=TokenPairOut)
async def refresh(ctx: Caller, body: RefreshBody) -> dict[str, Any]:
    """Spend a refresh token for a new token pair in the same session."""
    return token_pair_body(await auth.refresh(ctx, body.refresh_token))


@router.post("/auth/logout", status_code=204, response_class=Response)
async def logout(ctx: Context, body: RefreshBody) -> Response:
    """Revoke the session a refresh token belongs to, with its access tokens."""
    await auth.logout(ctx, body.refresh_token)
    return Response(status_code=204)


@router.post("/auth/accept-invite", response_model=TokenPairOut)
async def accept_invite(ctx: Caller, body: AcceptInviteBody) -> dict[str, Any]:
    """Accept an invitation: set a password, become active, and sign in."""
    pair = await auth.accept_invite(
        ctx, body.invite_token, body.password, name=body.name
    )
    return token_pair_body(pair)


@router.get("/me", response_model=UserOut)
async def get_me(ctx: Context) -> dict[str, Any]:
    """The signed-in user."""
    return user_body(await auth.get_me(ctx))


@router.patch("/me", response_model=UserOut)
async def update_me(ctx: Context, body: Annotated[MeUpdate, Body()]) -> dict[str, Any]:
    """Change your name, or your password (signing out your other sessions)."""
    user = await auth.update_me(
        ctx,
        name=body.name,
        current_password=body.current_password,
        new_password=body.new_password,
    )
    return user_body(user)
