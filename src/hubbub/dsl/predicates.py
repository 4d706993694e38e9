"""Reading a predicate: has/contains, belongs to, "is one X", verbs, passives, and the records they name.

``Predicates`` is a mixin of the analysis' reader (``analysis.py``), the base of
``clauses.Clauses``: given the verb a sentence's walk stopped at, it finds what the
predicate says about its subject and objects (``_predicate``: "each task has a title",
"customers place orders", "parcels are sent by senders to recipients") and links them
through the reader's bookkeeping. Noun-phrase lists, subjects and field lists are read
by ``Clauses``; what objects are for, about or at by ``structure.Structure``.
"""

from __future__ import annotations

from hubbub.dsl import domain as dm
from hubbub.dsl import merge as mg
from hubbub.dsl.chunk import TEMPORAL, Chunk
from hubbub.dsl.reader import (
    HAVE_VERBS, LOCATE_VERBS, PASSIVE_PREPS, ReaderBase, modifier_name, verb_role,
)
from hubbub.dsl.structure import each_other
from hubbub.dsl.text import camel, pascal, singular, words

PARTICLES = frozenset("out up off in down".split())
PLACE_PREPS = frozenset("at on from inside within near across".split())
RECORD_VERBS = frozenset("store record track log keep save".split())
QUANTITY_WORDS = frozenset("quantity amount count number qty".split())
ENTER_VERBS = frozenset("enter join enroll enrol register subscribe participate compete".split())  # take part in
_PARTICIPLES = frozenset("sold made written taken given held kept paid sent run seen chosen taught built found "
                         "brought lent put set told led read split known grown drawn shown".split())


def measure(np: Chunk, *also: str) -> bool:
    """"a quantity per recipe", "a price per night": a number kept per instance, not an entity."""
    spec = dm.field_spec(" ".join(np.words))
    return spec is not None and spec.type in ("integer", "number", "date", "datetime", "boolean", *also)


def is_participle(word: str) -> bool:
    return word.endswith("ed") or word in _PARTICIPLES


