"""An organisation with a full set of objects, built through the REST face,
and ways to read all of it back through both faces.

`populate` makes members of every role and an invitee, pipelines with labels
and parameters, a hand-made template and a catalog one with several revisions
and secrets, and attachments pinning them. Tests of the boundary between
organisations build two and search one's answers for everything that names
the other. The readers walk the app's own routes and the schema's own types,
so a route or a field added later is read as well, or named as one nobody
reads.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from httpx import AsyncClient, Response

from tests.factories import Factory, Member, Org
from tests.helpers import audit_entries, stored_secrets

API = "/v1/admin"
GRAPHQL = f"{API}/graphql"
# Routes under the prefix that serve no organisation's data.
NOT_DATA_ROUTES = frozenset({GRAPHQL, f"{API}/openapi.json", f"{API}/docs"})
# Path parameters that name no organisation's rows: the catalog ships with
# the service and is the same for everyone.
SHARED_PATH_PARAMETERS = frozenset({"vendor_key"})
# GraphQL query fields that read one object by id, and the REST path
# parameter that names the same kind of object.
ID_QUERY_FIELDS = {
    "pipeline": "pipeline_id",
    "integrationTemplate": "template_id",
    "transformation": "transformation_id",
    "user": "user_id",
}
SHARED_QUERY_FIELDS = frozenset({"catalogVendor"})
# The prefix of each kind of id a path parameter names.
ID_PREFIXES = {
    "pipeline_id": "pip",
    "attachment_id": "pi",
    "template_id": "tmpl",
    "revision_id": "rev",
    "user_id": "usr",
    "transformation_id": "tr",
    "build_id": "bld",
}
PAGE_SIZE = 5
# How many items a list is counted as when nothing gives its size, and the
# most items any list of a generated selection may reach (see `selection`).
UNSIZED_LIST = 10
MAX_ITEMS = 100
MAX_PAGES = 100
MAPPING = {
    "envelope": {"events_path": None, "event_name_field": "event"},
    "defaults": {"action": "pass"},
}
Body = dict[str, Any]


@dataclass
class PopulatedOrg:
    """The objects of one organisation, as its owner read them when made."""

    org: Org
    marker: str
    members: list[Member]
    invitee: Body
    pipelines: list[Body] = field(default_factory=list)
    templates: list[Body] = field(default_factory=list)
    revisions: dict[str, list[Body]] = field(default_factory=dict)
    attachments: list[Body] = field(default_factory=list)
    transformations: list[Body] = field(default_factory=list)
    builds: list[Body] = field(default_factory=list)

    @property
    def owner(self) -> Member:
        return self.org.owner

    @property
    def user_ids(self) -> list[str]:
        return [
            self.owner.id,
            *(member.id for member in self.members),
            self.invitee["id"],
        ]

    @property
    def emails(self) -> list[str]:
        return [
            self.owner.email,
            *(member.email for member in self.members),
            self.invitee["email"],
        ]

    @property
    def every_revision(self) -> list[Body]:
        return [revision for kept in self.revisions.values() for revision in kept]

    def bindings(self) -> list[dict[str, str]]:
        """Every consistent filling of a REST path's id parameters with this
        organisation's ids: each pipeline, each attachment under its
        pipeline, each template, each revision under its template, each
        user, each transformation."""
        pipelines = [{"pipeline_id": pipeline["id"]} for pipeline in self.pipelines]
        attachments = [
            {"pipeline_id": item["pipeline_id"], "attachment_id": item["id"]}
            for item in self.attachments
        ]
        # The legacy integrations' routes name an attachment by its id alone.
        legacy_integrations = [
            {"attachment_id": item["id"]} for item in self.attachments
        ]
        templates = [{"template_id": template["id"]} for template in self.templates]
        revisions = [
            {"template_id": item["integration_id"], "revision_id": item["id"]}
            for item in self.every_revision
        ]
        users = [{"user_id": user_id} for user_id in self.user_ids]
        transformations = [
            {"transformation_id": item["id"]} for item in self.transformations
        ]
        builds = [
            {"pipeline_id": item["pipeline_id"], "build_id": item["id"]}
            for item in self.builds
        ]
        return [
            *pipelines,
            *attachments,
            *legacy_integrations,
            *templates,
            *revisions,
            *users,
            *transformations,
            *builds,
        ]

    def ids(self) -> set[str]:
        """Every id this organisation's objects carry."""
        return {
            self.org.id,
            *self.user_ids,
            *(pipeline["id"] for pipeline in self.pipelines),
            *(template["id"] for template in self.templates),
            *(revision["id"] for revision in self.every_revision),
            *(attachment["id"] for attachment in self.attachments),
            *(item["id"] for item in self.transformations),
            *(item["id"] for item in self.builds),
        }

    def traces(self) -> set[str]:
        """Everything that would betray this organisation in another's
        answer: its ids, pipeline keys, emails and the marker in every name."""
        return {
            *self.ids(),
            *(pipeline["pipeline_key"] for pipeline in self.pipelines),
            *self.emails,
            self.marker,
        }


