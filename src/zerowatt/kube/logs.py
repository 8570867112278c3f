"""Structured logs for the controller: ``key=value`` lines for people, one JSON object a line with --json-logs.

Call sites pass their structured data as ``extra={"fields": {...}}`` so both formats carry the same keys
(object, action, from, to, reason, error) and log pipelines can index them.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update(getattr(record, "fields", {}) or {})
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


class TextFormatter(logging.Formatter):
    _second = -1
    _stamp = ""

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:  # a pass logs thousands of lines a second: format the time once each
            self._second, self._stamp = second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%d %H:%M:%S")
        stamp = self._stamp
        fields = getattr(record, "fields", {}) or {}
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        text = f"{stamp} {record.levelname} {record.getMessage()}" + (f" {extra}" if extra else "")
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def lean_records() -> None:
    """Skip what no zerowatt log line shows (caller's file and line, thread, process names): for the
    ``zerowatt downscaler`` process only, which logs a line per change (the logging HOWTO's "Optimization")."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def configure(json_logs: bool, debug: bool = False) -> None:
    """Send the ``zerowatt.kube`` logger to stderr in the chosen format (idempotent)."""
    logger = logging.getLogger("zerowatt.kube")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_logs else TextFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    logger.propagate = False
