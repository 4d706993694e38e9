"""A provider for Anthropic's Messages API, through the official ``anthropic`` SDK.

Mapping to hubbub's events:

- system messages are joined into ``system``; the rest keep their roles;
- ``content_block_delta`` with a ``text_delta`` → ``TextDelta`` (thinking and tool blocks are skipped);
- usage: ``input_tokens`` (plus cache reads and writes) from ``message_start``, ``output_tokens``
  from the last ``message_delta`` (it is cumulative);
- ``stop_reason`` ``max_tokens`` → ``length``, anything else → ``stop``;
- an ``error`` event inside the stream (``overloaded_error``…) → ``UpstreamUnavailable``.

The SDK's own retries are off (``max_retries=0``): the channel router decides where a
failed request goes next. Closing the iterator cancels the task reading the SDK stream
(see ``pump.py``), which closes the HTTP response at once.

An answer begun elsewhere is continued with Anthropic's "prefill": a trailing assistant
message. The API refuses one that ends in whitespace, so the prefix is sent right-stripped
and the leading whitespace of the continuation is dropped (the client already has it).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, AsyncIterator

from hubbub.core.events import Finish, ProviderEvent, TextDelta, UsageReport
from hubbub.core.types import FinishReason, Message, ProviderRequest, Usage
from hubbub.errors import HubbubError, InvalidRequest, UpstreamError
from hubbub.providers.faults import (
    UpstreamUnavailable,
    error_message,
    estimate_prompt_tokens,
    estimate_text_tokens,
    from_status,
    parse_retry_after,
    scrub,
)
from hubbub.providers.pump import in_own_task
from hubbub.settings import ProviderConfig

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_MAX_TOKENS = 4096  # Anthropic requires max_tokens; used when a request names none
_RETRYABLE_TYPES = {"overloaded_error", "api_error", "rate_limit_error", "timeout_error"}


def message_params(request: ProviderRequest, config: ProviderConfig) -> tuple[dict[str, Any], bool]:
    """``messages.create`` keyword arguments for ``request``, and whether to trim the
    continuation's leading whitespace (see the module docstring).

    The SDK no longer types ``temperature``/``top_p`` (recent models refuse them), so they
    travel in ``extra_body``, and only while the provider's ``sampling`` is on."""
    p = request.params
    system = "\n\n".join(m.content for m in request.messages if m.role == "system")
    messages = [{"role": m.role, "content": m.content} for m in request.messages if m.role != "system"]
    prefix = request.assistant_prefix.rstrip()
    if prefix:
        messages.append({"role": "assistant", "content": prefix})
    kwargs: dict[str, Any] = {
        "model": request.model,
        "messages": messages,
        "max_tokens": p.max_tokens or DEFAULT_MAX_TOKENS,
    }
    extra = dict(config.extra_body)
    if config.sampling:
        extra["temperature"] = min(max(p.temperature, 0.0), 1.0)  # Anthropic's range is 0..1, OpenAI's 0..2
        if p.top_p != 1.0:
            extra["top_p"] = p.top_p
    if extra:
        kwargs["extra_body"] = extra
    if system:
        kwargs["system"] = system
    if p.stop:
        kwargs["stop_sequences"] = list(p.stop)
    return kwargs, prefix != request.assistant_prefix


