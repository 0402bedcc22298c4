"""What each REST route and GraphQL root field needs from its caller, written
from the table of roles and permissions in security.md, rest-api.md and
graphql.md.

Every route under /v1/admin and every root field has one row, naming the
permission it needs, or that anyone may call it, or that any signed-in member
may. A row also says how to call it so that nothing is written: ids that are
well-formed but name nothing, and bodies that are incomplete. A caller whose
role holds the permission then gets what the row's `answers` says (mostly 404
for the unknown id), while any other role gets 403: the role is checked before
anything is loaded.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from signal_admin.persistence.ids import new_id
from signal_admin.rest_compat import API_PREFIX
from signal_admin.security.permissions import Permission


class Access(StrEnum):
    """What a route needs when it needs no permission."""

    PUBLIC = "no token"
    SIGNED_IN = "any signed-in member"


Need = Permission | Access

ROLES = ("owner", "admin", "editor", "viewer")
_EDITORS = frozenset({"owner", "admin", "editor"})
_ADMINS = frozenset({"owner", "admin"})

# security.md, "Roles and permissions": which roles hold each permission.
ROLES_WITH: dict[Permission, frozenset[str]] = {
    Permission.READ_CONFIGURATION: frozenset(ROLES),
    Permission.USE_LIVE_DEBUGGER: frozenset(ROLES),
    Permission.WRITE_CONFIGURATION: _EDITORS,
    Permission.BUILD_COLLECTORS: _EDITORS,
    Permission.WRITE_TRANSFORMATIONS: _EDITORS,
    Permission.DELETE_CONFIGURATION: _ADMINS,
    Permission.WRITE_DATA_LAYER: _ADMINS,
    Permission.MANAGE_USERS: _ADMINS,
    Permission.READ_AUDIT_LOG: _ADMINS,
    Permission.MANAGE_ORGANIZATION: frozenset({"owner"}),
}


def permits(role: str, need: Need) -> bool:
    """Whether the table lets a member with `role` make a call that needs `need`."""
    if isinstance(need, Access):
        return True
    return role in ROLES_WITH[need]


# Well-formed ids that name nothing, filled into the paths' parameters.
UNKNOWN: dict[str, str] = {
    "pipeline_id": new_id("pip"),
    "template_id": new_id("tmpl"),
    "revision_id": new_id("rev"),
    "attachment_id": new_id("pi"),
    "user_id": new_id("usr"),
    "transformation_id": new_id("tr"),
    "build_id": new_id("bld"),
    "vendor_key": "no_such_vendor",
}
UNKNOWN_INVITE = "inv_" + "0" * 40
UNUSED_PASSWORD = "a password nobody has chosen"

Body = Any


def _unknown_login() -> Body:
    # A new email each time, so that repeated failures lock no address.
    return {"email": f"nobody-{uuid.uuid4().hex}@example.com", "password": "x" * 12}


@dataclass(frozen=True)
class Route:
    """A REST route: its method and its path under /v1/admin. Parameters are
    named as the code names them, to fill in UNKNOWN ids; only the path's
    shape is compared with the routes the app serves."""

    method: str
    path: str
    needs: Need
    body: Body | Callable[[], Body] = None
    params: dict[str, str] = field(default_factory=dict)
    answers: int | None = None
    """The status a caller who may call the route gets; None when the
    specification leaves it open (anything but a refusal)."""

    def __str__(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def url(self) -> str:
        return API_PREFIX + self.path.format(**UNKNOWN)

    def json(self) -> Body:
        return self.body() if callable(self.body) else self.body


def path_shape(path: str) -> str:
    """`path` with its parameters unnamed, so that the table and the code may
    name them differently."""
    return re.sub(r"\{[^}]*\}", "{}", path)


_PIPELINE = "/pipelines/{pipeline_id}"
_ATTACHMENT = "/pipelines/{pipeline_id}/integrations/{attachment_id}"
_TEMPLATE = "/integration-templates/{template_id}"
_REVISION = "/integration-templates/{template_id}/revisions/{revision_id}"
_USER = "/users/{user_id}"
_TRANSFORMATION = "/transformations/{transformation_id}"
_BUILDS = "/pipelines/{pipeline_id}/collector/builds"
_SOURCE = "/sources/{pipeline_id}"
_LEGACY_INTEGRATION = "/integrations/{attachment_id}"
_STEPS = {"steps": [{"type": "enrich", "fields": {"checked": True}}]}

_PUBLIC = Access.PUBLIC
_SIGNED_IN = Access.SIGNED_IN
_READ = Permission.READ_CONFIGURATION
_WRITE = Permission.WRITE_CONFIGURATION
_DELETE = Permission.DELETE_CONFIGURATION
_BUILD = Permission.BUILD_COLLECTORS
_USERS = Permission.MANAGE_USERS
_TRANSFORM = Permission.WRITE_TRANSFORMATIONS
_DATA_LAYER = Permission.WRITE_DATA_LAYER
_AUDIT = Permission.READ_AUDIT_LOG
_OWNER = Permission.MANAGE_ORGANIZATION

ROUTES: tuple[Route, ...] = (
    # Authentication and the caller's own profile.
    Route("POST", "/auth/login", _PUBLIC, _unknown_login, answers=401),
    Route("POST", "/auth/refresh", _PUBLIC, {"refresh_token": "x"}, answers=401),
    Route(
        "POST",
        "/auth/accept-invite",
        _PUBLIC,
        {"invite_token": UNKNOWN_INVITE, "password": UNUSED_PASSWORD},
        answers=401,
    ),
    Route("POST", "/auth/logout", _SIGNED_IN, {"refresh_token": "x"}, answers=401),
    Route("GET", "/me", _SIGNED_IN, answers=200),
    Route("PATCH", "/me", _SIGNED_IN, {}, answers=400),
    # The contract and the GraphQL endpoint, whose fields have rows of their own.
    Route("GET", "/openapi.json", _PUBLIC, answers=200),
    Route("GET", "/docs", _PUBLIC, answers=200),
    Route("GET", "/graphql", _PUBLIC, params={"query": "{ __typename }"}, answers=200),
    Route("POST", "/graphql", _PUBLIC, {"query": "{ __typename }"}, answers=200),
    Route("PUT", "/graphql", _PUBLIC, answers=405),
    Route("PATCH", "/graphql", _PUBLIC, answers=405),
    Route("DELETE", "/graphql", _PUBLIC, answers=405),
    # Pipelines.
    Route("GET", "/pipelines", _READ, answers=200),
    Route("POST", "/pipelines", _WRITE, {}, answers=400),
    Route("GET", _PIPELINE, _READ, answers=404),
    Route("PATCH", _PIPELINE, _WRITE, {"name": "Renamed"}, answers=404),
    Route("DELETE", _PIPELINE, _DELETE, answers=404),
    Route("POST", f"{_PIPELINE}/rotate-key", _WRITE, answers=404),
    Route("POST", f"{_PIPELINE}/test-events", _TRANSFORM, {"event": {}}, answers=404),
    # Collector builds.
    Route("POST", _BUILDS, _BUILD, answers=404),
    Route("GET", _BUILDS, _READ, answers=404),
    Route("GET", f"{_BUILDS}/{{build_id}}", _READ, answers=404),
    Route("GET", f"{_BUILDS}/{{build_id}}/script", _READ, answers=404),
    # Pipeline integrations: templates attached to pipelines.
    Route("GET", f"{_PIPELINE}/integrations", _READ, answers=404),
    Route(
        "POST",
        f"{_PIPELINE}/integrations",
        _WRITE,
        {"integration_id": UNKNOWN["template_id"]},
        answers=404,
    ),
    Route("GET", _ATTACHMENT, _READ, answers=404),
    Route("PATCH", _ATTACHMENT, _WRITE, {"enabled": False}, answers=404),
    Route("DELETE", _ATTACHMENT, _DELETE, answers=404),
    # The integration catalog.
    Route("GET", "/integration-catalog", _READ, answers=200),
    Route("GET", "/integration-catalog/{vendor_key}", _READ, answers=404),
    Route(
        "POST",
        "/integration-catalog/{vendor_key}/install",
        _WRITE,
        {"name": "Unknown vendor"},
        answers=404,
    ),
    # Integration templates and their revisions.
    Route("GET", "/integration-templates", _READ, answers=200),
    Route("POST", "/integration-templates", _WRITE, {}, answers=400),
    Route("GET", _TEMPLATE, _READ, answers=404),
    Route("PATCH", _TEMPLATE, _WRITE, {"name": "Renamed"}, answers=404),
    Route("DELETE", _TEMPLATE, _DELETE, answers=404),
    Route("GET", f"{_TEMPLATE}/revisions", _READ, answers=404),
    Route(
        "POST",
        f"{_TEMPLATE}/revisions",
        _WRITE,
        {"config": {}, "delivery_mode": "server_side"},
        answers=404,
    ),
    Route("GET", _REVISION, _READ, answers=404),
    # Revisions never change: every write answers 405, whoever asks.
    Route("PUT", _REVISION, _SIGNED_IN, {}, answers=405),
    Route("PATCH", _REVISION, _SIGNED_IN, {}, answers=405),
    Route("DELETE", _REVISION, _SIGNED_IN, answers=405),
    Route(
        "POST",
        f"{_TEMPLATE}/rollout",
        _WRITE,
        {"revision_id": UNKNOWN["revision_id"]},
        answers=404,
    ),
    # Transformations and their dry runs.
    Route("GET", "/transformations", _READ, answers=200),
    Route("POST", "/transformations", _TRANSFORM, {}, answers=400),
    Route("GET", _TRANSFORMATION, _READ, answers=404),
    Route("PATCH", _TRANSFORMATION, _TRANSFORM, {"name": "Renamed"}, answers=404),
    Route("DELETE", _TRANSFORMATION, _TRANSFORM, answers=404),
    Route(
        "POST",
        "/transformations/test",
        _TRANSFORM,
        {"config": _STEPS, "event": {}},
        answers=200,
    ),
    Route("POST", f"{_TRANSFORMATION}/test", _TRANSFORM, {"event": {}}, answers=404),
    # The data layer; an empty body changes nothing.
    Route("GET", "/data-layer", _READ, answers=200),
    Route("PUT", "/data-layer", _DATA_LAYER, {}, answers=400),
    # Users.
    Route("GET", "/users", _USERS, answers=200),
    Route("POST", "/users", _USERS, {}, answers=400),
    Route("GET", _USER, _USERS, answers=404),
    Route("PATCH", _USER, _USERS, {"name": "Renamed"}, answers=404),
    Route("DELETE", _USER, _USERS, answers=404),
    Route("POST", f"{_USER}/reinvite", _USERS, answers=404),
    # The organisation.
    Route("GET", "/org", _READ, answers=200),
    Route("PATCH", "/org", _OWNER, {"name": ""}, answers=422),
    # The audit log.
    Route("GET", "/audit-logs", _AUDIT, answers=200),
    # Sources (legacy): pipelines under their first name.
    Route("GET", "/sources", _READ, answers=200),
    Route("POST", "/sources", _WRITE, {}, answers=400),
    Route("GET", _SOURCE, _READ, answers=404),
    Route("PUT", _SOURCE, _WRITE, {"name": "Renamed"}, answers=404),
    Route("PATCH", _SOURCE, _WRITE, {"name": "Renamed"}, answers=404),
    Route("DELETE", _SOURCE, _DELETE, answers=404),
    Route("POST", f"{_SOURCE}/build", _BUILD, answers=404),
    # Integrations (legacy): pipeline integrations under their first name.
    Route("GET", "/integrations", _READ, answers=200),
    Route("POST", "/integrations", _WRITE, {}, answers=400),
    Route("GET", _LEGACY_INTEGRATION, _READ, answers=404),
    Route(
        "PUT",
        _LEGACY_INTEGRATION,
        _WRITE,
        {"name": "Renamed", "enabled": True, "config": {}},
        answers=404,
    ),
    Route("PATCH", _LEGACY_INTEGRATION, _WRITE, {"enabled": False}, answers=404),
    Route("DELETE", _LEGACY_INTEGRATION, _DELETE, answers=404),
    # Re-encryption of stored secrets under the current key.
    Route("POST", "/crypto/re-encrypt", _OWNER),
    Route("GET", "/crypto/re-encrypt", _OWNER),
)


SOCKET_ROUTES: tuple[Route, ...] = (
    # WebSockets authenticate in band, after the handshake, so the tests that
    # call each route over HTTP leave them out; their own tests check them.
    Route("WEBSOCKET", "/graphql", _SIGNED_IN),
    Route("WEBSOCKET", "/debug/live", Permission.USE_LIVE_DEBUGGER),
)

NULL = "null"
"""A query field's answer for an id that names nothing."""


