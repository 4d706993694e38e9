"""Message parts <-> plain JSON, for what leaves the process: stored messages and stream buffers.

The JSON is hubbub's own (not any dialect's wire form), small and lossless: every field of every
part survives a round trip, opaque signatures included.
"""

from __future__ import annotations

from typing import Any, Iterable

from hubbub.core.types import ImagePart, Part, ReasoningPart, TextPart, ToolCall, ToolResult


def part_to_json(part: Part) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ImagePart):
        return {"type": "image", "url": part.url, **({"detail": part.detail} if part.detail else {})}
    if isinstance(part, ToolCall):
        return {"type": "tool_call", "id": part.id, "name": part.name, "arguments": part.arguments}
    if isinstance(part, ToolResult):
        body: dict[str, Any] = {"type": "tool_result", "call_id": part.call_id, "parts": parts_to_json(part.parts)}
        if part.is_error:
            body["is_error"] = True
        return body
    if isinstance(part, ReasoningPart):
        body = {"type": "reasoning", "text": part.text}
        if part.signature is not None:
            body["signature"] = part.signature
        if part.redacted is not None:
            body["redacted"] = part.redacted
        return body
    raise TypeError(f"not a message part: {part!r}")


def part_from_json(body: dict[str, Any]) -> Part:
    kind = body.get("type")
    if kind == "text":
        return TextPart(body["text"])
    if kind == "image":
        return ImagePart(body["url"], body.get("detail"))
    if kind == "tool_call":
        return ToolCall(body["id"], body["name"], body.get("arguments", "{}"))
    if kind == "tool_result":
        inner = tuple(p for p in parts_from_json(body.get("parts", ())) if isinstance(p, (TextPart, ImagePart)))
        return ToolResult(body["call_id"], inner, bool(body.get("is_error", False)))
    if kind == "reasoning":
        return ReasoningPart(body.get("text", ""), body.get("signature"), body.get("redacted"))
    raise ValueError(f"unknown part type {kind!r}")


def parts_to_json(parts: Iterable[Part]) -> list[dict[str, Any]]:
    return [part_to_json(p) for p in parts]


def parts_from_json(data: Iterable[dict[str, Any]]) -> tuple[Part, ...]:
    return tuple(part_from_json(b) for b in data)
