"""Log lines for ``hubbub serve``: one JSON object per line, or plain text, both with the request id.

The request id (``X-Request-Id``, set by ``middleware.RequestMiddleware``) lives in a context
variable for the whole request, so every line logged while serving it carries it, from any module,
also from tasks the request starts (they copy its context). Fields of a JSON line: ``timestamp``
(UTC, ISO 8601, milliseconds), ``level``, ``logger``, ``message``, ``request_id`` inside a request,
``exception`` with a traceback, and whatever the call passed as ``extra={...}``.

``auto`` (the default) writes text to a terminal and JSON anywhere else (a file, a pipe, a log
collector), as Caddy does: people read the first, machines the second.

No secret reaches a line (issue 22, docs/security.md): both formats pass their finished line through
``redact``, which masks key-carrying query parameters (uvicorn logs a WebSocket's path *with* its
query string, and ``?api_key=`` is how a browser can authenticate one), bearer tokens, hubbub's own
keys wherever they appear, and passwords in URLs. It works on the finished text, so it covers every
logger (uvicorn's included), the arguments, the extra fields and tracebacks alike.
"""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any, TextIO

import orjson

request_id: ContextVar[str | None] = ContextVar("hubbub_request_id", default=None)

# Attributes every LogRecord has; anything else on a record came from ``extra=``
# (except uvicorn's ``color_message``, its message again with terminal colours).
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "request_id", "color_message"}


MASK = "***"
# Query parameters whose value is a credential (matched case-insensitively, in any URL in a line).
SECRET_PARAMS = ("api_key", "api-key", "apikey", "key", "token", "access_token", "auth", "password", "secret")
_SECRETS = re.compile(
    r"(?i)"
    r"(?P<param>[?&;](?:" + "|".join(re.escape(p) for p in SECRET_PARAMS) + r")=)[^&;#\s\"'\\]*"
    r"|(?P<bearer>\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]+"
    r"|(?P<userinfo>://[^/\s:@\"']*:)[^@/\s\"']*@"
    r"|\bhb_[A-Za-z0-9_-]{20,}"  # a hubbub key (storage/keys.py: "hb_" + 43 url-safe characters)
)


def _mask(match: re.Match[str]) -> str:
    if match["param"]:
        return match["param"] + MASK
    if match["bearer"]:
        return match["bearer"] + MASK
    if match["userinfo"]:
        return match["userinfo"] + MASK + "@"
    return MASK


def redact(text: str) -> str:
    """``text`` with every credential it carries replaced by ``***`` (see the module docstring)."""
    return _SECRETS.sub(_mask, text)


class RequestIdFilter(logging.Filter):
    """Stamps each record with the current request's id (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.get()
        return True


def _extra(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid is not None:
            line["request_id"] = rid
        for key, value in _extra(record).items():
            line.setdefault(key, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return redact(orjson.dumps(line, default=str).decode())


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value… [request_id]``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = " ".join(f"{k}={v}" for k, v in _extra(record).items())
        rid = getattr(record, "request_id", None)
        head, sep, rest = text.partition("\n")  # a traceback stays below the line it belongs to
        head += (" " + extra if extra else "") + (f" [{rid}]" if rid else "")
        return redact(head + sep + rest)


def configure(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> logging.Handler:
    """Send every logger's records (uvicorn's too) to ``stream`` (stderr) in ``fmt``; returns the handler."""
    stream = stream or sys.stderr
    if fmt == "auto":
        fmt = "text" if stream.isatty() else "json"
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
