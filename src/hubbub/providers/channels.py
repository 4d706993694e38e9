"""Channels: several ways to serve one model, with routing, health and failover.

``ChannelRouter`` is itself a ``Provider``: the registry holds one per upstream
model, so ``ChatService`` and ``TurnRunner`` never know channels exist.

For each request the router makes a plan: the channels not cooling down, highest
priority first, and within one priority a random order weighted by ``weight``
(so traffic splits by weight while every channel stays a fallback). Then:

- **Before the first token**, a retryable failure (``faults.UpstreamUnavailable``:
  connect error, timeout, 429, 5xx, a refused key or model) retries the same channel
  up to ``max_retries`` times (never after a 429) and then moves to the next one.
  Any other error is the request's own fault and is raised as it is.
- **After the first token**, a broken stream (cut connection, stall longer than the
  channel's ``timeout``, an error event) is continued on the next channel that can
  continue answers: what was already sent is passed as ``assistant_prefix``, and only
  the new text reaches the client, so it sees one uninterrupted answer.
- With no channel left: ``ChannelUnavailable`` before any text; after some text, an
  ``UpstreamError`` (the dialects turn it into their in-stream error event).

Usage: the prompt tokens of the first attempt that answered, plus the completion
tokens of every attempt that sent text (reported by the upstream, or one per chunk).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import Any, AsyncIterator, Callable

from hubbub.core.events import Finish, ProviderEvent, ReasoningDelta, TextDelta, ToolCallDelta, UsageReport
from hubbub.core.context import count
from hubbub.core.types import FinishReason, Message, ProviderRequest, Tools, Usage
from hubbub.errors import ChannelUnavailable, HubbubError, UpstreamError
from hubbub.providers.base import Provider
from hubbub.providers.faults import UpstreamUnavailable
from hubbub.providers.health import ChannelHealth
from hubbub.settings import FailoverConfig

log = logging.getLogger(__name__)


@dataclass
class Channel:
    """One provider serving one model under one name, with its routing knobs and health."""

    name: str
    provider: Provider
    upstream_model: str
    health: ChannelHealth
    priority: int = 0
    weight: float = 1.0
    timeout: float = 60.0
    max_retries: int = 0

    @property
    def continues_answers(self) -> bool:
        return self.provider.capabilities.continues_answers

    def snapshot(self) -> dict[str, Any]:
        return {"name": self.name, "provider": self.provider.name, "upstreamModel": self.upstream_model,
                "priority": self.priority, "weight": self.weight, "timeout": self.timeout,
                "maxRetries": self.max_retries, **self.health.snapshot()}


class _Attempt:
    """What one attempt on one channel delivered."""

    def __init__(self) -> None:
        self.chunks = 0
        self.usage: Usage | None = None
        self.finish: FinishReason | None = None
        self.stop_sequence: str | None = None  # Finish.stop_sequence, passed on


class ChannelRouter:
    """The provider seam over the channels of one model."""

    name = "channels"

    def __init__(self, model_id: str, channels: list[Channel], policy: FailoverConfig,
                 rng: random.Random | None = None) -> None:
        if not channels:
            raise ValueError(f"model {model_id} has no channels")
        self.model_id = model_id
        self.channels = channels
        self.policy = policy
        self._rng = rng or random.Random()
        # What every channel honours: a request may land on any of them. Continuing an answer is
        # decided per channel at failover time, so the model can if any channel can.
        capabilities = channels[0].provider.capabilities
        for c in channels[1:]:
            capabilities = capabilities & c.provider.capabilities
        self.capabilities = replace(capabilities, continues_answers=any(c.continues_answers for c in channels))

    def plan(self) -> list[Channel]:
        """Channels to try, in order: available ones by priority, weighted-random within one."""
        ready = [c for c in self.channels if c.health.available()]
        # Efraimidis–Spirakis: sorting by u ** (1 / weight) is a weighted shuffle.
        keys = {id(c): self._rng.random() ** (1.0 / c.weight) for c in ready}
        return sorted(ready, key=lambda c: (-c.priority, -keys[id(c)]))

    async def count_tokens(self, messages: list[Message], model: str = "", tools: Tools | None = None) -> int:
        first = self.channels[0]
        return await count(first.provider, first.upstream_model, messages, tools)

    async def count_text_tokens(self, text: str, model: str = "") -> int:
        first = self.channels[0]
        return await first.provider.count_text_tokens(text, first.upstream_model)

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        plan = self.plan()
        if not plan:
            raise ChannelUnavailable()
        sent: list[str] = []  # text the client already has
        structured = False  # a tool call or reasoning went out: no prefix can continue that (issue 16)
        prompt_tokens: int | None = None
        completion_tokens = 0
        for channel in plan:
            if structured:
                break
            if sent and not (self.policy.mid_stream and channel.continues_answers):
                continue
            tries = channel.max_retries + 1
            while tries > 0:
                tries -= 1
                attempt = _Attempt()
                sub = self._request_for(channel, request, sent, completion_tokens)
                if sub is None:  # the token budget is spent: the answer is as long as asked
                    yield UsageReport(Usage(prompt_tokens or 0, completion_tokens))
                    yield Finish("length")
                    return
                try:
                    # aclosing: a client that goes away mid-answer closes the upstream at once.
                    async with aclosing(self._attempt(channel, sub, attempt)) as deltas:
                        async for delta in deltas:
                            if type(delta) is TextDelta:
                                sent.append(delta.text)
                            else:
                                structured = True
                            yield delta
                except UpstreamUnavailable as exc:
                    channel.health.failed(exc.kind, exc.details, exc.retry_after)
                    log.warning("channel %s of %s failed (%s%s): %s", channel.name, self.model_id, exc.kind,
                                ", after the first token" if sent else "", exc.details)
                    completion_tokens += attempt.chunks
                    if attempt.chunks and prompt_tokens is None:
                        prompt_tokens = await self.count_tokens(request.messages)
                    if exc.kind == "rate_limited" or not channel.health.available():
                        break  # this channel said to wait: the next one
                    continue
                channel.health.succeeded()
                completion_tokens += attempt.usage.completion_tokens if attempt.usage else attempt.chunks
                if prompt_tokens is None:
                    prompt_tokens = attempt.usage.prompt_tokens if attempt.usage \
                        else await self.count_tokens(request.messages)
                yield UsageReport(Usage(prompt_tokens, completion_tokens))
                yield Finish(attempt.finish or "stop", attempt.stop_sequence)
                return
        if structured:
            raise UpstreamError("Model error", details="the answer broke off during a tool call or reasoning, "
                                                       "which no channel can continue")
        if sent:
            raise UpstreamError("Model error", details="the answer broke off and no channel could continue it")
        raise ChannelUnavailable()

    def _request_for(self, channel: Channel, request: ProviderRequest, sent: list[str],
                     completion_tokens: int) -> ProviderRequest | None:
        params = request.params
        if sent and params.max_tokens is not None:
            left = params.max_tokens - completion_tokens
            if left <= 0:
                return None
            params = replace(params, max_tokens=left)
        return replace(request, model=channel.upstream_model, params=params,
                       assistant_prefix=request.assistant_prefix + "".join(sent))

    async def _attempt(self, channel: Channel, request: ProviderRequest, attempt: _Attempt
                       ) -> AsyncIterator[ProviderEvent]:
        """Text deltas of one attempt; every wait for the next event is bounded by the channel's timeout.

        Timeouts and unexpected exceptions come out as ``UpstreamUnavailable``; cancellation and
        the request's own errors pass through untouched.
        """
        channel.health.started()
        started = time.monotonic()
        events = channel.provider.stream(request)
        watchdog = _Watchdog(channel.timeout)
        async with aclosing(events):
            try:
                while True:
                    watchdog.waiting()
                    try:
                        event = await anext(events)
                    except StopAsyncIteration:
                        return
                    except asyncio.CancelledError:
                        if watchdog.expired():
                            what = "next" if attempt.chunks else "first"
                            raise UpstreamUnavailable(
                                "timeout", f"{channel.name}: no {what} token within {channel.timeout:g}s") from None
                        raise
                    except HubbubError:
                        raise
                    except Exception as exc:  # a provider bug must not cost the answer: try elsewhere
                        log.exception("channel %s raised unexpectedly", channel.name)
                        kind = "stream_broken" if attempt.chunks else "server_error"
                        raise UpstreamUnavailable(kind, f"{channel.name}: {type(exc).__name__}") from None
                    finally:
                        watchdog.idle()
                    if isinstance(event, TextDelta):
                        if not event.text:
                            continue
                        if attempt.chunks == 0:
                            channel.health.first_token(time.monotonic() - started)
                        attempt.chunks += event.tokens
                        yield event
                    elif isinstance(event, (ToolCallDelta, ReasoningDelta)):
                        if attempt.chunks == 0:
                            channel.health.first_token(time.monotonic() - started)
                        attempt.chunks += 1
                        yield event
                    elif isinstance(event, UsageReport):
                        attempt.usage = event.usage
                    elif isinstance(event, Finish):
                        attempt.finish = event.reason
                        attempt.stop_sequence = event.stop_sequence
            finally:
                watchdog.close()

    def snapshot(self) -> list[dict[str, Any]]:
        return [{"model": self.model_id, **c.snapshot()} for c in self.channels]

    def reset(self) -> None:
        for c in self.channels:
            c.health.reset()

    async def aclose(self) -> None:
        """Nothing of its own: channel providers are shared between models and closed by the app."""


class _Watchdog:
    """Bounds each wait for the provider's next event by ``timeout`` seconds, like wrapping every
    ``anext`` in ``asyncio.timeout`` but without a timer per event (a stream has hundreds).

    One timer is armed for the whole attempt; when it fires it looks at the wait in progress:
    longer than ``timeout`` cancels the waiting task (which ``expired`` then recognises, as
    ``asyncio.timeout`` does), shorter re-arms the timer for when that wait would expire, and
    no wait in progress (the consumer is busy with the last event) lets the next wait re-arm it.
    The waiting task is looked up at each wait: the first event is awaited in the request's
    task, the rest often in the task that writes the response.
    """

    __slots__ = ("_timeout", "_loop", "_task", "_cancelling", "_since", "_timer", "_fired")

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task[Any] | None = None  # the task waiting now
        self._cancelling = 0  # its cancel requests before ours
        self._since: float | None = None  # when the wait in progress began
        self._timer: asyncio.TimerHandle | None = None
        self._fired = False

    def waiting(self) -> None:
        self._task = asyncio.current_task(self._loop)  # with the loop given: no lookup of the running loop
        self._since = now = self._loop.time()
        if self._timer is None and not self._fired:
            self._timer = self._loop.call_at(now + self._timeout, self._check)

    def idle(self) -> None:
        self._since = None

    def _check(self) -> None:
        self._timer = None
        since, task = self._since, self._task
        if since is None or task is None:
            return  # not waiting: the next wait arms the timer again
        due = since + self._timeout
        if self._loop.time() >= due:
            self._fired = True
            self._cancelling = task.cancelling()
            task.cancel()
        else:
            self._timer = self._loop.call_at(due, self._check)

    def expired(self) -> bool:
        """After a ``CancelledError``: True when this watchdog caused it (and nothing else also
        cancelled the task), so it should become a timeout; the cancellation is then withdrawn."""
        self.close()
        if not self._fired or self._task is None:
            return False
        return self._task.uncancel() <= self._cancelling

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def make_channel(name: str, provider: Provider, upstream_model: str, policy: FailoverConfig,
                 clock: Callable[[], float] = time.monotonic, **knobs: Any) -> Channel:
    return Channel(name=name, provider=provider, upstream_model=upstream_model,
                   health=ChannelHealth(policy, clock), **knobs)
