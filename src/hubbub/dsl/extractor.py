"""The builder's DSL extraction, plugged into stored-chat turns as a ``TurnHook``.

After every complete assistant turn of a builder chat (``enableDSL``), the
conversation and the previous DSL go in and the updated DSL comes out:

1. **analysis** — ``analysis.analyze`` applies what the user's new messages say
   to the previous DSL (deterministic; in a worker thread);
2. **proposal** — the turn's own model proposes a model under a JSON schema
   (``proposal.propose``), when its provider supports JSON schemas;
3. **combination** — with a *strong* model the proposal leads: it is the new
   model, plus what the previous model had and the user did not remove. With a
   *weak* model (the embedded 135M one) the analysis leads: the proposal only adds
   what the analysis found in the user's words but did not dare to use alone
   (an entity candidate, a field word), and is otherwise evidence for confidence;
4. **normalise, validate** — an invalid result is repaired (normalisation), else
   replaced by the analysis alone, else by the previous DSL: never stored or sent.
   A turn that only accepts the model ("looks good") keeps it exactly as shown;
5. **phase, readiness, confidence** (``phase.py``); store on the chat; emit
   ``DslUpdate`` then ``PhaseChange``.

A model is *strong* when listed in ``strong_models``, weak when in
``weak_models``; otherwise every non-embedded provider that supports JSON
schemas is strong and the embedded model is weak.

Before a turn (``before_turn``), the same analysis of the new message decides
what the assistant should be told: in ``clarifying``, the questions that would
raise readiness; afterwards, the model so far, so it can describe it.

**Ready when the text ends.** ``before_turn`` also *starts* the turn's
extraction: the analysis is done there, and the model's proposal runs as a task
in parallel with the answer (the proposal reads only what the user wrote, plus,
for a strong model, the earlier turns: not the answer being written).
``after_turn`` only finishes it: it takes the proposal if it is done, waits for a
weak model's for at most ``settle`` seconds (then cancels it: the analysis
leads there anyway), and for a strong model's, which *is* the model, up to its
own time limit counted from the start of the turn. So the ``dsl`` and ``phase``
events follow the last text event at once, however long the answer ran. When
the early start is not possible (no ``registry`` to find the turn's model, the
turn ran on another model, or the stored model changed in between), the turn is
extracted after the answer as before. See docs/dsl.md, "How a turn's DSL is made".
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable

from hubbub.core.events import DslUpdate, Event, PhaseChange
from hubbub.core.types import Conversation, Message, Usage, UsageRecord
from hubbub.dsl import merge as mg
from hubbub.dsl.analysis import Analysis, analyze
from hubbub.dsl.normalize import normalize
from hubbub.dsl.phase import confidence, next_phase, questions, readiness
from hubbub.dsl.proposal import propose, summary
from hubbub.dsl.schema import Dsl, Field
from hubbub.dsl.text import camel, words
from hubbub.dsl.validate import problems
from hubbub.providers.registry import CatalogEntry, ModelRegistry
from hubbub.storage.repositories import ConversationRepository

log = logging.getLogger(__name__)

CHAT_KIND = "chat"
EARLY_LIMIT = 256  # extractions started before an answer and not yet finished, over all chats


@dataclass
class Extraction:
    dsl: Dsl  # valid, with phase, readiness and confidence
    changed: bool
    accepted: bool
    proposal: Dsl | None  # the model's normalised proposal, when there was one


@dataclass
class _Started:
    """A turn's extraction up to the proposal: the analysis done, the proposal running (``task``)."""

    previous: Dsl | None  # normalised
    users: tuple[str, ...]  # every user message, in order: what the extraction read
    model: str  # the catalog id whose provider proposes
    analysis: Analysis
    replay: Analysis  # all the user's messages from scratch: the evidence for confidence
    base: Dsl  # the analysis alone, normalised
    strong: bool
    task: asyncio.Task[Dsl | None] | None  # the normalised proposal, None when there is none
    early: bool = False  # started before the answer (``before_turn``)

    def matches(self, previous: Dsl | None, users: list[str], model: str) -> bool:
        """Was it started on what the finished turn has (same model so far, words and model)?"""
        same = (previous.model_dict() if previous is not None else None) == \
            (self.previous.model_dict() if self.previous is not None else None)
        return same and tuple(users) == self.users and model == self.model

    def cancel(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()


def new_user_messages(messages: list[Message]) -> list[str]:
    """The user messages of the latest turn: those after the last answer before the end."""
    end = len(messages)
    while end and messages[end - 1].role == "assistant":
        end -= 1
    start = end
    while start and messages[start - 1].role != "assistant":
        start -= 1
    return [m.content for m in messages[start:end] if m.role == "user"]


def _read(previous: Dsl | None, new: list[str], users: list[str]) -> tuple[Analysis, Analysis]:
    """The analysis of the new messages, and of the whole conversation; a fault in the reader keeps the
    model as it was rather than failing the user's turn."""
    try:
        return analyze(previous, new), analyze(None, users)
    except Exception:
        log.exception("dsl analysis failed; the model is kept as it was")
        return Analysis(previous.copy() if previous else Dsl()), Analysis(Dsl())


class DslExtractor:
    """The ``TurnHook`` that keeps a builder chat's DSL (see the module docstring)."""

    def __init__(
        self,
        conversations: ConversationRepository,
        *,
        max_tokens: int = 300,
        timeout: float = 10.0,
        strong_max_tokens: int = 2000,
        strong_timeout: float = 60.0,
        strong_models: Iterable[str] = (),
        weak_models: Iterable[str] = (),
        record_usage: Callable[[UsageRecord], Awaitable[None]] | None = None,
        registry: ModelRegistry | None = None,
        settle: float = 1.0,
    ) -> None:
        self.conversations = conversations
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.strong_max_tokens = strong_max_tokens
        self.strong_timeout = strong_timeout
        self.strong_models = set(strong_models)
        self.weak_models = set(weak_models)
        self.record_usage = record_usage
        # To start a turn's proposal before its answer, the hook finds the turn's model itself
        # (``before_turn`` is not given it); without a registry every turn is extracted afterwards.
        self.registry = registry
        self.settle = settle  # seconds a weak model's early proposal may still take after the answer
        self._early: OrderedDict[str, _Started] = OrderedDict()  # chat id -> its turn's started extraction

    def is_strong(self, entry: CatalogEntry) -> bool:
        if entry.info.id in self.weak_models:
            return False
        if entry.info.id in self.strong_models:
            return True
        return entry.provider.name != "embedded" and entry.provider.capabilities.json_schema

    @staticmethod
    def enabled(conv: Conversation, options: dict[str, Any]) -> bool:
        return conv.kind == CHAT_KIND and options.get("enable_dsl") is True

    # -- the hook ----------------------------------------------------------------

    async def before_turn(self, conv: Conversation, messages: list[Message], options: dict[str, Any]) -> list[Message]:
        """A system message for this turn's prompt: questions while clarifying, else the model so far.

        Also starts the turn's extraction (analysis now, the proposal in parallel with the answer)."""
        if not self.enabled(conv, options):
            return []
        stored = await self.conversations.get(conv.id) or conv
        previous = _stored(stored)
        entry = self._entry(conv, options)
        started = await self._start(previous, messages, entry, stored)
        if entry is not None:
            started.early = True
            self._remember(conv.id, started)
        analysis, replay, draft, previous = started.analysis, started.replay, started.base, started.previous
        changed = draft.model_dict() != (previous or Dsl()).model_dict()
        supported = _stated(replay)
        phase = next_phase(stored.phase, draft, changed=changed, accepted=analysis.accepted,
                           valid=not problems(draft), supported=supported)
        if phase == "clarifying":
            asks = " ".join(f"{i}. {q}" for i, q in enumerate(questions(draft, supported=supported), 1))
            text = ("You are helping the user design the data model of an app. There is not enough to propose "
                    f"one yet. In your reply, ask the user: {asks}")
        elif phase == "ready":
            text = f"The user accepted this data model: {summary(draft)}. Confirm it briefly."
        else:
            text = (f"The data model so far: {summary(draft)}. Describe it briefly and ask whether it looks "
                    "right or what to change.")
        return [Message("system", text)]

    def _entry(self, conv: Conversation, options: dict[str, Any]) -> CatalogEntry | None:
        """The turn's model as ``TurnRunner`` picks it for a builder chat (the request's, else the chat's)."""
        if self.registry is None:
            return None
        try:
            return self.registry.get(options.get("model") or conv.model)
        except Exception:  # unknown model: the turn itself will say so; extract afterwards
            return None

    def _remember(self, chat_id: str, started: _Started) -> None:
        """Keep a started extraction for the turn's ``after_turn``; bounded: a turn that never completes
        (stopped, failed) leaves its entry until the chat's next turn or until evicted here."""
        stale = self._early.pop(chat_id, None)
        if stale is not None:
            stale.cancel()
        self._early[chat_id] = started
        while len(self._early) > EARLY_LIMIT:
            _, evicted = self._early.popitem(last=False)
            evicted.cancel()

    async def after_turn(self, ctx: Any) -> list[Event]:
        """Finish, store and announce the DSL of the chat whose turn just completed."""
        if not self.enabled(ctx.conversation, ctx.options):
            return []
        conv = await self.conversations.get(ctx.conversation.id) or ctx.conversation
        previous = _stored(conv)
        started = self._early.pop(conv.id, None)
        users = [m.content for m in ctx.messages if m.role == "user"]
        if started is None or not started.matches(normalize(previous) if previous else None, users,
                                                  ctx.entry.info.id):
            if started is not None:
                started.cancel()
            started = await self._start(previous, ctx.messages, ctx.entry, conv)
        result = await self._finish(started, conv.phase)
        wire = result.dsl.to_dict()
        await self.conversations.update(conv.id, dsl=wire, phase=result.dsl.phase)
        return [DslUpdate(wire), PhaseChange(result.dsl.phase)]

    # -- extraction ----------------------------------------------------------------

    async def extract(
        self, previous: Dsl | None, previous_phase: str | None, messages: list[Message], entry: CatalogEntry,
        *, conversation: Conversation | None = None,
    ) -> Extraction:
        """The updated DSL for ``messages`` (the whole conversation; the new answer, if there, is only
        read by a strong model's proposal)."""
        return await self._finish(await self._start(previous, messages, entry, conversation), previous_phase)

    async def _start(
        self, previous: Dsl | None, messages: list[Message], entry: CatalogEntry | None,
        conversation: Conversation | None,
    ) -> _Started:
        """The analysis, and the proposal started as a task (when there is a model that can make one)."""
        users = [m.content for m in messages if m.role == "user"]
        new = users if previous is None else new_user_messages(messages)
        previous = normalize(previous) if previous is not None else None
        analysis, replay = await asyncio.to_thread(_read, previous, new, users)
        base = normalize(_without(analysis.dsl.copy(), replay.superseded))
        if entry is None:
            return _Started(previous, tuple(users), "", analysis, replay, base, False, None)
        strong = self.is_strong(entry)
        task = None
        if entry.provider.capabilities.json_schema and (strong or base.entities or analysis.candidates):
            task = asyncio.get_running_loop().create_task(
                self._propose(entry, previous, messages, strong, conversation))
        return _Started(previous, tuple(users), entry.info.id, analysis, replay, base, strong, task)

    async def _propose(self, entry: CatalogEntry, previous: Dsl | None, messages: list[Message], strong: bool,
                       conversation: Conversation | None) -> Dsl | None:
        parts: list[str] = []
        try:
            answer = await propose(
                entry, previous, messages, strong=strong,
                max_tokens=self.strong_max_tokens if strong else self.max_tokens,
                timeout=self.strong_timeout if strong else self.timeout, parts=parts,
            )
        except asyncio.CancelledError:  # not waited for: what it decoded so far is still billed
            if parts:
                counted = await asyncio.shield(_count(entry, "".join(parts)))
                await asyncio.shield(self._record(entry, Usage(0, counted), conversation))
            raise
        await self._record(entry, answer.usage, conversation)
        return normalize(answer.dsl) if answer.dsl is not None and answer.dsl.entities else None

    async def _proposal(self, started: _Started) -> Dsl | None:
        """The proposal: waited for to its own limit, except a weak model's early one (``settle``)."""
        if started.task is None:
            return None
        if started.early and not started.strong:
            done, _ = await asyncio.wait({started.task}, timeout=self.settle)
            if not done:
                started.cancel()
                log.info("dsl proposal not ready %.1fs after the answer; the analysis alone is used", self.settle)
                return None
        try:
            return await started.task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # this turn is cancelled, not just its proposal
            return None  # the proposal was cancelled (a newer turn of the chat replaced it)

    async def _finish(self, started: _Started, previous_phase: str | None) -> Extraction:
        """Combine the analysis and the proposal into the valid DSL with its phase, readiness, confidence."""
        previous, analysis, replay, base, strong = (started.previous, started.analysis, started.replay,
                                                    started.base, started.strong)
        proposal = await self._proposal(started)
        if previous is not None and analysis.accepted and base.model_dict() == previous.model_dict():
            candidate = previous  # "looks good": an acceptance that edits nothing keeps the model as shown
        elif proposal is not None and strong:
            survivors = _intersect(base, previous) if previous is not None else Dsl()
            candidate = normalize(mg.union(proposal, survivors))
        elif proposal is not None:
            candidate = normalize(_adopt_grounded(base, proposal, replay))
        else:
            candidate = base
        final = self._valid(candidate, base, previous)
        changed = final.model_dict() != (previous or Dsl()).model_dict()
        supported = _stated(replay) | (mg.element_keys(proposal) if proposal is not None else set())
        phase = next_phase(previous_phase, final, changed=changed, accepted=analysis.accepted, valid=True,
                           supported=supported)
        final.phase = phase
        final.readiness = readiness(final, phase == "ready", supported)
        final.confidence = confidence(final, replay.provenance, proposal)
        return Extraction(final, changed, analysis.accepted, proposal)

    @staticmethod
    def _valid(candidate: Dsl, base: Dsl, previous: Dsl | None) -> Dsl:
        """The first of candidate, analysis alone, previous DSL that validates (an empty DSL always does)."""
        for option in (candidate, base, previous or Dsl()):
            found = problems(option)
            if not found:
                return option.copy()
            log.warning("dsl rejected: %s", "; ".join(found[:5]))
        return Dsl()

    async def _record(self, entry: CatalogEntry, usage: Any, conversation: Conversation | None) -> None:
        if self.record_usage is None or not (usage.prompt_tokens or usage.completion_tokens):
            return
        try:
            await self.record_usage(UsageRecord(
                model=entry.info.id, prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
                cost=entry.info.cost(usage), owner=conversation.owner if conversation else None,
                conversation_id=conversation.id if conversation else None,
            ))
        except Exception:  # accounting must not cost the user their DSL
            log.exception("recording the dsl extraction's usage failed")


async def _count(entry: CatalogEntry, text: str) -> int:
    try:
        return await entry.provider.count_text_tokens(text, entry.upstream_model)
    except Exception:  # an estimate is enough for a cut-off proposal
        return max(1, len(text) // 4)


def _without(dsl: Dsl, superseded: set[mg.Key]) -> Dsl:
    """``dsl`` less the guessed parents (of an earlier turn) that the user's words have since replaced."""
    for rel in [r for r in dsl.relationships if mg.rel_key(r) in superseded]:
        mg.drop_relationships(dsl, rel.source, rel.target, rel.name)
    return dsl


def _stated(analysis: Analysis) -> set[mg.Key]:
    return {k for k, how in analysis.provenance.items() if how == "stated"}


def _stored(conv: Conversation) -> Dsl | None:
    return Dsl.from_dict(conv.dsl) if conv.dsl else None


def _intersect(current: Dsl, previous: Dsl) -> Dsl:
    """What ``previous`` had that ``current`` (the previous model after the user's edits) still has."""
    out = Dsl()
    for name, fields in previous.entities.items():
        if name in current.entities:
            out.entities[name] = {f: s for f, s in fields.items() if f in current.entities[name]}
    keys = {mg.rel_key(r) for r in current.relationships}
    out.relationships = [r for r in previous.relationships if mg.rel_key(r) in keys and r.source in out.entities
                         and r.target in out.entities]
    return out


def _adopt_grounded(base: Dsl, proposal: Dsl, replay: Analysis) -> Dsl:
    """A weak model's proposal may add what the user's words support but the analysis left unused:
    entity candidates (plural nouns, ``each X``) and fields whose words the user wrote."""
    out = base.copy()
    spoken = {w for text_word in replay.words for w in words(text_word)}
    for name, fields in proposal.entities.items():
        if name not in out.entities and name in replay.candidates and name not in replay.dropped:
            mg.ensure_entity(out, name)
        if name not in out.entities:
            continue
        for fname, spec in fields.items():
            if fname in out.entities[name] or fname == "id" or fname.endswith("Id"):
                continue
            if all(w in spoken for w in words(fname)) and camel(fname) not in {camel(e) for e in out.entities}:
                out.entities[name][fname] = Field(spec.type if spec.type != "uuid" else "string", spec.required,
                                                  spec.unique, values=spec.values)
    return out
