"""The organisation's data layer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from signal_admin.persistence.types import format_timestamp
from signal_admin.resolvers import data_layer
from signal_admin.resolvers.data_layer import DataLayerReplace, DataLayerView
from signal_admin.resolvers.validation import Unparsed
from signal_admin.rest_compat import API_PREFIX
from signal_admin.rest_compat.dependencies import Context, IfMatch, etag, permitted

router = APIRouter(prefix=f"{API_PREFIX}/data-layer", tags=["Data layer"])


def data_layer_body(view: DataLayerView) -> dict[str, Any]:
    return {
        "org_id": view.org_id,
        "config": view.config,
        "version": view.version,
        "updated_at": (format_timestamp(view.updated_at) if view.updated_at else None),
        "updated_by": view.updated_by,
    }


def _one(view: DataLayerView) -> JSONResponse:
    return JSONResponse(data_layer_body(view), headers={"ETag": etag(view.version)})


@router.get("", dependencies=[permitted(data_layer.get_data_layer)])
async def get_data_layer(ctx: Context) -> JSONResponse:
    """The data layer; the defaults, at version 0, until it is first set."""
    return _one(await data_layer.get_data_layer(ctx))


@router.put("", dependencies=[permitted(data_layer.replace_data_layer)])
async def replace_data_layer(
    ctx: Context, body: Annotated[DataLayerReplace, Unparsed], version: IfMatch
) -> JSONResponse:
    """Replace the whole data layer; sections left out take their defaults."""
    return _one(
        await data_layer.replace_data_layer(ctx, body, expected_version=version)
    )
