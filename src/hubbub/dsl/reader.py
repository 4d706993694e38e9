"""The analysis' reading state: what has been found so far, entity names, and the defaults.

``ReaderBase`` keeps the DSL being edited and the provenance of every element,
turns noun phrases into entity names, and after each message fills in what the
user did not say (``domain.KB``). The patterns that read a sentence are in
``clauses.py``; the edits in ``edits.py``; ``analysis.py`` puts them together.
"""

from __future__ import annotations

import re

from hubbub.dsl import domain as dm
from hubbub.dsl import merge as mg
from hubbub.dsl.chunk import TEMPORAL, Chunk, chunk
from hubbub.dsl.schema import Dsl, Field
from hubbub.dsl.text import camel, enum_value, pascal, sentences, singular, words

MAX_CHARS = 20_000  # per message: descriptions are short; a pasted document is not a description
INTRO_VERBS = {"need", "want", "build", "create", "make", "develop", "design", "start", "like", "help"}
EDIT_ADD = {"add", "include", "put", "give", "attach"}
EDIT_DROP = {"drop", "remove", "delete", "forget", "skip", "lose"}
HAVE_VERBS = {"contain", "include", "need", "require", "store", "hold", "keep", "come", "carry"}
LOCATE_VERBS = {"happen", "work", "live", "sit", "occur", "belong", "reference", "link", "point", "report", "stay", "go"}
LINK_PREPS = {"of", "for", "per", "in", "into", "on", "to", "under", "within", "inside", "at", "from", "against"}
FLAGS = {"unique", "optional", "required", "mandatory"}
PASSIVE_PREPS = {"by", "to", "in", "on", "at", "into", "under", "for", "against", "from", "between", "within", "about",
                 "onto", "per", "through", "via", "inside", "across", "along", "near", "beside", "around", "behind"}

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


