"""`Idempotency-Key` on creation: one pipeline, revision or attachment, however
often the request is repeated."""

import asyncio

from httpx import AsyncClient

from tests.factories import Factory, error_code

MAPPING = {"defaults": {"action": "pass"}}


async def test_repeat_with_same_key_and_body_returns_the_first_answer(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    headers = {**org.owner.headers, "Idempotency-Key": "create-shop-1"}
    body = {"name": "Shop", "type": "web"}

    first = await client.post("/v1/admin/pipelines", json=body, headers=headers)
    second = await client.post("/v1/admin/pipelines", json=body, headers=headers)
    listed = await client.get("/v1/admin/pipelines", headers=org.owner.headers)

    assert first.status_code == 201
    assert second.status_code == 201
    assert second.json() == first.json()
    assert second.json()["pipeline_key_secret"] == first.json()["pipeline_key_secret"]
    assert [p["id"] for p in listed.json()["data"]] == [first.json()["id"]]


async def test_same_key_with_another_body_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    headers = {**org.owner.headers, "Idempotency-Key": "k-1"}
    await client.post(
        "/v1/admin/pipelines", json={"name": "A", "type": "web"}, headers=headers
    )

    response = await client.post(
        "/v1/admin/pipelines", json={"name": "B", "type": "web"}, headers=headers
    )

    assert response.status_code == 422
    assert error_code(response) == "IDEMPOTENCY_KEY_REUSED"


async def test_keys_belong_to_one_user(client: AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")
    body = {"name": "Shared key", "type": "web"}
    key = {"Idempotency-Key": "same-key"}

    first = await client.post(
        "/v1/admin/pipelines", json=body, headers={**org.owner.headers, **key}
    )
    second = await client.post(
        "/v1/admin/pipelines", json=body, headers={**editor.headers, **key}
    )

    assert first.status_code == 201
    assert second.status_code == 409
    assert error_code(second) == "ALREADY_EXISTS"


async def test_failed_request_frees_its_key(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    headers = {**org.owner.headers, "Idempotency-Key": "retry-me"}
    await factory.pipeline(org.owner, name="Taken")
    body = {"name": "Taken", "type": "web"}

    refused = await client.post("/v1/admin/pipelines", json=body, headers=headers)
    await client.delete(
        f"/v1/admin/pipelines/{(await _by_name(client, org.owner.headers, 'Taken'))}",
        headers=org.owner.headers,
    )
    retried = await client.post("/v1/admin/pipelines", json=body, headers=headers)

    assert refused.status_code == 409
    assert retried.status_code == 201


async def test_concurrent_repeats_create_one_pipeline(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    headers = {**org.owner.headers, "Idempotency-Key": "burst"}
    body = {"name": "Burst", "type": "web"}

    answers = await asyncio.gather(
        *(
            client.post("/v1/admin/pipelines", json=body, headers=headers)
            for _ in range(5)
        )
    )
    listed = await client.get("/v1/admin/pipelines", headers=org.owner.headers)

    created = [a for a in answers if a.status_code == 201]
    assert {a.status_code for a in answers} <= {201, 409}
    assert {a.json()["id"] for a in created} == {listed.json()["data"][0]["id"]}
    assert len(listed.json()["data"]) == 1


async def test_a_repeated_revision_with_the_same_key_writes_one_revision(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    template_id = await _template_id(client, org.owner.headers)
    url = f"/v1/admin/integration-templates/{template_id}/revisions"
    headers = {**org.owner.headers, "Idempotency-Key": "revise-1"}
    body = {"config": MAPPING, "change_summary": "once"}

    first = await client.post(url, json=body, headers=headers)
    second = await client.post(url, json=body, headers=headers)
    listed = await client.get(url, headers=org.owner.headers)

    assert first.status_code == 201
    assert second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert [r["revision_number"] for r in listed.json()["data"]] == [2, 1]


async def test_a_repeated_attach_with_the_same_key_answers_the_first_attachment(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    template_id = await _template_id(client, org.owner.headers)
    pipeline = await factory.pipeline(org.owner)
    url = f"/v1/admin/pipelines/{pipeline['id']}/integrations"
    headers = {**org.owner.headers, "Idempotency-Key": "attach-1"}
    body = {"integration_id": template_id}

    first = await client.post(url, json=body, headers=headers)
    second = await client.post(url, json=body, headers=headers)
    listed = await client.get(url, headers=org.owner.headers)

    assert first.status_code == 201
    assert second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert [a["id"] for a in listed.json()["data"]] == [first.json()["id"]]


async def _template_id(client: AsyncClient, headers: dict[str, str]) -> str:
    created = await client.post(
        "/v1/admin/integration-templates",
        json={"name": "Hook", "vendor": "webhook", "config": MAPPING},
        headers=headers,
    )
    template_id: str = created.json()["template"]["id"]
    return template_id


async def _by_name(client: AsyncClient, headers: dict[str, str], name: str) -> str:
    listed = await client.get(
        "/v1/admin/pipelines", params={"q": name}, headers=headers
    )
    pipeline_id: str = listed.json()["data"][0]["id"]
    return pipeline_id
