"""Deterministic analysis of what the user wrote: the DSL's backbone on a tiny model.

``analyze(previous, messages)`` reads the user's messages in order and edits a
copy of the previous DSL with what they say:

* entity mentions: the list after an app intro ("a blog with posts, authors
  and comments"), ``each``/``every`` X, subjects and objects of the patterns
  below, plural items of a field list; the app's own modifier ("a *task*
  manager") only when nothing else names an entity;
* fields: "each task has a title, a due date and a status (todo, done)",
  "with a rating", "add a due date to tasks";
* links: "has many", "belongs to", "is assigned to", "X of/for/per/in Y",
  verbs ("customers place orders", "users like posts", "guests book rooms"
  through a Booking when there is one);
* edits: "drop tags", "remove the due date from tasks", "rename X to Y",
  "make email unique", "status can be open, pending or closed";
* where the user said nothing: typical fields and parents from ``domain.KB``
  for entities introduced by this message (marked *inferred*, not *stated*).

Every element the analysis adds is recorded in ``provenance`` as ``stated`` or
``inferred``; the confidence score is computed from it (``phase.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hubbub.dsl import domain as dm
from hubbub.dsl import lexicon as lx
from hubbub.dsl import merge as mg
from hubbub.dsl.chunk import Chunk, chunk
from hubbub.dsl.schema import Dsl, Field
from hubbub.dsl.text import camel, enum_value, pascal, sentences, singular, words

_MAX_CHARS = 20_000  # per message: descriptions are short; a pasted document is not a description
_INTRO_VERBS = {"need", "want", "build", "create", "make", "develop", "design", "start", "like", "help"}
_EDIT_ADD = {"add", "include", "put", "give", "attach"}
_EDIT_DROP = {"drop", "remove", "delete", "forget", "skip", "lose"}
_HAVE_VERBS = {"contain", "include", "need", "require", "store", "hold", "keep", "come"}
_LOCATE_VERBS = {"happen", "work", "live", "sit", "occur", "belong", "reference", "link", "point", "report", "stay", "go"}
_LINK_PREPS = {"of", "for", "per", "in", "into", "on", "to", "under", "within", "inside", "at", "from", "against"}
_FLAGS = {"unique", "optional", "required", "mandatory"}
_PASSIVE_PREPS = {"by", "to", "in", "on", "at", "into", "under", "for", "against", "from", "between", "within"}

_ACCEPT = re.compile(
    r"\b(looks? (good|great|fine|perfect|right|correct|ok(ay)?)|that'?s (it|all|everything|perfect|great|good|fine|right)"
    r"|let'?s (build|go|do (it|this)|ship|start building)|build it|ship it|go ahead|sounds (good|great|perfect|right)"
    r"|(^|\W)perfect\b|lgtm|(i'?m|i am|we'?re|we are) (happy|done|good) with|good to go|all good|that works|works for me"
    r"|approved?\b|i approve|^(yes|yep|yeah|ok(ay)?|sure)[.!, ]*$|exactly what i (want|need)|no (more )?changes)",
    re.IGNORECASE,
)
_NEGATED = re.compile(r"\b(not|n't|never|almost|isn't|doesn't|don't|no,)\s+(\w+\s+){0,2}?"
                      r"(look|sound|quite|perfect|good|right|build|ship|it|done|happy)", re.IGNORECASE)


def accepts(text: str) -> bool:
    """Does the user accept the proposed model ("looks good", "let's build it")?"""
    t = text.strip()
    return bool(_ACCEPT.search(t)) and not _NEGATED.search(t) and not re.match(r"\s*(no|nope|wait)\b", t, re.I)


@dataclass
class Analysis:
    dsl: Dsl
    provenance: dict[mg.Key, str] = field(default_factory=dict)  # element -> "stated" | "inferred"
    nouns: set[str] = field(default_factory=set)  # singular nouns the user wrote
    accepted: bool = False  # by the last message
    words: set[str] = field(default_factory=set)  # every word the user wrote (lowercase)
    candidates: set[str] = field(default_factory=set)  # entity names the wording suggests (plurals, "each X")
    dropped: set[str] = field(default_factory=set)  # entities the user removed


def analyze(previous: Dsl | None, messages: list[str]) -> Analysis:
    """Apply what ``messages`` (the user's, in order) say to a copy of ``previous``."""
    reader = _Reader(previous.copy() if previous else Dsl())
    for text in messages:
        reader.message(text[:_MAX_CHARS])
    return Analysis(reader.dsl, reader.prov, reader.nouns, accepts(messages[-1]) if messages else False,
                    reader.words, reader.candidates | set(reader.dsl.entities), reader.dropped)


class _Reader:
    def __init__(self, dsl: Dsl) -> None:
        self.dsl = dsl
        self.prov: dict[mg.Key, str] = {}
        self.nouns: set[str] = set()
        self.words: set[str] = set()
        self.candidates: set[str] = set()
        self.dropped: set[str] = set()

    # -- bookkeeping -------------------------------------------------------------

    def _mark(self, key: mg.Key, how: str = "stated") -> None:
        if how == "stated" or key not in self.prov:
            self.prov[key] = how

    def _entity(self, name: str, how: str = "stated") -> str:
        if mg.ensure_entity(self.dsl, name):
            self.created.add(name)
            self._promote(name)
        self._mark(("entity", name), how)
        return name

    def _promote(self, name: str) -> None:
        """A plain field named like a new entity becomes a link to it ("a category" before "categories")."""
        fname = camel(" ".join(words(name)))
        for owner, fields in list(self.dsl.entities.items()):
            spec = fields.get(fname)
            if owner != name and spec is not None and spec.type in ("string", "enum"):
                del fields[fname]
                self._link(owner, name, "many-to-one", required=spec.required)

    def _field(self, entity: str, name: str, spec: Field, how: str = "stated", override: bool = False) -> None:
        self._entity(entity, how)
        mg.set_field(self.dsl, entity, name, spec, override=override)
        self._mark(("field", entity, name), how)

    def _link(self, source: str, target: str, type_: str, name: str | None = None, how: str = "stated",
              required: bool = True, replace: bool = False) -> None:
        self._entity(source, how)
        self._entity(target, how)
        if replace:
            mg.drop_relationships(self.dsl, source, target, name)
        if mg.add_relationship(self.dsl, source, target, type_, name):
            rel = self.dsl.relationships[-1]
            self._mark(mg.rel_key(rel), how)
            if rel.type in ("many-to-one", "one-to-one"):
                spec = Field("uuid", required=required, unique=rel.type == "one-to-one")
                mg.set_field(self.dsl, rel.source, mg.fk_name(rel), spec, override=not required)

    # -- a message -----------------------------------------------------------------

    def message(self, text: str) -> None:
        self.created: set[str] = set()
        sents = [chunk(s) for s in sentences(text)][:300]
        for cs in sents:
            for c in cs:
                self.words |= {w.lower() for w in c.words} | {m.lower() for m in c.mods}
                if c.kind == "NP":
                    self.nouns |= {singular(w) for w in c.words}
        self.vocab = self._vocabulary(sents)
        self.candidates |= self.vocab
        self.weak: list[str] = []
        for index, cs in enumerate(sents):
            self._sentence(cs, first=index == 0)
        if self.weak and not self.dsl.entities:
            for name in self.weak:
                self._entity(name)
        self._defaults()

    def _vocabulary(self, sents: list[list[Chunk]]) -> set[str]:
        """Entity names this message is likely to use: plurals and ``each X`` that are not field words."""
        vocab: set[str] = set()
        for cs in sents:
            for c in cs:
                if c.kind != "NP":
                    continue
                if c.plural and c.words[-1] not in dm.PLURAL_FIELDS or {"each", "every"} & set(c.det):
                    name = self._name(c)
                    if name:
                        vocab.add(name)
            for k in range(len(cs) - 1):  # "a budget per category": one per instance of an entity
                if cs[k].kind == "NP" and (cs[k + 1].kind == "HAVE" or cs[k + 1].base in _HAVE_VERBS):
                    name = self._name(cs[k])  # "a reservation stores the plate number"
                    if name:
                        vocab.add(name)
                if cs[k].text == "per" and cs[k + 1].kind == "NP":
                    name = self._name(cs[k + 1])
                    if name:
                        vocab.add(name)
        return vocab

    def _target(self, np: Chunk) -> str | None:
        """Like ``_name``, but "belongs to an app" names an entity even though "app" is an app word."""
        name = self._name(np)
        if name is None and np.head in dm.APP_WORDS and np.head not in ("system", "platform") and len(np.words) == 1:
            return pascal(np.head)
        return name

    def _name(self, np: Chunk, *, loose: bool = True) -> str | None:
        """The entity an NP names, or None when it cannot be one (``time``, ``app``, ``details``)."""
        ws = [w for w in np.words if w not in ("s",)]
        if not ws:
            return None
        head = singular(ws[-1])
        if len(ws) >= 2:
            pair = f"{singular(ws[-2])}_{head}"
            modifier = singular(ws[-2])
            if pair in dm.COMPOUNDS or (head in dm.GENERIC_HEADS and modifier.isalpha()
                                        and modifier not in dm.APP_WORDS and modifier not in dm.MASS_NOUNS - {"time"}):
                return pascal(f"{ws[-2]} {head}")
        if "-" in head:
            return pascal(head)
        if head in ("people", "person", "everyone", "users") or head == "user":
            return "User" if "Person" not in self.dsl.entities else "Person"
        if head in dm.NON_ENTITIES or head in dm.APP_WORDS or head in dm.MASS_NOUNS or len(head) < 2:
            return None
        if not head.isalpha():
            return None
        name = pascal(head)
        if name in self.dsl.entities:
            return name
        tails = [e for e in self.dsl.entities if words(e)[-1] == head and len(words(e)) > 1]
        if len(tails) == 1:
            return tails[0]
        return name

    def _known(self, np: Chunk) -> str | None:
        """An entity name for an NP that names an entity already known or used by this message."""
        name = self._name(np)
        if name and (name in self.dsl.entities or name in self.vocab):
            return name
        return None

    # -- a sentence ---------------------------------------------------------------

    def _sentence(self, cs: list[Chunk], first: bool) -> None:
        while cs:
            done = self._edit(cs)
            if not done:
                break
            cs = cs[done:]  # "add a due date to tasks and drop lists": the next clause may be an edit too
            while cs and cs[0].kind in ("CONJ", "PUNCT", "ADV"):
                cs = cs[1:]
            first = False
        if not cs:
            return
        self.consumed: set[int] = set()
        self.subject: list[str] = []
        self.last_object: list[str] = []
        self.aliases: dict[str, str] = {}
        self._appositive(cs)
        for c in cs:  # "each warehouse", "every thread": instances of an entity
            if c.kind == "NP" and {"each", "every"} & set(c.det):
                name = self._name(c)
                if name:
                    self._entity(name)
        if accepts(" ".join(c.text for c in cs)) and len(cs) <= 8:
            return  # "looks good, let's build it" changes nothing
        start = self._intro(cs, first)
        if start == 0:
            start = self._listing(cs)
        i = start
        while i < len(cs):
            c = cs[i]
            if c.kind in ("HAVE", "VERB", "AUX") and i not in self.consumed:
                i = self._predicate(cs, i)
                continue
            if c.kind == "NP" and i not in self.consumed and i + 1 < len(cs) and cs[i + 1].text == "with":
                owner = self._known(c)  # "tasks with a title and a due date"
                if owner:
                    self._entity(owner)
                    _, i = self._items(cs, i + 2, [owner], False)
                    continue
            i += 1
        self._prepositions(cs)

    def _listing(self, cs: list[Chunk]) -> int:
        """A bare list of plural nouns ("Books and readers.") or one after a colon: entities."""
        for k, c in enumerate(cs):
            if c.text == ":" or k == 0:
                j = k + 1 if c.text == ":" else 0
                nps, end = self._np_list(cs, j)
                plural = [np for np in nps if np.plural]
                if len(plural) >= (1 if c.text == ":" else 2) and end == len(cs):
                    for np in plural:
                        name = self._name(np)
                        if name:
                            self._entity(name)
                    self.consumed |= set(range(j, end))
                    return end
        return 0

    def _intro(self, cs: list[Chunk], first: bool) -> int:
        """'I need a blog with posts, authors and comments' / 'A CRM to track companies and deals'."""
        i = 0
        while i < len(cs) and cs[i].kind in ("PRON", "MODAL", "ADV", "AUX", "DET", "NEG"):
            i += 1
        pron = i > 0 and cs[0].kind == "PRON"
        if i < len(cs) and cs[i].kind == "VERB" and (cs[i].base in _INTRO_VERBS or pron and first):
            i += 1
            while i < len(cs) and cs[i].kind in ("PREP", "PRON", "VERB") and cs[i].text in ("to", "me", "us", "build", "create", "make", "have"):
                i += 1
        elif not first and not (i < len(cs) and cs[i].kind == "NP" and i + 1 < len(cs) and cs[i + 1].text == ":"):
            return 0
        if i >= len(cs) or cs[i].kind != "NP":
            return 0
        app = cs[i]
        titled = i + 1 < len(cs) and cs[i + 1].text == ":"
        if app.plural and not titled:
            return 0
        if not titled and not ({"a", "an"} & set(app.det)) and app.head not in dm.APP_WORDS \
                and app.head not in dm.PROCESS_WORDS:
            return 0
        for w in app.words[:-1] if (app.head in dm.APP_WORDS or singular(app.head) in dm.PROCESS_WORDS) else []:
            w1 = singular(w)
            if w1 not in dm.PROCESS_WORDS and w1 not in dm.INSTITUTIONS and w1 not in dm.MASS_NOUNS \
                    and w1 not in dm.NON_ENTITIES and w1 not in dm.APP_WORDS:
                self.weak.append(pascal(w1))
        j = i + 1
        if j < len(cs) and cs[j].text in ("with", "for", ":", "like", "of", "that", "where"):
            if cs[j].text in ("that", "where"):
                return j + 1
            j += 1
            if j < len(cs) and cs[j].kind == "VERB":
                j += 1
            nps, end = self._np_list(cs, j)
            if nps and not (end < len(cs) and cs[end].kind in ("HAVE", "VERB", "MODAL", "AUX")):
                for np in nps:  # singular ones ("for a logistics company") name the app's owner, not data
                    name = self._name(np)
                    if name and np.plural:
                        self._entity(name)
                self.consumed |= set(range(i, end))
                return end
        elif j < len(cs) and cs[j].text == "to" and j + 1 < len(cs) and cs[j + 1].kind == "VERB":
            nps, end = self._np_list(cs, j + 2)
            for np in nps:
                name = self._name(np)
                if name and np.plural:
                    self._entity(name)
            return end
        return j

    def _np_list(self, cs: list[Chunk], i: int) -> tuple[list[Chunk], int]:
        """``NP (, NP)* (and|or) NP`` from ``i``; stops before an NP that starts a new clause."""
        out: list[Chunk] = []
        while i < len(cs):
            while i < len(cs) and cs[i].kind in ("ADV", "DET", "ADJ"):
                i += 1
            if i >= len(cs) or cs[i].kind != "NP":
                break
            if out and self._starts_clause(cs, i):
                break
            out.append(cs[i])
            i += 1
            if i < len(cs) and cs[i].text == "(":
                while i < len(cs) and cs[i].text != ")":
                    i += 1
                i += 1
            if i < len(cs) and cs[i].text == "of" and i + 1 < len(cs) and cs[i + 1].kind == "NP" and out[-1].head in ("number", "count", "list", "set", "history", "log", "series", "collection", "record"):
                out[-1] = cs[i + 1]
                i += 2
            if i < len(cs) and cs[i].text in (",", "and", "or", "/"):
                j = i
                while j < len(cs) and cs[j].text in (",", "and", "or", "/"):
                    j += 1
                if j < len(cs) and cs[j].kind in ("NP", "ADV", "DET") and not self._starts_clause(cs, j):
                    i = j
                    continue
            break
        return out, i

    @staticmethod
    def _starts_clause(cs: list[Chunk], i: int) -> bool:
        j = i + 1
        while j + 1 < len(cs) and cs[j].kind == "PREP" and cs[j + 1].kind == "NP":  # "every check-in of a member is"
            j += 2
        while j < len(cs) and cs[j].kind in ("MODAL", "ADV", "NEG"):
            j += 1
        return j < len(cs) and cs[j].kind in ("HAVE", "VERB", "AUX") and cs[i].kind == "NP"

    def _subject(self, cs: list[Chunk], k: int) -> tuple[list[str], bool, bool]:
        """Who does the verb at ``k``: (entities, negated, explicit)."""
        j = k - 1
        negated = False
        while j >= 0 and cs[j].kind in ("MODAL", "ADV", "NEG", "AUX"):
            negated = negated or cs[j].kind == "NEG"
            j -= 1
        if j >= 0 and cs[j].kind == "NP" and j not in self.consumed:
            nps = [cs[j]]
            m = j - 1
            while m >= 1 and cs[m].text in ("and", ",", "or") and cs[m - 1].kind == "NP" and m - 1 not in self.consumed:
                nps.insert(0, cs[m - 1])
                m -= 2
            if m >= 1 and cs[m].kind == "PREP" and cs[m - 1].kind == "NP" and m - 1 not in self.consumed and len(nps) == 1:
                nps = [cs[m - 1]]  # "every check-in of a member is stored": the subject is the check-in
            names = [n for n in (self._name(np) for np in nps) if n]
            for idx in range(m, j + 1):
                self.consumed.add(idx)
            return names, negated, True
        if j >= 0 and cs[j].kind == "PRON":
            return [], negated, True
        if j >= 0 and cs[j].kind == "REL":  # "enrollments, which store a grade"
            m = j - 1
            while m >= 0 and cs[m].text == ",":
                m -= 1
            if m >= 0 and cs[m].kind == "NP":
                name = self._name(cs[m])
                return ([name] if name else []), negated, True
        return list(self.subject), negated, False

    # -- predicates --------------------------------------------------------------

    def _predicate(self, cs: list[Chunk], k: int) -> int:
        v = cs[k]
        if v.kind == "VERB" and v.text.endswith("ing") and k > 0 and cs[k - 1].kind == "NP":
            name = self._name(cs[k - 1])  # "orders containing several dishes": the orders contain them
            subject, negated = ([name] if name else []), False
        else:
            subject, negated, _ = self._subject(cs, k)
        for name in subject:
            if name in self.vocab:
                self._entity(name)
        if subject:
            self.subject = subject
        n = k + 1
        while n < len(cs) and cs[n].kind in ("ADV", "NEG"):
            negated = negated or cs[n].kind == "NEG"
            n += 1
        if v.kind == "AUX":
            if n < len(cs) and cs[n].kind == "VERB":  # passive: "is written by", "are assigned to"
                return self._passive(cs, n, subject)
            if n < len(cs) and cs[n].kind == "PREP" and cs[n].text in ("in", "on", "at", "under", "within", "for", "between", "inside"):
                nps, end = self._np_list(cs, n + 1)
                self._links_to(subject, nps, negated, self._spans(cs, n + 1, end))
                self.consumed |= set(range(n, end))
                return self._with(cs, end, subject)
            return n
        base = v.base or v.text
        if v.kind == "HAVE" or (base in _HAVE_VERBS and subject):
            nps, end = self._items(cs, n, subject, negated)
            if nps and end < len(cs) and cs[end].text == "with" and self._known(nps[-1]) is None \
                    and not nps[-1].plural and nps[-1].head not in dm.ROLES:
                owned = self._name(nps[-1])  # "users have a profile with a bio": a profile has fields, so it is an entity
                if owned:
                    for owner in subject:
                        mg.drop_field(self.dsl, owner, camel(" ".join(nps[-1].words)))
                        kind = "one-to-one" if nps[-1].head in dm.ONE_TO_ONE else "many-to-one"
                        self._link(owned, owner, kind)
                    return self._with(cs, end, [owned])
            linked = [x for x in (self._known(np) for np in nps) if x and x not in subject]
            end = self._who(cs, end, subject)
            return self._with(cs, end, linked[-1:] or subject)
        if base in _LOCATE_VERBS:
            if n < len(cs) and cs[n].kind == "PREP":
                n += 1
            nps, end = self._np_list(cs, n)
            self._links_to(subject, nps, negated, self._spans(cs, n, end))
            self.consumed |= set(range(n - 1, end))
            return self._with(cs, end, subject)
        if n < len(cs) and cs[n].kind == "PREP" and cs[n].text in ("to", "in", "for", "on") and base in dm.PICK_VERBS | set(dm.TRANSACTIONS):
            n += 1
        nps, end = self._np_list(cs, n)
        self._verb(base, subject, nps, negated)
        if nps:
            self.consumed |= set(range(n, end))
            self.last_object = [x for x in (self._name(np) for np in nps) if x]
        end = self._with(cs, end, (self.last_object if nps else subject))
        return end

    def _who(self, cs: list[Chunk], i: int, owners: list[str]) -> int:
        """"... and who edited it": a person link named for the doer (``editor``)."""
        j = i + (1 if i < len(cs) and cs[i].text in ("and", ",") else 0)
        if j + 1 < len(cs) and cs[j].text == "who" and cs[j + 1].kind == "VERB" and owners:
            base = cs[j + 1].base or cs[j + 1].text
            role = dm.VERB_ROLES.get(base) or (base + "r" if base.endswith("e") else base + "er")
            person = self._person(Chunk("NP", role, [role]), role)
            for owner in owners:
                if person:
                    self._link(owner, person, "many-to-one", role if pascal(role) != person else None)
            return j + 2 + (1 if j + 2 < len(cs) and cs[j + 2].kind == "PRON" else 0)
        return i

    def _with(self, cs: list[Chunk], i: int, owners: list[str]) -> int:
        """Trailing "... with a rating and a comment": fields of what the clause is about."""
        j = i
        while j < len(cs) and (cs[j].kind == "PREP" and cs[j].text != "with" or cs[j].text == ","):
            j += 1
            while j < len(cs) and cs[j].kind in ("NP", "NUM", "DET", "ADJ"):
                j += 1
        if j < len(cs) and cs[j].text == "with" and owners:
            _, end = self._items(cs, j + 1, owners, False)
            return end
        return i

    def _passive(self, cs: list[Chunk], n: int, subject: list[str]) -> int:
        base = cs[n].base or singular(cs[n].text.removesuffix("ed").removesuffix("d"))
        m = n + 1
        end = m
        while m < len(cs) and cs[m].kind == "PREP":  # "is driven by one driver in one vehicle"
            prep = cs[m].text
            nps, end = self._np_list(cs, m + 1)
            if prep == "with" or not nps:
                if prep == "with":
                    _, end = self._items(cs, m + 1, subject, False)
                return end
            role = dm.VERB_ROLES.get(base) if prep == "by" or base == "assign" else None
            divide = base in dm.DIVIDE_VERBS or cs[n].text in ("divided", "split", "broken", "grouped", "organized")
            for name in subject:
                for np in nps:
                    target = self._person(np, role) if (role or np.head in dm.ROLES) else self._name(np)
                    if not target or prep not in _PASSIVE_PREPS:
                        continue
                    if divide and prep == "into":  # the parts belong to the whole
                        self._link(target, name, "many-to-one")
                        continue
                    many = np.explicit_many
                    self._link(name, target, "many-to-many" if many else "many-to-one",
                               _role(role, target) or _modifier_name(np, target))
            self.consumed |= set(range(m, end))
            m = end
        if end == n + 1 and base in ("tag", "label", "categorize"):  # "notes can be tagged"
            for name in subject:
                self._link(name, pascal("tag" if base == "tag" else base), "many-to-many", how="stated")
        return self._with(cs, end, subject)

    def _links_to(self, subject: list[str], nps: list[Chunk], negated: bool,
                  spans: list[tuple[list[str], set[str], set[str]]]) -> None:
        for name in subject:
            for np, (_, flags, adv) in zip(nps, spans):
                target = self._target(np)
                if not target or negated:
                    continue
                optional = "optional" in flags | adv
                self._link(name, target, "many-to-many" if np.explicit_many else "many-to-one",
                           _modifier_name(np, target), required=not optional)

    def _verb(self, base: str, subject: list[str], nps: list[Chunk], negated: bool) -> None:
        objects = [x for x in ((self._name(np), np) for np in nps) if x[0]]
        for name, np in objects:
            if np.plural or np.explicit_many or name in self.vocab or name in self.dsl.entities:
                self._entity(name)  # "we sell candles" names data; "say hello" does not
        if negated or not subject:
            return
        assoc = None
        known = set(self.dsl.entities) | self.vocab
        for cand in dm.TRANSACTIONS.get(base, ()):
            if pascal(cand) in known:
                assoc = pascal(cand)
        stem = base[:-1] if base.endswith("e") else base
        nouns = {base, base + "ing", base + "ment", base + "al", stem + "ation", stem + "ion", base + "ation"}
        for name in known:  # "employees request leave" + LeaveRequest; "customers rent cars" + Rental
            if assoc is None and words(name)[-1] in nouns and base not in dm.CREATE_VERBS | {"have"}:
                assoc = name
        for obj, np in objects:
            for s in subject:
                if obj == assoc:  # "customers make bookings": the booking is the object itself
                    self._link(obj, s, "many-to-one")
                elif assoc:
                    self._link(assoc, s, "many-to-one")
                    self._link(assoc, obj, "many-to-one")
                elif base in dm.CREATE_VERBS or base in dm.SERVE_VERBS or (base in ("buy", "purchase") and singular(np.head) in dm.UNIQUE_GOODS):
                    self._link(obj, s, "many-to-one", _role(dm.VERB_ROLES.get(base), s))
                elif base in dm.PICK_VERBS or base in dm.TRANSACTIONS:
                    self._link(s, obj, "many-to-many" if np.many or np.plural else "many-to-one")
                elif base not in dm.NEUTRAL_VERBS and base not in lx.VERBS and s.lower() in dm.PERSONS \
                        and obj.lower() not in dm.PERSONS:
                    self._link(obj, s, "many-to-one")  # an unknown verb from a person: "creators launch campaigns"
                elif {"their", "its", "his", "her", "own"} & set(np.det + np.mods):
                    self._link(obj, s, "many-to-one")  # "owners register their pets"

    # -- field lists ---------------------------------------------------------------

    def _items(self, cs: list[Chunk], i: int, owners: list[str], negated: bool) -> tuple[list[Chunk], int]:
        """A has-list: fields, or links when an item names an entity or a person role."""
        nps, end = self._np_list(cs, i)
        spans = self._spans(cs, i, end)
        for np, (values, flags, adv) in zip(nps, spans):
            if negated:
                for owner in owners:
                    self._drop_item(owner, np)
                continue
            for owner in owners:
                self._item(owner, np, values, flags | adv)
        self.consumed |= set(range(i, end))
        return nps, end

    def _spans(self, cs: list[Chunk], i: int, end: int) -> list[tuple[list[str], set[str], set[str]]]:
        """For each NP in ``cs[i:end]``: values in the parentheses after it, flags, adverbs before it."""
        out: list[tuple[list[str], set[str], set[str]]] = []
        adv: set[str] = set()
        k = i
        while k < end:
            c = cs[k]
            if c.kind == "ADV":
                adv.add("optional" if c.text in ("optionally", "optional") else c.text)
            elif c.kind == "NP":
                values: list[str] = []
                flags = {m for m in c.mods if m in _FLAGS}
                if k + 1 < len(cs) and cs[k + 1].text == "(":
                    inner = []
                    m = k + 2
                    while m < len(cs) and cs[m].text != ")":
                        inner.append(cs[m])
                        m += 1
                    flags |= {w.text for w in inner if w.text in _FLAGS}
                    values = _values([w for w in inner if w.text not in _FLAGS])
                if k + 2 < len(cs) and cs[k + 1].text == "per" and cs[k + 2].kind == "NP" and self._known(cs[k + 2]):
                    flags = flags | {"per"}  # "one answer per question": one of them for each question, an entity
                out.append((values, flags, adv))
                adv = set()
            k += 1
        return out

    def _appositive(self, cs: list[Chunk]) -> None:
        """"..., a manager, who is also an employee": the role is that entity (a self-link when it is the subject)."""
        for k in range(len(cs) - 4):
            if cs[k].kind == "NP" and cs[k + 1].text == "," and cs[k + 2].text in ("who", "which") \
                    and cs[k + 3].kind == "AUX":
                m = k + 4
                while m < len(cs) and cs[m].kind == "ADV":
                    m += 1
                if m < len(cs) and cs[m].kind == "NP":
                    alias = self._name(cs[m])
                    if alias and alias in self.dsl.entities:
                        self.aliases[cs[k].head] = alias

    def _person(self, np: Chunk, role: str | None = None) -> str | None:
        """The entity a person word refers to: itself when the user named it as an entity, else for a
        role ("assignee", "owner") the app's person entity, created as ``User`` when there is none."""
        if np.head in self.aliases:
            return self.aliases[np.head]
        role_word = np.head in dm.ROLES and pascal(np.head) not in self.dsl.entities
        own = None if role_word else self._known(np)
        if own:
            return own
        if np.head in dm.ROLES or role:
            known = set(self.dsl.entities) | self.vocab
            for cand in ("user", "member", "employee", "customer", "person"):
                if pascal(cand) in known:
                    return pascal(cand)
            people = [e for e in self.dsl.entities if e.lower() in dm.PERSONS]
            return people[0] if people else "User"
        return self._name(np)

    def _item(self, owner: str, np: Chunk, values: list[str], flags: set[str]) -> None:
        head = np.head
        target = self._known(np)
        role_word = head in dm.ROLES and pascal(head) not in self.dsl.entities
        if role_word or target is None and head in dm.PERSONS and not np.mods:
            person = self._person(np)
            if person and person != owner:
                name = head if head in dm.ROLES and pascal(head) != person else None
                many = np.many
                self._link(owner, person, "many-to-many" if many else "many-to-one",
                           (np.words[-1] if many and name else name), required="optional" not in flags)
            return
        if target is None and (np.plural and np.words[-1] not in dm.PLURAL_FIELDS or "per" in flags):
            target = self._name(np)
        if target and target != owner:
            pair = tuple(sorted((" ".join(words(owner)), " ".join(words(target)))))
            kb = dm.KB.get(" ".join(words(target)))
            child = kb is not None and any(" ".join(words(owner)) in slot for slot in kb.parents)
            if np.many or np.plural:
                shared = any(r.source == target and r.type == "many-to-one" and r.target != owner
                             and self.prov.get(mg.rel_key(r)) == "stated" for r in self.dsl.relationships)
                if head in dm.LABELS or pair in dm.MANY_TO_MANY or shared:  # shared: "orders contain dishes" of restaurants
                    self._link(owner, target, "many-to-many")
                else:
                    self._link(target, owner, "many-to-one")
            elif child:  # "each lesson has a quiz": the quiz belongs to the lesson
                self._link(target, owner, "many-to-one")
            else:  # "each post has an author"; "only one customer" replaces what was said before
                self._link(owner, target, "many-to-one", required="optional" not in flags, replace="one" in np.det)
            return
        phrase = " ".join([m for m in np.mods if m not in _FLAGS] + np.words)
        phrase = re.sub(r"\bflag$", "", phrase).strip() or phrase
        self._add_field(owner, phrase, values, flags)

    def _add_field(self, owner: str, phrase: str, values: list[str], flags: set[str], how: str = "stated") -> None:
        words_ = phrase.split()
        if len(words_) == 1 and words_[0] not in dm.PLURAL_FIELDS:
            phrase = singular(phrase)
        spec = dm.field_spec(phrase) or dm.FieldSpec("string")
        name = camel(phrase)
        if not name or name == "id":
            return
        field_type = spec.type
        enum_values = values or None
        if values:
            field_type = "enum"
        elif field_type == "enum":
            enum_values = dm.enum_defaults(name, owner)
            if not enum_values:
                field_type = "string"
        required = spec.required or dm.enum_required(name)
        if "optional" in flags:
            required = False
        if flags & {"required", "mandatory"}:
            required = True
        existing = self.dsl.entities.get(owner, {}).get(name)
        new = Field(field_type, required, spec.unique or "unique" in flags, values=enum_values if field_type == "enum" else None)
        override = existing is not None and (bool(values) or bool(flags)) and existing != new
        self._field(owner, name, new, how, override=override)

    def _drop_item(self, owner: str, np: Chunk) -> None:
        target = self._known(np)
        if target and target != owner:
            mg.drop_relationships(self.dsl, owner, target)
            return
        if np.head in dm.ROLES:
            for r in [r for r in self.dsl.relationships if r.source == owner and (r.name or "").startswith(np.head)]:
                mg.drop_relationships(self.dsl, r.source, r.target)
            return
        name = camel(" ".join([m for m in np.mods if m not in _FLAGS] + np.words))
        for candidate in (name, camel(singular(name))):
            mg.drop_field(self.dsl, owner, candidate)

    # -- X of/for/per/in Y ---------------------------------------------------------

    def _prepositions(self, cs: list[Chunk]) -> None:
        for k in range(1, len(cs) - 1):
            if cs[k].kind != "PREP" or cs[k].text not in _LINK_PREPS or k in self.consumed and cs[k].text == "to":
                continue
            left, right = cs[k - 1], cs[k + 1]
            if left.kind != "NP" or right.kind != "NP":
                continue
            a, b = self._known(left), self._known(right)
            if a and b and a != b and a in self.dsl.entities and not mg.linked(self.dsl, a, b) \
                    and left.head not in ("number", "list", "count"):
                kb = dm.KB.get(" ".join(words(b)))
                if kb and any(" ".join(words(a)) in slot for slot in kb.parents):
                    self._link(b, a, "many-to-one")  # "pets in appointments": the appointment has the pet
                else:
                    self._link(a, b, "many-to-one")

    # -- edits -----------------------------------------------------------------------

    def _edit(self, cs: list[Chunk]) -> int:
        """Imperatives and statements that change the model: how many chunks they used (0: not an edit)."""
        i = 0
        while i < len(cs) and (cs[i].kind in ("ADV", "PRON", "MODAL", "CONJ", "PUNCT") or cs[i].text in ("please", "let", "also", "then", "now", "actually")):
            i += 1
        negated = False
        while i < len(cs) and cs[i].kind == "NEG":
            negated = True
            i += 1
        if i >= len(cs):
            return 0
        v = cs[i]
        base = v.base or v.text
        if v.kind == "VERB" and base in _EDIT_DROP or (negated and base in ("need", "want", "have", "use")):
            nps, end = self._np_list(cs, i + 1)
            owner = self._from(cs, end)
            for np in nps:
                self._drop(np, owner)
            return (end + 2 if owner else end) if nps else 0
        if v.kind == "VERB" and base == "rename" or (v.kind == "VERB" and base == "call" and i + 2 < len(cs)):
            nps, end = self._np_list(cs, i + 1)
            if len(nps) == 1 and end < len(cs) and cs[end].text in ("to", "as", "into") and end + 1 < len(cs) and cs[end + 1].kind == "NP":
                self._rename(nps[0], cs[end + 1])
                return end + 2
            if base == "call" and len(nps) == 2:
                self._rename(nps[0], nps[1])
                return end
            return 0
        if v.kind == "VERB" and base == "make":
            nps, end = self._np_list(cs, i + 1)
            flags = {c.text for c in cs[end:] if c.text in _FLAGS} | {m for np in nps for m in np.mods if m in _FLAGS}
            if nps and flags:
                owner = self._from(cs, end)
                for np in nps:
                    self._flag(np, flags, owner)
                return len(cs)
            return 0
        if v.kind == "VERB" and base in _EDIT_ADD:
            nps, end = self._np_list(cs, i + 1)
            target: list[str] = []
            stop = end
            if base == "give" and len(nps) >= 2 and self._known(nps[0]):
                target, nps = [self._known(nps[0]) or ""], nps[1:]
            elif end < len(cs) and cs[end].text in ("to", "on", "for", "in") and end + 1 < len(cs) and cs[end + 1].kind == "NP":
                owners, stop = self._np_list(cs, end + 1)
                target = [x for x in (self._name(np) for np in owners) if x]
            elif len(self.dsl.entities) == 1 and all(not np.plural for np in nps):
                target = list(self.dsl.entities)
            spans = self._spans(cs, i + 1, end)
            for np, (values, flags, adv) in zip(nps, spans):
                if target:
                    for owner in target:
                        self._item(owner, np, values, flags | adv)
                else:
                    name = self._name(np)
                    if name and (np.plural or name in self.vocab or np.head not in dm.FIELDS):
                        self._entity(name)
            return stop if nps else 0
        return len(cs) if self._statement(cs) else 0

    def _statement(self, cs: list[Chunk]) -> bool:
        """'<field> should be unique', 'status can be open, pending or closed', 'X should be called Y'."""
        if len(cs) < 3 or cs[0].kind != "NP":
            return False
        j = 1
        while j < len(cs) and cs[j].kind in ("MODAL", "ADV", "AUX"):
            j += 1
        if j == 1 or cs[j - 1].text not in ("be", "is", "are"):
            return False
        rest = cs[j:]
        if rest and rest[0].text in ("called", "named", "renamed"):
            k = 1 + (1 if len(rest) > 1 and rest[1].text in ("to", "as") else 0)
            if k < len(rest) and rest[k].kind == "NP":
                self._rename(cs[0], rest[k])
                return True
            return False
        flags = {c.text for c in rest if c.text in _FLAGS}
        if flags and len(rest) <= 3:
            self._flag(cs[0], flags, None)
            return True
        fname = camel(" ".join(cs[0].words))
        owners = mg.entities_with_field(self.dsl, fname) or mg.entities_with_field(self.dsl, camel(cs[0].head))
        if owners and self._known(cs[0]) is None:
            values = _values(rest[2:] if len(rest) > 2 and rest[0].text == "one" else rest)
            if len(values) >= 2:
                name = fname if fname in self.dsl.entities[owners[0]] else camel(cs[0].head)
                for owner in owners:
                    self._field(owner, name, Field("enum", True, values=values), override=True)
                return True
        return False

    def _from(self, cs: list[Chunk], end: int) -> str | None:
        if end < len(cs) and cs[end].text in ("from", "on", "in", "of") and end + 1 < len(cs) and cs[end + 1].kind == "NP":
            return self._known(cs[end + 1]) or self._name(cs[end + 1])
        return None

    def _drop(self, np: Chunk, owner: str | None) -> None:
        name = self._name(np)
        if owner is None and name in self.dsl.entities and np.head != "field":
            mg.drop_entity(self.dsl, name)
            self.dropped.add(name)
            return
        owners = [owner] if owner else list(self.dsl.entities)
        for o in owners:
            self._drop_item(o, np)

    def _rename(self, old: Chunk, new: Chunk) -> None:
        a, b = self._name(old), self._name(new)
        if a and b and a in self.dsl.entities:
            mg.rename_entity(self.dsl, a, b)
            self._mark(("entity", b))
            return
        fa, fb = camel(" ".join(old.words)), camel(" ".join(new.words))
        for owner in mg.entities_with_field(self.dsl, fa):
            mg.rename_field(self.dsl, owner, fa, fb)
            self._mark(("field", owner, fb))

    def _flag(self, np: Chunk, flags: set[str], owner: str | None) -> None:
        fname = camel(" ".join([m for m in np.mods if m not in _FLAGS] + np.words))
        for o in ([owner] if owner else mg.entities_with_field(self.dsl, fname)):
            spec = self.dsl.entities.get(o, {}).get(fname)
            if spec is None:
                continue
            if "unique" in flags:
                spec.unique = True
            if "optional" in flags:
                spec.required = False
            if flags & {"required", "mandatory"}:
                spec.required = True

    # -- what the user did not say -----------------------------------------------

    def _defaults(self) -> None:
        """Typical fields for new entities the user gave none, and their usual parents (``domain.KB``)."""
        for name in list(self.created):
            if name not in self.dsl.entities:
                continue
            kb = dm.KB.get(" ".join(words(name)))
            if kb and not mg.attribute_fields(self.dsl, name):
                for phrase in kb.fields:
                    self._add_field(name, phrase, [], set(), how="inferred")
        for name in list(self.dsl.entities):
            kb = dm.KB.get(" ".join(words(name)))
            if kb is None:
                continue
            for slot in kb.parents:
                present = [pascal(c) for c in slot if pascal(c) in self.dsl.entities and pascal(c) != name]
                if not present or any(mg.linked(self.dsl, name, p) for p in present):
                    continue
                parent = present[0]
                person_slot = all(c in dm.PERSONS for c in slot)
                if name not in self.created and not (person_slot and parent in self.created):
                    continue
                pair = tuple(sorted((" ".join(words(name)), " ".join(words(parent)))))
                if pair in dm.MANY_TO_MANY:
                    self._link(name, parent, "many-to-many", how="inferred")
                else:
                    role = kb.role if kb.role and parent.lower() != kb.role and slot is kb.parents[-1] \
                        and parent.lower() in dm.PERSONS else None
                    self._link(name, parent, "many-to-one", role, how="inferred")


def _modifier_name(np: Chunk, target: str) -> str | None:
    """"a parent page", "a home team": the words before the entity name the link."""
    extra = [w for w in [*np.mods, *np.words[:-1]] if w not in _FLAGS and w not in words(target)]
    return camel(" ".join(extra + [np.words[-1]])) if extra and np.words and pascal(np.words[-1]) == target else None


def _role(role: str | None, target: str) -> str | None:
    """A verb's role names the link only for a generic person target ("users write posts": author)."""
    return role if role and target.lower() in dm.GENERIC_PERSONS else None


def _values(chunks: list[Chunk]) -> list[str]:
    """Enum values from ``open, in progress or closed`` (any word class)."""
    out: list[str] = []
    current: list[str] = []
    for c in chunks:
        if c.text in (",", "or", "and", "/", ":", "(", ")", "one", "of", "either", "be", "is", "are"):
            if current:
                out.append(enum_value(" ".join(current)))
                current = []
            continue
        if c.kind in ("MODAL",):
            continue
        current.extend(([*c.mods, *c.words] if c.kind == "NP" else [c.text]))
    if current:
        out.append(enum_value(" ".join(current)))
    seen: list[str] = []
    for v in out:
        if v and v not in seen and len(v) <= 40:
            seen.append(v)
    return seen if len(seen) <= 20 else []