class ReaderBase:
    """The DSL being edited, the provenance of its elements, and what the user's words suggest."""

    def __init__(self, dsl: Dsl) -> None:
        self.dsl = dsl
        self.prov: dict[mg.Key, str] = {}
        self.nouns: set[str] = set()
        self.words: set[str] = set()
        self.candidates: set[str] = set()
        self.dropped: set[str] = set()
        self.guessed: dict[mg.Key, str] = {}  # links guessed for an unlinked entity -> that entity
        self.superseded: set[mg.Key] = set()  # guesses the user's words later replaced
        # Per message: entities it created, the names it uses, app-modifier entities held back.
        self.created: set[str] = set()
        self.vocab: set[str] = set()
        self.weak: list[str] = []
        self.sents: list[list[Chunk]] = []  # the message's sentences, chunked
        self.current: list[Chunk] = []  # the sentence being read
        self.read_as_one = False  # the sentence's prepositions were read with its predicate ("is one X at one Y")
        self.composed = False  # the record being spelled out is written as a sum ("flavour = base + ingredients")
        self.one_of: set[tuple[str, str]] = set()  # (child, parent) this message linked by "one" ("is on one tariff")
        self.listed = False  # the message is a list from its first line
        self.business: set[str] = set()  # what the user says they are ("we're a bike shop"): no entity
        self.compounds: frozenset[str] = frozenset()  # two-word names the message uses ("inspection_report")
        self.verb_made: dict[tuple[str, str], list[Chunk]] = {}  # (thing, person) linked by a plain verb -> sentence
        self.things: set[str] = set()  # app and meta words this message uses as data ("tools", "parts")
        self.actors: set[str] = set()  # people named in the plural as doers ("referees can mark ...", "by authors")
        # Per sentence: chunks already read, the running subject, the last objects, role aliases.
        self.consumed: set[int] = set()
        self.subject: list[str] = []
        self.last_object: list[str] = []
        self.singular_subject = False  # the running subject was named in the singular ("a screening")
        self.pronoun_subject = False  # the verb being read has "we", "I", "you" or "they" for its subject
        self.aliases: dict[str, str] = {}
        self.person_named = False

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
        if type_ == "many-to-many" and (target, source) in self.one_of and how == "stated":
            return  # "each site is on one tariff; a tariff applies to many sites": the many is the one's other side
        self._entity(source, how)
        self._entity(target, how)
        if how == "stated":
            self._supersede({source, target})
        if replace:
            mg.drop_relationships(self.dsl, source, target, name)
        if mg.add_relationship(self.dsl, source, target, type_, name):
            rel = self.dsl.relationships[-1]
            self._mark(mg.rel_key(rel), how)
            if rel.type in ("many-to-one", "one-to-one"):
                spec = Field("uuid", required=required, unique=rel.type == "one-to-one")
                mg.set_field(self.dsl, rel.source, mg.fk_name(rel), spec, override=not required)

    def _supersede(self, names: set[str]) -> None:
        """A guessed parent (``structure._orphans``) gives way once the user says how its entity is linked."""
        for key, orphan in list(self.guessed.items()):
            if orphan in names:
                del self.guessed[key]
                self.superseded.add(key)
                _, a, b, _kind = key
                if not ({a, b} <= names):  # (the stated link itself may join the same two)
                    mg.drop_relationships(self.dsl, a, b)

    # -- a message -----------------------------------------------------------------

    def message(self, text: str) -> None:
        self.created = set()
        self.one_of = set()
        self.listed = bool(re.match(r"\s*(\d+[.)]|[-*\u2022+])\s", text))  # the message starts as a list
        self.verb_made = {}
        texts = [part for t in sentences(_ASIDE.sub(" ", _EXAMPLES.sub("", text)))[:300]
                 for part in _DASH.split(_GLOSS.sub(_gloss, t)) if part.strip()]  # a dash ends a clause
        sents = [chunk(s) for s in texts]
        compounds = self.compounds = _compounds(sents)
        if compounds:  # again, keeping the two-word names this message uses together ("repair orders")
            sents = [chunk(s, compounds) for s in texts]
        sents = [_subject_clause(part) for cs in sents for part in _run_ons(cs)]
        # "Records: dentists, cases, technicians": the words for the model's own parts title a list of entities
        sents = [cs[2:] if len(cs) > 3 and cs[0].kind == "NP" and cs[0].plural and cs[0].words[-1] in _META_TITLES
                 and cs[1].text == ":" and cs[2].kind == "NP" and cs[2].plural else cs for cs in sents]
        self.sents = sents
        self.things = _things(sents)
        # "each person has a mother": the text's own word for its people, where it names one of them as data
        self.person_named = self.person_named or any(
            c.kind == "NP" and c.words == ["person"] and {"each", "every"} & set(c.det) for cs in sents for c in cs)
        self.actors = {pascal(c.head) for cs in sents for k, c in enumerate(cs) if c.kind == "NP" and c.plural
                       and (k + 1 < len(cs) and cs[k + 1].kind in ("VERB", "HAVE", "AUX", "MODAL")
                            or k > 0 and cs[k - 1].text in ("by", "to", "from"))}  # "sent by senders to recipients"
        for cs in sents:
            for c in cs:
                self.words |= {w.lower() for w in c.words} | {m.lower() for m in c.mods}
                if c.kind == "NP":
                    self.nouns |= {singular(w) for w in c.words}
        self.business = {c.head for cs in sents for k, c in enumerate(cs[1:], 1) if c.kind == "NP"
                         and cs[k - 1].text in ("we're", "i'm", "we", "i", "are", "am") and cs[0].kind == "PRON"
                         and cs[0].text in ("we're", "i'm", "we", "i") and k <= 2
                         and (k == 1 and cs[0].text in ("we're", "i'm") or k == 2 and cs[1].text in ("are", "am"))}
        # "The observatory lends telescopes to members": a singular "the X" acting, never named as one of many
        self.business |= {cs[0].head for cs in sents if len(cs) > 2 and cs[0].kind == "NP"
                          and cs[0].det in (["the"], ["our"], ["my"])
                          and not cs[0].plural and len(cs[0].words) == 1 and cs[1].kind == "VERB"
                          and not cs[1].text.endswith("ed") and cs[2].kind == "NP"
                          and not dm.is_person(cs[0].head)}
        self.vocab = self._vocabulary(sents)
        self.business -= {w.lower() for n in self.vocab for w in words(n)}
        self.candidates |= self.vocab
        self.weak = []
        for index, cs in enumerate(sents):
            cs = self.sents[index] = self._subject_fields(cs)
            self._sentence(cs, first=index == 0)
        if self.weak and not self.dsl.entities:
            for name in self.weak:
                self._entity(name)
        self._singletons()
        self._defaults()
        self._records()
        self._orphans()
        self._joined()

    def _subject_fields(self, cs: list[Chunk]) -> list[Chunk]:
        """"Sites (address, opening hours) have chargers": the subject's fields in parentheses, taken out
        so that the clause reads "sites have chargers" (examples of it, "creators (writers, inkers)", go)."""
        if len(cs) < 5 or cs[0].kind != "NP" or cs[1].text != "(" or ")" not in [c.text for c in cs]:
            return cs
        end = [c.text for c in cs].index(")")
        owner = self._name(cs[0])
        if owner is None or end + 1 >= len(cs) or cs[end + 1].kind not in ("HAVE", "VERB", "AUX", "MODAL") \
                or not any(c.kind == "NP" for c in cs[2:end]):
            return cs
        nps = [c for c in cs[2:end] if c.kind == "NP"]
        if not all(c.plural and c.words[-1] not in dm.PLURAL_FIELDS for c in nps):  # not "(writers, inkers)": kinds
            self._entity(owner)
            self._spelled_out(cs[2:end], owner)
        return [cs[0], *cs[end + 1:]]

    def _spelled_out(self, rest: list[Chunk], owner: str, composed: bool = False) -> None:
        """The items of one entity written out (``structure.Structure``)."""

    def _singletons(self) -> None:
        """"Clients retain the firm", "borrow games from the shelf": a thing only ever named as *the* one, never
        the subject of a clause, with nothing stored about it, is the app's setting, not a table of it."""
        mentions: dict[str, list[tuple[Chunk, Chunk | None, bool]]] = {}
        for cs in self.sents:
            ours = bool(cs) and (cs[0].kind == "PRON" and cs[0].text in ("we", "i", "we're", "i'm")
                                 or cs[0].kind == "NP" and {"our", "my"} & set(cs[0].det))
            for k, c in enumerate(cs):
                name = self._name(c) if c.kind == "NP" else None
                if name:  # (where "we" are: "I volunteer at a rescue centre", "we run tours from a beach shop")
                    where = ours and k > 1 and cs[k - 1].text in ("at", "in", "from", "on") and c.det in (["a"], ["an"])
                    mentions.setdefault(name, []).append((c, cs[k + 1] if k + 1 < len(cs) else None, where))
        for name in list(self.created):
            said = mentions.get(name)
            if not said or name not in self.dsl.entities or dm.is_person(name) or mg.attribute_fields(self.dsl, name):
                continue
            if all((c.det == ["the"] and not c.mods and len(c.words) == 1 or where) and not c.plural
                   and not (nxt and (nxt.kind in ("HAVE", "MODAL", "AUX", "VERB", "PRON", "REL")  # a subject, a clause
                                     or nxt.text in ("with", ":", "=")))
                   for c, nxt, where in said):
                mg.drop_entity(self.dsl, name)
                self.created.discard(name)

    def _records(self) -> None:
        """Links of records to what they are about (``structure.Structure``)."""

    def _joined(self) -> None:
        """Many-to-many links a record already joins (``structure.Structure``)."""

    def _orphans(self) -> None:
        """Links for what the message left unlinked (``structure.Structure``)."""

    def _vocabulary(self, sents: list[list[Chunk]]) -> set[str]:
        """Entity names this message is likely to use: plurals and ``each X`` that are not field words."""
        vocab: set[str] = set()
        for cs in sents:
            for c in cs:
                if c.kind != "NP":
                    continue
                if c.plural and (c.words[-1] not in dm.PLURAL_FIELDS or c.head in self.things) \
                        or {"each", "every"} & set(c.det) and not is_when(cs, c):
                    name = self._name(c)
                    if name:
                        vocab.add(name)
            for k in range(len(cs) - 1):  # "a budget per category": one per instance of an entity
                if cs[k].kind == "NP" and (cs[k + 1].kind == "HAVE" or cs[k + 1].base in HAVE_VERBS):
                    name = self._name(cs[k])  # "a reservation stores the plate number"
                    if name:
                        vocab.add(name)
                elif cs[k].kind == "NP" and cs[k].det and cs[k + 1].kind == "VERB" and not cs[k + 1].text.endswith("ing") \
                        and cs[k].head not in dm.FIELDS and dm.is_person(cs[k].head):
                    name = self._name(cs[k])  # "the operator files a work order": whoever acts is someone to store
                    if name:
                        vocab.add(name)
                if cs[k].text == "per" and cs[k + 1].kind == "NP" and cs[k + 1].head not in TEMPORAL \
                        and not dm.is_unit(cs[k + 1].head):
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
        if len(ws) >= 2 and f"{singular(ws[-2])}_{head}" in self.things:
            return pascal(f"{ws[-2]} {head}")  # "shooting days": a day is no entity, a shooting day is
        if len(ws) >= 2:
            pair = f"{singular(ws[-2])}_{head}"
            modifier = singular(ws[-2])
            if pair in dm.COMPOUNDS or (head in dm.GENERIC_HEADS and modifier.isalpha()
                                        and modifier not in dm.APP_WORDS and modifier not in dm.MASS_NOUNS - {"time"}) \
                    or pair in self.compounds and modifier.isalpha() and (dm.is_event(modifier) or modifier.endswith("ing")):
                # ("inspection reports", "sampling points")
                return pascal(f"{ws[-2]} {head}")
        if "-" in head:
            return pascal(head)
        if head in ("people", "person", "everyone", "users") or head == "user":
            return "Person" if "Person" in self.dsl.entities or self.person_named and "User" not in self.dsl.entities \
                else "User"
        if head in dm.PEERS:  # "with friends": the app's people, whatever it calls them
            people = [e for e in self.dsl.entities if dm.is_person(e)]
            return people[0] if people else "User"
        if (head in dm.NON_ENTITIES or head in dm.APP_WORDS) and head not in self.things \
                or head in dm.MASS_NOUNS and ws[-1] == head or len(head) < 2:  # (a plural counts: "meet at homes")
            return None
        if not head.isalpha():
            return None
        name = pascal(head)
        if name in self.dsl.entities:
            return name
        if head in dm.CALENDAR or head in dm.AMOUNTS or head == "count" and len(ws) > 1:
            return None  # "most Sundays", "litres of milk", "the number of bunks" (a "bunk count")
        spec = dm.FIELDS.get(head)
        if spec is not None and spec.type in ("date", "datetime") and head not in self.things:
            return None  # "a work party is on one date": a moment is a field of the record, never a table
        if (head in dm.THE_BUSINESS and {"the", "our", "my"} & set(np.det) or head in self.business
                or head in TEMPORAL and len(ws) == 1 or {"my", "our"} & set(np.det) and (dm.is_person(head) or head in dm.FAMILY)) \
                and not np.plural and name not in self.vocab:
            return None  # "the museum lends objects", "we're a bike shop", "for a season", "my grandmother"
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
        role_word = np.head in dm.ROLES and pascal(np.head) not in self.dsl.entities.keys() | self.actors
        own = None if role_word else self._known(np)
        if own:
            return own
        if np.head in dm.ROLES or role and np.head == role:  # a role ("assignee"), or the doer of a verb ("editor")
            known = set(self.dsl.entities) | self.vocab
            for cand in ("user", "member", "employee", "customer", "person"):
                if pascal(cand) in known:
                    return pascal(cand)
            people = [e for e in self.dsl.entities if e.lower() in dm.PERSONS] or [  # "researchers": the app's people
                e for e in self.dsl.entities if dm.is_person(e) and words(e)[-1] not in dm.ROLES]
            return people[0] if people else "User"
        return self._name(np)

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



