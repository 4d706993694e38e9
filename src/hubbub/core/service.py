"""ChatService: the one generation pipeline every dialect goes through.

    dialect ──► ChatRequest ──► prepare ──► generate ──► Generation ──► sink
                                  │                           │          ├─ the response (stateless)
                                  │                           │          └─ store + stream hub (turns.py)
      limits, user quota, model or bot, bot prompt,      usage, metrics,
      RAG, capabilities, fit the context (check or trim), cancellation
      max_tokens default and cap

``open_stream`` (bento, bots, OpenAI) prepares, generates and waits for the first event before
a dialect commits to a 200, so early failures get proper statuses. A stored turn
(``turns.TurnRunner``: builder, conversations) prepares with ``trim=True`` and reads the same
``Generation`` into the store and the stream hub. So limits, usage, metrics and cancellation
are written once, and are right for every dialect by construction.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace

from hubbub.core import grounding
from hubbub.core.capabilities import check_capabilities, check_raw_prompt
from hubbub.core.context import check_fits, completion_reserve, trim_to_fit
from hubbub.core.generation import Generation
from hubbub.core.types import Bot, Message, ModelInfo, ProviderRequest, SamplingParams, Source, Tools, UsageRecord
from hubbub.errors import ContextTooLong, FieldProblem, InvalidRequest, NotFound
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
    tools: Tools | None = None
    # A stored turn's attribution (usage rows name the conversation and the assistant message).
    conversation_id: str | None = None
    message_id: str | None = None
    prompt: str | None = None  # a raw text prompt instead of messages (/v1/completions)


@dataclass
class Prepared:
    """A request ready to generate: the model chosen, the prompt fitted, the parameters final."""

    request: ChatRequest
    entry: CatalogEntry
    provider_request: ProviderRequest
    prompt_tokens: int
    sources: list[Source] = field(default_factory=list)


def apply_bot(messages: list[Message], bot: Bot | None) -> list[Message]:
    """Prepend the bot's system prompt (before any the client sent)."""
    if bot is None or not bot.system_prompt:
        return list(messages)
    return [Message("system", bot.system_prompt), *messages]


