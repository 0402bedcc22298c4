"""The committed REST contract matches what the code serves."""

import json
from pathlib import Path

from httpx import AsyncClient

from signal_admin.rest_compat.export import render

ROOT = Path(__file__).resolve().parents[2]


def test_committed_openapi_matches_the_code() -> None:
    committed = (ROOT / "openapi.json").read_text()

    assert committed == render(), (
        "openapi.json is out of date: run "
        "`python -m signal_admin.rest_compat.export openapi.json`"
    )


async def test_openapi_is_served_without_a_token(client: AsyncClient) -> None:
    response = await client.get("/v1/admin/openapi.json")

    assert response.status_code == 200
    assert response.json()["paths"].keys() == json.loads(render())["paths"].keys()