def _things(sents: list[list[Chunk]]) -> set[str]:
    """Words that are usually not data but are here: an app word in the plural ("members borrow *tools*"),
    a meta word in the plural where an entity stands (subject, object, a listed item: "the *parts* used"),
    and the two-word names such a word makes ("*shooting days*"): ``part``, ``shooting_day``."""
    out: set[str] = set()
    singles = {c.words[0] for cs in sents for c in cs if c.kind == "NP" and len(c.words) == 1 and not c.plural
               and {"a", "an", "the", "each", "every", "that", "this"} & set(c.det)}
    for index, cs in enumerate(sents):
        listing = False
        for k, c in enumerate(cs):
            listing = listing or c.text == "->" or c.text == ":" and k == 1  # "Cinema: films, screens, ..."
            listing = listing or k == 0 and len(cs) >= 3 and all(  # "Dentists, cases, shipments."
                x.kind == "NP" and x.plural or x.text in (",", "and") for x in cs)
            if c.kind == "NP" and index > 0 and c.head in dm.APP_WORDS and {"a", "an", "each", "every"} & set(c.det) \
                    and k + 1 < len(cs) and (cs[k + 1].kind == "HAVE" or cs[k + 1].base in HAVE_VERBS):
                out.add(c.head)  # after the app was named: "a site contains buildings" is data
                continue
            if c.kind == "NP" and not c.plural and c.head in dm.SOFT_NON_ENTITIES and {"each", "every"} & set(c.det) \
                    and k + 1 < len(cs) and cs[k + 1].kind in ("AUX", "VERB", "HAVE", "MODAL"):
                out.add(c.head)  # "every part is for one car": a meta word as the subject of a clause is data
                continue
            if c.kind != "NP" or not c.plural:
                continue
            head = c.head
            if head in dm.APP_WORDS:
                out.add(head)
                continue
            placed = listing or k + 1 < len(cs) and cs[k + 1].kind in ("VERB", "HAVE", "AUX", "MODAL") \
                or k > 0 and cs[k - 1].kind in ("VERB", "HAVE") \
                or k == 0 and (len(cs) > 2 and cs[1].text == ":" or len(cs) == 1) \
                or k > 1 and cs[k - 1].text in ("at", "in", "into", "through") and any(  # "Fields: name, acreage"
                    x.kind in ("VERB", "AUX") for x in cs[:k - 1])  # "games are played at fields"
            finite = k + 1 < len(cs) and (cs[k + 1].kind in ("MODAL", "AUX", "HAVE")  # not "the hours spent"
                                          or cs[k + 1].kind == "VERB" and cs[k + 1].text == cs[k + 1].base)
            if c.words[-1] in dm.PLURAL_FIELDS and (k > 0 and cs[k - 1].kind == "VERB" and not finite
                                                    and not cs[k - 1].text.endswith("ing")  # not "opening dates"
                                                    and not (k + 1 < len(cs) and cs[k + 1].kind == "VERB")
                                                    or finite or head in singles):
                out.add(head)  # "artists perform sets", "sections have seats" + "a seat": not a count
                continue
            if not placed or head not in dm.NON_ENTITIES:
                continue
            if len(cs) == 1 and len(c.words) == 1:
                out.add(head)  # "• couples": a list item that is only a plural names its thing
                continue
            modifier = singular(c.words[-2]) if len(c.words) >= 2 else ""
            if modifier.isalpha() and modifier not in dm.NON_ENTITIES | dm.APP_WORDS | dm.MASS_NOUNS:
                out.add(f"{modifier}_{head}")
            elif head in dm.SOFT_NON_ENTITIES:
                out.add(head)
    return out


