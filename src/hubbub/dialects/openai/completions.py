"""Legacy ``POST /v1/completions``: a text prompt continued as it is (issue 21; docs/api-decisions.md
"Legacy completions"). simonw's ``llm`` completion models and editor plugins use it.

The same core as a chat (``ChatService.prepare``/``generate`` with ``ChatRequest.prompt``): limits,
usage, metrics and cancellation are the chat's. Kept apart from ``protocol.py``/``adapter.py`` (the
chat wire, which the sampler work changes) so the two merge cleanly.

Decisions: ``max_tokens`` defaults to 16, as OpenAI documents for this endpoint; ``prompt`` is a
string or a list of up to ``MAX_PROMPTS`` strings (one choice each), token arrays are a 400;
``echo`` is supported (the prompt leads the choice's text); ``suffix`` (insertion), ``best_of``
and ``n`` above 1, ``logprobs``, and non-zero penalties or a ``logit_bias`` are a 400 naming the
parameter, never silently dropped.
"""

from __future__ import annotations

import time
from typing import Any, AsyncIterator

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hubbub.core.events import Finish, TextDelta
from hubbub.core.generation import Generation
from hubbub.core.ids import new_id
from hubbub.core.types import SamplingParams, Usage
from hubbub.errors import FieldProblem, HubbubError, InvalidRequest
from hubbub.http.sse import DONE, Last, frame

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MAX = 2**31 - 1
MAX_PROMPTS = 16  # prompts in one request (each a generation of its own)
DEFAULT_MAX_TOKENS = 16  # OpenAI's documented default for /v1/completions
_FINISH = {"stop": "stop", "length": "length", "content_filter": "content_filter"}


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    prompt: str | list[Any]
    suffix: str | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=INT32_MAX)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    n: int | None = Field(default=None, ge=1, le=128)
    best_of: int | None = Field(default=None, ge=0, le=20)
    stream: bool = False
    stream_options: StreamOptions | None = None
    logprobs: int | None = Field(default=None, ge=0, le=5)
    echo: bool = False
    stop: str | list[str] | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None
    seed: int | None = Field(default=None, ge=INT64_MIN, le=INT64_MAX)
    user: str | None = None

    @field_validator("stop")
    @classmethod
    def _at_most_four(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop sequences are allowed")
        return value


def _refuse(field: str, why: str) -> InvalidRequest:
    return InvalidRequest(f"Unsupported parameter: '{field}'", [FieldProblem(field, why, "unsupported")])


def prompts(body: CompletionRequest) -> list[str]:
    """The prompts as texts, and every parameter this endpoint cannot honour refused by name."""
    if body.suffix:
        raise _refuse("suffix", "insertion (suffix) is not supported")
    if (body.n or 1) > 1:
        raise _refuse("n", "only one completion per prompt is supported here; send the prompt again")
    if (body.best_of or 1) > 1:
        raise _refuse("best_of", "best_of is not supported")
    if body.logprobs is not None:
        raise _refuse("logprobs", "log-probabilities are not supported on /v1/completions")
    for name in ("presence_penalty", "frequency_penalty"):
        if getattr(body, name):
            raise _refuse(name, f"{name} is not supported on /v1/completions")
    if body.logit_bias:
        raise _refuse("logit_bias", "logit_bias is not supported on /v1/completions")
    if isinstance(body.prompt, str):
        return [body.prompt]
    if not body.prompt:
        raise InvalidRequest("Invalid request", [FieldProblem("prompt", "must not be empty")])
    if len(body.prompt) > MAX_PROMPTS:
        raise InvalidRequest("Too many prompts", [FieldProblem("prompt", f"at most {MAX_PROMPTS} prompts are allowed")])
    out: list[str] = []
    for i, item in enumerate(body.prompt):
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, (int, list)) and not isinstance(item, bool):
            raise InvalidRequest("Token arrays are not supported", [FieldProblem(
                "prompt" if isinstance(item, int) else f"prompt.{i}",
                "token arrays are not supported: send the text (docs/api-decisions.md, \"Legacy completions\")")])
        else:
            raise InvalidRequest("Invalid prompt", [FieldProblem(f"prompt.{i}", "must be a string")])
    return out


def to_params(body: CompletionRequest) -> tuple[SamplingParams, set[str]]:
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    explicit = {name for name in ("temperature", "top_p") if getattr(body, name) is not None} | {"max_tokens"}
    params = SamplingParams(temperature=1.0 if body.temperature is None else body.temperature,
                            top_p=1.0 if body.top_p is None else body.top_p,
                            max_tokens=body.max_tokens or DEFAULT_MAX_TOKENS, stop=stop, seed=body.seed)
    return params, explicit


def _usage(usages: list[Usage | None]) -> dict[str, int]:
    prompt = sum(u.prompt_tokens for u in usages if u is not None)
    completion = sum(u.completion_tokens for u in usages if u is not None)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion_body(gens: list[Generation], texts: list[str], echo: bool, model: str) -> dict[str, Any]:
    choices = [{"text": (prompt if echo else "") + gen.text, "index": i, "logprobs": None,
                "finish_reason": _FINISH.get(gen.finish_reason or "stop", "stop")}
               for i, (gen, prompt) in enumerate(zip(gens, texts))]
    return {"id": new_id("cmpl-"), "object": "text_completion", "created": int(time.time()), "model": model,
            "choices": choices, "usage": _usage([g.usage for g in gens])}


async def chunk_stream(first: Generation, rest: Any, texts: list[str], echo: bool, model: str,
                       include_usage: bool, error_body: Any) -> AsyncIterator[bytes]:
    """``text_completion`` chunks, prompt after prompt (``rest(i)`` opens generation ``i``), then
    the usage chunk when asked for, then ``[DONE]``. An error after the 200 is an error frame."""
    base = {"id": new_id("cmpl-"), "object": "text_completion", "created": int(time.time()), "model": model}
    usages: list[Usage | None] = []

    def chunk(index: int, text: str, finish: str | None = None) -> bytes:
        return frame({**base, "choices": [{"text": text, "index": index, "logprobs": None, "finish_reason": finish}]})

    try:
        for index, prompt in enumerate(texts):
            gen = first if index == 0 else await rest(index)
            if echo and prompt:
                yield chunk(index, prompt)
            async for event in gen:
                if type(event) is TextDelta:
                    if event.text:
                        yield chunk(index, event.text)
                elif isinstance(event, Finish):
                    yield chunk(index, "", _FINISH.get(event.reason, "stop"))
            usages.append(gen.usage)
    except HubbubError as exc:
        yield Last(frame(error_body(exc, None)))
        return
    tail = frame({**base, "choices": [], "usage": _usage(usages)}) if include_usage else b""
    yield Last(tail + DONE)
