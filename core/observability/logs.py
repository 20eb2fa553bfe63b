"""Log lines, for people (`text`) or for log pipelines (`json`), standard library only.

Every line names its time, level, logger and message, plus the request id, message id
and account id of the work in hand when they are known (core.observability.context). JSON lines are
one object each:

    {"time": "2026-01-02T03:04:05.678Z", "level": "INFO", "logger": "postwire.rpc",
     "message": "Send OK 4.1 ms", "request_id": "9f0c...", "account_id": 1, ...}

Fields given with `extra=` appear as keys of their own. Nothing here knows what a
secret is, so the code never logs API keys, passwords or bodies; as a safety net,
anything shaped like an API key (`pw_live_...`, `pw_test_...`) is cut to its
16-character public prefix in every line.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from core.observability import context

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_API_KEY = re.compile(r"\bpw_(?:live|test)_[A-Za-z0-9]{8,}")
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


def redact(text: str) -> str:
    """`text` with every API key cut to its public prefix."""
    if "pw_" not in text:
        return text
    return _API_KEY.sub(lambda m: m.group(0)[:16] + "…", text)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(context.current())
        for key, value in _extras(record).items():
            line.setdefault(key, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return redact(json.dumps(line, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """The classic line, with the context appended: `... [request_id=... message_id=...]`."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        known = context.current()
        if known:
            suffix = " [" + " ".join(f"{k}={v}" for k, v in known.items()) + "]"
            head, newline, tail = text.partition("\n")  # before a traceback, if any
            text = head + suffix + newline + tail
        return redact(text)


def formatter(log_format: str) -> logging.Formatter:
    if log_format not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {log_format!r}")
    return JsonFormatter() if log_format == "json" else TextFormatter()


def setup_logging(log_format: str = "text", level: str | int = "INFO") -> None:
    """Send every log record to stderr, one line each (plus a traceback in text)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    logging.basicConfig(level=level, handlers=[handler], force=True)
