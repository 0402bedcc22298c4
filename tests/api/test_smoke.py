from httpx import AsyncClient

from tests.factories import Factory


async def test_owner_creates_and_reads_a_pipeline(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    created = await factory.pipeline(org.owner, name="Shop")
    response = await client.get(
        f"/v1/admin/pipelines/{created['id']}", headers=org.owner.headers
    )

    assert response.status_code == 200
    assert response.json()["name"] == "Shop"
