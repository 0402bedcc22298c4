"""The `signal-admin` command: serve the API, migrate the schema, create
organisations and users, purge old audit entries, re-encrypt stored secrets
and replay events into a running service from a shell.

Every command but `replay` reads the same settings as the server; `replay` is a
client of a running service and reads only its options and `SIGNAL_TOKEN`. A
command that cannot do its work prints one line saying why on stderr and exits
with status 1; a stack trace means a bug in the service, never a mistake by the
operator.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import httpx
import uvicorn
from alembic.util import CommandError as AlembicCommandError
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from signal_admin import __version__
from signal_admin.app import build_services, close_services, create_app
from signal_admin.config import ConfigurationError, Settings
from signal_admin.errors import DomainError, NotFound, ServiceUnavailable
from signal_admin.logs import configure_logging
from signal_admin.persistence.audit_retention import AuditPurge, purge_audit_entries
from signal_admin.persistence.database import Database
from signal_admin.persistence.models import Organization, ReEncryptionRun, User
from signal_admin.persistence.schema import (
    current_revision,
    is_up_to_date,
    upgrade_to_head,
)
from signal_admin.persistence.types import format_timestamp
from signal_admin.replay import (
    REPLAY_BATCH,
    REPLAY_URL,
    TOKEN_VARIABLE,
    ReplayFailed,
    replay_file,
)
from signal_admin.resolvers.context import Principal, RequestContext, RequestMeta
from signal_admin.resolvers.crypto import re_encrypt_every_organization
from signal_admin.resolvers.organizations import NewOrganization, create_organization
from signal_admin.resolvers.pipelines import PipelineCreate, create_pipeline
from signal_admin.resolvers.users import NewUser, add_user, normalise_email
from signal_admin.security.permissions import Role

T = TypeVar("T")

# Audit entries written from the command line carry this instead of a browser's.
COMMAND_LINE_META = RequestMeta(user_agent=f"signal-admin/{__version__} (command line)")
COMMAND_LINE_SESSION = "cli"
OUT_OF_DATE = "the database schema is out of date; run `signal-admin migrate`"
# What stopping the app and the process takes once uvicorn stops waiting for
# open connections, kept out of the shutdown grace.
SHUTDOWN_OVERHEAD_SECONDS = 3.0

DEMO_ORGANIZATION = "Demo"
DEMO_OWNER_EMAIL = "demo@example.com"
DEMO_PIPELINE = PipelineCreate(
    name="Demo website", type="web", domain_allowlist=["localhost"]
)


Command = Callable[[Settings, argparse.Namespace], None]
# A command that talks to a running service and reads no server settings.
ClientCommand = Callable[[argparse.Namespace], None]


class CommandFailed(Exception):
    """Stops a command; the message is the one line the operator sees."""


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    command: Command = args.command
    client: ClientCommand | None = getattr(args, "client", None)
    try:
        if client is not None:
            client(args)
            return
        settings = _load_settings()
        configure_logging(settings)
        command(settings, args)
    except (CommandFailed, ReplayFailed, ConfigurationError) as failure:
        _exit_with(str(failure))
    except DomainError as error:
        _exit_with(_describe(error))
    except KeyboardInterrupt:
        sys.exit(130)


def serve(settings: Settings, args: argparse.Namespace) -> None:
    """Serve both faces until interrupted, on a schema that is up to date."""
    workers: int = args.workers
    _check_workers(settings, workers)
    _run(settings, _require_current_schema(settings))

    options: dict[str, Any] = {
        "host": args.host if args.host is not None else settings.host,
        "port": args.port if args.port is not None else settings.port,
        "log_level": logging.getLevelNamesMapping().get(
            settings.log_level.upper(), logging.INFO
        ),
        # The app logs one line per request and reads forwarded addresses
        # itself, trusting only TRUSTED_PROXIES.
        "access_log": False,
        "proxy_headers": False,
        # uvicorn annotates an int but hands the value to asyncio.timeout,
        # which takes fractions of a second too. Its wait for open
        # connections ends early enough for the rest of the shutdown to fit
        # in SHUTDOWN_GRACE_SECONDS, even when a client never reads its
        # socket's close frame.
        "timeout_graceful_shutdown": connection_grace(settings),
        # Live sockets send small JSON frames; compressing them would keep a
        # zlib state of ~40 KiB per socket and compress each frame once per
        # socket instead of sending one shared text (docs/decisions.md).
        "ws_per_message_deflate": False,
        # No WebSocket message needs more than a request body may hold.
        "ws_max_size": settings.max_body_bytes,
    }
    if workers == 1:
        uvicorn.run(create_app(settings), **options)
    else:
        uvicorn.run(
            "signal_admin.cli:app_factory", factory=True, workers=workers, **options
        )


def connection_grace(settings: Settings) -> float:
    """How long uvicorn waits for open connections at shutdown: the grace,
    less the few seconds stopping the app and the process takes."""
    return max(0.5, settings.shutdown_grace_seconds - SHUTDOWN_OVERHEAD_SECONDS)


def app_factory() -> FastAPI:
    """The app of one uvicorn worker, which reads the settings afresh."""
    return create_app(Settings())


def migrate(settings: Settings, args: argparse.Namespace) -> None:
    """Upgrade the schema to the newest migration."""
    revision = _run(settings, _upgrade(settings))
    print(f"database schema at revision {revision} (head)")


def create_org(settings: Settings, args: argparse.Namespace) -> None:
    """Create an organisation with its owner."""
    created = _run(
        settings,
        _in_context(
            settings,
            lambda ctx: create_organization(
                ctx,
                name=args.name,
                owner_email=args.owner_email,
                owner_password=args.owner_password,
            ),
        ),
    )

    if args.json:
        _print_json(
            {
                "org_id": created.organization.id,
                "owner_id": created.owner.id,
                "owner_email": created.owner.email,
                "owner_password": created.owner_password,
            }
        )
        return
    print(f"organisation  {created.organization.id}  {created.organization.name}")
    print(f"owner         {created.owner.id}  {created.owner.email}")
    if created.owner_password:
        print(f"password      {created.owner_password}  (generated; shown only now)")


def create_user(settings: Settings, args: argparse.Namespace) -> None:
    """Add an active user to an existing organisation."""
    role = Role(args.role)
    if role is Role.OWNER:
        raise CommandFailed(
            "an organisation has exactly one owner, created with it by "
            "`create-org`; choose admin, editor or viewer"
        )

    created = _run(
        settings,
        _in_context(
            settings,
            lambda ctx: _add_member(
                ctx, args.org, email=args.email, role=role, password=args.password
            ),
        ),
    )

    user = created.user
    if args.json:
        _print_json(
            {
                "user_id": user.id,
                "org_id": user.org_id,
                "email": user.email,
                "role": user.role,
                "password": created.generated_password,
            }
        )
        return
    print(f"user          {user.id}  {user.email}  ({user.role})")
    print(f"organisation  {user.org_id}")
    if created.generated_password:
        print(
            f"password      {created.generated_password}  (generated; shown only now)"
        )


def seed_demo(settings: Settings, args: argparse.Namespace) -> None:
    """Create the demo organisation, its owner and a pipeline, once."""
    demo = _run(settings, _in_context(settings, _load_demo))

    if demo is None:
        print("the database already has an organisation; demo data not loaded")
        return
    assert demo.owner_password is not None
    print(
        _boxed(
            [
                "Demo organisation created. Sign in as its owner:",
                "",
                f"  email     {demo.owner.email}",
                f"  password  {demo.owner_password}",
                "",
                f"API at http://{settings.host}:{settings.port}/v1/admin",
                "The password is shown this once only: keep it now.",
            ]
        )
    )


def purge_audit(settings: Settings, args: argparse.Namespace) -> None:
    """Remove audit entries older than the retention period."""
    days: int = args.older_than_days or settings.audit_retention_days
    purge = _run(settings, _purge_audit(settings, days))

    print(_describe_purge(purge, days))


def re_encrypt(settings: Settings, args: argparse.Namespace) -> None:
    """Rewrite every organisation's stored secrets under ENCRYPTION_KEY."""
    remaining = _run(
        settings,
        _in_context(
            settings, lambda ctx: re_encrypt_every_organization(ctx, _print_run)
        ),
    )

    if remaining:
        raise CommandFailed(
            f"{remaining} stored value(s) are still not under ENCRYPTION_KEY; "
            "ENCRYPTION_KEY_PREVIOUS must hold the key they were sealed with "
            "(see the lines above)"
        )
    print(
        "every stored value is under ENCRYPTION_KEY: "
        "ENCRYPTION_KEY_PREVIOUS can be removed"
    )


