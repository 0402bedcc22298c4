"""Roles and permissions over the whole API, driven by tests/permission_table.py:
every route and root field refuses exactly the roles the specification's table
refuses, before it loads anything; the table covers everything the API serves;
the guard rails of roles hold through GraphQL documents; and other users'
email and last sign-in are hidden from roles that may not read users wherever
a user appears."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from graphql import GraphQLObjectType, get_named_type, is_leaf_type, is_object_type
from httpx import AsyncClient, Response

from signal_admin.rest_compat import API_PREFIX
from signal_admin.schema.root import graphql_schema
from signal_admin.security.permissions import ROLE_PERMISSIONS, Permission, Role
from tests.api.test_graphql_pipelines import error_codes, graphql
from tests.factories import Factory, Member, error_code, unique_email
from tests.helpers import client_of
from tests.permission_table import (
    NULL,
    ROLES,
    ROLES_WITH,
    ROOT_FIELDS,
    ROUTES,
    SOCKET_ROUTES,
    SUBSCRIPTION_FIELDS,
    Access,
    RootField,
    Route,
    path_shape,
    permits,
)

GRAPHQL = "/v1/admin/graphql"
USER_SEEN = "id email lastLoginAt"


@dataclass
class Team:
    """One member of each role in one organisation, and one more editor who
    wrote a template's revision, attached it to a pipeline and wrote a
    transformation for it."""

    members: dict[str, Member]
    author: Member
    template_id: str
    pipeline_id: str
    transformation_id: str


@pytest.fixture(scope="module")
async def team(app: FastAPI) -> Team:
    """Shared by this module's tests, which only read it or call with ids
    that name nothing: the permission table alone has hundreds of cases, and
    signing in a team for each would cost minutes of password hashing."""
    async with client_of(app) as http:
        factory = Factory(app, http)
        org = await factory.org()
        members = {"owner": org.owner}
        for role in ("admin", "editor", "viewer"):
            members[role] = await factory.member(org, role)
        author = await factory.member(org, "editor")
        template = await http.post(
            "/v1/admin/integration-templates",
            json={"name": "Hooks", "vendor": "webhook"},
            headers=author.headers,
        )
        assert template.status_code == 201, template.text
        template_id = template.json()["template"]["id"]
        pipeline = await factory.pipeline(author)
        attached = await http.post(
            f"/v1/admin/pipelines/{pipeline['id']}/integrations",
            json={"integration_id": template_id},
            headers=author.headers,
        )
        assert attached.status_code == 201, attached.text
        transformation = await http.post(
            "/v1/admin/transformations",
            json={
                "name": "Author's",
                "integration_id": template_id,
                "config": {"steps": []},
            },
            headers=author.headers,
        )
        assert transformation.status_code == 201, transformation.text
        built = await http.post(
            f"/v1/admin/pipelines/{pipeline['id']}/collector/builds",
            headers=author.headers,
        )
        assert built.status_code == 201, built.text
    return Team(
        members, author, template_id, pipeline["id"], transformation.json()["id"]
    )


def _cases(rows: tuple[Any, ...], *, permitted: bool) -> list[Any]:
    return [
        pytest.param(row, role, id=f"{row}-{role}")
        for row in rows
        for role in ROLES
        if permits(role, row.needs) is permitted
    ]


# The table against the specification's roles


def test_each_role_holds_exactly_the_permissions_the_table_gives_it() -> None:
    assert ROLES_WITH.keys() == set(Permission)
    for role in ROLES:
        granted = {p for p, roles in ROLES_WITH.items() if role in roles}
        assert ROLE_PERMISSIONS[Role(role)] == granted, role


# REST


def _served_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path shape) of every route the app serves under /v1/admin."""
    served = set()
    for route in iter_route_contexts(app.routes):
        path = route.path
        if path is None or not path.startswith(f"{API_PREFIX}/"):
            continue
        shape = path_shape(path.removeprefix(API_PREFIX))
        for method in (route.methods or {"WEBSOCKET"}) - {"HEAD"}:
            served.add((method, shape))
    return served


