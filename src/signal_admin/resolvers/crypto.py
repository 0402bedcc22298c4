"""Secrets at rest under a new key: re-encryption runs, and the health of the
configured keys.

After a rotation (the new key in `ENCRYPTION_KEY`, the old one in
`ENCRYPTION_KEY_PREVIOUS`) reads open either key, and a re-encryption run
rewrites every stored ciphertext that is not yet under the current key, so
that the previous key can then be removed. Ciphertexts live in two stores:
the `secrets` table (pipeline key secrets and secret revision fields) and the
stored answers of idempotent requests.

A run belongs to one organisation. Its owner starts it and sees its progress,
and nothing of another organisation's values, counts or runs. The operator's
`signal-admin re-encrypt` runs every organisation's in turn and then checks
that nothing anywhere is left under another key.

A run rewrites in batches, each in its own transaction that also records
where the next batch starts, so a crash loses at most one batch and whoever
takes the run over continues from there. The run's row is its lease: every
batch locks it and checks that this process still holds it, and each batch
moves `heartbeat_at` on. A run whose process stopped (no heartbeat for
`RE_ENCRYPTION_STALE_SECONDS`, or a lease given back at shutdown) is taken
over by the next start or by any process's watcher. At most one run per
organisation is running: starts take a PostgreSQL advisory lock for the
organisation (SQLite queues write transactions anyway), and a partial unique
index refuses a second running row should anything else slip through.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import (
    ColumnElement,
    Table,
    bindparam,
    func,
    or_,
    select,
    true,
    union,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from signal_admin.config import Settings
from signal_admin.errors import AlreadyExists, ServiceUnavailable
from signal_admin.persistence.database import is_unique_violation
from signal_admin.persistence.ids import new_id
from signal_admin.persistence.models import (
    Base,
    IdempotencyRecord,
    ReEncryptionRun,
    Secret,
)
from signal_admin.persistence.models.re_encryption_run import RUNNING
from signal_admin.persistence.types import utc_now
from signal_admin.resolvers import audit
from signal_admin.resolvers.context import RequestContext, Services, requires
from signal_admin.security.crypto import Cipher, DecryptionError
from signal_admin.security.permissions import Permission

log = structlog.get_logger(__name__)

# What a run's status reads as. A run is stored as running, completed or
# failed; "stalled" is a running run nobody is rewriting at the moment, and
# "not_started" the answer for an organisation that never had a run.
NOT_STARTED = "not_started"
STALLED = "stalled"
COMPLETED = "completed"
FAILED = "failed"

# The class of the PostgreSQL advisory locks of re-encryption ("RENC"); the
# object is a hash of the organisation id.
_LOCK_CLASS = 0x52454E43


@dataclass(frozen=True, slots=True)
class _Store:
    """A table holding ciphertexts: each sealed with its row's id as
    associated data and stamped with the id of the key that sealed it."""

    table: Table
    ciphertext: str
    key_id: str

    @property
    def name(self) -> str:
        return self.table.name

    def not_under(self, key_id: str) -> ColumnElement[bool]:
        """Rows holding a ciphertext that `key_id`'s key did not seal."""
        stamp = self.table.c[self.key_id]
        return self.table.c[self.ciphertext].is_not(None) & or_(
            stamp.is_(None), stamp != key_id
        )


STORES = (
    _Store(Base.metadata.tables[Secret.__tablename__], "ciphertext", "key_id"),
    _Store(
        Base.metadata.tables[IdempotencyRecord.__tablename__],
        "response_ciphertext",
        "response_key_id",
    ),
)
_STORE_NAMED = {store.name: store for store in STORES}


@dataclass(frozen=True, slots=True)
class ReEncryption:
    """An organisation's re-encryption as answered: its latest run (None when
    it never had one), the status that run reads as now, and how many of the
    organisation's values are not under the current key at this moment."""

    run: ReEncryptionRun | None
    status: str
    remaining: int

    @property
    def total(self) -> int:
        """What the run set out to rewrite; without a run, what is left."""
        return self.run.total if self.run else self.remaining

    @property
    def done(self) -> int:
        return self.run.done if self.run else 0

    @property
    def unreadable(self) -> int:
        return self.run.unreadable if self.run else 0


