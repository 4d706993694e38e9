"""OpenAI Responses API wire models (requests). Unknown fields are ignored; fields that would
change the answer and that hubbub cannot honour are refused by name (adapter.check_unsupported).

``input`` items and ``tools`` arrive as plain objects and are validated one by one in the
adapter (``adapter.to_messages``, ``adapter.to_tools``): a built-in tool or an item type hubbub
does not serve is then a 400 naming ``tools.N.type`` / ``input.N.type``, not a union error.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


# -- input items ----------------------------------------------------------------------


class InputTextPart(_Wire):
    type: Literal["input_text"]
    text: str


class InputImagePart(_Wire):
    type: Literal["input_image"]
    image_url: str | None = None
    file_id: str | None = None
    detail: Literal["low", "high", "auto", "original"] | None = None


class OutputTextPart(_Wire):
    type: Literal["output_text"]
    text: str


class RefusalPart(_Wire):
    type: Literal["refusal"]
    refusal: str


class MessageItem(_Wire):
    """A message; ``type`` may be left out (OpenAI's "easy" input message)."""

    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[dict[str, Any]]
    id: str | None = None


class FunctionCallItem(_Wire):
    type: Literal["function_call"]
    call_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: str = ""
    id: str | None = None


class FunctionCallOutputItem(_Wire):
    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1)
    output: str | list[dict[str, Any]]
    id: str | None = None


class ReasoningItem(_Wire):
    type: Literal["reasoning"]
    id: str | None = None
    summary: list[dict[str, Any]] = Field(default_factory=list)
    content: list[dict[str, Any]] | None = None
    encrypted_content: str | None = None


# -- tools and formats ----------------------------------------------------------------


class FunctionTool(_Wire):
    type: Literal["function"]
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class TextFormat(_Wire):
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    description: str | None = None
    strict: bool | None = None


class TextConfig(_Wire):
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


# -- the request ------------------------------------------------------------------------


class ResponsesRequest(_Wire):
    model: str = Field(min_length=1)
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    previous_response_id: str | None = Field(default=None, min_length=1)
    store: bool | None = None  # None: true, as OpenAI
    stream: bool | None = None
    background: bool | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_output_tokens: int | None = Field(default=None, ge=16)  # OpenAI's own minimum
    text: TextConfig | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    truncation: Literal["auto", "disabled"] | None = None
    include: list[str] | None = None  # accepted; nothing it can ask for is produced (docs)
    # Refused when set (adapter.check_unsupported): hubbub cannot honour them.
    reasoning: dict[str, Any] | None = None
    conversation: Any = None
    prompt: Any = None
    top_logprobs: int | None = None
    context_management: Any = None

    @field_validator("metadata")
    @classmethod
    def _metadata_bounds(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        """OpenAI's bounds: at most 16 pairs, keys up to 64 characters, values up to 512."""
        if value is None:
            return value
        if len(value) > 16:
            raise ValueError("at most 16 key-value pairs are allowed")
        for key, item in value.items():
            if len(key) > 64:
                raise ValueError(f"key '{key[:16]}…' is longer than 64 characters")
            if len(item) > 512:
                raise ValueError(f"the value of '{key}' is longer than 512 characters")
        return value
