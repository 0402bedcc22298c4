"""Health, readiness, metrics and the request log."""

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from structlog.testing import capture_logs

from tests.factories import Factory


async def test_health_answers_without_a_token(client: AsyncClient) -> None:
    response = await client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readiness_reports_database_and_redis(
    app: FastAPI, client: AsyncClient
) -> None:
    expected_redis = "ok" if app.state.services.redis is not None else "not_configured"

    response = await client.get("/health/ready")

    assert response.status_code == 200
    assert response.json()["database"] == "ok"
    assert response.json()["redis"] == expected_redis


async def test_metrics_count_requests_by_route_and_status(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    await client.get("/v1/admin/pipelines", headers=org.owner.headers)

    response = await client.get("/metrics")

    assert response.status_code == 200
    text = response.text
    assert (
        'signal_admin_http_requests_total{method="GET",route="/v1/admin/pipelines",status="200"}'
        in text
    )
    assert "signal_admin_http_request_duration_seconds_bucket" in text
    assert "signal_admin_rate_limit_refusals_total" in text
    assert "signal_admin_live_sockets" in text


async def test_each_request_logs_one_line_with_its_id_user_route_and_status(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    with capture_logs() as logs:
        await client.get(
            "/v1/admin/pipelines",
            headers={**org.owner.headers, "X-Request-ID": "req-123"},
        )

    lines = [line for line in logs if line["event"] == "http.request"]
    assert len(lines) == 1
    assert lines[0]["request_id"] == "req-123"
    assert lines[0]["user_id"] == org.owner.id
    assert lines[0]["route"] == "/v1/admin/pipelines"
    assert lines[0]["status"] == 200
    assert isinstance(lines[0]["duration_ms"], float)


@pytest.mark.parametrize(
    ("path", "route", "status"),
    [
        ("/v1/admin/pipelines/pip_x", "refused before routing", 401),
        ("/v1/admin/no-such-thing", "unmatched", 404),
    ],
)
async def test_a_request_that_reaches_no_route_says_why_in_its_log_line(
    client: AsyncClient, path: str, route: str, status: int
) -> None:
    with capture_logs() as logs:
        response = await client.get(path)

    lines = [line for line in logs if line["event"] == "http.request"]
    assert response.status_code == status
    assert [(line["route"], line["status"]) for line in lines] == [(route, status)]


async def test_metrics_label_graphql_requests_with_the_endpoint_path(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    await client.post(
        "/v1/admin/graphql", json={"query": "{ me { id } }"}, headers=org.owner.headers
    )

    response = await client.get("/metrics")

    assert 'route="/v1/admin/graphql",status="200"' in response.text