async def populate(factory: Factory, client: AsyncClient) -> PopulatedOrg:
    """A signed-in owner, an admin, an editor, a viewer and an invitee; three
    pipelines; a hand-made template with three revisions, a GA4 template with
    two and a spare one attached nowhere; three attachments, one of them
    pinned behind the latest revision; a transformation for every integration
    and one for the hand-made template; a data layer of its own; a collector
    build of the first two pipelines."""
    marker = f"mark{uuid.uuid4().hex[:10]}"
    org = await factory.org()
    members = [
        await factory.member(org, role, sign_in=False)
        for role in ("admin", "editor", "viewer")
    ]
    invitee = await factory.invite(org.owner, "viewer", name=f"{marker} invitee")
    populated = PopulatedOrg(org, marker, members, invitee)

    for number, (kind, enabled) in enumerate(
        [("web", True), ("app", True), ("server", False)]
    ):
        populated.pipelines.append(
            await factory.pipeline(
                org.owner,
                name=f"{marker} site {number}",
                type=kind,
                enabled=enabled,
                labels=["env:prod", f"team:{marker}"],
                parameters={"host": f"{marker}.example", "region": "eu"},
            )
        )
    hooks = await _create(
        client,
        org.owner,
        "/integration-templates",
        {
            "name": f"{marker} hooks",
            "vendor": "webhook",
            "secret_fields": ["signing_secret"],
            "config": {
                "url": "https://{{pipeline_param.host}}/hook",
                "signing_secret": f"hook-secret-{marker}",
                **MAPPING,
            },
        },
    )
    ga4 = await _create(
        client,
        org.owner,
        "/integration-catalog/ga4/install",
        {
            "name": f"{marker} GA4",
            "config": {
                "measurement_id": "G-ABC123",
                "api_secret": f"ga4-secret-{marker}",
            },
        },
    )
    spare = await _create(
        client,
        org.owner,
        "/integration-templates",
        {"name": f"{marker} spare", "vendor": "webhook", "config": MAPPING},
    )
    for created in (hooks, ga4, spare):
        populated.templates.append(created["template"])
        populated.revisions[created["template"]["id"]] = [created["revision"]]
    for summary in ("second", "third"):
        await revise(client, populated, hooks["template"]["id"], summary)
    await revise(client, populated, ga4["template"]["id"], "second")

    first, second, _ = populated.pipelines
    hooks_id, ga4_id = hooks["template"]["id"], ga4["template"]["id"]
    for pipeline, template_id, revision in [
        (first, hooks_id, populated.revisions[hooks_id][0]),
        (first, ga4_id, None),
        (second, hooks_id, None),
    ]:
        body = {"integration_id": template_id, "consent_categories": ["marketing"]}
        if revision is not None:
            body["revision_id"] = revision["id"]
        populated.attachments.append(
            await _create(
                client, org.owner, f"/pipelines/{pipeline['id']}/integrations", body
            )
        )
    for name, template_id in [("everywhere", None), ("hooks only", hooks_id)]:
        populated.transformations.append(
            await _create(
                client,
                org.owner,
                "/transformations",
                {
                    "name": f"{marker} {name}",
                    "integration_id": template_id,
                    "config": {
                        "steps": [{"type": "enrich", "fields": {"team": marker}}]
                    },
                },
            )
        )
    response = await client.put(
        f"{API}/data-layer",
        json={
            "config": {
                "pii_rules": {"hash_fields": [f"traits.{marker}"]},
                "routing_rules": [
                    {"condition": f"event.event = '{marker}'", "action": "drop"}
                ],
            }
        },
        headers=org.owner.headers,
    )
    assert response.status_code == 200, response.text
    for pipeline in (first, second):
        populated.builds.append(
            await _create(
                client, org.owner, f"/pipelines/{pipeline['id']}/collector/builds", {}
            )
        )
    populated.templates = [
        await _read(client, org.owner, f"/integration-templates/{template['id']}")
        for template in populated.templates
    ]
    return populated


