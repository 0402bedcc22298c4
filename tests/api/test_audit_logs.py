"""The audit log over REST: the entry shape, newest-first keyset pages, every
filter alone and together, time bounds, the request metadata a change records,
who may read it, and that one organisation never sees another's entries."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from ulid import ULID

from signal_admin.persistence.models import AuditEntry
from signal_admin.persistence.types import utc_now
from tests.factories import Factory, Member, Org, error_code
from tests.helpers import TIMESTAMP, audit_entries, client_of, dedicated_app
from tests.statements import counted_selects

AUDIT_LOGS = "/v1/admin/audit-logs"
PIPELINES = "/v1/admin/pipelines"
ENTRY_FIELDS = {
    "id",
    "action",
    "user_id",
    "user_email",
    "resource_type",
    "resource_id",
    "changes",
    "metadata",
    "ip_address",
    "user_agent",
    "request_id",
    "timestamp",
}


async def read_log(client: AsyncClient, member: Member, **params: Any) -> Response:
    return await client.get(AUDIT_LOGS, params=params, headers=member.headers)


def entries_of(response: Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["data"]
    return entries


def actions_of(response: Response) -> list[str]:
    return [entry["action"] for entry in entries_of(response)]


async def create_pipeline(
    client: AsyncClient, member: Member, **headers: str
) -> Response:
    response = await client.post(
        PIPELINES,
        json={"name": f"Site {ULID()}", "type": "web"},
        headers={**member.headers, **headers},
    )
    assert response.status_code == 201, response.text
    return response


async def rename_pipeline(
    client: AsyncClient, member: Member, pipeline_id: str
) -> None:
    response = await client.patch(
        f"{PIPELINES}/{pipeline_id}",
        json={"name": f"Renamed {ULID()}"},
        headers=member.headers,
    )
    assert response.status_code == 200, response.text


async def write_entries(
    app: FastAPI, org_id: str, moments: list[datetime], action: str = "pipeline.updated"
) -> list[str]:
    """Entries of `action` written at `moments`, as the service would have
    written them then; their ids, in the order given."""
    ids = [f"log_{ULID.from_datetime(moment)}" for moment in moments]
    async with app.state.services.db.transaction() as session:
        for entry_id, moment in zip(ids, moments, strict=True):
            session.add(
                AuditEntry(
                    id=entry_id,
                    org_id=org_id,
                    action=action,
                    resource_type=action.split(".")[0],
                    resource_id=None,
                    changes={},
                    metadata_={},
                    timestamp=moment,
                )
            )
    return ids


@dataclass
class History:
    """An organisation whose owner and admin changed things through the API."""

    org: Org
    admin: Member
    first_pipeline: str
    second_pipeline: str
    template: str
    attachment: str


async def history(client: AsyncClient, factory: Factory) -> History:
    org = await factory.org()
    admin = await factory.member(org, "admin")
    first = (await create_pipeline(client, org.owner)).json()["id"]
    await rename_pipeline(client, org.owner, first)
    template = await client.post(
        "/v1/admin/integration-templates",
        json={"name": f"Hook {ULID()}", "vendor": "webhook"},
        headers=org.owner.headers,
    )
    template_id = template.json()["template"]["id"]
    attached = await client.post(
        f"{PIPELINES}/{first}/integrations",
        json={"integration_id": template_id},
        headers=org.owner.headers,
    )
    assert attached.status_code == 201, attached.text
    second = (await create_pipeline(client, admin)).json()["id"]
    return History(org, admin, first, second, template_id, attached.json()["id"])


# The entry


async def test_an_entry_answers_every_documented_field(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await create_pipeline(
        client, org.owner, **{"X-Request-ID": "shape-1", "User-Agent": "audit/1.0"}
    )
    pipeline = created.json()

    response = await read_log(client, org.owner, resource_id=pipeline["id"])

    (entry,) = entries_of(response)
    assert set(entry) == ENTRY_FIELDS
    assert entry["id"].startswith("log_")
    assert entry["action"] == "pipeline.created"
    assert (entry["user_id"], entry["user_email"]) == (org.owner.id, org.owner.email)
    assert (entry["resource_type"], entry["resource_id"]) == (
        "pipeline",
        pipeline["id"],
    )
    assert entry["changes"]["name"] == {"old": None, "new": pipeline["name"]}
    assert entry["metadata"] == {}
    assert entry["ip_address"] == "127.0.0.1"
    assert entry["user_agent"] == "audit/1.0"
    assert entry["request_id"] == "shape-1"
    assert TIMESTAMP.match(entry["timestamp"])


async def test_a_change_records_the_request_id_its_response_returned(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await create_pipeline(client, org.owner)

    response = await read_log(client, org.owner, resource_id=created.json()["id"])

    (entry,) = entries_of(response)
    assert entry["request_id"] == created.headers["X-Request-ID"]


async def test_secrets_in_a_change_are_masked(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await client.post(
        "/v1/admin/integration-templates",
        json={
            "name": "Masked",
            "vendor": "webhook",
            "secret_fields": ["token"],
            "config": {"token": "hush-0123456789"},
        },
        headers=org.owner.headers,
    )
    assert created.status_code == 201, created.text

    response = await read_log(client, org.owner, action="integration_revision.created")

    assert "hush-0123456789" not in response.text
    (entry,) = entries_of(response)
    assert entry["changes"]["token"] == {"old": None, "new": "***"}


async def test_a_change_no_user_made_has_no_actor(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await read_log(client, org.owner, action="user.created")

    # The owner was created with the organisation, by the operator.
    (entry,) = entries_of(response)
    assert entry["resource_id"] == org.owner.id
    assert (entry["user_id"], entry["user_email"]) == (None, None)
    assert (entry["ip_address"], entry["user_agent"], entry["request_id"]) == (
        None,
        None,
        None,
    )


async def test_a_failed_login_is_audited_with_the_user_as_actor(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    refused = await client.post(
        "/v1/admin/auth/login",
        json={"email": org.owner.email, "password": "not the password at all"},
    )

    response = await read_log(client, org.owner, action="auth.login_failed")

    assert refused.status_code == 401
    (entry,) = entries_of(response)
    assert (entry["user_id"], entry["user_email"]) == (org.owner.id, org.owner.email)
    assert entry["metadata"] == {"locked": False}
    assert entry["request_id"] == refused.headers["X-Request-ID"]


async def test_a_deleted_user_stays_named_on_their_entries(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org, "admin")
    created = await create_pipeline(client, admin)
    deleted = await client.delete(
        f"/v1/admin/users/{admin.id}", headers=org.owner.headers
    )

    response = await read_log(client, org.owner, resource_id=created.json()["id"])

    assert deleted.status_code == 204
    (entry,) = entries_of(response)
    assert (entry["user_id"], entry["user_email"]) == (admin.id, admin.email)


# Order and pages


async def test_entries_come_newest_first(client: AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    pipelines = [(await create_pipeline(client, org.owner)).json()["id"] for _ in "abc"]

    response = await read_log(client, org.owner, resource_type="pipeline")

    assert [entry["resource_id"] for entry in entries_of(response)] == pipelines[::-1]
    ids = [entry["id"] for entry in entries_of(response)]
    assert ids == sorted(ids, reverse=True)


async def test_pages_neither_skip_nor_repeat_entries_written_while_paging(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    before = [(await create_pipeline(client, org.owner)).json()["id"] for _ in range(5)]

    first = await read_log(client, org.owner, resource_type="pipeline", limit=2)
    during = [(await create_pipeline(client, org.owner)).json()["id"] for _ in "ab"]
    second = await read_log(
        client,
        org.owner,
        resource_type="pipeline",
        limit=2,
        cursor=first.json()["next_cursor"],
    )
    third = await read_log(
        client,
        org.owner,
        resource_type="pipeline",
        limit=2,
        cursor=second.json()["next_cursor"],
    )

    pages = [first, second, third]
    seen = [entry["resource_id"] for page in pages for entry in entries_of(page)]
    assert seen == before[::-1]
    assert not set(during) & set(seen)
    assert [page.json()["has_more"] for page in pages] == [True, True, False]
    assert third.json()["next_cursor"] is None


async def test_a_cursor_is_base64_json_naming_the_last_entry(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    for _ in range(2):
        await create_pipeline(client, org.owner)

    response = await read_log(client, org.owner, resource_type="pipeline", limit=1)

    cursor = response.json()["next_cursor"]
    decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    assert decoded == f'{{"id":"{entries_of(response)[0]["id"]}"}}'.encode()


async def test_a_page_holds_fifty_entries_unless_told_otherwise(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    start = utc_now() - timedelta(hours=1)
    await write_entries(app, org.id, [start + timedelta(seconds=n) for n in range(60)])

    default = await read_log(client, org.owner)
    largest = await read_log(client, org.owner, limit=100)

    assert len(entries_of(default)) == 50
    assert default.json()["has_more"] is True
    # The 60 written, the owner's creation and sign-in.
    assert len(entries_of(largest)) == 62
    assert largest.json()["has_more"] is False


# Filters


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("pipeline.updated", ["pipeline.updated"]),
        ("pipeline.*", ["pipeline.created", "pipeline.updated", "pipeline.created"]),
        ("pipeline_integration.*", ["pipeline_integration.created"]),
        ("integration_template.*", ["integration_template.created"]),
        ("auth.*", ["auth.login", "auth.login"]),
        ("user.deleted", []),
        # A prefix without its wildcard is an action name like any other.
        ("pipeline", []),
    ],
)
async def test_action_filter_matches_exactly_or_by_prefix(
    client: AsyncClient, factory: Factory, action: str, expected: list[str]
) -> None:
    world = await history(client, factory)

    response = await read_log(client, world.org.owner, action=action)

    assert actions_of(response) == expected


async def test_a_prefix_never_matches_a_longer_word(
    client: AsyncClient, factory: Factory
) -> None:
    world = await history(client, factory)

    response = await read_log(client, world.org.owner, action="pipeline.*")

    assert "pipeline_integration.created" not in actions_of(response)
    assert all(action.startswith("pipeline.") for action in actions_of(response))


async def test_resource_type_filter(client: AsyncClient, factory: Factory) -> None:
    world = await history(client, factory)

    response = await read_log(
        client, world.org.owner, resource_type="pipeline_integration"
    )

    assert [(e["action"], e["resource_id"]) for e in entries_of(response)] == [
        ("pipeline_integration.created", world.attachment)
    ]


async def test_resource_id_filter(client: AsyncClient, factory: Factory) -> None:
    world = await history(client, factory)

    response = await read_log(client, world.org.owner, resource_id=world.first_pipeline)

    assert actions_of(response) == ["pipeline.updated", "pipeline.created"]


async def test_user_id_filter(client: AsyncClient, factory: Factory) -> None:
    world = await history(client, factory)

    response = await read_log(client, world.org.owner, user_id=world.admin.id)

    assert actions_of(response) == ["pipeline.created", "auth.login"]
    assert {entry["user_email"] for entry in entries_of(response)} == {
        world.admin.email
    }


async def test_filters_combine(client: AsyncClient, factory: Factory) -> None:
    world = await history(client, factory)
    now = utc_now()

    response = await read_log(
        client,
        world.org.owner,
        action="pipeline.*",
        resource_type="pipeline",
        user_id=world.org.owner.id,
        **{
            "from": (now - timedelta(minutes=10)).isoformat(),
            "to": (now + timedelta(minutes=10)).isoformat(),
        },
    )
    by_admin = await read_log(
        client,
        world.org.owner,
        action="pipeline.*",
        user_id=world.admin.id,
        resource_id=world.first_pipeline,
    )

    assert [(e["action"], e["resource_id"]) for e in entries_of(response)] == [
        ("pipeline.updated", world.first_pipeline),
        ("pipeline.created", world.first_pipeline),
    ]
    assert entries_of(by_admin) == []
    assert by_admin.json() == {"data": [], "next_cursor": None, "has_more": False}


async def test_filters_apply_to_every_page(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    for _ in range(3):
        pipeline = (await create_pipeline(client, org.owner)).json()["id"]
        await rename_pipeline(client, org.owner, pipeline)

    first = await read_log(client, org.owner, action="pipeline.updated", limit=2)
    second = await read_log(
        client,
        org.owner,
        action="pipeline.updated",
        limit=2,
        cursor=first.json()["next_cursor"],
    )

    assert actions_of(first) + actions_of(second) == ["pipeline.updated"] * 3
    assert second.json()["has_more"] is False


# Time bounds


@dataclass
class Day:
    """Entries around one day, three days ago: its last millisecond before,
    its first, its noon, its last, and the next day's first."""

    date: str
    ids: dict[str, str]


