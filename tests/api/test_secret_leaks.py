"""No secret leaks: not in an answer, a header, a log line, an audit entry or
a stored row.

One test does what clients do with secrets, on both faces: it creates
pipelines and rotates their keys, installs catalog integrations and writes
revisions with secret fields, keeps a secret with "***", sends requests that
fail next to a secret, repeats creations with an Idempotency-Key, invites
users, accepts invitations, signs in, refreshes and changes passwords, and
reads everything back. Then it searches every answer (body and headers),
every line the service logged (at debug level), every audit entry and every
stored row of every table for each plaintext.

A value the service shows once - a pipeline's key secret, an invite token, a
token pair - may appear only in the one answer that issued it, in the field
that carries it, and in identical replays of that answer under the same
Idempotency-Key. Everything else a client sent (secret config fields,
passwords, tokens) appears nowhere.
"""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import structlog
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy import select

from signal_admin.logs import configure_logging
from signal_admin.persistence.models import Base
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_JWT_SECRET
from tests.factories import PASSWORD, Factory, Member, unique_email
from tests.helpers import audit_entries, bearer, stored_secrets
from tests.org_fixtures import API, PopulatedOrg, graphql, populate, read_back

# Where a value shown once may be issued: REST routes (method, path pattern,
# status) by the field that carries it, and GraphQL mutations by the payload
# field (a token pair's fields sit under `tokenPair`).
REST_ISSUERS = {
    "pipeline_key_secret": [
        ("POST", rf"{API}/pipelines", 201),
        ("POST", rf"{API}/pipelines/[^/]+/rotate-key", 200),
    ],
    "invite_token": [
        ("POST", rf"{API}/users", 201),
        ("POST", rf"{API}/users/[^/]+/reinvite", 200),
    ],
    "access_token": [("POST", rf"{API}/auth/(login|refresh|accept-invite)", 200)],
    "refresh_token": [("POST", rf"{API}/auth/(login|refresh|accept-invite)", 200)],
}
GRAPHQL_ISSUERS = {
    "pipelineKeySecret": {"createPipeline", "rotatePipelineKey"},
    "inviteToken": {"createUser", "reinviteUser"},
    "accessToken": {"login", "refreshToken", "acceptInvite"},
    "refreshToken": {"login", "refreshToken", "acceptInvite"},
}
ONE_TIME_FIELDS = set(REST_ISSUERS) | set(GRAPHQL_ISSUERS)
REPLAYED = "idempotent-replayed"
MASK = "***"

CREATE_PIPELINE = """
mutation ($input: CreatePipelineInput!) {
  createPipeline(input: $input) {
    pipeline { id } pipelineKeySecret userErrors { code }
  }
}
"""
ROTATE_KEY = """
mutation ($input: RotatePipelineKeyInput!) {
  rotatePipelineKey(input: $input) { pipelineKeySecret userErrors { code } }
}
"""
INSTALL = """
mutation ($input: InstallCatalogIntegrationInput!) {
  installCatalogIntegration(input: $input) {
    template { id } revision { id config } userErrors { field code message }
  }
}
"""
REVISE = """
mutation ($input: CreateIntegrationRevisionInput!) {
  createIntegrationRevision(input: $input) {
    revision { id config } userErrors { field code message }
  }
}
"""
CREATE_USER = """
mutation ($input: CreateUserInput!) {
  createUser(input: $input) { user { id } inviteToken userErrors { code } }
}
"""
REINVITE = """
mutation ($input: ReinviteUserInput!) {
  reinviteUser(input: $input) { inviteToken userErrors { code } }
}
"""
TOKEN_PAIR = "{ tokenPair { accessToken refreshToken } userErrors { field code } }"
ACCEPT = f"""
mutation ($input: AcceptInviteInput!) {{ acceptInvite(input: $input) {TOKEN_PAIR} }}
"""
LOGIN = f"""
mutation ($input: LoginInput!) {{ login(input: $input) {TOKEN_PAIR} }}
"""
REFRESH = f"""
mutation ($input: RefreshTokenInput!) {{ refreshToken(input: $input) {TOKEN_PAIR} }}
"""
# A password written into the document itself, as a list where text belongs.
LITERAL_LOGIN = """
mutation { login(input: {email: "%s", password: ["%s"]}) { userErrors { code } } }
"""
UPDATE_ME = """
mutation ($input: UpdateMeInput!) {
  updateMe(input: $input) { user { id } userErrors { field code } }
}
"""


