"""Collector builds, and the public route sites load the script from."""

from __future__ import annotations

import gzip
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from signal_admin.persistence.models import CollectorBuild
from signal_admin.persistence.types import format_timestamp
from signal_admin.resolvers import collector_builds
from signal_admin.resolvers.collector_builds import BuildRequest
from signal_admin.rest_compat import API_PREFIX
from signal_admin.rest_compat.dependencies import (
    DEFAULT_LIMIT,
    Caller,
    Context,
    Cursor,
    Limit,
    permitted,
)
from signal_admin.rest_compat.idempotency import IdempotencyKey, idempotent
from signal_admin.rest_compat.lists import list_response

router = APIRouter(prefix=f"{API_PREFIX}/pipelines", tags=["Collector builds"])
# Outside /v1/admin and without a token, like the health routes.
public_router = APIRouter(prefix="/collector", tags=["Collector builds"])

JAVASCRIPT = "application/javascript; charset=utf-8"
GZIP_LEVEL = 9
# How long a browser or CDN may keep the public script before asking again.
# Short: a new build should reach sites within minutes; the ETag makes the
# question cheap.
PUBLIC_MAX_AGE_SECONDS = 300


class CollectorBuildOut(BaseModel):
    id: str
    pipeline_id: str
    version: int
    pipeline_key: str
    script_filename: str
    global_variable: str
    size_bytes: int
    gzip_size_bytes: int
    sha256: str
    integrity: str
    vendors: list[str]
    created_by: str | None
    created_at: str


class CollectorBuildList(BaseModel):
    data: list[CollectorBuildOut]
    next_cursor: str | None
    has_more: bool


def build_body(build: CollectorBuild) -> dict[str, Any]:
    return {
        "id": build.id,
        "pipeline_id": build.pipeline_id,
        "version": build.version,
        "pipeline_key": build.pipeline_key,
        "script_filename": build.script_filename,
        "global_variable": build.global_variable,
        "size_bytes": build.size_bytes,
        "gzip_size_bytes": build.gzip_size_bytes,
        "sha256": build.sha256,
        "integrity": build.integrity,
        "vendors": build.vendors,
        "created_by": build.created_by,
        "created_at": format_timestamp(build.created_at),
    }


IfNoneMatch = Annotated[
    str | None, Header(description="The ETag of a copy already held.")
]

_SCRIPT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/javascript": {}},
        "description": "The script; its ETag is its sha256.",
    },
    304: {"description": "The copy named by If-None-Match is current."},
}


def script_response(
    text: str,
    sha256: str,
    if_none_match: str | None,
    headers: dict[str, str],
    *,
    gzipped: bool = False,
    head: bool = False,
) -> Response:
    """The script with its sha256 as ETag, or 304 when the client holds it.
    `gzipped` sends it gzip-encoded (its ETag then says so: the bytes differ);
    `head` sends the headers alone."""
    tag = f'"{sha256}-gzip"' if gzipped else f'"{sha256}"'
    headers = {"X-Content-Type-Options": "nosniff", **headers, "ETag": tag}
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    if if_none_match is not None and _matches(if_none_match, tag):
        return Response(status_code=304, headers=headers)
    body = text.encode()
    if gzipped:
        body = gzip.compress(body, GZIP_LEVEL, mtime=0)
    if head:
        headers["Content-Length"] = str(len(body))
        return Response(media_type=JAVASCRIPT, headers=headers)
    return Response(body, media_type=JAVASCRIPT, headers=headers)


def _matches(if_none_match: str, tag: str) -> bool:
    held = [each.strip().removeprefix("W/") for each in if_none_match.split(",")]
    return "*" in held or tag in held


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an Accept-Encoding header takes gzip (and does not refuse it
    with `q=0`)."""
    for coding in (accept_encoding or "").split(","):
        name, _, parameters = coding.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            weight = parameters.strip().lower().replace(" ", "")
            return weight not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


@router.post(
    "/{pipeline_id}/collector/builds",
    status_code=201,
    response_model=CollectorBuildOut,
    dependencies=[permitted(collector_builds.build_collector)],
)
async def build_collector(
    ctx: Context,
    request: Request,
    pipeline_id: str,
    key: IdempotencyKey = None,
    body: Annotated[BuildRequest | None, Body()] = None,
) -> Response:
    """Build the pipeline's JavaScript collector from its settings as they are."""

    async def build() -> Response:
        made = await collector_builds.build_collector(ctx, pipeline_id)
        return JSONResponse(build_body(made), status_code=201)

    return await idempotent(ctx, request, key, build)


@router.get(
    "/{pipeline_id}/collector/builds",
    response_model=CollectorBuildList,
    dependencies=[permitted(collector_builds.list_builds)],
)
async def list_builds(
    ctx: Context, pipeline_id: str, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
) -> JSONResponse:
    """The pipeline's builds, newest first."""
    page = await collector_builds.list_builds(
        ctx, pipeline_id, cursor=cursor, limit=limit
    )
    return list_response(page, build_body)


@router.get(
    "/{pipeline_id}/collector/builds/{build_id}",
    response_model=CollectorBuildOut,
    dependencies=[permitted(collector_builds.get_build)],
)
async def get_build(ctx: Context, pipeline_id: str, build_id: str) -> JSONResponse:
    """One build."""
    return JSONResponse(
        build_body(await collector_builds.get_build(ctx, pipeline_id, build_id))
    )


@router.get(
    "/{pipeline_id}/collector/builds/{build_id}/script",
    response_class=Response,
    responses=_SCRIPT_RESPONSES,
    dependencies=[permitted(collector_builds.get_build)],
)
async def build_script(
    ctx: Context,
    pipeline_id: str,
    build_id: str,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """The built script itself."""
    build = await collector_builds.get_build(ctx, pipeline_id, build_id)
    return script_response(
        build.script, build.sha256, if_none_match, {"Cache-Control": "private"}
    )


@public_router.get(
    "/{pipeline_key}/{script_filename}",
    response_class=Response,
    responses=_SCRIPT_RESPONSES,
)
@public_router.head(
    "/{pipeline_key}/{script_filename}",
    response_class=Response,
    include_in_schema=False,
)
async def published_script(
    ctx: Caller,
    request: Request,
    pipeline_key: str,
    script_filename: str,
    if_none_match: IfNoneMatch = None,
    accept_encoding: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """The newest build that carries this key, for sites: no token, the
    pipeline key in the path. Any origin may load it, with or without an
    `integrity` check; it is sent gzipped to clients that take gzip."""
    script = await collector_builds.published_script(ctx, pipeline_key, script_filename)
    return script_response(
        script.text,
        script.sha256,
        if_none_match,
        {
            "Cache-Control": f"public, max-age={PUBLIC_MAX_AGE_SECONDS}",
            "Vary": "Accept-Encoding",
            # A page checks `integrity` only on a CORS load of the script.
            "Access-Control-Allow-Origin": "*",
            "Cross-Origin-Resource-Policy": "cross-origin",
        },
        gzipped=accepts_gzip(accept_encoding),
        head=request.method == "HEAD",
    )