async def entries_around_a_day(app: FastAPI, org_id: str) -> Day:
    day = datetime.combine(
        utc_now().date() - timedelta(days=3), datetime.min.time(), tzinfo=UTC
    )
    moments = {
        "day before": day - timedelta(milliseconds=1),
        "midnight": day,
        "noon": day + timedelta(hours=12),
        "last millisecond": day + timedelta(days=1, milliseconds=-1),
        "next day": day + timedelta(days=1),
    }
    ids = await write_entries(app, org_id, list(moments.values()))
    return Day(day.date().isoformat(), dict(zip(moments, ids, strict=True)))


@pytest.mark.parametrize(
    ("bounds", "expected"),
    [
        # Both bounds are inclusive.
        ({"from": "{date}T12:00:00.000Z"}, ["next day", "last millisecond", "noon"]),
        ({"to": "{date}T12:00:00.000Z"}, ["noon", "midnight", "day before"]),
        ({"from": "{date}T12:00:00Z", "to": "{date}T12:00:00Z"}, ["noon"]),
        ({"to": "{date}T11:59:59.999Z"}, ["midnight", "day before"]),
        # A date alone covers its whole day.
        (
            {"from": "{date}", "to": "{date}"},
            ["last millisecond", "noon", "midnight"],
        ),
        ({"to": "{date}"}, ["last millisecond", "noon", "midnight", "day before"]),
        # A time without a zone is UTC; an offset is converted.
        ({"from": "{date}T12:00:00", "to": "{date}T23:00:00"}, ["noon"]),
        ({"from": "{date}T13:00:00+01:00", "to": "{date}T13:00:00+01:00"}, ["noon"]),
    ],
)
async def test_time_bounds(
    app: FastAPI,
    client: AsyncClient,
    factory: Factory,
    bounds: dict[str, str],
    expected: list[str],
) -> None:
    org = await factory.org()
    day = await entries_around_a_day(app, org.id)
    params = {name: value.format(date=day.date) for name, value in bounds.items()}

    response = await read_log(client, org.owner, action="pipeline.updated", **params)

    assert [entry["id"] for entry in entries_of(response)] == [
        day.ids[name] for name in expected
    ]


