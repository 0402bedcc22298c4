"""Users over GraphQL: the users connection and user field, createUser,
updateUser, deleteUser, reinviteUser, acceptInvite and updateMe, with
userErrors for what the caller can fix and top-level errors for refusals."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from httpx import AsyncClient, Response

from tests.api.test_graphql_pipelines import error_codes, graphql, user_errors
from tests.factories import PASSWORD, Factory, Member, unique_email
from tests.helpers import audit_entries, bearer

GRAPHQL = "/v1/admin/graphql"
USER_FIELDS = "id orgId email name role status lastLoginAt version createdAt updatedAt"
USER = f"query ($id: ID!) {{ user(id: $id) {{ {USER_FIELDS} }} }}"
PAGE = """
query ($first: Int, $after: String, $filter: UserFilter) {
  users(first: $first, after: $after, filter: $filter) {
    edges { cursor node { id role status } }
    pageInfo { hasNextPage endCursor }
    totalCount
  }
}
"""
CREATE = f"""
mutation ($input: CreateUserInput!) {{
  createUser(input: $input) {{
    user {{ {USER_FIELDS} }}
    inviteToken
    userErrors {{ field code message }}
  }}
}}
"""
UPDATE = """
mutation ($input: UpdateUserInput!) {
  updateUser(input: $input) {
    user { id name role status version }
    userErrors { field code message }
  }
}
"""
DELETE = """
mutation ($input: DeleteUserInput!) {
  deleteUser(input: $input) { deletedUserId userErrors { code } }
}
"""
REINVITE = """
mutation ($input: ReinviteUserInput!) {
  reinviteUser(input: $input) {
    user { id status }
    inviteToken
    userErrors { field code message }
  }
}
"""
ACCEPT = """
mutation ($input: AcceptInviteInput!) {
  acceptInvite(input: $input) {
    tokenPair { accessToken refreshToken tokenType expiresIn }
    userErrors { field code message }
  }
}
"""
UPDATE_ME = """
mutation ($input: UpdateMeInput!) {
  updateMe(input: $input) { user { id name version } userErrors { field code } }
}
"""
ME = "{ me { id email name status lastLoginAt } }"
NEW_PASSWORD = "a password chosen on accepting"


async def anonymous(
    client: AsyncClient, query: str, variables: dict[str, Any]
) -> Response:
    return await client.post(GRAPHQL, json={"query": query, "variables": variables})


async def create(client: AsyncClient, member: Member, **fields: Any) -> dict[str, Any]:
    values = {
        "email": unique_email("new"),
        "name": f"Person {uuid.uuid4().hex[:6]}",
        "role": "EDITOR",
        **fields,
    }
    response = await graphql(client, member, CREATE, {"input": values})
    created: dict[str, Any] = response.json()["data"]["createUser"]
    assert created["userErrors"] == [], created
    return created


def node_ids(response: Response) -> list[str]:
    return [edge["node"]["id"] for edge in response.json()["data"]["users"]["edges"]]


# Reading


async def test_users_lists_the_orgs_users_with_a_total_count(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await create(client, org.owner)
    await factory.org()

    response = await graphql(client, org.owner, PAGE)

    users = response.json()["data"]["users"]
    assert node_ids(response) == [org.owner.id, created["user"]["id"]]
    assert users["totalCount"] == 2
    assert users["pageInfo"]["hasNextPage"] is False


async def test_users_filters_and_pages(client: AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    viewers = [
        (await create(client, org.owner, role="VIEWER"))["user"]["id"] for _ in range(3)
    ]
    await create(client, org.owner, role="ADMIN", password=PASSWORD)
    variables: dict[str, Any] = {"first": 2, "filter": {"role": "VIEWER"}}

    first = await graphql(client, org.owner, PAGE, variables)
    after = first.json()["data"]["users"]["pageInfo"]["endCursor"]
    second = await graphql(client, org.owner, PAGE, {**variables, "after": after})

    assert node_ids(first) + node_ids(second) == viewers
    assert first.json()["data"]["users"]["totalCount"] == 3
    invited = await graphql(
        client, org.owner, PAGE, {"filter": {"status": "INVITED", "q": "person"}}
    )
    assert node_ids(invited) == viewers


async def test_user_answers_one_user(client: AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    created = await create(client, org.owner, password=PASSWORD)

    response = await graphql(client, org.owner, USER, {"id": created["user"]["id"]})

    assert response.json()["data"]["user"] == created["user"]
    assert created["user"]["status"] == "ACTIVE"
    assert created["inviteToken"] is None


@pytest.mark.parametrize("user_id", ["usr_01J00000000000000000000000", "nope"])
async def test_user_of_an_unknown_id_is_null(
    client: AsyncClient, factory: Factory, user_id: str
) -> None:
    org = await factory.org()

    response = await graphql(client, org.owner, USER, {"id": user_id})

    assert response.json()["data"] == {"user": None}
    assert "errors" not in response.json()


async def test_another_orgs_user_is_null_and_never_listed(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    other = await factory.org()

    one = await graphql(client, org.owner, USER, {"id": other.owner.id})
    page = await graphql(client, org.owner, PAGE)

    assert one.json()["data"]["user"] is None
    assert other.owner.id not in node_ids(page)


@pytest.mark.parametrize("role", ["editor", "viewer"])
async def test_roles_that_may_not_read_users_are_refused(
    client: AsyncClient, factory: Factory, role: str
) -> None:
    org = await factory.org()
    member = await factory.member(org, role)

    page = await graphql(client, member, PAGE)
    one = await graphql(client, member, USER, {"id": org.owner.id})

    assert error_codes(page) == error_codes(one) == ["FORBIDDEN"]
    assert page.json()["data"] is None
    assert one.json()["data"] == {"user": None}


async def test_other_users_email_and_last_sign_in_are_hidden_from_a_viewer(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    viewer = await factory.member(org, "viewer")
    created = await client.post(
        "/v1/admin/integration-templates",
        json={"name": "Hooks", "vendor": "webhook"},
        headers=org.owner.headers,
    )
    author = """
    query ($id: ID!) {
      integrationTemplate(id: $id) {
        latestRevision { createdBy { id email lastLoginAt } }
      }
    }
    """
    variables = {"id": created.json()["template"]["id"]}

    as_viewer = await graphql(client, viewer, author, variables)
    as_owner = await graphql(client, org.owner, author, variables)
    me = await graphql(client, viewer, ME)

    seen = as_viewer.json()["data"]["integrationTemplate"]["latestRevision"]
    assert seen["createdBy"] == {"id": org.owner.id, "email": None, "lastLoginAt": None}
    shown = as_owner.json()["data"]["integrationTemplate"]["latestRevision"]
    assert shown["createdBy"]["email"] == org.owner.email
    assert shown["createdBy"]["lastLoginAt"] is not None
    assert me.json()["data"]["me"]["email"] == viewer.email


# createUser


async def test_create_user_without_a_password_answers_an_invite_token(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    created = await create(client, org.owner, email="  Invited@Example.COM ")

    assert created["user"]["status"] == "INVITED"
    assert created["user"]["email"] == "invited@example.com"
    assert created["inviteToken"].startswith("inv_")


async def test_create_user_reports_every_problem_at_once(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    fields = {"email": "nope", "name": "x" * 201, "password": "short"}

    response = await graphql(client, org.owner, CREATE, {"input": fields})

    assert response.json()["data"]["createUser"]["user"] is None
    assert sorted(user_errors(response, "createUser")) == [
        (["email"], "INVALID"),
        (["name"], "TOO_LONG"),
        (["password"], "TOO_SHORT"),
        (["role"], "REQUIRED"),
    ]


async def test_create_user_reports_a_taken_email(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    fields = {"email": org.owner.email.upper(), "name": "Twin", "role": "VIEWER"}

    response = await graphql(client, org.owner, CREATE, {"input": fields})

    assert user_errors(response, "createUser") == [(None, "ALREADY_EXISTS")]


async def test_create_user_never_makes_an_owner(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    fields = {"email": unique_email("x"), "name": "Second", "role": "OWNER"}

    response = await graphql(client, org.owner, CREATE, {"input": fields})

    assert error_codes(response) == ["FORBIDDEN"]
    assert response.json()["data"] == {"createUser": None}


async def test_an_editor_may_not_create_a_user(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")
    fields = {"email": unique_email("x"), "name": "X", "role": "VIEWER"}

    response = await graphql(client, editor, CREATE, {"input": fields})

    assert error_codes(response) == ["FORBIDDEN"]
    assert node_ids(await graphql(client, org.owner, PAGE)) == [org.owner.id, editor.id]


async def test_create_user_is_audited(client: AsyncClient, factory: Factory) -> None:
    org = await factory.org()

    created = await create(client, org.owner)

    [entry] = await audit_entries(factory.app, org.id, "user.invited")
    assert entry.resource_id == created["user"]["id"]
    assert created["inviteToken"] not in str(entry.changes)


# updateUser


async def test_update_user_changes_the_named_fields(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")

    response = await graphql(
        client,
        org.owner,
        UPDATE,
        {"input": {"id": editor.id, "role": "ADMIN", "expectedVersion": 2}},
    )

    updated = response.json()["data"]["updateUser"]
    assert updated["userErrors"] == []
    assert updated["user"]["id"] == editor.id
    assert updated["user"]["role"] == "ADMIN"
    assert updated["user"]["status"] == "ACTIVE"
    # Version 2 came from signing in, which records lastLoginAt.
    assert updated["user"]["version"] == 3


async def test_update_user_with_a_stale_version_is_a_user_error(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")

    response = await graphql(
        client,
        org.owner,
        UPDATE,
        {"input": {"id": editor.id, "name": "X", "expectedVersion": 1}},
    )

    assert user_errors(response, "updateUser") == [(None, "PRECONDITION_FAILED")]


async def test_update_user_reports_an_invalid_status_change(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    invited = await create(client, org.owner)

    response = await graphql(
        client,
        org.owner,
        UPDATE,
        {"input": {"id": invited["user"]["id"], "status": "ACTIVE"}},
    )

    assert user_errors(response, "updateUser") == [(["status"], "INVALID")]


async def test_update_user_of_an_unknown_id_is_a_user_error(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    other = await factory.org()

    response = await graphql(
        client, org.owner, UPDATE, {"input": {"id": other.owner.id, "name": "X"}}
    )

    assert user_errors(response, "updateUser") == [(None, "NOT_FOUND")]


async def test_changing_your_own_role_is_refused_at_the_top_level(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org, "admin")

    response = await graphql(
        client, admin, UPDATE, {"input": {"id": admin.id, "role": "VIEWER"}}
    )

    assert error_codes(response) == ["FORBIDDEN"]
    assert "own role" in response.json()["errors"][0]["message"]
    assert response.json()["data"] == {"updateUser": None}


async def test_an_admin_cannot_change_the_owner(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org, "admin")

    response = await graphql(
        client, admin, UPDATE, {"input": {"id": org.owner.id, "status": "DISABLED"}}
    )

    assert error_codes(response) == ["FORBIDDEN"]
    me = await graphql(client, org.owner, ME)
    assert me.json()["data"]["me"]["status"] == "ACTIVE"


async def test_an_admin_cannot_make_someone_owner(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org, "admin")
    editor = await factory.member(org, "editor")

    response = await graphql(
        client, admin, UPDATE, {"input": {"id": editor.id, "role": "OWNER"}}
    )

    assert error_codes(response) == ["FORBIDDEN"]


async def test_the_owner_hands_ownership_over_and_becomes_an_admin(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")

    response = await graphql(
        client, org.owner, UPDATE, {"input": {"id": editor.id, "role": "OWNER"}}
    )

    assert response.json()["data"]["updateUser"]["user"]["role"] == "OWNER"
    roles = await graphql(client, editor, "{ users { edges { node { id role } } } }")
    nodes = [edge["node"] for edge in roles.json()["data"]["users"]["edges"]]
    assert nodes == [
        {"id": org.owner.id, "role": "ADMIN"},
        {"id": editor.id, "role": "OWNER"},
    ]


async def test_the_owner_cannot_be_disabled(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await graphql(
        client,
        org.owner,
        UPDATE,
        {"input": {"id": org.owner.id, "status": "DISABLED"}},
    )

    assert error_codes(response) == ["FORBIDDEN"]


async def test_disabling_a_user_signs_them_out(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")

    await graphql(
        client, org.owner, UPDATE, {"input": {"id": editor.id, "status": "DISABLED"}}
    )

    response = await graphql(client, editor, ME)
    assert error_codes(response) == ["INVALID_TOKEN"]


# deleteUser


async def test_delete_user_removes_the_user(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")

    response = await graphql(client, org.owner, DELETE, {"input": {"id": editor.id}})

    assert response.json()["data"]["deleteUser"] == {
        "deletedUserId": editor.id,
        "userErrors": [],
    }
    one = await graphql(client, org.owner, USER, {"id": editor.id})
    assert one.json()["data"]["user"] is None
    assert error_codes(await graphql(client, editor, ME)) == ["INVALID_TOKEN"]


async def test_delete_user_with_a_stale_version_is_a_user_error(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")

    response = await graphql(
        client,
        org.owner,
        DELETE,
        {"input": {"id": editor.id, "expectedVersion": 1}},
    )

    assert response.json()["data"]["deleteUser"] == {
        "deletedUserId": None,
        "userErrors": [{"code": "PRECONDITION_FAILED"}],
    }


async def test_the_owner_cannot_be_deleted(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org, "admin")

    by_owner = await graphql(client, org.owner, DELETE, {"input": {"id": org.owner.id}})
    by_admin = await graphql(client, admin, DELETE, {"input": {"id": org.owner.id}})

    assert error_codes(by_owner) == error_codes(by_admin) == ["FORBIDDEN"]
    assert node_ids(await graphql(client, org.owner, PAGE))[0] == org.owner.id


@pytest.mark.parametrize(
    ("user_id", "shown"),
    [("", "''"), ("usr_unknown", "usr_unknown"), ("a b", "'a b'")],
)
async def test_an_id_that_names_no_user_is_quoted_when_it_is_not_plain(
    client: AsyncClient, factory: Factory, user_id: str, shown: str
) -> None:
    org = await factory.org()

    response = await graphql(client, org.owner, REINVITE, {"input": {"id": user_id}})

    errors = response.json()["data"]["reinviteUser"]["userErrors"]
    assert [(error["code"], error["message"]) for error in errors] == [
        ("NOT_FOUND", f"User {shown} was not found.")
    ]


# reinviteUser and acceptInvite


async def test_reinvite_user_replaces_the_invite_token(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await create(client, org.owner)
    user_id = created["user"]["id"]

    response = await graphql(client, org.owner, REINVITE, {"input": {"id": user_id}})

    reinvited = response.json()["data"]["reinviteUser"]
    assert reinvited["user"] == {"id": user_id, "status": "INVITED"}
    assert reinvited["inviteToken"] != created["inviteToken"]
    old = await anonymous(
        client,
        ACCEPT,
        {"input": {"inviteToken": created["inviteToken"], "password": NEW_PASSWORD}},
    )
    assert user_errors(old, "acceptInvite") == [(None, "INVALID_TOKEN")]


async def test_reinvite_user_of_an_active_user_is_a_user_error(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")

    response = await graphql(client, org.owner, REINVITE, {"input": {"id": editor.id}})

    assert user_errors(response, "reinviteUser") == [(["status"], "INVALID")]


async def test_accept_invite_signs_the_invited_user_in(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await create(client, org.owner, name="Given")
    variables = {
        "input": {
            "inviteToken": created["inviteToken"],
            "password": NEW_PASSWORD,
            "name": "Chosen",
        }
    }

    response = await anonymous(client, ACCEPT, variables)

    accepted = response.json()["data"]["acceptInvite"]
    assert accepted["userErrors"] == []
    assert accepted["tokenPair"]["tokenType"] == "Bearer"
    me = await client.post(
        GRAPHQL,
        json={"query": ME},
        headers=bearer(accepted["tokenPair"]["accessToken"]),
    )
    assert me.json()["data"]["me"]["id"] == created["user"]["id"]
    assert me.json()["data"]["me"]["name"] == "Chosen"
    assert me.json()["data"]["me"]["status"] == "ACTIVE"


async def test_accept_invite_reports_a_short_password(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await create(client, org.owner)

    response = await anonymous(
        client,
        ACCEPT,
        {"input": {"inviteToken": created["inviteToken"], "password": "short"}},
    )

    assert response.json()["data"]["acceptInvite"]["tokenPair"] is None
    assert user_errors(response, "acceptInvite") == [(["password"], "INVALID_LENGTH")]


async def test_accept_invite_with_an_unknown_token_is_a_user_error(
    client: AsyncClient,
) -> None:
    response = await anonymous(
        client,
        ACCEPT,
        {"input": {"inviteToken": "inv_unknown", "password": NEW_PASSWORD}},
    )

    assert user_errors(response, "acceptInvite") == [(None, "INVALID_TOKEN")]


# updateMe


async def test_update_me_changes_the_callers_name_whatever_their_role(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    viewer = await factory.member(org, "viewer")

    response = await graphql(client, viewer, UPDATE_ME, {"input": {"name": "Vee"}})

    updated = response.json()["data"]["updateMe"]
    assert updated["user"]["id"] == viewer.id
    assert updated["user"]["name"] == "Vee"
    assert updated["userErrors"] == []


async def test_update_me_changes_the_password_and_signs_out_other_sessions(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")
    other = await factory.sign_in(
        Member(editor.id, editor.org_id, editor.email, editor.role)
    )

    response = await graphql(
        client,
        editor,
        UPDATE_ME,
        {"input": {"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}},
    )

    assert response.json()["data"]["updateMe"]["userErrors"] == []
    assert error_codes(await graphql(client, other, ME)) == ["INVALID_TOKEN"]
    still = await graphql(client, editor, ME)
    assert still.json()["data"]["me"]["id"] == editor.id


async def test_update_me_cannot_change_the_role(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    viewer = await factory.member(org, "viewer")

    response = await graphql(client, viewer, UPDATE_ME, {"input": {"role": "OWNER"}})

    assert error_codes(response) == ["GRAPHQL_VALIDATION_FAILED"]
