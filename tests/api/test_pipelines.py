"""Pipelines over REST: create, read, list, change, delete and rotate keys,
with versions, permissions, org isolation and the audit trail."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from httpx import AsyncClient

from tests.factories import Factory, Member, error_code
from tests.helpers import TIMESTAMP, audit_entries, stored_secrets

PIPELINES = "/v1/admin/pipelines"
PIPELINE_KEY = re.compile(r"^dk_[0-9A-Za-z]{32}$")
PIPELINE_SECRET = re.compile(r"^sk_[0-9A-Za-z]{40}$")
DEFAULT_JS_BUILDER_CONFIG = {
    "script_filename": "d.js",
    "global_variable": "_df",
    "delivery_method": "cdn",
    "endpoint": None,
    "batch_size": 10,
    "flush_interval_ms": 1000,
}


def _url(pipeline: dict[str, Any], suffix: str = "") -> str:
    return f"{PIPELINES}/{pipeline['id']}{suffix}"


async def _names(client: AsyncClient, member: Member, **params: Any) -> list[str]:
    response = await client.get(PIPELINES, params=params, headers=member.headers)
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["data"]]


# Create


async def test_create_answers_201_with_key_and_one_time_secret(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        PIPELINES, json={"name": "Shop", "type": "web"}, headers=org.owner.headers
    )

    assert response.status_code == 201
    body = response.json()
    assert PIPELINE_KEY.match(body["pipeline_key"])
    assert PIPELINE_SECRET.match(body["pipeline_key_secret"])
    assert body["pipeline_key_secret_prefix"] == body["pipeline_key_secret"][:7]
    assert body["org_id"] == org.id
    assert body["version"] == 1


async def test_create_answers_an_etag_of_the_version(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        PIPELINES, json={"name": "Shop", "type": "web"}, headers=org.owner.headers
    )

    assert response.headers["ETag"] == '"v1"'


async def test_create_fills_in_the_documented_defaults(factory: Factory) -> None:
    org = await factory.org()

    created = await factory.pipeline(org.owner, name="Shop", type="app")

    assert created["js_builder_config"] == DEFAULT_JS_BUILDER_CONFIG
    assert created["identity_config"] == {
        "cross_domain_enabled": False,
        "cross_domain_domains": [],
    }
    assert created["rate_limit_rps"] == 1000
    assert created["domain_allowlist"] == []
    assert created["labels"] == []
    assert created["parameters"] == {}
    assert created["config"] == {}
    assert created["challenge_token_required"] is False
    assert created["enabled"] is True
    assert created["previous_key_expires_at"] is None
    assert TIMESTAMP.match(created["created_at"])


async def test_create_keeps_the_given_fields(factory: Factory) -> None:
    org = await factory.org()

    created = await factory.pipeline(
        org.owner,
        domain_allowlist=["Shop.Example.com", "*.example.org"],
        labels=["env:prod"],
        parameters={"region": "eu"},
        js_builder_config={"script_filename": "s.js", "batch_size": 25},
    )

    assert created["domain_allowlist"] == ["shop.example.com", "*.example.org"]
    assert created["labels"] == ["env:prod"]
    assert created["parameters"] == {"region": "eu"}
    assert created["js_builder_config"] == {
        **DEFAULT_JS_BUILDER_CONFIG,
        "script_filename": "s.js",
        "batch_size": 25,
    }


async def test_slug_comes_from_the_name(factory: Factory) -> None:
    org = await factory.org()

    created = await factory.pipeline(org.owner, name="  Café Shop: EU / Main!  ")

    assert created["slug"] == "cafe-shop-eu-main"


async def test_slug_taken_by_another_name_gets_a_suffix(factory: Factory) -> None:
    org = await factory.org()
    await factory.pipeline(org.owner, name="My Shop")

    created = await factory.pipeline(org.owner, name="my shop!")

    assert created["slug"] == "my-shop-2"


async def test_given_slug_is_kept(factory: Factory) -> None:
    org = await factory.org()

    created = await factory.pipeline(org.owner, name="Shop", slug="storefront")

    assert created["slug"] == "storefront"


async def test_duplicate_name_answers_already_exists(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    await factory.pipeline(org.owner, name="Shop")

    response = await client.post(
        PIPELINES, json={"name": "Shop", "type": "web"}, headers=org.owner.headers
    )

    assert response.status_code == 409
    assert error_code(response) == "ALREADY_EXISTS"


async def test_concurrent_creates_with_one_name_have_exactly_one_winner(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    body = {"name": "Shop", "type": "web"}

    responses = await asyncio.gather(
        *(
            client.post(PIPELINES, json=body, headers=org.owner.headers)
            for _ in range(5)
        )
    )

    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409]
    losers = [r for r in responses if r.status_code == 409]
    assert {error_code(r) for r in losers} == {"ALREADY_EXISTS"}


async def test_duplicate_slug_answers_already_exists(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    await factory.pipeline(org.owner, name="Shop", slug="shop")

    response = await client.post(
        PIPELINES,
        json={"name": "Other", "type": "web", "slug": "shop"},
        headers=org.owner.headers,
    )

    assert response.status_code == 409
    assert error_code(response) == "ALREADY_EXISTS"


async def test_same_name_in_another_org_is_allowed(factory: Factory) -> None:
    org = await factory.org()
    other = await factory.org()
    await factory.pipeline(org.owner, name="Shop")

    created = await factory.pipeline(other.owner, name="Shop")

    assert created["slug"] == "shop"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "x" * 201}, "name"),
        ({"labels": [f"l{i}" for i in range(51)]}, "labels"),
        ({"parameters": {f"k{i}": "v" for i in range(101)}}, "parameters"),
        ({"domain_allowlist": ["not a domain"]}, "domain_allowlist.0"),
        ({"slug": "Not A Slug"}, "slug"),
        ({"config": {"blob": "x" * (256 * 1024)}}, "config"),
    ],
)
async def test_input_over_its_bounds_answers_validation_error(
    client: AsyncClient, factory: Factory, fields: dict[str, Any], field: str
) -> None:
    org = await factory.org()

    response = await client.post(
        PIPELINES,
        json={"name": "Shop", "type": "web", **fields},
        headers=org.owner.headers,
    )

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    assert [d["field"] for d in response.json()["error"]["details"]] == [field]


@pytest.mark.parametrize(
    ("fields_json", "field"),
    [
        (b'{"name": "Sh\\u0000op"}', "name"),
        (b'{"name": "Sh\\ud800op"}', "name"),
        (b'{"labels": ["env:\\u0000"]}', "labels.0"),
        (b'{"parameters": {"region": "\\u0000"}}', "parameters.region"),
        (b'{"config": {"a": [{"b": "\\u0000"}]}}', "config"),
        (b'{"config": {"a\\u0000": 1}}', "config"),
        (b'{"config": {"a": "\\udc00"}}', "config"),
        (
            b'{"js_builder_config": {"endpoint": "https://e.example/\\u0000"}}',
            "js_builder_config.endpoint",
        ),
    ],
)
async def test_text_no_database_can_hold_answers_validation_error(
    client: AsyncClient, factory: Factory, fields_json: bytes, field: str
) -> None:
    org = await factory.org()
    fields = json.loads(fields_json)

    response = await client.post(
        PIPELINES,
        content=json.dumps({"name": "Shop", "type": "web", **fields}).encode(),
        headers={**org.owner.headers, "Content-Type": "application/json"},
    )

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    assert [d["field"] for d in response.json()["error"]["details"]] == [field]


async def test_inputs_at_their_bounds_are_accepted(factory: Factory) -> None:
    org = await factory.org()

    created = await factory.pipeline(
        org.owner,
        name="x" * 200,
        labels=[f"l{i}" for i in range(50)],
        parameters={f"k{i}": "v" for i in range(100)},
    )

    assert len(created["name"]) == 200
    assert len(created["labels"]) == 50
    assert len(created["parameters"]) == 100


async def test_key_fields_cannot_be_given_at_creation(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        PIPELINES,
        json={"name": "Shop", "type": "web", "pipeline_key": "dk_" + "a" * 32},
        headers=org.owner.headers,
    )

    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "pipeline_key"


# The secret


async def test_secret_is_never_shown_again(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await factory.pipeline(org.owner)
    secret = created["pipeline_key_secret"]

    one = await client.get(_url(created), headers=org.owner.headers)
    listed = await client.get(PIPELINES, headers=org.owner.headers)

    assert "pipeline_key_secret" not in one.json()
    assert "pipeline_key_secret" not in listed.json()["data"][0]
    assert secret not in one.text
    assert secret not in listed.text
    assert one.json()["pipeline_key_secret_prefix"] == secret[:7]


async def test_secret_is_stored_encrypted(factory: Factory) -> None:
    org = await factory.org()

    created = await factory.pipeline(org.owner)

    secrets = await stored_secrets(factory.app, org.id)
    assert len(secrets) == 1
    assert created["pipeline_key_secret"] not in secrets[0].ciphertext
    assert created["pipeline_key_secret"][3:] not in secrets[0].ciphertext
    cipher = factory.app.state.services.cipher
    plaintext = cipher.decrypt(secrets[0].ciphertext, secrets[0].id)
    assert plaintext == created["pipeline_key_secret"]


# Read and list


async def test_get_answers_the_pipeline_with_its_etag(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await factory.pipeline(org.owner, name="Shop")

    response = await client.get(_url(created), headers=org.owner.headers)

    assert response.status_code == 200
    assert response.headers["ETag"] == '"v1"'
    expected = {k: v for k, v in created.items() if k != "pipeline_key_secret"}
    assert response.json() == expected


async def test_unknown_pipeline_answers_not_found(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.get(
        f"{PIPELINES}/pip_01HZZZZZZZZZZZZZZZZZZZZZZZ", headers=org.owner.headers
    )

    assert response.status_code == 404
    assert error_code(response) == "NOT_FOUND"


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
@pytest.mark.parametrize("pipeline_id", ["not-an-id", "pip_a%00b", "x" * 300])
async def test_id_this_service_cannot_have_issued_answers_not_found(
    client: AsyncClient, factory: Factory, method: str, pipeline_id: str
) -> None:
    org = await factory.org()

    response = await client.request(
        method,
        f"{PIPELINES}/{pipeline_id}",
        json={"name": "Shop"} if method == "PATCH" else None,
        headers=org.owner.headers,
    )

    assert response.status_code == 404
    assert error_code(response) == "NOT_FOUND"


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_another_orgs_pipeline_answers_not_found(
    client: AsyncClient, factory: Factory, method: str
) -> None:
    org = await factory.org()
    other = await factory.org()
    foreign = await factory.pipeline(other.owner)

    response = await client.request(
        method,
        _url(foreign),
        json={"name": "Mine now"} if method == "PATCH" else None,
        headers=org.owner.headers,
    )

    assert response.status_code == 404
    assert error_code(response) == "NOT_FOUND"


async def test_another_orgs_key_cannot_be_rotated(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    other = await factory.org()
    foreign = await factory.pipeline(other.owner)

    response = await client.post(
        _url(foreign, "/rotate-key"), json={}, headers=org.owner.headers
    )

    assert response.status_code == 404


async def test_list_holds_only_the_callers_org(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    other = await factory.org()
    await factory.pipeline(org.owner, name="Mine")
    await factory.pipeline(other.owner, name="Theirs")

    names = await _names(client, org.owner)

    assert names == ["Mine"]


async def test_list_answers_the_list_envelope_in_creation_order(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    for name in ("First", "Second", "Third"):
        await factory.pipeline(org.owner, name=name)

    response = await client.get(PIPELINES, headers=org.owner.headers)

    body = response.json()
    assert [item["name"] for item in body["data"]] == ["First", "Second", "Third"]
    assert body["next_cursor"] is None
    assert body["has_more"] is False


async def test_label_filter_needs_every_label(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    await factory.pipeline(org.owner, name="Both", labels=["env:prod", "team:web"])
    await factory.pipeline(org.owner, name="Env", labels=["env:prod"])
    await factory.pipeline(org.owner, name="Team", labels=["team:web", "x"])

    both = await _names(client, org.owner, label=["env:prod", "team:web"])
    env = await _names(client, org.owner, label="env:prod")

    assert both == ["Both"]
    assert env == ["Both", "Env"]


async def test_label_filter_matches_whole_labels(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    await factory.pipeline(org.owner, name="Prod", labels=["env:production"])

    names = await _names(client, org.owner, label="env:prod")

    assert names == []


async def test_type_filter(client: AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    await factory.pipeline(org.owner, name="Web", type="web")
    await factory.pipeline(org.owner, name="App", type="app")
    await factory.pipeline(org.owner, name="Server", type="server")

    names = await _names(client, org.owner, type="app")

    assert names == ["App"]


@pytest.mark.parametrize(
    ("enabled", "expected"), [("true", ["On"]), ("false", ["Off"])]
)
async def test_enabled_filter(
    client: AsyncClient, factory: Factory, enabled: str, expected: list[str]
) -> None:
    org = await factory.org()
    await factory.pipeline(org.owner, name="On")
    await factory.pipeline(org.owner, name="Off", enabled=False)

    names = await _names(client, org.owner, enabled=enabled)

    assert names == expected


async def test_q_filter_is_a_case_insensitive_substring_match(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    for name in ("Main SHOP", "shopfront", "Blog"):
        await factory.pipeline(org.owner, name=name)

    names = await _names(client, org.owner, q="Shop")

    assert names == ["Main SHOP", "shopfront"]


@pytest.mark.parametrize(("q", "expected"), [("100%", ["100% Pure"]), ("a_b", ["a_b"])])
async def test_q_filter_takes_wildcards_literally(
    client: AsyncClient, factory: Factory, q: str, expected: list[str]
) -> None:
    org = await factory.org()
    for name in ("100% Pure", "1000 Pure", "a_b", "axb"):
        await factory.pipeline(org.owner, name=name)

    names = await _names(client, org.owner, q=q)

    assert names == expected


@pytest.mark.parametrize(
    ("params", "field"),
    [({"q": "\x00"}, "q"), ({"label": ["env:prod", "env:\x00"]}, "labels.1")],
)
async def test_filter_text_no_database_can_hold_answers_validation_error(
    client: AsyncClient, factory: Factory, params: dict[str, Any], field: str
) -> None:
    org = await factory.org()

    response = await client.get(PIPELINES, params=params, headers=org.owner.headers)

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    assert [d["field"] for d in response.json()["error"]["details"]] == [field]


async def test_invalid_filter_value_answers_validation_error(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.get(
        PIPELINES, params={"type": "desktop"}, headers=org.owner.headers
    )

    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "type"


async def test_pages_neither_skip_nor_repeat_while_pipelines_are_added(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = [(await factory.pipeline(org.owner))["id"] for _ in range(5)]
    seen: list[str] = []
    pages = 0
    cursor: str | None = None

    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor is not None:
            params["cursor"] = cursor
        page = (
            await client.get(PIPELINES, params=params, headers=org.owner.headers)
        ).json()
        pages += 1
        seen += [item["id"] for item in page["data"]]
        assert page["has_more"] is (page["next_cursor"] is not None)
        cursor = page["next_cursor"]
        if cursor is None:
            break
        if pages <= 2:
            created.append((await factory.pipeline(org.owner))["id"])

    assert pages == 4
    assert seen == sorted(created)
    assert len(set(seen)) == 7


async def test_last_full_page_has_no_next_cursor(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    for _ in range(2):
        await factory.pipeline(org.owner)

    response = await client.get(
        PIPELINES, params={"limit": 2}, headers=org.owner.headers
    )

    assert len(response.json()["data"]) == 2
    assert response.json()["next_cursor"] is None
    assert response.json()["has_more"] is False


async def test_page_size_defaults_to_fifty(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    for _ in range(51):
        await factory.pipeline(org.owner)

    response = await client.get(PIPELINES, headers=org.owner.headers)

    assert len(response.json()["data"]) == 50
    assert response.json()["has_more"] is True


# Update


async def test_patch_replaces_only_the_named_fields(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await factory.pipeline(
        org.owner, name="Shop", labels=["env:prod"], parameters={"region": "eu"}
    )

    response = await client.patch(
        _url(created), json={"labels": ["env:dev"]}, headers=org.owner.headers
    )

    assert response.status_code == 200
    body = response.json()
    assert body["labels"] == ["env:dev"]
    assert body["name"] == "Shop"
    assert body["parameters"] == {"region": "eu"}


async def test_patch_replaces_a_nested_object_whole(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await factory.pipeline(
        org.owner, js_builder_config={"script_filename": "s.js", "batch_size": 25}
    )

    response = await client.patch(
        _url(created),
        json={"js_builder_config": {"flush_interval_ms": 500}},
        headers=org.owner.headers,
    )

    assert response.json()["js_builder_config"] == {
        **DEFAULT_JS_BUILDER_CONFIG,
        "flush_interval_ms": 500,
    }


async def test_patch_is_kept(client: AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    created = await factory.pipeline(org.owner)
    await client.patch(
        _url(created),
        json={"name": "Renamed", "enabled": False},
        headers=org.owner.headers,
    )

    response = await client.get(_url(created), headers=org.owner.headers)

    assert response.json()["name"] == "Renamed"
    assert response.json()["enabled"] is False


async def test_patch_of_the_pipeline_key_answers_validation_error(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await factory.pipeline(org.owner)

    response = await client.patch(
        _url(created),
        json={"pipeline_key": "dk_" + "a" * 32},
        headers=org.owner.headers,
    )

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    assert response.json()["error"]["details"][0]["field"] == "pipeline_key"


@pytest.mark.parametrize(
    "field", ["name", "type", "labels", "enabled", "js_builder_config", "config"]
)
async def test_patch_setting_a_required_field_to_null_answers_validation_error(
    client: AsyncClient, factory: Factory, field: str
) -> None:
    org = await factory.org()
    created = await factory.pipeline(org.owner)

    response = await client.patch(
        _url(created), json={field: None}, headers=org.owner.headers
    )

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    assert response.json()["error"]["details"][0]["field"] == field


async def test_patch_to_a_taken_name_answers_already_exists(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    await factory.pipeline(org.owner, name="Shop")
    created = await factory.pipeline(org.owner, name="Blog")

    response = await client.patch(
        _url(created), json={"name": "Shop"}, headers=org.owner.headers
    )

    assert response.status_code == 409
    assert error_code(response) == "ALREADY_EXISTS"


async def test_patch_increments_the_version_and_changes_the_etag(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await factory.pipeline(org.owner)

    response = await client.patch(
        _url(created), json={"name": "Renamed"}, headers=org.owner.headers
    )

    assert response.json()["version"] == 2
    assert response.headers["ETag"] == '"v2"'


async def test_patch_with_the_current_etag_succeeds(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await factory.pipeline(org.owner)

    response = await client.patch(
        _url(created),
        json={"name": "Renamed"},
        headers={**org.owner.headers, "If-Match": '"v1"'},
    )

    assert response.status_code == 200


async def test_patch_with_a_stale_etag_answers_precondition_failed(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await factory.pipeline(org.owner)
    await client.patch(_url(created), json={"name": "One"}, headers=org.owner.headers)

    response = await client.patch(
        _url(created),
        json={"name": "Two"},
        headers={**org.owner.headers, "If-Match": '"v1"'},
    )

    assert response.status_code == 412
    assert error_code(response) == "PRECONDITION_FAILED"


async def test_concurrent_patches_with_one_etag_have_exactly_one_winner(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await factory.pipeline(org.owner)
    headers = {**org.owner.headers, "If-Match": '"v1"'}

    responses = await asyncio.gather(
        client.patch(_url(created), json={"name": "Alice's"}, headers=headers),
        client.patch(_url(created), json={"name": "Bob's"}, headers=headers),
    )

    assert sorted(r.status_code for r in responses) == [200, 412]
    winner = next(r for r in responses if r.status_code == 200).json()
    final = (await client.get(_url(created), headers=org.owner.headers)).json()
    assert final["name"] == winner["name"]
    assert final["version"] == 2


# Delete


async def test_deleted_pipeline_answers_not_found(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await factory.pipeline(org.owner)
    deleted = await client.delete(_url(created), headers=org.owner.headers)

    response = await client.get(_url(created), headers=org.owner.headers)

    assert deleted.status_code == 204
    assert response.status_code == 404


async def test_delete_removes_the_stored_secret(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await factory.pipeline(org.owner)

    await client.delete(_url(created), headers=org.owner.headers)

    assert await stored_secrets(factory.app, org.id) == []


async def test_delete_removes_a_rotated_out_secret_too(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await factory.pipeline(org.owner)
    await client.post(
        _url(created, "/rotate-key"),
        json={"grace_seconds": 60},
        headers=org.owner.headers,
    )

    await client.delete(_url(created), headers=org.owner.headers)

    assert await stored_secrets(factory.app, org.id) == []


async def test_delete_with_a_stale_etag_answers_precondition_failed(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await factory.pipeline(org.owner)
    await client.patch(_url(created), json={"name": "One"}, headers=org.owner.headers)

    response = await client.delete(
        _url(created), headers={**org.owner.headers, "If-Match": '"v1"'}
    )

    assert response.status_code == 412
    assert error_code(response) == "PRECONDITION_FAILED"
    still_there = await client.get(_url(created), headers=org.owner.headers)
    assert still_there.status_code == 200


async def test_malformed_if_match_answers_bad_request(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await factory.pipeline(org.owner)

    response = await client.delete(
        _url(created), headers={**org.owner.headers, "If-Match": "version one"}
    )

    assert response.status_code == 400
    assert error_code(response) == "BAD_REQUEST"


# Permissions


async def test_viewer_can_read_pipelines(client: AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    viewer = await factory.member(org, "viewer")
    created = await factory.pipeline(org.owner)

    one = await client.get(_url(created), headers=viewer.headers)
    listed = await client.get(PIPELINES, headers=viewer.headers)

    assert one.status_code == 200
    assert listed.status_code == 200


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("POST", "", {"name": "Mine", "type": "web"}),
        ("PATCH", "/{id}", {"name": "Mine"}),
        ("DELETE", "/{id}", None),
        ("POST", "/{id}/rotate-key", {}),
    ],
)
async def test_viewer_cannot_write_pipelines(
    client: AsyncClient,
    factory: Factory,
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
) -> None:
    org = await factory.org()
    viewer = await factory.member(org, "viewer")
    created = await factory.pipeline(org.owner)

    response = await client.request(
        method,
        PIPELINES + suffix.format(id=created["id"]),
        json=body,
        headers=viewer.headers,
    )

    assert response.status_code == 403
    assert error_code(response) == "FORBIDDEN"


async def test_editor_can_create_change_and_rotate(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")
    created = await factory.pipeline(editor)

    patched = await client.patch(
        _url(created), json={"name": "Renamed"}, headers=editor.headers
    )
    rotated = await client.post(
        _url(created, "/rotate-key"), json={}, headers=editor.headers
    )

    assert patched.status_code == 200
    assert rotated.status_code == 200


async def test_editor_cannot_delete_a_pipeline(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")
    created = await factory.pipeline(editor)

    response = await client.delete(_url(created), headers=editor.headers)

    assert response.status_code == 403
    assert error_code(response) == "FORBIDDEN"


async def test_admin_can_delete_a_pipeline(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org, "admin")
    created = await factory.pipeline(org.owner)

    response = await client.delete(_url(created), headers=admin.headers)

    assert response.status_code == 204


# Key rotation


async def test_rotation_issues_a_new_key_and_secret(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await factory.pipeline(org.owner)

    response = await client.post(
        _url(created, "/rotate-key"), json={}, headers=org.owner.headers
    )

    assert response.status_code == 200
    body = response.json()
    assert PIPELINE_KEY.match(body["pipeline_key"])
    assert PIPELINE_SECRET.match(body["pipeline_key_secret"])
    assert body["pipeline_key"] != created["pipeline_key"]
    assert body["pipeline_key_secret"] != created["pipeline_key_secret"]
    assert body["pipeline_key_secret_prefix"] == body["pipeline_key_secret"][:7]
    assert body["previous_key_expires_at"] is None


async def test_rotation_without_a_body_retires_the_old_key_at_once(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await factory.pipeline(org.owner)

    response = await client.post(
        _url(created, "/rotate-key"), headers=org.owner.headers
    )

    assert response.status_code == 200
    assert response.json()["previous_key_expires_at"] is None
    assert len(await stored_secrets(factory.app, org.id)) == 1


async def test_rotation_with_grace_keeps_the_old_key_until_it_expires(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await factory.pipeline(org.owner)

    response = await client.post(
        _url(created, "/rotate-key"),
        json={"grace_seconds": 3600},
        headers=org.owner.headers,
    )

    expires_at = response.json()["previous_key_expires_at"]
    assert TIMESTAMP.match(expires_at)
    assert expires_at > response.json()["updated_at"]
    assert len(await stored_secrets(factory.app, org.id)) == 2


async def test_second_rotation_with_grace_retires_the_oldest_secret(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await factory.pipeline(org.owner)
    first = await client.post(
        _url(created, "/rotate-key"),
        json={"grace_seconds": 60},
        headers=org.owner.headers,
    )

    second = await client.post(
        _url(created, "/rotate-key"),
        json={"grace_seconds": 60},
        headers=org.owner.headers,
    )

    cipher = factory.app.state.services.cipher
    kept = {
        cipher.decrypt(secret.ciphertext, secret.id)
        for secret in await stored_secrets(factory.app, org.id)
    }
    assert kept == {
        first.json()["pipeline_key_secret"],
        second.json()["pipeline_key_secret"],
    }


async def test_rotation_without_grace_ends_an_earlier_grace_at_once(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await factory.pipeline(org.owner)
    await client.post(
        _url(created, "/rotate-key"),
        json={"grace_seconds": 60},
        headers=org.owner.headers,
    )

    response = await client.post(
        _url(created, "/rotate-key"), json={}, headers=org.owner.headers
    )

    assert response.json()["previous_key_expires_at"] is None
    assert len(await stored_secrets(factory.app, org.id)) == 1


@pytest.mark.parametrize("grace_seconds", [-1, 86_401])
async def test_grace_outside_a_day_answers_validation_error(
    client: AsyncClient, factory: Factory, grace_seconds: int
) -> None:
    org = await factory.org()
    created = await factory.pipeline(org.owner)

    response = await client.post(
        _url(created, "/rotate-key"),
        json={"grace_seconds": grace_seconds},
        headers=org.owner.headers,
    )

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    assert response.json()["error"]["details"][0]["field"] == "grace_seconds"


async def test_rotation_changes_the_version(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await factory.pipeline(org.owner)

    response = await client.post(
        _url(created, "/rotate-key"), json={}, headers=org.owner.headers
    )

    assert response.json()["version"] == 2
    assert response.headers["ETag"] == '"v2"'


async def test_rotated_secret_is_never_shown_again(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await factory.pipeline(org.owner)
    rotated = await client.post(
        _url(created, "/rotate-key"), json={}, headers=org.owner.headers
    )

    response = await client.get(_url(created), headers=org.owner.headers)

    assert rotated.json()["pipeline_key_secret"] not in response.text
    assert "pipeline_key_secret" not in response.json()


# Audit


async def _entry(factory: Factory, org_id: str, action: str) -> Any:
    entries = await audit_entries(factory.app, org_id, action)
    assert len(entries) == 1, [entry.action for entry in entries]
    return entries[0]


async def test_creation_is_audited_with_the_request_id(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        PIPELINES,
        json={"name": "Shop", "type": "web"},
        headers={**org.owner.headers, "X-Request-ID": "req-create-1"},
    )

    entry = await _entry(factory, org.id, "pipeline.created")
    assert entry.resource_type == "pipeline"
    assert entry.resource_id == response.json()["id"]
    assert entry.user_id == org.owner.id
    assert entry.user_email == org.owner.email
    assert entry.request_id == "req-create-1"
    assert entry.changes["name"] == {"old": None, "new": "Shop"}


async def test_update_is_audited_with_the_changed_fields(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await factory.pipeline(org.owner, name="Shop")

    await client.patch(
        _url(created),
        json={"name": "Store", "labels": []},
        headers={**org.owner.headers, "X-Request-ID": "req-update-1"},
    )

    entry = await _entry(factory, org.id, "pipeline.updated")
    assert entry.resource_id == created["id"]
    assert entry.request_id == "req-update-1"
    assert entry.changes == {"name": {"old": "Shop", "new": "Store"}}


async def test_patch_that_changes_nothing_is_not_audited(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await factory.pipeline(org.owner, name="Shop")

    response = await client.patch(
        _url(created), json={"name": "Shop"}, headers=org.owner.headers
    )

    assert response.json()["version"] == 1
    assert await audit_entries(factory.app, org.id, "pipeline.updated") == []


async def test_deletion_is_audited_with_the_request_id(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await factory.pipeline(org.owner)

    await client.delete(
        _url(created), headers={**org.owner.headers, "X-Request-ID": "req-delete-1"}
    )

    entry = await _entry(factory, org.id, "pipeline.deleted")
    assert entry.resource_id == created["id"]
    assert entry.request_id == "req-delete-1"


async def test_rotation_is_audited_with_the_request_id(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await factory.pipeline(org.owner)

    response = await client.post(
        _url(created, "/rotate-key"),
        json={"grace_seconds": 60},
        headers={**org.owner.headers, "X-Request-ID": "req-rotate-1"},
    )

    entry = await _entry(factory, org.id, "pipeline.key_rotated")
    assert entry.resource_id == created["id"]
    assert entry.request_id == "req-rotate-1"
    assert entry.changes["pipeline_key"] == {
        "old": created["pipeline_key"],
        "new": response.json()["pipeline_key"],
    }
    assert entry.metadata_ == {"grace_seconds": 60}


async def test_audit_entries_never_hold_a_pipeline_secret(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await factory.pipeline(org.owner)
    await client.patch(_url(created), json={"name": "R"}, headers=org.owner.headers)
    rotated = await client.post(
        _url(created, "/rotate-key"), json={}, headers=org.owner.headers
    )
    await client.delete(_url(created), headers=org.owner.headers)

    entries = await audit_entries(factory.app, org.id)

    stored = json.dumps(
        [[entry.changes, entry.metadata_] for entry in entries], default=str
    )
    assert {entry.action for entry in entries} >= {
        "pipeline.created",
        "pipeline.updated",
        "pipeline.key_rotated",
        "pipeline.deleted",
    }
    assert created["pipeline_key_secret"] not in stored
    assert rotated.json()["pipeline_key_secret"] not in stored


async def test_refused_write_is_not_audited(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    await factory.pipeline(org.owner, name="Shop")

    await client.post(
        PIPELINES, json={"name": "Shop", "type": "web"}, headers=org.owner.headers
    )

    assert len(await audit_entries(factory.app, org.id, "pipeline.created")) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("enabled", "yes"),
        ("challenge_token_required", "false"),
        ("rate_limit_rps", "10"),
    ],
)
async def test_values_of_the_wrong_json_type_are_refused_not_coerced(
    client: AsyncClient, factory: Factory, field: str, value: str
) -> None:
    org = await factory.org()

    response = await client.post(
        "/v1/admin/pipelines",
        json={"name": "Strict", "type": "web", field: value},
        headers=org.owner.headers,
    )

    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == field
