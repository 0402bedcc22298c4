"""Rotating the encryption key: values written under the old key read in
dual-key mode, a re-encryption run moves them under the new key through
either face, and afterwards the new key alone reads every one of them.

Each test makes its own keys, so the runs of one test are never taken over
by the apps of another: a process only rewrites runs under its own key.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import select, update

from signal_admin.persistence.models import (
    IdempotencyRecord,
    ReEncryptionRun,
    Secret,
)
from signal_admin.persistence.types import utc_now
from signal_admin.security.crypto import Cipher
from tests.api.test_graphql_pipelines import error_codes, graphql, user_errors
from tests.factories import Factory, Member, Org, error_code
from tests.helpers import TIMESTAMP, audit_entries, client_of, dedicated_app

RE_ENCRYPT = "/v1/admin/crypto/re-encrypt"
TEMPLATES = "/v1/admin/integration-templates"
MAPPING = {"defaults": {"action": "pass"}}
START = """
mutation ($input: StartReEncryptionInput!) {
  startReEncryption(input: $input) {
    run { id status total done unreadable remaining startedBy { id } }
    clientMutationId
    userErrors { field code message }
  }
}
"""
WATCH = """
{ reEncryption { id status total done unreadable remaining startedAt finishedAt
                 failureReason startedBy { id } } }
