"""Sources (legacy): the first version's name for a pipeline, as a view over
the same rows."""

from __future__ import annotations

from fastapi import APIRouter

from signal_admin.rest_compat import API_PREFIX

router = APIRouter(prefix=f"{API_PREFIX}/sources", tags=["Sources (legacy)"])
