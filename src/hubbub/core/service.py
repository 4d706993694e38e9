"""ChatService: the one core every dialect calls.

Stateless chats (bento, bots, OpenAI) go through ``open_stream``/``complete``:
the request is checked (model, context length) and the first event is awaited
before a dialect commits to a 200, so early failures get proper statuses.
Stored chats (builder, conversations) go through ``turns.TurnRunner``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace
from typing import AsyncIterator

from hubbub.core import grounding
from hubbub.core.context import check_fits
from hubbub.core.events import Finish, ProviderEvent, ServedBy, TextDelta, UsageReport
from hubbub.core.types import (
    Bot, FinishReason, Message, ModelInfo, ProviderRequest, SamplingParams, Source, Usage, UsageRecord,
)
from hubbub.errors import FieldProblem, HubbubError, InvalidRequest, NotFound, UpstreamError
from hubbub.metrics import Metrics
from hubbub.limits import KeyQuota, Limiter, MemoryLimits, current_key
from hubbub.providers.registry import CatalogEntry, ModelRegistry
from hubbub.storage.repositories import BotRepository, UsageRepository
from hubbub.storage.usage_writer import UsageWriter

log = logging.getLogger(__name__)

DEFAULT_BOT_SLUG = "default"
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."


@dataclass
class ChatRequest:
    """A chat request in core terms, whatever dialect it came from."""

    messages: list[Message]
    model: str | None = None
    params: SamplingParams = field(default_factory=SamplingParams)
    bot: Bot | None = None
    owner: str | None = None  # the API key id that asked (None: open server or admin)
    user_id: str | None = None  # the end user named in the request
    request_id: str | None = None
    rag: bool = False  # ground the answer in the owner's documents (API.md §6)


def apply_bot(messages: list[Message], bot: Bot | None) -> list[Message]:
    """Prepend the bot's system prompt (before any the client sent)."""
    if bot is None or not bot.system_prompt:
        return list(messages)
    return [Message("system", bot.system_prompt), *messages]


def bot_params(params: SamplingParams, bot: Bot | None, explicit: set[str]) -> SamplingParams:
    """The bot's settings, except those the request set explicitly."""
    if bot is None:
        return params
    changes = {}
    if bot.temperature is not None and "temperature" not in explicit:
        changes["temperature"] = bot.temperature
    if bot.top_p is not None and "top_p" not in explicit:
        changes["top_p"] = bot.top_p
    if bot.max_tokens is not None and "max_tokens" not in explicit:
        changes["max_tokens"] = bot.max_tokens
    return replace(params, **changes)


