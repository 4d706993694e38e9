"""Words: sentences, tokens, singular/plural, and identifier casing.

English inflection here is rules plus a short list of exceptions, tuned for
the nouns people use when they describe apps (``categories``, ``addresses``,
``statuses``, ``people``); it needs no dictionary.
"""

from __future__ import annotations

import re
import unicodedata

_IRREGULAR = {
    "people": "person", "children": "child", "men": "man", "women": "woman", "mice": "mouse",
    "feet": "foot", "teeth": "tooth", "geese": "goose", "data": "data", "media": "media",
    "criteria": "criterion", "analyses": "analysis", "indices": "index", "quizzes": "quiz",
    "leaves": "leaf", "shelves": "shelf", "knives": "knife", "wives": "wife", "lives": "life",
    "halves": "half", "wolves": "wolf", "thieves": "thief", "loaves": "loaf", "series": "series",
    "species": "species", "news": "news", "movies": "movie", "cookies": "cookie", "calories": "calorie",
    "pies": "pie", "ties": "tie", "zombies": "zombie", "rookies": "rookie", "selfies": "selfie",
    "buses": "bus", "statuses": "status", "campuses": "campus", "bonuses": "bonus", "viruses": "virus",
    "aliases": "alias", "canvases": "canvas", "gases": "gas", "lenses": "lens", "axes": "axis",
    "crises": "crisis", "theses": "thesis", "diagnoses": "diagnosis", "oases": "oasis",
    "heroes": "hero", "potatoes": "potato", "tomatoes": "tomato", "echoes": "echo", "vetoes": "veto",
}
_SINGULAR_S = {
    "status", "class", "address", "business", "campus", "bus", "news", "series", "species", "analysis",
    "process", "access", "canvas", "alias", "atlas", "bonus", "virus", "gas", "lens", "chassis", "boss",
    "glass", "pass", "progress", "success", "fitness", "is", "has", "was", "this", "us", "yes", "its",
    "his", "plus", "thus", "bias", "census", "corpus", "focus", "genus", "radius", "syllabus", "apparatus",
    "diagnosis", "thesis", "basis", "crisis", "axis", "analytics", "settings", "whereas", "always",
    "sms", "gps", "os", "ios", "css", "dns", "aws", "rss", "kudos", "mattress", "address", "congress",
    "wellness", "billiards", "chess", "express", "dress", "princess", "witness", "loss", "mass", "moss",
}
_PLURAL_OF = {v: k for k, v in _IRREGULAR.items() if k != v}


def singular(word: str) -> str:
    """``categories`` -> ``category``; words that are already singular come back unchanged."""
    w = word.lower()
    if w in _IRREGULAR:
        return _IRREGULAR[w]
    if w.endswith("men") and len(w) > 5 and not w.endswith(("imen", "omen", "amen")):
        return w[:-3] + "man"  # "journeymen", "firemen" (not "specimen", "abdomen", "stamen")
    if len(w) == 3 and w.endswith("s") and w.isalpha() and w not in _SINGULAR_S and w[1] not in "aeiousy":
        return w[:-1]  # "djs", "ids", "pcs"
    if w in _SINGULAR_S or len(w) <= 3 or not w.endswith("s") or w.endswith(("ss", "us", "is")):
        return w
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith(("sses", "shes", "ches", "xes", "zzes")):
        return w[:-2]
    if w.endswith("uses") and not w.endswith(("ouses", "auses")):
        return w[:-2]
    return w[:-1]


def is_plural(word: str) -> bool:
    w = word.lower()
    return w in _IRREGULAR and _IRREGULAR[w] != w or (singular(w) != w)


def plural(word: str) -> str:
    w = word.lower()
    if w in _PLURAL_OF:
        return _PLURAL_OF[w]
    if w.endswith("y") and len(w) > 1 and w[-2] not in "aeiou":
        return w[:-1] + "ies"
    if w.endswith(("s", "x", "z", "ch", "sh")):
        return w + "es"
    return w + "s"


_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def words(name: str) -> list[str]:
    """``OrderItem`` / ``order_item`` / ``order items`` -> ``["order", "item"]``-like pieces (lowercase)."""
    return [w.lower() for w in _WORD_SPLIT.split(name) if w]


def pascal(name: str) -> str:
    """Singular PascalCase: ``order items`` -> ``OrderItem``, ``check-in`` -> ``CheckIn``."""
    out = name
    for _ in range(3):  # a fixed point: "AA" -> "Aa" -> "Aa"
        parts = words(out)
        if not parts:
            return ""
        parts[-1] = singular(parts[-1])
        step = "".join(p[:1].upper() + p[1:] for p in parts)
        step = step if step[:1].isalpha() else "E" + step
        if step == out:
            break
        out = step
    return out


def camel(name: str) -> str:
    """``due date`` / ``due_date`` / ``DueDate`` -> ``dueDate``; ``ID`` -> ``id``."""
    out = name
    for _ in range(3):  # a fixed point, as for ``pascal``
        parts = words(out)
        if not parts:
            return ""
        step = parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])
        step = step if step[:1].isalpha() else "f" + step
        if step == out:
            break
        out = step
    return out


def snake(name: str) -> str:
    return "_".join(words(name))


def lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def enum_value(text: str) -> str:
    """A user's value as an enum value: ``In progress`` -> ``in_progress``."""
    return "_".join(w for w in re.split(r"[^a-z0-9]+", text.lower()) if w)


_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+|(?<=[a-z)])\.(?=[A-Z])")
# "->" chains parts ("quizzes -> questions"), "=" and "+" spell out a record ("a score = judge + points").
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9']*(?:-[A-Za-z0-9]+)*|\d+(?:\.\d+)?|->|\u2192|[,:()/&=+]")
_BULLET = re.compile(r"^[ \t]*(?:[-*+\u2022\u2013]|\d{1,2}[.)])\s+", re.MULTILINE)


def sentences(text: str) -> list[str]:
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    text = _BULLET.sub("", text)  # a list item is a sentence of its own; its marker says nothing
    return [s.strip() for s in _SENTENCE.split(text) if s and s.strip()]


def tokens(sentence: str) -> list[str]:
    """Lowercase word tokens and the punctuation that structures lists (``,`` ``:`` ``(`` ``)`` ``/``)."""
    out = []
    sentence = unicodedata.normalize("NFKD", sentence).encode("ascii", "ignore").decode()  # "café" -> "cafe"
    for tok in _TOKEN.findall(sentence):
        t = tok.lower()
        if t.endswith("'s"):
            t = t[:-2]
        elif t.endswith("s'"):
            t = t[:-1]
        if t == "e-mail":
            t = "email"
        elif t == "&":
            t = "and"
        elif t == "\u2192":
            t = "->"
        out.append(t)
    return out
