"""Response shapes of the REST face, for the OpenAPI document. Routes build
their answers as plain dicts; these models describe them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from signal_admin.resolvers.pipelines import IdentityConfig, JsBuilderConfig


class PipelineOut(BaseModel):
    id: str
    org_id: str
    name: str
    slug: str
    type: str
    pipeline_key: str
    pipeline_key_secret_prefix: str
    domain_allowlist: list[str]
    labels: list[str]
    rate_limit_rps: int
    challenge_token_required: bool
    parameters: dict[str, str]
    config: dict[str, Any]
    js_builder_config: JsBuilderConfig
    identity_config: IdentityConfig
    previous_key_expires_at: str | None
    enabled: bool
    version: int
    created_at: str
    updated_at: str


class PipelineWithSecretOut(PipelineOut):
    pipeline_key_secret: str


class PipelineList(BaseModel):
    data: list[PipelineOut]
    next_cursor: str | None
    has_more: bool


class ErrorDetail(BaseModel):
    field: str
    code: str
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] | None = None


class ErrorEnvelope(BaseModel):
    error: ErrorBody


class VendorSummary(BaseModel):
    key: str
    name: str
    description: str
    category: str
    status: str
    website: str
    delivery_modes: list[str]


class VendorList(BaseModel):
    data: list[VendorSummary]
    next_cursor: str | None
    has_more: bool


class AuditLogOut(BaseModel):
    id: str
    action: str
    user_id: str | None
    user_email: str | None
    resource_type: str
    resource_id: str | None
    changes: dict[str, Any]
    metadata: dict[str, Any]
    ip_address: str | None
    user_agent: str | None
    request_id: str | None
    timestamp: str


class AuditLogList(BaseModel):
    data: list[AuditLogOut]
    next_cursor: str | None
    has_more: bool