# "1) Accounts — the cafés, delis and hotels we bake for": a list item's name and a gloss after a dash
_GLOSS = re.compile(r"^(\s*(?:\d+[.)]|[-*\u2022+])?\s*[A-Za-z][\w']*(?:\s+[\w']+){0,2})\s+[\u2014\u2013]\s+(.*)$", re.S)


def _gloss(m: re.Match[str]) -> str:
    """The gloss after a list item's dash is dropped ("Accounts — the cafés and delis we bake for": examples),
    unless it spells the record out as what it joins ("Shifts — one lifeguard in one tower"), which reads
    as the item's fields: "Shifts: one lifeguard, one tower"."""
    if re.match(r"(?i)one\s", m.group(2)):
        fields = re.sub(r"(?i)\s+(?:in|at|on|for|with|by|from|to|of)\s+(?=one\s)", ", ", m.group(2))
        return f"{m.group(1)}: {fields}"
    return m.group(1)


# "Finds — pottery sherds, bone, coins — are bagged by context": an aside between two dashes
_ASIDE = re.compile(r"\s[\u2014\u2013]\s[^\u2014\u2013\n]{1,80}?\s[\u2014\u2013]\s")


_META_TITLES = frozenset("records entities tables objects models collections resources types things nouns".split())


# "report a hazard (a fallen tree, a washout) on a segment": examples in parentheses, not the sentence's parts
# (not a clause: "(a customer may have several)")
_EXAMPLES = re.compile(r"\s*\((?:a|an|e\.g\.|eg|like|such as|for example|for instance)\s"
                       r"(?![^()]*\b(?:may|can|is|are|has|have|will|must|should|could|does|do)\b)[^()]*\)", re.I)


