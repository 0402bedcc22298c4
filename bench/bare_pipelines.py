"""The reference for `GET /v1/admin/pipelines?limit=50`: a bare Starlette
endpoint on asyncpg that runs the same SELECT as the service and answers the
same JSON, with nothing else (no authentication, rate limit, validation, logs
or metrics). The organisation comes from the `BENCH_ORG_ID` environment
variable.

    BENCH_DATABASE_DSN=postgresql://postgres@127.0.0.1:5432/signal_bench \\
    BENCH_ORG_ID=org_… uvicorn bench.bare_pipelines:app --port 8090
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

COLUMNS = (
    "id, org_id, name, slug, type, pipeline_key, key_secret_id, "
    "pipeline_key_secret_prefix, previous_pipeline_key, previous_key_secret_id, "
    "previous_key_expires_at, domain_allowlist, labels, rate_limit_rps, "
    "challenge_token_required, parameters, config, js_builder_config, "
    "identity_config, enabled, version, created_at, updated_at"
)
PAGE = f"SELECT {COLUMNS} FROM pipelines WHERE org_id = $1 ORDER BY id LIMIT $2"


def timestamp(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def cursor_after(last_id: str) -> str:
    raw = json.dumps({"id": last_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def item(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "org_id": row["org_id"],
        "name": row["name"],
        "slug": row["slug"],
        "type": row["type"],
        "pipeline_key": row["pipeline_key"],
        "pipeline_key_secret_prefix": row["pipeline_key_secret_prefix"],
        "domain_allowlist": row["domain_allowlist"],
        "labels": row["labels"],
        "rate_limit_rps": row["rate_limit_rps"],
        "challenge_token_required": row["challenge_token_required"],
        "parameters": row["parameters"],
        "config": row["config"],
        "js_builder_config": row["js_builder_config"],
        "identity_config": row["identity_config"],
        "previous_key_expires_at": timestamp(row["previous_key_expires_at"]),
        "enabled": row["enabled"],
        "version": row["version"],
        "created_at": timestamp(row["created_at"]),
        "updated_at": timestamp(row["updated_at"]),
    }


async def _decode_json(connection: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await connection.set_type_codec(
            name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(
        os.environ["BENCH_DATABASE_DSN"], min_size=10, max_size=10, init=_decode_json
    )
    app.state.org_id = os.environ["BENCH_ORG_ID"]
    yield
    await app.state.pool.close()


async def pipelines(request: Request) -> JSONResponse:
    limit = int(request.query_params.get("limit", "50"))
    rows = await request.app.state.pool.fetch(PAGE, request.app.state.org_id, limit + 1)
    has_more = len(rows) > limit
    rows = rows[:limit]
    return JSONResponse(
        {
            "data": [item(row) for row in rows],
            "next_cursor": cursor_after(rows[-1]["id"]) if has_more else None,
            "has_more": has_more,
        }
    )


app = Starlette(routes=[Route("/v1/admin/pipelines", pipelines)], lifespan=lifespan)
