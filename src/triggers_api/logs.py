"""structlog, configured once at start, to stderr. Never logs keys or payloads.

``TRIGGERS_LOG_FORMAT``: ``json`` (one JSON object per line, for collectors), ``console``
(structlog's human-readable renderer), or ``auto`` (the default): console when stderr is a
terminal, JSON otherwise (systemd, containers, files). With tracing on, each line made inside a
span carries its ``trace_id`` and ``span_id``.
"""

from __future__ import annotations

import logging
import sys
import time

import orjson
import structlog
from structlog.typing import EventDict


class _StderrLogger:
    """One ``write`` per line to whatever ``sys.stderr`` is now (test runners and daemons swap it).

    Cheaper than structlog's ``PrintLogger`` (``print`` makes three calls and a flush per line):
    the access log writes one line per request, so its cost is paid thousands of times a second.
    """

    def msg(self, message: str) -> None:
        stream = sys.stderr
        stream.write(message + "\n")
        stream.flush()

    log = debug = info = warn = warning = error = err = critical = exception = fatal = failure = msg


def _stderr_logger(*_args: object) -> _StderrLogger:
    return _StderrLogger()


def _dumps(value: object, **_kwargs: object) -> str:
    """orjson (about 4x the standard library's speed); ``str`` for what it cannot encode."""
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


class _Clock:
    """``timestamp`` in ISO 8601 UTC with microseconds; the date-time part is formatted once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, _logger: object, _name: str, event: EventDict) -> EventDict:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        event["timestamp"] = f"{self._prefix}.{int((now - second) * 1_000_000):06d}Z"
        return event


#: Set by :func:`configure_logging`. The processor is always in the chain and reads this flag at
#: call time, because loggers cached on first use keep the chain they were built with: a logger
#: first used before tracing was switched on must still add the ids afterwards.
_trace_ids = False


def add_trace_ids(_logger: object, _name: str, event: EventDict) -> EventDict:
    """``trace_id``/``span_id`` of the current OpenTelemetry span (with tracing on)."""
    if not _trace_ids:
        return event
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event["trace_id"] = f"{context.trace_id:032x}"
        event["span_id"] = f"{context.span_id:016x}"
    return event


def wants_json(log_format: str) -> bool:
    """``auto``: JSON unless a person is watching (stderr is a terminal)."""
    if log_format == "auto":
        return not sys.stderr.isatty()
    return log_format == "json"


def configure_logging(level: str = "INFO", log_format: str = "auto", tracing: bool = False) -> None:
    numeric = logging.getLevelName(level)
    if not isinstance(numeric, int):
        numeric = logging.INFO
    json = wants_json(log_format)
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _Clock(),
    ]
    global _trace_ids
    _trace_ids = tracing
    processors.append(add_trace_ids)
    processors += [structlog.processors.format_exc_info, renderer] if json else [renderer]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=True,
    )