_DASH = re.compile(r"\s[\u2014\u2013]\s")


def _run_ons(cs: list[Chunk]) -> list[list[Chunk]]:
    """A sentence written without punctuation, split where a new clause starts right after a noun:
    "track campers and cabins *every camper* sleeps in a cabin", "one counselor *campers* sign up ..."."""
    out, start = [], 0
    for k in range(1, len(cs) - 1):
        c = cs[k]
        if not (c.kind == "NP" and cs[k - 1].kind == "NP" and cs[k + 1].kind in ("VERB", "HAVE", "MODAL")
                and ({"each", "every"} & set(c.det) or c.plural and not c.det)):
            continue
        if k + 2 < len(cs) and cs[k + 2].kind == "PREP" and (k + 3 == len(cs) or cs[k + 3].kind in ("PUNCT", "CONJ")):
            continue  # "the orders those candles went into": a contact clause, one sentence
        out.append(cs[start:k])
        start = k
    out.append(cs[start:])
    return [part for part in out if part]


def _subject_clause(cs: list[Chunk]) -> list[Chunk]:
    """"every part *we buy* is for one car": a clause with no "that" after the subject, taken out so that
    the subject meets its verb."""
    for k in range(len(cs) - 3):
        if cs[k].kind == "NP" and {"each", "every", "any", "all"} & set(cs[k].det) and cs[k + 1].kind == "PRON" \
                and cs[k + 1].text in ("we", "i", "you", "they") and cs[k + 2].kind == "VERB" \
                and cs[k + 3].kind in ("AUX", "VERB", "HAVE", "MODAL"):
            return [*cs[:k + 1], *cs[k + 3:]]
    return cs


