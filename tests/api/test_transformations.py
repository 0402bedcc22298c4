"""Transformations over REST: saving step documents (JSON or YAML), the
problems named on save, and both test routes."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from tests.factories import Factory, Member, error_code
from tests.helpers import audit_entries

URL = "/v1/admin/transformations"
STEPS = {
    "steps": [
        {"type": "filter", "condition": "event.params.value > 0"},
        {
            "type": "compute",
            "fields": {"params.value_cents": "event.params.value * 100"},
        },
        {"type": "enrich", "fields": {"params.source": "signal"}},
    ]
}
YAML_BODY = """\
name: Cents for the warehouse
description: Adds the value in cents.
config:
  steps:
    - type: filter
      condition: event.params.value > 0
    - type: compute
      fields:
        params.value_cents: event.params.value * 100
"""


async def _create(client: AsyncClient, member: Member, **fields: Any) -> dict[str, Any]:
    body = {"name": f"T {len(fields)}-{member.email}", "config": STEPS, **fields}
    response = await client.post(URL, json=body, headers=member.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _template(client: AsyncClient, member: Member, name: str) -> dict[str, Any]:
    response = await client.post(
        "/v1/admin/integration-templates",
        json={"name": name, "vendor": "webhook", "config": {}},
        headers=member.headers,
    )
    assert response.status_code == 201, response.text
    template: dict[str, Any] = response.json()["template"]
    return template


async def test_created_transformation_is_answered_whole(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        URL,
        json={"name": "Cents", "description": "In cents.", "config": STEPS},
        headers=org.owner.headers,
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["id"].startswith("tr_")
    assert body["org_id"] == org.id
    assert body["name"] == "Cents"
    assert body["description"] == "In cents."
    assert body["integration_id"] is None
    assert body["config"] == STEPS
    assert body["enabled"] is True
    assert body["version"] == 1
    assert body["created_by"] == org.owner.id
    assert response.headers["ETag"] == '"v1"'
    fetched = await client.get(f"{URL}/{body['id']}", headers=org.owner.headers)
    assert fetched.json() == body


async def test_yaml_body_is_read_as_the_same_document(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        URL,
        content=YAML_BODY,
        headers={**org.owner.headers, "Content-Type": "application/yaml"},
    )

    assert response.status_code == 201, response.text
    assert response.json()["config"] == {
        "steps": [
            {"type": "filter", "condition": "event.params.value > 0"},
            {
                "type": "compute",
                "fields": {"params.value_cents": "event.params.value * 100"},
            },
        ]
    }


async def test_yaml_aliases_are_refused(client: AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nname: *b\n"

    response = await client.post(
        URL,
        content=bomb,
        headers={**org.owner.headers, "Content-Type": "application/yaml"},
    )

    assert response.status_code == 400
    assert "aliases" in response.json()["error"]["message"]


async def test_broken_yaml_names_its_line(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        URL,
        content="name: x\nconfig: {steps: [\n",
        headers={**org.owner.headers, "Content-Type": "application/yaml"},
    )

    assert response.status_code == 400
    assert error_code(response) == "BAD_REQUEST"
    assert "line" in response.json()["error"]["message"]


async def test_yaml_is_refused_outside_transformations(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        "/v1/admin/pipelines",
        content="name: Site\ntype: web\n",
        headers={**org.owner.headers, "Content-Type": "application/yaml"},
    )

    assert response.status_code == 415


async def test_invalid_steps_are_named_by_step_and_field(
    client: AsyncClient, app: FastAPI, factory: Factory
) -> None:
    org = await factory.org()
    config = {
        "steps": [
            {"type": "filter", "condition": "event.params.value >"},
            {"type": "explode"},
            {
                "type": "map",
                "mappings": {"value": "event.params.value"},
                "on_missing": "x",
            },
        ]
    }

    response = await client.post(
        URL, json={"name": "Broken", "config": config}, headers=org.owner.headers
    )

    assert response.status_code == 422
    assert error_code(response) == "INVALID_TRANSFORMATION"
    fields = {problem["field"] for problem in response.json()["error"]["details"]}
    assert {
        "config.steps.0.condition",
        "config.steps.1.type",
        "config.steps.2.on_missing",
    } <= fields
    listed = await client.get(URL, headers=org.owner.headers)
    assert listed.json()["data"] == []
    assert await audit_entries(app, org.id, "transformation.created") == []


async def test_body_and_step_problems_are_answered_together(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        URL,
        json={"config": {"steps": [{"type": "filter"}]}},
        headers=org.owner.headers,
    )

    assert response.status_code == 400
    assert error_code(response) == "MISSING_FIELD"
    fields = {problem["field"] for problem in response.json()["error"]["details"]}
    assert fields == {"name", "config.steps.0.condition"}


async def test_javascript_that_does_not_compile_is_refused_on_save(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    config = {"steps": [{"type": "code", "source": "function process(event {"}]}

    response = await client.post(
        URL, json={"name": "JS", "config": config}, headers=org.owner.headers
    )

    assert response.status_code == 422
    assert error_code(response) == "INVALID_TRANSFORMATION"
    assert [p["field"] for p in response.json()["error"]["details"]] == [
        "config.steps.0.source"
    ]


async def test_javascript_problems_come_with_the_other_step_problems(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    config = {
        "steps": [
            {"type": "code", "source": "function process(e) { return e; "},
            {"type": "filter"},
        ]
    }

    response = await client.post(
        URL, json={"name": "Both", "config": config}, headers=org.owner.headers
    )

    assert response.status_code == 422
    assert {(p["field"], p["code"]) for p in response.json()["error"]["details"]} == {
        ("config.steps.0.source", "INVALID_JAVASCRIPT"),
        ("config.steps.1.condition", "REQUIRED"),
    }


async def test_names_are_unique_in_the_organisation(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    await _create(client, org.owner, name="Once")

    response = await client.post(
        URL, json={"name": "Once", "config": STEPS}, headers=org.owner.headers
    )

    assert response.status_code == 409
    assert error_code(response) == "ALREADY_EXISTS"


async def test_integration_id_must_be_a_template_of_the_organisation(
    client: AsyncClient, factory: Factory
) -> None:
    org, other = await factory.org(), await factory.org()
    foreign = await _template(client, other.owner, "Theirs")

    response = await client.post(
        URL,
        json={"name": "T", "config": STEPS, "integration_id": foreign["id"]},
        headers=org.owner.headers,
    )

    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "integration_id"


async def test_list_filters_by_integration(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    template = await _template(client, org.owner, "GA")
    scoped = await _create(
        client, org.owner, name="Scoped", integration_id=template["id"]
    )
    await _create(client, org.owner, name="Everywhere")

    response = await client.get(
        URL, params={"integration_id": template["id"]}, headers=org.owner.headers
    )

    assert [item["id"] for item in response.json()["data"]] == [scoped["id"]]


async def test_patch_replaces_named_fields_and_audits_the_diff(
    client: AsyncClient, app: FastAPI, factory: Factory
) -> None:
    org = await factory.org()
    created = await _create(client, org.owner, name="Before")
    new_steps = {"steps": [{"type": "enrich", "fields": {"params.x": 1}}]}

    response = await client.patch(
        f"{URL}/{created['id']}",
        json={"name": "After", "config": new_steps, "enabled": False},
        headers={**org.owner.headers, "If-Match": '"v1"'},
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["config"], body["enabled"]) == (
        "After",
        new_steps,
        False,
    )
    assert body["version"] == 2
    assert body["description"] == created["description"]
    (entry,) = await audit_entries(app, org.id, "transformation.updated")
    assert entry.resource_id == created["id"]
    assert entry.changes["name"] == {"old": "Before", "new": "After"}
    assert entry.changes["config"] == {"old": STEPS, "new": new_steps}
    assert entry.changes["enabled"] == {"old": True, "new": False}


async def test_stale_if_match_changes_nothing(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _create(client, org.owner)

    response = await client.patch(
        f"{URL}/{created['id']}",
        json={"name": "Late"},
        headers={**org.owner.headers, "If-Match": '"v7"'},
    )

    assert response.status_code == 412
    fetched = await client.get(f"{URL}/{created['id']}", headers=org.owner.headers)
    assert fetched.json()["name"] == created["name"]


async def test_patch_with_invalid_steps_keeps_the_saved_ones(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await _create(client, org.owner)

    response = await client.patch(
        f"{URL}/{created['id']}",
        json={"config": {"steps": [{"type": "transform", "field": "x"}]}},
        headers=org.owner.headers,
    )

    assert response.status_code == 422
    assert error_code(response) == "INVALID_TRANSFORMATION"
    assert response.json()["error"]["details"][0]["field"] == (
        "config.steps.0.expression"
    )
    fetched = await client.get(f"{URL}/{created['id']}", headers=org.owner.headers)
    assert fetched.json()["config"] == STEPS


async def test_delete_answers_204_and_audits(
    client: AsyncClient, app: FastAPI, factory: Factory
) -> None:
    org = await factory.org()
    created = await _create(client, org.owner)

    response = await client.delete(f"{URL}/{created['id']}", headers=org.owner.headers)

    assert response.status_code == 204
    gone = await client.get(f"{URL}/{created['id']}", headers=org.owner.headers)
    assert gone.status_code == 404
    (entry,) = await audit_entries(app, org.id, "transformation.deleted")
    assert entry.changes["name"] == {"old": created["name"], "new": None}


async def test_deleting_a_template_deletes_its_own_transformations(
    client: AsyncClient, app: FastAPI, factory: Factory
) -> None:
    org = await factory.org()
    template = await _template(client, org.owner, "Going")
    own = await _create(client, org.owner, name="Own", integration_id=template["id"])
    everywhere = await _create(client, org.owner, name="Everywhere")

    response = await client.delete(
        f"/v1/admin/integration-templates/{template['id']}", headers=org.owner.headers
    )

    assert response.status_code == 204
    listed = await client.get(URL, headers=org.owner.headers)
    assert [item["id"] for item in listed.json()["data"]] == [everywhere["id"]]
    deleted = await audit_entries(app, org.id, "transformation.deleted")
    assert [entry.resource_id for entry in deleted] == [own["id"]]


async def test_unsaved_document_runs_on_each_event(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    events = [{"params": {"value": 12.5}}, {"params": {"value": 0}}]

    response = await client.post(
        f"{URL}/test",
        json={"config": STEPS, "events": events},
        headers=org.owner.headers,
    )

    assert response.status_code == 200, response.text
    first, second = response.json()["results"]
    assert first["output"] == {
        "params": {"value": 12.5, "value_cents": 1250, "source": "signal"}
    }
    assert first["dropped"] is False
    assert [step["status"] for step in first["steps"]] == ["ok", "ok", "ok"]
    assert [step["type"] for step in first["steps"]] == ["filter", "compute", "enrich"]
    assert first["error"] is None
    assert second["output"] is None
    assert second["dropped"] is True
    assert second["steps"][0]["status"] == "dropped"


async def test_unsaved_yaml_test_is_read_like_json(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    body = "config:\n  steps:\n    - {type: enrich, fields: {a: 1}}\nevent: {b: 2}\n"

    response = await client.post(
        f"{URL}/test",
        content=body,
        headers={**org.owner.headers, "Content-Type": "application/yaml"},
    )

    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["output"] == {"a": 1, "b": 2}


async def test_on_error_fail_stops_the_run_with_its_error(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    config = {
        "steps": [
            {"type": "compute", "fields": {"x": "1 / 0"}, "on_error": "fail"},
            {"type": "enrich", "fields": {"y": 1}},
        ]
    }

    response = await client.post(
        f"{URL}/test", json={"config": config, "event": {}}, headers=org.owner.headers
    )

    (result,) = response.json()["results"]
    assert result["output"] is None
    assert result["error"]["code"]
    assert [step["status"] for step in result["steps"]] == ["error"]


async def test_saved_transformation_test_runs_the_saved_document(
    client: AsyncClient, app: FastAPI, factory: Factory
) -> None:
    org = await factory.org()
    created = await _create(client, org.owner)
    before = [entry.id for entry in await audit_entries(app, org.id)]

    response = await client.post(
        f"{URL}/{created['id']}/test",
        json={"event": {"params": {"value": 2}}},
        headers=org.owner.headers,
    )

    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["output"]["params"]["value_cents"] == 200
    assert [entry.id for entry in await audit_entries(app, org.id)] == before


async def test_a_test_takes_event_or_events_not_both(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    both = await client.post(
        f"{URL}/test",
        json={"config": STEPS, "event": {}, "events": [{}]},
        headers=org.owner.headers,
    )
    too_many = await client.post(
        f"{URL}/test",
        json={"config": STEPS, "events": [{}] * 101},
        headers=org.owner.headers,
    )

    assert both.status_code == 422
    assert too_many.status_code == 422


async def test_viewers_read_but_cannot_write_or_test(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    viewer = await factory.member(org, "viewer")
    created = await _create(client, org.owner)

    read = await client.get(f"{URL}/{created['id']}", headers=viewer.headers)
    write = await client.post(
        URL, json={"name": "V", "config": STEPS}, headers=viewer.headers
    )
    test = await client.post(
        f"{URL}/{created['id']}/test", json={"event": {}}, headers=viewer.headers
    )

    assert read.status_code == 200
    assert write.status_code == 403
    assert test.status_code == 403


def _yaml(member: Member) -> dict[str, str]:
    return {**member.headers, "Content-Type": "application/yaml"}


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("!!binary aGVsbG8=", "constructor"),
        ("!!set {x, y}", "constructor"),
        ("!!python/object/apply:os.system ['true']", "constructor"),
        ("9" * 5000, "too many digits"),
        ("1.0e+400", "not JSON numbers"),
    ],
)
async def test_yaml_values_json_cannot_hold_are_refused(
    client: AsyncClient, factory: Factory, value: str, problem: str
) -> None:
    org = await factory.org()

    response = await client.post(
        f"{URL}/test",
        content=f"config: {{steps: []}}\nevent: {{a: {value}}}\n",
        headers=_yaml(org.owner),
    )

    assert response.status_code == 400
    assert problem in response.json()["error"]["message"]


async def test_a_yaml_key_given_twice_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        URL, content=YAML_BODY + "name: Again\n", headers=_yaml(org.owner)
    )

    assert response.status_code == 400
    assert "'name' is given twice" in response.json()["error"]["message"]


async def test_yaml_1_1_spellings_stay_text(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    event = "{a: yes, b: 'no', c: 012, d: 1:30, e: 2024-05-01, f: 0x1F, g: on}"

    response = await client.post(
        f"{URL}/test",
        content=f"config: {{steps: []}}\nevent: {event}\n",
        headers=_yaml(org.owner),
    )

    assert response.json()["results"][0]["output"] == {
        "a": "yes",
        "b": "no",
        "c": "012",
        "d": "1:30",
        "e": "2024-05-01",
        "f": "0x1F",
        "g": "on",
    }


async def test_yaml_in_utf16_with_a_bom_is_read(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        URL, content=YAML_BODY.encode("utf-16"), headers=_yaml(org.owner)
    )

    assert response.status_code == 201, response.text
    assert response.json()["name"] == "Cents for the warehouse"


async def test_a_yaml_body_over_256_kib_is_too_large(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    padding = "# " + "x" * 1000 + "\n"

    response = await client.post(
        URL, content=YAML_BODY + padding * 300, headers=_yaml(org.owner)
    )

    assert response.status_code == 413
    assert error_code(response) == "PAYLOAD_TOO_LARGE"


async def test_an_unsaved_document_over_256_kib_is_refused_like_a_saved_one(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    steps = [{"type": "enrich", "fields": {"a": "x" * 3000}}] * 100

    response = await client.post(
        f"{URL}/test",
        json={"config": {"steps": steps}, "event": {}},
        headers=org.owner.headers,
    )

    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "config"


async def test_an_event_nested_deeper_than_32_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    event: dict[str, Any] = {}
    inner = event
    for _ in range(40):
        inner["a"] = {}
        inner = inner["a"]

    response = await client.post(
        f"{URL}/test",
        json={"config": STEPS, "event": event},
        headers=org.owner.headers,
    )

    assert response.status_code == 422
    assert "nest" in response.json()["error"]["details"][0]["message"]


async def test_a_body_that_is_not_an_object_names_no_internal_type(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        f"{URL}/test", content="- 1\n- 2\n", headers=_yaml(org.owner)
    )

    assert response.status_code == 422
    assert "UnsavedTest" not in response.text
    assert (
        response.json()["error"]["details"][0]["message"] == "Expected a JSON object."
    )
