"""Edits: imperatives and statements that change the model ("drop tags", "rename X to Y", "make email unique").

``Edits`` is a mixin of the analysis' reader (``analysis.py``).
"""

from __future__ import annotations

from hubbub.dsl import domain as dm
from hubbub.dsl import merge as mg
from hubbub.dsl.chunk import Chunk
from hubbub.dsl.schema import Field
from hubbub.dsl.text import camel, pascal, singular, words
from hubbub.dsl.reader import EDIT_ADD, EDIT_DROP, FLAGS, ReaderBase, values_from


class Edits(ReaderBase):
    """Changes to the existing model; each returns how many chunks it used (0: not an edit)."""

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
        if v.kind == "VERB" and base in EDIT_DROP or (negated and base in ("need", "want", "have", "use", "track", "store",
                                                                         "keep", "model", "record")):
            nps, end = self._np_list(cs, i + 1)
            owner = self._from(cs, end)
            for np in nps:
                self._drop(np, owner)
            return (end + 2 if owner else end) if nps else 0
        if v.kind == "VERB" and base == "rename" or (v.kind == "VERB" and base == "call" and i + 2 < len(cs)):
            nps, end = self._np_list(cs, i + 1)
            if len(nps) == 1 and end < len(cs) and cs[end].text in ("to", "as", "into") and end + 1 < len(cs) and cs[end + 1].kind == "NP":
                self._rename(nps[0], cs[end + 1])
                k = end + 2  # "rename members to patrons and loans to checkouts"
                while k + 3 < len(cs) and cs[k].text in ("and", ",") and cs[k + 1].kind in ("NP", "VERB") \
                        and cs[k + 2].text in ("to", "as", "into") and cs[k + 3].kind == "NP":
                    old = cs[k + 1] if cs[k + 1].kind == "NP" else Chunk("NP", cs[k + 1].text, [cs[k + 1].text])
                    self._rename(old, cs[k + 3])  # ("loans" read as a verb there)
                    k += 4
                return k
            if base == "call" and len(nps) == 2:
                self._rename(nps[0], nps[1])
                return end
            if base == "call" and len(nps) == 1 and end < len(cs) and cs[end].kind == "NP":
                self._rename(nps[0], cs[end])  # "call the yarns 'skeins' instead"
                return end + 1
            return 0
        if v.kind == "VERB" and base == "make":
            nps, end = self._np_list(cs, i + 1)
            flags = {c.text for c in cs[end:] if c.text in FLAGS} | {m for np in nps for m in np.mods if m in FLAGS}
            if nps and flags:
                owner = self._from(cs, end)
                for np in nps:
                    self._flag(np, flags, owner)
                return len(cs)
            return 0
        if v.kind == "VERB" and base in EDIT_ADD:
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
        if self._same_as(cs[i:]):
            return len(cs)
        return len(cs) if self._statement(cs) else 0

    def _same_as(self, cs: list[Chunk]) -> bool:
        """"instructors are also members", "instructors aren't separate, they're members too": one entity is
        another, so it is merged into it (what linked to it links to the other, under its name)."""
        if len(cs) < 3 or cs[0].kind != "NP" or any(c.kind in ("VERB", "HAVE", "MODAL", "PREP") and c.text != "as"
                                                    for c in cs):
            return False
        x = self._known(cs[0])
        k = 1
        if k < len(cs) and cs[k].kind == "NEG" and k + 1 < len(cs) and cs[k + 1].text in ("separate", "different"):
            k += 2
            while k < len(cs) and cs[k].kind == "PUNCT":
                k += 1
            if k < len(cs) and cs[k].text in ("they're", "it's"):
                k += 1
            elif k + 1 < len(cs) and cs[k].text in ("they", "it") and cs[k + 1].kind == "AUX":
                k += 2  # ("they are": the contraction written out)
            else:
                return False
        elif k < len(cs) and cs[k].kind == "AUX":
            k += 1
        else:
            return False
        while k < len(cs) and cs[k].kind in ("ADV", "DET"):
            k += 1
        y = self._known(cs[k]) if k < len(cs) and cs[k].kind == "NP" else None
        if not x or not y or x == y or x not in self.dsl.entities or y not in self.dsl.entities:
            return False
        if not all(c.kind in ("ADV", "PUNCT") or c.text in ("as", "well") for c in cs[k + 1:]):
            return False
        role = x[0].lower() + x[1:]
        for r in [r for r in self.dsl.relationships if x in (r.source, r.target)]:
            mg.drop_relationships(self.dsl, r.source, r.target, r.name or None)
            source = y if r.source == x else r.source
            target = y if r.target == x else r.target
            self._link(source, target, r.type, role if r.target == x and r.source != x else r.name)
        for fname, spec in self.dsl.entities.get(x, {}).items():
            if fname != "id" and not fname.endswith("Id"):
                self.dsl.entities[y].setdefault(fname, spec)
        mg.drop_entity(self.dsl, x)
        self.dropped.add(x)
        return True

    def _statement(self, cs: list[Chunk]) -> bool:
        """'<field> should be unique', 'status can be open, pending or closed', 'X should be called Y'."""
        for k in range(len(cs) - 3):  # "(on second thought) motions don't need their own table": not an entity
            if cs[k].kind == "NP" and cs[k + 1].kind == "NEG" and cs[k + 2].kind == "VERB" \
                    and (cs[k + 2].base or cs[k + 2].text) in ("need", "require") and cs[k + 3].kind == "NP" \
                    and cs[k + 3].head in ("table", "entity", "model", "record", "list") \
                    and all(c.kind in ("PREP", "NP", "ADV", "PUNCT") for c in cs[:k]):
                name = self._known(cs[k])
                if name:
                    mg.drop_entity(self.dsl, name)
                    self.dropped.add(name)
                    return True
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
        flags = {c.text for c in rest if c.text in FLAGS}
        if flags and len(rest) <= 3:
            self._flag(cs[0], flags, None)
            return True
        fname = camel(" ".join(cs[0].words))
        owners = mg.entities_with_field(self.dsl, fname) or mg.entities_with_field(self.dsl, camel(cs[0].head))
        if owners and self._known(cs[0]) is None:
            values = values_from(rest[2:] if len(rest) > 2 and rest[0].text == "one" else rest)
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
        if owner is None and np.head in ("stuff", "thing", "side", "bit", "part") and len(np.words) > 1:
            # "drop the gear rental stuff": every entity the words before it name
            for word in np.words[:-1]:
                for entity in [e for e in self.dsl.entities if singular(word) in [w.lower() for w in words(e)]]:
                    mg.drop_entity(self.dsl, entity)
                    self.dropped.add(entity)
            return
        owners = [owner] if owner else list(self.dsl.entities)
        for o in owners:
            self._drop_item(o, np)

    def _rename(self, old: Chunk, new: Chunk) -> None:
        a, b = self._name(old), self._name(new)
        if a and b and len(new.words) > len(words(b)) and all(w.isalpha() for w in new.words):
            b = pascal(" ".join([*new.words[:-1], singular(new.words[-1])]))  # the name asked for, all of it
        if a and b and a in self.dsl.entities:
            mg.rename_entity(self.dsl, a, b)
            self._mark(("entity", b))
            return
        fa, fb = camel(" ".join(old.words)), camel(" ".join(new.words))
        for owner in mg.entities_with_field(self.dsl, fa):
            mg.rename_field(self.dsl, owner, fa, fb)
            self._mark(("field", owner, fb))

    def _flag(self, np: Chunk, flags: set[str], owner: str | None) -> None:
        fname = camel(" ".join([m for m in np.mods if m not in FLAGS] + np.words))
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