def _tabled_routes() -> dict[tuple[str, str], Route]:
    routes = ROUTES + SOCKET_ROUTES
    return {(route.method, path_shape(route.path)): route for route in routes}


async def _call(client: AsyncClient, route: Route, member: Member | None) -> Response:
    return await client.request(
        route.method,
        route.url,
        params=route.params,
        json=route.json(),
        headers=member.headers if member else {},
    )


def _error_code(response: Response) -> str | None:
    """The code of an error envelope; None for any other answer."""
    if not response.headers.get("content-type", "").startswith("application/json"):
        return None
    error = response.json().get("error")
    return error["code"] if isinstance(error, dict) else None


def test_the_table_names_every_route_the_api_serves(app: FastAPI) -> None:
    missing = _served_routes(app) - _tabled_routes().keys()

    assert not missing, f"routes without a row: {sorted(missing)}"


def test_every_route_the_table_names_is_served(app: FastAPI) -> None:
    absent = _tabled_routes().keys() - _served_routes(app)

    assert not absent, f"rows naming routes the API does not serve: {sorted(absent)}"


def test_the_table_names_each_route_once() -> None:
    assert len(_tabled_routes()) == len(ROUTES) + len(SOCKET_ROUTES)


@pytest.mark.parametrize(("route", "role"), _cases(ROUTES, permitted=False))
async def test_a_route_refuses_a_role_without_its_permission_before_loading(
    app: FastAPI, client: AsyncClient, team: Team, route: Route, role: str
) -> None:
    assert (route.method, path_shape(route.path)) in _served_routes(app), route

    response = await _call(client, route, team.members[role])

    assert response.status_code == 403, response.text
    assert error_code(response) == "FORBIDDEN"
    assert route.needs in response.json()["error"]["message"]


@pytest.mark.parametrize(("route", "role"), _cases(ROUTES, permitted=True))
async def test_a_route_serves_a_role_with_its_permission(
    app: FastAPI, client: AsyncClient, team: Team, route: Route, role: str
) -> None:
    assert (route.method, path_shape(route.path)) in _served_routes(app), route

    response = await _call(client, route, team.members[role])

    assert response.status_code != 403, response.text
    assert _error_code(response) != "UNAUTHORIZED", response.text
    if route.answers is not None:
        assert response.status_code == route.answers, response.text


@pytest.mark.parametrize("route", ROUTES, ids=str)
async def test_a_route_needs_a_token_unless_it_is_public(
    app: FastAPI, client: AsyncClient, route: Route
) -> None:
    assert (route.method, path_shape(route.path)) in _served_routes(app), route

    response = await _call(client, route, None)

    if route.needs is Access.PUBLIC:
        assert response.status_code == route.answers, response.text
        assert _error_code(response) != "UNAUTHORIZED"
    else:
        assert response.status_code == 401, response.text
        assert error_code(response) == "UNAUTHORIZED"


# GraphQL


def _root_types() -> dict[str, GraphQLObjectType]:
    schema = graphql_schema()
    roots = {
        "query": schema.query_type,
        "mutation": schema.mutation_type,
        "subscription": schema.subscription_type,
    }
    return {operation: root for operation, root in roots.items() if root is not None}


def _served_fields() -> set[tuple[str, str]]:
    return {
        (operation, name)
        for operation, root in _root_types().items()
        for name in root.fields
    }


def _tabled_fields() -> set[tuple[str, str]]:
    rows = ROOT_FIELDS + SUBSCRIPTION_FIELDS
    return {(row.operation, row.name) for row in rows}


