"""Per-request llama.cpp sampler chains for the embedded model.

Each request in a batch owns one chain (grammar → top-p → temperature → a seeded
``dist``, or grammar → greedy at temperature 0), so requests decoded in the same
batch keep their own settings and their own random state: a seed gives the same
answer whatever else is being decoded at the time.

Chains are built on the event loop's side (pure C, no context needed), so a bad
grammar is an ``InvalidRequest`` before the response starts; the decode thread
frees them.
"""

from __future__ import annotations

import ctypes
import hashlib
import threading
from collections import OrderedDict
from typing import Any

import numpy as np
import orjson

from hubbub.core.types import ResponseFormat, SamplingParams, Tools
from hubbub.errors import InvalidRequest

DEFAULT_SEED = 0xFFFFFFFF  # llama.cpp's LLAMA_DEFAULT_SEED: a random seed per request


def grammar_text(fmt: ResponseFormat | None) -> str | None:
    """The GBNF grammar that constrains output to ``fmt``, or ``None`` for free text."""
    if fmt is None or fmt.type == "text":
        return None
    from llama_cpp.llama_grammar import JSON_GBNF

    if fmt.type == "json_object" or not fmt.schema:
        return JSON_GBNF
    from hubbub.providers.json_grammar import schema_to_gbnf

    try:
        return schema_to_gbnf(fmt.schema)
    except Exception as exc:  # the converter rejects what it cannot express
        raise InvalidRequest(f"response_format.json_schema is not supported: {exc}") from exc


class GrammarCache:
    """GBNF text per response format, keyed by a hash of its schema: converting a large schema
    takes most of a second, and clients send the same one again and again. Thread-safe (grammars
    are built in worker threads, off the event loop)."""

    def __init__(self, size: int = 64) -> None:
        self._items: OrderedDict[str, str | None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, fmt: ResponseFormat | None) -> str | None:
        if fmt is None or fmt.type == "text":
            return None
        key = fmt.type + ":" + hashlib.sha256(orjson.dumps(fmt.schema, option=orjson.OPT_SORT_KEYS)).hexdigest()
        return self._build(key, lambda: grammar_text(fmt))

    def tools(self, tools: "Tools") -> tuple[str, bool]:
        """The grammar for tool calls (``tool_calls.grammar``) and whether it is lazy."""
        from hubbub.providers import tool_calls

        described = [(t.name, t.parameters) for t in tools.specs]
        key = "tools:" + hashlib.sha256(orjson.dumps([described, tools.parallel, tools.choice.mode],
                                                      option=orjson.OPT_SORT_KEYS)).hexdigest()
        lazy = tools.choice.mode == "auto"

        def build() -> str:
            try:
                return tool_calls.grammar(tools)[0]
            except Exception as exc:  # the converter rejects what it cannot express
                raise InvalidRequest(f"tools: a parameters schema is not supported: {exc}") from exc

        return self._build(key, build) or "", lazy

    def _build(self, key: str, build: Any) -> str | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        grammar = build()  # may raise InvalidRequest: not cached, the next try raises again
        with self._lock:
            self._items[key] = grammar
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return grammar


class SamplerChain:
    """Owns one ``llama_sampler`` chain; ``close`` frees it (idempotent). ``grammar``: the GBNF
    text constraining the output (``GrammarCache.get``), or None."""

    def __init__(self, vocab: Any, params: SamplingParams, grammar: str | None = None,
                 lazy_trigger: str | None = None) -> None:
        """``lazy_trigger``: a regular expression; the grammar applies only once the output
        matches it, from its first group on (llama.cpp's lazy grammar: tool calls under
        ``tool_choice: auto``)."""
        import llama_cpp as lc

        self._lc = lc
        # Plain greedy decoding is an argmax over the logits row: done in NumPy it skips building
        # llama.cpp's 49k-entry candidate array for every token (same token: first maximum wins).
        self._argmax_of = (lc.llama_vocab_n_tokens(vocab)) if grammar is None and params.temperature <= 0 else 0
        chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        self.ptr = chain
        if grammar is not None:
            if lazy_trigger is None:
                g = lc.llama_sampler_init_grammar(vocab, grammar.encode("utf-8"), b"root")
            else:
                patterns = (ctypes.c_char_p * 1)(lazy_trigger.encode("utf-8"))
                g = lc.llama_sampler_init_grammar_lazy_patterns(vocab, grammar.encode("utf-8"), b"root",
                                                                 patterns, 1, None, 0)
            if not g:
                self.close()
                raise InvalidRequest("response_format.json_schema is not supported: the grammar does not parse")
            lc.llama_sampler_chain_add(chain, g)
        if params.temperature <= 0:
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_greedy())
        else:
            if params.top_p < 1.0:
                lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_p(params.top_p, 1))
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_temp(params.temperature))
            seed = params.seed if params.seed is not None else DEFAULT_SEED
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_dist(seed & 0xFFFFFFFF))

    def sample(self, ctx: Any, index: int) -> int:
        """Sample (and accept) a token from output ``index`` of the last decode."""
        if self._argmax_of:
            row = self._lc.llama_get_logits_ith(ctx, index)
            return int(np.ctypeslib.as_array(row, shape=(self._argmax_of,)).argmax())
        return self._lc.llama_sampler_sample(self.ptr, ctx, index)

    def close(self) -> None:
        if self.ptr is not None:
            self._lc.llama_sampler_free(self.ptr)
            self.ptr = None