class Generation:
    """One running stateless generation: iterate it for events; it records its own usage."""

    def __init__(
        self,
        service: "ChatService",
        entry: CatalogEntry,
        request: ChatRequest,
        events: AsyncIterator[ProviderEvent],
        prompt_tokens: int,
    ) -> None:
        self._service = service
        self.entry = entry
        self.model: ModelInfo = entry.info
        self.request = request
        self._events = events
        self._first: ProviderEvent | None = None
        self.prompt_tokens = prompt_tokens
        self.text_parts: list[str] = []
        self.usage: Usage | None = None
        self.finish_reason: FinishReason | None = None
        self.sources: list[Source] = []  # the passages put into the prompt (RAG), best first
        self.served_by: ServedBy | None = None  # the channel answering (the latest), when a router says
        self._recorded = False
        self.started = time.monotonic()
        self.first_token_at: float | None = None
        service.metrics.active_streams += 1

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    @property
    def primed(self) -> bool:
        """The first event is here (``prime`` got one): iterating yields it without waiting."""
        return self._first is not None

    async def prime(self) -> None:
        """Wait for the first event, so errors before any output raise here (a ``ServedBy`` is
        taken in passing: the channel is known before the dialect commits to its headers)."""
        try:
            first = await anext(self._events)
            while isinstance(first, ServedBy):
                self.served_by = first
                first = await anext(self._events)
            self._first = first
        except StopAsyncIteration:
            self._first = None
        except BaseException as exc:
            await self._close()
            if isinstance(exc, HubbubError) or not isinstance(exc, Exception):
                raise
            raise _unexpected(exc) from exc

    async def __aiter__(self) -> AsyncIterator[ProviderEvent]:
        # The provider's events, with what ``guarded`` does done here: one generator less on
        # the path of every token.
        try:
            if self._first is not None:
                first, self._first = self._first, None
                self._track(first)
                yield first
            async for event in self._events:
                if isinstance(event, ServedBy):  # remembered, never passed on to a dialect
                    self.served_by = event
                    continue
                self._track(event)
                yield event
        except HubbubError:
            raise
        except Exception as exc:
            raise _unexpected(exc) from exc
        finally:
            await self._close()

    def _track(self, event: ProviderEvent) -> None:
        if isinstance(event, TextDelta):
            if self.first_token_at is None:
                self.first_token_at = time.monotonic()
            self.text_parts.append(event.text)
        elif isinstance(event, UsageReport):
            self.usage = event.usage
        elif isinstance(event, Finish):
            self.finish_reason = event.reason

    async def _close(self) -> None:
        await self._events.aclose()
        if not self._recorded:
            self._recorded = True
            self._service.metrics.active_streams -= 1
            self._ended = time.monotonic()
            if self.usage is not None:
                self._record(self.usage)  # the usual case: nothing to await, no task needed
            else:
                self._service.spawn(self._count_and_record())

    async def _count_and_record(self) -> None:
        """Disconnected before the provider reported: bill what was generated."""
        completion = await self.entry.provider.count_text_tokens(self.text, self.entry.upstream_model)
        self.usage = Usage(self.prompt_tokens, completion)
        self._record(self.usage)

    def _record(self, usage: Usage) -> None:
        try:
            self._record_now(usage)
        except Exception:  # bookkeeping never breaks the answer it counts
            log.exception("could not record a generation")

    def _record_now(self, usage: Usage) -> None:
        self._service.metrics.observe_generation(self.model.id, self.started, self.first_token_at, self._ended,
                                                 usage.completion_tokens, self.finish_reason or "cancelled")
        self._service.record_usage_soon(
            UsageRecord(
                model=self.model.id,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                cost=self.served_by.cost(usage) if self.served_by is not None else self.model.cost(usage),
                owner=self.request.owner,
                user_id=self.request.user_id,
                request_id=self.request.request_id,
            )
        )

    async def collect(self) -> str:
        async for _ in self:
            pass
        return self.text


@dataclass(frozen=True)
class InputLimits:
    max_messages: int = 1000
    max_tokens: int = 4096