def _document(row: RootField, variables: dict[str, Any]) -> str:
    """The smallest document that calls `row`'s field with `variables`, its
    argument types as the schema declares them."""
    root = _root_types().get(row.operation)
    if root is None or row.name not in root.fields:
        pytest.fail(f"{row} is not in the schema")
    field = root.fields[row.name]
    undeclared = variables.keys() - field.args.keys()
    assert not undeclared, f"{row} takes no argument {sorted(undeclared)}"
    declared = ", ".join(f"${name}: {field.args[name].type}" for name in variables)
    passed = ", ".join(f"{name}: ${name}" for name in variables)
    named = get_named_type(field.type)
    selection = ""
    if not is_leaf_type(named):
        selection = "{ __typename }"
        if is_object_type(named) and "userErrors" in named.fields:
            selection = "{ __typename userErrors { code } }"
    header = f"{row.operation} ({declared})" if variables else row.operation
    arguments = f"({passed})" if variables else ""
    return f"{header} {{ {row.name}{arguments} {selection} }}"


async def _ask(client: AsyncClient, row: RootField, member: Member | None) -> Response:
    variables = row.variables()
    body = {"query": _document(row, variables), "variables": variables}
    headers = member.headers if member else {}
    return await client.post(GRAPHQL, json=body, headers=headers)


def _codes(response: Response) -> list[str]:
    return [error["extensions"]["code"] for error in response.json().get("errors", [])]


def test_the_table_names_every_root_field_the_schema_has() -> None:
    missing = _served_fields() - _tabled_fields()

    assert not missing, f"root fields without a row: {sorted(missing)}"


def test_every_root_field_the_table_names_is_in_the_schema() -> None:
    absent = _tabled_fields() - _served_fields()

    assert not absent, f"rows naming fields the schema lacks: {sorted(absent)}"


def test_the_table_names_each_root_field_once() -> None:
    assert len(_tabled_fields()) == len(ROOT_FIELDS) + len(SUBSCRIPTION_FIELDS)


@pytest.mark.parametrize(("row", "role"), _cases(ROOT_FIELDS, permitted=False))
async def test_a_root_field_refuses_a_role_without_its_permission_before_loading(
    client: AsyncClient, team: Team, row: RootField, role: str
) -> None:
    response = await _ask(client, row, team.members[role])

    assert error_codes(response) == ["FORBIDDEN"], response.text
    assert row.needs in response.json()["errors"][0]["message"]
    data = response.json().get("data")
    assert data is None or data[row.name] is None


@pytest.mark.parametrize(("row", "role"), _cases(ROOT_FIELDS, permitted=True))
async def test_a_root_field_serves_a_role_with_its_permission(
    client: AsyncClient, team: Team, row: RootField, role: str
) -> None:
    response = await _ask(client, row, team.members[role])

    assert not {"FORBIDDEN", "UNAUTHORIZED"} & set(_codes(response)), response.text
    if row.answers == NULL:
        assert "errors" not in response.json(), response.text
        assert response.json()["data"] == {row.name: None}
    elif row.answers is not None:
        assert "errors" not in response.json(), response.text
        payload = response.json()["data"][row.name]
        assert [error["code"] for error in payload["userErrors"]] == list(row.answers)


@pytest.mark.parametrize("row", ROOT_FIELDS, ids=str)
async def test_a_root_field_needs_a_token_unless_it_is_public(
    client: AsyncClient, row: RootField
) -> None:
    response = await _ask(client, row, None)

    if row.needs is Access.PUBLIC:
        assert "UNAUTHORIZED" not in _codes(response), response.text
    else:
        assert error_codes(response) == ["UNAUTHORIZED"], response.text
        data = response.json().get("data")
        assert data is None or data[row.name] is None


# Other users' details


def _assert_seen_as(user: dict[str, Any], member: Member, role: str) -> None:
    """`user` is `member` as a caller of `role`, someone else, may see them."""
    assert user["id"] == member.id
    if permits(role, Permission.MANAGE_USERS):
        assert user["email"] == member.email
        assert user["lastLoginAt"] is not None
    else:
        assert (user["email"], user["lastLoginAt"]) == (None, None)


