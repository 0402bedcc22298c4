"""Settings, read from environment variables (and a `.env` file in development).

Every interval the service enforces is a setting whose default is the documented
value, so tests can shrink it and check the mechanism instead of waiting.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

JWT_SECRET_MIN_BYTES = 32
ENCRYPTION_KEY_HEX_LENGTH = 64


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class ConfigurationError(Exception):
    """The settings cannot start the service; the message says what to set."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = "sqlite+aiosqlite:///./signal-admin.db"
    redis_url: str | None = None
    # Connections one process opens to Redis at most; more callers at once
    # wait (up to 2 s) for one to come free rather than fail.
    redis_max_connections: int = Field(default=50, ge=2, le=1000)
    jwt_secret: str | None = None
    encryption_key: str | None = None
    encryption_key_previous: str | None = None
    signal_env: Environment = Environment.DEVELOPMENT
    signal_data_dir: Path = Path("./.signal-admin")
    host: str = "127.0.0.1"
    port: int = 8084
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    log_level: str = "info"
    log_format: str | None = None

    # Tokens and sessions.
    access_token_ttl: int = 900
    refresh_token_ttl: int = 604_800
    refresh_reuse_grace_seconds: float = 10.0
    jwt_leeway_seconds: int = 5
    invite_token_ttl: int = 7 * 86_400

    # Login protection.
    login_attempts_per_minute: int = 10
    lockout_threshold: int = 5
    lockout_seconds: int = 900

    # Rate limits.
    rate_limit_per_minute: int = 100
    rate_limit_window_seconds: float = 60.0

    # Requests.
    max_body_bytes: int = 1024 * 1024
    idempotency_ttl_seconds: int = 86_400
    idempotency_lock_seconds: int = 60
    shutdown_grace_seconds: float = 10.0

    # Retention of the audit trail: entries older than this many days are
    # purged, at start-up and then every AUDIT_PURGE_INTERVAL seconds.
    audit_retention_days: int = Field(default=90, ge=1)
    audit_purge_interval: float = Field(default=86_400.0, gt=0)

    # Re-encryption under a new ENCRYPTION_KEY: values rewritten per batch (one
    # transaction each), an optional pause between batches to spread the load,
    # how long a run may go without a heartbeat before another process takes
    # it over, and how often each process looks for such runs (0: never).
    re_encryption_batch_size: int = Field(default=500, ge=1, le=10_000)
    re_encryption_batch_pause_seconds: float = Field(default=0.0, ge=0)
    re_encryption_stale_seconds: float = Field(default=60.0, gt=0)
    re_encryption_watch_seconds: float = Field(default=30.0, ge=0)

    # Dry runs of the processing steps (transformation tests, test events):
    # the time budget of one request, the limits of one custom JavaScript
    # call, and how many worker threads run them.
    dry_run_budget_seconds: float = Field(default=5.0, gt=0)
    js_time_limit_ms: float = Field(default=50.0, gt=0)
    js_heap_limit_bytes: int = Field(default=8 * 1024 * 1024, ge=1024 * 1024)
    processing_threads: int = Field(default=4, ge=1, le=64)

    # Live sockets (the REST stream and GraphQL subscriptions): how long a
    # REST socket may wait for its auth message, the heartbeat, how often
    # open sockets' sessions are checked for revocation, sockets per user,
    # each listener's queue, GraphQL's connection_init wait and its
    # subscriptions per connection, and the legacy `graphql-ws` protocol.
    live_auth_timeout_seconds: float = Field(default=5.0, gt=0)
    live_heartbeat_seconds: float = Field(default=15.0, gt=0)
    live_session_check_seconds: float = Field(default=10.0, gt=0, le=30)
    live_sockets_per_user: int = Field(default=10, ge=1)
    live_queue_size: int = Field(default=1000, ge=1)
    graphql_ws_init_timeout_seconds: float = Field(default=10.0, gt=0)
    graphql_ws_max_subscriptions: int = Field(default=20, ge=1)
    graphql_ws_legacy_protocol: bool = False

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("jwt_secret")
    @classmethod
    def _check_jwt_secret(cls, value: str | None) -> str | None:
        if value is not None and len(value.encode()) < JWT_SECRET_MIN_BYTES:
            raise ValueError(
                f"JWT_SECRET must be at least {JWT_SECRET_MIN_BYTES} bytes"
            )
        return value

    @field_validator("encryption_key", "encryption_key_previous")
    @classmethod
    def _check_encryption_key(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raw = b""
        if len(value) != ENCRYPTION_KEY_HEX_LENGTH or len(raw) != 32:
            raise ValueError("encryption keys are 64 hexadecimal characters")
        return value.lower()

    @model_validator(mode="after")
    def _default_log_format(self) -> Settings:
        if self.log_format is None:
            production = self.signal_env is Environment.PRODUCTION
            self.log_format = "json" if production else "console"
        return self

    @property
    def is_production(self) -> bool:
        return self.signal_env is Environment.PRODUCTION

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def with_secrets(self) -> Settings:
        """Answer settings whose signing and encryption keys are set.

        Production must be given both keys. Development generates each one once
        and keeps it in the data directory, so tokens and stored secrets survive
        a restart.
        """
        if self.jwt_secret and self.encryption_key:
            return self
        if self.is_production:
            missing = [
                name
                for name, value in (
                    ("JWT_SECRET", self.jwt_secret),
                    ("ENCRYPTION_KEY", self.encryption_key),
                )
                if not value
            ]
            raise ConfigurationError(
                f"{' and '.join(missing)} must be set when SIGNAL_ENV=production"
            )
        jwt_secret = self.jwt_secret or _kept_secret(
            self.signal_data_dir / "jwt_secret", lambda: secrets.token_urlsafe(48)
        )
        encryption_key = self.encryption_key or _kept_secret(
            self.signal_data_dir / "encryption_key", lambda: secrets.token_hex(32)
        )
        return self.model_copy(
            update={"jwt_secret": jwt_secret, "encryption_key": encryption_key}
        )


def _kept_secret(path: Path, generate: Callable[[], str]) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = generate()
    path.write_text(value)
    path.chmod(0o600)
    return value
