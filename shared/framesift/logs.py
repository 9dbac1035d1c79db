"""Structured JSON logs in the shape Cloud Logging parses from stdout.

Each record is one JSON line with ``severity``, ``message`` and, when the request carried a
``traceparent`` or ``X-Cloud-Trace-Context`` header, ``logging.googleapis.com/trace``, so the
log lines of one delivery are grouped in the Logs Explorer. Extra fields go in through
``extra={"fields": {...}}``.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

_trace: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace", default=None)
_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "log_context", default=None
)


def bind_trace(project: str, header: str | None) -> None:
    """Remember the trace of the current delivery from a W3C or Cloud trace header."""
    trace_id: str | None = None
    if header:
        # traceparent is version-traceid-spanid-flags; X-Cloud-Trace-Context is TRACE/SPAN;o=1
        trace_id = header.split("-")[1] if header.count("-") >= 3 else header.split("/")[0]
    _trace.set(f"projects/{project}/traces/{trace_id}" if trace_id else None)


def bind_context(**fields: Any) -> None:
    """Add fields (e.g. the video id) to every record logged in the current context."""
    _context.set({**(_context.get() or {}), **fields})


def clear_context() -> None:
    _context.set(None)
    _trace.set(None)


@contextmanager
def traced(project: str, header: str | None) -> Iterator[None]:
    """The logging context of one delivery or request: its trace, then a clean slate."""
    bind_trace(project, header)
    try:
        yield
    finally:
        clear_context()


class CloudLoggingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
            "logging.googleapis.com/sourceLocation": {
                "file": record.pathname,
                "line": record.lineno,
                "function": record.funcName,
            },
        }
        entry.update(_context.get() or {})
        entry.update(getattr(record, "fields", {}))
        if trace := _trace.get():
            entry["logging.googleapis.com/trace"] = trace
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class _CurrentStream(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler on ``sys.stdout`` or ``sys.stderr`` as it is when a record is written, not
    when logging was configured: a test runner or a CLI runner may have swapped it since (a
    closed stream then loses the record with "I/O operation on closed file")."""

    def __init__(self, name: Literal["stdout", "stderr"]) -> None:
        super().__init__()
        self._name = name

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        stream: TextIO = getattr(sys, self._name)
        return stream

    @stream.setter
    def stream(self, _: TextIO) -> None:
        """StreamHandler sets it; the stream is always looked up."""


def configure_logging(level: str = "INFO", to: Literal["stdout", "stderr"] = "stdout") -> None:
    """JSON lines on ``to``: stdout for a function (Cloud Logging reads it), stderr for the
    command line, whose stdout is its output (``--json`` prints one JSON document there)."""
    handler = _CurrentStream(to)
    handler.setFormatter(CloudLoggingFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The Google clients are chatty at INFO and may echo request details.
    for noisy in ("urllib3", "google", "grpc", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)
