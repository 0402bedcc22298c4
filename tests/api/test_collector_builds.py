"""Collector builds over REST and GraphQL: building, listing, the script
routes, the public route sites load it from, and who may do what."""

from __future__ import annotations

import base64
import gzip
import hashlib
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import update

from signal_admin.persistence.models import Pipeline
from signal_admin.persistence.types import utc_now
from tests.factories import Factory, Member, error_code
from tests.helpers import TIMESTAMP, audit_entries
from tests.statements import counted_selects

PIPELINES = "/v1/admin/pipelines"
GRAPHQL = "/v1/admin/graphql"
BUILD_FIELDS = {
    "id",
    "pipeline_id",
    "version",
    "pipeline_key",
    "script_filename",
    "global_variable",
    "size_bytes",
    "gzip_size_bytes",
    "sha256",
    "integrity",
    "vendors",
    "created_by",
    "created_at",
}


def builds_url(pipeline: dict[str, Any]) -> str:
    return f"{PIPELINES}/{pipeline['id']}/collector/builds"


def script_url(build: dict[str, Any]) -> str:
    return f"{PIPELINES}/{build['pipeline_id']}/collector/builds/{build['id']}/script"


async def build(
    client: AsyncClient, member: Member, pipeline: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(builds_url(pipeline), headers=member.headers)
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


async def graphql(
    client: AsyncClient, member: Member, query: str, variables: dict[str, Any]
) -> Response:
    return await client.post(
        GRAPHQL, json={"query": query, "variables": variables}, headers=member.headers
    )


async def attach(
    client: AsyncClient,
    member: Member,
    pipeline: dict[str, Any],
    vendor: str,
    delivery_mode: str,
    *,
    enabled: bool = True,
) -> None:
    template = await client.post(
        "/v1/admin/integration-templates",
        json={
            "name": f"{vendor} {delivery_mode} {pipeline['id'][-6:]}",
            "vendor": vendor,
            "delivery_mode": delivery_mode,
            "config": {},
        },
        headers=member.headers,
    )
    assert template.status_code == 201, template.text
    attached = await client.post(
        f"{PIPELINES}/{pipeline['id']}/integrations",
        json={"integration_id": template.json()["template"]["id"], "enabled": enabled},
        headers=member.headers,
    )
    assert attached.status_code == 201, attached.text


# Building


async def test_a_build_describes_the_script_it_made(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(
        org.owner,
        js_builder_config={
            "script_filename": "collect.js",
            "global_variable": "_sig",
            "endpoint": "https://collect.example.com",
        },
    )

    made = await build(client, org.owner, pipeline)
    script = await client.get(script_url(made), headers=org.owner.headers)

    assert set(made) == BUILD_FIELDS
    assert made["id"].startswith("bld_")
    assert made["pipeline_id"] == pipeline["id"]
    assert made["version"] == 1
    assert made["pipeline_key"] == pipeline["pipeline_key"]
    assert made["script_filename"] == "collect.js"
    assert made["global_variable"] == "_sig"
    assert made["vendors"] == []
    assert made["created_by"] == org.owner.id
    assert TIMESTAMP.match(made["created_at"])

    assert script.status_code == 200
    assert script.headers["content-type"].startswith("application/javascript")
    assert script.headers["etag"] == f'"{made["sha256"]}"'
    body = script.content
    assert made["size_bytes"] == len(body)
    assert made["sha256"] == hashlib.sha256(body).hexdigest()
    digest = base64.b64encode(hashlib.sha384(body).digest()).decode()
    assert made["integrity"] == f"sha384-{digest}"
    assert made["gzip_size_bytes"] == len(gzip.compress(body, 9, mtime=0))
    assert made["gzip_size_bytes"] < 8 * 1024
    # Configured at build time: the key, the global and where events go.
    assert pipeline["pipeline_key"] in script.text
    assert "_sig" in script.text
    assert "https://collect.example.com" in script.text


async def test_builds_take_versions_in_turn_and_keep_their_bytes(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    first = await build(client, org.owner, pipeline)
    changed = await client.patch(
        f"{PIPELINES}/{pipeline['id']}",
        json={"js_builder_config": {"global_variable": "_other", "batch_size": 5}},
        headers=org.owner.headers,
    )
    assert changed.status_code == 200

    second = await build(client, org.owner, pipeline)
    first_script = await client.get(script_url(first), headers=org.owner.headers)
    second_script = await client.get(script_url(second), headers=org.owner.headers)

    assert (first["version"], second["version"]) == (1, 2)
    assert second["global_variable"] == "_other"
    assert first["sha256"] != second["sha256"]
    # The first build is what it was when it was made.
    assert hashlib.sha256(first_script.content).hexdigest() == first["sha256"]
    assert "_other" not in first_script.text
    assert "_other" in second_script.text


async def test_a_build_lists_the_vendors_that_run_in_the_page(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    await attach(client, org.owner, pipeline, "tiktok", "client_side")
    await attach(client, org.owner, pipeline, "ga4", "hybrid")
    await attach(client, org.owner, pipeline, "meta_capi", "server_side")
    await attach(client, org.owner, pipeline, "pinterest", "client_side", enabled=False)

    made = await build(client, org.owner, pipeline)

    assert made["vendors"] == ["ga4", "tiktok"]


async def test_the_build_is_audited_on_its_pipeline(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)

    made = await build(client, org.owner, pipeline)

    (entry,) = await audit_entries(app, org.id, "pipeline.collector_built")
    assert entry.resource_type == "pipeline"
    assert entry.resource_id == pipeline["id"]
    assert entry.user_id == org.owner.id
    assert entry.metadata_["build_id"] == made["id"]
    assert entry.metadata_["version"] == 1
    assert entry.metadata_["sha256"] == made["sha256"]


async def test_a_repeated_build_with_one_idempotency_key_builds_once(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    headers = {**org.owner.headers, "Idempotency-Key": "build-once"}

    first = await client.post(builds_url(pipeline), headers=headers)
    again = await client.post(builds_url(pipeline), headers=headers)
    listed = await client.get(builds_url(pipeline), headers=org.owner.headers)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert [each["id"] for each in listed.json()["data"]] == [first.json()["id"]]


async def test_unknown_and_foreign_pipelines_are_not_found(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    other = await factory.org()
    theirs = await factory.pipeline(other.owner)
    their_build = await build(client, other.owner, theirs)
    mine = await factory.pipeline(org.owner)

    answers = [
        await client.post(builds_url(theirs), headers=org.owner.headers),
        await client.get(builds_url(theirs), headers=org.owner.headers),
        await client.get(script_url(their_build), headers=org.owner.headers),
        await client.post(
            f"{PIPELINES}/pip_01J0000000000000000000000/collector/builds",
            headers=org.owner.headers,
        ),
        await client.post(
            f"{PIPELINES}/nonsense/collector/builds", headers=org.owner.headers
        ),
        # Their build under my pipeline's path.
        await client.get(
            f"{PIPELINES}/{mine['id']}/collector/builds/{their_build['id']}",
            headers=org.owner.headers,
        ),
    ]

    assert [answer.status_code for answer in answers] == [404] * len(answers)
    assert {error_code(answer) for answer in answers} == {"NOT_FOUND"}
    still = await client.get(builds_url(theirs), headers=other.owner.headers)
    assert [each["id"] for each in still.json()["data"]] == [their_build["id"]]


async def test_viewers_read_builds_but_do_not_build(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    viewer = await factory.member(org, "viewer")
    editor = await factory.member(org, "editor")
    pipeline = await factory.pipeline(org.owner)
    made = await build(client, editor, pipeline)

    refused = await client.post(builds_url(pipeline), headers=viewer.headers)
    listed = await client.get(builds_url(pipeline), headers=viewer.headers)
    script = await client.get(script_url(made), headers=viewer.headers)

    assert refused.status_code == 403
    assert error_code(refused) == "FORBIDDEN"
    assert [each["id"] for each in listed.json()["data"]] == [made["id"]]
    assert script.status_code == 200


# Listing and reading


async def test_builds_are_listed_newest_first_a_page_at_a_time(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    made = [await build(client, org.owner, pipeline) for _ in range(5)]

    with counted_selects(app) as statements:
        first = await client.get(
            builds_url(pipeline), params={"limit": 3}, headers=org.owner.headers
        )
    second = await client.get(
        builds_url(pipeline),
        params={"limit": 3, "cursor": first.json()["next_cursor"]},
        headers=org.owner.headers,
    )

    versions = [each["version"] for each in first.json()["data"]]
    versions += [each["version"] for each in second.json()["data"]]
    assert versions == [5, 4, 3, 2, 1]
    assert first.json()["has_more"] is True
    assert second.json()["has_more"] is False
    assert second.json()["next_cursor"] is None
    assert first.json()["data"][0] == made[-1]
    # The caller, the pipeline, the page.
    assert len(statements) == 3


async def test_one_build_reads_as_it_was_answered(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    made = await build(client, org.owner, pipeline)

    one = await client.get(
        f"{builds_url(pipeline)}/{made['id']}", headers=org.owner.headers
    )
    missing = await client.get(
        f"{builds_url(pipeline)}/bld_01J0000000000000000000000",
        headers=org.owner.headers,
    )

    assert one.status_code == 200
    assert one.json() == made
    assert missing.status_code == 404
    assert "bld_01J0000000000000000000000" in missing.json()["error"]["message"]


async def test_a_script_already_held_is_not_sent_again(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    made = await build(client, org.owner, pipeline)

    held = await client.get(
        script_url(made),
        headers={**org.owner.headers, "If-None-Match": f'"{made["sha256"]}"'},
    )
    stale = await client.get(
        script_url(made), headers={**org.owner.headers, "If-None-Match": '"other"'}
    )

    assert held.status_code == 304
    assert held.content == b""
    assert held.headers["etag"] == f'"{made["sha256"]}"'
    assert stale.status_code == 200


# The public route


def public_url(key: str, filename: str = "d.js") -> str:
    return f"/collector/{key}/{filename}"


async def test_sites_load_the_newest_build_without_a_token(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    await build(client, org.owner, pipeline)
    newest = await build(client, org.owner, pipeline)

    loaded = await client.get(
        public_url(pipeline["pipeline_key"]), headers={"Accept-Encoding": "identity"}
    )

    assert loaded.status_code == 200
    assert hashlib.sha256(loaded.content).hexdigest() == newest["sha256"]
    assert loaded.headers["content-type"].startswith("application/javascript")
    assert loaded.headers["etag"] == f'"{newest["sha256"]}"'
    # Any site may load it, with an integrity check (which needs CORS).
    assert loaded.headers["access-control-allow-origin"] == "*"
    assert loaded.headers["cache-control"].startswith("public")
    again = await client.get(
        public_url(pipeline["pipeline_key"]),
        headers={
            "Accept-Encoding": "identity",
            "If-None-Match": f'"{newest["sha256"]}"',
        },
    )
    assert again.status_code == 304


async def test_unknown_keys_are_refused_and_missing_scripts_not_found(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    built = await factory.pipeline(org.owner)
    await build(client, org.owner, built)
    never_built = await factory.pipeline(org.owner)

    unknown = await client.get(public_url("dk_" + "x" * 32))
    too_long = await client.get(public_url("dk_" + "x" * 500))
    other_name = await client.get(public_url(built["pipeline_key"], "other.js"))
    not_built = await client.get(public_url(never_built["pipeline_key"]))

    assert unknown.status_code == too_long.status_code == 401
    assert error_code(unknown) == error_code(too_long) == "INVALID_PIPELINE_KEY"
    assert other_name.status_code == not_built.status_code == 404
    assert error_code(other_name) == "NOT_FOUND"


async def test_each_key_serves_the_newest_build_that_carries_it(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    old_key = pipeline["pipeline_key"]
    old_build = await build(client, org.owner, pipeline)

    rotated = await client.post(
        f"{PIPELINES}/{pipeline['id']}/rotate-key",
        json={"grace_seconds": 3600},
        headers=org.owner.headers,
    )
    new_key = rotated.json()["pipeline_key"]
    not_built_yet = await client.get(public_url(new_key))
    new_build = await build(client, org.owner, pipeline)
    with_new_key = await client.get(public_url(new_key))
    during_grace = await client.get(public_url(old_key))
    async with app.state.services.db.transaction() as session:
        await session.execute(
            update(Pipeline)
            .where(Pipeline.id == pipeline["id"])
            .values(previous_key_expires_at=utc_now() - timedelta(seconds=1))
        )
    after_grace = await client.get(public_url(old_key))

    # No script carries the new key until the collector is built again.
    assert not_built_yet.status_code == 404
    assert "build the collector again" in not_built_yet.json()["error"]["message"]
    assert new_build["pipeline_key"] == new_key
    assert with_new_key.status_code == 200
    assert hashlib.sha256(with_new_key.content).hexdigest() == new_build["sha256"]
    assert new_key in with_new_key.text
    # A page that pinned the old build keeps loading it while the old key works.
    assert during_grace.status_code == 200
    assert hashlib.sha256(during_grace.content).hexdigest() == old_build["sha256"]
    assert after_grace.status_code == 401
    assert error_code(after_grace) == "INVALID_PIPELINE_KEY"


async def test_the_public_script_is_sent_gzipped_to_clients_that_take_it(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    made = await build(client, org.owner, pipeline)
    url = public_url(pipeline["pipeline_key"])

    plain = await client.get(url, headers={"Accept-Encoding": "identity"})
    zipped = await client.get(url, headers={"Accept-Encoding": "br, gzip"})
    refused = await client.get(url, headers={"Accept-Encoding": "gzip;q=0"})
    held = await client.get(
        url,
        headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["etag"]},
    )

    assert "content-encoding" not in plain.headers
    assert "content-encoding" not in refused.headers
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["vary"] == "Accept-Encoding"
    # httpx decodes it: the same script, in the size the build reported.
    assert zipped.content == plain.content
    assert int(zipped.headers["content-length"]) == made["gzip_size_bytes"]
    assert zipped.headers["etag"] != plain.headers["etag"]
    assert held.status_code == 304


async def test_a_head_request_answers_the_headers_alone(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    made = await build(client, org.owner, pipeline)

    head = await client.head(
        public_url(pipeline["pipeline_key"]), headers={"Accept-Encoding": "identity"}
    )

    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) == made["size_bytes"]
    assert head.headers["etag"] == f'"{made["sha256"]}"'


async def test_an_endpoint_with_a_query_or_fragment_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)

    answers = [
        await client.patch(
            f"{PIPELINES}/{pipeline['id']}",
            json={"js_builder_config": {"endpoint": endpoint}},
            headers=org.owner.headers,
        )
        for endpoint in (
            "https://collect.example.com/?x=1",
            "https://c.example#top",
            "https://user:secret@c.example/collect",
        )
    ]

    assert [answer.status_code for answer in answers] == [422, 422, 422]
    assert {
        detail["field"]
        for answer in answers
        for detail in answer.json()["error"]["details"]
    } == {"js_builder_config.endpoint"}


async def test_a_deleted_pipeline_takes_its_builds_with_it(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    made = await build(client, org.owner, pipeline)

    deleted = await client.delete(
        f"{PIPELINES}/{pipeline['id']}", headers=org.owner.headers
    )
    loaded = await client.get(public_url(pipeline["pipeline_key"]))
    script = await client.get(script_url(made), headers=org.owner.headers)

    assert deleted.status_code == 204
    assert loaded.status_code == 401
    assert script.status_code == 404


# GraphQL

BUILD = """
mutation Build($id: ID!) {
  buildCollector(input: {pipelineId: $id}) {
    build { id pipelineId version scriptFilename globalVariable sizeBytes
            gzipSizeBytes sha256 integrity vendors createdAt createdBy { id } }
    userErrors { field code message }
  }
}
"""

BUILDS = """
query Builds($id: ID!, $first: Int) {
  pipeline(id: $id) {
    collectorBuilds(first: $first) { id version sha256 createdBy { email } }
  }
}
"""


async def test_graphql_builds_and_lists_the_same_builds_as_rest(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    over_rest = await build(client, org.owner, pipeline)

    built = await graphql(client, org.owner, BUILD, {"id": pipeline["id"]})
    payload = built.json()["data"]["buildCollector"]
    listed = await graphql(
        client, org.owner, BUILDS, {"id": pipeline["id"], "first": 5}
    )
    rest_list = await client.get(builds_url(pipeline), headers=org.owner.headers)

    assert payload["userErrors"] == []
    made = payload["build"]
    assert made["version"] == 2
    assert made["pipelineId"] == pipeline["id"]
    assert made["createdBy"] == {"id": org.owner.id}
    assert made["gzipSizeBytes"] < 8 * 1024
    builds = listed.json()["data"]["pipeline"]["collectorBuilds"]
    assert [each["version"] for each in builds] == [2, 1]
    assert builds[1]["sha256"] == over_rest["sha256"]
    assert builds[0]["createdBy"] == {"email": org.owner.email}
    assert [each["id"] for each in rest_list.json()["data"]] == [
        made["id"],
        over_rest["id"],
    ]


async def test_graphql_build_of_an_unknown_pipeline_is_a_user_error(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    viewer = await factory.member(org, "viewer")
    pipeline = await factory.pipeline(org.owner)

    unknown = await graphql(
        client, org.owner, BUILD, {"id": "pip_01J0000000000000000000000"}
    )
    refused = await graphql(client, viewer, BUILD, {"id": pipeline["id"]})
    out_of_range = await graphql(
        client, org.owner, BUILDS, {"id": pipeline["id"], "first": 0}
    )

    payload = unknown.json()["data"]["buildCollector"]
    assert payload["build"] is None
    assert [error["code"] for error in payload["userErrors"]] == ["NOT_FOUND"]
    assert refused.json()["data"]["buildCollector"] is None
    assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert out_of_range.json()["errors"][0]["extensions"]["code"] == "VALIDATION_ERROR"


async def test_builds_of_a_page_of_pipelines_cost_one_select(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    for _ in range(4):
        pipeline = await factory.pipeline(org.owner)
        for _ in range(3):
            await build(client, org.owner, pipeline)
    query = """
      query Page($first: Int!) {
        pipelines(first: $first) { edges { node { id collectorBuilds(first: 2) {
          version } } } }
      }
    """

    with counted_selects(app) as one_pipeline:
        small = await graphql(client, org.owner, query, {"first": 1})
    with counted_selects(app) as four_pipelines:
        large = await graphql(client, org.owner, query, {"first": 4})

    edges = large.json()["data"]["pipelines"]["edges"]
    assert [
        [each["version"] for each in edge["node"]["collectorBuilds"]] for edge in edges
    ] == [[3, 2]] * 4
    assert small.json()["data"]["pipelines"]["edges"][0]["node"]["collectorBuilds"]
    # The caller, the page, and the builds of every pipeline on it.
    assert len(one_pipeline) == len(four_pipelines) == 3


# What a build refuses


async def test_a_build_without_options_refuses_a_body_that_is_not_an_empty_object(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    json_headers = {**org.owner.headers, "Content-Type": "application/json"}

    broken = await client.post(
        builds_url(pipeline), content="{bad", headers=json_headers
    )
    unknown = await client.post(
        builds_url(pipeline), json={"unexpected": True}, headers=org.owner.headers
    )
    listed = await client.post(
        builds_url(pipeline), json=[1, 2], headers=org.owner.headers
    )
    empty = await client.post(builds_url(pipeline), json={}, headers=org.owner.headers)
    builds = await client.get(builds_url(pipeline), headers=org.owner.headers)

    assert (broken.status_code, error_code(broken)) == (400, "INVALID_JSON")
    assert unknown.status_code == listed.status_code == 422
    assert empty.status_code == 201
    assert [each["version"] for each in builds.json()["data"]] == [1]


async def test_a_script_over_the_size_budget_is_not_built(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    labels = [hashlib.sha256(str(n).encode()).hexdigest()[:60] for n in range(400)]
    domains = [".".join(labels[n * 4 : n * 4 + 4]) for n in range(100)]
    pipeline = await factory.pipeline(
        org.owner,
        identity_config={"cross_domain_enabled": True, "cross_domain_domains": domains},
    )

    refused = await client.post(builds_url(pipeline), headers=org.owner.headers)
    builds = await client.get(builds_url(pipeline), headers=org.owner.headers)

    assert refused.status_code == 422
    assert [(d["field"], d["code"]) for d in refused.json()["error"]["details"]] == [
        ("script", "TOO_LARGE")
    ]
    assert builds.json()["data"] == []


async def test_a_global_a_page_relies_on_cannot_be_the_collectors(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)

    answers = [
        await client.patch(
            f"{PIPELINES}/{pipeline['id']}",
            json={"js_builder_config": {"global_variable": name}},
            headers=org.owner.headers,
        )
        for name in ("location", "NaN", "__proto__", "JSON", "class")
    ]
    allowed = await client.patch(
        f"{PIPELINES}/{pipeline['id']}",
        json={"js_builder_config": {"global_variable": "$signal"}},
        headers=org.owner.headers,
    )

    assert [answer.status_code for answer in answers] == [422] * 5
    assert "reserved" in answers[0].json()["error"]["details"][0]["message"]
    assert allowed.status_code == 200


async def test_a_wrong_file_name_is_not_repeated_in_the_answer(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    await build(client, org.owner, pipeline)

    answer = await client.get(public_url(pipeline["pipeline_key"], "x" * 5000 + ".js"))

    assert answer.status_code == 404
    assert "xxxx" not in answer.text


async def test_a_build_starts_pages_with_the_consent_a_source_shows(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    managed = await factory.pipeline(
        org.owner,
        config={"consent": {"enabled": True, "default_categories": ["analytics"]}},
    )
    # Stored through /pipelines, whose config is free: a source reads the bad
    # list as its default, no categories, and so does the build.
    unreadable = await factory.pipeline(
        org.owner,
        config={"consent": {"enabled": True, "default_categories": ["ads", 5]}},
    )
    unmanaged = await factory.pipeline(org.owner)

    scripts = []
    for pipeline in (managed, unreadable, unmanaged):
        made = await build(client, org.owner, pipeline)
        scripts.append(
            (await client.get(script_url(made), headers=org.owner.headers)).text
        )
    shown = await client.get(
        f"/v1/admin/sources/{unreadable['id']}", headers=org.owner.headers
    )

    assert '"consent":{"analytics":true}' in scripts[0]
    assert '"consent":{}' in scripts[1]
    assert shown.json()["config"]["consent"]["default_categories"] == []
    assert '"consent":null' in scripts[2]
