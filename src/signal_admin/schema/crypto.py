"""Re-encryption of the organisation's stored secrets under the current key:
start it and watch its progress (owner only)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry

from signal_admin.errors import DomainError
from signal_admin.resolvers import crypto
from signal_admin.resolvers.crypto import ReEncryption
from signal_admin.schema.auth import User
from signal_admin.schema.context import Info
from signal_admin.schema.errors import UserError, user_errors_or_raise
from signal_admin.schema.fields import mutation_field, query_field
from signal_admin.schema.loaders import UserKey
from signal_admin.schema.users import user_as_seen_by


@strawberry.enum(description="Where a re-encryption stands.")
class ReEncryptionStatus(Enum):
    NOT_STARTED = strawberry.enum_value(
        crypto.NOT_STARTED, description="The organisation never had a run."
    )
    RUNNING = strawberry.enum_value(
        "running", description="A process is rewriting the values."
    )
    STALLED = strawberry.enum_value(
        crypto.STALLED,
        description=(
            "Nobody is rewriting it now (its process stopped); a process takes "
            "it over soon, or startReEncryption resumes it."
        ),
    )
    COMPLETED = strawberry.enum_value(
        crypto.COMPLETED, description="Every value is under the current key."
    )
    FAILED = strawberry.enum_value(
        crypto.FAILED, description="It stopped short; failureReason says why."
    )


@strawberry.type(
    description="The organisation's latest re-encryption run and what is left."
)
class ReEncryptionRun:
    id: strawberry.ID | None = strawberry.field(
        description="The run's id (renc_…); null when there never was a run."
    )
    status: ReEncryptionStatus = strawberry.field(description="Where it stands.")
    total: int = strawberry.field(
        description="Values the run set out to rewrite; without a run, how many "
        "are not under the current key."
    )
    done: int = strawberry.field(description="Values rewritten so far.")
    unreadable: int = strawberry.field(
        description="Values neither configured key could decrypt; left as they were."
    )
    remaining: int = strawberry.field(
        description="The organisation's values not under the current key right now."
    )
    started_at: datetime | None = strawberry.field(description="When it started.")
    heartbeat_at: datetime | None = strawberry.field(
        description="The last sign of life of the process rewriting it."
    )
    finished_at: datetime | None = strawberry.field(
        description="When it completed or failed; null while it goes on."
    )
    failure_reason: str | None = strawberry.field(
        description="Why it failed; null unless it did."
    )
    org_id: strawberry.Private[str | None]
    started_by_id: strawberry.Private[str | None]

    @classmethod
    def from_result(cls, re_encryption: ReEncryption) -> ReEncryptionRun:
        run = re_encryption.run
        return cls(
            id=strawberry.ID(run.id) if run else None,
            status=ReEncryptionStatus(re_encryption.status),
            total=re_encryption.total,
            done=re_encryption.done,
            unreadable=re_encryption.unreadable,
            remaining=re_encryption.remaining,
            started_at=run.started_at if run else None,
            heartbeat_at=run.heartbeat_at if run else None,
            finished_at=run.finished_at if run else None,
            failure_reason=run.error if run else None,
            org_id=run.org_id if run else None,
            started_by_id=run.started_by if run else None,
        )

    @query_field(
        description="Who started it; null when the operator did, from the command line."
    )
    async def started_by(self, info: Info) -> User | None:
        if self.org_id is None or self.started_by_id is None:
            return None
        row = await info.context.loaders.user_by_id.load(
            UserKey(self.org_id, self.started_by_id)
        )
        return user_as_seen_by(info.context, row) if row else None


@strawberry.input(description="Start or resume the re-encryption; owner only.")
class StartReEncryptionInput:
    client_mutation_id: str | None = strawberry.field(
        default=None,
        description="Any text, given back on the payload to match it to the call.",
    )


@strawberry.type(description="The result of startReEncryption.")
class StartReEncryptionPayload:
    run: ReEncryptionRun | None = strawberry.field(
        default=None,
        description="The run started or resumed; null when none could start.",
    )
    client_mutation_id: str | None = strawberry.field(
        default=None, description="The input's clientMutationId."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list,
        description="Why no run started: ALREADY_EXISTS while one is running.",
    )


@strawberry.type
class CryptoQuery:
    @query_field(
        description="The organisation's latest re-encryption run (owner only)."
    )
    async def re_encryption(self, info: Info) -> ReEncryptionRun:
        result = await crypto.get_re_encryption(info.context.request)
        return ReEncryptionRun.from_result(result)


@strawberry.type
class CryptoMutation:
    @mutation_field(
        description="Rewrite the organisation's stored secrets under the current "
        "encryption key, in the background, or resume a run that stopped (owner "
        "only)."
    )
    async def start_re_encryption(
        self,
        info: Info,
        input: Annotated[
            StartReEncryptionInput,
            strawberry.argument(description="Nothing in it is required."),
        ],
    ) -> StartReEncryptionPayload | None:
        echo = input.client_mutation_id
        try:
            started = await crypto.start_re_encryption(info.context.request)
        except DomainError as error:
            return StartReEncryptionPayload(
                client_mutation_id=echo, user_errors=user_errors_or_raise(error)
            )
        return StartReEncryptionPayload(
            run=ReEncryptionRun.from_result(started), client_mutation_id=echo
        )
