"""Writers of one template's family racing each other on PostgreSQL.

Deleting a template with `cascade=true` while pipelines attach it, revisions
are written, a revision is rolled out, attachments change and pipelines are
deleted: no request fails with a 5xx, a template deleted meanwhile reads as
not found (never as a duplicate attachment), and the rows left agree with the
answers given. A transaction PostgreSQL breaks off in a deadlock is run again
where the operation allows it, and otherwise answers 503 with `Retry-After`.

SQLite runs one writer at a time, so these races need PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from tests.api.test_graphql_pipelines import graphql
from tests.factories import Factory, Member, Org
from tests.helpers import audit_entries

TEMPLATES = "/v1/admin/integration-templates"
MAPPING = {"defaults": {"action": "pass"}}
ROUNDS = 15
DELETE_TEMPLATE = """
mutation ($input: DeleteIntegrationTemplateInput!) {
  deleteIntegrationTemplate(input: $input) { deletedId userErrors { field code } }
}
"""
ATTACH = """
mutation ($input: AttachIntegrationInput!) {
  attachIntegration(input: $input) {
    pipelineIntegration { id }
    userErrors { field code }
  }
}
"""
DELETE_PIPELINE = """
mutation ($input: DeletePipelineInput!) {
  deletePipeline(input: $input) { deletedPipelineId userErrors { field code } }
}
"""


def needs_postgresql(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("races between row locks need PostgreSQL; set TEST_DATABASE_URL")


async def _template(client: AsyncClient, member: Member) -> dict[str, Any]:
    response = await client.post(
        TEMPLATES,
        json={"name": f"Hook {id(object())}", "vendor": "webhook", "config": MAPPING},
        headers=member.headers,
    )
    assert response.status_code == 201, response.text
    template: dict[str, Any] = response.json()["template"]
    return template


def _attachments(pipeline_id: str) -> str:
    return f"/v1/admin/pipelines/{pipeline_id}/integrations"


async def _attach(
    client: AsyncClient, member: Member, pipeline_id: str, template_id: str
) -> dict[str, Any]:
    response = await client.post(
        _attachments(pipeline_id),
        json={"integration_id": template_id},
        headers=member.headers,
    )
    assert response.status_code == 201, response.text
    attached: dict[str, Any] = response.json()
    return attached


async def _attached_anywhere(
    client: AsyncClient, member: Member, pipeline_ids: list[str], template_id: str
) -> list[str]:
    """Ids of the attachments of `template_id` on any of the pipelines."""
    found = []
    for pipeline_id in pipeline_ids:
        listed = await client.get(_attachments(pipeline_id), headers=member.headers)
        if listed.status_code == 404:
            continue
        found += [
            item["id"]
            for item in listed.json()["data"]
            if item["integration_id"] == template_id
        ]
    return found


async def _detached_ids(app: FastAPI, org: Org, template_id: str) -> list[str]:
    """The attachments of `template_id` whose removal the audit log records,
    one entry each."""
    entries = await audit_entries(app, org.id, "pipeline_integration.deleted")
    return [
        entry.resource_id or ""
        for entry in entries
        if entry.metadata_["template_id"] == template_id
    ]


def _refused_as_gone(answer: Response) -> bool:
    """A 422 naming the template as not found: what an attach answers when
    the template was deleted while it ran."""
    error = answer.json()["error"]
    return answer.status_code == 422 and error["details"][0] == {
        "field": "integration_id",
        "code": "NOT_FOUND",
        "message": "No such template.",
    }


async def test_an_attach_racing_a_cascade_delete_never_fails_or_claims_a_duplicate(
    app: FastAPI, client: AsyncClient, factory: Factory, migrated_database: str
) -> None:
    needs_postgresql(migrated_database)
    org = await factory.org()
    pipelines = [(await factory.pipeline(org.owner))["id"] for _ in range(6)]
    headers = org.owner.headers

    for _ in range(ROUNDS):
        template = await _template(client, org.owner)
        attached = [
            (await _attach(client, org.owner, pipeline_id, template["id"]))["id"]
            for pipeline_id in pipelines[:2]
        ]

        deleted, *attaches = await asyncio.gather(
            client.delete(
                f"{TEMPLATES}/{template['id']}",
                params={"cascade": "true"},
                headers=headers,
            ),
            *(
                client.post(
                    _attachments(pipeline_id),
                    json={"integration_id": template["id"]},
                    headers=headers,
                )
                for pipeline_id in pipelines[2:]
            ),
        )

        assert deleted.status_code == 204, deleted.text
        for answer in attaches:
            assert answer.status_code == 201 or _refused_as_gone(answer), answer.text
        created = [answer.json()["id"] for answer in attaches if answer.is_success]
        gone = await client.get(f"{TEMPLATES}/{template['id']}", headers=headers)
        assert gone.status_code == 404
        assert (
            await _attached_anywhere(client, org.owner, pipelines, template["id"]) == []
        )
        assert sorted(await _detached_ids(app, org, template["id"])) == sorted(
            attached + created
        )


async def test_a_mixed_run_on_one_template_gives_no_server_error(
    app: FastAPI, client: AsyncClient, factory: Factory, migrated_database: str
) -> None:
    needs_postgresql(migrated_database)
    org = await factory.org()
    headers = org.owner.headers

    for _ in range(ROUNDS):
        template = await _template(client, org.owner)
        revised = await client.post(
            f"{TEMPLATES}/{template['id']}/revisions",
            json={"config": MAPPING},
            headers=headers,
        )
        doomed, kept, detached, fresh = [
            (await factory.pipeline(org.owner))["id"] for _ in range(4)
        ]
        attached = {
            pipeline_id: (
                await _attach(client, org.owner, pipeline_id, template["id"])
            )["id"]
            for pipeline_id in (doomed, kept, detached)
        }

        answers = await asyncio.gather(
            client.delete(
                f"{TEMPLATES}/{template['id']}",
                params={"cascade": "true"},
                headers=headers,
            ),
            client.post(
                _attachments(fresh),
                json={"integration_id": template["id"]},
                headers=headers,
            ),
            client.post(
                f"{TEMPLATES}/{template['id']}/revisions",
                json={"config": MAPPING},
                headers=headers,
            ),
            client.post(
                f"{TEMPLATES}/{template['id']}/rollout",
                json={"revision_id": revised.json()["id"]},
                headers=headers,
            ),
            client.delete(f"/v1/admin/pipelines/{doomed}", headers=headers),
            client.patch(
                f"{_attachments(kept)}/{attached[kept]}",
                json={"enabled": False},
                headers=headers,
            ),
            client.delete(
                f"{_attachments(detached)}/{attached[detached]}", headers=headers
            ),
        )

        deleted, attach, revision, rollout, pipeline_deleted, patched, detach = answers
        assert [
            answer.status_code for answer in answers if answer.status_code >= 500
        ] == []
        assert deleted.status_code == 204
        assert attach.status_code == 201 or _refused_as_gone(attach), attach.text
        assert revision.status_code in (201, 404), revision.text
        assert rollout.status_code in (200, 404), rollout.text
        assert pipeline_deleted.status_code == 204, pipeline_deleted.text
        assert patched.status_code in (200, 404), patched.text
        assert detach.status_code in (204, 404), detach.text
        created = [attach.json()["id"]] if attach.is_success else []
        everywhere = [kept, detached, fresh]
        assert (
            await _attached_anywhere(client, org.owner, everywhere, template["id"])
            == []
        )
        assert sorted(await _detached_ids(app, org, template["id"])) == sorted(
            [*attached.values(), *created]
        )


async def test_attach_racing_delete_over_graphql_reads_a_deleted_template_as_not_found(
    client: AsyncClient, factory: Factory, migrated_database: str
) -> None:
    needs_postgresql(migrated_database)
    org = await factory.org()
    pipelines = [(await factory.pipeline(org.owner))["id"] for _ in range(4)]

    for _ in range(ROUNDS):
        template = await _template(client, org.owner)
        await _attach(client, org.owner, pipelines[0], template["id"])

        deleted, *attaches = await asyncio.gather(
            graphql(
                client,
                org.owner,
                DELETE_TEMPLATE,
                {"input": {"id": template["id"], "cascade": True}},
            ),
            *(
                graphql(
                    client,
                    org.owner,
                    ATTACH,
                    {
                        "input": {
                            "pipelineId": pipeline_id,
                            "integrationId": template["id"],
                        }
                    },
                )
                for pipeline_id in pipelines[1:]
            ),
        )

        assert "errors" not in deleted.json(), deleted.text
        assert deleted.json()["data"]["deleteIntegrationTemplate"]["userErrors"] == []
        for answer in attaches:
            assert "errors" not in answer.json(), answer.text
            payload = answer.json()["data"]["attachIntegration"]
            assert payload["pipelineIntegration"] is not None or payload[
                "userErrors"
            ] == [{"field": ["integrationId"], "code": "NOT_FOUND"}]
        left = await _attached_anywhere(client, org.owner, pipelines, template["id"])
        assert left == []


@asynccontextmanager
async def _blocker(database_url: str) -> AsyncIterator[AsyncConnection]:
    """A transaction of its own that takes row locks behind the service's
    back. It never checks for deadlocks itself, so in a deadlock with a
    request it is the request's transaction that PostgreSQL breaks off."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SET LOCAL deadlock_timeout = '60s'"))
            yield connection
            await connection.rollback()
    finally:
        await engine.dispose()


