"""The list envelope: `{"data": [...], "next_cursor": …, "has_more": …}`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi.responses import JSONResponse

from signal_admin.persistence.pagination import Page

T = TypeVar("T")


def list_body(
    page: Page[T], item_body: Callable[[T], dict[str, Any]]
) -> dict[str, Any]:
    return {
        "data": [item_body(item) for item in page.items],
        "next_cursor": page.next_cursor,
        "has_more": page.has_more,
    }


def list_response(
    page: Page[T], item_body: Callable[[T], dict[str, Any]]
) -> JSONResponse:
    """The envelope as an answer of its own. A route that returns a response
    skips FastAPI's validation and serialisation of its result through the
    `response_model`, which then only describes the answer in the OpenAPI
    document; the body functions already build exactly that shape."""
    return JSONResponse(list_body(page, item_body))
