"""Seed an organisation for the benchmarks, through the running service's REST API.

Each pipeline gets the same three integrations attached: GA4 and the Meta
Conversions API installed from the catalog, and a webhook template. The webhook
then gets a second revision, so one attachment in three has an upgrade waiting,
as in a real organisation. Writing through the API (not the tables) keeps the
rows exactly as the service writes them, secrets included.

    python -m bench.seed --url http://127.0.0.1:8084 \\
        --email owner@example.com --password '…' --pipelines 50
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import httpx

API = "/v1/admin"
# Catalog installs and their config; the webhook is a plain template.
INSTALLS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("ga4", {"measurement_id": "G-BENCH00001", "api_secret": "bench-ga4-secret"}),
    (
        "meta_capi",
        {"pixel_id": "123456789012345", "access_token": "bench-meta-token"},
    ),
)
WEBHOOK_CONFIG = {"url": "https://hooks.example.com/collect"}


class SeedError(Exception):
    """The service refused a seeding call; the message holds its answer."""


async def _call(
    client: httpx.AsyncClient, method: str, path: str, **kwargs: Any
) -> dict[str, Any]:
    response = await client.request(method, f"{API}{path}", **kwargs)
    if response.status_code >= 300:
        raise SeedError(f"{method} {path}: {response.status_code} {response.text}")
    body: dict[str, Any] = response.json()
    return body


async def login(client: httpx.AsyncClient, email: str, password: str) -> str:
    body = await _call(
        client, "POST", "/auth/login", json={"email": email, "password": password}
    )
    token: str = body["access_token"]
    return token


async def seed(url: str, email: str, password: str, pipelines: int) -> dict[str, Any]:
    """Create `pipelines` pipelines with three attachments each; answer the
    ids written and a bearer token for the organisation's owner."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        token = await login(client, email, password)
        client.headers["Authorization"] = f"Bearer {token}"

        template_ids = []
        for vendor, config in INSTALLS:
            installed = await _call(
                client,
                "POST",
                f"/integration-catalog/{vendor}/install",
                json={"name": f"{vendor} (bench)", "config": config},
            )
            template_ids.append(installed["template"]["id"])
        webhook = await _call(
            client,
            "POST",
            "/integration-templates",
            json={"name": "Webhook (bench)", "vendor": "webhook"},
        )
        webhook_id = webhook["template"]["id"]
        first_webhook_revision = webhook["revision"]["id"]
        await _call(
            client,
            "POST",
            f"/integration-templates/{webhook_id}/revisions",
            json={"config": WEBHOOK_CONFIG},
        )
        template_ids.append(webhook_id)

        pipeline_ids = []
        for number in range(pipelines):
            pipeline = await _call(
                client,
                "POST",
                "/pipelines",
                json={
                    "name": f"Bench site {number:03d}",
                    "type": "web",
                    "labels": ["bench", f"region-{number % 4}"],
                    "domain_allowlist": [f"shop{number}.example.com"],
                },
            )
            pipeline_ids.append(pipeline["id"])
            for template_id in template_ids:
                attachment: dict[str, Any] = {"integration_id": template_id}
                if template_id == webhook_id:
                    attachment["revision_id"] = first_webhook_revision
                await _call(
                    client,
                    "POST",
                    f"/pipelines/{pipeline['id']}/integrations",
                    json=attachment,
                )
        return {
            "token": token,
            "pipeline_ids": pipeline_ids,
            "template_ids": template_ids,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8084")
    parser.add_argument("--email", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--pipelines", type=int, default=50)
    args = parser.parse_args()
    seeded = asyncio.run(seed(args.url, args.email, args.password, args.pipelines))
    print(
        f"seeded {len(seeded['pipeline_ids'])} pipelines with "
        f"{len(seeded['template_ids'])} integrations each"
    )


if __name__ == "__main__":
    main()
