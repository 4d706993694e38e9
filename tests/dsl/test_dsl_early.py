"""The builder's model is ready when the text ends (issues 20 and 21): a real server, real SQLite.

The extraction starts with the turn (``DslExtractor.before_turn``): its proposal runs while the
answer is written, so the ``dsl`` and ``phase`` events follow the text (the contract's order)
without a model call after it, however long the answer. The provider here is scripted because
the tests order its two kinds of request against each other: the answer (plain text) and the
proposal (``response_format`` json_schema). Bounds are by order of events; the one wall-clock
bound is a generous ceiling on a turn that would otherwise wait out a 10-minute proposal.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from hubbub.providers.base import Capabilities
from hubbub.core.events import Finish, TextDelta, UsageReport
from hubbub.core.types import ProviderRequest, Usage
from hubbub.dsl.extractor import DslExtractor
from support import ScriptedProvider, collect_sse, register_scripted

PROPOSAL = {"entities": [
    {"name": "Post", "fields": [{"name": "title", "type": "string", "required": True, "unique": False, "values": []}]},
    {"name": "Author", "fields": [{"name": "email", "type": "string", "required": True, "unique": True, "values": []}]},
    {"name": "Comment", "fields": [{"name": "body", "type": "text", "required": True, "unique": False, "values": []}]},
], "relationships": [{"from": "Post", "to": "Author", "type": "many-to-one", "name": ""},
                     {"from": "Comment", "to": "Post", "type": "many-to-one", "name": ""}]}


class Model(ScriptedProvider):
    """Answers in ``words`` pieces and proposes ``PROPOSAL`` under a JSON schema, logging the order:
    ``proposal`` when a proposal request arrives, ``text`` per answer piece, ``end`` after the last.

    The answer does not finish until a proposal request has arrived (or ``wait`` seconds passed):
    an extractor that only asks after the answer makes the log show the proposal after ``end``.
    ``hang`` makes the proposal never answer (a slow model)."""

    capabilities = Capabilities(json_schema=True)

    def __init__(self, words: int, name: str = "upstream", hang: bool = False, wait: float = 20.0) -> None:
        super().__init__(" ".join(["word"] * words))
        self.name = name
        self.hang = hang
        self.wait = wait
        self.log: list[str] = []
        self.proposal_cancelled = False
        self._asked: asyncio.Event | None = None

    def asked(self) -> asyncio.Event:
        if self._asked is None:
            self._asked = asyncio.Event()
        return self._asked

    async def stream(self, request: ProviderRequest):  # noqa: ANN201
        self.requests.append(request)
        if request.params.response_format is not None:
            self.log.append("proposal")
            self.asked().set()
            try:
                if self.hang:
                    await asyncio.sleep(3600)
                yield TextDelta(json.dumps(PROPOSAL))
                yield UsageReport(Usage(50, 40))
                yield Finish("stop")
            except (asyncio.CancelledError, GeneratorExit):
                self.proposal_cancelled = True
                raise
            return
        pieces = self.pieces()
        for i, piece in enumerate(pieces):
            if i == len(pieces) - 1:
                try:
                    await asyncio.wait_for(self.asked().wait(), self.wait)
                except TimeoutError:
                    pass
            await asyncio.sleep(0.005)
            self.log.append("text")
            yield TextDelta(piece)
        self.log.append("end")
        yield UsageReport(Usage(10, len(pieces)))
        yield Finish("stop")


@pytest.fixture
def extractor(server, monkeypatch) -> DslExtractor:
    hook = next(h for h in server.container.turns.hooks if isinstance(h, DslExtractor))
    assert hook.registry is server.container.registry  # the app lets it find a turn's model early
    return hook


async def builder_turn(client, model: str, text: str) -> list[dict[str, Any]]:
    body = {"messages": [{"role": "user", "content": text}], "model": model}
    r, events = await collect_sse(client, "POST", "/api/chat", json=body)
    assert r.status_code == 200, r.text
    return [e.json() for e in events]


def register(server, model: Model) -> str:
    model_id = f"early-{uuid.uuid4().hex[:8]}"
    register_scripted(server, model_id, model)
    return model_id


@pytest.mark.parametrize("words", [5, 400])
async def test_the_proposal_runs_while_the_answer_is_written(client, server, extractor, words):
    """Short or long, the answer is not waited for: the proposal was asked for before the text ended,
    and no model call is left for after it (the events come in the contract's order)."""
    model = Model(words)
    events = await builder_turn(client, register(server, model), "I need a blog with posts, authors and comments.")
    types = [e["type"] for e in events]
    assert types[0] == "chat" and types[-3:] == ["dsl", "phase", "done"] and types.count("text") == words
    assert model.log.count("proposal") == 1 and model.log.index("proposal") < model.log.index("end")
    assert model.log[-1] == "end"  # nothing was asked of the model after the text
    dsl = events[-3]["content"]
    assert dsl["entities"]["Author"]["fields"]["email"]["unique"] is True  # the (strong) proposal leads
    proposal_request = next(r for r in model.requests if r.params.response_format is not None)
    assert [m.content for m in proposal_request.messages if "word word" in m.content] == []  # not the answer


async def test_a_slow_weak_proposal_does_not_hold_the_model_back(client, server, extractor, monkeypatch):
    """A weak model's proposal that is not ready when the text ends is given ``settle`` seconds, then
    cancelled: the analysis alone makes the DSL, long before the proposal's own 10-minute limit."""
    monkeypatch.setattr(extractor, "timeout", 600.0)
    model = Model(5, name="embedded", hang=True, wait=0.5)  # an embedded-like (weak) provider
    model_id = register(server, model)
    async with asyncio.timeout(120):  # generous: the proposal alone would take 600 s
        events = await builder_turn(client, model_id, "Projects have many tasks. Each task has a title.")
    types = [e["type"] for e in events]
    assert types[-3:] == ["dsl", "phase", "done"]
    dsl = events[-3]["content"]
    assert {"Project", "Task"} <= set(dsl["entities"]) and dsl["confidence"] <= 0.5  # the analysis alone
    assert model.log.index("proposal") < model.log.index("end")
    for _ in range(100):  # the cancellation reaches the generator on the server's loop
        if model.proposal_cancelled:
            break
        await asyncio.sleep(0.05)
    assert model.proposal_cancelled


async def test_a_turn_on_another_model_is_extracted_afterwards(client, server, extractor):
    """The early start guesses the chat's model; a later turn that names another one still gets its
    DSL from that model (the early work is dropped, not used)."""
    first, second = Model(3, wait=0.2), Model(3, wait=0.2)
    first_id, second_id = register(server, first), register(server, second)
    body = {"messages": [{"role": "user", "content": "A blog with posts."}], "model": first_id}
    r, _ = await collect_sse(client, "POST", "/api/chat", json=body)
    chat_id = r.headers["x-chat-id"]
    body = {"chatId": chat_id, "model": second_id,
            "messages": [{"role": "user", "content": "Posts have authors and comments."}]}
    r, events = await collect_sse(client, "POST", "/api/chat", json=body)
    types = [e.json()["type"] for e in events]
    assert types[-3:] == ["dsl", "phase", "done"]
    assert second.log.count("proposal") == 1  # the turn's own model proposed
    assert "Author" in events[-3].json()["content"]["entities"]
