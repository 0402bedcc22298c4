"""Log lines: JSON events with fields in production."""

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from signal_admin.config import Settings
from signal_admin.logs import SocketQueriesHidden, configure_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.mark.usefixtures("restore_logging")
def test_production_logs_are_one_json_object_per_line_with_the_request_id() -> None:
    stream = io.StringIO()
    configure_logging(Settings(signal_env="production"), stream)
    structlog.contextvars.bind_contextvars(request_id="req-9")

    structlog.get_logger("test").info("pipeline.created", pipeline_id="pip_1")
    structlog.contextvars.unbind_contextvars("request_id")

    line = json.loads(stream.getvalue().strip())
    assert line["event"] == "pipeline.created"
    assert line["pipeline_id"] == "pip_1"
    assert line["request_id"] == "req-9"
    assert line["level"] == "info"
    assert line["timestamp"].endswith("Z")


@pytest.mark.usefixtures("restore_logging")
def test_development_logs_are_readable_lines() -> None:
    stream = io.StringIO()
    configure_logging(Settings(), stream)

    structlog.get_logger("test").info("pipeline.created", pipeline_id="pip_1")

    output = stream.getvalue()
    assert "pipeline.created" in output
    assert "pipeline_id=pip_1" in output
    assert not output.lstrip().startswith("{")


def test_websocket_handshake_lines_never_show_the_query_string() -> None:
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5000", "/v1/admin/debug/live?token=eyJsecret"),
        None,
    )

    kept = SocketQueriesHidden().filter(record)

    assert kept
    assert record.getMessage() == (
        '127.0.0.1:5000 - "WebSocket /v1/admin/debug/live" [accepted]'
    )
