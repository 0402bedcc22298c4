"""ORM models, one module per table. Relationships are never lazy-loaded: every
cross-table read is an explicit query or a dataloader."""

from signal_admin.persistence.models.audit_entry import AuditEntry
from signal_admin.persistence.models.auth_session import AuthSession
from signal_admin.persistence.models.base import Base
from signal_admin.persistence.models.collector_build import CollectorBuild
from signal_admin.persistence.models.data_layer import DataLayer
from signal_admin.persistence.models.idempotency_record import IdempotencyRecord
from signal_admin.persistence.models.integration_revision import IntegrationRevision
from signal_admin.persistence.models.integration_template import IntegrationTemplate
from signal_admin.persistence.models.login_attempt import LoginAttempt
from signal_admin.persistence.models.organization import Organization
from signal_admin.persistence.models.pipeline import Pipeline
from signal_admin.persistence.models.pipeline_integration import PipelineIntegration
from signal_admin.persistence.models.re_encryption_run import ReEncryptionRun
from signal_admin.persistence.models.refresh_token import RefreshToken
from signal_admin.persistence.models.secret import Secret
from signal_admin.persistence.models.transformation import Transformation
from signal_admin.persistence.models.user import User

__all__ = [
    "AuditEntry",
    "AuthSession",
    "Base",
    "CollectorBuild",
    "DataLayer",
    "IdempotencyRecord",
    "IntegrationRevision",
    "IntegrationTemplate",
    "LoginAttempt",
    "Organization",
    "Pipeline",
    "PipelineIntegration",
    "ReEncryptionRun",
    "RefreshToken",
    "Secret",
    "Transformation",
    "User",
]