class Recorder:
    """An httpx response hook that keeps every answer, body read."""

    def __init__(self) -> None:
        self.responses: list[Response] = []

    async def __call__(self, response: Response) -> None:
        await response.aread()
        self.responses.append(response)


@pytest.fixture
async def recorded(app: FastAPI) -> AsyncIterator[tuple[AsyncClient, Recorder]]:
    recorder = Recorder()
    async with AsyncClient(
        transport=ASGITransport(app=app),
        base_url="http://testserver",
        event_hooks={"response": [recorder]},
    ) as http:
        yield http, recorder


@pytest.fixture
def service_log(app: FastAPI) -> Iterator[io.StringIO]:
    """Every line the service logs while the test runs: its own logging
    set-up, at debug level and as JSON, writing to a buffer; records of the
    standard library's loggers land there too."""
    saved = structlog.get_config()
    stream = io.StringIO()
    settings = app.state.services.settings.model_copy(
        update={"log_level": "debug", "log_format": "json"}
    )
    configure_logging(settings, stream)
    handler = logging.StreamHandler(stream)
    logging.getLogger().addHandler(handler)
    yield stream
    logging.getLogger().removeHandler(handler)
    structlog.configure(**saved)


@dataclass(frozen=True)
class Trace:
    """Text the service produced, and where: an answer's body or headers, a
    log line, a stored row."""

    where: str
    text: str
    answer: Response | None = None


@dataclass
class Run:
    """The client's side of the test: how it calls the service, and every
    plaintext it sent, by label."""

    http: AsyncClient
    owner: Member
    tag: str
    sent: dict[str, str]

    def secret(self, label: str) -> str:
        """A new plaintext no answer may show: distinctive text, letters
        digits and dashes, so it can never occur inside base64."""
        value = f"Plain-{label}-{self.tag}-{uuid.uuid4().hex[:12]}"
        self.sent[label] = value
        return value

    async def post(
        self, path: str, body: Any, headers: dict[str, str] | None = None
    ) -> Response:
        return await self.http.post(
            f"{API}{path}", json=body, headers={**self.owner.headers, **(headers or {})}
        )


async def test_no_secret_is_answered_logged_audited_or_stored_in_clear(
    app: FastAPI,
    recorded: tuple[AsyncClient, Recorder],
    service_log: io.StringIO,
) -> None:
    http, recorder = recorded
    factory = Factory(app, http)
    populated = await populate(factory, http)
    run = Run(http, populated.owner, populated.marker, {})
    run.sent["the template's first secret"] = f"hook-secret-{populated.marker}"
    run.sent["the GA4 template's first secret"] = f"ga4-secret-{populated.marker}"
    run.sent["the members' password"] = PASSWORD

    await _pipelines_and_keys(run, populated)
    await _catalog_integrations_and_revisions(run, populated)
    await _requests_that_fail_next_to_a_secret(run, populated)
    await _users_invitations_and_passwords(run)
    await read_back(http, app, populated)

    log = service_log.getvalue()
    traces = [
        *_answers(recorder.responses),
        *_log_lines(log),
        *await _stored_rows(app),
    ]
    one_time = _shown_once(recorder.responses)
    assert {
        "http.request",
        "pipeline.key_rotated",
        "user.created",
        "auth.login_failed",
    } <= {json.loads(line)["event"] for line in log.splitlines() if line[:1] == "{"}
    assert _misplaced_one_time_fields(recorder.responses) == []
    assert _replays_that_differ(recorder.responses) == []
    assert {issuer for issuer, _ in one_time.values()} == {
        "POST /pipelines",
        "POST /pipelines/{id}/rotate-key",
        "POST /users",
        "POST /users/{id}/reinvite",
        "POST /auth/login",
        "POST /auth/refresh",
        "POST /auth/accept-invite",
        "createPipeline",
        "rotatePipelineKey",
        "createUser",
        "reinviteUser",
        "login",
        "refreshToken",
        "acceptInvite",
    }
    await _stored_as_ciphertext(app, populated, run)
    assert [
        *_found_outside(traces, one_time),
        *_found_anywhere(traces, _never_shown(run)),
    ] == []