class ChatService:
    retriever: grounding.Retriever | None = None  # set by the app; None: RAG requests get no sources

    def __init__(
        self,
        registry: ModelRegistry,
        bots: BotRepository,
        usage: UsageRepository,
        limits: InputLimits | None = None,
        limiter: Limiter | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.registry = registry
        self.bots = bots
        self.usage = usage
        self.limits = limits or InputLimits()
        self.limiter = limiter or Limiter(MemoryLimits())
        self.metrics = metrics or Metrics()
        self.usage_writer = UsageWriter(usage)
        self._tasks: set[asyncio.Task[object]] = set()

    def check_limits(self, messages: list[Message], params: SamplingParams) -> None:
        """Refuse inputs over the configured caps (the dialect renders ``InvalidRequest``)."""
        if len(messages) > self.limits.max_messages:
            raise InvalidRequest(
                "Too many messages",
                [FieldProblem("messages", f"at most {self.limits.max_messages} messages are allowed")],
            )
        if params.max_tokens is not None and params.max_tokens > self.limits.max_tokens:
            raise InvalidRequest(
                "max_tokens too large",
                [FieldProblem("max_tokens", f"must be at most {self.limits.max_tokens}")],
            )

    # -- background work -------------------------------------------------------

    def spawn(self, coro) -> asyncio.Task:  # noqa: ANN001
        """Run ``coro`` in the background, kept alive and awaited at shutdown."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    async def drain(self, timeout: float = 10.0) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
        await self.usage_writer.flush()

    # -- catalog and bots ------------------------------------------------------

    def models(self) -> list[ModelInfo]:
        return self.registry.models()

    def model(self, model_id: str | None) -> ModelInfo:
        return self.registry.get(model_id).info

    async def bot(self, uid_or_slug: str, owner: str | None = None) -> Bot:
        bot = await self.bots.get(uid_or_slug, owner)
        if bot is None:
            raise NotFound("bot", uid_or_slug)
        return bot

    async def ensure_default_bot(self) -> Bot:
        return await self.bots.ensure(
            Bot(uid="", slug=DEFAULT_BOT_SLUG, name="Default", system_prompt=DEFAULT_SYSTEM_PROMPT)
        )

    async def record_usage(self, record: UsageRecord) -> None:
        """Store ``record`` (per key, also for admin keys) and charge the token quotas; returns
        once the row is stored (a stored chat's ``done`` follows it)."""
        record, key = self._owned(record)
        await self.usage_writer.write(record)
        await self._charge(record, key)

    def record_usage_soon(self, record: UsageRecord) -> None:
        """``record_usage`` without waiting (a stateless chat: nothing follows the row). The row
        joins the next batch of ``usage_writer``; quotas are charged in a task when there are any."""
        record, key = self._owned(record)
        self.usage_writer.submit(record)
        if key is not None or record.user_id:
            self.spawn(self._charge(record, key))

    @staticmethod
    def _owned(record: UsageRecord) -> tuple[UsageRecord, KeyQuota | None]:
        key = current_key.get()
        if key is not None and record.owner is None:
            record = replace(record, owner=key.key_id)
        return record, key

    async def _charge(self, record: UsageRecord, key: KeyQuota | None) -> None:
        try:
            tokens = record.prompt_tokens + record.completion_tokens
            if key is not None:
                await self.limiter.charge(f"key:{key.key_id}", key.quota, tokens)
            await self.limiter.charge_user(record.user_id, tokens)
        except Exception:  # usage must never break a chat; it is logged for the operator
            log.exception("could not charge usage")

    # -- stateless chats -------------------------------------------------------

    async def open_stream(self, request: ChatRequest) -> Generation:
        """Check ``request``, start generating, and wait for the first event."""
        self.check_limits(request.messages, request.params)
        await self.limiter.check_user(request.user_id)
        entry = self.registry.get(request.model or (request.bot.model if request.bot else None))
        messages = apply_bot(request.messages, request.bot)
        sources: list[Source] = []
        if request.rag and self.retriever is not None:
            messages, sources = await self._ground(entry, messages, request)
        prompt_tokens = await check_fits(entry.provider, entry.upstream_model, messages, entry.info.context_length)
        params = request.params
        room = entry.info.context_length - prompt_tokens
        if params.max_tokens is None or params.max_tokens > room:
            params = replace(params, max_tokens=room)
        provider_request = ProviderRequest(model=entry.upstream_model, messages=messages, params=params)
        events = entry.provider.stream(provider_request)  # Generation maps its failures (see ``guarded``)
        generation = Generation(self, entry, request, events, prompt_tokens)
        generation.sources = sources
        await generation.prime()
        return generation

    async def _ground(self, entry: CatalogEntry, messages: list[Message], request: ChatRequest
                      ) -> tuple[list[Message], list[Source]]:
        """Add the retriever's passages for the latest user message, within the model's budget:
        at most ``context_share`` of its context, leaving room for the prompt and the answer."""
        assert self.retriever is not None
        query = grounding.query_of(messages)
        if not query:
            return messages, []
        found = await self.retriever.context_for(query, request.owner)
        context = entry.info.context_length
        prompt = await entry.provider.count_tokens(messages, entry.upstream_model)
        answer = request.params.max_tokens or min(512, context // 4)
        budget = min(int(context * self.retriever.context_share), context - prompt - answer)
        return await grounding.fit(messages, found, entry.provider, entry.upstream_model, budget)

    async def complete(self, request: ChatRequest) -> Generation:
        generation = await self.open_stream(request)
        await generation.collect()
        return generation


def _unexpected(exc: Exception) -> UpstreamError:
    """A provider failure that is not a ``HubbubError``: logged with its traceback, and an
    ``UpstreamError`` for the client, never a bare 500."""
    log.error("provider failed", exc_info=exc)
    return UpstreamError("Model error", details=type(exc).__name__)


async def guarded(events: AsyncIterator[ProviderEvent]) -> AsyncIterator[ProviderEvent]:
    """Turn any unexpected provider failure into ``UpstreamError``, never a bare 500."""
    try:
        async for event in events:
            yield event
    except HubbubError:
        raise
    except Exception as exc:
        raise _unexpected(exc) from exc
    finally:
        await events.aclose()  # type: ignore[attr-defined]
