"""Links from the structure of what was said and of the model itself, not from phrasing (issue 20).

``Structure`` is a mixin of the analysis' reader (``analysis.py``). The
patterns (``clauses.py``) read what a sentence says; these rules hold across
domains, whatever the verbs and nouns:

* **what an object is for, about or at** is linked to it when the object is what
  the subject made or did: "tenants sign leases *for units*", "clients book
  appointments with a stylist *for a service*"; otherwise to a singular subject:
  "a screening shows a film *on a screen*" (``_object_places``);
* **a record spelled out** after ``:`` or ``=`` has those items: "feedings: which
  animal, what food", "a score = judge + project + points" (``_spelled_out``);
  ``A -> B -> C`` is a chain of parts (``_chain``);
* **"each other"**: "runners follow each other" is a self-link, many each way;
  "games against each other" belong to two of them (``each_other``);
* **a record left unlinked** ("each checkout" after "members borrow tools") is the
  join entity of the one many-to-many between a person and a thing: it links
  both, in place of the many-to-many (``_join``);
* **an entity left unlinked** gets its most plausible parent, marked *inferred*
  (half the support of a stated one in ``phase.confidence``): the entity named
  nearest to it where the user mentioned it (the same sentence), else the
  model's hub (the entity most others link to). Which way the link goes follows
  what the two are (``domain.is_event``, ``domain.is_person``): a record of
  something done belongs to the other side ("a reading" of a meter); a thing
  belongs to a person ("samples" of researchers); otherwise the unlinked one is
  the child (``_orphans``).
"""

from __future__ import annotations

from hubbub.dsl import domain as dm
from hubbub.dsl import merge as mg
from hubbub.dsl.chunk import Chunk
from hubbub.dsl.reader import ReaderBase, modifier_name
from hubbub.dsl.text import pascal, singular

OBJECT_PREPS = frozenset("for on about at in to from with between against of".split())


def each_other(cs: list[Chunk], i: int) -> bool:
    return i + 1 < len(cs) and (cs[i].text, cs[i + 1].text) in (("each", "other"), ("one", "another"))


