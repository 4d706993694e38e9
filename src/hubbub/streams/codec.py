"""Core events <-> compact JSON, for buffers that leave the process (Redis)."""

from __future__ import annotations

from typing import Any

import orjson

from hubbub.core.events import (
    ChatCreated,
    Done,
    DslUpdate,
    ErrorEvent,
    Event,
    Finish,
    PhaseChange,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    UsageReport,
)
from hubbub.core.types import Usage


def encode(event: Event) -> bytes:
    body: dict[str, Any]
    if isinstance(event, TextDelta):
        body = {"t": "text", "x": event.text}
    elif isinstance(event, UsageReport):
        body = {"t": "usage", "p": event.usage.prompt_tokens, "c": event.usage.completion_tokens}
    elif isinstance(event, ToolCallDelta):
        body = {"t": "tool", "i": event.index, "a": event.arguments}
        if event.id is not None:
            body["id"] = event.id
        if event.name is not None:
            body["n"] = event.name
    elif isinstance(event, ReasoningDelta):
        body = {"t": "reason", "x": event.text}
        if event.signature is not None:
            body["s"] = event.signature
        if event.redacted is not None:
            body["r"] = event.redacted
    elif isinstance(event, Finish):
        body = {"t": "finish", "r": event.reason}
        if event.stop_sequence is not None:
            body["s"] = event.stop_sequence
    elif isinstance(event, ChatCreated):
        body = {"t": "chat", "id": event.chat_id}
    elif isinstance(event, DslUpdate):
        body = {"t": "dsl", "d": event.dsl}
    elif isinstance(event, PhaseChange):
        body = {"t": "phase", "p": event.phase}
    elif isinstance(event, ErrorEvent):
        body = {"t": "error", "code": event.code, "m": event.message}
    elif isinstance(event, Done):
        body = {"t": "done", "s": event.status, "p": event.usage.prompt_tokens, "c": event.usage.completion_tokens}
    else:  # pragma: no cover - every event type is listed above
        raise TypeError(f"cannot encode {event!r}")
    return orjson.dumps(body)


def decode(raw: bytes | str) -> Event:
    body = orjson.loads(raw)
    kind = body["t"]
    if kind == "text":
        return TextDelta(body["x"])
    if kind == "usage":
        return UsageReport(Usage(body["p"], body["c"]))
    if kind == "tool":
        return ToolCallDelta(body["i"], body.get("id"), body.get("n"), body["a"])
    if kind == "reason":
        return ReasoningDelta(body["x"], body.get("s"), body.get("r"))
    if kind == "finish":
        return Finish(body["r"], body.get("s"))
    if kind == "chat":
        return ChatCreated(body["id"])
    if kind == "dsl":
        return DslUpdate(body["d"])
    if kind == "phase":
        return PhaseChange(body["p"])
    if kind == "error":
        return ErrorEvent(body["code"], body["m"])
    if kind == "done":
        return Done(body["s"], Usage(body["p"], body["c"]))
    raise ValueError(f"unknown event kind {kind!r}")
