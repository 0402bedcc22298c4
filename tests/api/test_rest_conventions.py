"""The conventions every REST route shares: the error envelope, body rules,
validation details, lists, timestamps and the headers of each answer."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator

import pytest
from httpx import AsyncClient

from tests.factories import PASSWORD, Factory, error_code
from tests.helpers import TIMESTAMP, audit_entries, client_of, dedicated_app

PIPELINES = "/v1/admin/pipelines"
ONE_MIB = 1024 * 1024


def _cursor_of(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def test_unknown_route_answers_not_found_envelope(client: AsyncClient) -> None:
    response = await client.get("/v1/admin/no-such-route")

    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "code": "NOT_FOUND",
            "message": "No route matches /v1/admin/no-such-route.",
        }
    }


async def test_wrong_method_answers_method_not_allowed(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.put(PIPELINES, json={}, headers=org.owner.headers)

    assert response.status_code == 405
    assert error_code(response) == "METHOD_NOT_ALLOWED"


async def test_json_with_a_charset_is_accepted(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        PIPELINES,
        content=b'{"name": "Shop", "type": "web"}',
        headers={
            **org.owner.headers,
            "Content-Type": "application/json; charset=utf-8",
        },
    )

    assert response.status_code == 201


async def test_body_that_is_not_json_answers_invalid_json(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        PIPELINES,
        content=b'{"name": "Shop", "type": ',
        headers={**org.owner.headers, "Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert error_code(response) == "INVALID_JSON"


async def test_text_body_answers_unsupported_media_type(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        PIPELINES,
        content=b'{"name": "Shop", "type": "web"}',
        headers={**org.owner.headers, "Content-Type": "text/plain"},
    )

    assert response.status_code == 415
    assert error_code(response) == "UNSUPPORTED_MEDIA_TYPE"


async def test_body_over_one_mebibyte_answers_payload_too_large(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    body = b'{"name": "' + b"x" * ONE_MIB + b'"}'

    response = await client.post(
        PIPELINES,
        content=body,
        headers={**org.owner.headers, "Content-Type": "application/json"},
    )

    assert response.status_code == 413
    assert error_code(response) == "PAYLOAD_TOO_LARGE"


async def test_chunked_body_over_one_mebibyte_answers_payload_too_large(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(17):
            yield b"x" * 65_536
        yield b'"}'

    response = await client.post(
        PIPELINES,
        content=chunks(),
        headers={**org.owner.headers, "Content-Type": "application/json"},
    )

    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert error_code(response) == "PAYLOAD_TOO_LARGE"


async def test_body_just_under_the_limit_reaches_validation(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    body = b'{"name": "' + b"x" * (ONE_MIB - 100) + b'", "type": "web"}'

    response = await client.post(
        PIPELINES,
        content=body,
        headers={**org.owner.headers, "Content-Type": "application/json"},
    )

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"


async def test_missing_required_fields_answer_missing_field_listing_each(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(PIPELINES, json={}, headers=org.owner.headers)

    assert response.status_code == 400
    assert error_code(response) == "MISSING_FIELD"
    details = response.json()["error"]["details"]
    assert {(d["field"], d["code"]) for d in details} == {
        ("name", "REQUIRED"),
        ("type", "REQUIRED"),
    }


async def test_missing_and_invalid_fields_together_answer_missing_field_listing_all(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        PIPELINES,
        json={"type": "desktop", "rate_limit_rps": 0},
        headers=org.owner.headers,
    )

    assert response.status_code == 400
    assert error_code(response) == "MISSING_FIELD"
    details = response.json()["error"]["details"]
    assert {(d["field"], d["code"]) for d in details} == {
        ("name", "REQUIRED"),
        ("type", "INVALID_CHOICE"),
        ("rate_limit_rps", "OUT_OF_RANGE"),
    }


async def test_invalid_nested_value_answers_validation_error_naming_its_path(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        PIPELINES,
        json={"name": "Shop", "type": "web", "js_builder_config": {"batch_size": 0}},
        headers=org.owner.headers,
    )

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    details = response.json()["error"]["details"]
    assert [(d["field"], d["code"]) for d in details] == [
        ("js_builder_config.batch_size", "OUT_OF_RANGE")
    ]


async def test_every_invalid_value_is_listed_at_once(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        PIPELINES,
        json={
            "name": "Shop",
            "type": "web",
            "rate_limit_rps": -1,
            "js_builder_config": {"global_variable": "1bad", "batch_size": 1000},
        },
        headers=org.owner.headers,
    )

    assert response.status_code == 422
    fields = {d["field"] for d in response.json()["error"]["details"]}
    assert fields == {
        "rate_limit_rps",
        "js_builder_config.global_variable",
        "js_builder_config.batch_size",
    }


async def test_unknown_body_field_answers_validation_error(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        PIPELINES,
        json={"name": "Shop", "type": "web", "colour": "blue"},
        headers=org.owner.headers,
    )

    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "colour"
    assert response.json()["error"]["details"][0]["code"] == "UNKNOWN_FIELD"


async def test_json_body_that_is_not_an_object_answers_validation_error(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(PIPELINES, json=["Shop"], headers=org.owner.headers)

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"


@pytest.mark.parametrize("limit", [0, 101])
async def test_page_size_outside_one_to_a_hundred_answers_validation_error(
    client: AsyncClient, factory: Factory, limit: int
) -> None:
    org = await factory.org()

    response = await client.get(
        PIPELINES, params={"limit": limit}, headers=org.owner.headers
    )

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    assert response.json()["error"]["details"][0]["field"] == "limit"


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor!",
        _cursor_of(b"not json"),
        _cursor_of(b'["pip_01"]'),
        _cursor_of(b'{"id": 5}'),
        "é",
    ],
)
async def test_cursor_that_does_not_decode_answers_invalid_cursor(
    client: AsyncClient, factory: Factory, cursor: str
) -> None:
    org = await factory.org()

    response = await client.get(
        PIPELINES, params={"cursor": cursor}, headers=org.owner.headers
    )

    assert response.status_code == 400
    assert error_code(response) == "INVALID_CURSOR"


async def test_route_without_token_answers_unauthorized(client: AsyncClient) -> None:
    response = await client.get(PIPELINES)

    assert response.status_code == 401
    assert error_code(response) == "UNAUTHORIZED"


async def test_timestamps_are_utc_with_milliseconds(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    created = await factory.pipeline(org.owner)
    me = (await client.get("/v1/admin/me", headers=org.owner.headers)).json()

    assert TIMESTAMP.match(created["created_at"])
    assert TIMESTAMP.match(created["updated_at"])
    assert TIMESTAMP.match(me["last_login_at"])


async def test_ids_carry_their_type_prefix(factory: Factory) -> None:
    org = await factory.org()

    created = await factory.pipeline(org.owner)

    assert created["id"].startswith("pip_")
    assert len(created["id"]) == len("pip_") + 26
    assert created["org_id"].startswith("org_")


async def test_request_id_is_echoed(client: AsyncClient) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "trace-42.a_b"})

    assert response.headers["X-Request-ID"] == "trace-42.a_b"


async def test_request_id_is_echoed_on_errors(client: AsyncClient) -> None:
    response = await client.get("/v1/admin/nowhere", headers={"X-Request-ID": "r-1"})

    assert response.status_code == 404
    assert response.headers["X-Request-ID"] == "r-1"


async def test_request_id_is_generated_when_absent_or_unusable(
    client: AsyncClient,
) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "bad id\tvalue"})

    assert response.headers["X-Request-ID"] != "bad id\tvalue"
    assert len(response.headers["X-Request-ID"]) == 32


async def test_authenticated_response_carries_rate_limit_headers(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.get(PIPELINES, headers=org.owner.headers)

    assert response.headers["X-RateLimit-Limit"] == "100000"
    assert 0 <= int(response.headers["X-RateLimit-Remaining"]) < 100_000
    assert int(response.headers["X-RateLimit-Reset"]) >= int(time.time())


async def test_authenticated_error_response_carries_rate_limit_headers(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.get(f"{PIPELINES}/pip_missing", headers=org.owner.headers)

    assert response.status_code == 404
    assert response.headers["X-RateLimit-Limit"] == "100000"
    assert "X-RateLimit-Remaining" in response.headers
    assert "X-RateLimit-Reset" in response.headers


async def test_create_answers_201_with_the_resource(factory: Factory) -> None:
    org = await factory.org()

    response = await factory.client.post(
        PIPELINES, json={"name": "Shop", "type": "web"}, headers=org.owner.headers
    )

    assert response.status_code == 201
    assert response.json()["name"] == "Shop"


async def test_delete_answers_204_with_no_body(factory: Factory) -> None:
    org = await factory.org()
    created = await factory.pipeline(org.owner)

    response = await factory.client.delete(
        f"{PIPELINES}/{created['id']}", headers=org.owner.headers
    )

    assert response.status_code == 204
    assert response.content == b""


async def test_if_match_with_an_absurdly_long_version_is_a_bad_request(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)

    response = await client.patch(
        f"/v1/admin/pipelines/{pipeline['id']}",
        json={"enabled": False},
        headers={**org.owner.headers, "If-Match": '"v' + "9" * 5000 + '"'},
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BAD_REQUEST"


async def _login_address(
    migrated_database: str,
    redis_url: str | None,
    factory: Factory,
    trusted_proxies: list[str],
) -> str | None:
    """Sign in through an app trusting `trusted_proxies`, with a request that
    reaches it from 127.0.0.1 forwarded for 198.51.100.1 and then 203.0.113.7;
    answer the client address the login's audit entry names."""
    org = await factory.org(sign_in=False)
    async with (
        dedicated_app(
            migrated_database, redis_url, trusted_proxies=trusted_proxies
        ) as app,
        client_of(app, address="127.0.0.1") as http,
    ):
        response = await http.post(
            "/v1/admin/auth/login",
            json={"email": org.owner.email, "password": PASSWORD},
            headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.7"},
        )
    assert response.status_code == 200
    entries = await audit_entries(factory.app, org.id, "auth.login")
    return entries[0].ip_address


