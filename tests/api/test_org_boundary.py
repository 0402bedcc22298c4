"""Two organisations side by side: nothing of one is visible, guessable or
writable from the other, through either face.

Each test builds both organisations with a full set of objects and acts as
the first one's owner, so the role is never the reason for a refusal. Another
organisation's id gets exactly the answer an id that does not exist gets
(404 `NOT_FOUND` on REST, null from a query field, a `NOT_FOUND` userError
from a mutation) and changes nothing: the other organisation reads back the
same bytes afterwards. The route and field tables below are checked against
the app's own routes and the served schema, so a route or field added later
fails here, by name, until it is given a case.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import select

from signal_admin.persistence.ids import new_id
from signal_admin.persistence.models import Secret
from tests.conftest import TEST_ENCRYPTION_KEY
from tests.factories import Factory, Member
from tests.helpers import audit_entries, client_of, dedicated_app, stored_secrets
from tests.org_fixtures import (
    API,
    ID_PREFIXES,
    ID_QUERY_FIELDS,
    MAPPING,
    PopulatedOrg,
    Route,
    Schema,
    bindings_of,
    every_page,
    found,
    graphql,
    named,
    populate,
    read_back,
    rest_routes,
    root_reads,
    selection_of,
    served_schema,
    type_text,
    url_of,
)

Binding = dict[str, str]
BodyOf = Callable[[PopulatedOrg, Binding], Any]
PIPELINE = f"{API}/pipelines/{{pipeline_id}}"
ATTACHMENTS = f"{PIPELINE}/integrations"
ATTACHMENT = f"{ATTACHMENTS}/{{attachment_id}}"
BUILDS = f"{PIPELINE}/collector/builds"
BUILD = f"{BUILDS}/{{build_id}}"
SOURCE = f"{API}/sources/{{pipeline_id}}"
LEGACY_INTEGRATION = f"{API}/integrations/{{attachment_id}}"
TEMPLATE = f"{API}/integration-templates/{{template_id}}"
REVISIONS = f"{TEMPLATE}/revisions"
REVISION = f"{REVISIONS}/{{revision_id}}"
USER = f"{API}/users/{{user_id}}"
TRANSFORMATION = f"{API}/transformations/{{transformation_id}}"
PAGE_VIEW = {
    "type": "page",
    "anonymousId": "anon-1",
    "context": {"page": {"url": "https://example.com/"}},
}
NOT_FOUND = (404, "NOT_FOUND")
# A version no object has reached: a write that honoured it before finding
# the object would answer 412 and so reveal that the object exists.
STALE = {"If-Match": '"v999"'}
ANOTHER_KEY = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"


def _spare_template(populated: PopulatedOrg, binding: Binding) -> Any:
    return {"integration_id": populated.templates[2]["id"]}


def _next_revision(populated: PopulatedOrg, binding: Binding) -> Any:
    latest = populated.revisions[binding["template_id"]][-1]
    return {"config": latest["config"], "change_summary": "across the boundary"}


def _first_revision(populated: PopulatedOrg, binding: Binding) -> Any:
    return {"revision_id": populated.revisions[binding["template_id"]][0]["id"]}


def _legacy_replacement(populated: PopulatedOrg, binding: Binding) -> Any:
    return {
        "name": f"{populated.marker} replaced {uuid.uuid4().hex[:6]}",
        "enabled": False,
        "config": {
            "url": "https://{{pipeline_param.host}}/replaced",
            "signing_secret": "***",
            **MAPPING,
        },
    }


def _second_attachment(populated: PopulatedOrg) -> Binding:
    return {"attachment_id": populated.attachments[1]["id"]}


def _last_pipeline(populated: PopulatedOrg) -> Binding:
    return {"pipeline_id": populated.pipelines[-1]["id"]}


def _admin(populated: PopulatedOrg) -> Binding:
    return {"user_id": populated.members[0].id}


def _invitee(populated: PopulatedOrg) -> Binding:
    return {"user_id": populated.invitee["id"]}


@dataclass(frozen=True)
class Call:
    """How the tests call a route with an id in its path: a body valid for
    the organisation whose ids fill the path, the query strings to try, the
    answer another organisation's ids get, and the status its own ids get
    (with `own`'s ids, by default the first that fit)."""

    body: BodyOf | None = None
    queries: tuple[dict[str, str], ...] = ({},)
    refusal: tuple[int, str] = NOT_FOUND
    succeeds: int = 200
    own: Callable[[PopulatedOrg], Binding] | None = None


REVISIONS_NEVER_CHANGE = Call(
    body=lambda populated, binding: {"config": {}},
    refusal=(405, "METHOD_NOT_ALLOWED"),
    succeeds=405,
)
# In the order the calls with an organisation's own ids succeed one after
# another: reads, creations, changes, then deletions, children first.
ROUTE_CALLS: dict[tuple[str, str], Call] = {
    ("GET", PIPELINE): Call(),
    ("GET", ATTACHMENTS): Call(),
    ("GET", ATTACHMENT): Call(),
    ("GET", TEMPLATE): Call(),
    ("GET", REVISIONS): Call(),
    ("GET", REVISION): Call(),
    ("GET", USER): Call(),
    ("GET", TRANSFORMATION): Call(),
    ("GET", SOURCE): Call(),
    ("GET", LEGACY_INTEGRATION): Call(),
    ("GET", BUILDS): Call(),
    ("GET", BUILD): Call(),
    ("GET", f"{BUILD}/script"): Call(),
    ("POST", f"{PIPELINE}/test-events"): Call(
        body=lambda populated, binding: {"event": PAGE_VIEW}
    ),
    ("POST", f"{TRANSFORMATION}/test"): Call(
        body=lambda populated, binding: {"event": {"a": 1}}
    ),
    ("POST", ATTACHMENTS): Call(body=_spare_template, succeeds=201),
    ("POST", REVISIONS): Call(body=_next_revision, succeeds=201),
    ("POST", BUILDS): Call(succeeds=201),
    ("POST", f"{SOURCE}/build"): Call(succeeds=201),
    ("POST", f"{TEMPLATE}/rollout"): Call(body=_first_revision),
    ("POST", f"{PIPELINE}/rotate-key"): Call(
        body=lambda populated, binding: {"grace_seconds": 60}
    ),
    ("POST", f"{USER}/reinvite"): Call(own=_invitee),
    ("PATCH", PIPELINE): Call(
        body=lambda populated, binding: {"labels": ["env:staging"], "enabled": False}
    ),
    ("PATCH", ATTACHMENT): Call(
        body=lambda populated, binding: {
            "enabled": False,
            "consent_categories": ["analytics"],
        }
    ),
    ("PATCH", TEMPLATE): Call(
        body=lambda populated, binding: {"description": "changed across orgs"}
    ),
    ("PATCH", TRANSFORMATION): Call(
        body=lambda populated, binding: {"description": "changed across orgs"}
    ),
    ("PATCH", USER): Call(
        body=lambda populated, binding: {"name": "Renamed across orgs"}, own=_admin
    ),
    ("PUT", SOURCE): Call(body=lambda populated, binding: {"name": "Replaced"}),
    ("PATCH", SOURCE): Call(
        body=lambda populated, binding: {"config": {"consent": {"enabled": True}}}
    ),
    ("PUT", LEGACY_INTEGRATION): Call(body=_legacy_replacement),
    ("PATCH", LEGACY_INTEGRATION): Call(
        body=lambda populated, binding: {
            "enabled": True,
            "config": {"url": "https://{{pipeline_param.host}}/patched"},
        }
    ),
    ("PUT", REVISION): REVISIONS_NEVER_CHANGE,
    ("PATCH", REVISION): REVISIONS_NEVER_CHANGE,
    ("DELETE", REVISION): REVISIONS_NEVER_CHANGE,
    ("DELETE", LEGACY_INTEGRATION): Call(succeeds=204, own=_second_attachment),
    ("DELETE", ATTACHMENT): Call(succeeds=204),
    ("DELETE", TRANSFORMATION): Call(succeeds=204),
    ("DELETE", TEMPLATE): Call(queries=({"cascade": "true"}, {}), succeeds=204),
    ("DELETE", PIPELINE): Call(succeeds=204),
    # The first pipeline is gone by now.
    ("DELETE", SOURCE): Call(succeeds=204, own=_last_pipeline),
    ("DELETE", USER): Call(succeeds=204, own=_admin),
}


@dataclass(frozen=True)
class Attempt:
    """One call with ids that are not all the caller's: the ids that fill the
    path, and the organisation whose objects the body was made for."""

    binding: Binding
    body_from: PopulatedOrg


def foreign_attempts(
    route: Route, ours: PopulatedOrg, theirs: PopulatedOrg
) -> list[Attempt]:
    """Every filling of the path with the other organisation's ids, and for
    a path with two ids each mix of one of ours with one of theirs."""
    attempts = [Attempt(binding, theirs) for binding in bindings_of(route, theirs)]
    if len(route.parameters) == 2:
        own = bindings_of(route, ours)[0]
        for binding in bindings_of(route, theirs):
            for kept in binding:
                attempts.append(Attempt({**binding, kept: own[kept]}, theirs))
    return attempts


def unknown_twin(binding: Binding, foreign: set[str]) -> Binding:
    """`binding` with each foreign id replaced by one that does not exist."""
    return {
        name: new_id(ID_PREFIXES[name]) if value in foreign else value
        for name, value in binding.items()
    }


def without_ids(text: str, binding: Binding) -> str:
    """An answer with the ids it was asked about replaced by their names, to
    compare answers about different ids."""
    for name, value in binding.items():
        text = text.replace(value, f"<{name}>")
    return text


def status_and_code(response: Response) -> tuple[int, str | None]:
    body = response.json() if response.content else {}
    return response.status_code, body.get("error", {}).get("code")


async def call_route(
    client: AsyncClient,
    member: Member,
    route: Route,
    binding: Binding,
    body: Any,
    query: dict[str, str],
    headers: dict[str, str],
) -> Response:
    return await client.request(
        route.method,
        url_of(route, binding),
        json=body,
        params=query,
        headers={**member.headers, **headers},
    )


def header_variants(route: Route) -> list[Callable[[], dict[str, str]]]:
    """The headers each call is tried with: none, and each precondition or
    key the route honours (a fresh Idempotency-Key for every call)."""
    variants: list[Callable[[], dict[str, str]]] = [dict]
    if "if-match" in route.headers:
        variants.append(lambda: STALE)
    if "idempotency-key" in route.headers:
        variants.append(lambda: {"Idempotency-Key": new_id("key")})
    return variants


def routes_with_ids(app: FastAPI) -> dict[tuple[str, str], Route]:
    return {
        route.key: route
        for route in rest_routes(app)
        if route.parameters - {"vendor_key"}
    }


async def two_orgs(
    factory: Factory, client: AsyncClient
) -> tuple[PopulatedOrg, PopulatedOrg]:
    return await populate(factory, client), await populate(factory, client)


async def audit_ids(app: FastAPI, *orgs: PopulatedOrg) -> list[list[str]]:
    return [[entry.id for entry in await audit_entries(app, o.org.id)] for o in orgs]


async def test_every_route_with_an_id_in_its_path_has_a_case_here(
    app: FastAPI,
) -> None:
    served = set(routes_with_ids(app))

    uncovered = sorted(served - set(ROUTE_CALLS))
    stale = sorted(set(ROUTE_CALLS) - served)

    assert uncovered == [], "routes with an id in the path and no case in ROUTE_CALLS"
    assert stale == [], "cases in ROUTE_CALLS for routes the app does not serve"


async def test_another_orgs_ids_in_a_path_answer_not_found_and_change_nothing(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    ours, theirs = await two_orgs(factory, client)
    before = await read_back(client, app, theirs)
    trails = await audit_ids(app, ours, theirs)
    routes = routes_with_ids(app)
    foreign = theirs.ids()
    wrong = []

    for key, call in ROUTE_CALLS.items():
        route = routes[key]
        variants = header_variants(route)
        for attempt in foreign_attempts(route, ours, theirs):
            body = call.body(attempt.body_from, attempt.binding) if call.body else None
            twin = unknown_twin(attempt.binding, foreign)
            for query in call.queries:
                for variant in variants:
                    headers = variant()
                    answer = await call_route(
                        client, ours.owner, route, attempt.binding, body, query, headers
                    )
                    unknown = await call_route(
                        client, ours.owner, route, twin, body, query, variant()
                    )
                    shown = f"{route.method} {url_of(route, attempt.binding)}"
                    if status_and_code(answer) != call.refusal:
                        wrong.append(f"{shown} {query} {headers}: {answer.text}")
                    elif without_ids(answer.text, attempt.binding) != without_ids(
                        unknown.text, twin
                    ):
                        wrong.append(
                            f"{shown}: {answer.text} differs from {unknown.text}"
                        )

    assert wrong == []
    assert await read_back(client, app, theirs) == before
    assert await audit_ids(app, ours, theirs) == trails


async def test_the_same_calls_succeed_with_the_orgs_own_ids(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    ours = await populate(factory, client)
    routes = routes_with_ids(app)
    wrong = []

    for key, call in ROUTE_CALLS.items():
        route = routes[key]
        binding = call.own(ours) if call.own else bindings_of(route, ours)[0]
        body = call.body(ours, binding) if call.body else None
        response = await call_route(
            client, ours.owner, route, binding, body, call.queries[0], {}
        )
        if response.status_code != call.succeeds:
            wrong.append(f"{route.method} {url_of(route, binding)}: {response.text}")

    assert wrong == []


def list_filters(theirs: PopulatedOrg) -> dict[str, list[dict[str, Any]]]:
    """The query strings each REST read is tried with: every filter it takes,
    with values that match objects of both organisations and values only
    the other organisation's objects carry."""
    marker = theirs.marker
    return {
        f"{API}/sources": [{"q": marker}, {"q": "site"}],
        f"{API}/integrations": [{"source_id": theirs.pipelines[0]["id"]}],
        f"{API}/pipelines": [
            {"label": "env:prod"},
            {"label": ["env:prod", f"team:{marker}"]},
            *({"type": kind} for kind in ("web", "app", "server")),
            {"enabled": "true"},
            {"enabled": "false"},
            {"q": marker},
            {"q": "site"},
        ],
        f"{API}/integration-templates": [
            {"vendor": "webhook"},
            {"vendor": "ga4"},
            {"q": marker},
            {"q": "hooks"},
        ],
        f"{API}/users": [
            *({"role": role} for role in ("owner", "admin", "editor", "viewer")),
            *({"status": status} for status in ("active", "invited", "disabled")),
            {"q": marker},
            {"q": "invitee"},
        ],
        f"{API}/transformations": [
            {"integration_id": theirs.templates[0]["id"]},
            {"q": marker},
            {"q": "everywhere"},
        ],
        f"{API}/integration-catalog": [
            {"category": "analytics"},
            {"status": "ga"},
            {"q": "google"},
        ],
        f"{API}/audit-logs": [
            {"action": "pipeline.*"},
            {"action": "integration_template.created"},
            {"resource_type": "pipeline"},
            {"resource_id": theirs.pipelines[0]["id"]},
            {"user_id": theirs.owner.id},
            {"from": "2000-01-01T00:00:00.000Z", "to": "2999-01-01T00:00:00.000Z"},
        ],
    }


async def test_no_rest_read_of_one_org_names_anything_of_the_other(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    ours, theirs = await two_orgs(factory, client)
    filters = list_filters(theirs)
    answers: list[tuple[str, str]] = []
    failed = []

    for route in rest_routes(app):
        if route.method != "GET":
            continue
        tried = filters.get(route.path, [])
        named_filters = route.query - {"cursor", "limit"}
        missing = named_filters - {name for query in tried for name in query}
        assert not missing, f"GET {route.path}: no case tries the filters {missing}"
        for binding in bindings_of(route, ours):
            url = url_of(route, binding)
            for query in [{}, *tried]:
                for size in [{}, {"limit": 1}] if "limit" in route.query else [{}]:
                    for page in await every_page(client, ours.owner, url, query | size):
                        answers.append((f"GET {url} {query | size}", page.text))
                        if page.status_code != 200:
                            failed.append(f"GET {url} {query}: {page.text}")

    assert failed == []
    assert found(answers, theirs.traces()) == []
    assert ours.ids() <= {
        trace for _, text in answers for trace in ours.ids() if trace in text
    }


def graphql_filters(theirs: PopulatedOrg) -> dict[str, list[dict[str, Any]]]:
    """The filters each GraphQL connection is tried with, as for REST."""
    marker = theirs.marker
    return {
        "pipelines": [
            {"labels": ["env:prod"]},
            {"labels": ["env:prod", f"team:{marker}"]},
            *({"type": kind} for kind in ("WEB", "APP", "SERVER")),
            {"enabled": True},
            {"enabled": False},
            {"q": marker},
        ],
        "integrationTemplates": [
            {"vendor": "webhook"},
            {"vendor": "ga4"},
            {"q": marker},
        ],
        "users": [
            *({"role": role} for role in ("OWNER", "ADMIN", "EDITOR", "VIEWER")),
            *({"status": status} for status in ("ACTIVE", "INVITED", "DISABLED")),
            {"q": marker},
        ],
        "transformations": [
            {"integrationId": theirs.templates[0]["id"]},
            {"q": marker},
        ],
        "catalogVendors": [{"category": "analytics"}, {"status": "ga"}, {"q": "g"}],
        "auditLogs": [
            {"action": "pipeline.*"},
            {"resourceType": "pipeline"},
            {"resourceId": theirs.pipelines[0]["id"]},
            {"userId": theirs.owner.id},
            {"from": "2000-01-01T00:00:00.000Z", "to": "2999-01-01T00:00:00.000Z"},
        ],
    }


def filtered_read(schema: Schema, item: dict[str, Any]) -> str:
    """A document reading a list field through variables for each of its
    arguments (`first`, `after`, `filter`, …)."""
    arguments = item["args"]
    definitions = ", ".join(
        f"${argument['name']}: {type_text(argument['type'])}" for argument in arguments
    )
    passed = ", ".join(
        f"{argument['name']}: ${argument['name']}" for argument in arguments
    )
    return (
        f"query ({definitions}) {{ {item['name']}({passed}) "
        f"{selection_of(schema, item)} }}"
    )


async def every_graphql_page(
    client: AsyncClient,
    member: Member,
    document: str,
    field: str,
    variables: dict[str, Any],
) -> list[Response]:
    """Every page of a connection one item at a time, following `endCursor`;
    one answer for a field that is not a connection."""
    pages = []
    after = None
    for _ in range(100):
        response = await graphql(
            client, member, document, {**variables, "after": after}
        )
        pages.append(response)
        answer = (response.json().get("data") or {}).get(field)
        info = answer.get("pageInfo") if isinstance(answer, dict) else None
        if not info or not info["hasNextPage"]:
            return pages
        after = info["endCursor"]
    raise AssertionError(f"{field} answered more than 100 pages")


async def test_no_graphql_field_of_one_org_names_anything_of_the_other(
    client: AsyncClient, factory: Factory
) -> None:
    ours, theirs = await two_orgs(factory, client)
    schema = await served_schema(client, ours.owner)
    filters = graphql_filters(theirs)
    answers: list[tuple[str, str]] = []

    for read in root_reads(schema, ours):
        response = await graphql(client, ours.owner, read.document, read.variables)
        answers.append((f"graphql {read.name}", response.text))
    for item in schema.fields(schema.query):
        if not any(argument["name"] == "filter" for argument in item["args"]):
            continue
        tried = filters.get(item["name"], [])
        filter_type = named(
            next(a for a in item["args"] if a["name"] == "filter")["type"]
        )
        fields = {field["name"] for field in schema.types[filter_type]["inputFields"]}
        missing = fields - {name for value in tried for name in value}
        assert not missing, f"{item['name']}: no case tries the filters {missing}"
        document = filtered_read(schema, item)
        pages = "first" in {argument["name"] for argument in item["args"]}
        for value in [None, *tried]:
            variables = {"filter": value, **({"first": 1} if pages else {})}
            for page in await every_graphql_page(
                client, ours.owner, document, item["name"], variables
            ):
                answers.append((f"graphql {item['name']} {value}", page.text))

    assert [text for _, text in answers if '"errors"' in text] == []
    assert found(answers, theirs.traces()) == []
    assert ours.ids() <= {
        trace for _, text in answers for trace in ours.ids() if trace in text
    }


async def test_every_query_field_with_an_id_reads_another_orgs_ids_as_null(
    client: AsyncClient, factory: Factory
) -> None:
    ours, theirs = await two_orgs(factory, client)
    schema = await served_schema(client, ours.owner)
    by_id = [
        item
        for item in schema.fields(schema.query)
        if any(named(argument["type"]) == "ID" for argument in item["args"])
    ]
    uncovered = sorted({item["name"] for item in by_id} - set(ID_QUERY_FIELDS))
    wrong = []

    for item in by_id:
        kind = ID_QUERY_FIELDS.get(item["name"], "")
        inner = selection_of(schema, item)
        document = f"query ($id: ID!) {{ {item['name']}(id: $id) {inner} }}"
        for populated, expected_null in ((theirs, True), (ours, False)):
            for binding in populated.bindings():
                if set(binding) != {kind}:
                    continue
                answer = await graphql(
                    client, ours.owner, document, {"id": binding[kind]}
                )
                value = answer.json()["data"][item["name"]]
                if "errors" in answer.json() or (value is None) != expected_null:
                    wrong.append(f"{item['name']}({binding[kind]}): {answer.text}")

    assert uncovered == [], "query fields with an id and no case in ID_QUERY_FIELDS"
    assert wrong == []


BOTH_SIDES = """
query ($ourPipeline: ID!, $theirPipeline: ID!, $ourTemplate: ID!,
       $theirTemplate: ID!, $ourUser: ID!, $theirUser: ID!) {
  ourPipeline: pipeline(id: $ourPipeline) { ...pipelineGraph }
  theirPipeline: pipeline(id: $theirPipeline) { ...pipelineGraph }
  ourTemplate: integrationTemplate(id: $ourTemplate) { ...templateGraph }
  theirTemplate: integrationTemplate(id: $theirTemplate) { ...templateGraph }
  ourUser: user(id: $ourUser) { id email }
  theirUser: user(id: $theirUser) { id email }
}
fragment pipelineGraph on Pipeline {
  id name
  integrations {
    id pipeline { id }
    template { id name latestRevision { id createdBy { id } } }
    revision { id createdBy { id email } template { id } }
    latestRevision { id }
  }
}
fragment templateGraph on IntegrationTemplate {
  id name
  attachments { id pipeline { id name } revision { id } }
  revisions(first: 10) { edges { node { id createdBy { id } } } }
}
"""


async def test_one_document_asking_for_both_orgs_objects_gets_only_the_callers(
    client: AsyncClient, factory: Factory
) -> None:
    ours, theirs = await two_orgs(factory, client)
    variables = {
        "ourPipeline": ours.pipelines[0]["id"],
        "theirPipeline": theirs.pipelines[0]["id"],
        "ourTemplate": ours.templates[0]["id"],
        "theirTemplate": theirs.templates[0]["id"],
        "ourUser": ours.members[0].id,
        "theirUser": theirs.members[0].id,
    }

    response = await graphql(client, ours.owner, BOTH_SIDES, variables)

    data = response.json()["data"]
    assert "errors" not in response.json()
    assert data["theirPipeline"] is None
    assert data["theirTemplate"] is None
    assert data["theirUser"] is None
    assert data["ourPipeline"]["id"] == ours.pipelines[0]["id"]
    assert len(data["ourPipeline"]["integrations"]) == 2
    assert len(data["ourTemplate"]["attachments"]) == 2
    assert len(data["ourTemplate"]["revisions"]["edges"]) == 3
    assert data["ourUser"]["id"] == ours.members[0].id
    assert found([("answer", response.text)], theirs.traces()) == []


@dataclass(frozen=True)
class MutationCall:
    """How the tests run a mutation that names ids: which ids it takes, its
    input for the organisation whose ids fill it, and the ids of its own it
    succeeds with (by default the first that fit)."""

    ids: frozenset[str]
    input: Callable[[PopulatedOrg, Binding], dict[str, Any]]
    own: Callable[[PopulatedOrg], Binding] | None = None


PIPELINE_IDS = frozenset({"pipeline_id"})
ATTACHMENT_IDS = frozenset({"pipeline_id", "attachment_id"})
TEMPLATE_IDS = frozenset({"template_id"})
USER_IDS = frozenset({"user_id"})
TRANSFORMATION_IDS = frozenset({"transformation_id"})
# In the order the mutations succeed one after another with an
# organisation's own ids.
MUTATION_CALLS: dict[str, MutationCall] = {
    "attachIntegration": MutationCall(
        PIPELINE_IDS,
        lambda populated, binding: {
            "pipelineId": binding["pipeline_id"],
            "integrationId": populated.templates[2]["id"],
        },
    ),
    "createIntegrationRevision": MutationCall(
        TEMPLATE_IDS,
        lambda populated, binding: {
            "templateId": binding["template_id"],
            "config": populated.revisions[binding["template_id"]][-1]["config"],
        },
    ),
    "rolloutRevision": MutationCall(
        TEMPLATE_IDS,
        lambda populated, binding: {
            "templateId": binding["template_id"],
            "revisionId": populated.revisions[binding["template_id"]][0]["id"],
        },
    ),
    "createTransformation": MutationCall(
        TEMPLATE_IDS,
        lambda populated, binding: {
            "name": f"made across orgs {uuid.uuid4().hex}",
            "integrationId": binding["template_id"],
            "config": {"steps": []},
        },
    ),
    "sendTestEvents": MutationCall(
        PIPELINE_IDS,
        lambda populated, binding: {
            "pipelineId": binding["pipeline_id"],
            "event": PAGE_VIEW,
        },
    ),
    "testTransformation": MutationCall(
        TRANSFORMATION_IDS,
        lambda populated, binding: {
            "id": binding["transformation_id"],
            "event": {"a": 1},
        },
    ),
    "updateTransformation": MutationCall(
        TRANSFORMATION_IDS,
        lambda populated, binding: {
            "id": binding["transformation_id"],
            "description": "changed across orgs",
        },
    ),
    "buildCollector": MutationCall(
        PIPELINE_IDS,
        lambda populated, binding: {"pipelineId": binding["pipeline_id"]},
    ),
    "rotatePipelineKey": MutationCall(
        PIPELINE_IDS,
        lambda populated, binding: {"id": binding["pipeline_id"], "graceSeconds": 60},
    ),
    "reinviteUser": MutationCall(
        USER_IDS, lambda populated, binding: {"id": binding["user_id"]}, _invitee
    ),
    "updatePipeline": MutationCall(
        PIPELINE_IDS,
        lambda populated, binding: {
            "id": binding["pipeline_id"],
            "labels": ["env:staging"],
        },
    ),
    "updatePipelineIntegration": MutationCall(
        ATTACHMENT_IDS,
        lambda populated, binding: {
            "pipelineId": binding["pipeline_id"],
            "id": binding["attachment_id"],
            "enabled": False,
        },
    ),
    "updateIntegrationTemplate": MutationCall(
        TEMPLATE_IDS,
        lambda populated, binding: {
            "id": binding["template_id"],
            "description": "changed across orgs",
        },
    ),
    "updateUser": MutationCall(
        USER_IDS,
        lambda populated, binding: {"id": binding["user_id"], "name": "Renamed"},
        _admin,
    ),
    "deleteTransformation": MutationCall(
        TRANSFORMATION_IDS,
        lambda populated, binding: {"id": binding["transformation_id"]},
    ),
    "detachIntegration": MutationCall(
        ATTACHMENT_IDS,
        lambda populated, binding: {
            "pipelineId": binding["pipeline_id"],
            "id": binding["attachment_id"],
        },
    ),
    "deleteIntegrationTemplate": MutationCall(
        TEMPLATE_IDS,
        lambda populated, binding: {"id": binding["template_id"], "cascade": True},
    ),
    "deletePipeline": MutationCall(
        PIPELINE_IDS, lambda populated, binding: {"id": binding["pipeline_id"]}
    ),
    "deleteUser": MutationCall(
        USER_IDS, lambda populated, binding: {"id": binding["user_id"]}, _admin
    ),
}


def mutations_with_ids(schema: Schema) -> dict[str, dict[str, Any]]:
    """The mutation fields whose arguments or input carry an id."""
    chosen = {}
    for item in schema.fields(schema.mutation):
        for argument in item["args"]:
            target = named(argument["type"])
            inputs = schema.types[target].get("inputFields") or []
            if target == "ID" or any(named(field["type"]) == "ID" for field in inputs):
                chosen[item["name"]] = item
    return chosen


def mutation_document(schema: Schema, item: dict[str, Any]) -> str:
    """A document running `item` with `$input`, selecting its userErrors and,
    of every other payload field, enough to see whether it is null."""
    payload = named(item["type"])
    parts = []
    for field in schema.fields(payload):
        target = named(field["type"])
        if field["name"] == "userErrors":
            parts.append("userErrors { field code message }")
        elif schema.kind(target) in ("SCALAR", "ENUM"):
            parts.append(field["name"])
        else:
            parts.append(f"{field['name']} {{ __typename }}")
    input_type = type_text(item["args"][0]["type"])
    return (
        f"mutation ($input: {input_type}) {{ {item['name']}(input: $input) "
        f"{{ {' '.join(parts)} }} }}"
    )


def refused_as_not_found(response: Response, mutation: str) -> bool:
    """A NOT_FOUND userError and nothing else in the payload."""
    body = response.json()
    payload = (body.get("data") or {}).get(mutation)
    if "errors" in body or payload is None:
        return False
    codes = [error["code"] for error in payload["userErrors"]]
    rest = [value for key, value in payload.items() if key != "userErrors"]
    return codes == ["NOT_FOUND"] and all(value in (None, []) for value in rest)


def mutation_bindings(call: MutationCall, populated: PopulatedOrg) -> list[Binding]:
    return [binding for binding in populated.bindings() if set(binding) == call.ids]


async def test_every_mutation_with_an_id_covers_its_ids_here(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    schema = await served_schema(client, org.owner)

    uncovered = sorted(set(mutations_with_ids(schema)) - set(MUTATION_CALLS))

    assert uncovered == [], "mutations taking ids with no case in MUTATION_CALLS"


async def test_every_mutation_with_another_orgs_ids_answers_not_found_unwritten(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    ours, theirs = await two_orgs(factory, client)
    schema = await served_schema(client, ours.owner)
    served = mutations_with_ids(schema)
    before = await read_back(client, app, theirs)
    trails = await audit_ids(app, ours, theirs)
    foreign = theirs.ids()
    wrong = []

    for name, call in MUTATION_CALLS.items():
        document = mutation_document(schema, served[name])
        own = mutation_bindings(call, ours)[0]
        attempts = [
            Attempt(binding, theirs) for binding in mutation_bindings(call, theirs)
        ]
        if len(call.ids) == 2:
            attempts += [
                Attempt({**binding, kept: own[kept]}, theirs)
                for binding in mutation_bindings(call, theirs)
                for kept in binding
            ]
        for attempt in attempts:
            twin = unknown_twin(attempt.binding, foreign)
            values = call.input(attempt.body_from, attempt.binding)
            unknown_values = swapped(
                values, dict(zip(attempt.binding.values(), twin.values(), strict=True))
            )
            answer = await graphql(client, ours.owner, document, {"input": values})
            unknown = await graphql(
                client, ours.owner, document, {"input": unknown_values}
            )
            if not refused_as_not_found(answer, name):
                wrong.append(f"{name} {attempt.binding}: {answer.text}")
            elif without_ids(answer.text, attempt.binding) != without_ids(
                unknown.text, twin
            ):
                wrong.append(f"{name}: {answer.text} differs from {unknown.text}")

    assert wrong == []
    assert await read_back(client, app, theirs) == before
    assert await audit_ids(app, ours, theirs) == trails


async def test_the_same_mutations_succeed_with_the_orgs_own_ids(
    client: AsyncClient, factory: Factory
) -> None:
    ours = await populate(factory, client)
    schema = await served_schema(client, ours.owner)
    served = mutations_with_ids(schema)
    wrong = []

    for name, call in MUTATION_CALLS.items():
        binding = call.own(ours) if call.own else mutation_bindings(call, ours)[0]
        response = await graphql(
            client,
            ours.owner,
            mutation_document(schema, served[name]),
            {"input": call.input(ours, binding)},
        )
        payload = (response.json().get("data") or {}).get(name)
        if payload is None or payload["userErrors"] != []:
            wrong.append(f"{name} {binding}: {response.text}")

    assert wrong == []


async def secret_ids(app: FastAPI, populated: PopulatedOrg) -> list[str]:
    return [secret.id for secret in await stored_secrets(app, populated.org.id)]


async def test_another_orgs_ids_in_a_rest_body_are_refused_like_unknown_ones(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    ours, theirs = await two_orgs(factory, client)
    hooks, spare = ours.templates[0]["id"], ours.templates[2]["id"]
    third_pipeline = ours.pipelines[2]["id"]
    attachment = ours.attachments[0]
    their_secret = (await secret_ids(app, theirs))[0]
    latest = ours.revisions[hooks][-1]["config"]
    # (method, url, body naming one of their ids, that id)
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        (
            "POST",
            f"{API}/integrations",
            {
                "source_id": theirs.pipelines[0]["id"],
                "type": "ga4",
                "name": "Across orgs",
                "config": {"measurement_id": "G-ABC123", "api_secret": "s3cret"},
            },
            theirs.pipelines[0]["id"],
        ),
        (
            "PUT",
            f"{API}/integrations/{attachment['id']}",
            {
                "name": "Across orgs",
                "config": {**latest, "signing_secret": {"$secret": their_secret}},
            },
            their_secret,
        ),
        (
            "PATCH",
            f"{API}/integrations/{attachment['id']}",
            {"source_id": theirs.pipelines[0]["id"]},
            theirs.pipelines[0]["id"],
        ),
        (
            "POST",
            f"{API}/pipelines/{third_pipeline}/integrations",
            {"integration_id": theirs.templates[2]["id"]},
            theirs.templates[2]["id"],
        ),
        (
            "POST",
            f"{API}/pipelines/{third_pipeline}/integrations",
            {"integration_id": spare, "revision_id": theirs.every_revision[0]["id"]},
            theirs.every_revision[0]["id"],
        ),
        (
            "PATCH",
            f"{API}/pipelines/{attachment['pipeline_id']}/integrations/{attachment['id']}",
            {"revision_id": theirs.every_revision[0]["id"]},
            theirs.every_revision[0]["id"],
        ),
        (
            "POST",
            f"{API}/integration-templates/{hooks}/rollout",
            {"revision_id": theirs.every_revision[0]["id"]},
            theirs.every_revision[0]["id"],
        ),
        (
            "POST",
            f"{API}/integration-templates/{hooks}/rollout",
            {
                "revision_id": ours.revisions[hooks][0]["id"],
                "pipeline_ids": [theirs.pipelines[0]["id"]],
            },
            theirs.pipelines[0]["id"],
        ),
        (
            "POST",
            f"{API}/integration-templates/{hooks}/revisions",
            {"config": {**latest, "signing_secret": {"$secret": their_secret}}},
            their_secret,
        ),
        (
            "POST",
            f"{API}/transformations",
            {
                "name": "Across orgs",
                "integration_id": theirs.templates[0]["id"],
                "config": {"steps": []},
            },
            theirs.templates[0]["id"],
        ),
        (
            "PATCH",
            f"{API}/transformations/{ours.transformations[0]['id']}",
            {"integration_id": theirs.templates[0]["id"]},
            theirs.templates[0]["id"],
        ),
    ]
    before = (await read_back(client, app, ours), await read_back(client, app, theirs))
    trails = await audit_ids(app, ours, theirs)
    wrong = []

    for method, url, body, their_id in cases:
        unknown_id = f"{their_id.split('_')[0]}_{new_id('x')[2:]}"
        unknown_body = swapped(body, {their_id: unknown_id})
        answer = await client.request(
            method, url, json=body, headers=ours.owner.headers
        )
        unknown = await client.request(
            method, url, json=unknown_body, headers=ours.owner.headers
        )
        if answer.status_code < 400 or answer.status_code == 403:
            wrong.append(f"{method} {url} {body}: {answer.status_code} {answer.text}")
        elif answer.text.replace(their_id, "<id>") != unknown.text.replace(
            unknown_id, "<id>"
        ):
            wrong.append(f"{method} {url}: {answer.text} differs from {unknown.text}")

    assert wrong == []
    after = (await read_back(client, app, ours), await read_back(client, app, theirs))
    assert after == before
    assert await audit_ids(app, ours, theirs) == trails


def swapped(value: Any, replacements: dict[str, str]) -> Any:
    """A body or input with each id in `replacements` replaced wherever it
    stands as a value."""
    if isinstance(value, dict):
        return {key: swapped(item, replacements) for key, item in value.items()}
    if isinstance(value, list):
        return [swapped(item, replacements) for item in value]
    return replacements.get(value, value) if isinstance(value, str) else value


ATTACH = """
mutation ($input: AttachIntegrationInput!) {
  attachIntegration(input: $input) {
    pipelineIntegration { id } userErrors { field code message }
  }
}
"""
UPDATE_ATTACHMENT = """
mutation ($input: UpdatePipelineIntegrationInput!) {
  updatePipelineIntegration(input: $input) {
    pipelineIntegration { id } userErrors { field code message }
  }
}
"""
ROLLOUT = """
mutation ($input: RolloutRevisionInput!) {
  rolloutRevision(input: $input) {
    pipelineIntegrations { id } userErrors { field code message }
  }
}
"""
REVISE = """
mutation ($input: CreateIntegrationRevisionInput!) {
  createIntegrationRevision(input: $input) {
    revision { id } userErrors { field code message }
  }
}
"""


async def test_another_orgs_ids_in_a_mutation_input_are_refused_like_unknown_ones(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    ours, theirs = await two_orgs(factory, client)
    hooks, spare = ours.templates[0]["id"], ours.templates[2]["id"]
    attachment = ours.attachments[0]
    their_revision = theirs.every_revision[0]["id"]
    their_secret = (await secret_ids(app, theirs))[0]
    latest = ours.revisions[hooks][-1]["config"]
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        (
            ATTACH,
            "attachIntegration",
            {
                "pipelineId": ours.pipelines[2]["id"],
                "integrationId": theirs.templates[2]["id"],
            },
            theirs.templates[2]["id"],
        ),
        (
            ATTACH,
            "attachIntegration",
            {
                "pipelineId": ours.pipelines[2]["id"],
                "integrationId": spare,
                "revisionId": their_revision,
            },
            their_revision,
        ),
        (
            UPDATE_ATTACHMENT,
            "updatePipelineIntegration",
            {
                "pipelineId": attachment["pipeline_id"],
                "id": attachment["id"],
                "revisionId": their_revision,
            },
            their_revision,
        ),
        (
            ROLLOUT,
            "rolloutRevision",
            {"templateId": hooks, "revisionId": their_revision},
            their_revision,
        ),
        (
            ROLLOUT,
            "rolloutRevision",
            {
                "templateId": hooks,
                "revisionId": ours.revisions[hooks][0]["id"],
                "pipelineIds": [theirs.pipelines[0]["id"]],
            },
            theirs.pipelines[0]["id"],
        ),
        (
            REVISE,
            "createIntegrationRevision",
            {
                "templateId": hooks,
                "config": {**latest, "signing_secret": {"$secret": their_secret}},
            },
            their_secret,
        ),
    ]
    before = (await read_back(client, app, ours), await read_back(client, app, theirs))
    trails = await audit_ids(app, ours, theirs)
    wrong = []

    for document, mutation, values, their_id in cases:
        unknown_id = f"{their_id.split('_')[0]}_{new_id('x')[2:]}"
        answer = await graphql(client, ours.owner, document, {"input": values})
        unknown = await graphql(
            client,
            ours.owner,
            document,
            {"input": swapped(values, {their_id: unknown_id})},
        )
        payload = answer.json()["data"][mutation]
        if "errors" in answer.json() or payload["userErrors"] == []:
            wrong.append(f"{mutation} {values}: {answer.text}")
        elif answer.text.replace(their_id, "<id>") != unknown.text.replace(
            unknown_id, "<id>"
        ):
            wrong.append(f"{mutation}: {answer.text} differs from {unknown.text}")

    assert wrong == []
    after = (await read_back(client, app, ours), await read_back(client, app, theirs))
    assert after == before
    assert await audit_ids(app, ours, theirs) == trails


async def test_an_idempotency_key_used_by_another_org_replays_nothing(
    client: AsyncClient, factory: Factory
) -> None:
    ours, theirs = await factory.org(), await factory.org()
    key = {"Idempotency-Key": f"shared-{new_id('k')}"}
    body = {"name": "Same name, same key", "type": "web"}
    theirs_created = await client.post(
        f"{API}/pipelines", json=body, headers={**theirs.owner.headers, **key}
    )

    ours_created = await client.post(
        f"{API}/pipelines", json=body, headers={**ours.owner.headers, **key}
    )

    assert theirs_created.status_code == ours_created.status_code == 201
    assert "Idempotent-Replayed" not in ours_created.headers
    assert ours_created.json()["org_id"] == ours.id
    assert ours_created.json()["id"] != theirs_created.json()["id"]
    assert (
        ours_created.json()["pipeline_key_secret"]
        != theirs_created.json()["pipeline_key_secret"]
    )


RENAME_ORGANIZATION = """
mutation { updateOrganization(input: {name: "Renamed again"}) { userErrors { code } } }
"""


async def test_renaming_one_org_leaves_the_other_as_it_was(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    ours, theirs = await two_orgs(factory, client)
    before = await read_back(client, app, theirs)

    renamed = await client.patch(
        f"{API}/org", json={"name": "Renamed org"}, headers=ours.owner.headers
    )
    mutated = await graphql(
        client,
        ours.owner,
        RENAME_ORGANIZATION,
    )

    assert renamed.json()["id"] == ours.org.id
    assert mutated.json()["data"]["updateOrganization"]["userErrors"] == []
    assert await read_back(client, app, theirs) == before


# The audit log and re-encryption.

AUDIT_LOGS = f"{API}/audit-logs"
AUDIT_QUERY = """
query ($filter: AuditLogFilter, $after: String) {
  auditLogs(first: 100, after: $after, filter: $filter) {
    edges { node { id action resourceType resourceId actor { id email } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def test_the_audit_log_of_one_org_never_shows_the_others_entries(
    client: AsyncClient, factory: Factory
) -> None:
    ours, theirs = await two_orgs(factory, client)

    everything = await every_page(client, ours.owner, AUDIT_LOGS, {"limit": 100})
    by_their_pipeline = await client.get(
        AUDIT_LOGS,
        params={"resource_id": theirs.pipelines[0]["id"]},
        headers=ours.owner.headers,
    )
    by_their_owner = await client.get(
        AUDIT_LOGS, params={"user_id": theirs.owner.id}, headers=ours.owner.headers
    )

    assert [page.status_code for page in everything] == [200] * len(everything)
    entries = [entry for page in everything for entry in page.json()["data"]]
    resources = {entry["resource_id"] for entry in entries}
    assert {pipeline["id"] for pipeline in ours.pipelines} <= resources
    assert (
        found([(page.url.path, page.text) for page in everything], theirs.traces())
        == []
    )
    empty: dict[str, Any] = {"data": [], "next_cursor": None, "has_more": False}
    assert by_their_pipeline.json() == empty
    assert by_their_owner.json() == empty


async def test_graphql_audit_logs_of_one_org_never_show_the_others_entries(
    client: AsyncClient, factory: Factory
) -> None:
    ours, theirs = await two_orgs(factory, client)

    everything = await graphql(client, ours.owner, AUDIT_QUERY)
    by_their_pipeline = await graphql(
        client,
        ours.owner,
        AUDIT_QUERY,
        {"filter": {"resourceId": theirs.pipelines[0]["id"]}},
    )

    assert "errors" not in everything.json(), everything.text
    edges = everything.json()["data"]["auditLogs"]["edges"]
    resources = {edge["node"]["resourceId"] for edge in edges}
    assert {pipeline["id"] for pipeline in ours.pipelines} <= resources
    assert found([("auditLogs", everything.text)], theirs.traces()) == []
    assert by_their_pipeline.json()["data"]["auditLogs"]["edges"] == []


async def test_re_encryption_by_one_org_touches_none_of_the_others_secrets(
    app: FastAPI,
    client: AsyncClient,
    factory: Factory,
    database_url: str,
    redis_url: str | None,
) -> None:
    ours, theirs = await two_orgs(factory, client)
    theirs_before = await stored_secrets(app, theirs.org.id)
    rows_before = sorted((s.id, s.ciphertext, s.key_id) for s in theirs_before)
    old_key = theirs_before[0].key_id

    async with (
        dedicated_app(
            database_url,
            redis_url,
            encryption_key=ANOTHER_KEY,
            encryption_key_previous=TEST_ENCRYPTION_KEY,
        ) as rotated,
        client_of(rotated) as http,
    ):
        started = await http.post(
            f"{API}/crypto/re-encrypt", json={}, headers=ours.owner.headers
        )
        ours_done = await _all_rewritten(rotated, ours, old_key)
        progress = await http.get(
            f"{API}/crypto/re-encrypt", headers=ours.owner.headers
        )

    assert started.status_code in (200, 201, 202), started.text
    assert progress.status_code == 200, progress.text
    assert ours_done, f"the run never rewrote the caller's own secrets: {progress.text}"
    theirs_after = await stored_secrets(app, theirs.org.id)
    assert sorted((s.id, s.ciphertext, s.key_id) for s in theirs_after) == rows_before
    assert found([("progress", progress.text)], theirs.ids()) == []


async def _all_rewritten(app: FastAPI, populated: PopulatedOrg, old_key: str) -> bool:
    """Wait, as long as the run keeps going, until none of the
    organisation's secrets is still sealed with `old_key`."""
    for _ in range(600):
        async with app.state.services.db.read() as session:
            left = await session.scalar(
                select(Secret.id).where(
                    Secret.org_id == populated.org.id, Secret.key_id == old_key
                )
            )
        if left is None:
            return True
        await asyncio.sleep(0.05)
    return False