async def _pipelines_and_keys(run: Run, populated: PopulatedOrg) -> None:
    """Pipelines made on both faces, one twice with an Idempotency-Key, and
    keys rotated on both faces."""
    key = {"Idempotency-Key": f"pipeline-{run.tag}"}
    body = {"name": f"{run.tag} idempotent", "type": "app"}
    first = await run.post("/pipelines", body, key)
    replay = await run.post("/pipelines", body, key)
    reused = await run.post("/pipelines", {**body, "type": "server"}, key)
    created = await graphql(
        run.http,
        run.owner,
        CREATE_PIPELINE,
        {"input": {"name": f"{run.tag} graphql", "type": "WEB"}},
    )
    graphql_id = created.json()["data"]["createPipeline"]["pipeline"]["id"]
    rotated = await run.post(
        f"/pipelines/{first.json()['id']}/rotate-key", {"grace_seconds": 60}
    )
    rotated_too = await graphql(
        run.http, run.owner, ROTATE_KEY, {"input": {"id": graphql_id}}
    )

    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay.headers.get(REPLAYED) == "true"
    assert reused.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert rotated.status_code == 200
    assert rotated_too.json()["data"]["rotatePipelineKey"]["userErrors"] == []
    populated.pipelines.append(first.json())


async def _catalog_integrations_and_revisions(
    run: Run, populated: PopulatedOrg
) -> None:
    """Templates installed from the catalog on both faces, and revisions that
    set a new secret or keep one with "***", on both faces, one of them
    twice with an Idempotency-Key."""
    hooks, ga4 = populated.templates[0], populated.templates[1]
    meta = await graphql(
        run.http,
        run.owner,
        INSTALL,
        {
            "input": {
                "vendorKey": "meta_capi",
                "name": f"{run.tag} Meta",
                "config": {
                    "pixel_id": "1234567890",
                    "access_token": run.secret("meta-token"),
                },
            }
        },
    )
    mixpanel = await run.post(
        "/integration-catalog/mixpanel/install",
        {
            "name": f"{run.tag} Mixpanel",
            "config": {
                "project_token": run.secret("mixpanel-token"),
                "service_account_secret": run.secret("mixpanel-account"),
            },
        },
    )
    installed = meta.json()["data"]["installCatalogIntegration"]
    hooks_config = populated.revisions[hooks["id"]][-1]["config"]
    ga4_config = populated.revisions[ga4["id"]][-1]["config"]
    path = f"/integration-templates/{hooks['id']}/revisions"
    changed = await run.post(
        path, {"config": {**hooks_config, "signing_secret": run.secret("hook-2")}}
    )
    kept = await run.post(path, {"config": hooks_config, "change_summary": "kept"})
    key = {"Idempotency-Key": f"revision-{run.tag}"}
    body = {"config": {**hooks_config, "signing_secret": run.secret("hook-3")}}
    once = await run.post(path, body, key)
    twice = await run.post(path, body, key)
    revised = await graphql(
        run.http,
        run.owner,
        REVISE,
        {
            "input": {
                "templateId": ga4["id"],
                "config": {**ga4_config, "api_secret": run.secret("ga4-2")},
            }
        },
    )
    meta_kept = await graphql(
        run.http,
        run.owner,
        REVISE,
        {
            "input": {
                "templateId": installed["template"]["id"],
                "config": installed["revision"]["config"],
            }
        },
    )

    assert installed["userErrors"] == []
    assert installed["revision"]["config"]["access_token"] == "***"
    assert mixpanel.status_code == 201, mixpanel.text
    assert [changed.status_code, kept.status_code, once.status_code] == [201] * 3
    assert kept.json()["config"]["signing_secret"] == "***"
    assert twice.headers.get(REPLAYED) == "true"
    assert revised.json()["data"]["createIntegrationRevision"]["userErrors"] == []
    kept_meta = meta_kept.json()["data"]["createIntegrationRevision"]
    assert kept_meta["revision"]["config"]["access_token"] == "***"
    populated.templates.append(mixpanel.json()["template"])
    populated.revisions[mixpanel.json()["template"]["id"]] = [
        mixpanel.json()["revision"]
    ]


