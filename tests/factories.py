"""Small async factories: a fresh organisation with signed-in members."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient, Response

from signal_admin.resolvers.context import RequestContext, RequestMeta
from signal_admin.resolvers.organizations import create_organization
from signal_admin.resolvers.users import add_user
from signal_admin.security.permissions import Role

PASSWORD = "correct horse battery staple"
_sequence = itertools.count(1)


@dataclass
class Member:
    id: str
    org_id: str
    email: str
    role: str
    password: str = PASSWORD
    access_token: str = ""
    refresh_token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


@dataclass
class Org:
    id: str
    owner: Member
    members: dict[str, Member] = field(default_factory=dict)


class Factory:
    def __init__(self, app: FastAPI, client: AsyncClient) -> None:
        self.app = app
        self.client = client

    @property
    def _ctx(self) -> RequestContext:
        return RequestContext(services=self.app.state.services, meta=RequestMeta())

    async def org(self, *, sign_in: bool = True) -> Org:
        email = unique_email("owner")
        created = await create_organization(
            self._ctx,
            name=f"Org {next(_sequence)}",
            owner_email=email,
            owner_password=PASSWORD,
        )
        owner = Member(created.owner.id, created.organization.id, email, "owner")
        if sign_in:
            await self.sign_in(owner)
        return Org(created.organization.id, owner)

    async def member(self, org: Org, role: str, *, sign_in: bool = True) -> Member:
        email = unique_email(role)
        async with self.app.state.services.db.transaction() as session:
            new = await add_user(
                session,
                self._ctx,
                org_id=org.id,
                email=email,
                name=f"{role.title()} {next(_sequence)}",
                role=Role(role),
                password=PASSWORD,
            )
        member = Member(new.user.id, org.id, email, role)
        if sign_in:
            await self.sign_in(member)
        org.members[role] = member
        return member

    async def sign_in(self, member: Member) -> Member:
        response = await self.client.post(
            "/v1/admin/auth/login",
            json={"email": member.email, "password": member.password},
        )
        assert response.status_code == 200, response.text
        member.access_token = response.json()["access_token"]
        member.refresh_token = response.json()["refresh_token"]
        return member

    async def pipeline(self, member: Member, **fields: Any) -> dict[str, Any]:
        body = {"name": f"Site {uuid.uuid4().hex[:8]}", "type": "web", **fields}
        response = await self.client.post(
            "/v1/admin/pipelines", json=body, headers=member.headers
        )
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def invite(
        self, member: Member, role: str = "editor", **fields: Any
    ) -> dict[str, Any]:
        """A user `member` invites through the API: the answer, with its
        one-time `invite_token`."""
        body = {
            "email": unique_email(role),
            "name": f"Invitee {next(_sequence)}",
            "role": role,
            **fields,
        }
        response = await self.client.post(
            "/v1/admin/users", json=body, headers=member.headers
        )
        assert response.status_code == 201, response.text
        invited: dict[str, Any] = response.json()
        return invited


def unique_email(role: str) -> str:
    return f"{role}-{uuid.uuid4().hex[:12]}@example.com"


def error_code(response: Response) -> str:
    code: str = response.json()["error"]["code"]
    return code
