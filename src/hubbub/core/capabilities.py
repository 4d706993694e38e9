"""Refusing, before any output, what the chosen model cannot honour (docs/api-decisions.md,
"Typed content"): an image part for a model without vision, tools for one without tool calling,
a JSON schema for one that cannot constrain its output. Each is a 400 naming the field, in the
dialect's shape — never a part or parameter silently dropped.

Reasoning parts of earlier assistant turns are the one deliberate exception: a model that takes
none is sent the turn without them (they stay stored), as Anthropic itself drops earlier turns'
thinking from the context.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hubbub.core.types import ImagePart, Message, SamplingParams, ToolCall, ToolResult, Tools
from hubbub.errors import FieldProblem, InvalidRequest

if TYPE_CHECKING:
    from hubbub.providers.registry import CatalogEntry


def check_capabilities(entry: "CatalogEntry", messages: list[Message], params: SamplingParams,
                       tools: Tools | None) -> None:
    caps = entry.provider.capabilities
    model = entry.info.id
    problems: list[FieldProblem] = []

    def refuse(field: str, what: str) -> None:
        problems.append(FieldProblem(field, f"{what} is not supported by the model '{model}'", "unsupported"))

    if tools is not None and tools.specs and not caps.tools:
        refuse("tools", "tool calling")
    for i, message in enumerate(messages):
        if message.is_plain_text:
            continue
        for part in message.parts:
            if isinstance(part, ImagePart) and not caps.images:
                refuse(f"messages.{i}.content", "image input")
            elif isinstance(part, (ToolCall, ToolResult)) and not caps.tools:
                refuse(f"messages.{i}", "a tool call or tool result")
            elif isinstance(part, ToolResult) and not caps.images and any(
                    isinstance(p, ImagePart) for p in part.parts):
                refuse(f"messages.{i}.content", "image input")
    fmt = params.response_format
    if fmt is not None and fmt.type != "text" and not caps.json_schema:
        refuse("response_format", f"response_format {fmt.type}")
    for name in asked_sampling(params):
        if name not in caps.sampling:
            refuse(name, name)
    if params.reasoning is not None and params.reasoning.mode != "disabled" and not caps.reasoning:
        refuse("thinking", "extended thinking")
    if problems:
        raise InvalidRequest(problems[0].message, problems)


def check_raw_prompt(entry: "CatalogEntry") -> None:
    """A raw text prompt (``/v1/completions``) needs a model that continues text without its chat
    template (``Capabilities.raw_prompt``): the embedded model, or an upstream with ``completions``."""
    if not entry.provider.capabilities.raw_prompt:
        model = entry.info.id
        raise InvalidRequest(f"raw text prompts are not supported by the model '{model}'", [FieldProblem(
            "model", f"raw text prompts (/v1/completions) are not supported by the model '{model}'; "
            "use /v1/chat/completions", "unsupported")])


def asked_sampling(params: SamplingParams) -> list[str]:
    """The optional sampling parameters ``params`` sets to something other than their neutral
    value (a client sending ``frequency_penalty: 0`` asks for nothing a model must honour)."""
    asked = []
    if params.top_k is not None:
        asked.append("top_k")
    if params.min_p:
        asked.append("min_p")
    if params.frequency_penalty:
        asked.append("frequency_penalty")
    if params.presence_penalty:
        asked.append("presence_penalty")
    if params.repetition_penalty is not None and params.repetition_penalty != 1.0:
        asked.append("repetition_penalty")
    if params.logit_bias:
        asked.append("logit_bias")
    if params.logprobs:
        asked.append("logprobs")
    return asked
