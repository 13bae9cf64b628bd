"""structlog, configured once at start: JSON lines to stderr. Never logs keys or payloads."""

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


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    numeric = logging.getLevelName(level)
    if not isinstance(numeric, int):
        numeric = logging.INFO
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(serializer=_dumps) if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _Clock(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=True,
    )
