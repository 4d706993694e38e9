"""Reading a sentence: app intros, predicates (has, belongs to, verbs, passives), field lists, prepositions.

``Clauses`` is a mixin of the analysis' reader (``analysis.py``): it walks a
sentence's chunks (``chunk.py``) left to right, finds each predicate's subject
(also when it is left out: "…, can like posts and follow other users") and
applies what the predicate says through the reader's bookkeeping.
"""

from __future__ import annotations

import re

from hubbub.dsl import domain as dm
from hubbub.dsl import merge as mg
from hubbub.dsl.chunk import SUBJECT_PRONOUNS, TEMPORAL, Chunk
from hubbub.dsl.reader import (
    FLAGS, HAVE_VERBS, INTRO_VERBS, is_when, LINK_PREPS, LOCATE_VERBS, PASSIVE_PREPS, ReaderBase, modifier_name,
    verb_role, values_from, accepts,
)
from hubbub.dsl.structure import each_other
from hubbub.dsl.text import camel, pascal, singular, words


PARTICLES = frozenset("out up off in down".split())
PLACE_PREPS = frozenset("at on from inside within near across".split())
RECORD_VERBS = frozenset("store record track log keep save".split())
PLACE_OBJECT_PREPS = frozenset("in at to through into inside within via across from".split())
_PARTICIPLES = frozenset("sold made written taken given held kept paid sent run seen chosen taught built found "
                         "brought lent put set told led read split known grown drawn shown".split())


_KIND = re.compile(r"\b(many|one|1|n|m)(?:\s*-\s*|\s+)?(?:to|:)(?:\s*-\s*|\s+)?(many|one|1|n|m)\b")


def _measure(np: Chunk, *also: str) -> bool:
    """"a quantity per recipe", "a price per night": a number kept per instance, not an entity."""
    spec = dm.field_spec(" ".join(np.words))
    return spec is not None and spec.type in ("integer", "number", "date", "datetime", "boolean", *also)


def _participle(word: str) -> bool:
    return word.endswith("ed") or word in _PARTICIPLES