@requires(Permission.MANAGE_ORGANIZATION)
async def start_re_encryption(ctx: RequestContext) -> ReEncryption:
    """Start rewriting the caller's organisation's stored values under the
    current key, or resume its run that stopped. Refused with
    `ALREADY_EXISTS` while a run is being rewritten."""
    principal = ctx.authenticated()
    workers = ctx.services.re_encryption

    started = await _start(
        ctx,
        principal.org_id,
        worker=workers.token if workers else None,
        started_by=principal.user_id,
    )

    if workers is not None and started.run is not None:
        workers.rewrite(started.run.id)
    return started


@requires(Permission.MANAGE_ORGANIZATION)
async def get_re_encryption(ctx: RequestContext) -> ReEncryption:
    """The caller's organisation's latest run and what is left to rewrite."""
    principal = ctx.authenticated()
    cipher = ctx.services.cipher

    async with ctx.db.read() as session:
        run = await session.scalar(
            select(ReEncryptionRun)
            .where(ReEncryptionRun.org_id == principal.org_id)
            .order_by(ReEncryptionRun.started_at.desc(), ReEncryptionRun.id.desc())
            .limit(1)
        )
        remaining = await _remaining(session, principal.org_id, cipher.current_key_id)
    return ReEncryption(run, _status_of(run, ctx.settings), remaining)


async def _start(
    ctx: RequestContext, org_id: str, *, worker: str | None, started_by: str | None
) -> ReEncryption:
    current_key_id = ctx.services.cipher.current_key_id
    now = utc_now()

    async with ctx.db.transaction() as session:
        await _lock_runs_of(session, org_id)
        run = await session.scalar(
            select(ReEncryptionRun)
            .where(ReEncryptionRun.org_id == org_id, ReEncryptionRun.status == RUNNING)
            .with_for_update()
        )
        if run is not None and not _is_claimable(run, ctx.settings, now):
            raise AlreadyExists(f"Re-encryption run {run.id} is already running.")
        if run is not None and run.key_id != current_key_id:
            _finish(
                run,
                FAILED,
                now,
                error="The encryption key changed before this run finished; a "
                "new run took its place.",
            )
            await session.flush()
            run = None
        remaining = await _remaining(session, org_id, current_key_id)
        resumed = run is not None
        if run is None:
            run = ReEncryptionRun(
                id=new_id("renc"),
                org_id=org_id,
                status=RUNNING,
                key_id=current_key_id,
                total=remaining,
                done=0,
                unreadable=0,
                started_by=started_by,
                store=STORES[0].name,
                started_at=now,
            )
            session.add(run)
        run.worker = worker
        run.heartbeat_at = now
        audit.record(
            session,
            ctx,
            action="crypto.re_encrypt_started",
            resource_type="re_encryption_run",
            resource_id=run.id,
            org_id=org_id,
            metadata={"resumed": resumed, "total": run.total, "done": run.done},
        )
        try:
            await session.flush()
        except IntegrityError as error:
            # The partial unique index: another process's run got in first.
            if is_unique_violation(error):
                raise AlreadyExists(
                    "A re-encryption run is already running."
                ) from error
            raise

    log.info(
        "crypto.re_encrypt_started",
        run_id=run.id,
        org_id=org_id,
        resumed=resumed,
        total=run.total,
    )
    return ReEncryption(run, _status_of(run, ctx.settings), remaining)


async def _lock_runs_of(session: AsyncSession, org_id: str) -> None:
    """Serialise the starts of one organisation's runs across processes until
    the transaction ends. SQLite needs nothing: its write transactions begin
    with BEGIN IMMEDIATE, so they run one at a time."""
    if session.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.sha256(org_id.encode()).digest()
    await session.execute(
        select(
            func.pg_advisory_xact_lock(
                _LOCK_CLASS, int.from_bytes(digest[:4], "big", signed=True)
            )
        )
    )


async def _remaining(session: AsyncSession, org_id: str, key_id: str) -> int:
    """How many of the organisation's values `key_id`'s key did not seal."""
    remaining = 0
    for store in STORES:
        remaining += (
            await session.scalar(
                select(func.count())
                .select_from(store.table)
                .where(store.table.c.org_id == org_id, store.not_under(key_id))
            )
            or 0
        )
    return remaining