# Refusals


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"action": "pipeline*"}, "action"),
        ({"action": "pipeline."}, "action"),
        ({"action": ".*"}, "action"),
        ({"action": "*"}, "action"),
        ({"action": "Pipeline.created"}, "action"),
        ({"action": "pipeline.*.created"}, "action"),
        ({"action": "pipeline..created"}, "action"),
        ({"action": "pipeline created"}, "action"),
        ({"action": ""}, "action"),
        ({"action": "a" * 81}, "action"),
        ({"action": "pipeline\x00.created"}, "action"),
        ({"resource_type": "Pipeline"}, "resource_type"),
        ({"resource_type": "pipeline-integration"}, "resource_type"),
        ({"resource_id": ""}, "resource_id"),
        ({"resource_id": "pip_" + "0" * 61}, "resource_id"),
        ({"resource_id": "pip_\x00"}, "resource_id"),
        ({"user_id": ""}, "user_id"),
        ({"user_id": "usr_\x00"}, "user_id"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-02-30"}, "from"),
        ({"from": "2026-02-25T25:00:00Z"}, "from"),
        ({"from": "0001-01-01T00:00:00+01:00"}, "from"),
        ({"to": "2026-02-25T14:30:00 UTC"}, "to"),
        ({"from": "2026-02-26", "to": "2026-02-25"}, "to"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
    ],
)
async def test_a_filter_or_limit_that_does_not_fit_answers_422_naming_it(
    client: AsyncClient, factory: Factory, params: dict[str, Any], field: str
) -> None:
    org = await factory.org()

    response = await read_log(client, org.owner, **params)

    assert response.status_code == 422, response.text
    assert error_code(response) == "VALIDATION_ERROR"
    assert [problem["field"] for problem in response.json()["error"]["details"]] == [
        field
    ]