async def _lock(connection: AsyncConnection, table: str, row_id: str) -> None:
    await connection.execute(
        text(f"SELECT id FROM {table} WHERE id = :id FOR UPDATE"),
        {"id": row_id},
    )


async def _until_waiting_on(database_url: str, table: str) -> None:
    """Return once some statement on `table` waits for a row lock."""
    engine = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND query LIKE :table"
    )
    try:
        async with engine.connect() as monitor:
            for _ in range(1000):
                if await monitor.scalar(waiting, {"table": f"%{table}%"}):
                    return
                await asyncio.sleep(0.01)
    finally:
        await engine.dispose()
    raise AssertionError(f"nothing came to wait for a row of {table}")


async def _deadlocked(
    database_url: str,
    request: Awaitable[Response],
    first: tuple[str, str],
    then: tuple[str, str],
) -> Response:
    """Send `request` while a blocker holds row `first` (table, id), which
    the request needs after a row it locks, and, once the request waits,
    make the blocker wait for row `then`, which the request already holds."""
    async with _blocker(database_url) as blocker:
        await _lock(blocker, *first)
        sent = asyncio.ensure_future(request)
        await _until_waiting_on(database_url, first[0])
        # Returns when PostgreSQL breaks the request's transaction off.
        await _lock(blocker, *then)
    return await sent