def _status_of(run: ReEncryptionRun | None, settings: Settings) -> str:
    if run is None:
        return NOT_STARTED
    if run.status == RUNNING and _is_claimable(run, settings, utc_now()):
        return STALLED
    return run.status


def _is_claimable(run: ReEncryptionRun, settings: Settings, now: datetime) -> bool:
    """Whether nobody is rewriting `run`: its lease was given back, or its
    process has not moved the heartbeat on for too long."""
    stale_before = now - timedelta(seconds=settings.re_encryption_stale_seconds)
    return run.worker is None or run.heartbeat_at < stale_before


def _finish(
    run: ReEncryptionRun, status: str, now: datetime, error: str | None = None
) -> None:
    run.status = status
    run.error = error
    run.worker = None
    run.finished_at = now
    run.heartbeat_at = now


# Rewriting


async def rewrite(
    services: Services,
    run_id: str,
    worker: str,
    stopping: asyncio.Event | None = None,
) -> None:
    """Rewrite `run_id` batch by batch while `worker` holds its lease, until it
    is finished, another process has taken it over, or `stopping` is set."""
    stopping = stopping or asyncio.Event()
    pause = services.settings.re_encryption_batch_pause_seconds
    while not stopping.is_set() and await _rewrite_batch(services, run_id, worker):
        if pause:
            await _wait(stopping, pause)


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Wait `seconds`, or less if `event` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


async def claim(services: Services, run_id: str, worker: str) -> bool:
    """Take the lease of `run_id` for `worker`, if nobody else holds it; the
    run must target this process's current key."""
    async with services.db.transaction() as session:
        run = await session.scalar(
            select(ReEncryptionRun)
            .where(ReEncryptionRun.id == run_id)
            .with_for_update()
        )
        if (
            run is None
            or run.status != RUNNING
            or run.key_id != services.cipher.current_key_id
        ):
            return False
        if run.worker != worker:
            if not _is_claimable(run, services.settings, utc_now()):
                return False
            log.info(
                "crypto.re_encrypt_taken_over",
                run_id=run.id,
                org_id=run.org_id,
                previous_worker=run.worker,
            )
        run.worker = worker
        run.heartbeat_at = utc_now()
        return True


async def _rewrite_batch(services: Services, run_id: str, worker: str) -> bool:
    """Rewrite one batch of `run_id` in one transaction, with the run's own
    progress; False once there is nothing more for `worker` to do."""
    cipher = services.cipher
    async with services.db.transaction() as session:
        run = await session.scalar(
            select(ReEncryptionRun)
            .where(ReEncryptionRun.id == run_id)
            .with_for_update()
        )
        if (
            run is None
            or run.status != RUNNING
            or run.worker != worker
            or run.key_id != cipher.current_key_id
        ):
            return False
        now = utc_now()
        run.heartbeat_at = now
        store = _STORE_NAMED.get(run.store or "")
        if store is None:
            await _complete(session, run, now)
            return False

        rows = await _next_rows(
            session, run, store, services.settings.re_encryption_batch_size
        )
        if not rows:
            run.store, run.position = _store_after(store), None
            if run.store is None:
                await _complete(session, run, now)
                return False
            return True

        resealed = _resealed(cipher, rows)
        if resealed:
            await session.execute(
                update(store.table)
                .where(store.table.c.id == bindparam("row_id"))
                .values(
                    {
                        store.ciphertext: bindparam("new_ciphertext"),
                        store.key_id: bindparam("new_key_id"),
                    }
                ),
                resealed,
            )
        run.done += len(resealed)
        run.unreadable += len(rows) - len(resealed)
        run.position = max(row_id for row_id, _ in rows)
    return True


async def _next_rows(
    session: AsyncSession, run: ReEncryptionRun, store: _Store, batch_size: int
) -> list[tuple[str, str]]:
    """The next batch of the run's organisation in `store` that is not under
    the run's key, after its position, locked until the batch commits."""
    table = store.table
    after = table.c.id > run.position if run.position else true()
    result = await session.execute(
        select(table.c.id, table.c[store.ciphertext])
        .where(table.c.org_id == run.org_id, store.not_under(run.key_id), after)
        .order_by(table.c.id)
        .limit(batch_size)
        .with_for_update()
    )
    return [(row_id, ciphertext) for row_id, ciphertext in result.all()]


