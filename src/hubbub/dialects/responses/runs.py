"""A response's life: started, followed, replayed from any event on any replica, cancelled, deleted.

A stored response (``store`` true, the default) is a turn of a conversation of its own, run by
the core's ``TurnRunner``: its events go to the stream hub (so any replica can replay them), its
input and answer are stored as messages, and the turn's ``on_finish`` writes the response's
final state (``storage/responses.py``) before ``Done`` is published — so whoever sees the end of
the stream reads the final state. The prompt is the chain's history (``previous_response_id``,
``ResponseRepository.history``) plus this request's input; ``instructions`` join this turn's
prompt only, as OpenAI's do. A response with ``store: false`` is a stateless generation
(``ChatService.prepare`` → ``generate``) framed straight from the model: nothing is kept.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator

from hubbub.core.events import ErrorEvent, ReasoningDelta, TextDelta, ToolCallDelta
from hubbub.core.generation import Generation
from hubbub.core.ids import new_id, now_ms
from hubbub.core.service import ChatRequest, ChatService, bot_params
from hubbub.core.turns import TurnOptions, TurnRunner
from hubbub.core.types import Conversation, Message, MessageStatus, ReasoningPart, TextPart, ToolCall, Usage
from hubbub.dialects.responses import adapter
from hubbub.dialects.responses.adapter import INCOMPLETE_REASONS, item_status, output_items, response_body, usage_body
from hubbub.dialects.responses.events import EventFramer
from hubbub.dialects.responses.protocol import ResponsesRequest
from hubbub.errors import ErrorInfo, FieldProblem, HubbubError, InvalidRequest, NotFound, UpstreamError
from hubbub.http.sse import Last
from hubbub.storage.responses import ResponseRepository, StoredResponse

if TYPE_CHECKING:
    from hubbub.container import Container

KIND = "response"  # conversations.kind of a stored response's own conversation
STARTING_MS = 60_000  # the longest a response may take from its row to its turn's start
INTERRUPTED = {"code": "server_error",
               "message": "The response was interrupted before it finished: its server stopped."}


@dataclass
class Deps:
    """What this dialect uses of the app (built per request: references only)."""

    service: ChatService
    turns: TurnRunner
    repo: ResponseRepository

    @classmethod
    def of(cls, container: "Container") -> "Deps":
        assert container.responses is not None
        return cls(container.service, container.turns, container.responses)


def sse(event: dict[str, Any]) -> bytes:
    """One stream event as OpenAI frames it: ``event: <type>`` then ``data: <json>``."""
    return b"event: " + event["type"].encode() + b"\ndata: " + adapter.dumps(event) + b"\n\n"


def outcome(status: MessageStatus, finish_reason: str | None, error: ErrorInfo | None
            ) -> tuple[str, str | None, dict[str, Any] | None]:
    """A turn's end as a response's ``status``, ``incomplete_details.reason`` and ``error``."""
    if status == "complete":
        reason = INCOMPLETE_REASONS.get(finish_reason or "")
        return ("incomplete", reason, None) if reason else ("completed", None, None)
    if status == "stopped":
        return "cancelled", None, None
    if status == "interrupted":
        return "failed", None, INTERRUPTED
    return "failed", None, {"code": "server_error", "message": error.message if error else "The model failed."}


# -- starting ------------------------------------------------------------------------------------


async def start(deps: Deps, body: ResponsesRequest, owner: str | None, rid: str) -> "StoredRun | StatelessRun":
    """Check the request and start the response; every error a request can earn before any
    output (bad input, unknown model or parent, context too long) is raised here."""
    adapter.check_unsupported(body)
    new, items = adapter.to_messages(body)
    tools, tools_echo = adapter.to_tools(body)
    params, explicit = adapter.to_params(body)
    bot = await deps.service.bot(body.model[1:], owner) if body.model.startswith("@") else None
    params = bot_params(params, bot, explicit)
    history: list[Message] = []
    if body.previous_response_id is not None:
        parent = await deps.repo.get(body.previous_response_id, owner)
        if parent is None:
            raise NotFound("previous_response", body.previous_response_id)
        if await running(deps, parent):
            raise InvalidRequest(details=[FieldProblem(
                "previous_response_id", f"the response '{parent.id}' is still in progress; continue it once "
                                        "it has finished (or cancel it)")])
        history = await deps.repo.history(parent.id)
    prompt = [Message("system", body.instructions)] if body.instructions else []
    settings = adapter.echo(body, tools_echo)
    response_id = new_id("resp_")
    trim = body.truncation == "auto"
    model = None if bot else body.model
    if deps.repo.purge_due():
        deps.service.spawn(deps.repo.purge_expired())
    if body.store is False:
        chat = ChatRequest(messages=prompt + history + new, model=model, params=params, bot=bot, owner=owner,
                           user_id=body.user, request_id=rid, rag=bool(bot and bot.rag_enabled), tools=tools)
        generation = deps.service.generate(await deps.service.prepare(chat, trim=trim, sent=new))
        await generation.prime()
        return StatelessRun(response_id, settings, now_ms(), generation)

    stored = StoredResponse(id=response_id, model=body.model, request=settings, input_items=items,
                            status="in_progress", owner=owner, previous_id=body.previous_response_id,
                            background=bool(body.background))
    # The row exists before the turn starts: the turn's on_finish may run before start() returns.
    conv = await deps.turns.conversations.create(Conversation(id=response_id, kind=KIND, owner=owner,
                                                              user_id=body.user, model=model))
    await deps.repo.create(stored)
    opts = TurnOptions(model=model, params=params, bot=bot, owner=owner, user_id=body.user, request_id=rid,
                       tools=tools, rag=bool(bot and bot.rag_enabled), history=prompt + history, trim=trim,
                       on_finish=functools.partial(_finished, deps.repo, response_id))
    try:
        turn = await deps.turns.start(conv, new, opts)
    except BaseException:
        await deps.repo.delete(response_id)  # a refused request leaves nothing behind
        raise
    stored.channel = turn.message_id
    await deps.repo.set_channel(response_id, turn.message_id)
    return StoredRun(deps, stored)


async def _finished(repo: ResponseRepository, response_id: str, generation: Generation, status: MessageStatus,
                    usage: Usage, error: ErrorInfo | None) -> None:
    """The turn's ``on_finish``: the response's final state, written before its ``Done``."""
    final, reason, err = outcome(status, generation.finish_reason, error)
    await repo.finish(response_id, status=final, output=output_items(response_id, generation.parts, item_status(final)),
                      usage=usage_body(usage), error=err, incomplete_reason=reason, completed_at=now_ms())


# -- stored responses ---------------------------------------------------------------------------


async def running(deps: Deps, resp: StoredResponse) -> bool:
    """Whether the response's turn still runs (on any replica). A row left unfinished by a
    process that died is not: its channel is no longer live."""
    if resp.finished:
        return False
    if resp.channel is None:  # being started (or its process died while starting it)
        return now_ms() - resp.created_at < STARTING_MS
    return await deps.turns.hub.is_live(resp.channel)


async def current_body(deps: Deps, resp: StoredResponse) -> dict[str, Any]:
    """The response object as stored; one whose process died mid-answer reads ``failed``, with
    what it had generated."""
    if resp.finished:
        return response_body(resp.id, resp.request, resp.created_at, status=resp.status, output=resp.output,
                             usage=resp.usage, error=resp.error, incomplete_reason=resp.incomplete_reason,
                             completed_at_ms=resp.completed_at)
    if await running(deps, resp):
        return response_body(resp.id, resp.request, resp.created_at, status="in_progress")
    return response_body(resp.id, resp.request, resp.created_at, status="failed", error=INTERRUPTED,
                         output=output_items(resp.id, _reply_parts(resp), "incomplete"))


def _reply_parts(resp: StoredResponse) -> tuple:
    if resp.reply_parts is not None:
        return resp.reply_parts
    return (TextPart(resp.reply_text),) if resp.reply_text else ()


async def owned(deps: Deps, response_id: str, owner: str | None) -> StoredResponse:
    resp = await deps.repo.get(response_id, owner)
    if resp is None:
        raise NotFound("response", response_id)  # another key's response too: existence does not leak
    return resp


async def replay(deps: Deps, resp: StoredResponse, after: int = -1, *, stop_on_leave: bool = False
                 ) -> AsyncIterator[bytes]:
    """The response's stream events with ``sequence_number > after``, then live ones to the end.

    The hub's buffer of the turn's core events is framed from its start every time (framing is
    deterministic), so the numbers are the same on every replica and every resume. Once the
    buffer has expired, the stored answer is framed instead (one delta per part).
    ``stop_on_leave``: a client leaving stops the turn when the server's ``on_disconnect`` says so
    (a non-background response's own stream)."""
    framer = EventFramer(resp.id)

    def out(events: list[dict[str, Any]]) -> bytes:
        return b"".join(sse(e) for e in events if e["sequence_number"] > after)

    status = "queued" if resp.background else "in_progress"
    chunk = out(framer.start(response_body(resp.id, resp.request, resp.created_at, status=status)))
    if chunk:
        yield chunk
    seen = False
    if resp.channel is not None:
        source = (deps.turns.follow(resp.id, 0, resp.channel) if stop_on_leave
                  else deps.turns.hub.subscribe(resp.channel, 0))
        # Read to the channel's end (it closes right after ``Done``), so ``follow`` sees the turn
        # finished and a closed client stops nothing; the final state is read once it has.
        async with contextlib.aclosing(source) as events:
            async for _, event in events:
                seen = True
                chunk = out(framer.feed(event))
                if chunk:
                    yield chunk
    latest = await deps.repo.get(resp.id)
    if latest is None:  # deleted meanwhile
        yield Last(b"")
        return
    if not seen:  # the buffer expired: the stored answer, framed
        for event in _as_events(_reply_parts(latest)):
            framer.feed(event)
    yield Last(out(framer.finish(await current_body(deps, latest))))


def _as_events(parts: tuple) -> list:
    """A stored answer as the core events that would have produced it."""
    events: list = []
    calls = 0
    for part in parts:
        if isinstance(part, TextPart) and part.text:
            events.append(TextDelta(part.text))
        elif isinstance(part, ReasoningPart):
            events.append(ReasoningDelta(part.text, signature=part.signature or ""))
        elif isinstance(part, ToolCall):
            events.append(ToolCallDelta(calls, part.id, part.name, part.arguments))
            calls += 1
    return events


class StoredRun:
    def __init__(self, deps: Deps, stored: StoredResponse) -> None:
        self.deps = deps
        self.stored = stored

    async def body(self) -> dict[str, Any]:
        """The finished response (a background one: as queued, at once)."""
        resp = self.stored
        if resp.background:
            return response_body(resp.id, resp.request, resp.created_at, status="queued")
        async with contextlib.aclosing(self.deps.turns.follow(resp.id, 0, resp.channel)) as events:
            async for _ in events:
                pass  # to the end: ``Done``
        latest = await self.deps.repo.get(resp.id)
        if latest is not None and latest.status == "failed" and not latest.output:
            # Failed before any output: a real status, as every route gives an early failure
            # (the response stays stored, ``failed``).
            raise UpstreamError((latest.error or {}).get("message") or "The model failed.")
        return await current_body(self.deps, latest or resp)

    def events(self) -> AsyncIterator[bytes]:
        return replay(self.deps, self.stored, stop_on_leave=not self.stored.background)


# -- responses not stored -----------------------------------------------------------------------


class StatelessRun:
    def __init__(self, response_id: str, settings: dict[str, Any], created_at: int, generation: Generation) -> None:
        self.id = response_id
        self.settings = settings
        self.created_at = created_at
        self.generation = generation

    def _final(self, status: MessageStatus, error: ErrorInfo | None = None) -> dict[str, Any]:
        gen = self.generation
        final, reason, err = outcome(status, gen.finish_reason, error)
        return response_body(self.id, self.settings, self.created_at, status=final,
                             output=output_items(self.id, gen.parts, item_status(final)), usage=usage_body(gen.usage),
                             error=err, incomplete_reason=reason, completed_at_ms=now_ms())

    async def body(self) -> dict[str, Any]:
        await self.generation.collect()
        if self.generation.usage is None:
            await self.generation.settle()
        return self._final("complete")

    async def events(self) -> AsyncIterator[bytes]:
        framer = EventFramer(self.id)
        yield b"".join(sse(e) for e in framer.start(response_body(self.id, self.settings, self.created_at,
                                                                  status="in_progress")))
        status: MessageStatus = "complete"
        error: ErrorInfo | None = None
        try:
            async for event in self.generation:
                events = framer.feed(event)
                if events:
                    yield b"".join(sse(e) for e in events)
        except HubbubError as exc:
            status, error = "error", ErrorInfo.from_exception(exc)
            yield b"".join(sse(e) for e in framer.feed(ErrorEvent(error.code, error.message)))
        if self.generation.usage is None:
            await self.generation.settle()
        yield Last(b"".join(sse(e) for e in framer.finish(self._final(status, error))))


# -- reads and changes of stored responses ---------------------------------------------------------


def input_page(resp: StoredResponse, after: str | None, limit: int, order: str) -> dict[str, Any]:
    """``GET …/input_items``: OpenAI's cursor page (newest first unless ``order=asc``)."""
    items = list(resp.input_items) if order == "asc" else list(reversed(resp.input_items))
    start = 0
    if after is not None:
        ids = [item.get("id") for item in items]
        if after not in ids:
            raise InvalidRequest(details=[FieldProblem("after", f"'{after}' is not an input item of this response")])
        start = ids.index(after) + 1
    page = items[start:start + limit]
    return {"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None, "has_more": start + limit < len(items)}


async def cancel(deps: Deps, resp: StoredResponse) -> dict[str, Any]:
    """Cancel a background response (on whichever replica runs it); cancelling a cancelled one
    again returns it, any other finished one is a 400, as with OpenAI."""
    if not resp.background:
        raise InvalidRequest("Only responses created with background=true can be cancelled.")
    if resp.finished:
        if resp.status != "cancelled":
            raise InvalidRequest(f"Cannot cancel a {resp.status} response.")
        return await current_body(deps, resp)
    if await running(deps, resp):
        await deps.turns.stop(resp.id)
    latest = await deps.repo.get(resp.id)
    return await current_body(deps, latest or resp)


async def delete(deps: Deps, resp: StoredResponse) -> dict[str, Any]:
    if await running(deps, resp):
        await deps.turns.stop(resp.id)
    await deps.repo.delete(resp.id)
    return {"id": resp.id, "object": "response", "deleted": True}