async def _requests_that_fail_next_to_a_secret(
    run: Run, populated: PopulatedOrg
) -> None:
    """Requests refused for a field beside a secret, or for a wrong password
    or token: the refusal must not repeat what was sent."""
    hooks = populated.templates[0]
    hooks_config = populated.revisions[hooks["id"]][-1]["config"]
    short_password = f"s{uuid.uuid4().hex[:10]}"
    run.sent["a password too short"] = short_password
    refused = [
        await run.post(
            "/integration-catalog/ga4/install",
            {
                "name": f"{run.tag} bad GA4",
                "config": {
                    "measurement_id": "not-an-id",
                    "api_secret": run.secret("bad-install"),
                },
            },
        ),
        await run.post(
            "/integration-templates",
            {
                "name": f"{run.tag} bad template",
                "vendor": "Not A Vendor",
                "secret_fields": ["token"],
                "config": {"token": run.secret("bad-template")},
            },
        ),
        await run.post(
            f"/integration-templates/{hooks['id']}/revisions",
            {
                "config": {**hooks_config, "signing_secret": run.secret("bad-rev")},
                "delivery_mode": "sideways",
            },
        ),
        await run.http.post(
            f"{API}/integration-templates",
            content=f'{{"name": "x", "config": {{"token": "{run.secret("json")}"',
            headers={**run.owner.headers, "Content-Type": "application/json"},
        ),
        await run.post(
            "/users",
            {
                "email": "not an email",
                "name": "Nobody",
                "role": "editor",
                "password": run.secret("bad-email-password"),
            },
        ),
        await run.post(
            "/users",
            {
                "email": unique_email("editor"),
                "name": "Short",
                "role": "editor",
                "password": short_password,
            },
        ),
        await run.post(
            "/auth/login",
            {"email": run.owner.email, "password": run.secret("wrong-password")},
        ),
        await run.post(
            "/auth/login",
            {"email": unique_email("nobody"), "password": run.secret("no-account")},
        ),
        await run.http.patch(
            f"{API}/me",
            json={
                "current_password": run.secret("wrong-current"),
                "new_password": run.secret("never-set"),
            },
            headers=run.owner.headers,
        ),
        await run.post(
            "/auth/accept-invite",
            {
                "invite_token": f"inv_{uuid.uuid4().hex}{uuid.uuid4().hex[:8]}",
                "password": run.secret("unknown-invite"),
            },
        ),
    ]
    failed_on_graphql = [
        await graphql(
            run.http,
            run.owner,
            INSTALL,
            {
                "input": {
                    "vendorKey": "ga4",
                    "name": f"{run.tag} bad GA4 again",
                    "config": {
                        "measurement_id": "nope",
                        "api_secret": run.secret("bad-graphql-install"),
                    },
                }
            },
        ),
        await graphql(
            run.http,
            run.owner,
            INSTALL,
            {
                "input": {
                    "vendorKey": "ga4",
                    "name": f"{run.tag} unknown field",
                    "bogus": True,
                    "config": {
                        "measurement_id": "G-ABC123",
                        "api_secret": run.secret("beside-unknown-field"),
                    },
                }
            },
        ),
        await graphql(
            run.http,
            run.owner,
            UPDATE_ME,
            {
                "input": {
                    "currentPassword": run.secret("wrong-current-graphql"),
                    "newPassword": run.secret("never-set-graphql"),
                }
            },
        ),
        await graphql(
            run.http,
            run.owner,
            LOGIN,
            {
                "input": {
                    "email": run.owner.email,
                    "password": run.secret("wrong-password-graphql"),
                }
            },
        ),
        await graphql(
            run.http,
            run.owner,
            LITERAL_LOGIN % (run.owner.email, run.secret("password-of-wrong-type")),
        ),
    ]

    assert [response.status_code for response in refused] == [
        422,
        422,
        422,
        400,
        422,
        422,
        401,
        401,
        422,
        401,
    ]
    assert all(
        r.json().get("errors") or _user_errors(r.json()) for r in failed_on_graphql
    )


def _user_errors(body: dict[str, Any]) -> list[Any]:
    data = body.get("data") or {}
    return [error for payload in data.values() for error in payload["userErrors"]]


