"""Reading a sentence: app intros, lists, subjects, field lists, prepositions.

``Clauses`` is a mixin of the analysis' reader (``analysis.py``): it walks a
sentence's chunks (``chunk.py``) left to right, finds each predicate's subject
(also when it is left out: "…, can like posts and follow other users") and hands
the predicate to ``predicates.Predicates`` (has, belongs to, verbs, passives), which
applies what it says through the reader's bookkeeping.
"""

from __future__ import annotations

import re

from hubbub.dsl import domain as dm
from hubbub.dsl import merge as mg
from hubbub.dsl.chunk import SUBJECT_PRONOUNS, TEMPORAL, Chunk
from hubbub.dsl.predicates import Predicates, is_participle, measure
from hubbub.dsl.reader import FLAGS, INTRO_VERBS, is_when, LINK_PREPS, modifier_name, values_from, accepts
from hubbub.dsl.text import camel, pascal, singular, words


PLACE_OBJECT_PREPS = frozenset("in at to through into inside within via across from".split())
_KIND = re.compile(r"\b(many|one|1|n|m)(?:\s*-\s*|\s+)?(?:to|:)(?:\s*-\s*|\s+)?(many|one|1|n|m)\b")


class Clauses(Predicates):
    """Sentence patterns; per-sentence state: ``consumed`` chunks, the running ``subject``."""

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
        self.consumed = set()
        self.read_as_one = False
        self.current = cs
        self.subject = []
        self.singular_subject = False
        self.last_object = []
        self.aliases = {}
        self._appositive(cs)
        for k, c in enumerate(cs):  # "each warehouse", "every thread": instances of an entity
            of_each = c.kind == "NP" and c.plural and k > 1 and cs[k - 1].text == "of" \
                and cs[k - 2].text in ("each", "every", "any", "all")  # "each of our beers"
            # "the payments we make", "the fish I catch", "products they bought": what someone acts on, as data
            contact = c.kind == "NP" and k + 2 < len(cs) and cs[k + 1].text in SUBJECT_PRONOUNS \
                and cs[k + 2].kind == "VERB" and ("the" in c.det or c.plural and not c.det) \
                and c.head not in TEMPORAL and not (not c.plural and c.head in dm.FIELDS)
            # "logged with the station where they were found": a place things happen at
            where = c.kind == "NP" and k + 1 < len(cs) and cs[k + 1].text == "where" and c.head not in TEMPORAL \
                and c.head not in dm.FIELDS and c.head not in dm.THE_BUSINESS | dm.INSTITUTIONS \
                and not (k > 0 and cs[k - 1].text == "for")  # ("a system for a print shop where ...": the business)
            if c.kind == "NP" and ({"each", "every"} & set(c.det) and not is_when(cs, c) or of_each or contact or where):
                name = self._name(c)
                if name:
                    self._entity(name)
        if accepts(" ".join(c.text for c in cs)) and len(cs) <= 8:
            return  # "looks good, let's build it" changes nothing
        if self._schema_line(cs) or self._kind_statement(cs):
            return
        if len(cs) > 2 and cs[0].kind == "NP" and cs[1].text in (":", "=") \
                and not any(c.kind in ("VERB", "HAVE", "AUX", "MODAL") for c in cs[2:]):
            owner = self._known(cs[0]) or (self._name(cs[0]) if cs[1].text == "=" else None)
            kinds = self._kinds(cs) if owner else 0
            if kinds:  # "2) Vessels: jars and tins, with size and unit cost": kinds of the item, then its fields
                self._entity(owner)
                self._spelled_out(cs[kinds:], owner)
                return
            if owner and self._title_list(cs[2:], owner) and cs[1].text == ":":
                owner = None  # "Kayak rental: kayaks, customers, rentals": a title and its entities
            if owner:  # "drill logs: which athlete, which drill": the record, spelled out
                self._entity(owner)
                self._spelled_out(cs[2:], owner, composed=cs[1].text == "=")
                return
        start = self._intro(cs, first)
        if start == 0:
            start = self._listing(cs, first)
        self._chain(cs)
        i = start
        while i < len(cs):
            c = cs[i]
            if c.kind in ("HAVE", "VERB", "AUX") and i not in self.consumed:
                i = self._predicate(cs, i)
                continue
            if c.text in (":", "=") and i > 0 and cs[i - 1].kind == "NP" and i + 1 < len(cs):
                owner = self._known(cs[i - 1]) or (self._name(cs[i - 1]) if c.text == "=" else None)
                if owner and c.text == ":" and self._title_list(cs[i + 1:], owner):
                    owner = None
                if owner:  # "feedings: which animal, what food", "a score = judge + project + points"
                    self._entity(owner)
                    self._spelled_out(cs[i + 1:], owner, composed=c.text == "=")
                    self.consumed |= set(range(i - 1, len(cs)))
                    break
            if c.kind == "NP" and c.plural and i + 4 < len(cs) and cs[i + 1].text == "," and cs[i + 2].text == "each" \
                    and cs[i + 3].text in ("on", "in", "at", "from", "under", "within") and cs[i + 4].kind == "NP" \
                    and {"one", "a", "an"} & set(cs[i + 4].det):
                owner, target = self._known(c) or self._name(c), self._known(cs[i + 4]) or self._name(cs[i + 4])
                if owner and target and owner != target:  # "300 customers, each on one of eight rounds"
                    self._link(owner, target, "many-to-one")
                    self.consumed |= set(range(i, i + 5))
                    i += 5
                    continue
            if c.kind == "NP" and c.plural and i + 3 < len(cs) and cs[i + 1].text == "," and cs[i + 2].text == "each" \
                    and (cs[i + 3].kind == "VERB" or cs[i + 3].text == "with"):
                owner = self._known(c) or self._name(c)
                if owner:
                    self._entity(owner)
                    k = i + 3
                    if cs[k].text == "with":  # "artists, each with a portfolio of flash designs"
                        _, i = self._items(cs, k + 1, [owner], False)
                        continue
                    if k + 2 < len(cs) and cs[k + 1].text in ("up", "out", "off") and cs[k + 2].kind == "PREP":
                        cs = cs[:k + 1] + cs[k + 2:]  # ("picked up at one stop")
                    i = self._passive(cs, k, [owner])  # "routes, each run by one bus": a passive of each route
                    continue
            if c.kind == "NP" and i not in self.consumed and i + 1 < len(cs) and cs[i + 1].text == "with":
                owner = self._known(c)  # "tasks with a title and a due date"
                if owner:
                    self._entity(owner)
                    _, i = self._items(cs, i + 2, [owner], False)
                    continue
            i += 1
        self._contact(cs)
        self._fronted(cs)
        self._prepositions(cs)

    def _kind_statement(self, cs: list[Chunk]) -> bool:
        """"Tags should be many-to-many with recipes", "orders and products are many to many", "an order has a
        one-to-many relationship with items": the user names the kind of a link; it replaces what was there."""
        m = _KIND.search(" ".join(c.text for c in cs))
        if not m:
            return False
        ends = list(dict.fromkeys(n for n in (self._known(c) for c in cs if c.kind == "NP"
                                                if not _KIND.fullmatch(c.text) and c.head != "relationship") if n))
        if len(ends) != 2:
            return False
        one = {"1", "one"}
        a, b = (1 if m.group(1) in one else "n"), (1 if m.group(2) in one else "n")
        x, y = ends
        mg.drop_relationships(self.dsl, x, y)
        if a == "n" and b == "n":
            self._link(x, y, "many-to-many")
        elif a == 1 and b == 1:
            self._link(x, y, "one-to-one")
        elif a == "n":
            self._link(x, y, "many-to-one")  # "comments are many-to-one with posts"
        else:
            self._link(y, x, "many-to-one")  # "an order has a one-to-many relationship with items"
        return True

    def _kinds(self, cs: list[Chunk]) -> int:
        """"Vessels: jars and tins, with size": plurals after the colon that the message names
        nowhere else are kinds of the item (examples), not entities; returns where its fields start (0: none)."""
        if not cs[0].plural or cs[1].text != ":":
            return 0
        nps, end = self._np_list(cs, 2)
        heads = [singular(c.head) for cs2 in self.sents for c in cs2 if c.kind == "NP"]
        if not nps or not all(np.plural and heads.count(singular(np.head)) == 1 for np in nps) \
                or any(self._name(np) in self.dsl.entities for np in nps):
            return 0
        while end < len(cs) and cs[end].kind == "PUNCT":
            end += 1
        return end if end < len(cs) and cs[end].text == "with" else 0

    def _title_list(self, items: list[Chunk], owner: str) -> bool:
        """Items after a colon that are entities, not a record's parts: all plural, or naming the owner."""
        nps = [c for c in items if c.kind == "NP"]
        return bool(nps) and (all(c.plural for c in nps) or any(self._name(c) == owner for c in nps))

    def _listing(self, cs: list[Chunk], first: bool = True) -> int:
        """A bare list of plural nouns ("Books and readers.", a list item "- stylists") or one after a
        colon: entities."""
        for k, c in enumerate(cs):
            if c.text == ":" or k == 0:
                j = k + 1 if c.text == ":" else 0
                nps, end = self._np_list(cs, j)
                plural = [np for np in nps if np.plural]
                per = None
                if end + 1 < len(cs) and cs[end].kind == "PREP" and cs[end + 1].kind == "NP" \
                        and plural and all(x.kind in ("PUNCT", "ADV", "NP", "PREP") for x in cs[end + 2:]) \
                        and ({"each", "every"} & set(cs[end + 1].det) or cs[end].text == "per"):
                    per = self._known(cs[end + 1])  # "- maintenance logs per drone", "stops along each route, in order"
                    end = len(cs) if per else end
                if len(plural) >= (1 if c.text == ":" or not first or len(cs) == 1 and self.listed else 2) \
                        and end == len(cs):  # (a lone plural first is a title, "Farm records.", unless a list item)
                    for np in plural:
                        name = self._name(np)
                        if name:
                            self._entity(name)
                            if per and per != name:
                                self._link(name, per, "many-to-one")
                    self.consumed |= set(range(j, end))
                    return end
        return 0

    def _intro(self, cs: list[Chunk], first: bool) -> int:
        """'I need a blog with posts, authors and comments' / 'A CRM to track companies and deals'."""
        i = 0
        while i < len(cs) and cs[i].kind in ("PRON", "MODAL", "ADV", "AUX", "DET", "NEG"):
            i += 1
        pron = i > 0 and cs[0].kind == "PRON"
        if i < len(cs) and cs[i].kind == "VERB" and (cs[i].base in INTRO_VERBS or pron and first):
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
        if titled and app.plural and app.head not in dm.APP_WORDS and singular(app.head) not in dm.PROCESS_WORDS:
            items, _ = self._np_list(cs, i + 2)
            if len(items) >= 2 and sum(c.plural for c in items) * 2 < len(items):
                return 0  # "Turnings: wheel, date, initials": a record spelled out, not the app's title
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
            while i < len(cs) and (cs[i].kind in ("ADV", "DET", "ADJ") or not out and cs[i].text in ("which", "what")):
                i += 1  # ("came from *which* batch": the batch)
            if i >= len(cs) or cs[i].kind != "NP":
                break
            if (out or cs[i].det and not cs[i].plural) and self._starts_clause(cs, i):
                break  # "when something breaks the customer opens a claim": a new clause, not an object
            if out and {"each", "every"} & set(cs[i].det) and i + 1 < len(cs) and cs[i + 1].text in ("with", ":"):
                break  # "orchards with rows, each row with several trees": the next owner, not an item
            out.append(cs[i])
            i += 1
            if i < len(cs) and cs[i].text == "(":
                while i < len(cs) and cs[i].text != ")":
                    i += 1
                i = min(i + 1, len(cs))  # (an unclosed "(" ends the list)
            if i + 1 < len(cs) and cs[i].text == "like" and cs[i + 1].kind == "NP" and out[-1].plural:
                i += 1  # "inhabitants like corals, fish and inverts": examples of them, not more things
                while i < len(cs) and (cs[i].kind == "NP" or cs[i].text in (",", "and", "or")) \
                        and not (cs[i].kind == "NP" and self._starts_clause(cs, i)):
                    i += 1
            if i < len(cs) and cs[i].text == "of" and i + 1 < len(cs) and cs[i + 1].kind == "NP" and dm.is_collection(out[-1].head) \
                    and not (out[-1].head in ("number", "count") and "the" in out[-1].det):  # "the number of players": a count
                out[-1] = cs[i + 1]
                i += 2
            if i < len(cs) and cs[i].text in (",", "and", "or", "/", "+"):
                j = i
                while j < len(cs) and cs[j].text in (",", "and", "or", "/", "+"):
                    j += 1
                if j < len(cs) and cs[j].kind in ("NP", "ADV", "DET") and not self._starts_clause(cs, j):
                    i = j
                    continue
            elif i < len(cs) and cs[i].kind == "NP" and out[-1].plural and cs[i].plural and not cs[i].det \
                    and not out[-1].det and not self._starts_clause(cs, i):
                continue  # "track scouts tents leaders and hikes": a list written without commas
            break
        return out, i

    @staticmethod
    def _starts_clause(cs: list[Chunk], i: int) -> bool:
        j = i + 1
        while j + 1 < len(cs) and cs[j].kind == "PREP" and cs[j + 1].kind == "NP":  # "every check-in of a member is"
            j += 2
        while j < len(cs) and cs[j].kind in ("MODAL", "ADV", "NEG"):
            j += 1
        return j < len(cs) and cs[j].kind in ("HAVE", "VERB", "AUX") and cs[i].kind == "NP" \
            and not (cs[j].kind == "VERB" and cs[j].text.endswith(("ing", "ed")) and j == i + 1)

    def _subject(self, cs: list[Chunk], k: int) -> tuple[list[str], bool, bool]:
        """Who does the verb at ``k``: (entities, negated, explicit)."""
        self.pronoun_subject = False
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
            elif m >= 2 and cs[m].kind == "PREP" and cs[m - 1].kind == "VERB" and is_participle(cs[m - 1].text) \
                    and cs[m - 2].kind == "NP" and len(nps) == 1 and m - 2 not in self.consumed:
                place = nps[0]
                nps = [cs[m - 2]]  # "each donation collected at a drive shall be recorded": the donation
                thing, where = self._name(cs[m - 2]), self._known(place)
                if thing and where and thing != where and not place.plural and {"a", "an", "one"} & set(place.det) \
                        and cs[m].text in ("at", "in", "on", "from", "during"):
                    self._link(thing, where, "many-to-one")  # ... at a drive: each one is of one drive
            names = [n for n in (self._name(np) for np in nps) if n]
            for idx in range(m, j + 1):
                self.consumed.add(idx)
            self.singular_subject = all(not np.plural and bool(np.det) for np in nps)
            return names, negated, True
        if j >= 0 and cs[j].kind == "PRON":
            if cs[j].text == "it" and len(self.subject) == 1 and self.singular_subject:
                return list(self.subject), negated, True  # "each tour has a date, and it is led by one guide"
            self.pronoun_subject = cs[j].text in ("we", "i", "you", "they")
            return [], negated, True
        if j >= 0 and cs[j].kind == "REL":  # "enrollments, which store a grade"
            m = j - 1
            while m >= 0 and cs[m].text in (",", ")"):
                if cs[m].text == ")":  # "sensors (temperature, humidity) that report measurements"
                    while m >= 0 and cs[m].text != "(":
                        m -= 1
                m -= 1
            if m >= 0 and cs[m].kind == "NP":
                name = self._name(cs[m])
                return ([name] if name else []), negated, True
        return list(self.subject), negated, False

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
            if not owners and np.plural and np.words[-1] not in dm.PLURAL_FIELDS:
                name = self._name(np)  # "my aunt has many letters": no one to own them, but they are data
                if name:
                    self._entity(name)
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
                flags = {m for m in c.mods if m in FLAGS}
                if k + 1 < len(cs) and cs[k + 1].text == "(":
                    inner = []
                    m = k + 2
                    while m < len(cs) and cs[m].text != ")":
                        inner.append(cs[m])
                        m += 1
                    flags |= {w.text for w in inner if w.text in FLAGS}
                    values = values_from([w for w in inner if w.text not in FLAGS])
                if k + 2 < len(cs) and cs[k + 1].text == "per" and cs[k + 2].kind == "NP" and self._known(cs[k + 2]):
                    flags = flags | {"per"}  # "one answer per question": one of them for each question, an entity
                out.append((values, flags, adv))
                adv = set()
            k += 1
        return out

    def _item(self, owner: str, np: Chunk, values: list[str], flags: set[str]) -> None:
        head = np.head
        target = self._known(np)
        role_word = head in dm.ROLES and pascal(head) not in self.dsl.entities.keys() | self.actors
        if role_word or target is None and head in dm.PERSONS and not np.mods:
            person = self._person(np)
            if person and person != owner:
                name = head if head in dm.ROLES and pascal(head) != person else None
                many = np.many
                self._link(owner, person, "many-to-many" if many else "many-to-one",
                           (np.words[-1] if many and name else name), required="optional" not in flags)
            return
        if target is None and (np.plural and np.words[-1] not in dm.PLURAL_FIELDS
                               or "per" in flags and not measure(np)
                               or np.det == ["one"] and head not in dm.FIELDS and not np.mods
                               and head not in dm.NON_ENTITIES):  # "each slot is loaded with one product"
            target = self._name(np)
        if target and target != owner:
            pair = tuple(sorted((" ".join(words(owner)), " ".join(words(target)))))
            kb = dm.KB.get(" ".join(words(target)))
            child = kb is not None and any(" ".join(words(owner)) in slot for slot in kb.parents)
            if (np.many or np.plural) and mg.linked(self.dsl, owner, target, "many-to-many"):
                return  # already many each way ("travelers share trips with friends")
            if np.many or np.plural:
                shared = any(r.source == target and r.type == "many-to-one" and r.target != owner
                             and self.prov.get(mg.rel_key(r)) == "stated" for r in self.dsl.relationships)
                takes_part = dm.is_event(owner) and dm.is_person(target)  # "a booking can include several players"
                # "shifts are staffed by nurses" then "a shift can have more than one nurse": many each way
                takes_part = takes_part or np.explicit_many and mg.child_of(self.dsl, owner, target)
                # "flavour = one base + many ingredients": a sum is made of things that exist on their own
                takes_part = takes_part or self.composed and target in self.dsl.entities
                if head in dm.LABELS or head in dm.MEMBERS or pair in dm.MANY_TO_MANY or shared or takes_part:  # shared: "orders contain dishes" of restaurants
                    self._link(owner, target, "many-to-many")
                else:
                    self._link(target, owner, "many-to-one")
            elif child or "per" in flags:  # "each lesson has a quiz", "one answer per question": it belongs to it
                self._link(target, owner, "many-to-one")
            else:  # "each post has an author"; "only one customer" replaces what was said before
                self._link(owner, target, "many-to-one", required="optional" not in flags, replace="one" in np.det)
                if np.det in (["one"], ["a"], ["an"]) and not np.plural:
                    self.one_of.add((owner, target))
            return
        phrase = " ".join([m for m in np.mods if m not in FLAGS] + np.words)
        phrase = re.sub(r"\bflag$", "", phrase).strip() or phrase
        self._add_field(owner, phrase, values, flags)

    def _drop_item(self, owner: str, np: Chunk) -> None:
        target = self._known(np)
        if target and target != owner:
            mg.drop_relationships(self.dsl, owner, target)
            return
        if np.head in dm.ROLES:
            for r in [r for r in self.dsl.relationships if r.source == owner and (r.name or "").startswith(np.head)]:
                mg.drop_relationships(self.dsl, r.source, r.target)
            return
        name = camel(" ".join([m for m in np.mods if m not in FLAGS] + np.words))
        for candidate in (name, camel(singular(name))):
            mg.drop_field(self.dsl, owner, candidate)

    # -- X of/for/per/in Y ---------------------------------------------------------

    def _places(self, cs: list[Chunk]) -> None:
        """Where something is done or kept, after a verb: "we brew beers *in fermentation tanks*", "trips *to
        fishing spots*", "a parcel passes *through a depot*": a place the app stores, when it is one of many
        (a plural, or "a"/"each" one: not "from the shelf", "in the factory") and no time, unit or field word."""
        verb = False
        for k in range(len(cs) - 1):
            verb = verb or cs[k].kind in ("VERB", "HAVE", "AUX")
            doer = self._name(cs[k + 1]) if cs[k].text == "by" and cs[k + 1].kind == "NP" and cs[k + 1].plural \
                and dm.is_person(cs[k + 1].head) and verb else None
            if doer:  # "stories go through edits by editors": who does it, in the plural, is someone stored
                self._entity(doer)
                continue
            if not verb or cs[k].kind != "PREP" or cs[k].text not in PLACE_OBJECT_PREPS \
                    or cs[k - 1].kind not in ("NP", "VERB"):
                continue
            np = cs[k + 1]
            if np.kind != "NP" or not (np.plural or {"a", "an", "each", "every"} & set(np.det)) \
                    or np.head in TEMPORAL or np.head in dm.COLLECTIONS or np.head in dm.ROLES \
                    or not np.plural and np.head in dm.FIELDS or np.words[-1] in dm.PLURAL_FIELDS:
                continue
            name = self._name(np)
            if name:
                self._entity(name)

    def _prepositions(self, cs: list[Chunk]) -> None:
        self._places(cs)
        for k in range(1, len(cs) - 1):
            if cs[k].kind != "PREP" or cs[k].text not in LINK_PREPS or k in self.consumed and (cs[k].text == "to" or self.read_as_one):
                continue
            left, right = cs[k - 1], cs[k + 1]
            if left.kind != "NP" or right.kind != "NP":
                continue
            a, b = self._known(left), self._known(right)
            if b and a is None and cs[k].text == "of" and {"each", "every"} & set(right.det) and dm.is_event(b) \
                    and not left.plural and modifier_name(left, pascal(left.head)) and left.head not in dm.FIELDS:
                a = self._name(left)  # "the start station of each ride": a place the record refers to
                if a:
                    self._entity(a)
            if b and a is None and cs[k].text in ("for", "per") and {"each", "every"} & set(right.det) \
                    and not left.plural and left.det and left.head not in dm.FIELDS \
                    and left.words != ["record"] and left.words != ["entry"]:  # "a record for every animal": the animal
                a = self._name(left)  # "a repair ticket for each bike": one record per bike
                if a:
                    self._entity(a)
            if a and b and a != b and a in self.dsl.entities and not mg.linked(self.dsl, a, b) \
                    and left.head not in ("number", "list", "count"):
                kb = dm.KB.get(" ".join(words(b)))
                role = modifier_name(left, a)
                if kb and any(" ".join(words(a)) in slot for slot in kb.parents):
                    self._link(b, a, "many-to-one")  # "pets in appointments": the appointment has the pet
                elif cs[k].text == "of" and left.plural and right.plural and any(
                        d.isdigit() or d in ("two", "three", "four", "five", "six", "several", "many") for d in right.det):
                    self._link(b, a, "many-to-one")  # "teams of two speakers": each speaker is in a team
                elif cs[k].text == "per" and not left.plural and dm.is_person(a) and not dm.is_person(b):
                    self._link(b, a, "many-to-one")  # "one driver per order": the order has its driver
                elif role and not left.plural and cs[k].text == "of" and dm.is_event(b) and not dm.is_event(a):
                    self._link(b, a, "many-to-one", role)  # "the start station of each ride": the ride's
                else:
                    self._link(a, b, "many-to-one")

