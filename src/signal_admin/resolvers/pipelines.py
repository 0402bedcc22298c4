"""Pipelines: one collection endpoint each (a website, an app or a server)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import structlog
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)
from sqlalchemy import Select, false, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from signal_admin.errors import AlreadyExists, NotFound, PreconditionFailed
from signal_admin.persistence.database import flush_unique
from signal_admin.persistence.ids import check_id, new_id
from signal_admin.persistence.json_filters import array_contains, name_contains
from signal_admin.persistence.models import Pipeline, PipelineIntegration
from signal_admin.persistence.pagination import Page, fetch_page
from signal_admin.persistence.text import is_storable
from signal_admin.persistence.types import utc_now
from signal_admin.resolvers import audit, pipeline_integrations, secrets
from signal_admin.resolvers.context import RequestContext, requires
from signal_admin.resolvers.validation import check_document_size, parse
from signal_admin.security.permissions import Permission
from signal_admin.security.tokens import random_base62

log = structlog.get_logger(__name__)

PIPELINE_KEY_PREFIX = "dk_"
PIPELINE_SECRET_PREFIX = "sk_"
MAX_GRACE_SECONDS = 86_400

PipelineType = Literal["web", "app", "server"]


def _lower_case(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _check_text(value: str) -> str:
    if not is_storable(value):
        raise ValueError("text may not hold NUL characters or unpaired surrogates")
    return value


def _check_document_text(value: Any) -> Any:
    """Every key and string inside a JSON document must be storable text."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            _check_text(item)
    return value


PlainText = AfterValidator(_check_text)

Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    PlainText,
]
Slug = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=200)
]
Domain = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        max_length=253,
        # A host name, optionally with a leading "*." and a port.
        pattern=(
            r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?"
            r"(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$"
        ),
    ),
    # Host names ignore case: lower-cased before the pattern, which names the
    # stored form, is checked.
    BeforeValidator(_lower_case),
]
Label = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    PlainText,
]
ParameterKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
ParameterValue = Annotated[str, StringConstraints(max_length=2000), PlainText]


def _no_secret_references(value: dict[str, Any]) -> dict[str, Any]:
    # The data plane resolves `{"$secret": id}` in configs it reads; only the
    # service writes such references, and never into a pipeline's config.
    if secrets.reference_problems(value, ""):
        raise ValueError(
            f'"{secrets.REFERENCE}" is reserved for secrets the service stores.'
        )
    return value


Document = Annotated[
    dict[str, Any],
    AfterValidator(check_document_size),
    AfterValidator(_check_document_text),
    AfterValidator(_no_secret_references),
]
ScriptFilename = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}\.js$")]
# Names the collector must not take over: JavaScript's reserved words, and the
# globals and `window` members a page relies on (assigning `location` would
# navigate away; assigning `NaN` throws).
RESERVED_GLOBALS = frozenset(
    # One string, split: a list of 140 one-word lines would hide the code.
    """
    await break case catch class const continue debugger default delete do else
    enum export extends false finally for function if implements import in
    instanceof interface let new null package private protected public return
    static super switch this throw true try typeof var void while with yield
    arguments eval undefined NaN Infinity globalThis window self top parent
    frames opener document location history navigator screen name status
    origin length closed event external crypto performance console alert
    confirm prompt fetch localStorage sessionStorage indexedDB caches
    setTimeout setInterval clearTimeout clearInterval requestAnimationFrame
    queueMicrotask XMLHttpRequest WebSocket Worker URL URLSearchParams Blob
    FormData Headers Request Response Image Option Audio JSON Math Reflect
    Proxy Intl Atomics Object Array Function String Number Boolean Symbol
    BigInt Date RegExp Error TypeError RangeError Promise Map Set WeakMap
    WeakSet ArrayBuffer DataView constructor prototype __proto__ toString
    valueOf hasOwnProperty isPrototypeOf propertyIsEnumerable toLocaleString
    __defineGetter__ __defineSetter__ __lookupGetter__ __lookupSetter__
    """.split()  # noqa: SIM905
)