def _resealed(cipher: Cipher, rows: list[tuple[str, str]]) -> list[dict[str, str]]:
    """The rows' values sealed under the current key; a value no configured
    key opens is left out, and left as it is."""
    resealed = []
    for row_id, ciphertext in rows:
        try:
            sealed = cipher.reseal(ciphertext, row_id)
        except DecryptionError:
            # Counted on the run; the run's end is logged with the count.
            log.debug("crypto.value_unreadable", row_id=row_id)
            continue
        resealed.append(
            {
                "row_id": row_id,
                "new_ciphertext": sealed.ciphertext,
                "new_key_id": sealed.key_id,
            }
        )
    return resealed


def _store_after(store: _Store) -> str | None:
    index = STORES.index(store)
    return STORES[index + 1].name if index + 1 < len(STORES) else None


async def _complete(session: AsyncSession, run: ReEncryptionRun, now: datetime) -> None:
    """End a run that went through every store: completed when nothing of its
    organisation is left under another key, failed (saying why) otherwise."""
    remaining = await _remaining(session, run.org_id, run.key_id)
    run.total = max(run.total, run.done + run.unreadable)
    if run.unreadable:
        _finish(
            run,
            FAILED,
            now,
            error=f"{run.unreadable} stored value(s) could not be decrypted with "
            "ENCRYPTION_KEY or ENCRYPTION_KEY_PREVIOUS and were left as they were.",
        )
    elif remaining:
        _finish(
            run,
            FAILED,
            now,
            error=f"{remaining} value(s) were stored under another key while the "
            "run went on: make sure every process uses the new ENCRYPTION_KEY, "
            "then start the run again.",
        )
    else:
        run.done = run.total
        _finish(run, COMPLETED, now)
    log.info(
        "crypto.re_encrypt_finished",
        run_id=run.id,
        org_id=run.org_id,
        status=run.status,
        done=run.done,
        unreadable=run.unreadable,
    )


# The workers of each process


class ReEncryptionWorkers:
    """The re-encryption work of one process: the runs it rewrites, each in a
    task of its own, and a watcher that takes over runs whose process stopped.

    At shutdown each task finishes the batch in flight and stops, and the
    leases are given back, so another process takes the runs over at once.
    Tasks are not cancelled in the middle of a batch: on SQLite a transaction
    cut off while the driver's thread runs it can keep the database locked.
    """

    def __init__(self, services: Services) -> None:
        self.services = services
        self.token = _worker_token()
        self._rewriting: dict[str, asyncio.Task[None]] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        if self.services.settings.re_encryption_watch_seconds > 0:
            self._watcher = asyncio.create_task(
                self._watch(), name="re-encryption-watcher"
            )

    def rewrite(self, run_id: str) -> None:
        """Rewrite `run_id` in the background, unless this process already is."""
        if run_id in self._rewriting or self._stopping.is_set():
            return
        task = asyncio.create_task(self._claim_and_rewrite(run_id), name=run_id)
        self._rewriting[run_id] = task
        task.add_done_callback(lambda _: self._rewriting.pop(run_id, None))

    async def stop(self) -> None:
        self._stopping.set()
        tasks = [*self._rewriting.values()]
        if self._watcher is not None:
            tasks.append(self._watcher)
        if tasks:
            _, late = await asyncio.wait(
                tasks, timeout=self.services.settings.shutdown_grace_seconds
            )
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self._give_back_leases()

    async def _claim_and_rewrite(self, run_id: str) -> None:
        try:
            if await claim(self.services, run_id, self.token):
                await rewrite(self.services, run_id, self.token, self._stopping)
        except ServiceUnavailable as error:
            # The run stays running; once its heartbeat is stale, a watcher
            # takes it over where it stopped.
            log.warning(
                "crypto.re_encrypt_interrupted",
                run_id=run_id,
                error=type(error.__cause__ or error).__name__,
            )
        except Exception:
            # A fault of the service: stop the run with a message for the owner
            # rather than let every process take it over and fail again.
            log.exception("crypto.re_encrypt_crashed", run_id=run_id)
            await _give_up(self.services, run_id, self.token)

    async def _watch(self) -> None:
        interval = self.services.settings.re_encryption_watch_seconds
        while not self._stopping.is_set():
            try:
                for run_id in await _claimable_runs(self.services):
                    self.rewrite(run_id)
            except ServiceUnavailable:
                log.warning("crypto.re_encrypt_watch_failed", reason="database")
            except Exception:
                log.exception("crypto.re_encrypt_watch_failed")
            await _wait(self._stopping, interval)

    async def _give_back_leases(self) -> None:
        try:
            async with self.services.db.transaction() as session:
                await session.execute(
                    update(ReEncryptionRun)
                    .where(
                        ReEncryptionRun.worker == self.token,
                        ReEncryptionRun.status == RUNNING,
                    )
                    .values(worker=None)
                )
        except Exception as error:
            # Unreachable at shutdown: the leases lapse with their heartbeat.
            log.warning("crypto.re_encrypt_lease_kept", error=type(error).__name__)