async def _users_invitations_and_passwords(run: Run) -> None:
    """Users made active with a password and invited, on both faces (one
    invitation twice with an Idempotency-Key); invitations renewed and
    accepted, sign-ins, refreshes, a sign-out and password changes."""
    email, password = unique_email("editor"), run.secret("editor-password")
    active = await run.post(
        "/users",
        {"email": email, "name": "Active", "role": "editor", "password": password},
    )
    signed_in = await run.post("/auth/login", {"email": email, "password": password})
    editor = Member(active.json()["id"], "", email, "editor", password)
    editor.access_token = signed_in.json()["access_token"]
    key = {"Idempotency-Key": f"invite-{run.tag}"}
    invitation = {"email": unique_email("viewer"), "name": "Invitee", "role": "viewer"}
    invited = await run.post("/users", invitation, key)
    invited_again = await run.post("/users", invitation, key)
    renewed = await run.post(f"/users/{invited.json()['id']}/reinvite", None)
    accepted = await run.post(
        "/auth/accept-invite",
        {
            "invite_token": renewed.json()["invite_token"],
            "password": run.secret("accepted-password"),
        },
    )
    created = await graphql(
        run.http,
        run.owner,
        CREATE_USER,
        {"input": {"email": unique_email("viewer"), "name": "Guest", "role": "VIEWER"}},
    )
    user_id = created.json()["data"]["createUser"]["user"]["id"]
    renewed_too = await graphql(
        run.http, run.owner, REINVITE, {"input": {"id": user_id}}
    )
    accepted_too = await graphql(
        run.http,
        run.owner,
        ACCEPT,
        {
            "input": {
                "inviteToken": renewed_too.json()["data"]["reinviteUser"][
                    "inviteToken"
                ],
                "password": run.secret("accepted-graphql-password"),
            }
        },
    )
    new_password = run.secret("owner-new-password")
    changed = await run.http.patch(
        f"{API}/me",
        json={"current_password": PASSWORD, "new_password": new_password},
        headers=run.owner.headers,
    )
    refreshed = await run.post(
        "/auth/refresh", {"refresh_token": run.owner.refresh_token}
    )
    changed_too = await graphql(
        run.http,
        editor,
        UPDATE_ME,
        {
            "input": {
                "currentPassword": password,
                "newPassword": run.secret("editor-new-password"),
            }
        },
    )
    login = await graphql(
        run.http,
        run.owner,
        LOGIN,
        {"input": {"email": run.owner.email, "password": new_password}},
    )
    pair = login.json()["data"]["login"]["tokenPair"]
    refreshed_too = await graphql(
        run.http, run.owner, REFRESH, {"input": {"refreshToken": pair["refreshToken"]}}
    )
    latest = refreshed_too.json()["data"]["refreshToken"]["tokenPair"]
    logout = await run.http.post(
        f"{API}/auth/logout",
        json={"refresh_token": latest["refreshToken"]},
        headers=bearer(latest["accessToken"]),
    )

    assert [active.status_code, invited.status_code] == [201, 201]
    assert invited_again.headers.get(REPLAYED) == "true"
    assert [signed_in.status_code, renewed.status_code] == [200, 200]
    assert [accepted.status_code, changed.status_code] == [200, 200]
    assert refreshed.status_code == 200
    assert accepted_too.json()["data"]["acceptInvite"]["userErrors"] == []
    assert changed_too.json()["data"]["updateMe"]["userErrors"] == []
    assert logout.status_code == 204


def _answers(responses: list[Response]) -> Iterator[Trace]:
    for number, response in enumerate(responses):
        where = f"answer {number} ({_route_of(response)} {response.status_code})"
        yield Trace(f"{where} body", response.text, response)
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.multi_items())
        yield Trace(f"{where} headers", headers)


def _log_lines(log: str) -> Iterator[Trace]:
    for number, line in enumerate(log.splitlines()):
        yield Trace(f"log line {number}", line)


async def _stored_rows(app: FastAPI) -> list[Trace]:
    """Every row of every table, every column, as stored."""
    rows = []
    async with app.state.services.db.read() as session:
        for table in Base.metadata.sorted_tables:
            for row in await session.execute(select(table)):
                rows.append(Trace(f"{table.name} row {row[0]}", repr(tuple(row))))
    return rows


def _route_of(response: Response) -> str:
    """`POST /pipelines/{id}/rotate-key`: the method and the path under the
    prefix, ids shown as `{id}`."""
    path = response.request.url.path.removeprefix(API)
    path = re.sub(r"/[a-z]+_[0-9A-HJKMNP-TV-Z]{26}", "/{id}", path)
    return f"{response.request.method} {path}"