def replay(args: argparse.Namespace) -> None:
    """Send a JSON-lines file of events through a pipeline's test events."""
    source = None if args.sample else Path(args.file)
    replay_file(
        source,
        pipeline_id=args.pipeline,
        url=args.url,
        email=args.email,
        rate=args.rate,
    )


async def _upgrade(settings: Settings) -> str | None:
    database = Database(settings.database_url)
    try:
        await upgrade_to_head(database.engine)
        return await current_revision(database.engine)
    except AlembicCommandError as error:
        raise CommandFailed(f"cannot migrate: {error}") from error
    finally:
        await database.dispose()


async def _require_current_schema(settings: Settings) -> None:
    database = Database(settings.database_url)
    try:
        current = await is_up_to_date(database.engine)
    finally:
        await database.dispose()
    if not current:
        raise CommandFailed(OUT_OF_DATE)


async def _purge_audit(settings: Settings, older_than_days: int) -> AuditPurge:
    await _require_current_schema(settings)
    database = Database(settings.database_url)
    try:
        return await purge_audit_entries(database, older_than_days=older_than_days)
    finally:
        await database.dispose()


async def _in_context(
    settings: Settings, operation: Callable[[RequestContext], Awaitable[T]]
) -> T:
    """Run `operation` as the operator, with the services the server would use."""
    await _require_current_schema(settings)
    services = build_services(settings)
    try:
        return await operation(
            RequestContext(services=services, meta=COMMAND_LINE_META)
        )
    finally:
        await close_services(services)