async def _give_up(services: Services, run_id: str, worker: str) -> None:
    try:
        async with services.db.transaction() as session:
            run = await session.scalar(
                select(ReEncryptionRun)
                .where(ReEncryptionRun.id == run_id)
                .with_for_update()
            )
            if run is not None and run.status == RUNNING and run.worker == worker:
                _finish(
                    run,
                    FAILED,
                    utc_now(),
                    error="An unexpected error stopped the run; the service's "
                    "log says more. Start the run again to continue.",
                )
    except Exception:
        log.exception("crypto.re_encrypt_crashed", run_id=run_id)


@asynccontextmanager
async def re_encryption_workers(
    services: Services,
) -> AsyncIterator[ReEncryptionWorkers]:
    """Run this process's re-encryption work until the block ends."""
    workers = ReEncryptionWorkers(services)
    services.re_encryption = workers
    workers.start()
    try:
        yield workers
    finally:
        services.re_encryption = None
        await workers.stop()


async def _claimable_runs(services: Services) -> list[str]:
    """Running runs under this process's key that nobody is rewriting."""
    stale_before = utc_now() - timedelta(
        seconds=services.settings.re_encryption_stale_seconds
    )
    async with services.db.read() as session:
        ids = await session.scalars(
            select(ReEncryptionRun.id)
            .where(
                ReEncryptionRun.status == RUNNING,
                ReEncryptionRun.key_id == services.cipher.current_key_id,
                or_(
                    ReEncryptionRun.worker.is_(None),
                    ReEncryptionRun.heartbeat_at < stale_before,
                ),
            )
            .order_by(ReEncryptionRun.id)
        )
        return list(ids)


