"""One running generation: the provider's events, tracked, with its usage and metrics recorded once.

Every dialect's answer is a ``Generation`` (``ChatService.generate``). Its reader is the
*sink*: a stateless route iterates it straight into the response; a stored turn
(``turns.TurnRunner``) iterates it into the stream hub and the database. Either way the
generation counts ``active_streams``, time to first token and tokens/s on ``/metrics``, and
records usage exactly once — also when the reader leaves early (the text so far is then counted
with the model's tokenizer), so no dialect can forget it.

It also assembles what the model said into an assistant ``Message`` (``message``): text,
reasoning and tool calls as typed parts, the tool-call argument fragments joined per call.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, AsyncIterator

from hubbub.core.events import (
    Finish,
    ProviderEvent,
    ReasoningDelta,
    ServedBy,
    TextDelta,
    ToolCallDelta,
    UsageReport,
)
from hubbub.core.types import (
    FinishReason,
    Message,
    ModelInfo,
    Part,
    ReasoningPart,
    Source,
    TextPart,
    TokenLogprob,
    ToolCall,
    Usage,
    UsageRecord,
)
from hubbub.errors import HubbubError, UpstreamError

if TYPE_CHECKING:
    from hubbub.core.service import ChatService, Prepared
    from hubbub.providers.registry import CatalogEntry

log = logging.getLogger(__name__)


class _Assembly:
    """The answer's parts in the order they began: runs of text, reasoning blocks, tool calls."""

    __slots__ = ("items", "calls")

    def __init__(self) -> None:
        self.items: list[list] = []  # [kind, data...]: ["text", [pieces]] | ["reason", [pieces], sig, red] | ["call", idx]
        self.calls: dict[int, list[str]] = {}  # index -> [id, name, argument fragments...]

    def text(self, text: str) -> None:
        items = self.items
        if items and items[-1][0] == "text":
            items[-1][1].append(text)
        else:
            items.append(["text", [text]])

    def reasoning(self, delta: ReasoningDelta) -> None:
        items = self.items
        if delta.redacted is not None:
            items.append(["reason", [], None, delta.redacted])
            return
        if not items or items[-1][0] != "reason" or items[-1][2] is not None or items[-1][3] is not None:
            items.append(["reason", [], None, None])
        block = items[-1]
        if delta.text:
            block[1].append(delta.text)
        if delta.signature is not None:
            block[2] = delta.signature  # a signature closes its block: the next reasoning starts another

    def call(self, delta: ToolCallDelta) -> None:
        call = self.calls.get(delta.index)
        if call is None:
            call = self.calls[delta.index] = [delta.id or "", delta.name or ""]
            self.items.append(["call", delta.index])
        else:
            if delta.id and not call[0]:
                call[0] = delta.id
            if delta.name and not call[1]:
                call[1] = delta.name
        if delta.arguments:
            call.append(delta.arguments)

    def parts(self) -> tuple[Part, ...]:
        out: list[Part] = []
        for item in self.items:
            if item[0] == "text":
                out.append(TextPart("".join(item[1])))
            elif item[0] == "reason":
                out.append(ReasoningPart("".join(item[1]), item[2], item[3]))
            else:
                call = self.calls[item[1]]
                out.append(ToolCall(call[0], call[1], "".join(call[2:]) or "{}"))
        return tuple(out)