async def revise(
    client: AsyncClient, populated: PopulatedOrg, template_id: str, summary: str
) -> Body:
    """The template's next revision: the latest config again, every secret
    kept with `"***"`."""
    latest = populated.revisions[template_id][-1]
    revision = await _create(
        client,
        populated.owner,
        f"/integration-templates/{template_id}/revisions",
        {"config": latest["config"], "change_summary": summary},
    )
    populated.revisions[template_id].append(revision)
    return revision


async def _create(client: AsyncClient, member: Member, path: str, body: Body) -> Body:
    response = await client.post(f"{API}{path}", json=body, headers=member.headers)
    assert response.status_code == 201, response.text
    created: Body = response.json()
    return created


async def _read(client: AsyncClient, member: Member, path: str) -> Body:
    response = await client.get(f"{API}{path}", headers=member.headers)
    assert response.status_code == 200, response.text
    read: Body = response.json()
    return read


# REST routes.


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    parameters: frozenset[str]
    query: frozenset[str]
    headers: frozenset[str]

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path


def rest_routes(app: FastAPI) -> list[Route]:
    """Every method of every REST route under the prefix that serves data."""
    routes: list[Route] = []
    for context in iter_route_contexts(app.routes):
        original = context.original_route
        path = context.path or ""
        if not isinstance(original, APIRoute) or not path.startswith(API):
            continue
        if path in NOT_DATA_ROUTES:
            continue
        query = frozenset(_names(original.dependant, "query_params"))
        headers = frozenset(
            name.lower() for name in _names(original.dependant, "header_params")
        )
        parameters = frozenset(re.findall(r"{(\w+)}", path))
        routes.extend(
            Route(method, path, parameters, query, headers)
            for method in sorted(context.methods or ())
        )
    return routes


def _names(dependant: Dependant, kind: str) -> Iterator[str]:
    """The names of a route's parameters of one kind, its dependencies'
    included."""
    for parameter in getattr(dependant, kind):
        yield str(parameter.alias)
    for dependency in dependant.dependencies:
        yield from _names(dependency, kind)


def bindings_of(route: Route, populated: PopulatedOrg) -> list[dict[str, str]]:
    """Each filling of `route`'s path ids with `populated`'s objects; a route
    whose ids no organisation's objects can fill is a failure naming it."""
    if route.parameters and route.parameters <= SHARED_PATH_PARAMETERS:
        return []
    bindings = [
        binding for binding in populated.bindings() if set(binding) == route.parameters
    ]
    assert bindings or not route.parameters, (
        f"{route.method} {route.path}: no objects fill its path; teach "
        "tests/org_fixtures.py its kind of id"
    )
    return bindings or [{}]


def url_of(route: Route, binding: dict[str, str]) -> str:
    return route.path.format(**binding)


