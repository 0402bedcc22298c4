"""Collector builds, and the public route sites load the script from."""

from __future__ import annotations

from fastapi import APIRouter

from signal_admin.rest_compat import API_PREFIX

router = APIRouter(prefix=f"{API_PREFIX}/pipelines", tags=["Collector builds"])
# Outside /v1/admin and without a token, like the health routes.
public_router = APIRouter(prefix="/collector", tags=["Collector builds"])
