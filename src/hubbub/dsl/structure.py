"""Links from the structure of what was said and of the model itself, not from phrasing (issue 20).

``Structure`` is a mixin of the analysis' reader (``analysis.py``). Where the
patterns (``clauses.py``) found nothing, these rules still say something,
because they hold across domains:

* **a record left unlinked** ("each checkout" after "members borrow tools") is the
  join entity of the one many-to-many between a person and a thing: it links
  both, in place of the many-to-many;
* **an entity left unlinked** gets its most plausible parent, marked *inferred*
  (half the support of a stated one in ``phase.confidence``): the entity named
  nearest to it where the user mentioned it (the same sentence), else the
  model's hub (the entity most others link to). Which way the link goes follows
  what the two are (``domain.is_event``, ``domain.is_person``): a record of
  something done belongs to the other side ("a reading" of a meter); a thing
  belongs to a person ("samples" of researchers); otherwise the unlinked one is
  the child.
"""

from __future__ import annotations

from hubbub.dsl import domain as dm
from hubbub.dsl import merge as mg
from hubbub.dsl.reader import ReaderBase


class Structure(ReaderBase):
    """Rules over the model and the message's sentences (``self.sents``) after its patterns ran."""

    def _orphans(self) -> None:
        """Give each entity this message introduced and left unlinked its most plausible parent."""
        if len(self.dsl.entities) < 2:
            return
        linked = {r.source for r in self.dsl.relationships} | {r.target for r in self.dsl.relationships}
        for name in [n for n in self.dsl.entities if n in self.created and n not in linked]:
            if dm.is_event(name) and self._join(name):
                linked.add(name)
                continue
            other = self._nearest(name) or self._hub(name)
            if other is None:
                continue
            child, parent = name, other
            if dm.is_event(other) and not dm.is_event(name) or dm.is_person(name) and not dm.is_person(other) \
                    and not dm.is_event(name):
                child, parent = other, name
            self._link(child, parent, "many-to-one", how="inferred")
            linked |= {child, parent}

    def _join(self, event: str) -> bool:
        """An unlinked record of something done is the join of the many-to-many that says who did it to
        what ("members borrow tools" + "each checkout ...": a checkout links a member and a tool)."""
        pairs = [r for r in self.dsl.relationships if r.type == "many-to-many" and r.source != r.target
                 and not dm.is_event(r.source) and not dm.is_event(r.target)
                 and (dm.is_person(r.source) or dm.is_person(r.target))]
        if len(pairs) != 1:
            return False
        rel = pairs[0]
        mg.drop_relationships(self.dsl, rel.source, rel.target)
        self._link(event, rel.source, "many-to-one", how="inferred")
        self._link(event, rel.target, "many-to-one", how="inferred")
        return True

    def _nearest(self, name: str) -> str | None:
        """The entity named closest to a mention of ``name`` in one sentence (earlier ones first)."""
        best: tuple[float, str] | None = None
        for cs in self.sents:
            spots = [(k, self._name(c)) for k, c in enumerate(cs) if c.kind == "NP"]
            mine = [k for k, n in spots if n == name]
            for k in mine:
                for j, other in spots:
                    if other is None or other == name or other not in self.dsl.entities:
                        continue
                    distance = abs(j - k) + (0.5 if j > k else 0.0)
                    if best is None or distance < best[0]:
                        best = (distance, other)
        return best[1] if best else None

    def _hub(self, name: str) -> str | None:
        """The entity most links touch (the first named on a tie), other than ``name``."""
        counts = {e: 0 for e in self.dsl.entities if e != name}
        for r in self.dsl.relationships:
            for end in {r.source, r.target}:
                if end in counts:
                    counts[end] += 1
        if not counts:
            return None
        return max(counts, key=lambda e: counts[e])  # max keeps the first of equals: dict order
