"""Logging: human text or one JSON object per line, with run context and secret redaction.

Every line logged during a run carries its `run_id`, and lines about one
source carry `source` and `account_id` (set with `log_context`). Secrets known
to the settings are replaced by `***` in every line, whatever logger emitted it
(urllib3's DEBUG output included), because redaction happens in the handler's
formatter.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

from etl.errors import redact

_CONTEXT: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "log_context", default=None
)
_CONTEXT_KEYS = ("run_id", "source", "account_id")


@contextlib.contextmanager
def log_context(**values: Any) -> Iterator[None]:
    """Attach values (run_id, source, account_id) to every log line inside the block."""
    token = _CONTEXT.set({**(_CONTEXT.get() or {}), **values})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_CONTEXT.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class _RedactingFormatter(logging.Formatter):
    def __init__(self, secrets: Iterable[str], fmt: str | None = None) -> None:
        super().__init__(fmt)
        # Secrets shorter than 4 characters would mask ordinary words in every line.
        self._secrets = [s for s in secrets if len(s) >= 4]

    def redact(self, text: str) -> str:
        """The line with secrets and credential-looking Authorization values masked."""
        return redact(text, self._secrets)


class TextFormatter(_RedactingFormatter):
    """`2026-11-23T10:15:00Z INFO  etl.pipeline [run 7 sinch/8888123] message`."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        where = " ".join(
            part
            for part in (
                f"run {getattr(record, 'run_id', '')}" if getattr(record, "run_id", None) else "",
                "/".join(
                    str(v)
                    for v in (getattr(record, "source", None), getattr(record, "account_id", None))
                    if v
                ),
            )
            if part
        )
        line = f"{stamp} {record.levelname:<7} {record.name}"
        if where:
            line += f" [{where}]"
        line += f" {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return self.redact(line)


_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(_RedactingFormatter):
    """One JSON object per line: ts, level, logger, message, run context and extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return self.redact(json.dumps(payload, default=str))


def setup_logging(
    *,
    level: str = "INFO",
    fmt: str = "text",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Configure the root logger once per process (idempotent: replaces our handler)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_numbers_etl", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._numbers_etl = True  # type: ignore[attr-defined]
    formatter = JsonFormatter(secrets) if fmt == "json" else TextFormatter(secrets)
    handler.setFormatter(formatter)
    handler.addFilter(_ContextFilter())
    root.addHandler(handler)
    root.setLevel(level)
    # Third-party chatter stays at WARNING unless DEBUG was asked for.
    for noisy in ("urllib3", "alembic", "apscheduler", "sqlalchemy", "pgserver"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