# Where a user appears to members of any role; each is checked below.
USER_FIELDS_CHECKED_BELOW = {
    ("Query", "me"),
    ("Query", "user"),
    ("UserEdge", "node"),
    ("IntegrationRevision", "createdBy"),
    ("Transformation", "createdBy"),
    ("CollectorBuild", "createdBy"),
    ("AuditLog", "actor"),
}
# Answered only to callers who may read users, or about the caller themself.
USER_FIELDS_SHOWN_IN_FULL = {
    ("ReEncryptionRun", "startedBy"),
    ("CreateUserPayload", "user"),
    ("UpdateUserPayload", "user"),
    ("ReinviteUserPayload", "user"),
    ("UpdateMePayload", "user"),
}


def test_every_field_that_answers_a_user_is_checked_for_hidden_details() -> None:
    schema = graphql_schema()
    user_fields = {
        (type_name, field_name)
        for type_name, type_ in schema.type_map.items()
        if is_object_type(type_) and not type_name.startswith("__")
        for field_name, field in type_.fields.items()
        if get_named_type(field.type).name == "User"
    }

    assert user_fields == USER_FIELDS_CHECKED_BELOW | USER_FIELDS_SHOWN_IN_FULL


@pytest.mark.parametrize("role", ROLES)
async def test_me_shows_every_member_their_own_email_and_last_sign_in(
    client: AsyncClient, team: Team, role: str
) -> None:
    member = team.members[role]

    response = await graphql(client, member, f"{{ me {{ {USER_SEEN} }} }}")

    me = response.json()["data"]["me"]
    assert (me["id"], me["email"]) == (member.id, member.email)
    assert me["lastLoginAt"] is not None


@pytest.mark.parametrize(
    "role", [role for role in ROLES if permits(role, Permission.MANAGE_USERS)]
)
async def test_user_and_users_show_other_users_in_full_to_roles_that_read_users(
    client: AsyncClient, team: Team, role: str
) -> None:
    query = f"""
    query ($id: ID!) {{
      user(id: $id) {{ {USER_SEEN} }}
      users {{ edges {{ node {{ {USER_SEEN} }} }} }}
    }}
    """

    response = await graphql(client, team.members[role], query, {"id": team.author.id})

    data = response.json()["data"]
    _assert_seen_as(data["user"], team.author, role)
    nodes = {edge["node"]["id"]: edge["node"] for edge in data["users"]["edges"]}
    for member in (*team.members.values(), team.author):
        _assert_seen_as(nodes[member.id], member, role)


AUTHORS = f"""
query ($template: ID!, $pipeline: ID!, $transformation: ID!) {{
  integrationTemplate(id: $template) {{
    latestRevision {{ createdBy {{ {USER_SEEN} }} }}
    revisions {{ edges {{ node {{ createdBy {{ {USER_SEEN} }} }} }} }}
    attachments {{ revision {{ createdBy {{ {USER_SEEN} }} }} }}
  }}
  pipeline(id: $pipeline) {{
    integrations {{
      revision {{ createdBy {{ {USER_SEEN} }} }}
      latestRevision {{ createdBy {{ {USER_SEEN} }} }}
      transformations {{ createdBy {{ {USER_SEEN} }} }}
    }}
    collectorBuilds {{ createdBy {{ {USER_SEEN} }} }}
  }}
  transformation(id: $transformation) {{ createdBy {{ {USER_SEEN} }} }}
  transformations {{ edges {{ node {{ createdBy {{ {USER_SEEN} }} }} }} }}
}}
"""