async def _add_member(
    ctx: RequestContext, org_id: str, *, email: str, role: Role, password: str | None
) -> NewUser:
    async with ctx.db.transaction() as session:
        if await session.get(Organization, org_id) is None:
            raise NotFound.of("Organisation", org_id)
        return await add_user(
            session,
            ctx,
            org_id=org_id,
            email=email,
            name=normalise_email(email).partition("@")[0],
            role=role,
            password=password,
        )


async def _load_demo(ctx: RequestContext) -> NewOrganization | None:
    async with ctx.db.read() as session:
        if await session.scalar(select(Organization.id).limit(1)) is not None:
            return None

    demo = await create_organization(
        ctx, name=DEMO_ORGANIZATION, owner_email=DEMO_OWNER_EMAIL, owner_password=None
    )
    as_owner = RequestContext(
        services=ctx.services, meta=ctx.meta, principal=_acting_as(demo.owner)
    )
    await create_pipeline(as_owner, DEMO_PIPELINE)
    return demo


def _acting_as(user: User) -> Principal:
    return Principal(
        user_id=user.id,
        org_id=user.org_id,
        email=user.email,
        role=user.role,
        session_id=COMMAND_LINE_SESSION,
    )


def _check_workers(settings: Settings, workers: int) -> None:
    if workers == 1:
        return
    if settings.is_sqlite:
        raise CommandFailed(
            "--workers above 1 needs PostgreSQL and Redis: embedded mode (SQLite) "
            "is one process, and its in-process rate limiter and event bus would "
            "split between workers"
        )
    if not settings.redis_url:
        raise CommandFailed(
            "--workers above 1 needs REDIS_URL: without Redis the rate limiter and "
            "event bus live in each process and would split between workers"
        )


def _run(settings: Settings, work: Coroutine[Any, Any, T]) -> T:
    """Run `work`, turning a database that cannot be used into one line."""
    url = settings.database_url
    try:
        _prepare_database_url(url)
        return asyncio.run(work)
    except (OSError, DBAPIError) as error:
        raise CommandFailed(_database_failure(url, error)) from error
    except ServiceUnavailable as error:
        raise CommandFailed(_database_failure(url, error.__cause__ or error)) from error
    finally:
        work.close()


def _prepare_database_url(url: str) -> None:
    """Refuse a URL no dialect can use, and give a SQLite file its directory."""
    try:
        parsed = make_url(url)
        parsed.get_dialect()
    except ArgumentError as error:
        raise CommandFailed(f"DATABASE_URL cannot be used: {error}") from error
    path = parsed.database
    if parsed.get_backend_name() == "sqlite" and path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _database_failure(url: str, error: BaseException) -> str:
    reason = error
    if isinstance(error, DBAPIError) and error.orig is not None:
        reason = error.orig
    shown = make_url(url).render_as_string(hide_password=True)
    return f"cannot use the database at {shown}: {reason}"


def _load_settings() -> Settings:
    try:
        return Settings().with_secrets()
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']).upper()}: "
            f"{problem['msg'].removeprefix('Value error, ')}"
            for problem in error.errors(include_url=False)
        )
        raise CommandFailed(f"invalid settings: {problems}") from error
    except OSError as error:
        raise CommandFailed(f"cannot keep the generated secrets: {error}") from error


def _describe(error: DomainError) -> str:
    problems = (f"{problem.field}: {problem.message}" for problem in error.details)
    return " ".join([error.message, *problems])


def _describe_purge(purge: AuditPurge, days: int) -> str:
    entries = "entry" if purge.removed == 1 else "entries"
    done = (
        f"removed {purge.removed} audit {entries} older than {days} "
        f"{'day' if days == 1 else 'days'} "
        f"(before {format_timestamp(purge.cut_off)})"
    )
    if purge.another_running:
        return f"{done}; stopped because another process is purging the audit trail"
    return done


def _print_run(run: ReEncryptionRun) -> None:
    line = f"{run.org_id}  {run.status}  {run.done} of {run.total} re-encrypted"
    if run.unreadable:
        line += f", {run.unreadable} unreadable"
    print(f"{line}: {run.error}" if run.error else line, flush=True)


