"""Integration templates and their immutable revisions, over REST."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient

from tests.factories import Factory, Member, error_code
from tests.helpers import audit_entries, stored_secrets

TEMPLATES = "/v1/admin/integration-templates"
MAPPING = {
    "envelope": {"events_path": None, "event_name_field": "event"},
    "defaults": {"action": "pass"},
}


async def _template(
    client: AsyncClient, member: Member, **fields: Any
) -> dict[str, Any]:
    body = {
        "name": "Hook",
        "vendor": "webhook",
        "secret_fields": ["signing_secret"],
        "config": {
            "url": "https://example.com/hook",
            "signing_secret": "s3cr3t-1",
            **MAPPING,
        },
        **fields,
    }
    response = await client.post(TEMPLATES, json=body, headers=member.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_creating_a_template_writes_revision_one_with_secrets_masked(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    created = await _template(client, org.owner)

    template, revision = created["template"], created["revision"]
    assert template["id"].startswith("tmpl_")
    assert template["latest_revision"] == 1
    assert template["secret_fields"] == ["signing_secret"]
    assert revision["id"].startswith("rev_")
    assert revision["integration_id"] == template["id"]
    assert revision["revision_number"] == 1
    assert revision["config"]["signing_secret"] == "***"
    assert revision["config"]["url"] == "https://example.com/hook"


async def test_secret_values_are_stored_encrypted_and_never_answered(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    created = await _template(client, org.owner)
    listed = await client.get(
        f"{TEMPLATES}/{created['template']['id']}/revisions", headers=org.owner.headers
    )

    rows = await stored_secrets(app, org.id)
    entries = await audit_entries(app, org.id)
    assert len(rows) == 1
    assert "s3cr3t-1" not in rows[0].ciphertext
    assert "s3cr3t-1" not in listed.text
    assert all("s3cr3t-1" not in json.dumps(entry.changes) for entry in entries)


async def test_a_new_revision_takes_the_next_number_and_moves_latest(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    template_id = (await _template(client, org.owner))["template"]["id"]

    response = await client.post(
        f"{TEMPLATES}/{template_id}/revisions",
        json={
            "config": {
                "url": "https://example.com/v2",
                "signing_secret": "***",
                **MAPPING,
            },
            "change_summary": "new url",
        },
        headers=org.owner.headers,
    )
    template = await client.get(f"{TEMPLATES}/{template_id}", headers=org.owner.headers)

    assert response.status_code == 201
    assert response.json()["revision_number"] == 2
    assert response.json()["change_summary"] == "new url"
    assert template.json()["latest_revision"] == 2


async def test_three_stars_keep_the_previous_secret_in_a_row_of_its_own(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    template_id = (await _template(client, org.owner))["template"]["id"]

    await client.post(
        f"{TEMPLATES}/{template_id}/revisions",
        json={"config": {"signing_secret": "***", **MAPPING}},
        headers=org.owner.headers,
    )

    cipher = app.state.services.cipher
    rows = await stored_secrets(app, org.id)
    assert len(rows) == 2
    assert {cipher.decrypt(row.ciphertext, row.id) for row in rows} == {"s3cr3t-1"}


async def test_a_stale_base_revision_number_is_a_conflict(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    template_id = (await _template(client, org.owner))["template"]["id"]
    url = f"{TEMPLATES}/{template_id}/revisions"
    await client.post(url, json={"config": MAPPING}, headers=org.owner.headers)

    stale = await client.post(
        url,
        json={"config": MAPPING, "base_revision_number": 1},
        headers=org.owner.headers,
    )
    current = await client.post(
        url,
        json={"config": MAPPING, "base_revision_number": 2},
        headers=org.owner.headers,
    )

    assert stale.status_code == 409
    assert error_code(stale) == "REVISION_CONFLICT"
    assert current.status_code == 201
    assert current.json()["revision_number"] == 3


async def test_fifty_concurrent_revisions_are_numbered_two_to_fifty_one(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    template_id = (await _template(client, org.owner))["template"]["id"]
    url = f"{TEMPLATES}/{template_id}/revisions"

    answers = await asyncio.gather(
        *(
            client.post(url, json={"config": MAPPING}, headers=org.owner.headers)
            for _ in range(50)
        )
    )

    assert {answer.status_code for answer in answers} == {201}
    numbers = sorted(answer.json()["revision_number"] for answer in answers)
    assert numbers == list(range(2, 52))


async def test_revisions_are_listed_newest_first(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    template_id = (await _template(client, org.owner))["template"]["id"]
    url = f"{TEMPLATES}/{template_id}/revisions"
    for _ in range(2):
        await client.post(url, json={"config": MAPPING}, headers=org.owner.headers)

    response = await client.get(url, params={"limit": 2}, headers=org.owner.headers)

    assert [r["revision_number"] for r in response.json()["data"]] == [3, 2]
    assert response.json()["has_more"] is True


async def test_revisions_cannot_be_changed_or_deleted(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _template(client, org.owner)
    url = (
        f"{TEMPLATES}/{created['template']['id']}/revisions/{created['revision']['id']}"
    )

    answers = [
        await client.put(url, json={"config": {}}, headers=org.owner.headers),
        await client.patch(url, json={"config": {}}, headers=org.owner.headers),
        await client.delete(url, headers=org.owner.headers),
    ]
    read = await client.get(url, headers=org.owner.headers)

    assert [answer.status_code for answer in answers] == [405, 405, 405]
    assert {error_code(answer) for answer in answers} == {"METHOD_NOT_ALLOWED"}
    assert read.json()["revision_number"] == 1


async def test_a_config_that_is_not_a_mapping_document_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        TEMPLATES,
        json={
            "name": "Bad",
            "vendor": "webhook",
            "config": {"defaults": {"action": "maybe"}},
        },
        headers=org.owner.headers,
    )

    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "config.defaults.action"


async def test_template_names_are_unique_in_the_org(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    await _template(client, org.owner, name="Same")

    response = await client.post(
        TEMPLATES, json={"name": "Same", "vendor": "webhook"}, headers=org.owner.headers
    )

    assert response.status_code == 409
    assert error_code(response) == "ALREADY_EXISTS"


async def test_patch_changes_name_and_description_with_if_match(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    template_id = (await _template(client, org.owner))["template"]["id"]
    url = f"{TEMPLATES}/{template_id}"
    etag = (await client.get(url, headers=org.owner.headers)).headers["ETag"]

    changed = await client.patch(
        url,
        json={"description": "Orders"},
        headers={**org.owner.headers, "If-Match": etag},
    )
    stale = await client.patch(
        url, json={"name": "Other"}, headers={**org.owner.headers, "If-Match": etag}
    )
    config = await client.patch(url, json={"config": {}}, headers=org.owner.headers)

    assert changed.status_code == 200
    assert changed.json()["description"] == "Orders"
    assert stale.status_code == 412
    assert config.status_code == 422


async def test_deleting_a_template_removes_its_revisions_and_secrets(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _template(client, org.owner)
    url = f"{TEMPLATES}/{created['template']['id']}"

    deleted = await client.delete(url, headers=org.owner.headers)
    read = await client.get(url, headers=org.owner.headers)
    revision = await client.get(
        f"{url}/revisions/{created['revision']['id']}", headers=org.owner.headers
    )

    assert deleted.status_code == 204
    assert read.status_code == 404
    assert revision.status_code == 404
    assert await stored_secrets(app, org.id) == []
    assert len(await audit_entries(app, org.id, "integration_template.deleted")) == 1


async def test_roles_and_orgs_bound_templates(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    other = await factory.org()
    viewer = await factory.member(org, "viewer")
    editor = await factory.member(org, "editor")
    template_id = (await _template(client, org.owner))["template"]["id"]
    url = f"{TEMPLATES}/{template_id}"

    viewer_read = await client.get(url, headers=viewer.headers)
    viewer_write = await client.post(
        f"{url}/revisions", json={"config": MAPPING}, headers=viewer.headers
    )
    editor_delete = await client.delete(url, headers=editor.headers)
    foreign_read = await client.get(url, headers=other.owner.headers)
    foreign_revision = await client.post(
        f"{url}/revisions", json={"config": MAPPING}, headers=other.owner.headers
    )

    assert viewer_read.status_code == 200
    assert viewer_write.status_code == 403
    assert editor_delete.status_code == 403
    assert foreign_read.status_code == 404
    assert foreign_revision.status_code == 404


async def test_revision_audit_entries_mask_secrets_in_the_diff(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    template_id = (await _template(client, org.owner))["template"]["id"]

    await client.post(
        f"{TEMPLATES}/{template_id}/revisions",
        json={"config": {"signing_secret": "n3w-s3cr3t", **MAPPING}},
        headers=org.owner.headers,
    )

    entries = await audit_entries(app, org.id, "integration_revision.created")
    assert len(entries) == 2
    assert entries[1].changes["signing_secret"] == {"old": "***", "new": "***"}
    assert entries[1].changes["url"] == {"old": "https://example.com/hook", "new": None}


async def test_a_new_template_starts_at_version_one(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    created = (await _template(client, org.owner))["template"]
    installed = await client.post(
        "/v1/admin/integration-catalog/ga4/install",
        json={
            "name": "GA4",
            "config": {"measurement_id": "G-ABC123", "api_secret": "s"},
        },
        headers=org.owner.headers,
    )
    read = await client.get(f"{TEMPLATES}/{created['id']}", headers=org.owner.headers)

    assert created["version"] == 1
    assert created["updated_at"] == created["created_at"]
    installed_template = installed.json()["template"]
    assert installed_template["version"] == 1
    assert installed_template["updated_at"] == installed_template["created_at"]
    assert read.headers["ETag"] == '"v1"'


async def test_a_new_revision_changes_the_template_version_once(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    template_id = (await _template(client, org.owner))["template"]["id"]

    await client.post(
        f"{TEMPLATES}/{template_id}/revisions",
        json={"config": MAPPING},
        headers=org.owner.headers,
    )
    read = await client.get(f"{TEMPLATES}/{template_id}", headers=org.owner.headers)

    assert read.json()["version"] == 2
    assert read.headers["ETag"] == '"v2"'


async def test_a_cascade_delete_audits_every_row_it_removes(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _template(client, org.owner)
    template_id = created["template"]["id"]
    revision_ids = [created["revision"]["id"]]
    for _ in range(2):
        revised = await client.post(
            f"{TEMPLATES}/{template_id}/revisions",
            json={"config": MAPPING},
            headers=org.owner.headers,
        )
        revision_ids.append(revised.json()["id"])
    attachment_ids = []
    for _ in range(2):
        pipeline = await factory.pipeline(org.owner)
        attached = await client.post(
            f"/v1/admin/pipelines/{pipeline['id']}/integrations",
            json={"integration_id": template_id},
            headers=org.owner.headers,
        )
        attachment_ids.append(attached.json()["id"])

    deleted = await client.delete(
        f"{TEMPLATES}/{template_id}",
        params={"cascade": "true"},
        headers={**org.owner.headers, "X-Request-ID": "cascade-1"},
    )

    entries = [
        entry
        for entry in await audit_entries(app, org.id)
        if entry.request_id == "cascade-1"
    ]
    assert deleted.status_code == 204
    assert sorted((entry.action, entry.resource_id) for entry in entries) == sorted(
        [
            ("integration_template.deleted", template_id),
            *(("integration_revision.deleted", rid) for rid in revision_ids),
            *(("pipeline_integration.deleted", aid) for aid in attachment_ids),
        ]
    )
