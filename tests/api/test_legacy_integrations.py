"""Integrations (legacy) over REST: a view over attachments, their templates
and pinned revisions, so that what these routes write the current routes and
GraphQL read, and the other way round."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient, Response

from tests.api.test_template_concurrency import needs_postgresql
from tests.factories import Factory, Member, error_code
from tests.helpers import stored_secrets
from tests.statements import counted_selects

API = "/v1/admin"
INTEGRATIONS = f"{API}/integrations"
GA4_SECRET = "ga4-api-s3cret-value"
GA4_CONFIG = {"measurement_id": "G-ABC123", "api_secret": GA4_SECRET}
MAPPING = {"defaults": {"action": "pass"}}


async def _create(
    client: AsyncClient,
    member: Member,
    pipeline: dict[str, Any],
    headers: dict[str, str] | None = None,
    **fields: Any,
) -> Response:
    body = {
        "source_id": pipeline["id"],
        "type": "ga4",
        "name": f"GA4 {pipeline['name']}",
        "config": GA4_CONFIG,
        **fields,
    }
    return await client.post(
        INTEGRATIONS, json=body, headers={**member.headers, **(headers or {})}
    )


async def _created(
    client: AsyncClient, member: Member, pipeline: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    response = await _create(client, member, pipeline, **fields)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _template_named(
    client: AsyncClient, member: Member, name: str
) -> list[dict[str, Any]]:
    response = await client.get(
        f"{API}/integration-templates", params={"q": name}, headers=member.headers
    )
    found: list[dict[str, Any]] = [
        item for item in response.json()["data"] if item["name"] == name
    ]
    return found


async def _revisions(
    client: AsyncClient, member: Member, template_id: str
) -> list[dict[str, Any]]:
    response = await client.get(
        f"{API}/integration-templates/{template_id}/revisions", headers=member.headers
    )
    revisions: list[dict[str, Any]] = response.json()["data"]
    return revisions


async def _attachments(
    client: AsyncClient, member: Member, pipeline: dict[str, Any]
) -> list[dict[str, Any]]:
    response = await client.get(
        f"{API}/pipelines/{pipeline['id']}/integrations", headers=member.headers
    )
    attachments: list[dict[str, Any]] = response.json()["data"]
    return attachments


async def _audit(
    client: AsyncClient, member: Member, **filters: str
) -> list[dict[str, Any]]:
    response = await client.get(
        f"{API}/audit-logs", params=filters, headers=member.headers
    )
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["data"]
    return entries


def _fields(response: Response) -> list[str]:
    return [detail["field"] for detail in response.json()["error"]["details"]]


class TestCreate:
    async def test_answers_the_legacy_object_with_secrets_masked(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        pipeline = await factory.pipeline(org.owner)

        response = await _create(
            client,
            org.owner,
            pipeline,
            name="Shop GA4",
            enabled=False,
            consent_categories=["analytics"],
        )

        body = response.json()
        assert response.status_code == 201
        assert body["id"].startswith("pi_")
        assert body["source_id"] == pipeline["id"]
        assert body["type"] == "ga4"
        assert body["name"] == "Shop GA4"
        assert body["enabled"] is False
        assert body["consent_categories"] == ["analytics"]
        assert body["config"]["measurement_id"] == "G-ABC123"
        assert body["config"]["api_secret"] == "***"
        assert body["created_at"].endswith("Z")
        assert response.headers["ETag"] == '"v1"'
        assert GA4_SECRET not in response.text

    async def test_makes_a_catalog_template_and_its_revision_one(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        pipeline = await factory.pipeline(org.owner)

        await _created(client, org.owner, pipeline, name="Shop GA4")

        [template] = await _template_named(client, org.owner, "Shop GA4")
        [revision] = await _revisions(client, org.owner, template["id"])
        assert template["vendor"] == "ga4"
        assert template["catalog_vendor_key"] == "ga4"
        assert template["catalog_variant_key"] == "default"
        assert template["secret_fields"] == ["api_secret"]
        assert template["latest_revision"] == 1
        assert revision["revision_number"] == 1
        assert revision["delivery_mode"] == "server_side"
        assert revision["config"]["api_secret"] == "***"
        # The default variant's mapping, with the given config merged over it.
        assert revision["config"]["events"]["page"]["vendor_event_name"] == "page_view"

    async def test_is_an_attachment_of_the_source(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        pipeline = await factory.pipeline(org.owner)

        created = await _created(client, org.owner, pipeline, name="Shop GA4")

        [attachment] = await _attachments(client, org.owner, pipeline)
        assert attachment["id"] == created["id"]
        assert attachment["integration_name"] == "Shop GA4"
        assert attachment["vendor"] == "ga4"
        assert attachment["revision_number"] == 1
        assert attachment["enabled"] is True

    async def test_reads_the_same_through_graphql(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        pipeline = await factory.pipeline(org.owner)
        created = await _created(client, org.owner, pipeline, name="Shop GA4")

        response = await client.post(
            f"{API}/graphql",
            json={
                "query": """
                    query ($id: ID!) { pipeline(id: $id) { integrations {
                      id enabled template { name vendor }
                      revision { revisionNumber config }
                    } } }
                """,
                "variables": {"id": pipeline["id"]},
            },
            headers=org.owner.headers,
        )

        [integration] = response.json()["data"]["pipeline"]["integrations"]
        assert integration["id"] == created["id"]
        assert integration["enabled"] is True
        assert integration["template"] == {"name": "Shop GA4", "vendor": "ga4"}
        assert integration["revision"]["revisionNumber"] == 1
        assert integration["revision"]["config"]["api_secret"] == "***"
        assert GA4_SECRET not in response.text

    async def test_stores_the_secret_encrypted(
        self, app: FastAPI, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        pipeline = await factory.pipeline(org.owner)

        await _created(client, org.owner, pipeline)

        [row] = [
            row
            for row in await stored_secrets(app, org.id)
            if row.owner_id.startswith("rev_")
        ]
        assert GA4_SECRET not in row.ciphertext
        assert app.state.services.cipher.decrypt(row.ciphertext, row.id) == GA4_SECRET

    async def test_a_taken_template_name_is_a_conflict_that_attaches_nothing(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        first, second = (
            await factory.pipeline(org.owner),
            await factory.pipeline(org.owner),
        )
        await _created(client, org.owner, first, name="Shop GA4")

        response = await _create(client, org.owner, second, name="Shop GA4")

        assert response.status_code == 409
        assert error_code(response) == "ALREADY_EXISTS"
        assert await _attachments(client, org.owner, second) == []

    async def test_a_type_that_is_no_catalog_vendor_is_named(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        pipeline = await factory.pipeline(org.owner)

        response = await _create(
            client, org.owner, pipeline, type="no_such_vendor", config=MAPPING
        )

        assert response.status_code == 422
        assert error_code(response) == "VALIDATION_ERROR"
        assert _fields(response) == ["type"]

    async def test_an_unknown_or_foreign_source_is_named(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        other = await factory.org()
        foreign = await factory.pipeline(other.owner)
        unknown = {"id": "pip_01JAAAAAAAAAAAAAAAAAAAAAAA", "name": "x"}

        answers = [
            await _create(client, org.owner, pipeline, name="GA4")
            for pipeline in (foreign, unknown)
        ]

        for response in answers:
            assert response.status_code == 422
            assert error_code(response) == "VALIDATION_ERROR"
            assert _fields(response) == ["source_id"]
        assert await _template_named(client, org.owner, "GA4") == []

    async def test_every_problem_is_named_and_nothing_is_created(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        pipeline = await factory.pipeline(org.owner)

        response = await _create(
            client,
            org.owner,
            pipeline,
            name="Broken",
            config={"measurement_id": "UA-1", "events": {"page": {"mappings": 3}}},
            consent_categories=["ads", "ads"],
        )

        assert response.status_code == 422
        assert set(_fields(response)) == {
            "consent_categories.1",
            "config.measurement_id",
            "config.api_secret",
            "config.events.page.mappings",
        }
        assert await _template_named(client, org.owner, "Broken") == []

    async def test_missing_fields_answer_400_naming_them(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()

        response = await client.post(
            INTEGRATIONS, json={"type": "ga4"}, headers=org.owner.headers
        )

        assert response.status_code == 400
        assert error_code(response) == "MISSING_FIELD"
        assert set(_fields(response)) == {"source_id", "name", "config"}

    async def test_missing_pipeline_parameters_leave_no_template_behind(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        pipeline = await factory.pipeline(org.owner)

        response = await _create(
            client,
            org.owner,
            pipeline,
            name="Parameterised",
            config={**GA4_CONFIG, "measurement_id": "{{pipeline_param.ga_id}}"},
        )

        assert response.status_code == 422
        assert error_code(response) == "MISSING_PIPELINE_PARAMETERS"
        assert _fields(response) == ["parameters.ga_id"]
        assert await _template_named(client, org.owner, "Parameterised") == []
        for action in ("integration.*", "integration_template.*"):
            assert await _audit(client, org.owner, action=action) == []

    async def test_a_repeat_with_the_same_idempotency_key_gets_the_first_answer(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        pipeline = await factory.pipeline(org.owner)
        key = {"Idempotency-Key": "legacy-integration-1"}

        first = await _create(client, org.owner, pipeline, key, name="Once")
        repeat = await _create(client, org.owner, pipeline, key, name="Once")

        assert first.status_code == repeat.status_code == 201
        assert repeat.json() == first.json()
        assert len(await _attachments(client, org.owner, pipeline)) == 1

    async def test_is_audited_once_per_row_made_and_never_in_clear(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        pipeline = await factory.pipeline(org.owner)

        created = await _create(client, org.owner, pipeline, name="Shop GA4")

        entries = await _audit(client, org.owner)
        request_id = created.headers["X-Request-ID"]
        made = [entry for entry in entries if entry["request_id"] == request_id]
        by_action = {entry["action"]: entry for entry in made}
        assert len(made) == 3
        assert sorted(by_action) == [
            "integration.created",
            "integration_revision.created",
            "integration_template.created",
        ]
        integration = by_action["integration.created"]
        assert integration["resource_type"] == "integration"
        assert integration["resource_id"] == created.json()["id"]
        assert integration["changes"]["name"] == {"old": None, "new": "Shop GA4"}
        assert integration["changes"]["source_id"]["new"] == pipeline["id"]
        revision = by_action["integration_revision.created"]
        assert revision["changes"]["api_secret"] == {"old": None, "new": "***"}
        assert GA4_SECRET not in str(entries)


class TestRead:
    async def test_an_attachment_made_through_the_pipeline_routes_is_listed(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        pipeline = await factory.pipeline(org.owner)
        made = await client.post(
            f"{API}/integration-templates",
            json={
                "name": "Hooks",
                "vendor": "webhook",
                "secret_fields": ["signing_secret"],
                "config": {"signing_secret": "hook-s3cret", **MAPPING},
            },
            headers=org.owner.headers,
        )
        attached = await client.post(
            f"{API}/pipelines/{pipeline['id']}/integrations",
            json={"integration_id": made.json()["template"]["id"]},
            headers=org.owner.headers,
        )

        listed = await client.get(INTEGRATIONS, headers=org.owner.headers)
        one = await client.get(
            f"{INTEGRATIONS}/{attached.json()['id']}", headers=org.owner.headers
        )

        assert listed.json()["data"] == [one.json()]
        assert one.json()["id"] == attached.json()["id"]
        assert one.json()["source_id"] == pipeline["id"]
        assert one.json()["type"] == "webhook"
        assert one.json()["name"] == "Hooks"
        assert one.json()["config"] == {"signing_secret": "***", **MAPPING}
        assert "hook-s3cret" not in listed.text + one.text

    async def test_the_list_filters_by_source_and_pages(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        first, second = (
            await factory.pipeline(org.owner),
            await factory.pipeline(org.owner),
        )
        ids = [
            (await _created(client, org.owner, pipeline, name=f"GA4 {n}"))["id"]
            for n, pipeline in enumerate([first, first, second])
        ]

        page_one = await client.get(
            INTEGRATIONS,
            params={"source_id": first["id"], "limit": 1},
            headers=org.owner.headers,
        )
        page_two = await client.get(
            INTEGRATIONS,
            params={
                "source_id": first["id"],
                "limit": 1,
                "cursor": page_one.json()["next_cursor"],
            },
            headers=org.owner.headers,
        )
        everything = await client.get(INTEGRATIONS, headers=org.owner.headers)

        assert [item["id"] for item in page_one.json()["data"]] == ids[:1]
        assert page_one.json()["has_more"] is True
        assert [item["id"] for item in page_two.json()["data"]] == ids[1:2]
        assert page_two.json()["has_more"] is False
        assert page_two.json()["next_cursor"] is None
        assert [item["id"] for item in everything.json()["data"]] == ids

    async def test_another_orgs_integrations_are_neither_listed_nor_found(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        other = await factory.org()
        theirs = await _created(
            client, other.owner, await factory.pipeline(other.owner)
        )

        listed = await client.get(INTEGRATIONS, headers=org.owner.headers)
        one = await client.get(
            f"{INTEGRATIONS}/{theirs['id']}", headers=org.owner.headers
        )

        assert listed.json()["data"] == []
        assert one.status_code == 404
        assert error_code(one) == "NOT_FOUND"

    async def test_unknown_and_malformed_ids_are_not_found_on_every_method(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()

        answers = [
            await client.request(
                method,
                f"{INTEGRATIONS}/{integration_id}",
                json=body,
                headers=org.owner.headers,
            )
            for integration_id in ("pi_01JAAAAAAAAAAAAAAAAAAAAAAA", "nonsense")
            for method, body in [
                ("GET", None),
                ("PUT", {"name": "x", "config": {}}),
                ("PATCH", {"enabled": False}),
                ("DELETE", None),
            ]
        ]

        assert [response.status_code for response in answers] == [404] * 8

    async def test_a_source_that_is_not_the_orgs_matches_nothing(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        other = await factory.org()
        foreign = await factory.pipeline(other.owner)
        await _created(client, other.owner, foreign)
        await _created(client, org.owner, await factory.pipeline(org.owner))

        answers = [
            await client.get(
                INTEGRATIONS, params={"source_id": source_id}, headers=org.owner.headers
            )
            for source_id in (foreign["id"], "pip_01JAAAAAAAAAAAAAAAAAAAAAAA", "x")
        ]

        assert [response.status_code for response in answers] == [200] * 3
        assert [response.json()["data"] for response in answers] == [[]] * 3

    async def test_a_list_page_costs_the_same_whatever_its_size(
        self, app: FastAPI, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        pipeline = await factory.pipeline(org.owner)
        for number in range(6):
            await _created(client, org.owner, pipeline, name=f"GA4 {number}")

        counts = []
        for limit in (2, 6):
            with counted_selects(app) as statements:
                page = await client.get(
                    INTEGRATIONS, params={"limit": limit}, headers=org.owner.headers
                )
            assert len(page.json()["data"]) == limit
            counts.append(len(statements))

        # One to authenticate the caller, one for the page.
        assert counts == [2, 2]


class TestUpdate:
    async def test_a_config_change_writes_a_revision_and_moves_only_this_pin(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        ours, theirs = (
            await factory.pipeline(org.owner),
            await factory.pipeline(org.owner),
        )
        created = await _created(client, org.owner, ours, name="Shared GA4")
        [template] = await _template_named(client, org.owner, "Shared GA4")
        await client.post(
            f"{API}/pipelines/{theirs['id']}/integrations",
            json={"integration_id": template["id"]},
            headers=org.owner.headers,
        )

        response = await client.patch(
            f"{INTEGRATIONS}/{created['id']}",
            json={"config": {"measurement_id": "G-NEW456"}},
            headers=org.owner.headers,
        )

        assert response.status_code == 200
        assert response.json()["config"]["measurement_id"] == "G-NEW456"
        revisions = await _revisions(client, org.owner, template["id"])
        assert [revision["revision_number"] for revision in revisions] == [2, 1]
        assert revisions[0]["delivery_mode"] == revisions[1]["delivery_mode"]
        assert revisions[0]["config"]["api_secret"] == "***"
        [moved] = await _attachments(client, org.owner, ours)
        [kept] = await _attachments(client, org.owner, theirs)
        assert moved["revision_number"] == 2
        assert kept["revision_number"] == 1
        assert kept["upgrade_available"] is True

    async def test_patch_changes_only_the_config_keys_it_names(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        pipeline = await factory.pipeline(org.owner)
        created = await _created(client, org.owner, pipeline)

        response = await client.patch(
            f"{INTEGRATIONS}/{created['id']}",
            json={
                "config": {
                    "debug_mode": True,
                    "events": {"page": {"vendor_event_name": "page_seen"}},
                }
            },
            headers=org.owner.headers,
        )

        config = response.json()["config"]
        page = created["config"]["events"]["page"]
        assert config["debug_mode"] is True
        assert config["events"]["page"] == {**page, "vendor_event_name": "page_seen"}
        assert config["events"]["identify"] == created["config"]["events"]["identify"]
        assert config["measurement_id"] == "G-ABC123"
        assert config["api_secret"] == "***"
        assert response.json()["name"] == created["name"]
        assert response.json()["enabled"] is True

    async def test_no_config_change_writes_no_revision(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        pipeline = await factory.pipeline(org.owner)
        created = await _created(client, org.owner, pipeline, name="Quiet")

        response = await client.patch(
            f"{INTEGRATIONS}/{created['id']}",
            json={
                "enabled": False,
                "config": {"measurement_id": "G-ABC123", "api_secret": "***"},
            },
            headers=org.owner.headers,
        )

        [template] = await _template_named(client, org.owner, "Quiet")
        assert response.status_code == 200
        assert response.json()["enabled"] is False
        assert template["latest_revision"] == 1

    async def test_secrets_survive_a_get_then_put_round_trip(
        self, app: FastAPI, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        pipeline = await factory.pipeline(org.owner)
        created = await _created(client, org.owner, pipeline, name="Round trip")
        url = f"{INTEGRATIONS}/{created['id']}"
        read = (await client.get(url, headers=org.owner.headers)).json()
        read["config"]["measurement_id"] = "G-ROUND1"

        response = await client.put(url, json=read, headers=org.owner.headers)

        assert response.status_code == 200, response.text
        assert response.json()["config"]["api_secret"] == "***"
        [template] = await _template_named(client, org.owner, "Round trip")
        newest = (await _revisions(client, org.owner, template["id"]))[0]
        [kept] = [
            row
            for row in await stored_secrets(app, org.id)
            if row.owner_id == newest["id"]
        ]
        assert app.state.services.cipher.decrypt(kept.ciphertext, kept.id) == GA4_SECRET

    async def test_an_unchanged_put_writes_nothing(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        pipeline = await factory.pipeline(org.owner)
        created = await _create(client, org.owner, pipeline)
        url = f"{INTEGRATIONS}/{created.json()['id']}"

        response = await client.put(url, json=created.json(), headers=org.owner.headers)

        assert response.status_code == 200
        assert response.json() == created.json()
        assert response.headers["ETag"] == created.headers["ETag"]
        assert await _audit(client, org.owner, action="integration.updated") == []

    async def test_a_secret_sent_in_clear_is_a_new_value(
        self, app: FastAPI, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        pipeline = await factory.pipeline(org.owner)
        created = await _created(client, org.owner, pipeline)

        response = await client.patch(
            f"{INTEGRATIONS}/{created['id']}",
            json={"config": {"api_secret": "rotated-s3cret"}},
            headers=org.owner.headers,
        )

        [attachment] = await _attachments(client, org.owner, pipeline)
        assert response.json()["config"]["api_secret"] == "***"
        assert "rotated-s3cret" not in response.text
        assert attachment["revision_number"] == 2
        values = {
            app.state.services.cipher.decrypt(row.ciphertext, row.id)
            for row in await stored_secrets(app, org.id)
            if row.owner_id == attachment["revision_id"]
        }
        assert values == {"rotated-s3cret"}

    async def test_put_replaces_and_fields_left_out_take_their_defaults(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        pipeline = await factory.pipeline(org.owner)
        created = await _created(
            client, org.owner, pipeline, enabled=False, consent_categories=["ads"]
        )

        response = await client.put(
            f"{INTEGRATIONS}/{created['id']}",
            json={"name": "Replaced", "config": {**GA4_CONFIG, **MAPPING}},
            headers=org.owner.headers,
        )

        body = response.json()
        assert response.status_code == 200
        assert body["name"] == "Replaced"
        assert body["enabled"] is True
        assert body["consent_categories"] == []
        assert body["config"] == {
            "measurement_id": "G-ABC123",
            "api_secret": "***",
            **MAPPING,
        }

    async def test_a_rename_renames_the_template(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        pipeline = await factory.pipeline(org.owner)
        created = await _created(client, org.owner, pipeline, name="Before")

        response = await client.patch(
            f"{INTEGRATIONS}/{created['id']}",
            json={"name": "After"},
            headers=org.owner.headers,
        )

        [attachment] = await _attachments(client, org.owner, pipeline)
        assert response.json()["name"] == "After"
        assert attachment["integration_name"] == "After"
        assert await _template_named(client, org.owner, "Before") == []

    async def test_a_rename_to_a_taken_name_is_a_conflict(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        pipeline = await factory.pipeline(org.owner)
        await _created(client, org.owner, pipeline, name="Taken")
        created = await _created(client, org.owner, pipeline, name="Mine")

        response = await client.patch(
            f"{INTEGRATIONS}/{created['id']}",
            json={"name": "Taken", "enabled": False},
            headers=org.owner.headers,
        )
        read = await client.get(
            f"{INTEGRATIONS}/{created['id']}", headers=org.owner.headers
        )

        assert response.status_code == 409
        assert error_code(response) == "ALREADY_EXISTS"
        assert read.json() == created

    async def test_the_type_and_source_cannot_change(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        pipeline = await factory.pipeline(org.owner)
        other = await factory.pipeline(org.owner)
        created = await _created(client, org.owner, pipeline)
        url = f"{INTEGRATIONS}/{created['id']}"

        same = await client.put(url, json=created, headers=org.owner.headers)
        changed = await client.put(
            url,
            json={**created, "type": "meta_capi", "source_id": other["id"]},
            headers=org.owner.headers,
        )

        assert same.status_code == 200
        assert changed.status_code == 422
        assert _fields(changed) == ["source_id", "type"]

    async def test_problems_are_named_and_change_nothing(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        pipeline = await factory.pipeline(org.owner)
        created = await _created(client, org.owner, pipeline, name="Kept")
        url = f"{INTEGRATIONS}/{created['id']}"

        refused = await client.patch(
            url,
            json={"config": {"measurement_id": None, "$secret": "x"}},
            headers=org.owner.headers,
        )
        missing_parameter = await client.patch(
            url,
            json={"config": {"measurement_id": "{{pipeline_param.ga_id}}"}},
            headers=org.owner.headers,
        )
        nulled = await client.patch(url, json={"name": None}, headers=org.owner.headers)

        [template] = await _template_named(client, org.owner, "Kept")
        assert refused.status_code == 422
        assert set(_fields(refused)) == {"config.measurement_id", "config"}
        assert error_code(missing_parameter) == "MISSING_PIPELINE_PARAMETERS"
        assert nulled.status_code == 422
        assert _fields(nulled) == ["name"]
        assert template["latest_revision"] == 1
        assert (await client.get(url, headers=org.owner.headers)).json() == created

    async def test_a_hand_made_templates_integration_keeps_its_own_fields(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        pipeline = await factory.pipeline(org.owner)
        made = await client.post(
            f"{API}/integration-templates",
            json={
                "name": "Hooks",
                "vendor": "webhook",
                "secret_fields": ["signing_secret"],
                "config": MAPPING,
            },
            headers=org.owner.headers,
        )
        attached = await client.post(
            f"{API}/pipelines/{pipeline['id']}/integrations",
            json={"integration_id": made.json()["template"]["id"]},
            headers=org.owner.headers,
        )
        url = f"{INTEGRATIONS}/{attached.json()['id']}"

        no_secret_yet = await client.patch(
            url, json={"config": {"signing_secret": "***"}}, headers=org.owner.headers
        )
        changed = await client.patch(
            url, json={"config": {"team": "growth"}}, headers=org.owner.headers
        )

        assert no_secret_yet.status_code == 422
        assert no_secret_yet.json()["error"]["details"][0] == {
            "field": "config.signing_secret",
            "code": "NO_PREVIOUS_VALUE",
            "message": no_secret_yet.json()["error"]["details"][0]["message"],
        }
        assert changed.status_code == 200
        assert changed.json()["config"] == {**MAPPING, "team": "growth"}
        assert changed.json()["type"] == "webhook"

    async def test_a_stale_if_match_is_refused(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        pipeline = await factory.pipeline(org.owner)
        created = await _create(client, org.owner, pipeline, name="Guarded")
        url = f"{INTEGRATIONS}/{created.json()['id']}"
        etag = created.headers["ETag"]

        changed = await client.patch(
            url,
            json={"enabled": False},
            headers={**org.owner.headers, "If-Match": etag},
        )
        stale = await client.patch(
            url, json={"enabled": True}, headers={**org.owner.headers, "If-Match": etag}
        )
        stale_delete = await client.delete(
            url, headers={**org.owner.headers, "If-Match": etag}
        )

        assert changed.status_code == 200
        assert changed.headers["ETag"] != etag
        assert stale.status_code == stale_delete.status_code == 412
        assert error_code(stale) == "PRECONDITION_FAILED"

    async def test_a_rename_through_the_template_routes_makes_the_etag_stale(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        pipeline = await factory.pipeline(org.owner)
        created = await _create(client, org.owner, pipeline, name="Old name")
        [template] = await _template_named(client, org.owner, "Old name")
        await client.patch(
            f"{API}/integration-templates/{template['id']}",
            json={"name": "New name"},
            headers=org.owner.headers,
        )

        response = await client.put(
            f"{INTEGRATIONS}/{created.json()['id']}",
            json=created.json(),
            headers={**org.owner.headers, "If-Match": created.headers["ETag"]},
        )

        assert response.status_code == 412

    async def test_a_config_change_is_audited_with_its_revision(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        pipeline = await factory.pipeline(org.owner)
        created = await _created(client, org.owner, pipeline, name="Audited")

        await client.patch(
            f"{INTEGRATIONS}/{created['id']}",
            json={"name": "Audited twice", "config": {"api_secret": "n3w-s3cret"}},
            headers=org.owner.headers,
        )

        entries = await _audit(client, org.owner)
        latest = [e for e in entries if e["request_id"] == entries[0]["request_id"]]
        by_action = {entry["action"]: entry for entry in latest}
        assert sorted(by_action) == [
            "integration.updated",
            "integration_revision.created",
            "integration_template.updated",
        ]
        updated = by_action["integration.updated"]
        assert updated["resource_id"] == created["id"]
        assert updated["changes"]["name"] == {"old": "Audited", "new": "Audited twice"}
        assert updated["changes"]["revision_number"] == {"old": 1, "new": 2}
        revision = by_action["integration_revision.created"]
        assert revision["changes"] == {"api_secret": {"old": "***", "new": "***"}}
        assert "n3w-s3cret" not in str(entries)

    async def test_racing_config_changes_write_consecutive_revisions(
        self, database_url: str, client: AsyncClient, factory: Factory
    ) -> None:
        needs_postgresql(database_url)
        org = await factory.org()
        pipeline = await factory.pipeline(org.owner)
        created = await _created(client, org.owner, pipeline, name="Raced")
        [template] = await _template_named(client, org.owner, "Raced")

        answers = await asyncio.gather(
            *(
                client.patch(
                    f"{INTEGRATIONS}/{created['id']}",
                    json={"config": {"measurement_id": f"G-RACE{number}"}},
                    headers=org.owner.headers,
                )
                for number in range(8)
            ),
            *(
                client.post(
                    f"{API}/integration-templates/{template['id']}/revisions",
                    json={"config": {**GA4_CONFIG, "api_secret": "***"}},
                    headers=org.owner.headers,
                )
                for _ in range(4)
            ),
        )

        assert [answer.status_code for answer in answers] == [200] * 8 + [201] * 4
        numbers = [
            revision["revision_number"]
            for revision in await _revisions(client, org.owner, template["id"])
        ]
        assert numbers == list(range(13, 0, -1))
        [attachment] = await _attachments(client, org.owner, pipeline)
        read = await client.get(
            f"{INTEGRATIONS}/{created['id']}", headers=org.owner.headers
        )
        assert read.json()["config"]["measurement_id"].startswith("G-RACE")
        assert attachment["revision_number"] > 1


class TestDelete:
    async def test_detaches_and_leaves_the_template(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        pipeline = await factory.pipeline(org.owner)
        created = await _created(client, org.owner, pipeline, name="Detached")
        url = f"{INTEGRATIONS}/{created['id']}"

        deleted = await client.delete(url, headers=org.owner.headers)
        gone = await client.get(url, headers=org.owner.headers)

        [template] = await _template_named(client, org.owner, "Detached")
        assert deleted.status_code == 204
        assert deleted.content == b""
        assert gone.status_code == 404
        assert await _attachments(client, org.owner, pipeline) == []
        assert len(await _revisions(client, org.owner, template["id"])) == 1
        [entry] = await _audit(client, org.owner, action="integration.deleted")
        assert entry["resource_type"] == "integration"
        assert entry["resource_id"] == created["id"]
        assert await _audit(client, org.owner, action="pipeline_integration.*") == []


class TestPermissions:
    async def test_a_viewer_reads_but_writes_nothing(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        viewer = await factory.member(org, "viewer")
        pipeline = await factory.pipeline(org.owner)
        created = await _created(client, org.owner, pipeline)
        url = f"{INTEGRATIONS}/{created['id']}"

        reads = [
            await client.get(INTEGRATIONS, headers=viewer.headers),
            await client.get(url, headers=viewer.headers),
        ]
        writes = [
            await _create(client, viewer, pipeline, name="Viewer's"),
            await client.put(url, json=created, headers=viewer.headers),
            await client.patch(url, json={"enabled": False}, headers=viewer.headers),
            await client.delete(url, headers=viewer.headers),
        ]

        assert [response.status_code for response in reads] == [200, 200]
        assert [response.status_code for response in writes] == [403] * 4
        assert {error_code(response) for response in writes} == {"FORBIDDEN"}
        assert (await client.get(url, headers=org.owner.headers)).json() == created

    async def test_an_editor_writes_but_only_an_admin_detaches(
        self, client: AsyncClient, factory: Factory
    ) -> None:
        org = await factory.org()
        editor = await factory.member(org, "editor")
        admin = await factory.member(org, "admin")
        pipeline = await factory.pipeline(org.owner)

        created = await _create(client, editor, pipeline)
        url = f"{INTEGRATIONS}/{created.json()['id']}"
        changed = await client.patch(
            url, json={"enabled": False}, headers=editor.headers
        )
        refused = await client.delete(url, headers=editor.headers)
        detached = await client.delete(url, headers=admin.headers)

        assert created.status_code == 201
        assert changed.status_code == 200
        assert refused.status_code == 403
        assert detached.status_code == 204
