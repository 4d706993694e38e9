"""OpenAI wire models (requests). Unknown fields are ignored.

Every number has a range (issue 22): what the OpenAI API family accepts, so nothing a client
sends can fail in hubbub's own encoding of an upstream request (docs/security.md).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MAX = 2**31 - 1


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ImageURL(_Wire):
    url: str = Field(min_length=1)
    detail: str | None = None


class ContentPart(_Wire):
    """A content part; ``text`` and ``image_url`` are understood, any other type is refused by name
    (adapter.to_messages), never dropped."""

    type: str
    text: str | None = None
    image_url: ImageURL | None = None
    refusal: str | None = None


class FunctionCallIn(_Wire):
    name: str = Field(min_length=1)
    arguments: str = ""


class ToolCallIn(_Wire):
    id: str = Field(min_length=1)
    type: Literal["function"] = "function"
    function: FunctionCallIn


class ChatMessageIn(_Wire):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = None  # assistant
    tool_call_id: str | None = None  # tool


class FunctionSpec(_Wire):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolIn(_Wire):
    type: Literal["function"]
    function: FunctionSpec


class NamedFunction(_Wire):
    name: str = Field(min_length=1)


class NamedToolChoice(_Wire):
    type: Literal["function"]
    function: NamedFunction


class StreamOptions(_Wire):
    include_usage: bool = False


class JsonSchemaSpec(_Wire):
    name: str = "response"
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormatIn(_Wire):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaSpec | None = None


class ChatCompletionRequest(_Wire):
    model: str = Field(min_length=1)
    messages: list[ChatMessageIn] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    # Also at most ``max_tokens_cap`` (the core's check); this bound names the field the client sent.
    max_tokens: int | None = Field(default=None, ge=1, le=INT32_MAX)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=INT32_MAX)
    stop: str | list[str] | None = None
    seed: int | None = Field(default=None, ge=INT64_MIN, le=INT64_MAX)  # int64, as OpenAI and vLLM take it
    # At most the server's max_choices (adapter.to_params names the limit); 128 is OpenAI's own.
    n: int | None = Field(default=None, ge=1, le=128)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None  # token id (as a string) -> -100..100
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    # Extensions vLLM and llama.cpp's server accept (docs/sampling.md).
    top_k: int | None = Field(default=None, ge=-1, le=INT32_MAX)
    min_p: float | None = Field(default=None, ge=0, le=1)
    repetition_penalty: float | None = Field(default=None, gt=0, le=10)
    response_format: ResponseFormatIn | None = None
    user: str | None = None
    tools: list[ToolIn] | None = Field(default=None, description=(
        "Function tools the model may call (JSON-schema `parameters`, `strict`). With a bot "
        "(`model: \"@slug\"`) and no tools, the bot's default tools. On the embedded model calls are "
        "grammar-constrained to the schemas, within bounds (docs/tool-calling.md)."))
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = Field(default=None, description=(
        "`auto` (text or calls; the default with tools), `none` (text only), `required` (at least one "
        "call) or `{\"type\": \"function\", \"function\": {\"name\": ...}}` (that function)."))
    parallel_tool_calls: bool | None = Field(default=None, description=(
        "Whether the model may make several calls in one answer (default true); false: at most one."))
    rag: bool = False

    @field_validator("logit_bias")
    @classmethod
    def _token_ids(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for key, bias in (value or {}).items():
            if not key.lstrip("-").isdigit() or len(key) > 12:
                raise ValueError(f"keys must be token ids (integers as strings), not {key[:40]!r}")
            if not -100 <= bias <= 100:
                raise ValueError(f"the bias of token {key} must be between -100 and 100")
        return value

    @field_validator("stop")
    @classmethod
    def _at_most_four(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop sequences are allowed")
        return value
