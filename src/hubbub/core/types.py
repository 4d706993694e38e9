"""Domain types shared by the core, providers, storage and dialects.

These are plain dataclasses: no wire names, no ORM rows (STYLE.md §5).

A message is a role and a tuple of typed parts (STYLE.md §11)::

    Message
    ├── role: system | user | assistant | tool
    └── parts
        ├── TextPart(text)
        ├── ImagePart(url)                     an https URL or a data: URL
        ├── ToolCall(id, name, arguments)      assistant: a call, arguments as JSON text
        ├── ToolResult(call_id, parts)         tool: the answer to one call (text and images)
        └── ReasoningPart(text, signature, redacted)
                                               assistant: thinking; a provider's signature or
                                               redacted data is kept opaque, byte for byte

Every dialect maps its wire form to these and back; providers say which kinds they accept
(``providers/base.Capabilities``) and the pipeline refuses a part a model cannot take with a
400 naming it, never a silent drop (docs/api-decisions.md, "Typed content").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Union

Role = Literal["system", "user", "assistant", "tool"]
MessageStatus = Literal["streaming", "complete", "stopped", "interrupted", "error"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "cancelled", "error"]


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image by URL: ``https://…`` or ``data:<media type>;base64,<data>``."""

    url: str
    detail: str | None = None  # OpenAI's "low" | "high" | "auto", passed on as given

    @property
    def media_type(self) -> str | None:
        if not self.url.startswith("data:"):
            return None
        return self.url[5:].split(";", 1)[0].split(",", 1)[0] or None

    @property
    def base64_data(self) -> str | None:
        """The data of a ``data:…;base64,`` URL (None for a plain URL)."""
        head, sep, data = self.url.partition(",")
        return data if sep and head.startswith("data:") and head.endswith(";base64") else None


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the model made: ``arguments`` is the JSON text exactly as it was produced."""

    id: str
    name: str
    arguments: str = "{}"


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool returned for the call ``call_id``: text (and, where a dialect allows, images)."""

    call_id: str
    parts: tuple["TextPart | ImagePart", ...] = ()
    is_error: bool = False

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))


@dataclass(frozen=True, slots=True)
class ReasoningPart:
    """A model's reasoning. ``signature`` (Anthropic's thinking signature) and ``redacted``
    (the data of a redacted_thinking block) are opaque: stored and sent back unchanged."""

    text: str = ""
    signature: str | None = None
    redacted: str | None = None


Part = Union[TextPart, ImagePart, ToolCall, ToolResult, ReasoningPart]


def as_parts(content: "str | Iterable[Part] | None") -> tuple[Part, ...]:
    if content is None:
        return ()
    if isinstance(content, str):
        return (TextPart(content),) if content else ()
    return tuple(content)


@dataclass(frozen=True, init=False)
class Message:
    """A role and its parts. ``Message("user", "Hi")`` is one text part."""

    role: Role
    parts: tuple[Part, ...]
    name: str | None = None

    def __init__(self, role: Role, content: "str | Iterable[Part] | None" = None, name: str | None = None) -> None:
        object.__setattr__(self, "role", role)
        object.__setattr__(self, "parts", as_parts(content))
        object.__setattr__(self, "name", name)

    @property
    def text(self) -> str:
        """The text parts, joined (what a text-only reader sees)."""
        parts = self.parts
        if len(parts) == 1 and type(parts[0]) is TextPart:
            return parts[0].text
        return "".join(p.text for p in parts if isinstance(p, TextPart))

    @property
    def content(self) -> str:
        """The same as ``text``: for code that only ever reads a message's text."""
        return self.text

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [p for p in self.parts if isinstance(p, ToolCall)]

    @property
    def is_plain_text(self) -> bool:
        return all(type(p) is TextPart for p in self.parts)