async def test_every_problem_of_the_filters_is_named_at_once(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await read_log(
        client, org.owner, action="pipeline", resource_type="A", to="soon"
    )

    assert response.status_code == 422
    fields = [problem["field"] for problem in response.json()["error"]["details"]]
    assert fields == ["resource_type", "to"]
    message = response.json()["error"]["message"]
    assert "resource_type:" in message
    assert "to:" in message


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor!",
        base64.urlsafe_b64encode(b"[1, 2]").decode().rstrip("="),
        base64.urlsafe_b64encode(b'{"id": 7}').decode().rstrip("="),
        base64.urlsafe_b64encode(b'{"id": "log_\\u0000"}').decode().rstrip("="),
    ],
)
async def test_a_cursor_the_service_did_not_issue_answers_400(
    client: AsyncClient, factory: Factory, cursor: str
) -> None:
    org = await factory.org()

    response = await read_log(client, org.owner, cursor=cursor)

    assert response.status_code == 400
    assert error_code(response) == "INVALID_CURSOR"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_no_route_writes_or_deletes_entries(
    app: FastAPI, client: AsyncClient, factory: Factory, method: str
) -> None:
    org = await factory.org()
    await create_pipeline(client, org.owner)
    before = [entry.id for entry in await audit_entries(app, org.id)]

    response = await client.request(
        method,
        AUDIT_LOGS,
        json={"action": "pipeline.created"},
        headers=org.owner.headers,
    )

    assert response.status_code == 405
    assert error_code(response) == "METHOD_NOT_ALLOWED"
    assert "GET" in response.headers["Allow"]
    assert [entry.id for entry in await audit_entries(app, org.id)] == before