@dataclass(frozen=True)
class RootField:
    """A field of the GraphQL Query, Mutation or Subscription type."""

    operation: str
    name: str
    needs: Need
    arguments: dict[str, Any] | Callable[[], dict[str, Any]] = field(
        default_factory=dict
    )
    answers: str | tuple[str, ...] | None = None
    """For a caller who may use the field: NULL when a query field answers
    null, or the codes of a mutation's userErrors; None when the
    specification leaves it open (anything but a refusal)."""

    def __str__(self) -> str:
        return f"{self.operation} {self.name}"

    def variables(self) -> dict[str, Any]:
        return self.arguments() if callable(self.arguments) else self.arguments


def _unknown_sign_in() -> dict[str, Any]:
    return {"input": _unknown_login()}


def _query(
    name: str, needs: Need, answers: str | None = None, /, **arguments: Any
) -> RootField:
    return RootField("query", name, needs, arguments, answers)


def _mutation(name: str, needs: Need, /, *user_errors: str, **values: Any) -> RootField:
    """A mutation called with `values` as its input, answering a caller who
    may call it with `user_errors`."""
    return RootField("mutation", name, needs, {"input": values}, user_errors or None)


_NOT_FOUND = "NOT_FOUND"
_REQUIRED = "REQUIRED"

