"""How upstream failures are classified, for every upstream provider alike.

The channel router (``channels.py``) needs one question answered about any
failure: may the same request go to another channel? ``UpstreamUnavailable``
means yes (connect error, timeout, 429, 5xx, a stream cut short, a channel
whose key or model is refused); any other ``HubbubError`` means the request
itself is at fault and no other channel would do better.

    UpstreamError                      (errors.py)
    └── UpstreamUnavailable(kind, retry_after)   retryable on another channel

Error text never carries the API key: ``scrub`` removes it from anything an
upstream echoes back, and no URL is ever quoted (a user may put a key in one).
"""

from __future__ import annotations

import email.utils
import json
import math
import re
import time
from typing import Any, Literal

from hubbub.core.types import ImagePart, Message, ToolCall, ToolResult, Tools
from hubbub.errors import ContextTooLong, HubbubError, InvalidRequest, UpstreamError

FailureKind = Literal["connect", "timeout", "rate_limited", "server_error", "stream_broken", "rejected",
                      "busy", "internal"]
LOCAL_KINDS: frozenset[str] = frozenset({"busy", "internal"})  # hubbub's own trouble: not the channel's

# What a failure of each kind is, in words a client reads ("upstream stream cut; no channel could continue").
WHAT_FAILED: dict[str, str] = {
    "connect": "upstream connection failed",
    "timeout": "upstream stalled",
    "rate_limited": "upstream rate limited",
    "server_error": "upstream server error",
    "stream_broken": "upstream stream cut",
    "rejected": "upstream refused the key or model",
    "busy": "no free upstream connection",
    "internal": "hubbub failed on the upstream's answer",
}

_MAX_DETAIL = 300


class UpstreamUnavailable(UpstreamError):
    """The upstream could not serve this request now; another channel may."""

    def __init__(self, kind: FailureKind, details: str = "", retry_after: float | None = None,
                 upstream_status: int | None = None) -> None:
        super().__init__(WHAT_FAILED.get(kind, "upstream failed"), details=details, retry_after=retry_after,
                         upstream_status=upstream_status)
        self.kind = kind

    @property
    def local(self) -> bool:
        """hubbub's own trouble (a local limit, its own bug): never counted against the channel."""
        return self.kind in LOCAL_KINDS


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (now if now is not None else time.time())
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def scrub(text: str, secret: str | None) -> str:
    """``text`` cut to a readable length, with ``secret`` (the API key) masked out."""
    if secret:
        text = text.replace(secret, "***")
    return text[:_MAX_DETAIL]


_MAX_CTX = re.compile(r"(?:maximum context length is|context (?:window|length) of|>)\s*(\d+)", re.I)
_REQUESTED = re.compile(r"(?:requested|resulted in|prompt is too long:)\s*(\d+)", re.I)


def context_error(message: str, code: str | None = None) -> ContextTooLong | None:
    """``ContextTooLong`` from an upstream's 400 text when it says so with numbers (OpenAI, vLLM,
    llama.cpp and Anthropic word it alike enough), else None."""
    lowered = message.lower()
    if code != "context_length_exceeded" and "context" not in lowered and "too long" not in lowered:
        return None
    limit, asked = _MAX_CTX.search(message), _REQUESTED.search(message)
    if limit is None or asked is None:
        return None
    return ContextTooLong(int(limit.group(1)), int(asked.group(1)))


def from_status(status: int, message: str, *, code: str | None = None, retry_after: float | None = None,
                who: str = "upstream") -> HubbubError:
    """Map an upstream HTTP error status to the error tree (one place for every provider).

    429, 408 and 5xx are retryable elsewhere; so are 401/403/404 (this channel's key or
    model is wrong, another channel's may not be). Other 4xx are the request's fault.
    """
    details = f"{who} returned {status}" + (f": {message}" if message else "")
    if status == 429:
        return UpstreamUnavailable("rate_limited", details, retry_after, status)
    if status >= 500 or status == 408:
        return UpstreamUnavailable("server_error", details, retry_after, status)
    if status in (401, 403, 404):
        return UpstreamUnavailable("rejected", details, retry_after, status)
    too_long = context_error(message, code)
    if too_long is not None:
        return too_long
    if status in (400, 413, 422):
        return InvalidRequest(f"The upstream model rejected the request: {message or status}")
    return UpstreamError("Model error", details=details, upstream_status=status)


def error_message(body: Any) -> tuple[str, str | None]:
    """(message, code) from an upstream error body in OpenAI's or Anthropic's shape, or plain text."""
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            message = err.get("message") or err.get("detail") or ""
            code = err.get("code") or err.get("type")
            return str(message), str(code) if code is not None else None
        if isinstance(err, str):
            return err, None
        detail = body.get("detail")
        if detail is not None:
            return str(detail), None
    if isinstance(body, (str, bytes)):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        return text.strip(), None
    return "", None


# -- token estimates for upstreams whose tokenizer we do not have -------------------------------


def estimate_text_tokens(text: str) -> int:
    """About four bytes of UTF-8 per token: what we bill when an upstream sends no usage."""
    if not text:
        return 0
    return max(1, round(len(text.encode("utf-8")) / 4))


# What an image costs a vision model, at most for one high-detail tile set (OpenAI counts 765 for a
# 1024×1024 image): an estimate on the high side, so that a prompt judged to fit does fit.
IMAGE_TOKENS = 765


def estimate_prompt_tokens(messages: list[Message]) -> int:
    """A deliberately high estimate (three bytes per token, plus each message's framing), so that
    a prompt judged to fit does fit; the upstream's own count, when it sends one, is what is billed."""
    total = 3
    for m in messages:
        size = 0
        for part in m.parts:
            if isinstance(part, ImagePart):
                total += IMAGE_TOKENS
            elif isinstance(part, ToolCall):
                size += len(part.name) + len(part.arguments.encode("utf-8")) + 16
            elif isinstance(part, ToolResult):
                size += len(part.text.encode("utf-8")) + 16
                total += IMAGE_TOKENS * sum(isinstance(p, ImagePart) for p in part.parts)
            else:
                size += len(getattr(part, "text", "").encode("utf-8"))
        total += 4 + math.ceil(size / 3)
    return total


def estimate_tools_tokens(tools: Tools | None) -> int:
    """The tool definitions a prompt carries, estimated like the messages (three bytes a token)."""
    if tools is None or not tools.specs:
        return 0
    size = sum(len(json.dumps([t.name, t.description, t.parameters])) for t in tools.specs)
    return 16 + math.ceil(size / 3)
