"""Sources (legacy) over REST: a view over pipelines, so what /sources writes
/pipelines and GraphQL read, and the other way round; PUT replaces, PATCH
merges inside `config`; versions, permissions, validation and the audit
trail as for pipelines."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response

from tests.factories import Factory, Member, error_code
from tests.statements import counted_selects

API = "/v1/admin"
SOURCES = f"{API}/sources"
PIPELINES = f"{API}/pipelines"
GRAPHQL = f"{API}/graphql"
PIPELINE_KEY = re.compile(r"^dk_[0-9A-Za-z]{32}$")
PIPELINE_SECRET = re.compile(r"^sk_[0-9A-Za-z]{40}$")
UNKNOWN_ID = "pip_01HZZZZZZZZZZZZZZZZZZZZZZZ"
MAPPING = {"defaults": {"action": "pass"}}
DEFAULT_CONFIG = {
    "vendors": [],
    "consent": {"enabled": False, "default_categories": [], "provider": None},
    "cross_domain": {"enabled": False, "domains": []},
    "collector": {"filename": "d.js", "global_var": "_df"},
}
FULL_CONFIG = {
    "consent": {
        "enabled": True,
        "default_categories": ["analytics", "marketing"],
        "provider": "onetrust",
    },
    "cross_domain": {"enabled": True, "domains": ["shop.example.com", "example.org"]},
    "collector": {"filename": "collect.js", "global_var": "_shop"},
}
PIPELINE_QUERY = """
query ($id: ID!) {
  pipeline(id: $id) {
    name domainAllowlist config version
    identityConfig { crossDomainEnabled crossDomainDomains }
    jsBuilderConfig { scriptFilename globalVariable batchSize }
  }
}
"""
UPDATE_PIPELINE = """
mutation ($input: UpdatePipelineInput!) {
  updatePipeline(input: $input) {
    pipeline { id version }
    userErrors { field code message }
  }
}
"""


def _url(source: dict[str, Any], suffix: str = "") -> str:
    return f"{SOURCES}/{source['id']}{suffix}"


async def _source(client: AsyncClient, member: Member, **fields: Any) -> dict[str, Any]:
    body = {"name": f"Site {uuid.uuid4().hex[:8]}", **fields}
    response = await client.post(SOURCES, json=body, headers=member.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _read(client: AsyncClient, member: Member, path: str) -> dict[str, Any]:
    response = await client.get(path, headers=member.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _graphql(
    client: AsyncClient, member: Member, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(
        GRAPHQL, json={"query": query, "variables": variables}, headers=member.headers
    )
    assert response.status_code == 200, response.text
    assert "errors" not in response.json(), response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def _audit(
    client: AsyncClient, member: Member, resource_id: str
) -> list[dict[str, Any]]:
    """The entries naming `resource_id`, oldest first."""
    response = await client.get(
        f"{API}/audit-logs",
        params={"resource_id": resource_id},
        headers=member.headers,
    )
    assert response.status_code == 200, response.text
    return list(reversed(response.json()["data"]))


async def _attach(
    client: AsyncClient, member: Member, source_id: str, template_id: str
) -> dict[str, Any]:
    response = await client.post(
        f"{PIPELINES}/{source_id}/integrations",
        json={"integration_id": template_id},
        headers=member.headers,
    )
    assert response.status_code == 201, response.text
    attachment: dict[str, Any] = response.json()
    return attachment


async def _webhook_template(client: AsyncClient, member: Member) -> str:
    response = await client.post(
        f"{API}/integration-templates",
        json={
            "name": f"Hook {uuid.uuid4().hex[:8]}",
            "vendor": "webhook",
            "config": MAPPING,
        },
        headers=member.headers,
    )
    assert response.status_code == 201, response.text
    template_id: str = response.json()["template"]["id"]
    return template_id


async def _ga4_template(client: AsyncClient, member: Member) -> str:
    response = await client.post(
        f"{API}/integration-catalog/ga4/install",
        json={
            "name": f"GA4 {uuid.uuid4().hex[:8]}",
            "config": {"measurement_id": "G-ABC123", "api_secret": "s3cret"},
        },
        headers=member.headers,
    )
    assert response.status_code == 201, response.text
    template_id: str = response.json()["template"]["id"]
    return template_id


def _fields(response: Response) -> list[str]:
    return [detail["field"] for detail in response.json()["error"]["details"]]


def _problems(response: Response) -> list[tuple[str, str]]:
    details = response.json()["error"]["details"]
    return sorted((detail["field"], detail["code"]) for detail in details)


async def _stored_consent(
    client: AsyncClient, member: Member, consent: Any, **fields: Any
) -> dict[str, Any]:
    """A pipeline whose `config.consent` another face wrote as it liked."""
    pipeline = await client.patch(
        f"{PIPELINES}/{(await _source(client, member, **fields))['id']}",
        json={"config": {"consent": consent}},
        headers=member.headers,
    )
    assert pipeline.status_code == 200, pipeline.text
    created: dict[str, Any] = pipeline.json()
    return created


# Create


async def test_create_answers_201_with_the_source_and_a_one_time_secret(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        SOURCES, json={"name": "Shop"}, headers=org.owner.headers
    )

    assert response.status_code == 201
    assert response.headers["ETag"] == '"v1"'
    body = response.json()
    assert body["id"].startswith("pip_")
    assert body["name"] == "Shop"
    assert PIPELINE_KEY.match(body["pipeline_key"])
    assert PIPELINE_SECRET.match(body["pipeline_key_secret"])
    assert body["domain"] is None
    assert body["config"] == DEFAULT_CONFIG
    assert set(body) == {
        "id",
        "name",
        "pipeline_key",
        "pipeline_key_secret",
        "domain",
        "config",
        "created_at",
        "updated_at",
    }


async def test_create_makes_a_web_pipeline_holding_the_sources_fields(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    created = await _source(
        client, org.owner, name="Shop", domain="Shop.Example.com", config=FULL_CONFIG
    )

    pipeline = await _read(client, org.owner, f"{PIPELINES}/{created['id']}")
    assert pipeline["type"] == "web"
    assert pipeline["name"] == "Shop"
    assert pipeline["pipeline_key"] == created["pipeline_key"]
    assert pipeline["domain_allowlist"] == ["shop.example.com"]
    assert pipeline["config"] == {"consent": FULL_CONFIG["consent"]}
    assert pipeline["identity_config"] == {
        "cross_domain_enabled": True,
        "cross_domain_domains": ["shop.example.com", "example.org"],
    }
    assert pipeline["js_builder_config"]["script_filename"] == "collect.js"
    assert pipeline["js_builder_config"]["global_variable"] == "_shop"
    assert pipeline["js_builder_config"]["batch_size"] == 10


async def test_create_answers_the_fields_as_stored(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    created = await _source(
        client, org.owner, domain="Shop.Example.com", config=FULL_CONFIG
    )

    assert created["domain"] == "shop.example.com"
    assert created["config"] == {**FULL_CONFIG, "vendors": []}


async def test_a_config_section_left_out_takes_its_defaults(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    created = await _source(client, org.owner, config={"consent": {"enabled": True}})

    assert created["config"] == {
        **DEFAULT_CONFIG,
        "consent": {"enabled": True, "default_categories": [], "provider": None},
    }


async def test_create_without_a_name_names_every_problem_at_once(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        SOURCES,
        json={"domain": "not a domain", "config": {"consent": {"enabled": "yes"}}},
        headers=org.owner.headers,
    )

    assert response.status_code == 400
    assert error_code(response) == "MISSING_FIELD"
    assert sorted(_fields(response)) == [
        "config.consent.enabled",
        "domain",
        "name",
    ]


@pytest.mark.parametrize(
    "field",
    ["id", "pipeline_key", "created_at", "updated_at"],
)
async def test_create_refuses_the_fields_only_an_answer_carries(
    client: AsyncClient, factory: Factory, field: str
) -> None:
    org = await factory.org()
    read = await _source(client, org.owner)

    response = await client.post(
        SOURCES,
        json={"name": "Copy", field: read[field]},
        headers=org.owner.headers,
    )

    assert response.status_code == 422
    assert _problems(response) == [(field, "UNKNOWN_FIELD")]
    listed = await _read(client, org.owner, SOURCES)
    assert [item["name"] for item in listed["data"]] == [read["name"]]


async def test_a_taken_name_answers_already_exists(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    await factory.pipeline(org.owner, name="Shop")

    response = await client.post(
        SOURCES, json={"name": "Shop"}, headers=org.owner.headers
    )

    assert response.status_code == 409
    assert error_code(response) == "ALREADY_EXISTS"


async def test_a_repeated_create_with_its_idempotency_key_answers_the_first_source(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    headers = {**org.owner.headers, "Idempotency-Key": "create-source-1"}

    first = await client.post(SOURCES, json={"name": "Shop"}, headers=headers)
    second = await client.post(SOURCES, json={"name": "Shop"}, headers=headers)

    listed = await _read(client, org.owner, SOURCES)
    assert second.status_code == 201
    assert second.json() == first.json()
    assert [item["id"] for item in listed["data"]] == [first.json()["id"]]


# Read and list


async def test_get_answers_the_source_with_its_etag_and_no_secret(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _source(client, org.owner, domain="shop.example.com")

    response = await client.get(_url(created), headers=org.owner.headers)

    assert response.status_code == 200
    assert response.headers["ETag"] == '"v1"'
    expected = {k: v for k, v in created.items() if k != "pipeline_key_secret"}
    assert response.json() == expected


async def test_a_pipeline_written_through_pipelines_reads_as_a_source(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner, type="app")
    await client.patch(
        f"{PIPELINES}/{pipeline['id']}",
        json={
            "name": "Renamed",
            "domain_allowlist": ["a.example.com", "b.example.com"],
            "config": {
                "consent": {"enabled": True, "provider": "didomi"},
                "theme": "dark",
            },
            "identity_config": {
                "cross_domain_enabled": True,
                "cross_domain_domains": ["a.example.com"],
            },
            "js_builder_config": {"script_filename": "t.js", "global_variable": "_t"},
        },
        headers=org.owner.headers,
    )

    source = await _read(client, org.owner, f"{SOURCES}/{pipeline['id']}")

    assert source["name"] == "Renamed"
    assert source["domain"] == "a.example.com"
    assert source["config"] == {
        "vendors": [],
        "consent": {"enabled": True, "default_categories": [], "provider": "didomi"},
        "cross_domain": {"enabled": True, "domains": ["a.example.com"]},
        "collector": {"filename": "t.js", "global_var": "_t"},
    }


async def test_a_pipeline_changed_through_graphql_reads_as_a_source(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _source(client, org.owner)
    await _graphql(
        client,
        org.owner,
        UPDATE_PIPELINE,
        {
            "input": {
                "id": created["id"],
                "domainAllowlist": ["gql.example.com"],
                "config": {"consent": {"enabled": True, "default_categories": ["ads"]}},
                "identityConfig": {
                    "crossDomainEnabled": True,
                    "crossDomainDomains": ["gql.example.com"],
                },
                "jsBuilderConfig": {"scriptFilename": "g.js", "globalVariable": "_g"},
            }
        },
    )

    source = await _read(client, org.owner, _url(created))

    assert source["domain"] == "gql.example.com"
    assert source["config"]["consent"] == {
        "enabled": True,
        "default_categories": ["ads"],
        "provider": None,
    }
    assert source["config"]["cross_domain"] == {
        "enabled": True,
        "domains": ["gql.example.com"],
    }
    assert source["config"]["collector"] == {"filename": "g.js", "global_var": "_g"}


async def test_a_source_write_reads_back_through_pipelines_and_graphql(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _source(client, org.owner)

    await client.put(
        _url(created),
        json={"name": "Store", "domain": "store.example.com", "config": FULL_CONFIG},
        headers=org.owner.headers,
    )

    pipeline = await _read(client, org.owner, f"{PIPELINES}/{created['id']}")
    data = await _graphql(client, org.owner, PIPELINE_QUERY, {"id": created["id"]})
    for seen in (pipeline, data["pipeline"]):
        assert seen["name"] == "Store"
        assert seen["config"] == {"consent": FULL_CONFIG["consent"]}
        assert seen["version"] == 2
    assert pipeline["domain_allowlist"] == ["store.example.com"]
    assert data["pipeline"]["domainAllowlist"] == ["store.example.com"]
    assert data["pipeline"]["identityConfig"] == {
        "crossDomainEnabled": True,
        "crossDomainDomains": ["shop.example.com", "example.org"],
    }
    assert data["pipeline"]["jsBuilderConfig"] == {
        "scriptFilename": "collect.js",
        "globalVariable": "_shop",
        "batchSize": 10,
    }


async def test_vendors_are_those_of_the_attached_integrations(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _source(client, org.owner)
    other = await _source(client, org.owner)
    await _attach(
        client, org.owner, created["id"], await _ga4_template(client, org.owner)
    )
    await _attach(
        client, org.owner, created["id"], await _webhook_template(client, org.owner)
    )
    await _attach(
        client, org.owner, other["id"], await _webhook_template(client, org.owner)
    )

    source = await _read(client, org.owner, _url(created))

    assert source["config"]["vendors"] == ["ga4", "webhook"]


async def test_writing_vendors_changes_nothing(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _source(client, org.owner)

    response = await client.patch(
        _url(created),
        json={"config": {"vendors": ["ga4", "meta"]}},
        headers=org.owner.headers,
    )

    assert response.status_code == 200
    assert response.json()["config"]["vendors"] == []
    assert response.headers["ETag"] == '"v1"'
    assert [
        entry["action"] for entry in await _audit(client, org.owner, created["id"])
    ] == ["source.created"]


async def test_list_items_have_no_config_and_come_in_creation_order(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    other = await factory.org()
    await _source(client, org.owner, name="First", domain="first.example.com")
    await factory.pipeline(org.owner, name="Second", type="server")
    await _source(client, other.owner, name="Theirs")

    response = await client.get(SOURCES, headers=org.owner.headers)

    body = response.json()
    assert response.status_code == 200
    assert [item["name"] for item in body["data"]] == ["First", "Second"]
    assert body["data"][0]["domain"] == "first.example.com"
    assert set(body["data"][0]) == {
        "id",
        "name",
        "pipeline_key",
        "domain",
        "created_at",
        "updated_at",
    }
    assert body["next_cursor"] is None
    assert body["has_more"] is False


async def test_list_pages_with_its_cursor(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = [(await _source(client, org.owner))["id"] for _ in range(5)]
    seen: list[str] = []
    cursor: str | None = None

    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor is not None:
            params["cursor"] = cursor
        page = await client.get(SOURCES, params=params, headers=org.owner.headers)
        seen += [item["id"] for item in page.json()["data"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break

    assert seen == created


async def test_q_filter_matches_part_of_the_name(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    for name in ("Main SHOP", "shopfront", "Blog"):
        await _source(client, org.owner, name=name)

    listed = await _read(client, org.owner, f"{SOURCES}?q=Shop")

    assert [item["name"] for item in listed["data"]] == ["Main SHOP", "shopfront"]


async def test_a_list_page_costs_two_selects_whatever_its_size(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    for _ in range(8):
        await _source(client, org.owner)

    with counted_selects(app) as small:
        small_page = await client.get(
            SOURCES, params={"limit": 2}, headers=org.owner.headers
        )
    with counted_selects(app) as large:
        large_page = await client.get(
            SOURCES, params={"limit": 8}, headers=org.owner.headers
        )

    assert len(small_page.json()["data"]) == 2
    assert len(large_page.json()["data"]) == 8
    # One to authenticate the caller, one for the page.
    assert len(small) == len(large) == 2


async def test_a_source_costs_three_selects_whatever_its_vendors(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _source(client, org.owner)
    for _ in range(4):
        template_id = await _webhook_template(client, org.owner)
        await _attach(client, org.owner, created["id"], template_id)

    with counted_selects(app) as selects:
        response = await client.get(_url(created), headers=org.owner.headers)

    assert response.json()["config"]["vendors"] == ["webhook"]
    # The caller, the pipeline, and every vendor at once.
    assert len(selects) == 3


# Not found


@pytest.mark.parametrize(
    "source_id", [UNKNOWN_ID, "not-an-id", "tmpl_01HZZZZZZZZZZZZZZZZZZZZZZZ"]
)
@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("PUT", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/build")],
)
async def test_an_id_naming_no_pipeline_answers_not_found(
    client: AsyncClient, factory: Factory, source_id: str, method: str, suffix: str
) -> None:
    org = await factory.org()

    response = await client.request(
        method,
        f"{SOURCES}/{source_id}{suffix}",
        json={"name": "Shop"} if method in ("PUT", "PATCH") else None,
        headers=org.owner.headers,
    )

    assert response.status_code == 404
    assert error_code(response) == "NOT_FOUND"


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("PUT", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/build")],
)
async def test_another_orgs_source_answers_not_found_and_stays_as_it_was(
    client: AsyncClient, factory: Factory, method: str, suffix: str
) -> None:
    org = await factory.org()
    other = await factory.org()
    foreign = await _source(client, other.owner, name="Theirs")
    before = await _read(client, other.owner, _url(foreign))

    response = await client.request(
        method,
        _url(foreign, suffix),
        json={"name": "Mine now"} if method in ("PUT", "PATCH") else None,
        headers=org.owner.headers,
    )

    assert response.status_code == 404
    assert error_code(response) == "NOT_FOUND"
    assert await _read(client, other.owner, _url(foreign)) == before
    entries = await _audit(client, other.owner, foreign["id"])
    assert [entry["action"] for entry in entries] == ["source.created"]


# Replace (PUT)


async def test_put_replaces_every_field_and_resets_those_left_out(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _source(
        client, org.owner, domain="shop.example.com", config=FULL_CONFIG
    )

    response = await client.put(
        _url(created), json={"name": "Renamed"}, headers=org.owner.headers
    )

    assert response.status_code == 200
    assert response.headers["ETag"] == '"v2"'
    assert response.json()["name"] == "Renamed"
    assert response.json()["domain"] is None
    assert response.json()["config"] == DEFAULT_CONFIG


async def test_put_resets_the_keys_left_out_of_a_section(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _source(client, org.owner, config=FULL_CONFIG)

    response = await client.put(
        _url(created),
        json={"name": created["name"], "config": {"consent": {"enabled": True}}},
        headers=org.owner.headers,
    )

    assert response.json()["config"]["consent"] == {
        "enabled": True,
        "default_categories": [],
        "provider": None,
    }


async def test_put_keeps_the_pipeline_settings_a_source_does_not_show(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _source(client, org.owner, config=FULL_CONFIG)
    await client.patch(
        f"{PIPELINES}/{created['id']}",
        json={
            "config": {"consent": FULL_CONFIG["consent"], "theme": "dark"},
            "js_builder_config": {"script_filename": "c.js", "batch_size": 25},
            "labels": ["env:prod"],
        },
        headers=org.owner.headers,
    )

    await client.put(_url(created), json={"name": "Shop"}, headers=org.owner.headers)

    pipeline = await _read(client, org.owner, f"{PIPELINES}/{created['id']}")
    assert pipeline["config"]["theme"] == "dark"
    assert pipeline["js_builder_config"]["batch_size"] == 25
    assert pipeline["js_builder_config"]["script_filename"] == "d.js"
    assert pipeline["labels"] == ["env:prod"]


async def test_put_without_a_name_answers_missing_field_and_changes_nothing(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _source(client, org.owner, config=FULL_CONFIG)

    response = await client.put(
        _url(created), json={"domain": "x.example.com"}, headers=org.owner.headers
    )

    assert response.status_code == 400
    assert error_code(response) == "MISSING_FIELD"
    assert _fields(response) == ["name"]
    assert (await _read(client, org.owner, _url(created)))["domain"] is None


# Merge (PATCH)


async def test_patch_of_one_consent_key_keeps_every_other_setting(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _source(
        client, org.owner, domain="shop.example.com", config=FULL_CONFIG
    )
    await client.patch(
        f"{PIPELINES}/{created['id']}",
        json={"config": {"consent": FULL_CONFIG["consent"], "theme": "dark"}},
        headers=org.owner.headers,
    )

    response = await client.patch(
        _url(created),
        json={"config": {"consent": {"enabled": False}}},
        headers=org.owner.headers,
    )

    assert response.status_code == 200
    assert response.json()["domain"] == "shop.example.com"
    assert response.json()["config"] == {
        **FULL_CONFIG,
        "vendors": [],
        "consent": {**FULL_CONFIG["consent"], "enabled": False},
    }
    pipeline = await _read(client, org.owner, f"{PIPELINES}/{created['id']}")
    assert pipeline["config"]["theme"] == "dark"


async def test_patch_changes_only_the_top_level_fields_it_names(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _source(
        client, org.owner, domain="shop.example.com", config=FULL_CONFIG
    )

    response = await client.patch(
        _url(created), json={"name": "Renamed"}, headers=org.owner.headers
    )

    assert response.json() == {
        **{k: v for k, v in created.items() if k != "pipeline_key_secret"},
        "name": "Renamed",
        "updated_at": response.json()["updated_at"],
    }


async def test_patch_of_a_collector_key_keeps_the_other(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _source(client, org.owner, config=FULL_CONFIG)

    response = await client.patch(
        _url(created),
        json={"config": {"collector": {"filename": "new.js"}}},
        headers=org.owner.headers,
    )

    assert response.json()["config"]["collector"] == {
        "filename": "new.js",
        "global_var": "_shop",
    }


async def test_writing_the_domain_makes_it_the_only_allowed_one(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(
        org.owner, domain_allowlist=["a.example.com", "b.example.com"]
    )

    response = await client.patch(
        f"{SOURCES}/{pipeline['id']}",
        json={"domain": "c.example.com"},
        headers=org.owner.headers,
    )

    assert response.json()["domain"] == "c.example.com"
    stored = await _read(client, org.owner, f"{PIPELINES}/{pipeline['id']}")
    assert stored["domain_allowlist"] == ["c.example.com"]


@pytest.mark.parametrize("domain", [None, ""])
async def test_a_null_or_empty_domain_clears_the_allowlist(
    client: AsyncClient, factory: Factory, domain: str | None
) -> None:
    org = await factory.org()
    created = await _source(client, org.owner, domain="shop.example.com")

    response = await client.patch(
        _url(created), json={"domain": domain}, headers=org.owner.headers
    )

    assert response.json()["domain"] is None
    stored = await _read(client, org.owner, f"{PIPELINES}/{created['id']}")
    assert stored["domain_allowlist"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": None}, "name"),
        ({"config": None}, "config"),
        ({"config": {"consent": None}}, "config.consent"),
        ({"config": {"consent": {"enabled": None}}}, "config.consent.enabled"),
        ({"config": {"collector": {"filename": None}}}, "config.collector.filename"),
    ],
)
async def test_patch_naming_a_field_with_null_answers_validation_error(
    client: AsyncClient, factory: Factory, body: dict[str, Any], field: str
) -> None:
    org = await factory.org()
    created = await _source(client, org.owner)

    response = await client.patch(_url(created), json=body, headers=org.owner.headers)

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    assert _fields(response) == [field]


async def test_a_null_provider_clears_it(client: AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    created = await _source(client, org.owner, config=FULL_CONFIG)

    response = await client.patch(
        _url(created),
        json={"config": {"consent": {"provider": None}}},
        headers=org.owner.headers,
    )

    assert response.json()["config"]["consent"] == {
        **FULL_CONFIG["consent"],
        "provider": None,
    }


async def test_invalid_fields_are_all_named_and_nothing_changes(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _source(client, org.owner, config=FULL_CONFIG)

    response = await client.patch(
        _url(created),
        json={
            "name": "Renamed",
            "domain": "not a domain",
            "config": {
                "consent": {"enabled": "yes", "default_categories": ["ads", "ads"]},
                "cross_domain": {"domains": ["ok.example.com", "bad domain"]},
                "collector": {"filename": "script.txt", "global_var": "1x"},
                "colour": "blue",
            },
        },
        headers=org.owner.headers,
    )

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    assert sorted(_fields(response)) == [
        "config.collector.filename",
        "config.collector.global_var",
        "config.colour",
        "config.consent.default_categories.1",
        "config.consent.enabled",
        "config.cross_domain.domains.1",
        "domain",
    ]
    unchanged = await _read(client, org.owner, _url(created))
    expected = {k: v for k, v in created.items() if k != "pipeline_key_secret"}
    assert unchanged == expected


async def test_text_no_database_can_hold_answers_validation_error(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _source(client, org.owner)

    response = await client.patch(
        _url(created),
        json={"config": {"consent": {"provider": "one\u0000trust"}}},
        headers=org.owner.headers,
    )

    assert response.status_code == 422
    assert _fields(response) == ["config.consent.provider"]


async def test_consent_stored_as_something_else_reads_as_the_defaults(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner, config={"consent": "opt-in"})

    source = await _read(client, org.owner, f"{SOURCES}/{pipeline['id']}")

    assert source["config"]["consent"] == DEFAULT_CONFIG["consent"]


async def test_concurrent_merges_of_different_keys_both_land(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _source(client, org.owner)

    responses = await asyncio.gather(
        client.patch(
            _url(created),
            json={"config": {"consent": {"enabled": True}}},
            headers=org.owner.headers,
        ),
        client.patch(
            _url(created),
            json={"config": {"consent": {"provider": "didomi"}}},
            headers=org.owner.headers,
        ),
    )

    assert [response.status_code for response in responses] == [200, 200]
    source = await _read(client, org.owner, _url(created))
    assert source["config"]["consent"] == {
        "enabled": True,
        "default_categories": [],
        "provider": "didomi",
    }


# Read-back fields


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_sending_back_what_was_read_changes_nothing(
    client: AsyncClient, factory: Factory, method: str
) -> None:
    org = await factory.org()
    created = await _source(
        client, org.owner, domain="shop.example.com", config=FULL_CONFIG
    )
    await _attach(
        client, org.owner, created["id"], await _webhook_template(client, org.owner)
    )
    read = await client.get(_url(created), headers=org.owner.headers)

    response = await client.request(
        method,
        _url(created),
        json=read.json(),
        headers={**org.owner.headers, "If-Match": read.headers["ETag"]},
    )

    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == read.headers["ETag"] == '"v1"'
    assert response.json() == read.json()
    assert read.json()["config"]["vendors"] == ["webhook"]
    entries = await _audit(client, org.owner, created["id"])
    assert [entry["action"] for entry in entries] == ["source.created"]


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_an_id_or_key_not_the_sources_own_answers_read_only(
    client: AsyncClient, factory: Factory, method: str
) -> None:
    org = await factory.org()
    created = await _source(client, org.owner, name="Shop")
    other = await _source(client, org.owner)
    read = await _read(client, org.owner, _url(created))

    response = await client.request(
        method,
        _url(created),
        json={
            **read,
            "name": "Renamed",
            "id": other["id"],
            "pipeline_key": other["pipeline_key"],
        },
        headers=org.owner.headers,
    )

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    assert _problems(response) == [("id", "READ_ONLY"), ("pipeline_key", "READ_ONLY")]
    assert await _read(client, org.owner, _url(created)) == read
    assert (await _read(client, org.owner, _url(other)))["name"] == other["name"]


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_timestamps_sent_back_are_ignored(
    client: AsyncClient, factory: Factory, method: str
) -> None:
    org = await factory.org()
    created = await _source(client, org.owner, name="Shop")

    response = await client.request(
        method,
        _url(created),
        json={
            "name": "Renamed",
            "created_at": "2001-01-01T00:00:00Z",
            "updated_at": "not a time",
        },
        headers=org.owner.headers,
    )

    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Renamed"
    assert response.json()["created_at"] == created["created_at"]
    assert response.headers["ETag"] == '"v2"'


async def test_any_other_unknown_field_is_still_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _source(client, org.owner)
    read = await _read(client, org.owner, _url(created))

    response = await client.put(
        _url(created),
        json={**read, "pipeline_key_secret": "sk_guess", "version": 1},
        headers=org.owner.headers,
    )

    assert response.status_code == 422
    assert _problems(response) == [
        ("pipeline_key_secret", "UNKNOWN_FIELD"),
        ("version", "UNKNOWN_FIELD"),
    ]


# Stored values a source cannot read


async def test_consent_values_that_fail_validation_read_as_their_defaults(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await _stored_consent(
        client,
        org.owner,
        {"enabled": "yes", "default_categories": "abc", "provider": 5},
    )

    response = await client.get(
        f"{SOURCES}/{pipeline['id']}", headers=org.owner.headers
    )

    assert response.status_code == 200
    assert response.json()["config"]["consent"] == DEFAULT_CONFIG["consent"]


@pytest.mark.parametrize(
    "categories",
    [
        ["ads", 5],
        ["ads", ""],
        ["ads", "ads"],
        ["ads", "x" * 65],
        [f"category-{number}" for number in range(51)],
    ],
)
async def test_a_category_list_that_fails_validation_reads_whole_as_the_default(
    client: AsyncClient, factory: Factory, categories: list[Any]
) -> None:
    org = await factory.org()
    pipeline = await _stored_consent(
        client,
        org.owner,
        {"enabled": True, "default_categories": categories, "provider": "didomi"},
    )

    source = await _read(client, org.owner, f"{SOURCES}/{pipeline['id']}")

    assert source["config"]["consent"] == {
        "enabled": True,
        "default_categories": [],
        "provider": "didomi",
    }


async def test_a_get_then_put_of_unreadable_consent_stores_what_was_shown(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await _stored_consent(
        client,
        org.owner,
        {"enabled": "yes", "default_categories": "abc", "provider": 5, "mode": "x"},
    )
    url = f"{SOURCES}/{pipeline['id']}"
    read = await _read(client, org.owner, url)

    response = await client.put(url, json=read, headers=org.owner.headers)

    assert response.status_code == 200, response.text
    assert response.json()["config"] == read["config"]
    stored = await _read(client, org.owner, f"{PIPELINES}/{pipeline['id']}")
    assert stored["config"]["consent"] == {**DEFAULT_CONFIG["consent"], "mode": "x"}


async def test_a_merge_of_another_key_writes_unreadable_keys_as_shown(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await _stored_consent(
        client,
        org.owner,
        {"enabled": "yes", "default_categories": ["ads"], "provider": 5, "mode": "x"},
    )

    response = await client.patch(
        f"{SOURCES}/{pipeline['id']}",
        json={"config": {"consent": {"provider": "didomi"}}},
        headers=org.owner.headers,
    )

    assert response.status_code == 200, response.text
    assert response.json()["config"]["consent"] == {
        "enabled": False,
        "default_categories": ["ads"],
        "provider": "didomi",
    }
    stored = await _read(client, org.owner, f"{PIPELINES}/{pipeline['id']}")
    assert stored["config"]["consent"] == {
        "enabled": False,
        "default_categories": ["ads"],
        "provider": "didomi",
        "mode": "x",
    }


async def test_a_merge_outside_consent_leaves_unreadable_consent_as_stored(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    unreadable = {"enabled": "yes", "default_categories": "abc", "provider": 5}
    pipeline = await _stored_consent(client, org.owner, unreadable)

    response = await client.patch(
        f"{SOURCES}/{pipeline['id']}",
        json={"name": "Renamed", "config": {"collector": {"filename": "r.js"}}},
        headers=org.owner.headers,
    )

    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Renamed"
    assert response.json()["config"]["consent"] == DEFAULT_CONFIG["consent"]
    assert response.json()["config"]["collector"]["filename"] == "r.js"
    stored = await _read(client, org.owner, f"{PIPELINES}/{pipeline['id']}")
    assert stored["config"]["consent"] == unreadable


# Versions


async def test_a_put_of_the_stored_values_changes_no_version(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _source(
        client, org.owner, domain="shop.example.com", config=FULL_CONFIG
    )

    response = await client.put(
        _url(created),
        json={
            "name": created["name"],
            "domain": "shop.example.com",
            "config": created["config"],
        },
        headers=org.owner.headers,
    )

    assert response.status_code == 200
    assert response.headers["ETag"] == '"v1"'
    entries = await _audit(client, org.owner, created["id"])
    assert [entry["action"] for entry in entries] == ["source.created"]


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_a_stale_if_match_answers_precondition_failed_and_changes_nothing(
    client: AsyncClient, factory: Factory, method: str
) -> None:
    org = await factory.org()
    created = await _source(client, org.owner)
    await client.patch(_url(created), json={"name": "v2"}, headers=org.owner.headers)

    response = await client.request(
        method,
        _url(created),
        json={"name": "Stale"} if method != "DELETE" else None,
        headers={**org.owner.headers, "If-Match": '"v1"'},
    )

    assert response.status_code == 412
    assert error_code(response) == "PRECONDITION_FAILED"
    assert (await _read(client, org.owner, _url(created)))["name"] == "v2"


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_a_current_if_match_lets_the_change_through(
    client: AsyncClient, factory: Factory, method: str
) -> None:
    org = await factory.org()
    created = await _source(client, org.owner)

    response = await client.request(
        method,
        _url(created),
        json={"name": "Renamed"},
        headers={**org.owner.headers, "If-Match": '"v1"'},
    )

    assert response.status_code == 200
    assert response.headers["ETag"] == '"v2"'


# Delete


async def test_delete_removes_the_pipeline_and_its_integrations(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _source(client, org.owner)
    attachment = await _attach(
        client, org.owner, created["id"], await _webhook_template(client, org.owner)
    )

    response = await client.delete(_url(created), headers=org.owner.headers)

    assert response.status_code == 204
    assert response.content == b""
    for path in (_url(created), f"{PIPELINES}/{created['id']}"):
        gone = await client.get(path, headers=org.owner.headers)
        assert gone.status_code == 404
    entries = await _audit(client, org.owner, attachment["id"])
    assert [entry["action"] for entry in entries] == [
        "pipeline_integration.created",
        "pipeline_integration.deleted",
    ]


# Collector builds


async def test_build_answers_201_with_the_build_of_the_sources_collector(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _source(client, org.owner, config=FULL_CONFIG)

    response = await client.post(_url(created, "/build"), headers=org.owner.headers)

    assert response.status_code == 201, response.text
    build = response.json()
    assert build["id"].startswith("bld_")
    assert build["pipeline_id"] == created["id"]
    assert build["version"] == 1
    assert build["script_filename"] == "collect.js"
    assert build["global_variable"] == "_shop"
    assert build["created_by"] == org.owner.id


async def test_a_repeated_build_with_its_idempotency_key_builds_once(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _source(client, org.owner)
    headers = {**org.owner.headers, "Idempotency-Key": "build-1"}

    first = await client.post(_url(created, "/build"), headers=headers)
    second = await client.post(_url(created, "/build"), headers=headers)

    assert second.status_code == 201
    assert second.json() == first.json()
    builds = await _read(
        client, org.owner, f"{PIPELINES}/{created['id']}/collector/builds"
    )
    assert [build["id"] for build in builds["data"]] == [first.json()["id"]]


# The audit trail


async def test_every_source_write_is_audited_as_a_source(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _source(client, org.owner, name="Shop")
    url = _url(created)
    await client.patch(url, json={"name": "Renamed"}, headers=org.owner.headers)
    await client.put(
        url, json={"name": "Renamed", "config": FULL_CONFIG}, headers=org.owner.headers
    )
    await client.post(_url(created, "/build"), headers=org.owner.headers)
    await client.delete(url, headers=org.owner.headers)

    entries = await _audit(client, org.owner, created["id"])

    assert [entry["action"] for entry in entries] == [
        "source.created",
        "source.updated",
        "source.updated",
        "source.collector_built",
        "source.deleted",
    ]
    assert {entry["resource_type"] for entry in entries} == {"source"}
    assert {entry["user_id"] for entry in entries} == {org.owner.id}
    assert entries[0]["changes"]["name"] == {"old": None, "new": "Shop"}
    assert entries[0]["changes"]["type"] == {"old": None, "new": "web"}
    assert entries[1]["changes"] == {"name": {"old": "Shop", "new": "Renamed"}}
    assert set(entries[2]["changes"]) == {
        "config",
        "identity_config",
        "js_builder_config",
    }
    assert entries[2]["changes"]["config"] == {
        "old": {"consent": DEFAULT_CONFIG["consent"]},
        "new": {"consent": FULL_CONFIG["consent"]},
    }
    assert entries[4]["changes"]["name"] == {"old": "Renamed", "new": None}


# Permissions


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("POST", "", {"name": "Mine"}),
        ("PUT", "/{id}", {"name": "Mine"}),
        ("PATCH", "/{id}", {"name": "Mine"}),
        ("DELETE", "/{id}", None),
        ("POST", "/{id}/build", None),
    ],
)
async def test_a_viewer_may_read_but_not_write(
    client: AsyncClient,
    factory: Factory,
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
) -> None:
    org = await factory.org()
    viewer = await factory.member(org, "viewer")
    created = await _source(client, org.owner, name="Shop")

    response = await client.request(
        method,
        SOURCES + suffix.format(id=created["id"]),
        json=body,
        headers=viewer.headers,
    )

    assert response.status_code == 403
    assert error_code(response) == "FORBIDDEN"
    assert (await _read(client, viewer, _url(created)))["name"] == "Shop"
    assert len((await _read(client, viewer, SOURCES))["data"]) == 1


async def test_an_editor_may_change_a_source_but_not_delete_it(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")
    created = await _source(client, editor)

    changed = await client.patch(
        _url(created), json={"name": "Edited"}, headers=editor.headers
    )
    deleted = await client.delete(_url(created), headers=editor.headers)

    assert changed.status_code == 200
    assert deleted.status_code == 403
