"""Every REST write that changes something leaves audit entries, one per
resource it changed, all carrying the request's id, the caller, their address
and their user agent; a route that writes nothing says why in `UNAUDITED`.

The table is checked against the app's routes, so a write route added later
fails here until it is listed with the entries it must leave.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from signal_admin.rest_compat import API_PREFIX
from tests.factories import PASSWORD, Factory, Member, Org, unique_email
from tests.helpers import audit_entries

USER_AGENT = "audit-sweep/1.0"
MAPPING = {"defaults": {"action": "pass"}}
STEPS = {"steps": [{"type": "enrich", "fields": {"source": "site"}}]}
NEW_PASSWORD = "a brand new passphrase"


@dataclass
class World:
    """One organisation with one of everything, made through the API."""

    org: Org
    editor: Member
    pipeline: dict[str, Any]
    template: dict[str, Any]
    revision: dict[str, Any]
    attachment: dict[str, Any]
    invited: dict[str, Any]
    # A template with two revisions that no pipeline uses, and a
    # transformation of its own.
    spare_template_id: str
    transformation: dict[str, Any]


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: dict[str, Any] | None = None
    # Who calls (the owner when None), and who the entries name as the actor
    # (the caller when None).
    member: Member | None = None
    actor_id: str | None = None


Scenario = Callable[[World], Call]


def _template_id(world: World) -> str:
    return str(world.template["id"])


SCENARIOS: dict[tuple[str, str], tuple[Scenario, list[str]]] = {
    ("POST", "/auth/login"): (
        lambda w: Call(
            "POST",
            "/auth/login",
            {"email": w.editor.email, "password": PASSWORD},
            actor_id=w.editor.id,
        ),
        ["auth.login"],
    ),
    ("POST", "/auth/logout"): (
        lambda w: Call(
            "POST", "/auth/logout", {"refresh_token": w.editor.refresh_token}, w.editor
        ),
        ["auth.logout"],
    ),
    ("POST", "/auth/accept-invite"): (
        lambda w: Call(
            "POST",
            "/auth/accept-invite",
            {"invite_token": w.invited["invite_token"], "password": NEW_PASSWORD},
            actor_id=w.invited["id"],
        ),
        # Accepting signs the new user in.
        ["user.invite_accepted", "auth.login"],
    ),
    ("PATCH", "/me"): (
        lambda w: Call(
            "PATCH",
            "/me",
            {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            w.editor,
        ),
        ["user.password_changed"],
    ),
    ("PATCH", "/org"): (
        lambda w: Call("PATCH", "/org", {"name": "Renamed org"}),
        ["organization.updated"],
    ),
    ("POST", "/pipelines"): (
        lambda w: Call("POST", "/pipelines", {"name": "Another site", "type": "web"}),
        ["pipeline.created"],
    ),
    ("PATCH", "/pipelines/{pipeline_id}"): (
        lambda w: Call("PATCH", f"/pipelines/{w.pipeline['id']}", {"labels": ["a"]}),
        ["pipeline.updated"],
    ),
    ("DELETE", "/pipelines/{pipeline_id}"): (
        lambda w: Call("DELETE", f"/pipelines/{w.pipeline['id']}"),
        ["pipeline.deleted", "pipeline_integration.deleted"],
    ),
    ("POST", "/pipelines/{pipeline_id}/rotate-key"): (
        lambda w: Call("POST", f"/pipelines/{w.pipeline['id']}/rotate-key", {}),
        ["pipeline.key_rotated"],
    ),
    ("POST", "/pipelines/{pipeline_id}/collector/builds"): (
        lambda w: Call("POST", f"/pipelines/{w.pipeline['id']}/collector/builds"),
        ["pipeline.collector_built"],
    ),
    ("POST", "/sources"): (
        lambda w: Call("POST", "/sources", {"name": "Another source"}),
        ["source.created"],
    ),
    ("PUT", "/sources/{pipeline_id}"): (
        lambda w: Call("PUT", f"/sources/{w.pipeline['id']}", {"name": "Replaced"}),
        ["source.updated"],
    ),
    ("PATCH", "/sources/{pipeline_id}"): (
        lambda w: Call(
            "PATCH", f"/sources/{w.pipeline['id']}", {"domain": "shop.example.com"}
        ),
        ["source.updated"],
    ),
    ("DELETE", "/sources/{pipeline_id}"): (
        lambda w: Call("DELETE", f"/sources/{w.pipeline['id']}"),
        ["source.deleted", "pipeline_integration.deleted"],
    ),
    ("POST", "/sources/{pipeline_id}/build"): (
        lambda w: Call("POST", f"/sources/{w.pipeline['id']}/build"),
        ["source.collector_built"],
    ),
    ("POST", "/integrations"): (
        lambda w: Call(
            "POST",
            "/integrations",
            {
                "source_id": w.pipeline["id"],
                "type": "ga4",
                "name": "Legacy GA4",
                "config": {"measurement_id": "G-ABC123", "api_secret": "s3cret"},
            },
        ),
        [
            "integration.created",
            "integration_template.created",
            "integration_revision.created",
        ],
    ),
    ("PUT", "/integrations/{attachment_id}"): (
        lambda w: Call(
            "PUT",
            f"/integrations/{w.attachment['id']}",
            {"name": "Legacy renamed", "config": {**MAPPING, "url": "https://x.test"}},
        ),
        [
            "integration.updated",
            "integration_template.updated",
            "integration_revision.created",
        ],
    ),
    ("PATCH", "/integrations/{attachment_id}"): (
        lambda w: Call(
            "PATCH", f"/integrations/{w.attachment['id']}", {"enabled": False}
        ),
        ["integration.updated"],
    ),
    ("DELETE", "/integrations/{attachment_id}"): (
        lambda w: Call("DELETE", f"/integrations/{w.attachment['id']}"),
        ["integration.deleted"],
    ),
    ("POST", "/pipelines/{pipeline_id}/integrations"): (
        lambda w: Call(
            "POST",
            f"/pipelines/{w.pipeline['id']}/integrations",
            {"integration_id": w.spare_template_id},
        ),
        ["pipeline_integration.created"],
    ),
    ("PATCH", "/pipelines/{pipeline_id}/integrations/{attachment_id}"): (
        lambda w: Call(
            "PATCH",
            f"/pipelines/{w.pipeline['id']}/integrations/{w.attachment['id']}",
            {"enabled": False},
        ),
        ["pipeline_integration.updated"],
    ),
    ("DELETE", "/pipelines/{pipeline_id}/integrations/{attachment_id}"): (
        lambda w: Call(
            "DELETE",
            f"/pipelines/{w.pipeline['id']}/integrations/{w.attachment['id']}",
        ),
        ["pipeline_integration.deleted"],
    ),
    ("POST", "/integration-catalog/{vendor_key}/install"): (
        lambda w: Call(
            "POST",
            "/integration-catalog/ga4/install",
            {
                "name": "GA4 shop",
                "config": {"measurement_id": "G-ABC123", "api_secret": "s3cret"},
            },
        ),
        ["integration_template.created", "integration_revision.created"],
    ),
    ("POST", "/integration-templates"): (
        lambda w: Call(
            "POST",
            "/integration-templates",
            {"name": "Hand made", "vendor": "webhook", "config": MAPPING},
        ),
        ["integration_template.created", "integration_revision.created"],
    ),
    ("PATCH", "/integration-templates/{template_id}"): (
        lambda w: Call(
            "PATCH", f"/integration-templates/{_template_id(w)}", {"name": "Renamed"}
        ),
        ["integration_template.updated"],
    ),
    ("DELETE", "/integration-templates/{template_id}"): (
        lambda w: Call("DELETE", f"/integration-templates/{w.spare_template_id}"),
        [
            "integration_template.deleted",
            "integration_revision.deleted",
            "integration_revision.deleted",
            "transformation.deleted",
        ],
    ),
    ("POST", "/integration-templates/{template_id}/revisions"): (
        lambda w: Call(
            "POST",
            f"/integration-templates/{_template_id(w)}/revisions",
            {"config": MAPPING},
        ),
        ["integration_revision.created"],
    ),
    ("POST", "/integration-templates/{template_id}/rollout"): (
        lambda w: Call(
            "POST",
            f"/integration-templates/{_template_id(w)}/rollout",
            {"revision_id": w.revision["id"]},
        ),
        ["pipeline_integration.updated"],
    ),
    ("POST", "/transformations"): (
        lambda w: Call("POST", "/transformations", {"name": "New", "config": STEPS}),
        ["transformation.created"],
    ),
    ("PATCH", "/transformations/{transformation_id}"): (
        lambda w: Call(
            "PATCH", f"/transformations/{w.transformation['id']}", {"enabled": False}
        ),
        ["transformation.updated"],
    ),
    ("DELETE", "/transformations/{transformation_id}"): (
        lambda w: Call("DELETE", f"/transformations/{w.transformation['id']}"),
        ["transformation.deleted"],
    ),
    ("PUT", "/data-layer"): (
        lambda w: Call(
            "PUT",
            "/data-layer",
            {"config": {"pii_rules": {"hash_fields": ["traits.email"]}}},
        ),
        ["data_layer.updated"],
    ),
    ("POST", "/users"): (
        lambda w: Call(
            "POST",
            "/users",
            {"email": unique_email("viewer"), "name": "New", "role": "viewer"},
        ),
        ["user.invited"],
    ),
    ("PATCH", "/users/{user_id}"): (
        lambda w: Call("PATCH", f"/users/{w.editor.id}", {"role": "viewer"}),
        ["user.updated"],
    ),
    ("DELETE", "/users/{user_id}"): (
        lambda w: Call("DELETE", f"/users/{w.editor.id}"),
        ["user.deleted"],
    ),
    ("POST", "/users/{user_id}/reinvite"): (
        lambda w: Call("POST", f"/users/{w.invited['id']}/reinvite", {}),
        ["user.reinvited"],
    ),
    ("POST", "/crypto/re-encrypt"): (
        lambda w: Call("POST", "/crypto/re-encrypt", {}),
        ["crypto.re_encrypt_started"],
    ),
}

# Write routes that change nothing on the record, and why.
UNAUDITED = {
    ("POST", "/auth/refresh"): "swaps a spent token for a new pair in one session; "
    "security.md names no action for it",
    ("PUT", "/integration-templates/{template_id}/revisions/{revision_id}"): (
        "revisions are immutable: always 405"
    ),
    ("PATCH", "/integration-templates/{template_id}/revisions/{revision_id}"): (
        "revisions are immutable: always 405"
    ),
    ("DELETE", "/integration-templates/{template_id}/revisions/{revision_id}"): (
        "revisions are immutable: always 405"
    ),
    ("POST", "/pipelines/{pipeline_id}/test-events"): (
        "a dry run: nothing is written or delivered"
    ),
    ("POST", "/transformations/test"): "a dry run: nothing is written",
    ("POST", "/transformations/{transformation_id}/test"): (
        "a dry run: nothing is written"
    ),
}


def test_every_write_route_is_in_the_table(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    writes = {
        (method.upper(), path.removeprefix(API_PREFIX))
        for path, operations in paths.items()
        for method in operations
        if method != "get"
    }
    listed = set(SCENARIOS) | set(UNAUDITED)

    assert sorted(writes - listed) == [], "write routes with no audit expectation"
    assert sorted(listed - writes) == [], "rows naming routes that do not exist"


@pytest.mark.parametrize(
    "route", sorted(SCENARIOS), ids=[" ".join(route) for route in sorted(SCENARIOS)]
)
async def test_a_write_leaves_its_entries_with_the_requests_metadata(
    app: FastAPI, client: AsyncClient, factory: Factory, route: tuple[str, str]
) -> None:
    world = await _world(client, factory)
    scenario, actions = SCENARIOS[route]
    call = scenario(world)
    member = call.member or world.org.owner
    before = {entry.id for entry in await audit_entries(app, world.org.id)}

    response = await client.request(
        call.method,
        f"{API_PREFIX}{call.path}",
        json=call.body,
        headers={**member.headers, "User-Agent": USER_AGENT},
    )

    assert response.status_code < 300, response.text
    request_id = response.headers["X-Request-ID"]
    new = [e for e in await audit_entries(app, world.org.id) if e.id not in before]
    assert sorted(entry.action for entry in new) == sorted(actions)
    assert {entry.request_id for entry in new} == {request_id}
    assert {entry.user_id for entry in new} == {call.actor_id or member.id}
    assert {entry.ip_address for entry in new} == {"127.0.0.1"}
    assert {entry.user_agent for entry in new} == {USER_AGENT}


async def _world(client: AsyncClient, factory: Factory) -> World:
    org = await factory.org()
    editor = await factory.member(org, "editor")
    owner = org.owner
    pipeline = await factory.pipeline(owner)
    template = await _post(
        client,
        owner,
        "/integration-templates",
        {"name": "Webhook", "vendor": "webhook", "config": MAPPING},
    )
    attachment = await _post(
        client,
        owner,
        f"/pipelines/{pipeline['id']}/integrations",
        {"integration_id": template["template"]["id"]},
    )
    revision = await _post(
        client,
        owner,
        f"/integration-templates/{template['template']['id']}/revisions",
        {"config": MAPPING},
    )
    spare = await _post(
        client,
        owner,
        "/integration-templates",
        {"name": "Spare", "vendor": "webhook", "config": MAPPING},
    )
    await _post(
        client,
        owner,
        f"/integration-templates/{spare['template']['id']}/revisions",
        {"config": MAPPING},
    )
    transformation = await _post(
        client,
        owner,
        "/transformations",
        {
            "name": "Spare's own",
            "integration_id": spare["template"]["id"],
            "config": STEPS,
        },
    )
    invited = await factory.invite(owner, "viewer")
    return World(
        org=org,
        editor=editor,
        pipeline=pipeline,
        template=template["template"],
        revision=revision,
        attachment=attachment,
        invited=invited,
        spare_template_id=spare["template"]["id"],
        transformation=transformation,
    )


async def _post(
    client: AsyncClient, member: Member, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(
        f"{API_PREFIX}{path}", json=body, headers=member.headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created
