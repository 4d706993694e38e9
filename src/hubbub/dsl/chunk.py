"""A sentence as a list of chunks: noun phrases, verbs and the small words between them.

No statistical tagger: each token gets its word class from ``lexicon.py``, words
that can be noun or verb (``post``, ``order``, ``list``) are decided by their
neighbours, and runs of ``[det|quantifier] [adjective] noun+`` become ``NP``
chunks. That is enough structure for the patterns in ``analysis.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hubbub.dsl import lexicon as lx
from hubbub.dsl.domain import COMPOUNDS, PHRASAL
from hubbub.dsl.text import is_plural, singular, tokens

# Multi-word expressions, rewritten before tagging.
_PHRASES = [
    (r"\b(a lot of|lots of|a number of|a list of|one or more|zero or more|any number of|a bunch of|"
     r"a set of|a few|a couple of|a collection of|plenty of|an arbitrary number of|a range of|a variety of|"
     r"a selection of|a ring of|a fleet of|a herd of|a flock of|a pack of|a handful of)\b", "many"),
    (r"\b(at most one|only one|exactly one|just one|a single|one single)\b", "one"),
    (r"\b(takes|take|taking|took) place\b", "happens"),
    (r"\bkeeps track of\b", "tracks"),  # "I need to keep track of guests": the verb keeps its form
    (r"\bkeeping track of\b", "tracking"),
    (r"\bkeep track of\b", "track"),
    (r"\b(gets?|getting) rid of\b", "drop"),
    (r"\b(?:along with|together with) (their|its|his|her)\b", r"with \1"),  # "..., together with their severity"
    (r"\b(as well as|along with|together with)\b", "and"),
    (r"\b(such as|for example|e\.g\.|including)\b", "like"),
    (r"\b(instead of|rather than)\b", "instead"),
    (r"\bis made up of|consists? of|is composed of|is made of\b", "contains"),
    (r"\b(sign|signs|log|logs) (up|in)\b", "register"),
    (r"\b(check|checks) in\b", "visit"),
    (r"\bto-?do\b", "todo"),
    (r"\blet's|let us\b", "let"),
    (r"\bI'd like|I would like|I'd love|we'd like|we would like\b", "want"),
    # "every ringer is a member of one tower": a member or a part of one thing belongs to it
    (r"\b(is|are) (a|an) (member|branch|division|subdivision|section) of (?=(one|a|an|the|its|their|each)\b)",
     "belongs to "),
    (r"\bpart of\b", "in"),
    (r"\b(piece|item|article)s? of (?=[a-z])", ""),  # "every piece of gear": the gear
    (r"\b(i've|ive)\b", "i have"),
    (r"\b(i'm|im)\b", "i am"),
    (r"\b(they're|theyre)\b", "they are"),
    (r"\b(it|he|she)'s (?=\w+ed\b|led\b|done\b|made\b|held\b|run\b|kept\b|sold\b|paid\b|sent\b|built\b)",
     r"\1 is "),  # "and it's led by one guide": a passive
    (r"\b(dont)\b", "don't"),
    (r"\bin advance\b", ""),
    (r"\bmore than one\b", "several"),
    (r"(?<![\w.])[01]\s*(?:\+|\.\.\s*[n*])(?!\w)", "many"),  # "a building has 1+ lifts", "0..n tags"
    # "each heat has up to 4 pilots", "a crew of at least two": a bound on a number is many
    (r"\b(up to|at least|at most|no more than|a maximum of|a minimum of|a max of) (\d+|two|three|four|five|six|"
     r"seven|eight|nine|ten|eleven|twelve|[a-z]+teen|[a-z]+ty(?:-[a-z]+)?|a hundred|a dozen|several|many)\b"
     r"(?!\s+(?:people|persons)\b)", "many"),  # (not "carries up to twelve people": a capacity)
    (r",?\s*(each|all|some|both|one|many|most) of (which|whom)\b", r", \2"),
    (r"\b(theres|there's|there is|there are)\b", "we have"),
    (r"\s+right\s+(?=(and|so|but)\b)", " "),
    (r"\b(hundreds|thousands|dozens|millions|lots|tons|loads|plenty|a lot|a bunch|a couple|a number) of\b", "many"),
    (r"\b(no|oh|hmm|um|ok|okay|actually)[,.]? wait\b[,.!]?", ""),
    (r"\b(on second thoughts?|come to think of it|thinking about it)\b,?", "actually"),
    (r"\b(each|every|any|one) of (our|the|their|your|my|its|his|her|these|those|many|several)\b", r"\1"),
    (r"\b(one) of (two|three|four|five|six|seven|eight|nine|ten|twelve|\d+)\b", r"\1"),  # "one of eight rounds"
    (r"\bw/o\b", "without"),  # "ingredients w/ allergens"
    (r"\bw/(?=\s)", "with"),
    (r"\b(for sale|for auction|for rent|up for auction|up for sale)\b", ""),
    (r"\b(turns?|hands?|turning|handing) in\b", "submit"),
    (r"\b(puts?|putting) up\b", "list"),
    (r"\b(do not|does not|did not)\b", "don't"),
    (r"\b(no longer|not anymore)\b", "don't"),
    (r"\bcan not\b", "cannot"),
]
TEMPORAL = frozenset("day week month year time morning evening night season quarter weekend hour minute "
                     "spring summer autumn fall winter monday tuesday wednesday thursday friday saturday sunday".split())
_PHRASES_RE = [(re.compile(p, re.IGNORECASE), r) for p, r in _PHRASES]


@dataclass
class Chunk:
    kind: str  # NP VERB HAVE AUX MODAL PREP CONJ PUNCT NEG ADV PRON REL DET ADJ NUM
    text: str  # the word (for an NP: its words joined by spaces)
    words: list[str] = field(default_factory=list)  # NP: the nouns; others: [text]
    mods: list[str] = field(default_factory=list)  # NP: adjectives and participles before the nouns
    det: list[str] = field(default_factory=list)  # NP: determiners, quantifiers and numbers
    base: str | None = None  # VERB: base form

    @property
    def plural(self) -> bool:
        return bool(self.words) and is_plural(self.words[-1])

    @property
    def many(self) -> bool:
        return "many" in self.det or "multiple" in self.det or "several" in self.det or (
            self.plural and "one" not in self.det and "a" not in self.det and "an" not in self.det
        )

    @property
    def explicit_many(self) -> bool:
        """Said in words ("many", "multiple"), not just a plural ("tasks are assigned to users")."""
        return bool({"many", "multiple", "several", "various", "numerous"} & set(self.det))

    @property
    def head(self) -> str:
        return singular(self.words[-1]) if self.words else ""


def _tag(word: str) -> str:
    if not re.match(r"[a-z0-9]", word):
        return "PUNCT"
    if word[0].isdigit():
        return "NUM"
    if word in lx.HAVE:
        return "HAVE"
    if word in ("not", "never", "don't", "doesn't", "didn't", "won't", "shouldn't", "isn't", "aren't"):
        return "NEG"
    for tag, group in (
        ("MODAL", lx.MODALS), ("AUX", lx.AUXILIARIES), ("REL", lx.RELATIVES), ("PRON", lx.PRONOUNS),
        ("DET", lx.DETERMINERS), ("QUANT", lx.QUANTIFIERS), ("CONJ", lx.CONJUNCTIONS), ("ADV", lx.ADVERBS),
    ):
        if word in group:
            return tag
    if word == "like":
        return "AMB"
    if word in lx.PREPOSITIONS:
        return "PREP"
    if word in lx.NUMBERS:
        return "NUM"
    if word in lx.ADJECTIVES:
        return "ADJ"
    base = lx.verb_base(word)
    if base is not None:
        if base in lx.AMBIGUOUS or word in lx.AMBIGUOUS:
            return "AMB"
        return "VERB"
    if word in lx.AMBIGUOUS:
        return "AMB"
    if word.endswith("ly") and len(word) > 5 and word not in lx.NOT_ADVERBS:
        return "ADV"  # "every pairing meets regularly"
    return "NOUN"


def _resolve(i: int, toks: list[str], tags: list[str], compounds: frozenset[str] = frozenset()) -> str:
    """Noun or verb, for a word that can be either."""
    w = toks[i]
    nxt_w = toks[i + 1] if i + 1 < len(toks) else ""
    nxt = tags[i + 1] if i + 1 < len(tags) else "END"
    if i > 0 and tags[i - 1] == "NOUN" and is_plural(toks[i - 1]) and nxt_w in _PARTICLES and not is_plural(w):
        return "VERB"  # "researchers check out samples": a plural subject, then a phrasal verb
    if f"{singular(w)}_{singular(nxt_w)}" in COMPOUNDS or f"{w}_{nxt_w}" in COMPOUNDS:
        return "NOUN"
    if i > 0 and f"{singular(toks[i - 1])}_{singular(w)}" in compounds:
        return "NOUN"  # "each repair order lists ...": the user wrote "repair orders" before
    j = i - 1
    while j >= 0 and tags[j] == "ADV":
        j -= 1
    prev = tags[j] if j >= 0 else "START"
    prev = "NOUN" if prev == "AMB_N" else prev
    prev_w = toks[j] if j >= 0 else ""
    plural_form = is_plural(w)
    if w.endswith("ed") or w in ("written", "made", "taken", "given", "sold"):
        return "VERB"
    base = lx.verb_base(w) or w
    if (base, nxt_w) in PHRASAL and i + 2 < len(toks) and tags[i + 2] in ("DET", "QUANT", "NUM", "ADJ", "NOUN", "AMB"):
        return "VERB"  # "people who want to adopt fill out an application": a phrasal verb and its object
    if prev_w in ("which", "what", "whose") and (nxt in ("PUNCT", "END", "CONJ") or toks[i + 1].endswith("ed")
                                                  or lx.verb_base(nxt_w) is not None and nxt != "AMB"):
        return "NOUN"  # "which table, ...", "store which sponsor paid": "which" picks one of them
    if prev == "AUX" and nxt == "PREP":
        return "VERB"  # "a cause is run by an organization"
    if prev == "CONJ" and nxt == "PREP" and w.endswith("s") and "VERB" in tags[:i]:
        return "VERB"  # "works in one department and reports to a manager"
    if w == "like":
        verb = prev in ("MODAL", "PRON", "NEG", "REL") or (
            prev == "NOUN" and (nxt in ("DET", "QUANT", "ADJ") or nxt in ("NOUN", "AMB") and is_plural(nxt_w)))
        return "VERB" if verb else "PREP"
    if prev in ("MODAL", "PRON", "NEG", "REL"):
        return "VERB"
    if prev_w == "to":
        return "NOUN" if plural_form or nxt in ("PREP", "END", "PUNCT", "CONJ") and not w.endswith("e") else "VERB"
    if prev in ("DET", "QUANT", "NUM", "ADJ", "PREP", "HAVE", "VERB"):
        return "NOUN"
    object_next = nxt in ("DET", "QUANT", "NUM", "PRON", "ADJ") or (nxt in ("NOUN", "AMB") and is_plural(nxt_w))
    if prev == "NOUN":
        if j > 0 and tags[j - 1] in ("VERB", "HAVE", "PREP") and not object_next:
            return "NOUN"  # "need maintenance records": the noun before is an object, this word extends it
        if j > 0 and toks[j - 1] in ("a", "an", "the", "each", "every") and not is_plural(toks[j]) \
                and not plural_form and lx.verb_base(w) in (w, None) and nxt in ("NOUN", "AMB", "VERB"):
            return "NOUN"  # "the peal record lists the ringers": one peal cannot "record", the record lists
        subject_plural = is_plural(toks[j])
        if object_next or (nxt == "PREP" and subject_plural != plural_form):
            return "VERB"
        return "NOUN"
    if prev in ("START", "CONJ", "PUNCT"):
        if prev == "START" and nxt_w in ("which", "what") and not plural_form:
            return "VERB"  # "(also) store which sponsor paid": an instruction
        if prev == "CONJ" and nxt_w in ("it", "them", "him", "her"):
            return "VERB"  # "... and records it"
        if prev_w in (",", "and", "then") and nxt_w in ("the", "a", "an", "each", "every", "their", "its") \
                and "VERB" in tags[:i]:
            return "VERB"  # "a mechanic picks up the work order, logs the hours ...": a verb with its object
        if object_next and not plural_form:
            return "VERB"
        return "NOUN"
    return "NOUN"


# "each judge's score for a routine": the score *of* a judge
_POSSESSIVE = re.compile(r"\b([A-Za-z]+)'s\s+((?:own\s+)?[A-Za-z]+)\b")
_NOT_POSSESSORS = frozenset("it that what there here let who he she everyone someone anyone today tonight tomorrow "
                            "yesterday one nobody everybody somebody".split())


def _of(m: re.Match[str]) -> str:
    owner, thing = m.group(1), m.group(2)
    if owner.lower() in _NOT_POSSESSORS or owner.lower() in TEMPORAL or lx.verb_base(thing.lower()) \
            and thing.lower() not in lx.AMBIGUOUS or thing.lower() in lx.CLOSED:
        return m.group(0)
    return f"{thing} of {owner}"


def chunk(sentence: str, compounds: frozenset[str] = frozenset()) -> list[Chunk]:
    """``Each task has a due date`` -> ``NP(task) HAVE NP(due date)``.

    ``compounds``: ``modifier_head`` pairs (singular) the text itself uses as names ("repair orders"),
    kept together where they stand again."""
    for pattern, repl in _PHRASES_RE:
        sentence = pattern.sub(repl, sentence)
    sentence = _POSSESSIVE.sub(_of, sentence)
    toks = tokens(sentence)
    tags = [_tag(t) for t in toks]
    for i in range(len(toks) - 1):  # "retailers place *purchase orders*": a name the text uses is a name here too
        if f"{singular(toks[i])}_{singular(toks[i + 1])}" in compounds and tags[i + 1] in ("NOUN", "AMB"):
            tags[i] = tags[i + 1] = "NOUN"
    _split_runs(toks, tags)
    _retag(toks, tags)
    for i, tag in enumerate(tags):
        if tag == "AMB":
            tags[i] = _resolve(i, toks, tags, compounds)
            if tags[i] == "NOUN":
                tags[i] = "AMB_N"
    tags = ["NOUN" if t == "AMB_N" else t for t in tags]
    # An -ing word before a time word names a kind of it ("we plan shooting days", "training sessions").
    for i, tag in enumerate(tags):
        if tag in ("VERB", "AMB_N", "NOUN") and toks[i].endswith("ing") and i + 1 < len(tags) and tags[i + 1] == "NOUN" \
                and singular(toks[i + 1]) in TEMPORAL and i > 0 and tags[i - 1] in ("VERB", "DET", "QUANT", "NUM", "ADJ"):
            tags[i] = "NOUN"
    # An -ing word between nouns is part of the name ("note taking app").
    for i, tag in enumerate(tags):
        if tag == "VERB" and toks[i].endswith("ing") and 0 < i < len(tags) - 1 and tags[i - 1] == "NOUN" \
                and tags[i + 1] == "NOUN":
            tags[i] = "NOUN"
    # A participle or -ing word between a determiner/adjective and a noun modifies it ("a returned flag").
    for i, tag in enumerate(tags):
        if tag == "VERB" and 0 < i < len(tags) - 1 and tags[i - 1] in ("DET", "ADJ", "QUANT", "NUM", "PREP") \
                and tags[i + 1] == "NOUN" and toks[i].endswith(("ed", "ing", "en")):
            tags[i] = "ADJ"
    _verbs_by_position(toks, tags)
    _verbs_in_context(toks, tags)
    for i in range(2, len(tags) - 1):  # "each finish *records* the runner", "a device *emits* events": its verb
        if toks[i - 2] in ("each", "every", "a", "an", "one") and tags[i - 1] == "NOUN" and tags[i] == "NOUN" \
                and toks[i].endswith("s") and not toks[i].endswith(("ss", "us", "is")) \
                and (tags[i + 1] in ("DET", "QUANT", "NUM") or tags[i + 1] == "NOUN" and is_plural(toks[i + 1])
                     and toks[i - 2] in ("each", "every") + (("a", "an", "one") if lx.verb_base(toks[i]) is None else ())):
            tags[i] = "VERB"
    for i in range(2, len(tags) - 1):  # "routes, each *run* by one bus", "pupils, each *picked* up at one stop"
        if toks[i - 1] == "each" and toks[i - 2] == "," and tags[i] in ("NOUN", "VERB", "AMB", "ADJ") \
                and (tags[i + 1] == "PREP" or toks[i + 1] in ("up", "out", "off")) and lx.verb_base(toks[i]):
            tags[i] = "VERB"
    for i in range(1, len(tags) - 1):  # "..., and *produces* one or more recordings": a verb after "and"
        if tags[i - 1] == "CONJ" and tags[i] == "NOUN" and toks[i].endswith("s") and lx.verb_base(toks[i]) \
                and tags[i + 1] in ("DET", "QUANT", "NUM"):
            tags[i] = "VERB"
    for i in range(len(tags) - 1):  # "... and *acknowledged* by an operator": a participle before "by"
        if tags[i] == "NOUN" and toks[i].endswith("ed") and len(toks[i]) > 4 and toks[i + 1] == "by":
            tags[i] = "VERB"
    if len(tags) > 2 and tags[0] == "VERB" and toks[0].endswith("ed") and tags[1] == "NOUN":
        tags[0] = "ADJ"  # "*accepted* talks are scheduled"
    for i in range(len(tags) - 2):  # "students, *each takes* a slot": "each" stands for them, then its verb
        if toks[i] == "each" and toks[i + 1].endswith("s") and lx.verb_base(toks[i + 1]) \
                and tags[i + 2] in ("DET", "QUANT", "NUM", "ADJ") and (i == 0 or tags[i - 1] in ("PUNCT", "CONJ")):
            tags[i], tags[i + 1] = "PRON", "VERB"
    for i in range(1, len(tags) - 1):  # "which *orders* those candles went into": a noun after "which"
        if toks[i - 1] in ("which", "what") and tags[i] == "VERB" and is_plural(toks[i]) \
                and tags[i + 1] in ("DET", "NOUN"):
            tags[i] = "NOUN"
    for i in range(1, len(tags) - 1):  # "maintenance *logs* per drone": a verb is not followed by "per"
        if tags[i] == "VERB" and tags[i - 1] == "NOUN" and toks[i + 1] == "per" and is_plural(toks[i]):
            tags[i] = "NOUN"
    if len(tags) > 1 and toks[1] in (":", "->", "=") and tags[0] == "VERB":
        tags[0] = "NOUN"  # a title: "stays: dog, kennel, check-in date"
    # A verb right after a determiner is a noun ("a make, a model and a year").
    for i, tag in enumerate(tags):
        if tag == "VERB" and i > 0 and tags[i - 1] == "DET" and not toks[i].endswith("ed") \
                and not (toks[i - 1] == "each" and i > 1 and toks[i - 2] == "," and i + 1 < len(toks)
                         and (tags[i + 1] == "PREP" or toks[i + 1] in ("up", "out", "off"))):
            tags[i] = "NOUN"  # (not "routes, each *run* by one bus")
    return _counts(_group(toks, tags))


def _retag(toks: list[str], tags: list[str]) -> None:
    """Word classes the lexicon cannot decide alone, from the words around them (issue 20, round 4)."""
    if toks and tags[0] in ("VERB", "AMB") and toks[0].isalpha() and is_plural(toks[0]) \
            and (len(toks) == 1 or toks[1] in (":", "=", "(")):
        tags[0] = "NOUN"  # "marks: one judge's mark ...", "• pours": a line that starts by naming its thing
    for i in range(1, len(toks) - 1):  # "deposits get paid against appointments": a participle after "is"/"get"
        if tags[i] == "ADJ" and tags[i - 1] == "AUX" and tags[i + 1] == "PREP" and toks[i].endswith(("ed", "id")) \
                and lx.verb_base(toks[i]) is not None:
            tags[i] = "VERB"
    for i in range(1, len(toks) - 1):  # "buys vouchers and redeems them": a word with an object pronoun is a verb
        if tags[i] == "NOUN" and toks[i + 1] in ("them", "it", "him", "us") and toks[i].isalpha() \
                and tags[i - 1] in ("CONJ", "PRON", "MODAL", "ADV", "NOUN", "PUNCT"):
            tags[i] = "VERB"
    for i in range(1, len(toks) - 1):  # "for that tee time": after a preposition "that" points at a thing
        if toks[i] == "that" and tags[i - 1] == "PREP" and tags[i + 1] in ("NOUN", "AMB", "ADJ"):
            tags[i] = "DET"
    for i in range(2, len(toks) - 1):  # "a wildlife rescue centre": a verb's base form inside a noun compound
        if tags[i] == "VERB" and tags[i - 1] == "NOUN" and tags[i + 1] == "NOUN" and not is_plural(toks[i - 1]) \
                and lx.verb_base(toks[i]) == toks[i] and toks[i - 2] in ("a", "an", "the", "each", "every", "our", "my"):
            tags[i] = "NOUN"
    for i in range(1, len(toks)):  # "a sponsor runs trials", "each pour", "many lifts": a verb's form is a noun
        if tags[i] == "VERB" and (toks[i - 1] in ("a", "an", "the", "each", "every", "another")
                                  or tags[i - 1] in ("QUANT", "NUM") and is_plural(toks[i])) \
                and not toks[i].endswith(("ed", "ing")) and lx.verb_base(toks[i]) in (toks[i], singular(toks[i])) \
                and toks[i] not in lx.IRREGULAR_FORMS \
                and not (i + 1 < len(toks) and tags[i + 1] in ("DET", "PRON", "NUM")):  # ("they each take a role")
            tags[i] = "NOUN"


_COUNT_WORDS = frozenset("number count amount quantity total".split())


def _counts(cs: list[Chunk]) -> list[Chunk]:
    """"the number of arrows": one number on the record, an ``arrow count`` field, not arrows."""
    out: list[Chunk] = []
    k = 0
    while k < len(cs):
        c = cs[k]
        if c.kind == "NP" and c.words and c.words[-1] in _COUNT_WORDS and len(c.words) == 1 and k + 2 < len(cs) \
                and cs[k + 1].text == "of" and cs[k + 2].kind == "NP" and cs[k + 2].plural:
            counted = [*cs[k + 2].words[:-1], singular(cs[k + 2].words[-1]), "count"]
            out.append(Chunk("NP", " ".join(counted), counted, c.mods, c.det))
            k += 3
            continue
        out.append(c)
        k += 1
    return out


def _verbs_by_position(toks: list[str], tags: list[str]) -> None:
    """Unknown words that must be verbs where they stand.

    * after a modal: "every appointment can *result* in a treatment";
    * a participle after ``is``/``are``/``be``: "gardens are *divided* into beds";
    """
    for i, tag in enumerate(tags):
        j = i - 1
        while j >= 0 and tags[j] in ("ADV", "NEG"):
            j -= 1
        prev = tags[j] if j >= 0 else "START"
        if tag == "NOUN" and prev == "MODAL":
            tags[i] = "VERB"
        elif tag == "ADJ" and prev == "AUX" and toks[j] in ("is", "are", "be", "been", "was", "were") \
                and i + 1 < len(tags) and tags[i + 1] == "PREP" and lx.verb_base(toks[i]) \
                and lx.verb_base(toks[i]) != toks[i] and not toks[i].endswith(("ing", "s")):
            tags[i] = "VERB"  # "ingredients should be *shared* between recipes": a passive
        elif tag == "AUX" and toks[i] == "done" and (prev == "AUX" and toks[j] in ("is", "are", "be", "been", "was", "were")
                                                      or i + 1 < len(toks) and toks[i + 1] == "by"):
            tags[i] = "VERB"  # "every delivery is *done* by one driver": a passive
        elif tag == "NOUN" and prev == "AUX" and toks[j] in ("is", "are", "be", "been", "was", "were", "get", "gets",
                                                             "got", "getting") \
                and toks[i].endswith(("ed", "en")) and len(toks[i]) > 4:
            tags[i] = "VERB"


# Endings only nouns have: such a word is never the verb of a run ("homeowners association portal").
_NOUN_SUFFIXES = ("tion", "sion", "ment", "ness", "ship", "ity", "ance", "ence", "ism")
SUBJECT_PRONOUNS = frozenset("i we you they he she who".split())
_OBJECT_START = ("DET", "QUANT", "NUM", "PRON", "ADJ")
_PARTICLES = frozenset("out up off in".split())
_LINK_PREPS = frozenset("at in on with to from into through against under by onto inside within".split())


def _verbs_in_context(toks: list[str], tags: list[str]) -> None:
    """Where a clause needs its verb, the word standing there is one, known to the lexicon or not.

    * after a subject pronoun: "we *roast* beans", "I *inspect* every hive";
    * between a plural subject and its object: "landlords *own* buildings", "groups *meet* at homes"
      (an unknown word only when the subject has no determiner: "an events page for venues" is a noun);
    * a plural at the start before ``is``/``can``/``have`` is the subject, not a verb: "*shows* are hosted";
    * after a preposition a verb form is a noun: "go through *edits*".
    """
    n = len(tags)
    for i in range(1, n - 1):  # "patrons *place* holds on titles": a plural, a base form, then an -s form
        if tags[i - 1] == "NOUN" and is_plural(toks[i - 1]) and tags[i] == "NOUN" and not is_plural(toks[i]) \
                and lx.verb_base(toks[i]) and tags[i + 1] == "VERB" and is_plural(toks[i + 1]) \
                and (i + 2 == n or tags[i + 2] in ("PREP", "PUNCT", "CONJ")):
            tags[i], tags[i + 1] = "VERB", "NOUN"
    for i in range(1, n):  # "hosts *host* shows", "judges *judge* entries": a plural then its own base form
        if tags[i - 1] == "NOUN" and toks[i] != toks[i - 1] and is_plural(toks[i - 1]) \
                and singular(toks[i - 1]) == toks[i] and tags[i] in ("NOUN", "VERB", "AMB"):
            tags[i] = "VERB"
            if i + 1 < n and tags[i + 1] == "VERB" and is_plural(toks[i + 1]):
                tags[i + 1] = "NOUN"
    for i in range(n):
        tag, word = tags[i], toks[i]
        nxt = tags[i + 1] if i + 1 < n else "END"
        nxt_word = toks[i + 1] if i + 1 < n else ""
        object_next = nxt in _OBJECT_START or (nxt == "NOUN" and is_plural(nxt_word)) or (
            nxt == "PREP" and nxt_word in _LINK_PREPS)
        prev = i - 1
        while prev >= 0 and tags[prev] == "ADV":
            prev -= 1
        prev_tag = tags[prev] if prev >= 0 else "START"
        if tag == "NOUN" and prev_tag == "PRON" and toks[prev] in SUBJECT_PRONOUNS and object_next \
                and not is_plural(word) and len(word) > 2:
            tags[i] = "VERB"
        elif tag in ("NOUN", "ADJ") and prev_tag == "NOUN" and prev == i - 1 and is_plural(toks[prev]) \
                and not is_plural(word) and object_next and f"{singular(word)}_{singular(nxt_word)}" not in COMPOUNDS:
            known = lx.verb_base(word) is not None
            bare = prev == 0 or tags[prev - 1] not in ("DET", "QUANT", "NUM", "ADJ", "NOUN", "PREP")
            if (known or (tag == "NOUN" and bare and len(word) > 2)) and (tag == "NOUN" or known):
                tags[i] = "VERB"
        elif tag == "ADJ" and prev_tag == "MODAL" and lx.verb_base(word) is not None:
            tags[i] = "VERB"  # "attendees can favourite sets"
        elif tag == "VERB" and prev_tag in ("START", "CONJ", "PUNCT") and is_plural(word) \
                and (nxt in ("AUX", "MODAL", "HAVE") or prev_tag == "START" and nxt == "PREP" and i + 2 < n
                     and toks[i + 2] in ("each", "every", "per")):
            tags[i] = "NOUN"  # ("*drops* along each round": a list item)
        elif tag == "VERB" and prev_tag == "PREP" and (toks[prev] != "to" or is_plural(word) and lx.verb_base(word) != word) \
                and not word.endswith(("ing", "ed")) and word not in ("be", "have"):
            tags[i] = "NOUN"  # (after "to" only an -s form: "publish episodes to *shows*", not "to show")
        elif tag == "VERB" and prev >= 0 and toks[prev] in (":", ",", "+") and (nxt_word in (",", "+", "") or (
                nxt_word in ("and", "or") and toks[prev] != ",")) and not word.endswith(("ing", "ed")):
            tags[i] = "NOUN"  # an item of a list: "ski resort: lifts, passes, skiers", "pass + lift + time"
        elif tag == "VERB" and prev >= 0 and toks[prev] in ("which", "what", "whose") and word == lx.verb_base(word) \
                and (nxt in ("VERB", "ADJ", "AUX", "HAVE", "MODAL", "PUNCT", "END") or nxt_word.endswith("ed")):
            tags[i] = "NOUN"  # "store which sponsor paid for an episode": "which" picks one of them


def _split_runs(toks: list[str], tags: list[str]) -> None:
    """In a run of nouns that starts with a plural, the first later base form is the verb."""
    i = 0
    while i < len(tags):
        if tags[i] not in ("NOUN", "AMB"):
            i += 1
            continue
        j = i
        while j < len(tags) and tags[j] in ("NOUN", "AMB"):
            j += 1
        if j - i >= 3 and is_plural(toks[i]) and not (i > 0 and tags[i - 1] in ("DET", "ADJ", "QUANT", "NUM")):
            for k in range(i + 1, j - 1):
                if not is_plural(toks[k]) and f"{singular(toks[k])}_{singular(toks[k + 1])}" not in COMPOUNDS \
                        and not toks[k].endswith(_NOUN_SUFFIXES):
                    tags[k] = "VERB"
                    break
        i = j


_PLURAL_MODIFIERS = frozenset("sales sports news goods arts series species means physics parts savings "
                               "customs earnings arms clothes jeans glasses works".split())


def _group(toks: list[str], tags: list[str]) -> list[Chunk]:
    out: list[Chunk] = []
    i = 0
    while i < len(toks):
        tag = tags[i]
        if tag in ("DET", "QUANT", "NUM", "ADJ", "NOUN"):
            det, mods, nouns = [], [], []
            j = i
            while j < len(toks) and tags[j] in ("DET", "QUANT", "NUM") and not mods and not nouns:
                det.append(toks[j])
                j += 1
            while j < len(toks) and tags[j] == "ADJ" and not nouns:
                mods.append(toks[j])
                j += 1
            while j < len(toks) and tags[j] == "NOUN":
                nouns.append(toks[j])
                j += 1
            if len(nouns) > 1 and nouns[0] in TEMPORAL and ({"each", "every", "this", "next", "per"} & set(det)):
                out.append(Chunk("NP", nouns[0], [nouns[0]], [], det))  # "each day keepers record ...": two phrases
                det, nouns = [], nouns[1:]
            # a plural is not a modifier: "track campers cabins counselors" names three things; and "one
            # counselor campers sign up" ends one phrase before the plural its determiner cannot take
            cut = next((k for k in range(len(nouns) - 1) if is_plural(nouns[k]) and nouns[k] not in _PLURAL_MODIFIERS
                        and not nouns[k].endswith("ss")), None)
            if cut is None and len(nouns) > 1 and is_plural(nouns[-1]) and {"a", "an", "one", "each", "every"} & set(det) \
                    and not is_plural(nouns[-2]):
                cut = len(nouns) - 2 if j < len(toks) and tags[j] in ("VERB", "MODAL", "HAVE") else None
            while cut is not None:
                out.append(Chunk("NP", " ".join(nouns[: cut + 1][-3:]), nouns[: cut + 1][-3:], mods + nouns[: cut + 1][:-3], det))
                det, mods, nouns = [], [], nouns[cut + 1:]
                cut = next((k for k in range(len(nouns) - 1) if is_plural(nouns[k]) and nouns[k] not in _PLURAL_MODIFIERS
                            and not nouns[k].endswith("ss")), None)
            if nouns:
                out.append(Chunk("NP", " ".join(nouns[-3:]), nouns[-3:], mods + nouns[:-3], det))
            else:  # determiners/adjectives with no noun: keep them as separate chunks
                for k in range(i, j):
                    out.append(Chunk(tags[k] if tags[k] != "QUANT" else "DET", toks[k], [toks[k]]))
            i = max(j, i + 1)
            continue
        base = lx.verb_base(toks[i]) if tag == "VERB" else None
        out.append(Chunk(tag, toks[i], [toks[i]], base=base or (toks[i] if tag == "VERB" else None)))
        i += 1
    return out