"""
# Long enough that a run paused between batches is still paused when the test
# looks, and shut down before it would go on.
PAUSED = 3_600.0


@dataclass(frozen=True)
class Keys:
    old: str
    new: str

    @property
    def new_key_id(self) -> str:
        return Cipher(self.new).current_key_id


@pytest.fixture
def keys() -> Keys:
    return Keys(old=secrets.token_hex(32), new=secrets.token_hex(32))


@dataclass
class Replica:
    app: FastAPI
    http: AsyncClient

    @property
    def factory(self) -> Factory:
        return Factory(self.app, self.http)


@pytest.fixture
def replica(migrated_database: str, redis_url: str | None) -> Any:
    """A factory of apps on the suite's database, each with its own keys and
    settings, as replicas configured one way or another."""

    @asynccontextmanager
    async def start(
        key: str, previous: str | None = None, **overrides: object
    ) -> AsyncIterator[Replica]:
        async with (
            dedicated_app(
                migrated_database,
                redis_url,
                encryption_key=key,
                encryption_key_previous=previous,
                **overrides,
            ) as app,
            client_of(app) as http,
        ):
            yield Replica(app, http)

    return start


async def _template(http: AsyncClient, member: Member, secret: str) -> dict[str, Any]:
    response = await http.post(
        TEMPLATES,
        json={
            "name": f"Hook {secrets.token_hex(4)}",
            "vendor": "webhook",
            "secret_fields": ["signing_secret"],
            "config": {"signing_secret": secret, **MAPPING},
        },
        headers=member.headers,
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()["template"]
    return created


async def _revision(
    http: AsyncClient, member: Member, template_id: str, secret: str
) -> Response:
    return await http.post(
        f"{TEMPLATES}/{template_id}/revisions",
        json={"config": {"signing_secret": secret, **MAPPING}},
        headers=member.headers,
    )


async def _secrets_of(app: FastAPI, org_id: str) -> list[Secret]:
    async with app.state.services.db.read() as session:
        return list(
            await session.scalars(
                select(Secret).where(Secret.org_id == org_id).order_by(Secret.id)
            )
        )


async def _answers_of(app: FastAPI, org_id: str) -> list[IdempotencyRecord]:
    async with app.state.services.db.read() as session:
        return list(
            await session.scalars(
                select(IdempotencyRecord).where(IdempotencyRecord.org_id == org_id)
            )
        )


async def _runs_of(app: FastAPI, org_id: str) -> list[ReEncryptionRun]:
    async with app.state.services.db.read() as session:
        return list(
            await session.scalars(
                select(ReEncryptionRun).where(ReEncryptionRun.org_id == org_id)
            )
        )


async def _secret_of_revision(app: FastAPI, revision_id: str) -> str:
    async with app.state.services.db.read() as session:
        secret = await session.scalar(
            select(Secret).where(Secret.owner_id == revision_id)
        )
    assert secret is not None
    decrypted: str = app.state.services.cipher.decrypt(secret.ciphertext, secret.id)
    return decrypted


async def _progress(http: AsyncClient, member: Member) -> dict[str, Any]:
    response = await http.get(RE_ENCRYPT, headers=member.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _until(
    http: AsyncClient,
    member: Member,
    *,
    statuses: set[str] | None = None,
    done: int | None = None,
) -> dict[str, Any]:
    """The progress once the run reaches one of `statuses` (by default, its
    end) or `done` values; the run works in the background meanwhile."""
    ends = statuses or {"completed", "failed"}
    async with asyncio.timeout(60):
        while True:
            progress = await _progress(http, member)
            if progress["status"] in ends and done is None:
                return progress
            if done is not None and progress["done"] >= done:
                return progress
            await asyncio.sleep(0.02)


async def _old_values(replica: Any, keys: Keys, count: int = 3) -> Org:
    """An organisation with `count` pipelines, each with a key secret sealed by
    the old key."""
    async with replica(keys.old) as old:
        org = await old.factory.org()
        for _ in range(count):
            await old.factory.pipeline(org.owner)
    return org


async def _simulate_crash(app: FastAPI, run_id: str) -> None:
    """Leave the run as a process that died mid-run leaves it: its lease held
    by a worker that is gone, and a heartbeat long past."""
    async with app.state.services.db.transaction() as session:
        await session.execute(
            update(ReEncryptionRun)
            .where(ReEncryptionRun.id == run_id)
            .values(
                worker="a-replica-that-crashed",
                heartbeat_at=utc_now() - timedelta(hours=1),
            )
        )


# The whole rotation


@pytest.mark.parametrize("face", ["rest", "graphql"])
async def test_after_a_rotation_the_new_key_alone_reads_every_secret(
    replica: Any, keys: Keys, face: str
) -> None:
    async with replica(keys.old) as old:
        org = await old.factory.org()
        owner = org.owner
        rotated = await old.factory.pipeline(owner)
        await old.http.post(
            f"/v1/admin/pipelines/{rotated['id']}/rotate-key",
            json={"grace_seconds": 3600},
            headers=owner.headers,
        )
        template = await _template(old.http, owner, "s3cr3t-1")
        second = await _revision(old.http, owner, template["id"], "s3cr3t-2")
        idempotent = {**owner.headers, "Idempotency-Key": "shop-under-old-key"}
        body = {"name": "Shop", "type": "web"}
        first = await old.http.post(
            "/v1/admin/pipelines", json=body, headers=idempotent
        )
    assert second.status_code == 201, second.text
    assert first.status_code == 201, first.text

    async with replica(keys.new, previous=keys.old) as dual:
        kept = await _revision(dual.http, owner, template["id"], "***")
        replayed = await dual.http.post(
            "/v1/admin/pipelines", json=body, headers=idempotent
        )
        before = await _progress(dual.http, owner)
        if face == "rest":
            started = await dual.http.post(RE_ENCRYPT, headers=owner.headers)
            assert started.status_code == 202, started.text
        else:
            started = await graphql(dual.http, owner, START, {"input": {}})
            assert started.json()["data"]["startReEncryption"]["userErrors"] == []
        finished = await _until(dual.http, owner)

    # Two key secrets of the rotated pipeline (the new one and the one kept for
    # the grace period), two revision secrets, the idempotently created
    # pipeline's key secret and its stored answer.
    assert kept.status_code == 201, kept.text
    assert replayed.status_code == 201
    assert replayed.json() == first.json()
    assert before["status"] == "not_started"
    assert before["remaining"] == 6
    assert finished["status"] == "completed"
    assert (finished["total"], finished["done"], finished["remaining"]) == (6, 6, 0)
    assert finished["unreadable"] == 0

    async with replica(keys.new) as new:
        stored = await _secrets_of(new.app, org.id)
        answers = await _answers_of(new.app, org.id)
        cipher = new.app.state.services.cipher
        plaintexts = {row.id: cipher.decrypt(row.ciphertext, row.id) for row in stored}
        replies = [cipher.decrypt(a.response_ciphertext or "", a.id) for a in answers]
        fourth = await _revision(new.http, owner, template["id"], "***")
        again = await new.http.post(
            "/v1/admin/pipelines", json=body, headers=idempotent
        )
        kept_value = await _secret_of_revision(new.app, fourth.json()["id"])

    assert len(stored) == 6  # the five above and the third revision's
    assert {row.key_id for row in stored} == {keys.new_key_id}
    assert "s3cr3t-2" in plaintexts.values()
    assert len(answers) == 1
    assert answers[0].response_key_id == keys.new_key_id
    assert replies[0] == first.text
    assert fourth.status_code == 201, fourth.text
    assert kept_value == "s3cr3t-2"
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()


async def test_dual_key_mode_reads_and_keeps_values_under_the_old_key(
    replica: Any, keys: Keys
) -> None:
    async with replica(keys.old) as old:
        org = await old.factory.org()
        template = await _template(old.http, org.owner, "0ld-s3cr3t")

    async with replica(keys.new, previous=keys.old) as dual:
        kept = await _revision(dual.http, org.owner, template["id"], "***")
        value = await _secret_of_revision(dual.app, kept.json()["id"])
        stored = await _secrets_of(dual.app, org.id)

    assert kept.status_code == 201, kept.text
    assert value == "0ld-s3cr3t"
    assert sorted(row.key_id for row in stored) == sorted(
        [Cipher(keys.old).current_key_id, keys.new_key_id]
    )


# Starting and watching


async def test_progress_before_any_run_counts_what_is_left(
    replica: Any, keys: Keys
) -> None:
    org = await _old_values(replica, keys, count=2)

    async with replica(keys.new, previous=keys.old) as dual:
        progress = await _progress(dual.http, org.owner)

    assert progress == {
        "id": None,
        "status": "not_started",
        "total": 2,
        "done": 0,
        "unreadable": 0,
        "remaining": 2,
        "started_by": None,
        "started_at": None,
        "heartbeat_at": None,
        "finished_at": None,
        "failure_reason": None,
    }


async def test_a_started_run_answers_202_and_reports_its_progress(
    replica: Any, keys: Keys
) -> None:
    org = await _old_values(replica, keys, count=5)

    async with replica(keys.new, previous=keys.old, re_encryption_batch_size=2) as dual:
        started = await dual.http.post(RE_ENCRYPT, headers=org.owner.headers)
        finished = await _until(dual.http, org.owner)

    assert started.status_code == 202
    body = started.json()
    assert body["id"].startswith("renc_")
    assert body["status"] == "running"
    assert (body["total"], body["done"], body["remaining"]) == (5, 0, 5)
    assert body["started_by"] == org.owner.id
    assert TIMESTAMP.match(body["started_at"])
    assert body["finished_at"] is None
    assert finished["id"] == body["id"]
    assert finished["status"] == "completed"
    assert (finished["total"], finished["done"], finished["remaining"]) == (5, 5, 0)
    assert TIMESTAMP.match(finished["finished_at"])
    assert finished["failure_reason"] is None


async def test_a_run_with_nothing_to_do_completes(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    await factory.pipeline(org.owner)

    started = await client.post(RE_ENCRYPT, headers=org.owner.headers)
    finished = await _until(client, org.owner)

    assert started.status_code == 202
    assert started.json()["total"] == 0
    assert finished["status"] == "completed"
    assert (finished["total"], finished["done"], finished["remaining"]) == (0, 0, 0)


async def test_starting_is_audited_with_the_run(replica: Any, keys: Keys) -> None:
    org = await _old_values(replica, keys, count=1)

    async with replica(keys.new, previous=keys.old) as dual:
        started = await dual.http.post(RE_ENCRYPT, headers=org.owner.headers)
        await _until(dual.http, org.owner)
        entries = await audit_entries(dual.app, org.id, "crypto.re_encrypt_started")

    assert len(entries) == 1
    entry = entries[0]
    assert entry.resource_type == "re_encryption_run"
    assert entry.resource_id == started.json()["id"]
    assert entry.user_id == org.owner.id
    assert entry.metadata_ == {"resumed": False, "total": 1, "done": 0}


async def test_a_second_start_while_a_run_goes_on_is_a_conflict(
    replica: Any, keys: Keys
) -> None:
    org = await _old_values(replica, keys, count=3)

    async with replica(
        keys.new,
        previous=keys.old,
        re_encryption_batch_size=1,
        re_encryption_batch_pause_seconds=PAUSED,
    ) as dual:
        first = await dual.http.post(RE_ENCRYPT, headers=org.owner.headers)
        second = await dual.http.post(RE_ENCRYPT, headers=org.owner.headers)
        runs = await _runs_of(dual.app, org.id)

    assert first.status_code == 202
    assert second.status_code == 409
    assert error_code(second) == "ALREADY_EXISTS"
    assert first.json()["id"] in second.json()["error"]["message"]
    assert [run.id for run in runs] == [first.json()["id"]]


async def test_a_start_repeated_with_its_idempotency_key_answers_the_first_run(
    replica: Any, keys: Keys
) -> None:
    org = await _old_values(replica, keys, count=2)
    headers = {**org.owner.headers, "Idempotency-Key": "rotate-2026"}

    async with replica(keys.new, previous=keys.old) as dual:
        first = await dual.http.post(RE_ENCRYPT, headers=headers)
        await _until(dual.http, org.owner)
        again = await dual.http.post(RE_ENCRYPT, headers=headers)
        runs = await _runs_of(dual.app, org.id)

    assert first.status_code == 202
    assert again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert len(runs) == 1


async def test_two_starts_at_once_on_two_replicas_make_one_run(
    replica: Any, keys: Keys
) -> None:
    org = await _old_values(replica, keys, count=3)
    slow = {"re_encryption_batch_size": 1, "re_encryption_batch_pause_seconds": PAUSED}

    async with (
        replica(keys.new, previous=keys.old, **slow) as one,
        replica(keys.new, previous=keys.old, **slow) as other,
    ):
        answers = await asyncio.gather(
            one.http.post(RE_ENCRYPT, headers=org.owner.headers),
            other.http.post(RE_ENCRYPT, headers=org.owner.headers),
        )
        runs = await _runs_of(one.app, org.id)
        entries = await audit_entries(one.app, org.id, "crypto.re_encrypt_started")

    assert sorted(answer.status_code for answer in answers) == [202, 409]
    assert len(runs) == 1
    assert len(entries) == 1

    async with replica(keys.new, previous=keys.old) as third:
        finished = await _until(third.http, org.owner)
    assert finished["id"] == runs[0].id
    assert (finished["status"], finished["done"]) == ("completed", 3)


# Interruptions


async def test_a_start_after_a_crash_continues_where_the_run_stopped(
    replica: Any, keys: Keys
) -> None:
    org = await _old_values(replica, keys, count=5)
    async with replica(
        keys.new,
        previous=keys.old,
        re_encryption_batch_size=2,
        re_encryption_batch_pause_seconds=PAUSED,
        re_encryption_watch_seconds=0,
    ) as crashing:
        run_id = (
            await crashing.http.post(RE_ENCRYPT, headers=org.owner.headers)
        ).json()["id"]
        await _until(crashing.http, org.owner, done=2)
        await _simulate_crash(crashing.app, run_id)
        first_batch = {
            row.id: row.ciphertext
            for row in await _secrets_of(crashing.app, org.id)
            if row.key_id == keys.new_key_id
        }

    async with replica(
        keys.new, previous=keys.old, re_encryption_watch_seconds=0
    ) as restarted:
        stalled = await _progress(restarted.http, org.owner)
        resumed = await restarted.http.post(RE_ENCRYPT, headers=org.owner.headers)
        finished = await _until(restarted.http, org.owner)
        stored = {row.id: row for row in await _secrets_of(restarted.app, org.id)}
        entries = await audit_entries(
            restarted.app, org.id, "crypto.re_encrypt_started"
        )

    assert len(first_batch) == 2
    assert stalled["status"] == "stalled"
    assert (stalled["done"], stalled["remaining"]) == (2, 3)
    assert resumed.status_code == 202
    assert resumed.json()["id"] == run_id
    assert resumed.json()["done"] == 2
    assert finished["id"] == run_id
    assert (finished["status"], finished["total"], finished["done"]) == (
        "completed",
        5,
        5,
    )
    assert all(row.key_id == keys.new_key_id for row in stored.values())
    # The first batch was not rewritten again: its ciphertexts are as they were.
    assert {sid: stored[sid].ciphertext for sid in first_batch} == first_batch
    assert [entry.metadata_["resumed"] for entry in entries] == [False, True]


async def test_a_replica_takes_over_a_run_whose_process_stopped(
    replica: Any, keys: Keys
) -> None:
    org = await _old_values(replica, keys, count=4)
    async with replica(
        keys.new,
        previous=keys.old,
        re_encryption_batch_size=1,
        re_encryption_batch_pause_seconds=PAUSED,
        re_encryption_watch_seconds=0,
    ) as stopping:
        run_id = (
            await stopping.http.post(RE_ENCRYPT, headers=org.owner.headers)
        ).json()["id"]
        await _until(stopping.http, org.owner, done=1)
        await _simulate_crash(stopping.app, run_id)

    async with replica(
        keys.new, previous=keys.old, re_encryption_watch_seconds=0.05
    ) as survivor:
        finished = await _until(survivor.http, org.owner)

    assert finished["id"] == run_id
    assert (finished["status"], finished["done"]) == ("completed", 4)


async def test_a_run_left_at_shutdown_is_resumed_at_once(
    replica: Any, keys: Keys
) -> None:
    org = await _old_values(replica, keys, count=3)
    async with replica(
        keys.new,
        previous=keys.old,
        re_encryption_batch_size=1,
        re_encryption_batch_pause_seconds=PAUSED,
        re_encryption_watch_seconds=0,
    ) as stopping:
        run_id = (
            await stopping.http.post(RE_ENCRYPT, headers=org.owner.headers)
        ).json()["id"]
        await _until(stopping.http, org.owner, done=1)

    async with replica(keys.new, previous=keys.old) as next_one:
        finished = await _until(next_one.http, org.owner)

    assert finished["id"] == run_id
    assert (finished["status"], finished["done"]) == ("completed", 3)


async def test_values_no_key_opens_fail_the_run_and_stay_as_they_were(
    replica: Any, keys: Keys
) -> None:
    lost_key = secrets.token_hex(32)
    org = await _old_values(replica, Keys(old=lost_key, new=keys.new), count=2)
    async with replica(keys.old) as old:
        await old.factory.pipeline(org.owner)

    async with replica(keys.new, previous=keys.old) as dual:
        before = {row.id: row.ciphertext for row in await _secrets_of(dual.app, org.id)}
        await dual.http.post(RE_ENCRYPT, headers=org.owner.headers)
        finished = await _until(dual.http, org.owner)
        after = {row.id: row for row in await _secrets_of(dual.app, org.id)}

    lost_key_id = Cipher(lost_key).current_key_id
    unreadable = [sid for sid, row in after.items() if row.key_id == lost_key_id]
    assert finished["status"] == "failed"
    assert (finished["total"], finished["done"], finished["unreadable"]) == (3, 1, 2)
    assert finished["remaining"] == 2
    assert "could not be decrypted" in finished["failure_reason"]
    assert len(unreadable) == 2
    assert all(after[sid].ciphertext == before[sid] for sid in unreadable)


async def test_a_stalled_run_under_a_replaced_key_gives_way_to_a_new_run(
    replica: Any, keys: Keys
) -> None:
    org = await _old_values(replica, keys, count=2)
    async with replica(
        keys.new,
        previous=keys.old,
        re_encryption_batch_size=1,
        re_encryption_batch_pause_seconds=PAUSED,
        re_encryption_watch_seconds=0,
    ) as first:
        abandoned = (
            await first.http.post(RE_ENCRYPT, headers=org.owner.headers)
        ).json()["id"]
        await _until(first.http, org.owner, done=1)
    newer = secrets.token_hex(32)

    async with replica(newer, previous=keys.new) as second:
        started = await second.http.post(RE_ENCRYPT, headers=org.owner.headers)
        finished = await _until(second.http, org.owner)
        runs = {run.id: run for run in await _runs_of(second.app, org.id)}

    assert started.status_code == 202
    assert started.json()["id"] != abandoned
    assert runs[abandoned].status == "failed"
    assert "key changed" in (runs[abandoned].error or "")
    assert finished["id"] == started.json()["id"]
    assert finished["status"] == "failed"
    assert finished["unreadable"] == 1


# Who may, and what they see


@pytest.mark.parametrize("role", ["admin", "editor", "viewer"])
async def test_only_the_owner_starts_or_watches_a_run(
    app: FastAPI, client: AsyncClient, factory: Factory, role: str
) -> None:
    org = await factory.org()
    member = await factory.member(org, role)

    started = await client.post(RE_ENCRYPT, headers=member.headers)
    watched = await client.get(RE_ENCRYPT, headers=member.headers)
    mutation = await graphql(client, member, START, {"input": {}})
    query = await graphql(client, member, WATCH)

    assert started.status_code == 403
    assert error_code(started) == "FORBIDDEN"
    assert watched.status_code == 403
    assert error_code(watched) == "FORBIDDEN"
    assert error_codes(mutation) == ["FORBIDDEN"]
    assert mutation.json()["data"]["startReEncryption"] is None
    assert error_codes(query) == ["FORBIDDEN"]
    assert await _runs_of(app, org.id) == []


async def test_starting_needs_a_token(client: AsyncClient) -> None:
    response = await client.post(RE_ENCRYPT)

    assert response.status_code == 401
    assert error_code(response) == "UNAUTHORIZED"


async def test_a_run_covers_and_reports_its_own_organisation_only(
    replica: Any, keys: Keys
) -> None:
    mine = await _old_values(replica, keys, count=2)
    theirs = await _old_values(replica, keys, count=3)

    async with replica(keys.new, previous=keys.old) as dual:
        await dual.http.post(RE_ENCRYPT, headers=mine.owner.headers)
        finished = await _until(dual.http, mine.owner)
        seen_by_them = await _progress(dual.http, theirs.owner)
        their_rows = await _secrets_of(dual.app, theirs.id)

    assert (finished["total"], finished["done"]) == (2, 2)
    assert seen_by_them["status"] == "not_started"
    assert seen_by_them["id"] is None
    assert seen_by_them["remaining"] == 3
    assert {row.key_id for row in their_rows} == {Cipher(keys.old).current_key_id}


# GraphQL


async def test_graphql_starts_and_watches_a_run(replica: Any, keys: Keys) -> None:
    org = await _old_values(replica, keys, count=2)

    async with replica(keys.new, previous=keys.old) as dual:
        started = await graphql(
            dual.http, org.owner, START, {"input": {"clientMutationId": "call-1"}}
        )
        await _until(dual.http, org.owner)
        watched = await graphql(dual.http, org.owner, WATCH)

    payload = started.json()["data"]["startReEncryption"]
    assert payload["userErrors"] == []
    assert payload["clientMutationId"] == "call-1"
    assert payload["run"]["id"].startswith("renc_")
    assert payload["run"]["status"] == "RUNNING"
    assert (payload["run"]["total"], payload["run"]["remaining"]) == (2, 2)
    assert payload["run"]["startedBy"] == {"id": org.owner.id}
    run = watched.json()["data"]["reEncryption"]
    assert run["id"] == payload["run"]["id"]
    assert (run["status"], run["done"], run["remaining"]) == ("COMPLETED", 2, 0)
    assert run["failureReason"] is None
    assert TIMESTAMP.match(run["finishedAt"])


async def test_graphql_reports_a_run_already_going_on_as_a_user_error(
    replica: Any, keys: Keys
) -> None:
    org = await _old_values(replica, keys, count=2)

    async with replica(
        keys.new,
        previous=keys.old,
        re_encryption_batch_size=1,
        re_encryption_batch_pause_seconds=PAUSED,
    ) as dual:
        await graphql(dual.http, org.owner, START, {"input": {}})
        again = await graphql(dual.http, org.owner, START, {"input": {}})

    assert again.json()["data"]["startReEncryption"]["run"] is None
    assert user_errors(again, "startReEncryption") == [(None, "ALREADY_EXISTS")]


async def test_graphql_answers_not_started_without_a_run(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await graphql(client, org.owner, WATCH)

    assert response.json()["data"]["reEncryption"] == {
        "id": None,
        "status": "NOT_STARTED",
        "total": 0,
        "done": 0,
        "unreadable": 0,
        "remaining": 0,
        "startedAt": None,
        "finishedAt": None,
        "failureReason": None,
        "startedBy": None,
    }


# The previous key removed too early


async def test_secrets_no_key_opens_answer_503_naming_the_keys(
    replica: Any, keys: Keys
) -> None:
    body = {"name": "Kept", "type": "web"}
    async with replica(keys.old) as old:
        org = await old.factory.org()
        template = await _template(old.http, org.owner, "old-signing-secret")
        first = await old.http.post(
            "/v1/admin/pipelines",
            json=body,
            headers={**org.owner.headers, "Idempotency-Key": "kept-1"},
        )

    async with replica(keys.new) as too_early:
        replayed = await too_early.http.post(
            "/v1/admin/pipelines",
            json=body,
            headers={**org.owner.headers, "Idempotency-Key": "kept-1"},
        )
        kept = await _revision(too_early.http, org.owner, template["id"], "***")
        through_graphql = await too_early.http.post(
            "/v1/admin/graphql",
            json={
                "query": "mutation ($input: CreateIntegrationRevisionInput!) {"
                " createIntegrationRevision(input: $input) { userErrors { code } } }",
                "variables": {
                    "input": {
                        "templateId": template["id"],
                        "config": {"signing_secret": "***", **MAPPING},
                    }
                },
            },
            headers=org.owner.headers,
        )
        revisions = await too_early.http.get(
            f"{TEMPLATES}/{template['id']}/revisions", headers=org.owner.headers
        )

    assert first.status_code == 201
    for refused in (replayed, kept):
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
        assert "ENCRYPTION_KEY_PREVIOUS" in refused.json()["error"]["message"]
    errors = through_graphql.json()["errors"]
    assert [error["extensions"]["code"] for error in errors] == ["SERVICE_UNAVAILABLE"]
    # Nothing was written: the template still has its one revision.
    assert [r["revision_number"] for r in revisions.json()["data"]] == [1]
