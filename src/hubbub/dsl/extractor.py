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
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable

from hubbub.core.events import DslUpdate, Event, PhaseChange
from hubbub.core.types import Conversation, Message, UsageRecord
from hubbub.dsl import merge as mg
from hubbub.dsl.analysis import Analysis, analyze
from hubbub.dsl.normalize import normalize
from hubbub.dsl.phase import confidence, next_phase, questions, readiness
from hubbub.dsl.proposal import propose, summary
from hubbub.dsl.schema import Dsl, Field
from hubbub.dsl.text import camel, words
from hubbub.dsl.validate import problems
from hubbub.providers.registry import CatalogEntry
from hubbub.storage.repositories import ConversationRepository

log = logging.getLogger(__name__)

CHAT_KIND = "chat"


@dataclass
class Extraction:
    dsl: Dsl  # valid, with phase, readiness and confidence
    changed: bool
    accepted: bool
    proposal: Dsl | None  # the model's normalised proposal, when there was one


def new_user_messages(messages: list[Message]) -> list[str]:
    """The user messages of the latest turn: those after the last answer before the end."""
    end = len(messages)
    while end and messages[end - 1].role == "assistant":
        end -= 1
    start = end
    while start and messages[start - 1].role != "assistant":
        start -= 1
    return [m.content for m in messages[start:end] if m.role == "user"]


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
    ) -> None:
        self.conversations = conversations
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.strong_max_tokens = strong_max_tokens
        self.strong_timeout = strong_timeout
        self.strong_models = set(strong_models)
        self.weak_models = set(weak_models)
        self.record_usage = record_usage

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
        """A system message for this turn's prompt: questions while clarifying, else the model so far."""
        if not self.enabled(conv, options):
            return []
        stored = await self.conversations.get(conv.id) or conv
        previous = _stored(stored)
        users = [m.content for m in messages if m.role == "user"]
        new = users if previous is None else new_user_messages(messages)
        analysis, replay = await asyncio.to_thread(lambda: (analyze(previous, new), analyze(None, users)))
        draft = normalize(analysis.dsl)
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

    async def after_turn(self, ctx: Any) -> list[Event]:
        """Extract, store and announce the DSL of the chat whose turn just completed."""
        if not self.enabled(ctx.conversation, ctx.options):
            return []
        conv = await self.conversations.get(ctx.conversation.id) or ctx.conversation
        result = await self.extract(_stored(conv), conv.phase, ctx.messages, ctx.entry, conversation=conv)
        wire = result.dsl.to_dict()
        await self.conversations.update(conv.id, dsl=wire, phase=result.dsl.phase)
        return [DslUpdate(wire), PhaseChange(result.dsl.phase)]

    # -- extraction ----------------------------------------------------------------

    async def extract(
        self, previous: Dsl | None, previous_phase: str | None, messages: list[Message], entry: CatalogEntry,
        *, conversation: Conversation | None = None,
    ) -> Extraction:
        """The updated DSL for ``messages`` (the whole conversation, the new answer included)."""
        users = [m.content for m in messages if m.role == "user"]
        new = users if previous is None else new_user_messages(messages)
        previous = normalize(previous) if previous is not None else None
        analysis, replay = await asyncio.to_thread(lambda: (analyze(previous, new), analyze(None, users)))
        base = normalize(analysis.dsl)
        strong = self.is_strong(entry)
        proposal: Dsl | None = None
        if entry.provider.capabilities.json_schema and (strong or base.entities or analysis.candidates):
            answer = await propose(
                entry, previous, messages, strong=strong,
                max_tokens=self.strong_max_tokens if strong else self.max_tokens,
                timeout=self.strong_timeout if strong else self.timeout,
            )
            await self._record(entry, answer.usage, conversation)
            if answer.dsl is not None and answer.dsl.entities:
                proposal = normalize(answer.dsl)
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