async def test_reading_the_log_writes_nothing_to_it(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    before = await audit_entries(app, org.id)

    await read_log(client, org.owner)
    await read_log(client, org.owner, action="nonsense*")

    assert len(await audit_entries(app, org.id)) == len(before)


# Who may read it


@pytest.mark.parametrize("role", ["admin", "owner"])
async def test_owners_and_admins_read_the_log(
    client: AsyncClient, factory: Factory, role: str
) -> None:
    org = await factory.org()
    reader = org.owner if role == "owner" else await factory.member(org, role)

    response = await read_log(client, reader)

    assert response.status_code == 200
    assert "auth.login" in actions_of(response)


@pytest.mark.parametrize("role", ["editor", "viewer"])
async def test_editors_and_viewers_are_forbidden_whatever_they_ask(
    client: AsyncClient, factory: Factory, role: str
) -> None:
    org = await factory.org()
    member = await factory.member(org, role)

    plain = await read_log(client, member)
    malformed = await read_log(client, member, action="*", limit=0, cursor="!")

    for response in (plain, malformed):
        assert response.status_code == 403
        assert error_code(response) == "FORBIDDEN"
        assert "read the audit log" in response.json()["error"]["message"]


async def test_reading_the_log_needs_a_token(client: AsyncClient) -> None:
    response = await client.get(AUDIT_LOGS)

    assert response.status_code == 401
    assert error_code(response) == "UNAUTHORIZED"


async def test_another_organisations_entries_never_appear(
    client: AsyncClient, factory: Factory
) -> None:
    ours, theirs = await history(client, factory), await history(client, factory)
    their_ids = {
        entry["id"]
        for entry in entries_of(await read_log(client, theirs.org.owner, limit=100))
    }
    their_cursor = (await read_log(client, theirs.org.owner, limit=1)).json()[
        "next_cursor"
    ]

    everything = await read_log(client, ours.org.owner, limit=100)
    by_their_pipeline = await read_log(
        client, ours.org.owner, resource_id=theirs.first_pipeline
    )
    by_their_admin = await read_log(client, ours.org.owner, user_id=theirs.admin.id)
    after_their_cursor = await read_log(
        client, ours.org.owner, cursor=their_cursor, limit=100
    )

    assert their_ids
    ours_seen = {entry["id"] for entry in entries_of(everything)}
    assert not ours_seen & their_ids
    assert entries_of(by_their_pipeline) == []
    assert entries_of(by_their_admin) == []
    assert not {entry["id"] for entry in entries_of(after_their_cursor)} & their_ids


# Where a change came from


async def test_the_client_address_is_the_peer_when_no_proxy_is_trusted(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    created = await create_pipeline(
        client, org.owner, **{"X-Forwarded-For": "203.0.113.7"}
    )

    response = await read_log(client, org.owner, resource_id=created.json()["id"])

    (entry,) = entries_of(response)
    assert entry["ip_address"] == "127.0.0.1"


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "recorded"),
    [
        # A trusted proxy's X-Forwarded-For names the client.
        ("10.1.2.3", "198.51.100.4", "198.51.100.4"),
        # Trusted hops nearest the service are skipped.
        ("10.1.2.3", "198.51.100.4, 10.9.9.9", "198.51.100.4"),
        # A hop the client wrote itself, before an untrusted one, is not believed.
        ("10.1.2.3", "192.0.2.99, 198.51.100.4", "198.51.100.4"),
        # Anyone else's X-Forwarded-For is ignored.
        ("192.0.2.50", "198.51.100.4", "192.0.2.50"),
        # A hop that is no address was not written by a proxy: the peer is sure.
        ("10.1.2.3", "<script>, 10.9.9.9", "10.1.2.3"),
        ("10.1.2.3", "", "10.1.2.3"),
        ("10.1.2.3", "fe80::1%" + "z" * 80, "10.1.2.3"),
        ("10.1.2.3", "2001:db8::7", "2001:db8::7"),
    ],
)
async def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy(
    migrated_database: str,
    redis_url: str | None,
    client: AsyncClient,
    factory: Factory,
    peer: str,
    forwarded_for: str,
    recorded: str,
) -> None:
    org = await factory.org()
    async with (
        dedicated_app(
            migrated_database, redis_url, trusted_proxies=["10.0.0.0/8"]
        ) as app,
        client_of(app, address=peer) as http,
    ):
        created = await create_pipeline(
            http, org.owner, **{"X-Forwarded-For": forwarded_for}
        )

    response = await read_log(client, org.owner, resource_id=created.json()["id"])

    (entry,) = entries_of(response)
    assert entry["ip_address"] == recorded


# Cost


async def test_a_page_costs_two_selects_whatever_its_size(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    for _ in range(6):
        await create_pipeline(client, org.owner)

    with counted_selects(app) as small:
        small_page = await read_log(client, org.owner, limit=2)
    with counted_selects(app) as large:
        large_page = await read_log(client, org.owner, limit=8, action="pipeline.*")

    assert len(entries_of(small_page)) == 2
    assert len(entries_of(large_page)) == 6
    # One to authenticate the caller, one for the page.
    assert len(small) == len(large) == 2