def _not_reserved(name: str) -> str:
    if name in RESERVED_GLOBALS:
        raise ValueError(
            f"{name!r} is a JavaScript reserved word or a browser global a page "
            "relies on; choose another name, such as _df."
        )
    return name


GlobalVariable = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z_$][A-Za-z0-9_$]{0,63}$"),
    AfterValidator(_not_reserved),
]
DomainList = Annotated[list[Domain], Field(max_length=100)]


class JsBuilderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    script_filename: ScriptFilename = "d.js"
    global_variable: GlobalVariable = "_df"
    delivery_method: Literal["cdn", "self_hosted"] = "cdn"
    # The collector appends `/v1/batch`, so a query or fragment would end up
    # in the wrong place, and browsers refuse to send to an address with a
    # user name in it: the endpoint is a scheme, a host and a path only.
    endpoint: (
        Annotated[
            str,
            StringConstraints(
                pattern=r"^https?://[^\s/?#@]+(/[^\s?#]*)?$", max_length=2000
            ),
            PlainText,
        ]
        | None
    ) = None
    batch_size: Annotated[int, Field(ge=1, le=100)] = 10
    flush_interval_ms: Annotated[int, Field(ge=100, le=60_000)] = 1000


class IdentityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    cross_domain_enabled: bool = False
    cross_domain_domains: DomainList = []