class Clauses(ReaderBase):
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
            if owner and self._title_list(cs[2:], owner) and cs[1].text == ":":
                owner = None  # "Kayak rental: kayaks, customers, rentals": a title and its entities
            if owner:  # "drill logs: which athlete, which drill": the record, spelled out
                self._entity(owner)
                self._spelled_out(cs[2:], owner)
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
                    self._spelled_out(cs[i + 1:], owner)
                    self.consumed |= set(range(i - 1, len(cs)))
                    break
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
                i += 1
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
            elif m >= 2 and cs[m].kind == "PREP" and cs[m - 1].kind == "VERB" and _participle(cs[m - 1].text) \
                    and cs[m - 2].kind == "NP" and len(nps) == 1 and m - 2 not in self.consumed:
                nps = [cs[m - 2]]  # "each donation collected at a drive shall be recorded": the donation
            names = [n for n in (self._name(np) for np in nps) if n]
            for idx in range(m, j + 1):
                self.consumed.add(idx)
            self.singular_subject = all(not np.plural and bool(np.det) for np in nps)
            return names, negated, True
        if j >= 0 and cs[j].kind == "PRON":
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

    # -- predicates --------------------------------------------------------------

    def _predicate(self, cs: list[Chunk], k: int) -> int:
        v = cs[k]
        if v.kind == "VERB" and v.text.endswith("ing") and k > 0 and cs[k - 1].kind == "NP":
            name = self._name(cs[k - 1])  # "orders containing several dishes": the orders contain them
            subject, negated = ([name] if name else []), False
        elif v.kind == "VERB" and _participle(v.text) and k > 0 and cs[k - 1].kind == "NP" and k + 1 < len(cs) \
                and cs[k + 1].kind == "PREP" and cs[k + 1].text in PASSIVE_PREPS:
            name = self._name(cs[k - 1])  # "bags sold to cafes", "tracks recorded in a session": a passive
            return self._passive(cs, k, [name] if name else [])
        elif v.kind == "VERB" and (_participle(v.text) or v.text == "done") and k > 0 \
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
                        and cs[end + 1].text in ("at", "in", "on", "from", "with") and cs[end + 2].kind == "NP" \
                        and {"a", "an", "one"} & set(cs[end + 2].det) and not _measure(cs[end + 2]):
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
        if m + 1 < len(cs) and cs[m].text in ("out", "up", "off", "down") and cs[m + 1].kind == "PREP":
            m += 1  # "series are put out by a publisher"
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
                    if _measure(np) and target not in self.dsl.entities and target not in self.vocab \
                            and not np.plural:
                        continue  # "collected ... on a given date": a value, not a thing
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

    def _transaction(self, base: str, ends: set[str]) -> str | None:
        """The record this message names for a verb's act ("lend" -> a ``Loan``), if any."""
        names = set(self.dsl.entities) | self.vocab | {n for cs in self.sents for n in
                                                      (self._name(c) for c in cs if c.kind == "NP") if n}
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
        stem = base[:-1] if base.endswith("e") else base
        nouns = {base, base + "ing", base + "ment", base + "al", stem + "ation", stem + "ion", base + "ation"}
        for name in known:  # "employees request leave" + LeaveRequest; "customers rent cars" + Rental
            if assoc is None and words(name)[-1] in nouns and base not in dm.CREATE_VERBS | {"have"} \
                    and name not in subject and not dm.is_person(name):  # (not "judges judge classes")
                assoc = name
        for name, np in list(objects):  # "subscribers choose a box size": a value of theirs, not an entity
            k = next((i for i, c in enumerate(self.current) if c is np), -1)
            per = 0 <= k < len(self.current) - 1 and self.current[k + 1].text in ("per", "for")  # "a budget per category"
            if name not in self.dsl.entities and name not in self.vocab and not np.plural and _measure(np, "enum") \
                    and not per:
                objects.remove((name, np))
                if not negated:
                    for s in subject:
                        if s in self.dsl.entities:
                            self._add_field(s, " ".join(np.words), [], set())
        held = [o for o in self.last_object if o in self.dsl.entities and not dm.is_person(o)
                and any(dm.is_event(o) and mg.linked(self.dsl, o, s) or mg.child_of(self.dsl, o, s) for s in subject)]
        for obj, np in objects:
            for s in subject:
                if mg.linked(self.dsl, obj, s, "many-to-many"):
                    continue  # already many each way: "a booking can include several players, and players make bookings"
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
                               or "per" in flags and not _measure(np)
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
                if head in dm.LABELS or head in dm.MEMBERS or pair in dm.MANY_TO_MANY or shared or takes_part:  # shared: "orders contain dishes" of restaurants
                    self._link(owner, target, "many-to-many")
                else:
                    self._link(target, owner, "many-to-one")
            elif child or "per" in flags:  # "each lesson has a quiz", "one answer per question": it belongs to it
                self._link(target, owner, "many-to-one")
            else:  # "each post has an author"; "only one customer" replaces what was said before
                self._link(owner, target, "many-to-one", required="optional" not in flags, replace="one" in np.det)
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
                    and not left.plural and left.det and left.head not in dm.FIELDS:
                a = self._name(left)  # "a repair ticket for each bike": one record per bike
                if a:
                    self._entity(a)
            if a and b and a != b and a in self.dsl.entities and not mg.linked(self.dsl, a, b) \
                    and left.head not in ("number", "list", "count"):
                kb = dm.KB.get(" ".join(words(b)))
                role = modifier_name(left, a)
                if kb and any(" ".join(words(a)) in slot for slot in kb.parents):
                    self._link(b, a, "many-to-one")  # "pets in appointments": the appointment has the pet
                elif role and not left.plural and cs[k].text == "of" and dm.is_event(b) and not dm.is_event(a):
                    self._link(b, a, "many-to-one", role)  # "the start station of each ride": the ride's
                else:
                    self._link(a, b, "many-to-one")