def _authors(response: Response) -> list[dict[str, Any]]:
    """The createdBy of every revision, transformation and collector build in
    an AUTHORS answer."""
    data = response.json()["data"]
    template = data["integrationTemplate"]
    integrations = data["pipeline"]["integrations"]
    written = [
        template["latestRevision"],
        *(edge["node"] for edge in template["revisions"]["edges"]),
        *(attachment["revision"] for attachment in template["attachments"]),
        *(
            revision
            for attachment in integrations
            for revision in (attachment["revision"], attachment["latestRevision"])
        ),
        *(
            item
            for attachment in integrations
            for item in attachment["transformations"]
        ),
        data["transformation"],
        *(edge["node"] for edge in data["transformations"]["edges"]),
        *data["pipeline"]["collectorBuilds"],
    ]
    return [item["createdBy"] for item in written]


@pytest.mark.parametrize("role", ROLES)
async def test_a_revision_author_is_hidden_exactly_from_roles_that_may_not_read_users(
    client: AsyncClient, team: Team, role: str
) -> None:
    variables = {
        "template": team.template_id,
        "pipeline": team.pipeline_id,
        "transformation": team.transformation_id,
    }

    response = await graphql(client, team.members[role], AUTHORS, variables)

    authors = _authors(response)
    assert len(authors) == 9
    for author in authors:
        _assert_seen_as(author, team.author, role)


async def test_a_revision_author_sees_their_own_email_whatever_their_role(
    client: AsyncClient, team: Team
) -> None:
    variables = {
        "template": team.template_id,
        "pipeline": team.pipeline_id,
        "transformation": team.transformation_id,
    }

    response = await graphql(client, team.author, AUTHORS, variables)

    for author in _authors(response):
        assert (author["id"], author["email"]) == (team.author.id, team.author.email)
        assert author["lastLoginAt"] is not None


@pytest.mark.parametrize(
    "role", [role for role in ROLES if permits(role, Permission.READ_AUDIT_LOG)]
)
async def test_an_audit_actor_is_hidden_exactly_from_roles_that_may_not_read_users(
    client: AsyncClient, team: Team, role: str
) -> None:
    query = f"""
    {{ auditLogs(first: 100) {{ edges {{ node {{ actor {{ {USER_SEEN} }} }} }} }} }}
    """

    response = await graphql(client, team.members[role], query)

    assert "errors" not in response.json(), response.text
    edges = response.json()["data"]["auditLogs"]["edges"]
    actors = [edge["node"]["actor"] for edge in edges]
    by_author = [actor for actor in actors if actor and actor["id"] == team.author.id]
    assert by_author, "the author's sign-in and writes are audited"
    for actor in by_author:
        _assert_seen_as(actor, team.author, role)


# Guard rails of roles


CREATE_USER = """
mutation ($input: CreateUserInput!) {
  createUser(input: $input) { user { id } userErrors { code } }
}
"""
UPDATE_USER = """
mutation ($input: UpdateUserInput!) {
  updateUser(input: $input) { user { id role } userErrors { code } }
}
"""
REINVITE_USER = """
mutation ($input: ReinviteUserInput!) {
  reinviteUser(input: $input) { user { id } userErrors { code } }
}
"""
ROLES_OF_USERS = "{ users { edges { node { id role name status } } } }"


async def _users(client: AsyncClient, member: Member) -> dict[str, dict[str, Any]]:
    response = await graphql(client, member, ROLES_OF_USERS)
    edges = response.json()["data"]["users"]["edges"]
    return {edge["node"]["id"]: edge["node"] for edge in edges}


async def _roles(client: AsyncClient, member: Member) -> dict[str, str]:
    return {id_: user["role"] for id_, user in (await _users(client, member)).items()}


async def test_an_admin_cannot_create_an_owner_over_rest(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org, "admin")
    body = {"email": unique_email("owner"), "name": "Second", "role": "owner"}

    response = await client.post("/v1/admin/users", json=body, headers=admin.headers)

    assert response.status_code == 403
    assert error_code(response) == "FORBIDDEN"
    assert "owner" in response.json()["error"]["message"]
    assert await _roles(client, org.owner) == {org.owner.id: "OWNER", admin.id: "ADMIN"}


