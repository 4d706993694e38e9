"""Channels: several ways to serve one model, with routing, health and failover.

``ChannelRouter`` is itself a ``Provider``: the registry holds one per upstream
model, so ``ChatService`` and ``TurnRunner`` never know channels exist.

For each request the router makes a plan: the channels not cooling down, highest
priority first, and within one priority a random order weighted by ``weight``
(so traffic splits by weight while every channel stays a fallback). Then, with the
conduct docs/upstreams.md tabulates fault by fault (issue 19):

- **Before the first token**, a retryable failure (``faults.UpstreamUnavailable``)
  moves on to the next channel, after ``max_retries`` more tries of the same one for a
  5xx or a failed connect, each after a jittered, doubling backoff. A 429 is never
  retried there, except that a ``Retry-After`` short enough (``max_retry_after_wait``)
  is waited out once and the same channel asked again, rather than a lesser one. A
  timeout or a refused key moves on at once. A context-length 400 moves on to the
  channels whose context is large enough, if any; any other error is the request's
  own fault and is raised as it is.
- **Every wait before the first token** (each attempt's ``first_token_timeout``, each
  backoff, each ``Retry-After``) is cut to what is left of ``[failover] deadline``: a
  request never waits longer than that for its first token.
- **After the first token**, a broken stream (cut connection, a silence longer than the
  channel's ``timeout``, an error event) is continued on the *next* channel that can
  continue answers, never the same one: what was already sent is passed as
  ``assistant_prefix``, and only the new text reaches the client. A channel that refuses
  the continuation (a 400 for the trailing assistant message) is passed over, never
  reported as the answer's error.
- With no channel left: ``ChannelUnavailable`` before any text; after some text, an
  ``UpstreamError`` saying what failed ("upstream stream cut; no channel could continue").

``ServedBy`` goes out before the first text of each attempt that sends some, so the
caller knows which channel, upstream model and prices answer (issue 19, fault 16).

Usage: the answering attempt's own count when its upstream sends one (its prompt count
included), else estimates; plus the completion tokens of every earlier attempt that sent
text. Attempts that sent nothing are not billed.

hubbub's own trouble — no free pooled connection (``busy``), a provider that raised
unexpectedly (``internal``), a request it cannot encode — never counts against a channel's
health (issue 22).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import Any, AsyncIterator, Callable

from hubbub.core.context import count
from hubbub.core.events import Finish, ProviderEvent, ReasoningDelta, ServedBy, TextDelta, ToolCallDelta, UsageReport
from hubbub.core.types import FinishReason, Message, ProviderRequest, Tools, Usage, evolve
from hubbub.errors import ChannelUnavailable, ContextTooLong, HubbubError, UpstreamError
from hubbub.providers.base import Provider
from hubbub.providers.faults import WHAT_FAILED, UpstreamUnavailable
from hubbub.providers.health import ChannelHealth
from hubbub.settings import FailoverConfig

log = logging.getLogger(__name__)

_RETRY_AFTER_SLACK = 0.05  # past the upstream's Retry-After, so the channel's wait has surely ended
_RETRIED_KINDS = ("server_error", "connect")  # failures max_retries tries the same channel again after


@dataclass
class Channel:
    """One provider serving one model under one name, with its routing knobs and health."""

    name: str
    provider: Provider
    upstream_model: str
    health: ChannelHealth
    priority: int = 0
    weight: float = 1.0
    timeout: float = 30.0  # most silence between two tokens
    first_token_timeout: float = 15.0
    max_retries: int = 1
    context_length: int | None = None  # None: the model's
    pricing_prompt: float = 0.0  # USD per 1K tokens
    pricing_completion: float = 0.0
    can_continue: bool | None = None  # None: as the provider says

    def __post_init__(self) -> None:
        self.served_by = ServedBy(self.name, self.provider.name, self.upstream_model,
                                  self.pricing_prompt, self.pricing_completion)

    @property
    def continues_answers(self) -> bool:
        if self.can_continue is not None:
            return self.can_continue
        return self.provider.capabilities.continues_answers

    def waits_locally(self, task: asyncio.Task[Any] | None) -> bool:
        """Is ``task`` held up by hubbub itself (a pooled connection), not by the upstream?"""
        check = getattr(self.provider, "waits_locally", None)
        return bool(check is not None and check(task))

    def snapshot(self) -> dict[str, Any]:
        return {"name": self.name, "provider": self.provider.name, "upstreamModel": self.upstream_model,
                "priority": self.priority, "weight": self.weight, "timeout": self.timeout,
                "firstTokenTimeout": self.first_token_timeout, "maxRetries": self.max_retries,
                "contextLength": self.context_length, **self.health.snapshot()}


class _Attempt:
    """What one attempt on one channel delivered."""

    __slots__ = ("chunks", "usage", "finish", "stop_sequence", "first_wait", "short")

    def __init__(self, first_wait: float, short: bool) -> None:
        self.chunks = 0
        self.usage: Usage | None = None
        self.finish: FinishReason | None = None
        self.stop_sequence: str | None = None  # Finish.stop_sequence, passed on
        self.first_wait = first_wait  # how long it may wait for its first token
        self.short = short  # first_wait was cut by the request's deadline: a timeout is not the channel's


class _Run:
    """The state of one request across its attempts."""

    def __init__(self) -> None:
        self.sent: list[str] = []  # text the client already has
        self.completion_tokens = 0  # of earlier attempts that sent text
        self.served: Channel | None = None  # the channel of the last ServedBy
        self.structured = False  # a tool call or reasoning went out: no prefix can continue that (issue 16)
        self.failure: UpstreamUnavailable | None = None  # the last one
        self.refusals: list[str] = []  # continuations refused, for the final error's details
        self.min_context = 0  # after a context-length 400: the window a channel needs
        self.context_error: ContextTooLong | None = None


class ChannelRouter:
    """The provider seam over the channels of one model."""

    name = "channels"

    def __init__(self, model_id: str, channels: list[Channel], policy: FailoverConfig,
                 rng: random.Random | None = None, context_length: int | None = None) -> None:
        if not channels:
            raise ValueError(f"model {model_id} has no channels")
        self.model_id = model_id
        self.channels = channels
        self.policy = policy
        self.context_length = context_length  # the model's: what the core checked the prompt against
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

    def _context_of(self, channel: Channel) -> int:
        return channel.context_length or self.context_length or 0

    def backoff(self, tries: int) -> float:
        """The pause before try ``tries + 1`` of one channel: ``backoff_seconds`` doubling, 50–100 % of it."""
        return self.policy.backoff_seconds * 2.0 ** min(tries - 1, 16) * (0.5 + 0.5 * self._rng.random())

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        plan = self.plan()
        if not plan:
            raise ChannelUnavailable()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.policy.deadline
        run = _Run()
        for channel in plan:
            if run.structured:
                break
            if run.sent and not (self.policy.mid_stream and channel.continues_answers):
                continue
            if run.min_context and self._context_of(channel) and self._context_of(channel) < run.min_context:
                continue  # too small for this prompt, as an earlier channel's 400 said
            retries = channel.max_retries
            tries = 0
            waited = False  # a Retry-After already waited out on this channel
            while channel.health.available():  # else: cooling since the plan, or another request probes it
                remaining = deadline - loop.time()
                if not run.sent and remaining <= 0:
                    break
                sub = self._request_for(channel, request, run)
                if sub is not None and channel.context_length is not None and (
                        self.context_length is None or channel.context_length < self.context_length):
                    sub = await self._fit(channel, sub)
                if sub is None:  # the token budget is spent: the answer is as long as asked
                    prompt = await self.count_tokens(request.messages)
                    yield UsageReport(Usage(prompt, run.completion_tokens))
                    yield Finish("length")
                    return
                if sub is False:
                    break  # the prompt does not fit this channel's window
                first_wait = channel.first_token_timeout
                short = not run.sent and remaining < first_wait
                log.debug("channel %s of %s: try %d%s", channel.name, self.model_id, tries + 1,
                          " (continuing the answer)" if run.sent else "")
                attempt = _Attempt(min(first_wait, remaining) if short else first_wait, short)
                try:
                    # aclosing: a client that goes away mid-answer closes the upstream at once.
                    async with aclosing(self._attempt(channel, sub, attempt, run)) as events:
                        async for event in events:
                            yield event
                except UpstreamUnavailable as exc:
                    tries += 1
                    run.failure = exc
                    if attempt.chunks:
                        run.completion_tokens += attempt.usage.completion_tokens if attempt.usage else attempt.chunks
                    # A first-token wait the deadline cut short says nothing against the channel.
                    mine = exc.local or (exc.kind == "timeout" and attempt.short and not attempt.chunks)
                    if not mine:
                        channel.health.failed(exc.kind, exc.details, exc.retry_after)
                    log.warning("channel %s of %s failed (%s%s%s): %s", channel.name, self.model_id, exc.kind,
                                ", after the first token" if run.sent else "",
                                ", not counted against it" if mine else "", exc.details)
                    if run.sent:
                        break  # text went out: the next channel continues it, never this one again
                    wait = exc.retry_after
                    if exc.kind == "rate_limited":
                        if (wait is None or waited or wait > self.policy.max_retry_after_wait
                                or wait + _RETRY_AFTER_SLACK >= deadline - loop.time()):
                            break
                        waited = True
                        log.info("channel %s of %s: waiting out its Retry-After of %gs", channel.name,
                                 self.model_id, wait)
                        await asyncio.sleep(wait + _RETRY_AFTER_SLACK)
                        continue
                    if exc.kind not in _RETRIED_KINDS or retries <= 0:
                        break
                    pause = self.backoff(tries)
                    if pause >= deadline - loop.time():
                        break
                    retries -= 1
                    log.info("channel %s of %s: try %d in %.2fs", channel.name, self.model_id, tries + 1, pause)
                    await asyncio.sleep(pause)
                    continue
                except HubbubError as exc:
                    if run.sent and not attempt.chunks:
                        # This channel refused to continue the answer (a 400 for the trailing assistant
                        # message, fault 14): not the answer's error, and not the channel's failure.
                        log.warning("channel %s of %s refused to continue the answer: %s", channel.name,
                                    self.model_id, exc.message)
                        run.refusals.append(f"{channel.name} refused to continue: {exc.message}")
                        break
                    if isinstance(exc, ContextTooLong) and not run.sent:
                        need = max(exc.request_length, exc.max_length + 1)
                        if any(self._context_of(c) >= need for c in plan[plan.index(channel) + 1:]
                               if c is not channel):
                            log.info("channel %s of %s: the prompt needs %d tokens of context: a larger channel",
                                     channel.name, self.model_id, need)
                            run.min_context, run.context_error = max(run.min_context, need), exc
                            break
                    raise
                channel.health.succeeded()
                if run.served is not channel:  # an answer without text was answered all the same
                    run.served = channel
                    yield channel.served_by
                usage = attempt.usage
                completion = run.completion_tokens + (usage.completion_tokens if usage else attempt.chunks)
                if usage is not None and usage.prompt_tokens:
                    prompt = usage.prompt_tokens  # the answering upstream's own count (issue 19)
                else:
                    prompt = await self.count_tokens(request.messages)
                yield UsageReport(Usage(prompt, completion))
                yield Finish(attempt.finish or "stop", attempt.stop_sequence)
                return
        if run.structured:
            raise UpstreamError("upstream stream cut during a tool call or reasoning; no channel can continue it",
                                details=run.failure.details if run.failure else "")
        if run.sent:
            failure = run.failure
            what = WHAT_FAILED.get(failure.kind, "upstream failed") if failure else "upstream stream cut"
            details = "; ".join([*([failure.details] if failure else []), *run.refusals])
            raise UpstreamError(f"{what}; no channel could continue", details=details)
        if run.context_error is not None and run.failure is None:
            raise run.context_error
        raise ChannelUnavailable()

    def _request_for(self, channel: Channel, request: ProviderRequest, run: _Run) -> ProviderRequest | None:
        """The request for ``channel``: the upstream's model name, what is left of the token budget
        (None: nothing), and the text sent so far as the prefix to continue."""
        params = request.params
        if run.sent and params.max_tokens is not None:
            left = params.max_tokens - run.completion_tokens
            if left <= 0:
                return None
            params = evolve(params, max_tokens=left)
        prefix = request.assistant_prefix + "".join(run.sent) if run.sent else request.assistant_prefix
        return evolve(request, model=channel.upstream_model, params=params, assistant_prefix=prefix)

    async def _fit(self, channel: Channel, request: ProviderRequest) -> ProviderRequest | bool:
        """``request`` with a ``max_tokens`` that fits a channel whose window is smaller than the
        model's; False when the prompt itself does not fit it."""
        window = channel.context_length or 0
        # The same deliberately high estimate the core checks the model's window with.
        used = await channel.provider.count_tokens(request.messages, channel.upstream_model)
        if request.assistant_prefix:
            used += await channel.provider.count_text_tokens(request.assistant_prefix, channel.upstream_model)
        room = window - used
        if room <= 0:
            log.info("channel %s of %s: the prompt (about %d tokens) does not fit its %d", channel.name,
                     self.model_id, used, window)
            return False
        params = request.params
        if params.max_tokens is None or params.max_tokens > room:
            request = evolve(request, params=evolve(params, max_tokens=room))
        return request

    async def _attempt(self, channel: Channel, request: ProviderRequest, attempt: _Attempt, run: _Run
                       ) -> AsyncIterator[ProviderEvent]:
        """The text of one attempt (``ServedBy`` first, when it is a channel the caller has not been
        told of), appended to ``run.sent`` as it goes; the first token is awaited at most
        ``attempt.first_wait``, each next one at most the channel's ``timeout``.

        Timeouts and unexpected exceptions come out as ``UpstreamUnavailable``; cancellation and
        the request's own errors pass through untouched.
        """
        channel.health.started()
        started = time.monotonic()
        events = channel.provider.stream(request)
        watchdog = _Watchdog(attempt.first_wait, channel.waits_locally)
        sent = run.sent
        try:
            async with aclosing(events):
                while True:
                    watchdog.waiting()
                    try:
                        event = await anext(events)
                    except StopAsyncIteration:
                        return
                    except asyncio.CancelledError:
                        if watchdog.expired():
                            if watchdog.local:
                                raise UpstreamUnavailable(
                                    "busy", f"{channel.name}: waited {attempt.first_wait:g}s for a free connection"
                                ) from None
                            what, limit = ("next", channel.timeout) if attempt.chunks else ("first", attempt.first_wait)
                            limit = round(limit, 2)
                            raise UpstreamUnavailable(
                                "timeout", f"{channel.name}: no {what} token within {limit:g}s") from None
                        raise
                    except HubbubError:
                        raise
                    except Exception as exc:  # hubbub's own failure: try elsewhere, blame no upstream
                        log.exception("channel %s raised unexpectedly", channel.name)
                        raise UpstreamUnavailable("internal", f"{channel.name}: {type(exc).__name__}") from None
                    finally:
                        watchdog.idle()
                    structured = isinstance(event, (ToolCallDelta, ReasoningDelta))
                    if structured or isinstance(event, TextDelta):
                        if not structured and not event.text:
                            continue
                        if attempt.chunks == 0:
                            channel.health.first_token(time.monotonic() - started)
                            watchdog.rearm(channel.timeout)  # from now on: the silence between tokens
                            if run.served is not channel:
                                run.served = channel
                                yield channel.served_by
                        if structured:
                            attempt.chunks += 1
                            run.structured = True
                        else:
                            attempt.chunks += event.tokens
                            sent.append(event.text)
                        yield event
                    elif isinstance(event, UsageReport):
                        attempt.usage = event.usage
                    elif isinstance(event, Finish):
                        attempt.finish = event.reason
                        attempt.stop_sequence = event.stop_sequence
        finally:
            watchdog.close()
            channel.health.ended()

    async def embed(self, texts: list[str], model: str = "", dimensions: int | None = None) -> tuple[Any, int | None]:
        """Embeddings from the first channel in the plan that serves them (``Capabilities.embeddings``),
        moving on past one that is unavailable, as a chat request does before its first token;
        the request's own errors (a 400) are raised as they are. Simpler than ``stream``: no
        retries of the same channel, no waiting out a ``Retry-After`` (docs/upstreams.md)."""
        tried = False
        for channel in self.plan():
            if not channel.provider.capabilities.embeddings:
                continue
            tried = True
            try:
                result = await channel.provider.embed(texts, channel.upstream_model, dimensions)  # type: ignore[attr-defined]
            except UpstreamUnavailable as exc:
                if not exc.local:
                    channel.health.failed(exc.kind, str(exc.details or exc), exc.retry_after)
                log.warning("embeddings on channel %s failed: %s", channel.name, exc)
                continue
            channel.health.succeeded()
            return result
        raise ChannelUnavailable("No available channel serves embeddings for this model" if tried else
                                 "No channel of this model serves embeddings")

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
    task, the rest often in the task that writes the response. ``rearm`` changes ``timeout``
    between two waits (the first token has its own).

    ``local(task)`` says whether the task is held up by hubbub itself (waiting for a pooled
    connection); asked when the timer cancels, its answer is kept in ``self.local``.
    """

    __slots__ = ("timeout", "local", "_is_local", "_loop", "_task", "_cancelling", "_since", "_timer", "_fired")

    def __init__(self, timeout: float, local: Callable[[asyncio.Task[Any] | None], bool] | None = None) -> None:
        self.timeout = timeout
        self.local = False
        self._is_local = local
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
            self._timer = self._loop.call_at(now + self.timeout, self._check)

    def idle(self) -> None:
        self._since = None

    def rearm(self, timeout: float) -> None:
        """A new ``timeout`` from the next wait on. A longer one needs nothing more (the armed timer
        finds it when it fires, and re-arms); a shorter one drops the timer for the next wait to set."""
        if timeout < self.timeout:
            self.close()
        self.timeout = timeout

    def _check(self) -> None:
        self._timer = None
        since, task = self._since, self._task
        if since is None or task is None:
            return  # not waiting: the next wait arms the timer again
        due = since + self.timeout
        if self._loop.time() >= due:
            self._fired = True
            self.local = self._is_local is not None and self._is_local(task)
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
    knobs.setdefault("max_retries", policy.max_retries)
    knobs.setdefault("first_token_timeout", policy.first_token_timeout)
    return Channel(name=name, provider=provider, upstream_model=upstream_model,
                   health=ChannelHealth(policy, clock), **knobs)
