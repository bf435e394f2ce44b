"""The server's log lines: aiohttp-style text (the default) or, with `SPSP_LOG_FORMAT=json`, one JSON object
per line with `time`, `level`, `logger`, `message`, and the `request_id` of the HTTP request it belongs to.

A line belongs to a request when it is logged while the request is handled (`REQUEST_ID` is set), or when it
names the request itself (the access log passes `extra={"request_id": ...}`).
"""

from __future__ import annotations

import json
import logging
import time
from contextvars import ContextVar
from typing import Final

LOG_FORMATS: Final = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (JSON escapes the newlines of messages and tracebacks)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": _utc_text(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


def _utc_text(created: float) -> str:
    """ISO 8601 UTC with milliseconds and `Z`: 2026-01-31T12:00:00.123Z."""
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{millis:03d}Z"


def configure_logging(level: str, log_format: str = "text") -> None:
    """Log at `level` to stderr in `log_format` (one of `LOG_FORMATS`), replacing any earlier set-up."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format {log_format!r}: use one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
