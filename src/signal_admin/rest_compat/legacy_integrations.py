"""Integrations (legacy): the first version's name for a pipeline
integration, as a view over attachments, templates and revisions."""

from __future__ import annotations

from fastapi import APIRouter

from signal_admin.rest_compat import API_PREFIX

router = APIRouter(prefix=f"{API_PREFIX}/integrations", tags=["Integrations (legacy)"])