class _PipelineFields(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    domain_allowlist: DomainList = []
    labels: Annotated[list[Label], Field(max_length=50)] = []
    rate_limit_rps: Annotated[int, Field(ge=1, le=1_000_000)] = 1000
    challenge_token_required: bool = False
    parameters: Annotated[
        dict[ParameterKey, ParameterValue], Field(max_length=100)
    ] = {}
    config: Document = {}
    js_builder_config: JsBuilderConfig = JsBuilderConfig()
    identity_config: IdentityConfig = IdentityConfig()
    enabled: bool = True


class PipelineCreate(_PipelineFields):
    name: Name
    type: PipelineType
    slug: Slug | None = None


class PipelineUpdate(BaseModel):
    """A partial change: only the fields named are replaced, each one whole."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: Name | None = None
    slug: Slug | None = None
    type: PipelineType | None = None
    domain_allowlist: DomainList | None = None
    labels: Annotated[list[Label], Field(max_length=50)] | None = None
    rate_limit_rps: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    challenge_token_required: bool | None = None
    parameters: (
        Annotated[dict[ParameterKey, ParameterValue], Field(max_length=100)] | None
    ) = None
    config: Document | None = None
    js_builder_config: JsBuilderConfig | None = None
    identity_config: IdentityConfig | None = None
    enabled: bool | None = None

    @field_validator("*")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # `None` above means "not named"; every field is required on the row,
        # so naming one with null is refused rather than failing in the database.
        if value is None:
            raise ValueError("This field cannot be null; leave it out to keep it.")
        return value


class PipelineFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: Annotated[list[str], Field(max_length=50)] = []
    type: PipelineType | None = None
    enabled: bool | None = None
    q: Annotated[str, StringConstraints(max_length=200)] | None = None


class RotateKey(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    grace_seconds: Annotated[int, Field(ge=0, le=MAX_GRACE_SECONDS)] = 0


@dataclass(frozen=True, slots=True)
class PipelineWithSecret:
    """A pipeline and its key secret, in clear this one time."""

    pipeline: Pipeline
    pipeline_key_secret: str


# The fields an audit diff and an update compare; keys and secrets are not here.
_AUDITED_FIELDS = (
    "name",
    "slug",
    "type",
    "domain_allowlist",
    "labels",
    "rate_limit_rps",
    "challenge_token_required",
    "parameters",
    "config",
    "js_builder_config",
    "identity_config",
    "enabled",
)


@requires(Permission.READ_CONFIGURATION)
async def list_pipelines(
    ctx: RequestContext,
    filters: PipelineFilter,
    *,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[Pipeline]:
    principal = ctx.authenticated()
    async with ctx.db.read() as session:
        statement = _filtered(
            select(Pipeline).where(Pipeline.org_id == principal.org_id),
            filters,
            session.get_bind().dialect.name,
        )
        return await fetch_page(
            session, statement, Pipeline.id, cursor=cursor, limit=limit
        )


@requires(Permission.READ_CONFIGURATION)
async def get_pipeline(ctx: RequestContext, pipeline_id: str) -> Pipeline:
    principal = ctx.authenticated()
    check_id(pipeline_id, "pip", "Pipeline")
    async with ctx.db.read() as session:
        pipeline = await session.scalar(
            select(Pipeline).where(
                Pipeline.id == pipeline_id, Pipeline.org_id == principal.org_id
            )
        )
    if pipeline is None:
        raise NotFound.of("Pipeline", pipeline_id)
    return pipeline


@requires(Permission.WRITE_CONFIGURATION)
async def create_pipeline(ctx: RequestContext, data: Any) -> PipelineWithSecret:
    return await store_pipeline(ctx, parse(PipelineCreate, data))


@requires(Permission.WRITE_CONFIGURATION)
async def update_pipeline(
    ctx: RequestContext,
    pipeline_id: str,
    data: Any,
    *,
    expected_version: int | None = None,
) -> Pipeline:
    change = parse(PipelineUpdate, data)
    named = change.model_dump(include=change.model_fields_set)
    return await change_pipeline(
        ctx, pipeline_id, lambda _: named, expected_version=expected_version
    )


@requires(Permission.DELETE_CONFIGURATION)
async def delete_pipeline(
    ctx: RequestContext, pipeline_id: str, *, expected_version: int | None = None
) -> None:
    await remove_pipeline(ctx, pipeline_id, expected_version=expected_version)


# The writes below are the steps of the operations above once the caller is
# authorised and the input valid, shared with the faces that show a pipeline
# under another name (the legacy sources). `audited_as` is that name: the
# audit entries' resource type and action prefix, and the word error
# messages use for the row.


async def store_pipeline(
    ctx: RequestContext, fields: PipelineCreate, *, audited_as: str = "pipeline"
) -> PipelineWithSecret:
    """Create a pipeline from validated fields, with a new key and secret."""
    principal = ctx.authenticated()
    secret = _new_secret()

    async with ctx.db.transaction() as session:
        slug = fields.slug or await _free_slug(session, principal.org_id, fields.name)
        await _check_unique(session, principal.org_id, fields.name, slug, audited_as)
        owner = secrets.Owner(principal.org_id, new_id("pip"))
        pipeline = Pipeline(
            id=owner.row_id,
            org_id=principal.org_id,
            slug=slug,
            pipeline_key=_new_key(),
            key_secret_id=await secrets.store(ctx, session, owner, secret),
            pipeline_key_secret_prefix=_secret_prefix(secret),
            **_stored_values(fields.model_dump(exclude={"slug"})),
        )
        session.add(pipeline)
        audit.record(
            session,
            ctx,
            action=f"{audited_as}.created",
            resource_type=audited_as,
            resource_id=pipeline.id,
            changes=audit.created(_audited(pipeline)),
        )
        await flush_unique(session, _name_taken(fields.name, audited_as))
    log.info("pipeline.created", pipeline_id=pipeline.id, org_id=principal.org_id)
    return PipelineWithSecret(pipeline, secret)


async def change_pipeline(
    ctx: RequestContext,
    pipeline_id: str,
    change: Callable[[Pipeline], dict[str, Any]],
    *,
    expected_version: int | None = None,
    audited_as: str = "pipeline",
) -> Pipeline:
    """Replace the fields `change` names. It is given the locked row, so a
    change made from the stored values (a merge) loses no concurrent write;
    the values it answers must already be valid."""
    principal = ctx.authenticated()

    async with ctx.db.transaction() as session:
        pipeline = await _locked(
            session, principal.org_id, pipeline_id, expected_version, audited_as
        )
        before = _audited(pipeline)
        named = change(pipeline)
        new_name = named.get("name", pipeline.name)
        new_slug = named.get("slug", pipeline.slug)
        await _check_unique(
            session,
            principal.org_id,
            new_name,
            new_slug,
            audited_as,
            exclude_id=pipeline.id,
        )
        for key, value in _stored_values(named).items():
            setattr(pipeline, key, value)
        changes = audit.diff(before, _audited(pipeline))
        if changes:
            audit.record(
                session,
                ctx,
                action=f"{audited_as}.updated",
                resource_type=audited_as,
                resource_id=pipeline.id,
                changes=changes,
            )
        await flush_unique(session, _name_taken(new_name, audited_as))
    return pipeline


async def remove_pipeline(
    ctx: RequestContext,
    pipeline_id: str,
    *,
    expected_version: int | None = None,
    audited_as: str = "pipeline",
) -> None:
    """Delete a pipeline, its attachments (each audited) and its secrets."""
    principal = ctx.authenticated()

    async with ctx.db.transaction() as session:
        pipeline = await _locked(
            session, principal.org_id, pipeline_id, expected_version, audited_as
        )
        secret_ids = [pipeline.key_secret_id, pipeline.previous_key_secret_id]
        attached = await session.scalars(
            select(PipelineIntegration).where(
                PipelineIntegration.pipeline_id == pipeline.id
            )
        )
        await pipeline_integrations.remove(session, ctx, list(attached))
        audit.record(
            session,
            ctx,
            action=f"{audited_as}.deleted",
            resource_type=audited_as,
            resource_id=pipeline.id,
            changes=audit.diff(_audited(pipeline), {}),
        )
        await session.delete(pipeline)
        await session.flush()
        await secrets.drop(session, pipeline.org_id, [pipeline.id], secret_ids)
    log.info("pipeline.deleted", pipeline_id=pipeline_id, org_id=principal.org_id)


@requires(Permission.WRITE_CONFIGURATION)
async def rotate_pipeline_key(
    ctx: RequestContext,
    pipeline_id: str,
    data: Any,
    *,
    expected_version: int | None = None,
) -> PipelineWithSecret:
    """Give the pipeline a new key and secret. The old key stops working at
    once, or after `grace_seconds` so sites can move to the new one."""
    principal = ctx.authenticated()
    grace_seconds = parse(RotateKey, data or {}).grace_seconds
    secret = _new_secret()

    async with ctx.db.transaction() as session:
        pipeline = await _locked(
            session, principal.org_id, pipeline_id, expected_version
        )
        # Stored (and flushed) before the pipeline changes, so the pipeline is
        # written once and its version grows by one.
        owner = secrets.Owner(pipeline.org_id, pipeline.id)
        new_secret_id = await secrets.store(ctx, session, owner, secret)
        retired = [pipeline.previous_key_secret_id]
        old_key, old_prefix = pipeline.pipeline_key, pipeline.pipeline_key_secret_prefix
        if grace_seconds:
            pipeline.previous_pipeline_key = old_key
            pipeline.previous_key_secret_id = pipeline.key_secret_id
            pipeline.previous_key_expires_at = _expiry(grace_seconds)
        else:
            retired.append(pipeline.key_secret_id)
            pipeline.previous_pipeline_key = None
            pipeline.previous_key_secret_id = None
            pipeline.previous_key_expires_at = None
        pipeline.pipeline_key = _new_key()
        pipeline.pipeline_key_secret_prefix = _secret_prefix(secret)
        pipeline.key_secret_id = new_secret_id
        audit.record(
            session,
            ctx,
            action="pipeline.key_rotated",
            resource_type="pipeline",
            resource_id=pipeline.id,
            changes={
                "pipeline_key": {"old": old_key, "new": pipeline.pipeline_key},
                "pipeline_key_secret_prefix": {
                    "old": old_prefix,
                    "new": pipeline.pipeline_key_secret_prefix,
                },
            },
            metadata={"grace_seconds": grace_seconds},
        )
        await session.flush()
        await secrets.drop(session, pipeline.org_id, [pipeline.id], retired)
    log.info("pipeline.key_rotated", pipeline_id=pipeline.id, grace=grace_seconds)
    return PipelineWithSecret(pipeline, secret)


def _filtered(
    statement: Select[Any], filters: PipelineFilter, dialect: str
) -> Select[Any]:
    texts = [*filters.labels, filters.q or ""]
    if not all(is_storable(text) for text in texts):
        # Nothing stored holds such text, so nothing matches; the database
        # would refuse to even compare it.
        return statement.where(false())
    for label in filters.labels:
        statement = statement.where(array_contains(Pipeline.labels, label, dialect))
    if filters.type is not None:
        statement = statement.where(Pipeline.type == filters.type)
    if filters.enabled is not None:
        statement = statement.where(Pipeline.enabled.is_(filters.enabled))
    if filters.q:
        statement = statement.where(name_contains(Pipeline.name, filters.q))
    return statement


async def _locked(
    session: AsyncSession,
    org_id: str,
    pipeline_id: str,
    expected_version: int | None,
    audited_as: str = "pipeline",
) -> Pipeline:
    noun = _noun(audited_as)
    check_id(pipeline_id, "pip", noun)
    pipeline = await session.scalar(
        select(Pipeline)
        .where(Pipeline.id == pipeline_id, Pipeline.org_id == org_id)
        .with_for_update()
    )
    if pipeline is None:
        raise NotFound.of(noun, pipeline_id)
    if expected_version is not None and expected_version != pipeline.version:
        raise PreconditionFailed(
            f"{noun} {pipeline_id} is at version {pipeline.version}, "
            f"not {expected_version}."
        )
    return pipeline


async def _check_unique(
    session: AsyncSession,
    org_id: str,
    name: str,
    slug: str,
    audited_as: str,
    *,
    exclude_id: str | None = None,
) -> None:
    statement = select(Pipeline.name, Pipeline.slug).where(
        Pipeline.org_id == org_id, (Pipeline.name == name) | (Pipeline.slug == slug)
    )
    if exclude_id is not None:
        statement = statement.where(Pipeline.id != exclude_id)
    clash = (await session.execute(statement.limit(1))).first()
    if clash is None:
        return
    if clash.name == name:
        raise _name_taken(name, audited_as)
    raise AlreadyExists(f"A {audited_as} with the slug {slug!r} already exists.")


def _name_taken(name: str, audited_as: str) -> AlreadyExists:
    return AlreadyExists(f"A {audited_as} named {name!r} already exists.")


def _noun(audited_as: str) -> str:
    """The word messages start with: `Pipeline`, or `Source` on the legacy face."""
    return audited_as.capitalize()


async def _free_slug(session: AsyncSession, org_id: str, name: str) -> str:
    base = slugify(name)
    taken = set(
        await session.scalars(
            select(Pipeline.slug).where(
                Pipeline.org_id == org_id, Pipeline.slug.like(f"{base}%")
            )
        )
    )
    if base not in taken:
        return base
    suffix = 2
    while f"{base}-{suffix}" in taken:
        suffix += 1
    return f"{base}-{suffix}"


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:180] or "pipeline"


def _stored_values(values: dict[str, Any]) -> dict[str, Any]:
    """Nested settings are stored as plain JSON documents."""
    return {
        key: value.model_dump() if isinstance(value, BaseModel) else value
        for key, value in values.items()
    }


def _audited(pipeline: Pipeline) -> dict[str, Any]:
    return {name: getattr(pipeline, name) for name in _AUDITED_FIELDS}


def _new_key() -> str:
    return PIPELINE_KEY_PREFIX + random_base62(32)


def _new_secret() -> str:
    return PIPELINE_SECRET_PREFIX + random_base62(40)


def _secret_prefix(secret: str) -> str:
    body = secret.removeprefix(PIPELINE_SECRET_PREFIX)
    return PIPELINE_SECRET_PREFIX + body[:4]


def _expiry(grace_seconds: int) -> datetime:
    return utc_now() + timedelta(seconds=grace_seconds)


@requires(Permission.READ_CONFIGURATION)
async def count_pipelines(ctx: RequestContext, filters: PipelineFilter) -> int:
    """How many of the organisation's pipelines match `filters`, on all pages."""
    principal = ctx.authenticated()
    async with ctx.db.read() as session:
        statement = _filtered(
            select(func.count())
            .select_from(Pipeline)
            .where(Pipeline.org_id == principal.org_id),
            filters,
            session.get_bind().dialect.name,
        )
        return int(await session.scalar(statement) or 0)