async def test_an_admin_cannot_create_an_owner_over_graphql(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org, "admin")
    fields = {"email": unique_email("owner"), "name": "Second", "role": "OWNER"}

    response = await graphql(client, admin, CREATE_USER, {"input": fields})

    assert error_codes(response) == ["FORBIDDEN"]
    assert "owner" in response.json()["errors"][0]["message"]
    assert response.json()["data"] == {"createUser": None}
    assert await _roles(client, org.owner) == {org.owner.id: "OWNER", admin.id: "ADMIN"}


@pytest.mark.parametrize(
    ("mutation", "document", "change"),
    [
        ("updateUser", UPDATE_USER, {"name": "Demoted"}),
        ("updateUser", UPDATE_USER, {"role": "VIEWER"}),
        ("reinviteUser", REINVITE_USER, {}),
    ],
)
async def test_an_admin_cannot_modify_the_owner_over_graphql(
    client: AsyncClient,
    factory: Factory,
    mutation: str,
    document: str,
    change: dict[str, Any],
) -> None:
    org = await factory.org()
    admin = await factory.member(org, "admin")
    before = await _users(client, org.owner)

    response = await graphql(
        client, admin, document, {"input": {"id": org.owner.id, **change}}
    )

    assert error_codes(response) == ["FORBIDDEN"]
    assert "Only the owner" in response.json()["errors"][0]["message"]
    assert response.json()["data"] == {mutation: None}
    assert await _users(client, org.owner) == before


async def test_the_owner_cannot_change_their_own_role_over_graphql(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await graphql(
        client, org.owner, UPDATE_USER, {"input": {"id": org.owner.id, "role": "ADMIN"}}
    )

    assert error_codes(response) == ["FORBIDDEN"]
    assert "own role" in response.json()["errors"][0]["message"]
    assert response.json()["data"] == {"updateUser": None}
    assert await _roles(client, org.owner) == {org.owner.id: "OWNER"}


TWO_CHANGES = """
mutation ($first: UpdateUserInput!, $second: UpdateUserInput!) {
  first: updateUser(input: $first) { user { id role } userErrors { code } }
  second: updateUser(input: $second) { user { id role } userErrors { code } }
}
"""


async def test_one_document_cannot_hand_ownership_over_twice(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")
    viewer = await factory.member(org, "viewer")
    variables = {
        "first": {"id": editor.id, "role": "OWNER"},
        "second": {"id": viewer.id, "role": "OWNER"},
    }

    response = await graphql(client, org.owner, TWO_CHANGES, variables)

    assert _codes(response) == ["FORBIDDEN"], response.text
    assert response.json()["errors"][0]["path"] == ["second"]
    assert response.json()["data"]["second"] is None
    assert await _roles(client, editor) == {
        org.owner.id: "ADMIN",
        editor.id: "OWNER",
        viewer.id: "VIEWER",
    }


@pytest.mark.parametrize("change", [{"role": "ADMIN"}, {"name": "Renamed"}])
async def test_the_previous_owner_cannot_modify_the_new_owner_in_the_same_document(
    client: AsyncClient, factory: Factory, change: dict[str, Any]
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")
    variables = {
        "first": {"id": editor.id, "role": "OWNER"},
        "second": {"id": editor.id, **change},
    }

    response = await graphql(client, org.owner, TWO_CHANGES, variables)

    assert _codes(response) == ["FORBIDDEN"], response.text
    assert response.json()["errors"][0]["path"] == ["second"]
    assert response.json()["data"]["second"] is None
    users = await _users(client, editor)
    assert users[editor.id]["role"] == "OWNER"
    assert users[editor.id]["name"] != "Renamed"
    assert users[org.owner.id]["role"] == "ADMIN"
