"""Templates attached to pipelines at a pinned revision, over REST."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient

from tests.factories import Factory, Member, Org, error_code
from tests.helpers import audit_entries

MAPPING = {"defaults": {"action": "pass"}}


async def _template(
    client: AsyncClient, member: Member, config: dict[str, Any] | None = None
) -> dict[str, Any]:
    response = await client.post(
        "/v1/admin/integration-templates",
        json={
            "name": f"T {id(config)}-{member.email}",
            "vendor": "webhook",
            "config": {**MAPPING, **(config or {})},
        },
        headers=member.headers,
    )
    assert response.status_code == 201, response.text
    template: dict[str, Any] = response.json()["template"]
    return template


async def _revise(
    client: AsyncClient, member: Member, template_id: str
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/admin/integration-templates/{template_id}/revisions",
        json={"config": MAPPING},
        headers=member.headers,
    )
    revision: dict[str, Any] = response.json()
    return revision


def _url(pipeline: dict[str, Any], attachment_id: str = "") -> str:
    base = f"/v1/admin/pipelines/{pipeline['id']}/integrations"
    return f"{base}/{attachment_id}" if attachment_id else base


async def test_attaching_pins_the_latest_revision(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    template = await _template(client, org.owner)

    response = await client.post(
        _url(pipeline),
        json={"integration_id": template["id"], "consent_categories": ["marketing"]},
        headers=org.owner.headers,
    )

    body = response.json()
    assert response.status_code == 201
    assert body["id"].startswith("pi_")
    assert body["integration_id"] == template["id"]
    assert body["integration_name"] == template["name"]
    assert body["vendor"] == "webhook"
    assert body["revision_number"] == 1
    assert body["latest_revision"] == 1
    assert body["upgrade_available"] is False
    assert body["enabled"] is True
    assert body["consent_categories"] == ["marketing"]
    assert body["unresolved_parameters"] == []


async def test_a_new_revision_never_moves_a_pin_but_offers_an_upgrade(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    template = await _template(client, org.owner)
    attached = await client.post(
        _url(pipeline),
        json={"integration_id": template["id"]},
        headers=org.owner.headers,
    )

    revision = await _revise(client, org.owner, template["id"])
    before = await client.get(
        _url(pipeline, attached.json()["id"]), headers=org.owner.headers
    )
    upgraded = await client.patch(
        _url(pipeline, attached.json()["id"]),
        json={"revision_id": revision["id"]},
        headers=org.owner.headers,
    )

    assert before.json()["revision_number"] == 1
    assert before.json()["upgrade_available"] is True
    assert upgraded.json()["revision_number"] == 2
    assert upgraded.json()["upgrade_available"] is False


async def test_rolling_back_pins_an_older_revision(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    template = await _template(client, org.owner)
    await _revise(client, org.owner, template["id"])
    attached = await client.post(
        _url(pipeline),
        json={"integration_id": template["id"]},
        headers=org.owner.headers,
    )
    first = await client.get(
        f"/v1/admin/integration-templates/{template['id']}/revisions",
        headers=org.owner.headers,
    )
    revision_one = first.json()["data"][-1]["id"]

    response = await client.patch(
        _url(pipeline, attached.json()["id"]),
        json={"revision_id": revision_one, "enabled": False},
        headers=org.owner.headers,
    )

    assert attached.json()["revision_number"] == 2
    assert response.json()["revision_number"] == 1
    assert response.json()["enabled"] is False


async def test_attaching_the_same_template_twice_is_a_conflict(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    template = await _template(client, org.owner)
    body = {"integration_id": template["id"]}
    await client.post(_url(pipeline), json=body, headers=org.owner.headers)

    response = await client.post(_url(pipeline), json=body, headers=org.owner.headers)

    assert response.status_code == 409
    assert error_code(response) == "ALREADY_EXISTS"


async def test_a_revision_of_another_template_cannot_be_pinned(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    template = await _template(client, org.owner)
    other = await _template(client, org.owner, {"x": 1})
    other_revision = await _revise(client, org.owner, other["id"])

    response = await client.post(
        _url(pipeline),
        json={"integration_id": template["id"], "revision_id": other_revision["id"]},
        headers=org.owner.headers,
    )

    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "revision_id"


async def test_missing_pipeline_parameters_are_listed(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner, parameters={"region": "eu"})
    template = await _template(
        client,
        org.owner,
        {
            "url": "https://{{pipeline_param.host}}/{{pipeline_param.region}}/"
            "{{ pipeline_param.path }}"
        },
    )

    response = await client.post(
        _url(pipeline),
        json={"integration_id": template["id"]},
        headers=org.owner.headers,
    )

    assert response.status_code == 422
    assert error_code(response) == "MISSING_PIPELINE_PARAMETERS"
    fields = [detail["field"] for detail in response.json()["error"]["details"]]
    assert fields == ["parameters.host", "parameters.path"]


async def test_unresolved_parameters_follow_the_pipeline(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner, parameters={"host": "a.example"})
    template = await _template(
        client, org.owner, {"url": "https://{{pipeline_param.host}}/hook"}
    )
    attached = await client.post(
        _url(pipeline),
        json={"integration_id": template["id"]},
        headers=org.owner.headers,
    )

    await client.patch(
        f"/v1/admin/pipelines/{pipeline['id']}",
        json={"parameters": {}},
        headers=org.owner.headers,
    )
    read = await client.get(
        _url(pipeline, attached.json()["id"]), headers=org.owner.headers
    )

    assert attached.json()["unresolved_parameters"] == []
    assert read.json()["unresolved_parameters"] == ["host"]


async def test_detaching_needs_the_delete_permission(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")
    pipeline = await factory.pipeline(org.owner)
    template = await _template(client, org.owner)
    attached = await client.post(
        _url(pipeline), json={"integration_id": template["id"]}, headers=editor.headers
    )
    url = _url(pipeline, attached.json()["id"])

    refused = await client.delete(url, headers=editor.headers)
    deleted = await client.delete(url, headers=org.owner.headers)
    gone = await client.get(url, headers=org.owner.headers)

    assert attached.status_code == 201
    assert refused.status_code == 403
    assert deleted.status_code == 204
    assert gone.status_code == 404


async def test_a_template_in_use_is_deleted_only_with_cascade(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    template = await _template(client, org.owner)
    await client.post(
        _url(pipeline),
        json={"integration_id": template["id"]},
        headers=org.owner.headers,
    )
    url = f"/v1/admin/integration-templates/{template['id']}"

    refused = await client.delete(url, headers=org.owner.headers)
    cascaded = await client.delete(
        url, params={"cascade": "true"}, headers=org.owner.headers
    )
    listed = await client.get(_url(pipeline), headers=org.owner.headers)

    assert refused.status_code == 409
    assert error_code(refused) == "RESOURCE_IN_USE"
    assert cascaded.status_code == 204
    assert listed.json()["data"] == []
    assert len(await audit_entries(app, org.id, "pipeline_integration.deleted")) == 1


async def test_deleting_a_pipeline_removes_its_attachments_on_the_record(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    template = await _template(client, org.owner)
    await client.post(
        _url(pipeline),
        json={"integration_id": template["id"]},
        headers=org.owner.headers,
    )

    deleted = await client.delete(
        f"/v1/admin/pipelines/{pipeline['id']}", headers=org.owner.headers
    )
    template_delete = await client.delete(
        f"/v1/admin/integration-templates/{template['id']}", headers=org.owner.headers
    )

    assert deleted.status_code == 204
    assert template_delete.status_code == 204
    assert len(await audit_entries(app, org.id, "pipeline_integration.deleted")) == 1


async def test_another_orgs_pipeline_or_template_is_not_found(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    other = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    foreign_template = await _template(client, other.owner)
    own_template = await _template(client, org.owner)

    foreign = await client.post(
        _url(pipeline),
        json={"integration_id": foreign_template["id"]},
        headers=org.owner.headers,
    )
    cross = await client.post(
        _url(pipeline),
        json={"integration_id": own_template["id"]},
        headers=other.owner.headers,
    )

    assert foreign.status_code == 422
    assert cross.status_code == 404


async def test_updates_are_audited_and_honour_if_match(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    template = await _template(client, org.owner)
    attached = await client.post(
        _url(pipeline),
        json={"integration_id": template["id"]},
        headers=org.owner.headers,
    )
    url = _url(pipeline, attached.json()["id"])
    etag = attached.headers["ETag"]

    changed = await client.patch(
        url, json={"enabled": False}, headers={**org.owner.headers, "If-Match": etag}
    )
    stale = await client.patch(
        url, json={"enabled": True}, headers={**org.owner.headers, "If-Match": etag}
    )

    entries = await audit_entries(app, org.id, "pipeline_integration.updated")
    assert changed.status_code == 200
    assert stale.status_code == 412
    assert entries[0].changes == {"enabled": {"old": True, "new": False}}


async def _rollout_setup(
    client: AsyncClient, factory: Factory
) -> tuple[Org, dict[str, Any], list[dict[str, Any]], list[str], dict[str, Any]]:
    org = await factory.org()
    template = await _template(client, org.owner)
    pipelines = [await factory.pipeline(org.owner) for _ in range(3)]
    attachments = []
    for pipeline in pipelines:
        attached = await client.post(
            _url(pipeline),
            json={"integration_id": template["id"]},
            headers=org.owner.headers,
        )
        attachments.append(attached.json()["id"])
    revision = await _revise(client, org.owner, template["id"])
    return org, template, pipelines, attachments, revision


async def test_rollout_moves_every_pin_of_the_template(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org, template, pipelines, _, revision = await _rollout_setup(client, factory)
    owner = org.owner

    response = await client.post(
        f"/v1/admin/integration-templates/{template['id']}/rollout",
        json={"revision_id": revision["id"]},
        headers=owner.headers,
    )

    assert response.status_code == 200
    assert [a["revision_number"] for a in response.json()["data"]] == [2, 2, 2]
    assert {a["pipeline_id"] for a in response.json()["data"]} == {
        p["id"] for p in pipelines
    }
    entries = await audit_entries(app, owner.org_id, "pipeline_integration.updated")
    assert len(entries) == 3
    assert len({entry.request_id for entry in entries}) == 1


async def test_rollout_to_listed_pipelines_leaves_the_others(
    client: AsyncClient, factory: Factory
) -> None:
    org, template, pipelines, attachments, revision = await _rollout_setup(
        client, factory
    )
    owner = org.owner

    await client.post(
        f"/v1/admin/integration-templates/{template['id']}/rollout",
        json={"revision_id": revision["id"], "pipeline_ids": [pipelines[0]["id"]]},
        headers=owner.headers,
    )
    other = await client.get(_url(pipelines[1], attachments[1]), headers=owner.headers)
    moved = await client.get(_url(pipelines[0], attachments[0]), headers=owner.headers)

    assert moved.json()["revision_number"] == 2
    assert other.json()["revision_number"] == 1


async def test_rollout_moves_nothing_when_a_listed_pipeline_does_not_use_it(
    client: AsyncClient, factory: Factory
) -> None:
    org, template, pipelines, attachments, revision = await _rollout_setup(
        client, factory
    )
    owner = org.owner
    stranger = await factory.pipeline(owner)

    response = await client.post(
        f"/v1/admin/integration-templates/{template['id']}/rollout",
        json={
            "revision_id": revision["id"],
            "pipeline_ids": [pipelines[0]["id"], stranger["id"]],
        },
        headers=owner.headers,
    )
    unmoved = await client.get(
        _url(pipelines[0], attachments[0]), headers=owner.headers
    )

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    assert response.json()["error"]["details"][0]["field"] == "pipeline_ids.1"
    assert stranger["id"] in response.json()["error"]["details"][0]["message"]
    assert unmoved.json()["revision_number"] == 1


async def test_rollout_names_pipelines_missing_parameters_and_moves_nothing(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    template = await _template(client, org.owner)
    ready = await factory.pipeline(org.owner, parameters={"host": "a.example"})
    lacking = await factory.pipeline(org.owner)
    for pipeline in (ready, lacking):
        await client.post(
            _url(pipeline),
            json={"integration_id": template["id"]},
            headers=org.owner.headers,
        )
    revision = await client.post(
        f"/v1/admin/integration-templates/{template['id']}/revisions",
        json={"config": {"url": "https://{{pipeline_param.host}}/x", **MAPPING}},
        headers=org.owner.headers,
    )

    response = await client.post(
        f"/v1/admin/integration-templates/{template['id']}/rollout",
        json={"revision_id": revision.json()["id"]},
        headers=org.owner.headers,
    )
    listed = await client.get(_url(ready), headers=org.owner.headers)

    assert response.status_code == 422
    assert error_code(response) == "MISSING_PIPELINE_PARAMETERS"
    assert [d["field"] for d in response.json()["error"]["details"]] == [
        f"pipelines.{lacking['id']}"
    ]
    assert listed.json()["data"][0]["revision_number"] == 1


async def test_rollout_needs_the_templates_own_revision_and_an_editor(
    client: AsyncClient, factory: Factory
) -> None:
    org, template, _, _, _ = await _rollout_setup(client, factory)
    owner = org.owner
    other = await _template(client, owner, {"y": 2})
    viewer = await factory.member(org, "viewer")
    url = f"/v1/admin/integration-templates/{template['id']}/rollout"

    foreign = await client.post(
        url,
        json={"revision_id": (await _revise(client, owner, other["id"]))["id"]},
        headers=owner.headers,
    )
    refused = await client.post(
        url, json={"revision_id": "rev_x"}, headers=viewer.headers
    )

    assert foreign.status_code == 422
    assert refused.status_code == 403