class Predicates(ReaderBase):
    """What a predicate says, applied; the sentence walk is ``clauses.Clauses``."""

    # -- predicates --------------------------------------------------------------

    def _predicate(self, cs: list[Chunk], k: int) -> int:
        v = cs[k]
        if v.kind == "VERB" and v.text.endswith("ing") and k > 0 and cs[k - 1].kind == "NP":
            name = self._name(cs[k - 1])  # "orders containing several dishes": the orders contain them
            subject, negated = ([name] if name else []), False
        elif v.kind == "VERB" and is_participle(v.text) and k > 0 and cs[k - 1].kind == "NP" and k + 1 < len(cs) \
                and cs[k + 1].kind == "PREP" and cs[k + 1].text in PASSIVE_PREPS:
            name = self._name(cs[k - 1])  # "bags sold to cafes", "tracks recorded in a session": a passive
            return self._passive(cs, k, [name] if name else [])
        elif v.kind == "VERB" and (is_participle(v.text) or v.text == "done") and k > 0 \
                and (cs[k - 1].kind == "CONJ" or cs[k - 1].text == ",") and self.subject \
                and k + 1 < len(cs) and (cs[k + 1].text == "by" or k + 2 < len(cs) and cs[k + 1].text in PARTICLES
                                         and cs[k + 2].text == "by"
                                         or cs[k + 1].text in PASSIVE_PREPS and k + 2 < len(cs)
                                         and cs[k + 2].kind == "NP" and (cs[k + 2].plural or cs[k + 2].det)):
            if cs[k + 1].text in PARTICLES and k + 2 < len(cs) and cs[k + 2].text == "by":  # "and carried out by"
                self.consumed.add(k + 1)
                cs = cs[:k + 1] + cs[k + 2:]
            return self._passive(cs, k, list(self.subject))  # "... are grouped into categories and written by authors"
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
            adjective = n < len(cs) and cs[n].kind == "ADJ" and n + 1 < len(cs) and cs[n + 1].kind == "PREP"
            if adjective:  # "keepers are responsible for several enclosures": the adjective relates them
                n += 1
            if n + 2 < len(cs) and cs[n].kind == "NP" and dm.is_collection(cs[n].head) and cs[n + 1].text == "of" \
                    and cs[n + 2].kind == "NP" and not negated and subject:
                return self._items(cs, n + 2, subject, False)[1]  # "a course is a list of controls": it has them
            if n < len(cs) and cs[n].kind == "NP" and "one" in cs[n].det and not negated and self._known(cs[n]):
                nps, end = self._np_list(cs, n)  # "a bottle is one wine": each is one of them
                while end + 1 < len(cs) and cs[end].kind == "PREP" and cs[end].text in ("at", "in", "on", "for", "from") \
                        and cs[end + 1].kind == "NP" and {"one", "a", "an"} & set(cs[end + 1].det):
                    nps.append(cs[end + 1])  # "each visit is one technician at one property"
                    end += 2
                    self.read_as_one = True  # (so "technician at property" is not read again as a link)
                self._links_to(subject, nps, negated, [(list(), set(), set())] * len(nps))
                self.consumed |= set(range(n, end))
                return self._with(cs, end, subject)
            if n < len(cs) and cs[n].kind == "PREP" and (cs[n].text in ("in", "on", "at", "under", "within", "for", "between", "inside", "of")
                                                         or adjective and cs[n].text in ("to", "with")
                                                         or cs[n].text == "with" and n + 1 < len(cs)
                                                         and "one" in cs[n + 1].det):  # "is with one of those stations"
                nps, end = self._np_list(cs, n + 1)
                spans = self._spans(cs, n + 1, end)
                while end + 2 < len(cs) and cs[end].text == "," and cs[end + 1].kind == "PREP" \
                        and (cs[end + 1].text in ("at", "in", "on", "from")
                             or cs[end + 1].text == "with" and ("one" in cs[end + 2].det or self._known(cs[end + 2])))\
                        and cs[end + 2].kind == "NP" \
                        and {"a", "an", "one"} & set(cs[end + 2].det) and not measure(cs[end + 2]):
                    # (", with a description, a quote ...": the record's fields, read by ``_with``)
                    nps.append(cs[end + 2])  # "a meetup is between two people, at a cafe, on a date"
                    spans.append((list(), set(), set()))
                    end += 3
                self._links_to(subject, nps, negated, spans)
                self.consumed |= set(range(n, end))
                self.read_as_one = True
                return self._with(cs, end, subject)
            return n
        base = v.base or v.text
        if base == "come" and n < len(cs) and cs[n].text in ("from", "in", "at"):
            base = "belong"  # "green beans come from farms": where they belong, not what they come with
        if v.kind == "HAVE" or (base in HAVE_VERBS and subject):
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
            end = self._with(cs, end, linked[-1:] or subject)
            if linked and not negated:  # "tournaments contain matches between two teams"
                end = self._object_places(cs, end, subject, [np for np in nps if self._known(np) in linked], base)
            return end
        if base in LOCATE_VERBS and not (base == "report" and n < len(cs) and cs[n].kind == "NP"):
            # ("sensors report measurements" has an object: a verb like any other, not "report to")
            if n + 1 < len(cs) and cs[n].text in PARTICLES | {"back", "away"} and cs[n + 1].kind == "PREP":
                n += 1  # "a costume goes out on many hires"
            if n < len(cs) and cs[n].kind == "PREP":
                n += 1
            nps, end = self._np_list(cs, n)
            self._links_to(subject, nps, negated, self._spans(cs, n, end), base)
            self.consumed |= set(range(n - 1, end))
            return self._with(cs, end, subject)
        if each_other(cs, n) and not negated:  # "runners can follow each other": a self-link, many each way
            for name in subject:
                self._link(name, name, "many-to-many")
            return n + 2
        joins = False
        if n < len(cs) and cs[n].kind == "PREP" and cs[n].text in ("to", "in", "for", "on") \
                and base in dm.PICK_VERBS | set(dm.TRANSACTIONS) | dm.SYMMETRIC_VERBS:
            n += 1
            joins = True  # "volunteers register for shifts": they pair up, nothing is made
        elif n + 1 < len(cs) and cs[n].text in PARTICLES and cs[n + 1].kind in ("NP", "DET") \
                and (cs[n].text != "in" or (base, "in") in dm.PHRASAL):
            base = dm.PHRASAL.get((base, cs[n].text), base)
            n += 1  # a phrasal verb's particle: "customers bring in devices", "researchers check out samples"
        elif n + 1 < len(cs) and cs[n].kind == "PREP" and (cs[n].text in PLACE_PREPS or cs[n].text == "in"
                                                            and cs[n + 1].kind in ("NP", "DET")):
            nps, end = self._np_list(cs, n + 1)  # no object, a place: "groups meet at homes"
            self._links_to(subject, nps, negated, self._spans(cs, n + 1, end), base)
            self.consumed |= set(range(n, end))
            return self._with(cs, end, subject)
        if base in RECORD_VERBS and n + 1 < len(cs) and cs[n].text in ("which", "what") and cs[n + 1].kind == "NP":
            n += 1  # "we track which requirements each scout has completed"
        nps, end = self._np_list(cs, n)
        if nps and all(np.head in dm.NON_ENTITIES and self._name(np) is None for np in nps) and end + 1 < len(cs) \
                and cs[end].text in ("on", "at", "for", "in", "with") and cs[end + 1].kind == "NP" \
                and self._known(cs[end + 1]):  # "researchers book time on the instruments": the act is on them
            nps, end = self._np_list(cs, end + 1)
        of_other = end + 1 < len(cs) and cs[end].text in ("for", "of", "per") and (cs[end + 1].kind == "NP" or cs[end + 1].text == "that")
        if base in RECORD_VERBS and not negated and not of_other:  # "we record a claim", "store which sponsor paid"
            for np in nps:  # (not "record the yield for that planting": a value of something else)
                name = self._name(np)
                if name and np.head not in TEMPORAL and dm.field_spec(" ".join(np.words)) is None:
                    self._entity(name)
        self._verb(base, subject, nps, negated, joins)
        if nps:
            self.consumed |= set(range(n, end))
            self.last_object = [x for x in (self._name(np) for np in nps) if x]
        end = self._with(cs, end, (self.last_object if nps else subject))
        if nps and not negated:
            end = self._object_places(cs, end, subject, nps, base)
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
        if base == cs[n].text and base.endswith("ed"):  # a verb the lexicon does not know: "rostered"
            stem = base[:-2]
            base = stem[:-1] if len(stem) > 2 and stem[-1] == stem[-2] else stem
        m = n + 1
        if m + 1 < len(cs) and cs[m].text in ("out", "up", "off", "down", "in", "back", "over", "away") \
                and cs[m + 1].kind == "PREP":
            m += 1  # "series are put out by a publisher", "a case is sent in by one dentist"
        end = m
        if base in dm.PLACE_VERBS and m < len(cs) and cs[m].kind == "NP" and subject:
            nps, end = self._np_list(cs, m)  # "users are assigned issues": each issue gets a user
            for np in nps:
                thing = self._known(np) or (self._name(np) if np.plural else None)
                for name in subject:
                    if thing and thing != name:
                        self._link(thing, name, "many-to-one", dm.VERB_ROLES.get(base) if dm.is_person(name) else None)
            self.consumed |= set(range(m, end))
            return self._with(cs, end, subject)
        while m < len(cs) and cs[m].kind == "PREP":  # "is driven by one driver in one vehicle"
            prep = cs[m].text
            nps, end = self._np_list(cs, m + 1)
            if not nps and m + 1 < len(cs) and cs[m + 1].text in ("it", "them") and self.last_object:
                nps, end = [Chunk("NP", o, [o.lower()]) for o in self.last_object], m + 2  # "is assigned to it"
            if prep == "with" and nps and all(dm.is_person(n) for n in subject) \
                    and all(dm.is_person(np.head) for np in nps):  # "mentors are matched with mentees"
                for name in subject:
                    for np in nps:
                        other = self._name(np)
                        if other and other != name:
                            self._link(name, other, "many-to-many")
                self.consumed |= set(range(m, end))
                m = end
                continue
            if prep == "with" and nps:  # "is done by one driver with one truck to a customer": what it has
                _, end = self._items(cs, m + 1, subject, False)
                m = end
                continue
            if not nps:
                return end
            role = dm.VERB_ROLES.get(base) if prep == "by" or base == "assign" else None
            divide = base in dm.DIVIDE_VERBS or cs[n].text in ("divided", "split", "broken")
            group = base in dm.GROUP_VERBS
            for name in subject:
                for np in nps:
                    target = self._person(np, role) if (role or np.head in dm.ROLES) else self._name(np)
                    if not target or prep not in PASSIVE_PREPS:
                        continue
                    if (measure(np) or np.head in ("address", "location") and len(np.words) > 1) \
                            and target not in self.dsl.entities and target not in self.vocab and not np.plural:
                        continue  # "collected ... on a given date", "delivered to a recipient address": a value
                    if base in RECORD_VERBS and prep in ("for", "per", "on", "against") and name != target \
                            and name not in self.dsl.entities and name not in self.vocab and name not in self.actors \
                            and not any(c.det not in ([], ["the"]) or c.plural  # (not "one result is")
                                        for c in cs[:n] if c.kind == "NP"):
                        # "par and stroke index shall be stored for each hole": what is kept for a thing is its data
                        self._add_field(target, " ".join(words(name)), [], set())
                        continue
                    if divide and prep == "into":  # the parts belong to the whole
                        self._link(target, name, "many-to-one")
                        continue
                    if group and prep in ("into", "in", "by", "under"):  # "devices are grouped into fleets"
                        self._link(name, target, "many-to-one")
                        continue
                    one_each = not np.plural and {"a", "an", "one"} & set(np.det)  # "assigned to a route": one each
                    if prep in ("to", "for", "on") and dm.is_person(name) and not dm.is_person(target) \
                            and base in dm.PLACE_VERBS and not one_each:  # "crews are assigned to jobs": the job gets a crew
                        self._link(target, name, "many-to-many" if np.explicit_many else "many-to-one")
                        continue
                    if base == "share" and prep in ("between", "among", "across", "by", "with") and np.plural:
                        self._link(name, target, "many-to-many")  # "ingredients are shared between recipes"
                        continue
                    if prep in ("to", "into", "in", "on", "for") and base in dm.JOIN_VERBS and dm.is_person(name):
                        one = not np.plural and not np.explicit_many and {"a", "an", "one"} & set(np.det)
                        self._link(name, target, "many-to-one" if one else "many-to-many")  # "members are added to boards"
                        continue
                    record = self._transaction(base, {name, target})
                    if record and prep in ("to", "by", "for", "from", "at", "in", "with"):
                        self._link(record, name, "many-to-one")  # "tools are lent to neighbours" + "each loan":
                        self._link(record, target, "many-to-one")  # the loan has a tool and a neighbour
                        continue
                    counted = prep == "by" and any(d in ("two", "three", "four", "five", "several") or d.isdigit() and d != "1"
                                                   for d in np.det)  # "reviewed by three reviewers"
                    many = np.explicit_many or target == name and np.plural or counted  # "linked to other issues"
                    self._link(name, target, "many-to-many" if many else "many-to-one",
                               verb_role(role, target) or modifier_name(np, target))
            self.consumed |= set(range(m, end))
            m = end
        if end == n + 1 and subject:  # "trees are inspected periodically" + "each inspection": the record has the tree
            record = self._transaction(base, set(subject))
            for name in subject if record else []:
                self._link(record, name, "many-to-one")
        if end == n + 1 and base in ("tag", "label", "categorize"):  # "notes can be tagged"
            for name in subject:
                self._link(name, pascal("tag" if base == "tag" else base), "many-to-many", how="stated")
        return self._with(cs, end, subject)

    def _named(self, determined: bool = False) -> set[str]:
        """Every entity name this message's noun phrases give (only those with a determiner, "a booking",
        when ``determined``)."""
        return {n for cs in self.sents for n in (self._name(c) for c in cs if c.kind == "NP"
                                                 and (c.det or not determined)) if n}

    def _following(self, np: Chunk) -> list[Chunk]:
        """The chunks after ``np`` in the sentence being read."""
        k = next((i for i, c in enumerate(self.current) if c is np), len(self.current))
        return self.current[k + 1:]

    def _transaction(self, base: str, ends: set[str]) -> str | None:
        """The record this message names for a verb's act ("lend" -> a ``Loan``), if any."""
        names = set(self.dsl.entities) | self.vocab | self._named()
        for cand in dm.TRANSACTIONS.get(base, ()):
            if pascal(cand) in names and pascal(cand) not in ends:
                return pascal(cand)
        stem = base[:-1] if base.endswith("e") else base  # "narrators are interviewed" + "each interview"
        for noun in (base, base + "ing", base + "ment", stem + "ion", stem + "ation", base + "al", stem + "al"):
            if pascal(noun) in names and pascal(noun) not in ends and (dm.is_event(pascal(noun)) or noun == base) \
                    and base not in dm.CREATE_VERBS and not dm.is_person(pascal(noun)):  # ("repair": the act itself)
                return pascal(noun)
        return None

    def _links_to(self, subject: list[str], nps: list[Chunk], negated: bool,
                  spans: list[tuple[list[str], set[str], set[str]]], base: str = "") -> None:
        for name in subject:
            for np, (_, flags, adv) in zip(nps, spans):
                target = self._target(np)
                if not target or negated:
                    continue
                optional = "optional" in flags | adv
                # "students belong to classes": people in groups, both sides many (not "to a team")
                member = base in dm.JOIN_VERBS and dm.is_person(name) and np.plural and not np.det
                self._link(name, target, "many-to-many" if np.explicit_many or member else "many-to-one",
                           modifier_name(np, target), required=not optional)
                if np.det in (["one"], ["a"], ["an"]) and not np.plural \
                        and sum(self._target(other) == target for other in nps) == 1:  # (not "a bisque firing and
                    self.one_of.add((name, target))  # a glaze firing": two of them)

    def _verb(self, base: str, subject: list[str], nps: list[Chunk], negated: bool, joins: bool = False) -> None:
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
        if assoc is None and base in dm.TRANSACTIONS:  # "researchers book time on instruments" + "a booking is ..."
            named = self._named(determined=True)
            assoc = next((pascal(c) for c in dm.TRANSACTIONS.get(base, ()) if pascal(c) in named), None)
        stem = base[:-1] if base.endswith("e") else base
        nouns = {base, base + "ing", base + "ment", base + "al", stem + "ation", stem + "ion", base + "ation"}
        for name in known:  # "employees request leave" + LeaveRequest; "customers rent cars" + Rental
            if assoc is None and words(name)[-1] in nouns and base not in dm.CREATE_VERBS | {"have"} \
                    and name not in subject and not dm.is_person(name):  # (not "judges judge classes")
                assoc = name
        for name, np in list(objects):  # "subscribers choose a box size": a value of theirs, not an entity
            after = self._following(np)
            per = bool(after) and after[0].text in ("per", "for")  # "a budget per category"
            if name not in self.dsl.entities and name not in self.vocab and not np.plural and measure(np, "enum") \
                    and not per:
                objects.remove((name, np))
                if not negated:
                    for s in subject:
                        if s in self.dsl.entities:
                            self._add_field(s, " ".join(np.words), [], set())
        held = [o for o in self.last_object if o in self.dsl.entities and not dm.is_person(o)
                and any(dm.is_event(o) and mg.linked(self.dsl, o, s) or mg.child_of(self.dsl, o, s) for s in subject)]
        for obj, np in objects:
            after = self._following(np)
            counted = len(after) > 1 and after[0].text == "with" and after[1].kind == "NP" \
                and singular(after[1].head) in QUANTITY_WORDS
            for s in subject:
                if mg.linked(self.dsl, obj, s, "many-to-many"):
                    continue  # already many each way: "a booking can include several players, and players make bookings"
                if counted and (np.plural or np.explicit_many) and obj != s and not dm.is_person(obj):
                    self._link(s, obj, "many-to-many")  # "an order lists several products with quantities": a line each
                    continue
                if held and not assoc and obj not in held and obj != s and not dm.is_event(obj) \
                        and not dm.is_person(obj) and base in dm.PICK_VERBS | {"pick", "choose", "select", "set"}:
                    # "customers buy tickets for a screening and pick a seat": the ticket holds the seat
                    self._link(held[0], obj, "many-to-many" if np.plural or np.explicit_many else "many-to-one")
                elif obj == assoc:  # "customers make bookings": the booking is the object itself
                    self._link(obj, s, "many-to-one")
                elif assoc:
                    self._link(assoc, s, "many-to-one")
                    self._link(assoc, obj, "many-to-one")
                elif np.head in dm.LABELS and not dm.is_person(obj) and base not in dm.CREATE_VERBS:
                    self._link(s, obj, "many-to-many")  # "scouts earn badges": a label is shared by many
                elif base in dm.PART_VERBS:
                    self._link(s, obj, "many-to-one")  # "patrols make up a troop": each is part of one
                elif base in dm.BECOME_VERBS:
                    self._link(obj, s, "many-to-one")  # "a quote becomes a job": the job comes from the quote
                elif joins:
                    self._link(s, obj, "many-to-many" if np.many or np.plural else "many-to-one")
                elif base in dm.CREATE_VERBS or base in dm.SERVE_VERBS or (base in ("buy", "purchase") and singular(np.head) in dm.UNIQUE_GOODS):
                    self._link(obj, s, "many-to-one", verb_role(dm.VERB_ROLES.get(base), s))
                elif not np.plural and not np.explicit_many and {"a", "an", "one"} & set(np.det) \
                        and (base in dm.SYMMETRIC_VERBS or base in dm.PICK_VERBS):
                    self._link(s, obj, "many-to-one")  # "a run can follow a saved route", "hikes follow a trail": one each
                elif base in dm.SYMMETRIC_VERBS and "one" not in np.det:
                    self._link(s, obj, "many-to-many")  # "travelers share trips", "people join groups"
                elif base in ENTER_VERBS and dm.is_person(s) and (np.plural or np.explicit_many) and obj != s:
                    self._link(s, obj, "many-to-many")  # "a couple can enter several events": they take part
                elif dm.is_event(obj) and obj != s and not dm.is_event(s):
                    self._link(obj, s, "many-to-one")  # "clients book appointments": a record of what they did
                elif base in dm.PICK_VERBS or base in dm.TRANSACTIONS or base in dm.SYMMETRIC_VERBS:
                    every = {"each", "every", "any", "all"} & set(np.det)  # "members rate every wine they taste"
                    self._link(s, obj, "many-to-many" if np.many or np.plural or every else "many-to-one")
                elif base in dm.NEUTRAL_VERBS:
                    continue
                elif np.explicit_many and self.singular_subject and not dm.is_person(obj) and not dm.is_person(s):
                    self._link(s, obj, "many-to-many")  # "each tasting features several wines": shared between them
                elif dm.is_person(s) and not dm.is_person(obj) and np.plural and self._has_parent(obj, s):
                    self._link(s, obj, "many-to-many")  # "learners complete lessons" of units: they use them
                elif dm.is_person(s) and not dm.is_person(obj):
                    self._link(obj, s, "many-to-one")  # any other verb from a person: "landlords own buildings"
                    self.verb_made[(obj, s)] = self.current
                elif {"their", "its", "his", "her", "own"} & set(np.det + np.mods):
                    self._link(obj, s, "many-to-one")  # "owners register their pets"
                elif np.plural and not dm.is_event(s) and not dm.is_person(obj):
                    self._link(obj, s, "many-to-one")  # "breweries bring beers", "a device emits events": theirs
                    self.verb_made[(obj, s)] = self.current
                elif not np.plural and {"a", "an", "one", "the"} & set(np.det) and self.singular_subject:
                    self._link(s, obj, "many-to-one")  # "a screening shows a film": it refers to one

    def _has_parent(self, name: str, other: str) -> bool:
        """Does ``name`` already belong to something other than ``other``, as the user said?"""
        return any(r.source == name and r.type == "many-to-one" and r.target != other
                   and self.prov.get(mg.rel_key(r)) == "stated" for r in self.dsl.relationships)