async def every_page(
    client: AsyncClient,
    member: Member,
    url: str,
    params: dict[str, Any] | None = None,
) -> list[Response]:
    """Every page of a list, following `next_cursor`; one answer for a route
    that is not a list."""
    query = dict(params or {})
    pages = []
    for _ in range(MAX_PAGES):
        response = await client.get(url, params=query, headers=member.headers)
        pages.append(response)
        cursor = _next_cursor(response)
        if cursor is None:
            return pages
        query["cursor"] = cursor
    raise AssertionError(f"{url} {params} answered more than {MAX_PAGES} pages")


def _next_cursor(response: Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    cursor = body.get("next_cursor") if isinstance(body, dict) else None
    return cursor if isinstance(cursor, str) else None


# GraphQL.

TYPE_REF = "kind name ofType { kind name ofType { kind name ofType { kind name } } }"
INTROSPECTION = f"""
{{ __schema {{
  queryType {{ name }}
  mutationType {{ name }}
  types {{
    kind name
    fields {{ name args {{ name defaultValue type {{ {TYPE_REF} }} }}
      type {{ {TYPE_REF} }} }}
    inputFields {{ name type {{ {TYPE_REF} }} }}
  }}
}} }}
"""


@dataclass(frozen=True)
class Schema:
    """The served schema as introspection answers it: its types by name and
    the names of its root types."""

    types: dict[str, dict[str, Any]]
    query: str
    mutation: str

    def fields(self, type_name: str) -> list[dict[str, Any]]:
        fields: list[dict[str, Any]] = self.types[type_name]["fields"]
        return fields

    def kind(self, type_name: str) -> str:
        kind: str = self.types[type_name]["kind"]
        return kind


async def graphql(
    client: AsyncClient,
    member: Member,
    query: str,
    variables: dict[str, Any] | None = None,
) -> Response:
    return await client.post(
        GRAPHQL, json={"query": query, "variables": variables}, headers=member.headers
    )


async def served_schema(client: AsyncClient, member: Member) -> Schema:
    response = await graphql(client, member, INTROSPECTION)
    assert "errors" not in response.json(), response.text
    answer = response.json()["data"]["__schema"]
    return Schema(
        types={item["name"]: item for item in answer["types"]},
        query=answer["queryType"]["name"],
        mutation=answer["mutationType"]["name"],
    )


def named(type_ref: dict[str, Any]) -> str:
    """The type a field or argument holds, without its lists and non-nulls."""
    while type_ref["name"] is None:
        type_ref = type_ref["ofType"]
    name: str = type_ref["name"]
    return name


def type_text(type_ref: dict[str, Any]) -> str:
    """A type reference as a variable definition writes it: `[ID!]!`."""
    if type_ref["kind"] == "NON_NULL":
        return f"{type_text(type_ref['ofType'])}!"
    if type_ref["kind"] == "LIST":
        return f"[{type_text(type_ref['ofType'])}]"
    name: str = type_ref["name"]
    return name


def required_arguments(item: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        argument
        for argument in item["args"]
        if argument["type"]["kind"] == "NON_NULL" and argument["defaultValue"] is None
    ]


def selection(
    schema: Schema,
    type_name: str,
    seen: frozenset[str] = frozenset(),
    weight: int = 1,
    page: int | None = None,
) -> str:
    """Every field of `type_name` and, through every object field, of the
    objects it reaches, each type at most once along a path. Lists that take
    `first` ask for a short page, and lists nested so deep that their items
    would pass `MAX_ITEMS` are left out, to stay within the node limit.
    `weight` is how many times the lists around it repeat this selection and
    `page` the page size of the connection `type_name` is, if any."""
    seen = seen | {type_name}
    parts = []
    for item in schema.fields(type_name):
        if required_arguments(item):
            continue
        target = named(item["type"])
        if schema.kind(target) in ("SCALAR", "ENUM"):
            parts.append(item["name"])
            continue
        if schema.kind(target) != "OBJECT" or target in seen:
            continue
        pages = any(argument["name"] == "first" for argument in item["args"])
        head = f"{item['name']}(first: {PAGE_SIZE})" if pages else item["name"]
        if _is_list(item["type"]):
            items = weight * (page or (PAGE_SIZE if pages else UNSIZED_LIST))
            if items > MAX_ITEMS:
                continue
            inner = selection(schema, target, seen, items)
        else:
            inner = selection(
                schema, target, seen, weight, PAGE_SIZE if pages else None
            )
        parts.append(f"{head} {{ {inner} }}")
    return " ".join(parts)


def _is_list(type_ref: dict[str, Any]) -> bool:
    if type_ref["kind"] == "NON_NULL":
        return _is_list(type_ref["ofType"])
    return bool(type_ref["kind"] == "LIST")


def selection_of(schema: Schema, item: dict[str, Any]) -> str:
    """The braces a root field's answer needs: empty for a scalar."""
    target = named(item["type"])
    if schema.kind(target) in ("SCALAR", "ENUM"):
        return ""
    if _is_list(item["type"]):
        return f"{{ {selection(schema, target, weight=UNSIZED_LIST)} }}"
    pages = any(argument["name"] == "first" for argument in item["args"])
    page = PAGE_SIZE if pages else None
    return f"{{ {selection(schema, target, page=page)} }}"


@dataclass(frozen=True)
class Read:
    """One GraphQL document that reads a root field, with its variables."""

    name: str
    document: str
    variables: dict[str, Any]


def root_reads(schema: Schema, populated: PopulatedOrg) -> list[Read]:
    """A document for every query field: lists and singletons whole, and
    each field that reads one object by id once for each of `populated`'s
    objects of that kind. A field with a required argument this module
    cannot fill is a failure naming it."""
    reads = []
    for item in schema.fields(schema.query):
        name, inner = item["name"], selection_of(schema, item)
        if name in SHARED_QUERY_FIELDS:
            continue
        if not required_arguments(item):
            pages = any(argument["name"] == "first" for argument in item["args"])
            head = f"{name}(first: {PAGE_SIZE})" if pages else name
            reads.append(Read(name, f"{{ {head} {inner} }}", {}))
            continue
        assert name in ID_QUERY_FIELDS, (
            f"query field {name} takes arguments tests/org_fixtures.py cannot fill"
        )
        document = f"query ($id: ID!) {{ {name}(id: $id) {inner} }}"
        for binding in populated.bindings():
            if set(binding) == {ID_QUERY_FIELDS[name]}:
                object_id = binding[ID_QUERY_FIELDS[name]]
                reads.append(Read(f"{name}({object_id})", document, {"id": object_id}))
    return reads


# Reading everything.


async def read_back(
    client: AsyncClient, app: FastAPI, populated: PopulatedOrg
) -> dict[str, Any]:
    """What `populated`'s owner reads of the organisation, every page of
    every REST read and every GraphQL query field, with its stored secrets
    and audit trail, to compare before and after others act."""
    owner = populated.owner
    answers: dict[str, Any] = {}
    for route in rest_routes(app):
        if route.method != "GET":
            continue
        for binding in bindings_of(route, populated):
            url = url_of(route, binding)
            pages = await every_page(client, owner, url)
            for number, page in enumerate(pages):
                answers[f"GET {url} page {number}"] = (
                    page.status_code,
                    page.headers.get("etag"),
                    page.content,
                )
    for read in root_reads(await served_schema(client, owner), populated):
        response = await graphql(client, owner, read.document, read.variables)
        answers[f"graphql {read.name}"] = response.content
    answers["stored secrets"] = sorted(
        (secret.id, secret.owner_id, secret.ciphertext, secret.key_id)
        for secret in await stored_secrets(app, populated.org.id)
    )
    answers["audit trail"] = [
        (entry.id, entry.action, entry.resource_id)
        for entry in await audit_entries(app, populated.org.id)
    ]
    return answers


def found(texts: Iterable[tuple[str, str]], traces: Iterable[str]) -> list[str]:
    """`where: trace` for each trace found in each `(where, text)`."""
    return [
        f"{where}: {trace}"
        for where, text in texts
        for trace in sorted(traces)
        if trace in text
    ]