class AnthropicProvider:
    """The provider seam over ``anthropic.AsyncAnthropic``."""

    supports_json_schema = False
    continues_answers = True

    def __init__(self, config: ProviderConfig, api_key: str | None = None) -> None:
        import anthropic

        self.name = config.name
        self.config = config
        self._key = api_key
        self._sdk = anthropic
        self._tasks: set[asyncio.Task[None]] = set()  # upstream reads in flight (see pump.py)
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key or "unset",  # never let the SDK go looking for credentials elsewhere
            base_url=config.base_url or DEFAULT_BASE_URL,
            max_retries=0,
            timeout=anthropic.Timeout(connect=config.connect_timeout, read=None, write=30.0,
                                      pool=config.pool_timeout),
            default_headers=dict(config.headers) or None,
        )

    async def count_tokens(self, messages: list[Message], model: str = "") -> int:
        return estimate_prompt_tokens(messages)

    async def count_text_tokens(self, text: str, model: str = "") -> int:
        return estimate_text_tokens(text)

    def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        return in_own_task(self._stream(request), self._tasks)

    async def _stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        if request.params.response_format is not None and request.params.response_format.type != "text":
            raise InvalidRequest("response_format is not supported by this model")
        kwargs, trim_lead = message_params(request, self.config)
        try:
            stream = await self._client.messages.create(**kwargs, stream=True)
        except Exception as exc:
            raise self._error(exc, started=False) from None
        prompt = completion = 0
        reason: FinishReason = "stop"
        stopped = False
        try:
            async for event in stream:
                kind = event.type
                if kind == "content_block_delta" and event.delta.type == "text_delta":
                    text = event.delta.text
                    if trim_lead:
                        text = text.lstrip()
                        trim_lead = not text
                    if text:
                        yield TextDelta(text)
                elif kind == "message_start":
                    prompt, completion = _input_tokens(event.message.usage), event.message.usage.output_tokens or 0
                elif kind == "message_delta":
                    if event.usage is not None:
                        completion = event.usage.output_tokens or completion
                        prompt = _input_tokens(event.usage) or prompt
                    if event.delta.stop_reason == "max_tokens":
                        reason = "length"
                elif kind == "message_stop":
                    stopped = True
        except HubbubError:
            raise
        except Exception as exc:
            raise self._error(exc, started=True) from None
        finally:
            await stream.close()
        if not stopped:  # the body ended without message_stop: the connection was cut short
            raise UpstreamUnavailable("stream_broken", f"{self.name}: the stream ended before the answer did")
        yield UsageReport(Usage(prompt, completion))
        yield Finish(reason)

    def _error(self, exc: Exception, started: bool) -> HubbubError:
        import httpx

        sdk = self._sdk
        if isinstance(exc, sdk.APITimeoutError):
            if isinstance(exc.__cause__, httpx.PoolTimeout):  # every pooled connection busy: a local limit
                return UpstreamUnavailable("busy", f"{self.name}: no free connection")
            return UpstreamUnavailable("timeout", f"{self.name}: timed out")
        if isinstance(exc, sdk.APIConnectionError):
            return UpstreamUnavailable("stream_broken" if started else "connect", f"{self.name}: connection failed")
        if isinstance(exc, sdk.APIStatusError):
            text, kind = error_message(exc.body)
            message = scrub(text, self._key)
            if exc.status_code < 400:  # an error event inside a 200 stream
                if kind in _RETRYABLE_TYPES:
                    return UpstreamUnavailable("stream_broken", f"{self.name}: {kind}: {message}")
                return UpstreamError(f"upstream error: {kind}", details=f"{self.name}: {kind}: {message}")
            retry_after = parse_retry_after(exc.response.headers.get("retry-after"))
            return from_status(exc.status_code, message, code=kind, retry_after=retry_after, who=self.name)
        if isinstance(exc, (httpx.TransportError, OSError)):
            # Transport errors the SDK lets through while reading the stream (the connection was cut).
            return UpstreamUnavailable("stream_broken" if started else "connect", f"{self.name}: {type(exc).__name__}")
        # Anything else failed here, in hubbub or the SDK (a request it cannot encode…): never the
        # upstream's fault, so never counted against the channel (issue 22).
        log.error("provider %s failed", self.name, exc_info=exc)
        return UpstreamUnavailable("internal", f"{self.name}: {type(exc).__name__}")

    async def aclose(self) -> None:
        await self._client.close()


def _input_tokens(usage: Any) -> int:
    return sum(getattr(usage, name, None) or 0
               for name in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"))

