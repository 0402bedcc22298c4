"""The per-user and per-address request limits, seen through HTTP.

Each test builds an app with a small limit. Users are signed in through the
suite's app (tokens are valid on every app of the run), so that with Redis the
shared per-address window of the suite does not count against them.
"""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from httpx import AsyncClient, Response

from tests.factories import PASSWORD, Factory, error_code
from tests.helpers import client_of, dedicated_app

ME = "/v1/admin/me"
LOGIN = "/v1/admin/auth/login"


def _fresh_address() -> str:
    """A client address no other test uses, so per-address windows are its own."""
    value = uuid.uuid4().int
    return f"10.{value % 250}.{value // 250 % 250}.{value // 62_500 % 250 + 1}"


async def _spend(
    http: AsyncClient, headers: dict[str, str], times: int
) -> list[Response]:
    return [await http.get(ME, headers=headers) for _ in range(times)]


async def test_request_over_the_limit_is_refused(
    migrated_database: str, redis_url: str | None, factory: Factory
) -> None:
    org = await factory.org()
    async with (
        dedicated_app(migrated_database, redis_url, rate_limit_per_minute=5) as app,
        client_of(app) as http,
    ):
        await _spend(http, org.owner.headers, 5)

        response = await http.get(ME, headers=org.owner.headers)

    assert response.status_code == 429
    assert error_code(response) == "RATE_LIMITED"


async def test_refusal_says_when_to_retry(
    migrated_database: str, redis_url: str | None, factory: Factory
) -> None:
    org = await factory.org()
    async with (
        dedicated_app(migrated_database, redis_url, rate_limit_per_minute=5) as app,
        client_of(app) as http,
    ):
        await _spend(http, org.owner.headers, 5)

        response = await http.get(ME, headers=org.owner.headers)

    retry_after = response.headers.get_list("Retry-After")
    assert len(retry_after) == 1
    assert int(retry_after[0]) >= 1
    assert response.json()["error"]["message"] == (
        f"Rate limit exceeded. Retry after {retry_after[0]} seconds."
    )


async def test_refusal_carries_the_rate_limit_headers(
    migrated_database: str, redis_url: str | None, factory: Factory
) -> None:
    org = await factory.org()
    async with (
        dedicated_app(migrated_database, redis_url, rate_limit_per_minute=5) as app,
        client_of(app) as http,
    ):
        await _spend(http, org.owner.headers, 5)

        response = await http.get(ME, headers=org.owner.headers)

    assert response.headers["X-RateLimit-Limit"] == "5"
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert int(response.headers["X-RateLimit-Reset"]) > 0


async def test_remaining_requests_count_down(
    migrated_database: str, redis_url: str | None, factory: Factory
) -> None:
    org = await factory.org()
    async with (
        dedicated_app(migrated_database, redis_url, rate_limit_per_minute=5) as app,
        client_of(app) as http,
    ):
        responses = await _spend(http, org.owner.headers, 5)

    assert [r.headers["X-RateLimit-Remaining"] for r in responses] == [
        "4",
        "3",
        "2",
        "1",
        "0",
    ]
    assert {r.headers["X-RateLimit-Limit"] for r in responses} == {"5"}


async def test_window_slides_so_requests_pass_again_once_it_has_moved_on(
    migrated_database: str, redis_url: str | None, factory: Factory
) -> None:
    org = await factory.org()
    async with (
        dedicated_app(
            migrated_database,
            redis_url,
            rate_limit_per_minute=3,
            rate_limit_window_seconds=1,
        ) as app,
        client_of(app) as http,
    ):
        await _spend(http, org.owner.headers, 3)
        refused = await http.get(ME, headers=org.owner.headers)
        await asyncio.sleep(1.1)

        response = await http.get(ME, headers=org.owner.headers)

    assert refused.status_code == 429
    assert response.status_code == 200


async def test_limit_is_kept_per_user(
    migrated_database: str, redis_url: str | None, factory: Factory
) -> None:
    org = await factory.org()
    editor = await factory.member(org, "editor")
    async with (
        dedicated_app(migrated_database, redis_url, rate_limit_per_minute=2) as app,
        client_of(app) as http,
    ):
        await _spend(http, org.owner.headers, 3)

        response = await http.get(ME, headers=editor.headers)

    assert response.status_code == 200


@pytest.mark.skipif(
    not os.environ.get("TEST_REDIS_URL"),
    reason="replicas share a window through Redis; set TEST_REDIS_URL",
)
async def test_limit_is_shared_by_every_replica(
    migrated_database: str, redis_url: str | None, factory: Factory
) -> None:
    org = await factory.org()
    async with (
        dedicated_app(migrated_database, redis_url, rate_limit_per_minute=2) as first,
        dedicated_app(migrated_database, redis_url, rate_limit_per_minute=2) as second,
        client_of(first) as first_http,
        client_of(second) as second_http,
    ):
        await _spend(first_http, org.owner.headers, 2)

        response = await second_http.get(ME, headers=org.owner.headers)

    assert response.status_code == 429


async def test_anonymous_requests_are_limited_per_client_address(
    migrated_database: str, redis_url: str | None, factory: Factory
) -> None:
    org = await factory.org(sign_in=False)
    body = {"email": org.owner.email, "password": PASSWORD}
    address = _fresh_address()
    async with (
        dedicated_app(migrated_database, redis_url, rate_limit_per_minute=2) as app,
        client_of(app, address=address) as http,
        client_of(app, address=_fresh_address()) as elsewhere,
    ):
        for _ in range(2):
            await http.post(LOGIN, json=body)

        refused = await http.post(LOGIN, json=body)
        response = await elsewhere.post(LOGIN, json=body)

    assert refused.status_code == 429
    assert error_code(refused) == "RATE_LIMITED"
    assert response.status_code == 200


async def test_unreachable_redis_lets_requests_through(
    migrated_database: str, factory: Factory
) -> None:
    org = await factory.org()
    async with (
        dedicated_app(
            migrated_database, "redis://127.0.0.1:1/0", rate_limit_per_minute=1
        ) as app,
        client_of(app) as http,
    ):
        responses = await _spend(http, org.owner.headers, 3)

    assert [r.status_code for r in responses] == [200, 200, 200]