SUBSCRIPTION_FIELDS: tuple[RootField, ...] = (
    # Subscriptions run over the WebSocket, not over HTTP, so the tests that
    # post each root field leave them out; tests/e2e/test_graphql_subscriptions.py
    # checks who may open them.
    RootField("subscription", "liveEvents", Permission.USE_LIVE_DEBUGGER),
    RootField("subscription", "auditLogAdded", _AUDIT),
)

ROOT_FIELDS: tuple[RootField, ...] = (
    # Queries.
    _query("me", _SIGNED_IN),
    _query("organization", _READ),
    _query("pipeline", _READ, NULL, id=UNKNOWN["pipeline_id"]),
    _query("pipelines", _READ),
    _query("catalogVendors", _READ),
    _query("catalogVendor", _READ, NULL, key=UNKNOWN["vendor_key"]),
    _query("integrationTemplate", _READ, NULL, id=UNKNOWN["template_id"]),
    _query("integrationTemplates", _READ),
    _query("transformation", _READ, NULL, id=UNKNOWN["transformation_id"]),
    _query("transformations", _READ),
    _query("dataLayer", _READ),
    _query("user", _USERS, NULL, id=UNKNOWN["user_id"]),
    _query("users", _USERS),
    _query("auditLogs", _AUDIT),
    _query("reEncryption", _OWNER),
    # Authentication and the caller's own profile.
    RootField("mutation", "login", _PUBLIC, _unknown_sign_in),
    _mutation("refreshToken", _PUBLIC, refreshToken="x"),
    _mutation(
        "acceptInvite",
        _PUBLIC,
        "INVALID_TOKEN",
        inviteToken=UNKNOWN_INVITE,
        password=UNUSED_PASSWORD,
    ),
    _mutation("logout", _SIGNED_IN, refreshToken="x"),
    _mutation("updateMe", _SIGNED_IN),
    # Pipelines.
    _mutation("createPipeline", _WRITE, _REQUIRED, _REQUIRED),
    _mutation(
        "updatePipeline", _WRITE, _NOT_FOUND, id=UNKNOWN["pipeline_id"], name="New"
    ),
    _mutation("deletePipeline", _DELETE, _NOT_FOUND, id=UNKNOWN["pipeline_id"]),
    _mutation("rotatePipelineKey", _WRITE, _NOT_FOUND, id=UNKNOWN["pipeline_id"]),
    _mutation("buildCollector", _BUILD, _NOT_FOUND, pipelineId=UNKNOWN["pipeline_id"]),
    _mutation(
        "sendTestEvents",
        _TRANSFORM,
        _NOT_FOUND,
        pipelineId=UNKNOWN["pipeline_id"],
        event={},
    ),
    # Pipeline integrations.
    _mutation(
        "attachIntegration",
        _WRITE,
        _NOT_FOUND,
        pipelineId=UNKNOWN["pipeline_id"],
        integrationId=UNKNOWN["template_id"],
    ),
    _mutation(
        "updatePipelineIntegration",
        _WRITE,
        _NOT_FOUND,
        pipelineId=UNKNOWN["pipeline_id"],
        id=UNKNOWN["attachment_id"],
        enabled=False,
    ),
    _mutation(
        "detachIntegration",
        _DELETE,
        _NOT_FOUND,
        pipelineId=UNKNOWN["pipeline_id"],
        id=UNKNOWN["attachment_id"],
    ),
    # The catalog, templates and revisions.
    _mutation(
        "installCatalogIntegration",
        _WRITE,
        _NOT_FOUND,
        vendorKey=UNKNOWN["vendor_key"],
        name="Unknown vendor",
    ),
    _mutation("createIntegrationTemplate", _WRITE, _REQUIRED, _REQUIRED),
    _mutation(
        "updateIntegrationTemplate",
        _WRITE,
        _NOT_FOUND,
        id=UNKNOWN["template_id"],
        name="New",
    ),
    _mutation(
        "deleteIntegrationTemplate", _DELETE, _NOT_FOUND, id=UNKNOWN["template_id"]
    ),
    _mutation(
        "createIntegrationRevision",
        _WRITE,
        _NOT_FOUND,
        templateId=UNKNOWN["template_id"],
        config={},
    ),
    _mutation(
        "rolloutRevision",
        _WRITE,
        _NOT_FOUND,
        templateId=UNKNOWN["template_id"],
        revisionId=UNKNOWN["revision_id"],
    ),
    # Transformations and the data layer.
    _mutation("createTransformation", _TRANSFORM, _REQUIRED, _REQUIRED),
    _mutation(
        "updateTransformation",
        _TRANSFORM,
        _NOT_FOUND,
        id=UNKNOWN["transformation_id"],
        name="New",
    ),
    _mutation(
        "deleteTransformation", _TRANSFORM, _NOT_FOUND, id=UNKNOWN["transformation_id"]
    ),
    _mutation(
        "testTransformation",
        _TRANSFORM,
        _NOT_FOUND,
        id=UNKNOWN["transformation_id"],
        event={},
    ),
    _mutation("updateDataLayer", _DATA_LAYER, _REQUIRED),
    # Users.
    _mutation("createUser", _USERS, _REQUIRED, _REQUIRED, _REQUIRED),
    _mutation("updateUser", _USERS, _NOT_FOUND, id=UNKNOWN["user_id"], name="New"),
    _mutation("deleteUser", _USERS, _NOT_FOUND, id=UNKNOWN["user_id"]),
    _mutation("reinviteUser", _USERS, _NOT_FOUND, id=UNKNOWN["user_id"]),
    # The organisation and its secrets.
    _mutation(
        "updateOrganization",
        _OWNER,
        "PRECONDITION_FAILED",
        name="Renamed",
        expectedVersion=0,
    ),
    _mutation("startReEncryption", _OWNER),
)