def _json_of(response: Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _one_time_values(body: Any, path: tuple[str, ...] = ()) -> Iterator[Any]:
    """`(path, value)` of every field named like a value shown once that
    holds one: a vendor's secret config field of the same name (Meta's
    `access_token`) holds the mask."""
    if isinstance(body, dict):
        for key, value in body.items():
            if key in ONE_TIME_FIELDS and isinstance(value, str) and value != MASK:
                yield (*path, key), value
            yield from _one_time_values(value, (*path, key))
    elif isinstance(body, list):
        for index, item in enumerate(body):
            yield from _one_time_values(item, (*path, str(index)))


def _issuer(response: Response, path: tuple[str, ...]) -> str | None:
    """The operation that may issue the value at `path` of this answer, or
    None when no answer there may carry such a value."""
    if response.request.url.path == f"{API}/graphql":
        if len(path) >= 3 and path[0] == "data":
            mutation, field = path[1], path[-1]
            where_it_sits = path[2:] in ((field,), ("tokenPair", field))
            if where_it_sits and mutation in GRAPHQL_ISSUERS.get(field, ()):
                return mutation
        return None
    if len(path) != 1:
        return None
    for method, pattern, status in REST_ISSUERS.get(path[0], []):
        if (
            response.request.method == method
            and re.fullmatch(pattern, response.request.url.path)
            and response.status_code == status
        ):
            return _route_of(response)
    return None


def _is_replay(response: Response) -> bool:
    return bool(response.headers.get(REPLAYED) == "true")


def _misplaced_one_time_fields(responses: list[Response]) -> list[str]:
    """Fields named like a value shown once, in answers that may not issue
    one (replays aside)."""
    return [
        f"{_route_of(response)} {'.'.join(path)}"
        for response in responses
        if not _is_replay(response)
        for path, _ in _one_time_values(_json_of(response))
        if _issuer(response, path) is None
    ]


def _replays_that_differ(responses: list[Response]) -> list[str]:
    """Replays that are not, byte for byte, an earlier answer to the same
    request."""
    different = []
    for number, response in enumerate(responses):
        if not _is_replay(response):
            continue
        earlier = [
            previous
            for previous in responses[:number]
            if not _is_replay(previous)
            and previous.request.method == response.request.method
            and previous.request.url == response.request.url
            and previous.status_code == response.status_code
            and previous.content == response.content
        ]
        if not earlier:
            different.append(f"{_route_of(response)}: {response.text}")
    return different


def _shown_once(responses: list[Response]) -> dict[str, tuple[str, list[Response]]]:
    """Each value shown once: the operation that issued it, and the answers
    allowed to show it (the issuing one and its replays)."""
    shown: dict[str, tuple[str, list[Response]]] = {}
    for response in responses:
        if _is_replay(response):
            continue
        for path, value in _one_time_values(_json_of(response)):
            issuer = _issuer(response, path)
            if issuer is None or value in shown:
                continue
            replays = [
                replay
                for replay in responses
                if _is_replay(replay)
                and replay.request.url == response.request.url
                and replay.content == response.content
            ]
            shown[value] = (issuer, [response, *replays])
    return shown


def _found_outside(
    traces: list[Trace], shown: dict[str, tuple[str, list[Response]]]
) -> list[str]:
    """Each value shown once, wherever it appears besides the answers
    allowed to show it."""
    return [
        f"{issuer} value in {trace.where}"
        for value, (issuer, allowed) in shown.items()
        for trace in traces
        if value in trace.text and not any(trace.answer is answer for answer in allowed)
    ]


def _never_shown(run: Run) -> dict[str, str]:
    """What no answer, log line or row may hold: what the client sent, and
    the service's own keys."""
    return {
        **run.sent,
        "the token signing key": TEST_JWT_SECRET,
        "the encryption key": TEST_ENCRYPTION_KEY,
    }


def _found_anywhere(traces: list[Trace], secrets: dict[str, str]) -> list[str]:
    return [
        f"{label} in {trace.where}: {trace.text[:300]}"
        for label, value in secrets.items()
        for trace in traces
        if value in trace.text
    ]


async def _stored_as_ciphertext(
    app: FastAPI, populated: PopulatedOrg, run: Run
) -> None:
    """The secrets table holds the values the client set, sealed: each row
    opens, with its own id, to one of them; and the audit trail recorded the
    changes whose entries were searched."""
    cipher = app.state.services.cipher
    opened = {
        cipher.decrypt(secret.ciphertext, secret.id)
        for secret in await stored_secrets(app, populated.org.id)
    }
    sealed = {
        run.sent[label]
        for label in (
            "meta-token",
            "mixpanel-token",
            "mixpanel-account",
            "hook-2",
            "hook-3",
            "ga4-2",
        )
    }
    assert sealed <= opened
    actions = {entry.action for entry in await audit_entries(app, populated.org.id)}
    assert {
        "pipeline.key_rotated",
        "integration_revision.created",
        "user.invited",
        "user.reinvited",
        "user.invite_accepted",
        "user.password_changed",
        "auth.login",
    } <= actions