class Generation:
    """Iterate it for the provider's events; it tracks them and records its own usage."""

    def __init__(
        self,
        service: "ChatService",
        prepared: "Prepared",
        events: AsyncIterator[ProviderEvent],
        *,
        durable: bool = False,
    ) -> None:
        self._service = service
        self.prepared = prepared
        self.entry: "CatalogEntry" = prepared.entry
        self.model: ModelInfo = prepared.entry.info
        self.request = prepared.request
        self.prompt_tokens = prepared.prompt_tokens
        self.sources: list[Source] = prepared.sources  # the passages put into the prompt (RAG), best first
        self._events = events
        # durable (a stored turn): its usage row is written by ``settle``, which the turn awaits
        # before ``done``; otherwise the row joins the next batch when the generation closes.
        self._durable = durable
        self._first: ProviderEvent | None = None
        self.text_parts: list[str] = []
        self.logprobs: list[TokenLogprob] = []  # the answer's tokens, when the request asked for them
        self._assembly: _Assembly | None = None  # only once something other than text arrives
        self.usage: Usage | None = None
        self.finish_reason: FinishReason | None = None
        self.stop_sequence: str | None = None
        self.served_by: ServedBy | None = None  # the channel answering (the latest), when a router says
        self._closed = False
        self._recorded = False
        self.started = time.monotonic()
        self.first_token_at: float | None = None
        self._ended = self.started
        service.metrics.active_streams += 1

    # -- what was generated ------------------------------------------------------

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [p for p in self.parts if isinstance(p, ToolCall)]

    @property
    def reasoning_text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, ReasoningPart)) if self._assembly else ""

    @property
    def parts(self) -> tuple[Part, ...]:
        if self._assembly is None:
            text = self.text
            return (TextPart(text),) if text else ()
        return self._assembly.parts()

    @property
    def message(self) -> Message:
        """The answer as an assistant message (text, reasoning and tool calls as parts)."""
        return Message("assistant", self.parts)

    # -- reading -----------------------------------------------------------------

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
        # The provider's events, tracked here: one generator between the provider and the
        # sink on the path of every token.
        try:
            if self._first is not None:
                first, self._first = self._first, None
                self._track(first)
                yield first
            async for event in self._events:
                if type(event) is ServedBy:  # remembered, never passed on to a sink
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
        if type(event) is TextDelta:
            if self.first_token_at is None:
                self.first_token_at = time.monotonic()
            self.text_parts.append(event.text)
            if event.logprobs:
                self.logprobs.extend(event.logprobs)
            if self._assembly is not None:
                self._assembly.text(event.text)
        elif isinstance(event, UsageReport):
            self.usage = event.usage
        elif isinstance(event, Finish):
            self.finish_reason = event.reason
            self.stop_sequence = event.stop_sequence
        elif isinstance(event, (ToolCallDelta, ReasoningDelta)):
            if self.first_token_at is None:
                self.first_token_at = time.monotonic()
            if self._assembly is None:
                self._assembly = _Assembly()
                if self.text_parts:
                    self._assembly.text(self.text)
            if isinstance(event, ToolCallDelta):
                self._assembly.call(event)
            else:
                self._assembly.reasoning(event)

    async def collect(self) -> str:
        async for _ in self:
            pass
        return self.text

    # -- bookkeeping ---------------------------------------------------------------

    async def _close(self) -> None:
        await self._events.aclose()  # type: ignore[attr-defined]
        if self._closed:
            return
        self._closed = True
        self._service.metrics.active_streams -= 1
        self._ended = time.monotonic()
        if self._durable:
            return  # ``settle`` records it, awaited by the stored turn
        if self.usage is not None:
            self._record(self.usage)  # the usual case: nothing to await, no task needed
        else:
            self._service.spawn(self._count_and_record())

    async def settle(self) -> Usage:
        """Close the generation and return its usage; a durable one's row is stored on return."""
        await self._close()
        if self.usage is None:
            self.usage = await self._counted()
        if self._durable and not self._recorded:
            self._recorded = True
            self._observe(self.usage)
            await self._service.record_usage(self._usage_record(self.usage))
        return self.usage

    async def _counted(self) -> Usage:
        """Disconnected (or stopped) before the provider reported: bill what was generated."""
        text = self.text
        completion = await self.entry.provider.count_text_tokens(text, self.entry.upstream_model) if text else 0
        return Usage(self.prompt_tokens, completion)

    async def _count_and_record(self) -> None:
        self.usage = await self._counted()
        self._record(self.usage)

    def _record(self, usage: Usage) -> None:
        if self._recorded:
            return
        self._recorded = True
        try:
            self._observe(usage)
            self._service.record_usage_soon(self._usage_record(usage))
        except Exception:  # bookkeeping never breaks the answer it counts
            log.exception("could not record a generation")

    def _observe(self, usage: Usage) -> None:
        self._service.metrics.observe_generation(self.model.id, self.started, self.first_token_at, self._ended,
                                                 usage.completion_tokens, self.finish_reason or "cancelled")

    def _usage_record(self, usage: Usage) -> UsageRecord:
        request = self.request
        return UsageRecord(
            model=self.model.id,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost=self.served_by.cost(usage) if self.served_by is not None else self.model.cost(usage),
            owner=request.owner,
            user_id=request.user_id,
            conversation_id=request.conversation_id,
            message_id=request.message_id,
            request_id=request.request_id,
        )


def _unexpected(exc: Exception) -> UpstreamError:
    """A provider failure that is not a ``HubbubError``: logged with its traceback, and an
    ``UpstreamError`` for the client, never a bare 500."""
    log.error("provider failed", exc_info=exc)
    return UpstreamError("Model error", details=type(exc).__name__)