def is_when(cs: list[Chunk], c: Chunk) -> bool:
    """"*each season* we plant a crop", "every day they check off a habit": a time, not an entity (unless it
    is the subject: "each season has matches")."""
    k = cs.index(c)
    return c.head in TEMPORAL and len(c.words) == 1 and not (
        k + 1 < len(cs) and cs[k + 1].kind in ("HAVE", "VERB", "AUX", "MODAL"))


def _compounds(sents: list[list[Chunk]]) -> frozenset[str]:
    """Two-word names a message uses in the plural ("repair orders", "meeting rooms"): ``repair_order``."""
    out = set()
    for cs in sents:
        for c in cs:
            if c.kind == "NP" and len(c.words) >= 2 and c.words[-2].isalpha() and (
                    c.plural and not {"a", "an", "one"} & set(c.det) or {"each", "every"} & set(c.det)):
                # ("each purchase order": a name too; not "a ride starts", a noun and a verb)
                out.add(f"{singular(c.words[-2])}_{singular(c.words[-1])}")
    return frozenset(out)


def modifier_name(np: Chunk, target: str) -> str | None:
    """"a parent page", "a home team": the words before the entity name the link."""
    extra = [w for w in [*np.mods, *np.words[:-1]] if w not in FLAGS and w not in words(target)
             and w not in ("other", "another", "different", "related", "same", "existing", "new")]
    return camel(" ".join(extra + [np.words[-1]])) if extra and np.words and pascal(np.words[-1]) == target else None


def verb_role(role: str | None, target: str) -> str | None:
    """A verb's role names the link only for a generic person target ("users write posts": author)."""
    return role if role and target.lower() in dm.GENERIC_PERSONS else None


def values_from(chunks: list[Chunk]) -> list[str]:
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

