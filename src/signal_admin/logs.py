"""structlog set-up: events with fields, the request id from contextvars, JSON
in production and readable lines in development."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

from signal_admin.config import Settings


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    level = logging.getLevelNamesMapping().get(settings.log_level.upper(), logging.INFO)
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
    server_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, SocketQueriesHidden) for f in server_log.filters):
        server_log.addFilter(SocketQueriesHidden())


class SocketQueriesHidden(logging.Filter):
    """Drops the query string from the server's lines about WebSocket
    handshakes (`"WebSocket /v1/admin/debug/live?token=…" [accepted]`): a
    client may put a token there, and logs must never hold one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            isinstance(record.msg, str)
            and '"WebSocket %s"' in record.msg
            and isinstance(record.args, tuple)
            and len(record.args) >= 2
            and isinstance(record.args[1], str)
        ):
            path, _, _ = record.args[1].partition("?")
            record.args = (record.args[0], path, *record.args[2:])
        return True