def bot_tools(tools: Tools | None, bot: Bot | None) -> Tools | None:
    """The request's tools, or else the bot's default tools, offered with ``auto`` (applied like its
    system prompt: used when the request names none; docs/tool-calling.md)."""
    if tools is not None or bot is None or not bot.tools:
        return tools
    return Tools(bot.tools)


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

    # -- the pipeline -------------------------------------------------------------

    async def prepare(self, request: ChatRequest, *, trim: bool = False,
                      sent: list[Message] | None = None) -> Prepared:
        """Check ``request`` and make it ready to generate; every error a request can earn before
        any output is raised here.

        ``trim``: a stored conversation's history is trimmed, oldest turns first, to leave room
        for the answer; otherwise a prompt that cannot fit is ``ContextTooLong``. ``sent``: the
        messages the client sent, when ``request.messages`` also holds stored history (the
        input limits apply to what was sent).
        """
        self.check_limits(request.messages if sent is None else sent, request.params)
        await self.limiter.check_user(request.user_id)
        entry = self.registry.get(request.model or (request.bot.model if request.bot else None))
        if request.prompt is not None:
            return await self._prepare_raw(request, entry)
        check_capabilities(entry, request.messages, request.params, request.tools)  # indexes as the client sent them
        messages = apply_bot(request.messages, request.bot)
        sources: list[Source] = []
        if request.rag and self.retriever is not None:
            messages, sources = await self._ground(entry, messages, request)
        context = entry.info.context_length
        # Bounded by default (issue 21): a request that names no length gets the model's default
        # answer length, on every dialect; an explicit one may go up to the context room (and
        # max_tokens_cap, check_limits). docs/configuration.md, "Answer length".
        wanted = request.params.max_tokens or min(entry.info.default_max_tokens, self.limits.max_tokens)
        if trim:
            reserve = completion_reserve(context, wanted)
            messages, prompt_tokens = await trim_to_fit(entry.provider, entry.upstream_model, messages, context,
                                                        reserve, request.tools)
        else:
            prompt_tokens = await check_fits(entry.provider, entry.upstream_model, messages, context, request.tools)
        params = request.params
        room = context - prompt_tokens
        if params.max_tokens != min(wanted, room):
            params = replace(params, max_tokens=min(wanted, room))
        provider_request = ProviderRequest(model=entry.upstream_model, messages=messages, params=params,
                                           tools=request.tools)
        return Prepared(request, entry, provider_request, prompt_tokens, sources)

    async def _prepare_raw(self, request: ChatRequest, entry: CatalogEntry) -> Prepared:
        """A raw text prompt (``/v1/completions``): the same checks, limits and ``max_tokens``
        clamp as a chat, with the prompt counted as text; no bot prompt, RAG or tools apply."""
        check_raw_prompt(entry)
        check_capabilities(entry, [], request.params, None)
        prompt = request.prompt or ""
        context = entry.info.context_length
        prompt_tokens = await entry.provider.count_text_tokens(prompt, entry.upstream_model) + 1  # + BOS
        if prompt_tokens >= context:
            raise ContextTooLong(context, prompt_tokens)
        params = request.params
        room = context - prompt_tokens
        if params.max_tokens is None or params.max_tokens > room:
            params = replace(params, max_tokens=room)
        provider_request = ProviderRequest(model=entry.upstream_model, messages=[], params=params, prompt=prompt)
        return Prepared(request, entry, provider_request, prompt_tokens)

    def generate(self, prepared: Prepared, *, durable: bool = False) -> Generation:
        """Start the provider on ``prepared``. ``durable``: a stored turn, whose usage row is
        written (and awaited) by ``Generation.settle`` before its ``done``."""
        events = prepared.entry.provider.stream(prepared.provider_request)
        return Generation(self, prepared, events, durable=durable)

    async def open_stream(self, request: ChatRequest) -> Generation:
        """A stateless answer: prepare, start generating, and wait for the first event."""
        generation = self.generate(await self.prepare(request))
        await generation.prime()
        return generation

    async def open_streams(self, request: ChatRequest, n: int) -> list[Generation]:
        """``n`` answers to one request (OpenAI's ``n``), started together so the embedded model
        decodes them as one batch (docs/api-decisions.md, "n"); each is a generation of its own
        (its own usage row). If one cannot start, the others are stopped and its error raised."""
        if n == 1:
            return [await self.open_stream(request)]
        started = await asyncio.gather(*(self.open_stream(_choice(request, i)) for i in range(n)),
                                       return_exceptions=True)
        failed = next((g for g in started if isinstance(g, BaseException)), None)
        if failed is not None:
            for g in started:
                if isinstance(g, Generation):
                    await g.settle()
            raise failed
        return started  # type: ignore[return-value]

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
        answer = request.params.max_tokens or min(entry.info.default_max_tokens, context // 4)
        budget = min(int(context * self.retriever.context_share), context - prompt - answer)
        return await grounding.fit(messages, found, entry.provider, entry.upstream_model, budget)

    async def complete(self, request: ChatRequest) -> Generation:
        generation = await self.open_stream(request)
        await generation.collect()
        return generation


def _choice(request: ChatRequest, index: int) -> ChatRequest:
    """Choice ``index`` of an ``n`` > 1 request: with a ``seed``, choice i draws with seed + i, so
    the choices differ from each other and the same request gives the same choices again
    (docs/sampling.md, "n"); without one each draws at random anyway."""
    seed = request.params.seed
    if index == 0 or seed is None:
        return request
    shifted = seed + index if seed + index < 2**63 else seed - index  # an int64 still, as the edge took it
    return replace(request, params=replace(request.params, seed=shifted))