def _exit_with(reason: str) -> NoReturn:
    print(f"signal-admin: {' '.join(reason.split())}", file=sys.stderr)
    sys.exit(1)


def _print_json(document: dict[str, str | None]) -> None:
    print(json.dumps(document))


def _boxed(lines: list[str]) -> str:
    width = max(len(line) for line in lines)
    edge = f"+{'-' * (width + 4)}+"
    body = [f"|  {line.ljust(width)}  |" for line in lines]
    return "\n".join([edge, *body, edge])


class _Parser(argparse.ArgumentParser):
    """Reports a malformed command line in one line, like every other failure."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of at least 1, got {value!r}"
        )
    return number


def _port(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if not 0 <= number <= 65_535:
        raise argparse.ArgumentTypeError(f"expected a port 0-65535, got {value!r}")
    return number


def _events_per_second(value: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        rate = 0.0
    if not (rate > 0 and math.isfinite(rate)):
        raise argparse.ArgumentTypeError(
            f"expected a number of events per second above 0, got {value!r}"
        )
    return rate


def _service_url(value: str) -> str:
    url = value.strip().rstrip("/")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise argparse.ArgumentTypeError(
            f"expected the service's root URL, like {REPLAY_URL}, got {value!r}"
        )
    return url


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="signal-admin",
        description="Management API of the Signal event-collection platform.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    serving = commands.add_parser("serve", help="serve the API (HOST, PORT)")
    serving.add_argument("--host", help="listen address (default: HOST)")
    serving.add_argument("--port", type=_port, help="listen port (default: PORT)")
    serving.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="worker processes; above 1 needs PostgreSQL and Redis (default: 1)",
    )
    serving.set_defaults(command=serve)

    migrating = commands.add_parser("migrate", help="upgrade the schema to head")
    migrating.set_defaults(command=migrate)

    org = commands.add_parser("create-org", help="create an organisation and owner")
    org.add_argument("--name", required=True)
    org.add_argument("--owner-email", required=True, metavar="EMAIL")
    org.add_argument(
        "--owner-password", metavar="PW", help="default: generate and print one"
    )
    org.add_argument("--json", action="store_true", help="print one JSON object")
    org.set_defaults(command=create_org)

    user = commands.add_parser("create-user", help="add a user to an organisation")
    user.add_argument("--org", required=True, metavar="ORG_ID")
    user.add_argument("--email", required=True)
    user.add_argument(
        "--role",
        required=True,
        choices=[role.value for role in Role],
        metavar="ROLE",
        help="admin, editor or viewer",
    )
    user.add_argument("--password", metavar="PW", help="default: generate one")
    user.add_argument("--json", action="store_true", help="print one JSON object")
    user.set_defaults(command=create_user)

    demo = commands.add_parser(
        "seed-demo", help="create a demo organisation if there is none"
    )
    demo.set_defaults(command=seed_demo)

    purging = commands.add_parser(
        "purge-audit", help="remove audit entries older than the retention period"
    )
    purging.add_argument(
        "--older-than-days",
        type=_positive,
        metavar="DAYS",
        help="default: AUDIT_RETENTION_DAYS (90)",
    )
    purging.set_defaults(command=purge_audit)

    re_encrypting = commands.add_parser(
        "re-encrypt",
        help="rewrite the stored secrets of every organisation under ENCRYPTION_KEY",
    )
    re_encrypting.set_defaults(command=re_encrypt)

    replaying = commands.add_parser(
        "replay",
        help="send a JSON-lines file of events through a pipeline's test events",
        description=(
            "Post the events of a JSON-lines file to a running service's test "
            f"events, in batches of up to {REPLAY_BATCH}. Credentials come from "
            f"{TOKEN_VARIABLE} (an access token) or --email and a password prompt."
        ),
    )
    events = replaying.add_mutually_exclusive_group(required=True)
    events.add_argument(
        "file", nargs="?", metavar="FILE", help="one JSON event per line"
    )
    events.add_argument(
        "--sample",
        action="store_true",
        help="replay the sample e-commerce events that ship with signal-admin",
    )
    replaying.add_argument(
        "--pipeline",
        required=True,
        metavar="PIPELINE_ID",
        help="the pipeline the events go through",
    )
    replaying.add_argument(
        "--rate",
        type=_events_per_second,
        metavar="N",
        help="events per second on average (default: as fast as the service answers)",
    )
    replaying.add_argument(
        "--url",
        type=_service_url,
        default=REPLAY_URL,
        help=f"the service's root URL (default: {REPLAY_URL})",
    )
    replaying.add_argument(
        "--email",
        help=f"sign in as this user with a password prompt (default: {TOKEN_VARIABLE})",
    )
    replaying.set_defaults(command=None, client=replay)
    return parser


if __name__ == "__main__":
    main()
