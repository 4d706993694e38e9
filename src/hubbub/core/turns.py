"""Stored-chat turns (builder and conversations dialects).

A turn stores the new user message and an assistant row (status ``streaming``)
before the first token, then generates in a background task that outlives the
HTTP request: every event goes to the stream hub under the chat id (so any
number of clients can follow, and a reloaded page can resume), the row is
flushed at least every ``flush_interval_seconds``, and the final status is
``complete``, ``stopped`` (explicit stop), ``interrupted`` (shutdown) or
``error``. What was generated is always kept.

After a complete turn, ``TurnHook``\\ s run (the builder's DSL extraction) and
may publish more events before ``Done``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Protocol

from hubbub.core.context import completion_reserve, trim_to_fit
from hubbub.core.events import ChatCreated, Done, ErrorEvent, Event, Finish, ServedBy, TextDelta, UsageReport
from hubbub.core.ids import new_id
from hubbub.core.service import ChatService, guarded, apply_bot
from hubbub.core.types import (
    Bot,
    Conversation,
    Message,
    MessageStatus,
    ProviderRequest,
    SamplingParams,
    StoredMessage,
    Usage,
    UsageRecord,
)
from hubbub.errors import ErrorInfo, HubbubError
from hubbub.providers.registry import CatalogEntry
from hubbub.storage.repositories import ConversationRepository
from hubbub.streams.base import StreamHub

log = logging.getLogger(__name__)


@dataclass
class TurnContext:
    """What a hook sees once a turn has completed."""

    conversation: Conversation
    messages: list[Message]  # the whole stored history, the new reply included
    reply: str
    entry: CatalogEntry
    options: dict[str, Any]


class TurnHook(Protocol):
    """Runs after each complete turn; its events are published before ``Done``.

    A hook may also define ``async def before_turn(conv, messages, options) -> list[Message]``
    (``messages``: the history plus the new messages; ``options``: ``TurnOptions.hook_options``):
    the messages it returns (system messages) join this turn's prompt only, never the stored chat.
    """

    async def after_turn(self, ctx: TurnContext) -> list[Event]: ...


@dataclass
class Turn:
    """A started turn. ``message_id`` (the assistant row) also names its event channel."""

    conversation_id: str
    message_id: str


@dataclass
class _Running:
    task: asyncio.Task[None]
    message_id: str
    stop_requested: bool = False
    generating: bool = False  # only the generation is ever cancelled, never the final bookkeeping


@dataclass
class TurnOptions:
    model: str | None = None
    params: SamplingParams = field(default_factory=SamplingParams)
    bot: Bot | None = None
    owner: str | None = None
    user_id: str | None = None
    request_id: str | None = None
    hook_options: dict[str, Any] = field(default_factory=dict)


class TurnRunner:
    def __init__(
        self,
        service: ChatService,
        conversations: ConversationRepository,
        hub: StreamHub,
        *,
        flush_interval: float = 1.0,
        on_disconnect: str = "continue",
    ) -> None:
        self.service = service
        self.conversations = conversations
        self.hub = hub
        self.flush_interval = flush_interval
        self.on_disconnect = on_disconnect
        self.hooks: list[TurnHook] = []
        self._running: dict[str, _Running] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._listener: asyncio.Task[None] | None = None

    def is_running(self, conversation_id: str) -> bool:
        return conversation_id in self._running

    async def start(self, conv: Conversation, new_messages: list[Message], opts: TurnOptions) -> Turn:
        """Check, store and start a turn. Errors before any storage: model, context length."""
        lock = self._locks.setdefault(conv.id, asyncio.Lock())
        async with lock:  # one turn at a time per conversation, in arrival order
            previous = self._running.get(conv.id)
            if previous is not None:
                with contextlib.suppress(BaseException):
                    await asyncio.shield(previous.task)
            self.service.check_limits(new_messages, opts.params)
            await self.service.limiter.check_user(opts.user_id)
            entry = self.service.registry.get(opts.model or conv.model or (opts.bot.model if opts.bot else None))
            stored = await self.conversations.messages(conv.id)
            history = [Message(m.role, m.content) for m in stored if m.content or m.role != "assistant"]
            extra = await self._before_turn(conv, history + new_messages, opts)
            prompt = apply_bot(history + extra + new_messages, opts.bot)
            reserve = completion_reserve(entry.info.context_length, opts.params.max_tokens)
            prompt, prompt_tokens = await trim_to_fit(
                entry.provider, entry.upstream_model, prompt, entry.info.context_length, reserve
            )
            room = entry.info.context_length - prompt_tokens
            params = opts.params
            if params.max_tokens is None or params.max_tokens > room:
                params = SamplingParams(**{**params.__dict__, "max_tokens": room})
            reply = StoredMessage(
                id=new_id("msg_"), conversation_id=conv.id, role="assistant", content="", status="streaming",
                prompt_tokens=prompt_tokens, model=entry.info.id,
            )
            rows = [StoredMessage(id=new_id("msg_"), conversation_id=conv.id, role=m.role, content=m.content)
                    for m in new_messages]
            await self.conversations.add_messages(conv.id, [*rows, reply])
            # Each generation publishes on its own channel (named by its assistant message id), so
            # a client that subscribes late never sees the next turn's events; the hub remembers
            # the conversation's latest generation for resuming, on any replica.
            await self.hub.open(reply.id)
            await self.hub.set_latest(conv.id, reply.id)
            await self.hub.publish(reply.id, ChatCreated(conv.id))
            request = ProviderRequest(model=entry.upstream_model, messages=prompt, params=params)
            running = _Running(task=None, message_id=reply.id)  # type: ignore[arg-type]
            self._running[conv.id] = running
            running.task = self.service.spawn(self._run(conv, entry, request, reply, prompt_tokens, opts, running))
            return Turn(conv.id, reply.id)

    async def _before_turn(self, conv: Conversation, messages: list[Message], opts: TurnOptions) -> list[Message]:
        """What hooks with a ``before_turn`` add to this turn's prompt (a failing hook adds nothing)."""
        added: list[Message] = []
        for hook in self.hooks:
            before = getattr(hook, "before_turn", None)
            if before is None:
                continue
            try:
                added += await before(conv, messages, opts.hook_options)
            except Exception:  # a hook never costs the user their answer
                log.exception("turn hook failed before the turn")
        return added

    async def stop(self, conversation_id: str, wait: float = 10.0) -> bool:
        """Stop the conversation's running turn, on whichever replica runs it; False if none runs.

        The partial answer is kept (status ``stopped``); returns once the turn has ended."""
        if await self._stop_local(conversation_id):
            return True
        if not self.hub.shared:
            return False
        key = await self.hub.latest(conversation_id)
        if key is None or not await self.hub.is_live(key):
            return False
        await self.hub.request_stop(conversation_id)
        with contextlib.suppress(asyncio.TimeoutError):
            async with asyncio.timeout(wait):
                async for _, event in self.hub.subscribe(key):
                    if isinstance(event, Done):
                        break
        return True

    def listen(self) -> None:
        """Serve stop requests from other replicas (call once the loop runs)."""
        if self.hub.shared and self._listener is None:
            self._listener = asyncio.get_running_loop().create_task(self._serve_stops())

    async def _serve_stops(self) -> None:
        while True:
            try:
                async for conversation_id in self.hub.stop_requests():
                    await self._stop_local(conversation_id)
            except asyncio.CancelledError:
                raise
            except Exception:  # a Redis hiccup must not end stop handling for good
                log.warning("stop listener failed; retrying", exc_info=True)
                await asyncio.sleep(1.0)

    async def shutdown(self, grace: float) -> None:
        """Let running turns finish for up to ``grace`` seconds, then end the rest as ``interrupted``."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(BaseException):
                await self._listener
        tasks = [r.task for r in self._running.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        for running in list(self._running.values()):
            if running.generating:
                running.task.cancel()  # not stop_requested: the row ends ``interrupted``
        tasks = [r.task for r in self._running.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=10)

    async def _stop_local(self, conversation_id: str) -> bool:
        running = self._running.get(conversation_id)
        if running is None:
            return False
        running.stop_requested = True
        # A task not yet started sees ``stop_requested`` when it does; one already
        # finishing must not be cancelled, or its row would stay ``streaming``.
        if running.generating:
            running.task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.shield(running.task)
        return True

    async def latest_generation(self, conversation_id: str) -> str | None:
        return await self.hub.latest(conversation_id)

    async def follow(
        self, conversation_id: str, after: int = 0, generation: str | None = None
    ) -> AsyncIterator[tuple[int, Event]]:
        """Events of ``generation`` (default: the latest of the conversation) after ``after``;
        honours ``on_disconnect``."""
        key = generation or await self.hub.latest(conversation_id)
        if key is None:
            return
        finished = False
        try:
            async for seq, event in self.hub.subscribe(key, after):
                yield seq, event
                if isinstance(event, Done):
                    finished = True
                    return
        finally:
            if not finished and self.on_disconnect == "stop":
                await self.stop(conversation_id)

    async def _run(
        self,
        conv: Conversation,
        entry: CatalogEntry,
        request: ProviderRequest,
        reply: StoredMessage,
        prompt_tokens: int,
        opts: TurnOptions,
        running: _Running,
    ) -> None:
        parts: list[str] = []
        usage: Usage | None = None
        served: list[ServedBy] = []  # the channel that answered (issue 19): its prices bill the turn
        status: MessageStatus = "complete"
        key = reply.id
        generated = asyncio.Event()
        flusher = asyncio.get_running_loop().create_task(self._flush(reply.id, parts, generated))
        try:
            running.generating = True
            if running.stop_requested:  # stopped before the task had started
                raise asyncio.CancelledError
            async for event in guarded(entry.provider.stream(request)):
                if isinstance(event, TextDelta):
                    parts.append(event.text)
                    await self.hub.publish(key, event)
                elif isinstance(event, UsageReport):
                    usage = event.usage
                elif isinstance(event, Finish):
                    pass
                elif isinstance(event, ServedBy):
                    served.append(event)
        except asyncio.CancelledError:
            status = "stopped" if running.stop_requested else "interrupted"
        except Exception as exc:
            running.generating = False
            status = "error"
            info = ErrorInfo.from_exception(exc)
            if not isinstance(exc, HubbubError):
                log.exception("turn failed")
            await self.hub.publish(key, ErrorEvent(info.code, info.message))
        running.generating = False
        generated.set()
        with contextlib.suppress(BaseException):
            await flusher  # never writes after the final update below
        try:
            await self._finish(conv, entry, reply, prompt_tokens, parts, usage, status, opts,
                               served[-1] if served else None)
        finally:
            self._running.pop(conv.id, None)
            lock = self._locks.get(conv.id)
            if lock is not None and not lock.locked():
                del self._locks[conv.id]  # nothing waits on it: keep the map as small as the live set
            await self.hub.close(key)

    async def _flush(self, message_id: str, parts: list[str], generated: asyncio.Event) -> None:
        """Store the text so far every ``flush_interval`` until ``generated`` is set.

        On a clock, not per token: text written just before the model pauses must not wait
        for the next token, or a crash during the pause would lose more than the last second.
        """
        flushed = 0
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(generated.wait(), self.flush_interval)
            if generated.is_set():
                return
            if len(parts) != flushed:
                flushed = len(parts)
                try:
                    await self.conversations.update_message(message_id, content="".join(parts), status="streaming")
                except Exception:  # the final update still comes; a missed flush only widens the window
                    log.warning("could not flush a streaming message", exc_info=True)

    async def _finish(
        self,
        conv: Conversation,
        entry: CatalogEntry,
        reply: StoredMessage,
        prompt_tokens: int,
        parts: list[str],
        usage: Usage | None,
        status: MessageStatus,
        opts: TurnOptions,
        served: ServedBy | None = None,
    ) -> None:
        text = "".join(parts)
        if usage is None:
            completion = await entry.provider.count_text_tokens(text, entry.upstream_model) if text else 0
            usage = Usage(prompt_tokens, completion)
        await self.conversations.update_message(
            reply.id, content=text, status=status, prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
        )
        await self.service.record_usage(
            UsageRecord(
                model=entry.info.id, prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
                cost=served.cost(usage) if served else entry.info.cost(usage), owner=opts.owner,
                user_id=opts.user_id, conversation_id=conv.id, message_id=reply.id, request_id=opts.request_id,
            )
        )
        if status == "complete" and self.hooks:
            stored = await self.conversations.messages(conv.id)
            ctx = TurnContext(conv, [Message(m.role, m.content) for m in stored], text, entry, opts.hook_options)
            for hook in self.hooks:
                try:
                    for event in await hook.after_turn(ctx):
                        await self.hub.publish(reply.id, event)
                except Exception:  # a hook never costs the user their answer
                    log.exception("turn hook failed")
        await self.hub.publish(reply.id, Done(status, usage))