async def test_a_template_delete_broken_off_by_a_deadlock_is_run_again(
    client: AsyncClient, factory: Factory, migrated_database: str
) -> None:
    needs_postgresql(migrated_database)
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    template = await _template(client, org.owner)
    attached = await _attach(client, org.owner, pipeline["id"], template["id"])

    response = await _deadlocked(
        migrated_database,
        client.delete(
            f"{TEMPLATES}/{template['id']}",
            params={"cascade": "true"},
            headers=org.owner.headers,
        ),
        first=("pipeline_integrations", attached["id"]),
        then=("integration_templates", template["id"]),
    )

    gone = await client.get(f"{TEMPLATES}/{template['id']}", headers=org.owner.headers)
    assert response.status_code == 204, response.text
    assert gone.status_code == 404


async def test_a_template_delete_over_graphql_is_run_again_after_a_deadlock(
    client: AsyncClient, factory: Factory, migrated_database: str
) -> None:
    needs_postgresql(migrated_database)
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    template = await _template(client, org.owner)
    attached = await _attach(client, org.owner, pipeline["id"], template["id"])

    response = await _deadlocked(
        migrated_database,
        graphql(
            client,
            org.owner,
            DELETE_TEMPLATE,
            {"input": {"id": template["id"], "cascade": True}},
        ),
        first=("pipeline_integrations", attached["id"]),
        then=("integration_templates", template["id"]),
    )

    assert "errors" not in response.json(), response.text
    payload = response.json()["data"]["deleteIntegrationTemplate"]
    assert payload == {"deletedId": template["id"], "userErrors": []}


async def test_a_deadlock_that_is_not_run_again_answers_503_with_retry_after(
    client: AsyncClient, factory: Factory, migrated_database: str
) -> None:
    needs_postgresql(migrated_database)
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    template = await _template(client, org.owner)
    attached = await _attach(client, org.owner, pipeline["id"], template["id"])

    response = await _deadlocked(
        migrated_database,
        client.delete(
            f"/v1/admin/pipelines/{pipeline['id']}", headers=org.owner.headers
        ),
        first=("pipeline_integrations", attached["id"]),
        then=("pipelines", pipeline["id"]),
    )
    retried = await client.delete(
        f"/v1/admin/pipelines/{pipeline['id']}", headers=org.owner.headers
    )

    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"
    assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert retried.status_code == 204


async def test_a_deadlock_over_graphql_is_a_service_unavailable_error_with_retry_after(
    client: AsyncClient, factory: Factory, migrated_database: str
) -> None:
    needs_postgresql(migrated_database)
    org = await factory.org()
    pipeline = await factory.pipeline(org.owner)
    template = await _template(client, org.owner)
    attached = await _attach(client, org.owner, pipeline["id"], template["id"])

    response = await _deadlocked(
        migrated_database,
        graphql(client, org.owner, DELETE_PIPELINE, {"input": {"id": pipeline["id"]}}),
        first=("pipeline_integrations", attached["id"]),
        then=("pipelines", pipeline["id"]),
    )

    errors = response.json()["errors"]
    assert [error["extensions"] for error in errors] == [
        {"code": "SERVICE_UNAVAILABLE", "retryAfter": 1}
    ]