@dataclass(frozen=True)
class ToolSpec:
    """A function the model may call: its JSON-schema ``parameters`` as the client sent them."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}},
                                       hash=False, compare=True)
    strict: bool | None = None


@dataclass(frozen=True)
class ToolChoice:
    """``auto`` (text or calls), ``none`` (text only), ``required`` (at least one call), or
    ``named`` (a call of ``name``)."""

    mode: Literal["auto", "none", "required", "named"] = "auto"
    name: str | None = None


@dataclass(frozen=True)
class Tools:
    """The tools offered for one request."""

    specs: tuple[ToolSpec, ...]
    choice: ToolChoice = ToolChoice()
    parallel: bool = True

    def get(self, name: str) -> ToolSpec | None:
        return next((t for t in self.specs if t.name == name), None)


@dataclass
class ResponseFormat:
    """``json_object``: any JSON object; ``json_schema``: JSON valid against ``schema``."""

    type: Literal["text", "json_object", "json_schema"] = "text"
    schema: dict[str, Any] | None = None


@dataclass(frozen=True)
class Reasoning:
    """Extended thinking asked for: ``enabled`` with a token ``budget``, ``adaptive`` (the model
    decides how much) or ``disabled``; ``display`` ("summarized", "omitted") passed on as given.
    Only a provider with the ``reasoning`` capability honours it (core/capabilities.py)."""

    mode: Literal["enabled", "adaptive", "disabled"] = "enabled"
    budget: int | None = None
    display: str | None = None


@dataclass(frozen=True)
class TopLogprob:
    """One candidate token at one position: its text, log-probability and raw bytes."""

    token: str
    logprob: float
    bytes: tuple[int, ...] = ()


@dataclass(frozen=True)
class TokenLogprob:
    """The chosen token at one position, with the ``top`` most likely candidates there
    (docs/sampling.md says which distribution the numbers come from)."""

    token: str
    logprob: float
    bytes: tuple[int, ...] = ()
    top: tuple[TopLogprob, ...] = ()


@dataclass
class SamplingParams:
    """How to sample. Every optional knob is None when the request did not set it: the provider
    then uses the model's default (the embedded model's repetition control, docs/sampling.md).
    The optional ones are honoured only by a provider listing their name in
    ``Capabilities.sampling``; a non-neutral value for another provider is a 400 naming it
    (core/capabilities.py)."""

    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int | None = None  # None: the model's default answer length (core/service.py)
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    response_format: ResponseFormat | None = None
    top_k: int | None = None
    reasoning: Reasoning | None = None
    min_p: float | None = None
    frequency_penalty: float | None = None  # OpenAI's: -2..2, per occurrence so far
    presence_penalty: float | None = None  # OpenAI's: -2..2, once a token has occurred
    repetition_penalty: float | None = None  # llama.cpp / vLLM: logits divided by it (1: off)
    logit_bias: dict[int, float] | None = None  # token id -> bias added to its logit
    logprobs: bool = False  # report the chosen tokens' log-probabilities
    top_logprobs: int = 0  # and this many alternatives at each position (0..20)


@dataclass
class ProviderRequest:
    """What a provider is asked to do: continue ``messages`` with the upstream model name."""

    model: str
    messages: list[Message]
    params: SamplingParams
    assistant_prefix: str = ""  # continue an answer already begun (failover)
    tools: Tools | None = None
    # A raw text prompt to continue as it is, no chat template (``/v1/completions``); ``messages``
    # is then empty. Only providers with ``Capabilities.raw_prompt`` get one.
    prompt: str | None = None


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ModelInfo:
    """One entry of the model catalog."""

    id: str
    name: str
    context_length: int
    pricing_prompt: float = 0.0  # USD per 1K tokens
    pricing_completion: float = 0.0
    owned_by: str = "hubbub"
    created: int = 0
    # The answer length used when a request names none (docs/configuration.md, "Answer length").
    default_max_tokens: int = 1024

    def cost(self, usage: Usage) -> float:
        return (usage.prompt_tokens * self.pricing_prompt + usage.completion_tokens * self.pricing_completion) / 1000.0


@dataclass
class Bot:
    """A bot (a "preset" in the conversations dialect): a system prompt plus settings."""

    uid: str
    slug: str
    name: str
    system_prompt: str = ""
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    rag_enabled: bool = False
    description: str = ""
    owner: str | None = None
    created_at: int = 0
    updated_at: int = 0
    # Default tools, offered when a request names none (docs/tool-calling.md); None: no tools.
    tools: tuple[ToolSpec, ...] | None = None


@dataclass
class StoredMessage:
    id: str
    conversation_id: str
    role: Role
    content: str  # the text parts joined (what lists, titles and search read)
    status: MessageStatus = "complete"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str | None = None
    created_at: int = 0  # epoch milliseconds
    updated_at: int = 0
    parts: tuple[Part, ...] | None = None  # every part; None: the message is its text alone

    def as_message(self) -> Message:
        return Message(self.role, self.parts if self.parts is not None else self.content)


@dataclass
class Conversation:
    """A stored chat. ``kind`` is ``chat`` (builder) or ``conversation`` (conversations)."""

    id: str
    kind: str = "conversation"
    owner: str | None = None
    user_id: str | None = None
    group_id: str | None = None
    preset: str | None = None
    model: str | None = None
    title: str = ""
    dsl: dict[str, Any] | None = None
    phase: str | None = None
    created_at: int = 0
    updated_at: int = 0
    message_count: int = 0
    last_message: str | None = None


@dataclass
class UsageRecord:
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost: float
    owner: str | None = None
    user_id: str | None = None
    conversation_id: str | None = None
    message_id: str | None = None
    request_id: str | None = None
    created_at: int = 0


@dataclass(frozen=True)
class Source:
    """A retrieved passage put into a prompt (RAG): which document, and the text used."""

    document_id: str
    title: str
    text: str
    score: float = 0.0
    heading: str = ""


def evolve(obj: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` for the request path's own dataclasses (``SamplingParams``,
    ``ProviderRequest``): a copy of the instance's ``__dict__`` with ``changes`` set, without
    ``replace``'s walk over the fields and its ``__init__`` call (about 8 µs each, three per
    proxied request: docs/benchmarks.md, gateway overhead). Only for plain dataclasses with no
    ``__post_init__``; anything else goes through ``replace``."""
    if not hasattr(obj, "__dict__") or hasattr(obj, "__post_init__"):
        return dataclasses.replace(obj, **changes)
    new = object.__new__(type(obj))
    new.__dict__.update(obj.__dict__)
    new.__dict__.update(changes)
    return new