class Structure(ReaderBase):
    """Rules over the model and the message's sentences (``self.sents``) after its patterns ran."""

    def _spelled_out(self, rest: list[Chunk], owner: str, composed: bool = False) -> None:
        """The items of one entity written out after ``:`` or ``=``: fields, or links where they name one."""
        items = [c for c in rest if not (c.kind in ("REL", "PRON") and c.text in ("which", "what", "whose", "how"))]
        items = [Chunk("PUNCT", ",", [","]) if c.kind == "PREP" and c.text in ("in", "at", "on", "for", "from", "by")
                 and 0 < k < len(items) - 1 and items[k - 1].kind == "NP" and items[k + 1].kind == "NP"
                 and {"a", "an", "one"} & set(items[k - 1].det) and {"a", "an", "one"} & set(items[k + 1].det)
                 else c for k, c in enumerate(items)]  # "products = a scent in a vessel": a scent, a vessel
        consumed, self.consumed, self.composed = self.consumed, set(), composed
        try:
            self._items(items, 0, [owner], False)
        finally:
            self.consumed, self.composed = consumed, False

    def _schema_line(self, cs: list[Chunk]) -> bool:
        """A line written like a schema: "Player (name, number) -> Team", "Goal -> Match, Player, minute",
        "Team (name)": an entity, its fields in parentheses, and after "->" what it refers to."""
        texts = [c.text for c in cs]
        arrow = texts.index("->") if "->" in texts else len(cs)
        if len(cs) < 3 or cs[0].kind != "NP" or cs[0].plural or any(c.kind not in ("NP", "PUNCT") for c in cs[:arrow]) \
                or texts.count("->") > 1 or cs[1].text not in ("(", "->") \
                or any(c.kind not in ("NP", "PUNCT") for c in cs[arrow:]) and "," not in texts[arrow:]:
            return False  # (after the arrow, a list with commas may hold other words: "departs_at")
        owner = self._name(cs[0]) or (pascal(cs[0].head) if cs[0].head.isalpha() else None)
        if owner is None:  # (a word that is seldom data, "goal", is one where a line starts with it)
            return False
        self._entity(owner)
        k = 1
        if cs[1].text == "(":
            end = next((m for m in range(2, len(cs)) if cs[m].text == ")"), len(cs))
            self._spelled_out(cs[2:end], owner)
            k = end + 1
        if k < len(cs) and cs[k].text == "->":
            for np in (c for c in cs[k + 1:] if c.kind == "NP"):
                target = self._name(np)
                known = target and (target in self.dsl.entities or target in self.vocab)
                if known and target != owner:
                    self._link(owner, target, "many-to-one", modifier_name(np, target))
                elif known:
                    self._link(owner, owner, "many-to-one", "parent")
                else:
                    self._add_field(owner, " ".join(np.words), [], set())
        self.consumed |= set(range(len(cs)))
        return True

    def _chain(self, cs: list[Chunk]) -> None:
        """"quizzes -> questions -> choices": each is made of the next."""
        for k in range(1, len(cs) - 1):
            if cs[k].text == "->" and cs[k - 1].kind == "NP" and cs[k + 1].kind == "NP":
                whole, part = self._name(cs[k - 1]), self._name(cs[k + 1])
                if cs[k - 1].plural and not cs[k + 1].plural:  # "dogs -> kennel": each dog has a kennel
                    whole, part = part, whole
                if whole and part and whole != part:
                    self._link(part, whole, "many-to-one")
                    self.consumed |= {k - 1, k, k + 1}

    def _object_places(self, cs: list[Chunk], i: int, subject: list[str], nps: list[Chunk], base: str) -> int:
        """What the object is for, about or at ("tenants sign leases *for units*", "clients book appointments
        with a stylist *for a service*"): the object is linked to each, when it is what the subject made or
        did (an event, or the subject's own); else the subject is ("a screening shows a film *on a screen*")."""
        objects = [x for x in (self._name(np) for np in nps) if x and x in self.dsl.entities]
        if not objects:
            return i
        if base in dm.PLACE_VERBS and i + 1 < len(cs) and cs[i].text == "to" and cs[i + 1].kind == "NP":
            target = self._known(cs[i + 1]) or (self._name(cs[i + 1]) if cs[i + 1].det or cs[i + 1].plural else None)
            if target:  # "a manager assigns each issue to a contractor": the issue gets a contractor
                for o in objects:
                    if o != target:
                        self._link(o, target, "many-to-many" if cs[i + 1].explicit_many else "many-to-one")
                self.consumed |= {i, i + 1}
                return i + 2
        owned = [o for o in objects if any(mg.linked(self.dsl, o, s) for s in subject)
                 and not any(r.source in subject and r.target == o and r.type == "many-to-one"
                             for r in self.dsl.relationships)]
        holders = owned or [s for s in subject if s in self.dsl.entities and self.singular_subject
                            and not dm.is_person(s) and base not in dm.NEUTRAL_VERBS]
        if not holders and self.pronoun_subject and not subject and base not in dm.NEUTRAL_VERBS:
            holders = objects  # "we brew batches of each beer in tanks": no one to hold them but the objects
        j = i
        while j + 1 < len(cs) and cs[j].kind == "PREP" and cs[j].text in OBJECT_PREPS:
            if each_other(cs, j + 1):  # "members play games against each other": each game has two of them
                for holder in objects:
                    for s in subject:  # more specific than the verb's own pairing ("play": many-to-many)
                        if s in self.dsl.entities and holder != s:
                            mg.drop_relationships(self.dsl, holder, s)
                            self._link(holder, s, "many-to-one")
                j += 3
                continue
            places, end = self._np_list(cs, j + 1)
            if not places:
                break
            for np in places:
                target = self._known(np)
                if target and cs[j].text in ("in", "at", "during", "on", "under", "via", "through") \
                        and self._record_of(target, subject, objects):
                    continue
                if target is None and not np.plural and np.det and (
                        self._name(np) in self.candidates
                        or any(dm.is_event(h) for h in holders) and np.head not in dm.FIELDS
                        or owned and cs[j].text in ("to", "for", "at") and np.head not in dm.FIELDS
                        and {"a", "an", "one"} & set(np.det)):
                    target = self._name(np)  # what a record is of: "tickets for a seat at a concert";
                    # where what they made goes: "authors submit talks to a conference"
                for holder in holders:
                    if target and target != holder and not mg.linked(self.dsl, holder, target):
                        self._link(holder, target, "many-to-many" if np.explicit_many else "many-to-one")
            self.consumed |= set(range(j, end))
            j = end
        return j

    def _joined(self) -> None:
        """A many-to-many whose two sides a record links ("vendors rent stalls" + "a stall rental = vendor +
        stall + ..."): the record is where they meet, so the direct link goes."""
        for r in [r for r in self.dsl.relationships if r.type == "many-to-many" and r.source != r.target]:
            for e in self.dsl.entities:
                if e not in (r.source, r.target) and dm.is_event(e) and all(
                        mg.child_of(self.dsl, e, side) for side in (r.source, r.target)):
                    mg.drop_relationships(self.dsl, r.source, r.target)
                    break

    def _records(self) -> None:
        """A record of something done refers to what its sentence names with it: "when a rider unlocks a
        bike at a station, a ride starts" gives the ride a rider, a bike and a station. Only between two
        entities not linked already, directly or through a chain of parents (no shortcuts)."""
        for cs in self.sents:
            names = list(dict.fromkeys(n for n in self._mentions(cs) if n in self.dsl.entities))
            for record in [n for n in names if dm.is_event(n)]:
                self._takes_over(record, names, cs)
                # children before their parents: a completion of a habit is not also linked to its user
                for other in sorted(names, key=lambda n: -len(self._ancestors(n) & set(names))):
                    if other == record or dm.is_event(other) or self._reaches(record, other) \
                            or self._reaches(other, record) or self._near(record, other):
                        continue
                    self._link(record, other, "many-to-one", how="inferred")

    def _mentions(self, cs: list[Chunk]) -> list[str]:
        """Entity names a sentence's noun phrases use, also inside a compound the tagger made of a noun and a
        verb ("a *ride starts*")."""
        out = []
        for c in cs:
            if c.kind == "NP":
                name = self._name(c)
                if name in self.dsl.entities:
                    out.append(name)
                elif len(c.words) > 1:
                    out += [pascal(singular(w)) for w in c.words if pascal(singular(w)) in self.dsl.entities]
        return out

    def _takes_over(self, record: str, names: list[str], cs: list[Chunk]) -> None:
        """"players take quizzes, each attempt has a score": a record not linked to either, named where a person's
        plain verb linked a thing to them is the record of that act; it links both, in place of that link."""
        for (thing, person), where in list(self.verb_made.items()):
            if where is cs and thing in names and person in names and thing in self.dsl.entities \
                    and not mg.linked(self.dsl, record, thing) and not mg.linked(self.dsl, record, person):
                mg.drop_relationships(self.dsl, thing, person)
                del self.verb_made[(thing, person)]
                self._link(record, person, "many-to-one", how="inferred")
                self._link(record, thing, "many-to-one", how="inferred")
                return

    def _near(self, a: str, b: str) -> bool:
        """Are ``a`` and ``b`` both linked to a third entity (an order and a product through its items)?"""
        ends = lambda x: {r.target if r.source == x else r.source for r in self.dsl.relationships  # noqa: E731
                          if x in (r.source, r.target)}
        return bool(ends(a) & ends(b) - {a, b})

    def _reaches(self, a: str, b: str) -> bool:
        """Is ``b`` linked to ``a`` directly, or a parent of ``a`` through many-to-one links?"""
        return mg.linked(self.dsl, a, b) or b in self._ancestors(a)

    def _ancestors(self, a: str) -> set[str]:
        """The parents of ``a``, their parents, and so on (many-to-one and one-to-one links)."""
        seen, todo = set(), [a]
        while todo:
            x = todo.pop()
            for r in self.dsl.relationships:
                if r.source == x and r.type in ("many-to-one", "one-to-one") and r.target not in seen | {a}:
                    seen.add(r.target)
                    todo.append(r.target)
        return seen

    def _record_of(self, record: str, subject: list[str], objects: list[str]) -> bool:
        """"groomers groom dogs *in appointments*": the record the act is done in holds who did it and to
        what, in place of the plain verb's link between them."""
        doers = [s for s in subject if s in self.dsl.entities and dm.is_person(s)]
        if not dm.is_event(record) or not doers or any(dm.is_event(o) or o == record for o in objects):
            return False
        for o in objects:
            for s in doers:
                if self.verb_made.pop((o, s), None) is not None:
                    mg.drop_relationships(self.dsl, o, s)
                self._link(record, s, "many-to-one")
            self._link(record, o, "many-to-one")
        return True

    def _contact(self, cs: list[Chunk]) -> None:
        """"guests and the tables *they sit at*": a clause after a noun whose subject is "they" says what the
        people named before do with it: a place they are at (a dangling preposition) is theirs to be in."""
        for k in range(1, len(cs) - 3):
            if not (cs[k].kind == "NP" and (cs[k + 1].text == "they" or cs[k + 1].kind == "NP") and cs[k + 2].kind == "VERB"
                    and cs[k + 3].kind == "PREP" and (k + 4 == len(cs) or cs[k + 4].kind in ("PUNCT", "CONJ"))):
                continue
            place = self._known(cs[k])
            if cs[k + 1].kind == "NP":  # "the orders those candles went into": the candles did
                doers = [n for n in [self._known(cs[k + 1])] if n]
            else:
                doers = [n for n in (self._known(c) for c in reversed(cs[:k]) if c.kind == "NP" and c.plural) if n]
            if place and doers and doers[0] != place and not mg.linked(self.dsl, doers[0], place):
                self._link(doers[0], place, "many-to-one")
                self.consumed |= {k, k + 1, k + 2, k + 3}

    def _fronted(self, cs: list[Chunk]) -> None:
        """"on each trip, the fish I catch": what the sentence names after a fronted "on/in/at/during each X"
        happens in that X."""
        for k in range(len(cs) - 2):
            if cs[k].kind == "PREP" and cs[k].text in ("on", "in", "at", "during", "after", "for") \
                    and cs[k + 1].kind == "NP" and {"each", "every"} & set(cs[k + 1].det) \
                    and (k == 0 or cs[k - 1].kind in ("PUNCT", "CONJ")):
                whole = self._known(cs[k + 1])
                m = k + 2
                while m < len(cs) and cs[m].kind in ("PUNCT", "DET", "ADV"):
                    m += 1
                part = self._known(cs[m]) if m < len(cs) and cs[m].kind == "NP" else None
                if part is None and m < len(cs) and cs[m].kind == "PRON":  # "for each car we keep a list of jobs"
                    n = m + 1
                    while n < len(cs) and cs[n].kind in ("VERB", "MODAL", "ADV", "HAVE", "DET"):
                        n += 1
                    while n + 2 < len(cs) and cs[n].kind == "NP" and dm.is_collection(cs[n].head) and cs[n + 1].text == "of":
                        n += 2
                    part = self._known(cs[n]) if n < len(cs) and cs[n].kind == "NP" and cs[n].plural else None
                if whole and part and whole != part and not mg.linked(self.dsl, whole, part):
                    self._link(part, whole, "many-to-one")
                # "for each call we record which firefighters responded and which trucks went out": several each
                for w in range(k + 2, len(cs) - 1):
                    if cs[w].text in ("which", "what") and cs[w + 1].kind == "NP" and cs[w + 1].plural:
                        which = self._known(cs[w + 1]) or self._name(cs[w + 1])
                        if whole and which and which != whole:
                            mg.drop_relationships(self.dsl, whole, which)
                            self._link(whole, which, "many-to-many")

    def _orphans(self) -> None:
        """Give each entity this message introduced and left unlinked its most plausible parent."""
        if len(self.dsl.entities) < 2:
            return
        linked = {r.source for r in self.dsl.relationships} | {r.target for r in self.dsl.relationships}
        for name in [n for n in self.dsl.entities if n in self.created and n not in linked]:
            if name in linked:
                continue  # linked as the parent of one guessed before it (not guessed again the other way)
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
            self.guessed[("rel", child, parent, "many-to-one")] = name
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
