"""Text -> token-sized chunks with overlap, each knowing the headings above it.

Headings are markdown-style lines (``# A``, ``## B``; HTML is converted to that by parse.py).
A chunk never spans two sections, and carries its heading path ("Title › A › B"), which is
indexed and shown with its text, so a passage deep in a section still matches and reads
with its title.

Token counts: with a tokenizer (the dense embedder's, whose window the chunks must fit) each
word is counted with it (cached per word); without one, a word costs ``ceil(len/4)`` tokens,
at least one — close to BPE tokenizers on English prose, and deterministic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

TokenCounter = Callable[[str], int]
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


@dataclass
class Chunk:
    ordinal: int
    heading: str  # "Title › Section › Subsection"
    text: str
    tokens: int


def approx_tokens(word: str) -> int:
    """A word's token cost when no tokenizer is at hand."""
    return max(1, (len(word) + 3) // 4)


def count_tokens(text: str, counter: TokenCounter | None = None) -> int:
    cost = _cached(counter or approx_tokens)
    return sum(cost(w) for w in text.split())


@lru_cache(maxsize=8)
def _cached(counter: TokenCounter) -> TokenCounter:
    return lru_cache(maxsize=65536)(counter)


def sections(text: str) -> list[tuple[list[str], str]]:
    """Split on markdown headings: (heading path, body) pairs, in order."""
    path: list[tuple[int, str]] = []
    out: list[tuple[list[str], str]] = []
    body: list[str] = []

    def flush() -> None:
        if "".join(body).strip():
            out.append(([h for _, h in path], "\n".join(body).strip()))
        body.clear()

    for line in text.splitlines():
        match = _HEADING.match(line.strip())
        if match:
            flush()
            level = len(match.group(1))
            path = [(lv, h) for lv, h in path if lv < level] + [(level, match.group(2))]
        else:
            body.append(line)
    flush()
    return out


def chunk_text(
    text: str,
    title: str,
    max_tokens: int = 256,
    overlap: int = 32,
    counter: TokenCounter | None = None,
) -> list[Chunk]:
    """Chunks of at most ``max_tokens`` (words, counted with ``counter``), consecutive chunks
    of one section sharing about ``overlap`` tokens. The heading path counts against the size."""
    cost = _cached(counter or approx_tokens)
    overlap = min(overlap, max_tokens // 2)
    chunks: list[Chunk] = []
    for path, body in sections(text):
        heading = " › ".join([title, *[h for h in path if h != title]]) if title else " › ".join(path)
        room = max(8, max_tokens - count_tokens(heading, counter))
        words = body.split()
        costs = [cost(w) for w in words]
        start = 0
        while start < len(words):
            end, used = start, 0
            while end < len(words) and (used + costs[end] <= room or end == start):
                used += costs[end]
                end += 1
            chunks.append(Chunk(len(chunks), heading, " ".join(words[start:end]), used))
            if end >= len(words):
                break
            # step back over ``overlap`` tokens, but always move forward
            back, kept = end, 0
            while back > start + 1 and kept + costs[back - 1] <= overlap:
                back -= 1
                kept += costs[back]
            start = back
    return chunks
