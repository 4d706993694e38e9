"""Asking the model for its proposal, under a JSON schema so that what it writes always parses.

The request goes through the turn's own provider with
``response_format = json_schema`` (the embedded model turns the schema into a
llama.cpp grammar; upstreams pass it on as ``response_format``). Decoding is
greedy (temperature 0) and short (``max_tokens``), and bounded in time: a
grammar keeps every prefix valid, so text cut off by the token or time limit is
completed (open strings and brackets closed, a dangling element dropped) and
still parses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from hubbub.core.events import TextDelta, UsageReport
from hubbub.core.types import Message, ProviderRequest, ResponseFormat, SamplingParams, Usage
from hubbub.dsl import merge as mg
from hubbub.dsl.schema import Dsl, proposal_schema, proposal_to_dsl
from hubbub.providers.registry import CatalogEntry

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "You extract the data model of the app the user describes. Reply with JSON only: "
    "entities (singular PascalCase names, each with camelCase fields and a type) and relationships "
    "(many-to-one goes from the entity that holds the reference). Keep what the current model has "
    "unless the user changed it."
)


@dataclass
class Proposal:
    dsl: Dsl | None  # None: no usable answer
    usage: Usage
    text: str


def summary(dsl: Dsl | None, limit: int = 1500) -> str:
    """A compact, model-readable rendering: ``Post(title: string, authorId -> Author)``."""
    if dsl is None or not dsl.entities:
        return "(empty)"
    fks = mg.fk_fields(dsl)
    parts = []
    for name, fields in dsl.entities.items():
        shown = [f"{f}: {spec.type}" for f, spec in fields.items() if f != "id" and f not in fks.get(name, set())]
        parts.append(f"{name}({', '.join(shown)})")
    rels = [f"{r.source} {r.type} {r.target}" for r in dsl.relationships]
    text = "; ".join(parts) + (". Links: " + "; ".join(rels) if rels else "")
    return text[:limit]


def prompt(previous: Dsl | None, messages: list[Message], strong: bool) -> list[Message]:
    """The extraction prompt: the current model and the conversation (only the user's turns for a
    small model, whose own replies are more noise than evidence)."""
    budget = 6000 if strong else 1200
    turns = [m for m in messages if m.role != "system" and (strong or m.role == "user")]
    lines: list[str] = []
    used = 0
    for m in reversed(turns):
        line = f"{m.role}: {m.content.strip()}"
        if used + len(line) > budget:
            line = line[: max(0, budget - used)]
        lines.insert(0, line)
        used += len(line)
        if used >= budget:
            break
    body = f"Current model: {summary(previous)}\n\nConversation:\n" + "\n".join(lines) + "\n\nThe updated model:"
    return [Message("system", INSTRUCTIONS), Message("user", body)]


async def propose(
    entry: CatalogEntry, previous: Dsl | None, messages: list[Message], *, strong: bool, max_tokens: int,
    timeout: float, parts: list[str] | None = None,
) -> Proposal:
    """The model's proposal; ``dsl`` is None when the provider cannot do it or failed.

    ``parts`` (the caller's list) receives the text as it comes, so a caller that cancels the
    call still knows what was decoded (and bills it)."""
    params = SamplingParams(
        temperature=0.0, max_tokens=max_tokens, seed=0,
        response_format=ResponseFormat("json_schema", proposal_schema(rich=strong)),
    )
    request = ProviderRequest(model=entry.upstream_model, messages=prompt(previous, messages, strong), params=params)
    parts = [] if parts is None else parts
    usage = Usage()
    try:
        async with asyncio.timeout(timeout):
            async with contextlib.aclosing(entry.provider.stream(request)) as stream:  # type: ignore[type-var]
                async for event in stream:
                    if isinstance(event, TextDelta):
                        parts.append(event.text)
                    elif isinstance(event, UsageReport):
                        usage = event.usage
    except TimeoutError:
        log.info("dsl proposal cut off after %.1fs (%d chars)", timeout, sum(map(len, parts)))
    except Exception as exc:  # a failed proposal costs the analysis nothing
        log.warning("dsl proposal failed: %s", exc)
        return Proposal(None, usage, "".join(parts))
    text = "".join(parts)
    data = complete_json(text)
    return Proposal(proposal_to_dsl(data) if data is not None else None, usage, text)


def complete_json(text: str) -> Any:
    """Parse ``text``, or the longest prefix of it that can be closed into valid JSON."""
    text = text.strip()
    if not text:
        return None
    with contextlib.suppress(ValueError):
        return json.loads(text)
    cut = len(text)
    for _ in range(200):
        candidate = _close(text[:cut])
        if candidate is not None:
            with contextlib.suppress(ValueError):
                return json.loads(candidate)
        boundary = max(text.rfind(",", 0, cut), text.rfind("{", 0, cut), text.rfind("[", 0, cut))
        if boundary <= 0:
            return None
        cut = boundary if text[boundary] == "," else boundary + 1
    return None


def _close(prefix: str) -> str | None:
    """``prefix`` with its open string and brackets closed, trailing separators dropped."""
    stack: list[str] = []
    in_string = escaped = False
    for ch in prefix:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]":
            if not stack:
                return None
            stack.pop()
    out = prefix + ('"' if in_string else "")
    out = out.rstrip()
    while out.endswith((",", ":")):
        out = out[:-1].rstrip()
    return out + "".join(reversed(stack))
