"""SQL statement counts: a list page costs the same whatever its size."""

from fastapi import FastAPI
from httpx import AsyncClient

from tests.factories import Factory
from tests.statements import counted_selects


async def test_pipeline_list_page_costs_two_selects_whatever_its_size(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    for _ in range(12):
        await factory.pipeline(org.owner)

    with counted_selects(app) as small:
        small_page = await client.get(
            "/v1/admin/pipelines", params={"limit": 2}, headers=org.owner.headers
        )
    with counted_selects(app) as large:
        large_page = await client.get(
            "/v1/admin/pipelines", params={"limit": 12}, headers=org.owner.headers
        )

    assert len(small_page.json()["data"]) == 2
    assert len(large_page.json()["data"]) == 12
    # One to authenticate the caller, one for the page.
    assert len(small) == len(large) == 2


async def test_template_revision_and_attachment_pages_cost_the_same_whatever_their_size(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    template_ids = []
    for number in range(6):
        created = await client.post(
            "/v1/admin/integration-templates",
            json={"name": f"T{number}", "vendor": "webhook"},
            headers=org.owner.headers,
        )
        template_ids.append(created.json()["template"]["id"])
        await client.post(
            f"/v1/admin/pipelines/{pipeline['id']}/integrations",
            json={"integration_id": template_ids[-1]},
            headers=org.owner.headers,
        )
    for _ in range(5):
        await client.post(
            f"/v1/admin/integration-templates/{template_ids[0]}/revisions",
            json={"config": {}},
            headers=org.owner.headers,
        )
    urls = {
        "/v1/admin/integration-templates": 2,
        f"/v1/admin/integration-templates/{template_ids[0]}/revisions": 3,
        f"/v1/admin/pipelines/{pipeline['id']}/integrations": 3,
    }

    counts = {}
    for url in urls:
        for limit in (2, 6):
            with counted_selects(app) as statements:
                page = await client.get(
                    url, params={"limit": limit}, headers=org.owner.headers
                )
            assert len(page.json()["data"]) == limit
            counts[(url, limit)] = len(statements)

    # Authentication, the parent row where there is one, then the page.
    assert counts == {(url, limit): n for url, n in urls.items() for limit in (2, 6)}