def _worker_token() -> str:
    """A name for one process's workers, unique across processes and apps."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


# Every organisation, from the command line


async def re_encrypt_every_organization(
    ctx: RequestContext, on_finished: Callable[[ReEncryptionRun], None]
) -> int:
    """As the operator: run the re-encryption of every organisation that has a
    value under another key to its end, one after the other, calling
    `on_finished` with each finished run. Answers how many values anywhere
    are still not under the current key."""
    worker = _worker_token()
    for org_id in await _organizations_to_re_encrypt(ctx.services):
        on_finished(await _run_to_the_end(ctx, org_id, worker))
    return await _remaining_everywhere(ctx.services)


async def _run_to_the_end(
    ctx: RequestContext, org_id: str, worker: str
) -> ReEncryptionRun:
    """Start or resume `org_id`'s run and rewrite it here; while another
    process rewrites it, wait for that one to finish or stop."""
    poll_seconds = min(1.0, ctx.settings.re_encryption_stale_seconds / 4)
    while True:
        try:
            started = await _start(ctx, org_id, worker=worker, started_by=None)
        except AlreadyExists:
            await asyncio.sleep(poll_seconds)
            latest = await _latest_finished_run(ctx.services, org_id)
            if latest is not None:
                return latest
            continue
        assert started.run is not None
        await rewrite(ctx.services, started.run.id, worker)
        async with ctx.db.read() as session:
            run = await session.get_one(ReEncryptionRun, started.run.id)
        if run.status != RUNNING:
            return run


async def _latest_finished_run(
    services: Services, org_id: str
) -> ReEncryptionRun | None:
    """The organisation's latest run, if it is finished and left nothing under
    another key; None while there is more to do."""
    async with services.db.read() as session:
        run = await session.scalar(
            select(ReEncryptionRun)
            .where(ReEncryptionRun.org_id == org_id)
            .order_by(ReEncryptionRun.started_at.desc(), ReEncryptionRun.id.desc())
            .limit(1)
        )
        if run is None or run.status == RUNNING:
            return None
        if await _remaining(session, org_id, services.cipher.current_key_id):
            return None
        return run


async def _organizations_to_re_encrypt(services: Services) -> list[str]:
    key_id = services.cipher.current_key_id
    async with services.db.read() as session:
        org_ids = await session.scalars(
            union(
                *(
                    select(store.table.c.org_id).where(store.not_under(key_id))
                    for store in STORES
                )
            )
        )
        return sorted(org_ids)


async def _remaining_everywhere(services: Services) -> int:
    key_id = services.cipher.current_key_id
    remaining = 0
    async with services.db.read() as session:
        for store in STORES:
            remaining += (
                await session.scalar(
                    select(func.count())
                    .select_from(store.table)
                    .where(store.not_under(key_id))
                )
                or 0
            )
    return remaining


# Health of the keys


@dataclass(frozen=True, slots=True)
class CryptoHealth:
    """Whether the configured keys open what is stored.

    `key_valid`: a stored value sealed by the current key opens with it and,
    without a previous key, no value is under any other key. `round_trip`: a
    fresh value sealed by the current key opens again. `previous_key_valid`
    (None without a previous key): a stored value sealed by the previous key
    opens with it, and every value is under the current or the previous key.
    """

    dual_key_mode: bool
    key_valid: bool
    round_trip: bool
    previous_key_valid: bool | None

    @property
    def healthy(self) -> bool:
        return (
            self.key_valid and self.round_trip and self.previous_key_valid is not False
        )


async def crypto_health(services: Services) -> CryptoHealth:
    cipher = services.cipher
    previous_key_id = cipher.previous_key_id
    known = [cipher.current_key_id, *([previous_key_id] if previous_key_id else [])]

    async with services.db.read() as session:
        unknown_keys = await _holds_other_keys(session, known)
        current_opens = await _samples_open(session, cipher, cipher.current_key_id)
        previous_opens = (
            await _samples_open(session, cipher, previous_key_id)
            if previous_key_id
            else None
        )

    return CryptoHealth(
        dual_key_mode=previous_key_id is not None,
        key_valid=current_opens and (previous_key_id is not None or not unknown_keys),
        round_trip=_round_trips(cipher),
        previous_key_valid=(
            None if previous_opens is None else previous_opens and not unknown_keys
        ),
    )


async def _holds_other_keys(session: AsyncSession, key_ids: list[str]) -> bool:
    """Whether any stored value is under a key other than those of `key_ids`."""
    for store in STORES:
        stamp = store.table.c[store.key_id]
        found = await session.scalar(
            select(store.table.c.id)
            .where(
                store.table.c[store.ciphertext].is_not(None),
                or_(stamp.is_(None), stamp.not_in(key_ids)),
            )
            .limit(1)
        )
        if found is not None:
            return True
    return False


async def _samples_open(session: AsyncSession, cipher: Cipher, key_id: str) -> bool:
    """Whether the newest value of each store stamped with `key_id` opens;
    True where there is none."""
    for store in STORES:
        table = store.table
        sample = (
            await session.execute(
                select(table.c.id, table.c[store.ciphertext])
                .where(table.c[store.key_id] == key_id)
                .order_by(table.c.id.desc())
                .limit(1)
            )
        ).first()
        if sample is None:
            continue
        row_id, ciphertext = sample
        try:
            cipher.decrypt(ciphertext, row_id)
        except DecryptionError:
            return False
    return True


def _round_trips(cipher: Cipher) -> bool:
    probe, row_id = secrets.token_hex(16), new_id("probe")
    try:
        return cipher.decrypt(cipher.encrypt(probe, row_id).ciphertext, row_id) == probe
    except DecryptionError:
        return False