async def test_client_address_comes_from_a_trusted_proxys_forwarded_for(
    migrated_database: str, redis_url: str | None, factory: Factory
) -> None:
    address = await _login_address(
        migrated_database, redis_url, factory, ["127.0.0.0/8"]
    )

    assert address == "203.0.113.7"


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(
    migrated_database: str, redis_url: str | None, factory: Factory
) -> None:
    address = await _login_address(migrated_database, redis_url, factory, [])

    assert address == "127.0.0.1"


async def test_method_not_allowed_lists_every_method_of_the_path(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)

    collection = await client.put("/v1/admin/pipelines", headers=org.owner.headers)
    item = await client.put(
        f"/v1/admin/pipelines/{pipeline['id']}", headers=org.owner.headers
    )

    assert collection.status_code == 405
    assert collection.headers["Allow"] == "GET, POST"
    assert item.headers["Allow"] == "GET, PATCH, DELETE"


async def test_unauthorized_answers_name_the_bearer_scheme(
    client: AsyncClient,
) -> None:
    missing = await client.get("/v1/admin/me")
    invalid = await client.get(
        "/v1/admin/me", headers={"Authorization": "Bearer garbage"}
    )

    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert invalid.headers["WWW-Authenticate"].startswith("Bearer")


async def test_openapi_declares_the_bearer_scheme_on_protected_routes(
    client: AsyncClient,
) -> None:
    document = (await client.get("/v1/admin/openapi.json")).json()

    pipelines = document["paths"]["/v1/admin/pipelines"]["get"]
    login = document["paths"]["/v1/admin/auth/login"]["post"]
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert pipelines["security"] == [{"HTTPBearer": []}]
    assert "security" not in login
