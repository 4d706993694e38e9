"""Per-request llama.cpp sampler chains for the embedded model.

Each request in a batch owns one chain (shaping: logit bias → penalties → DRY; then
choosing: grammar → top-k → top-p → min-p → temperature → a seeded ``dist``, or greedy
at temperature 0), so requests decoded in the same batch keep their own settings and
their own random state: a seed gives the same answer whatever else is being decoded at
the time. docs/sampling.md says what each knob does and where log-probabilities are read.

Chains are built on the event loop's side (pure C, no context needed), so a bad
grammar is an ``InvalidRequest`` before the response starts; the decode thread
frees them.
"""

from __future__ import annotations

import ctypes
import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import orjson

from hubbub.core.types import ResponseFormat, SamplingParams, Tools
from hubbub.errors import FieldProblem, InvalidRequest

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


@dataclass(frozen=True)
class Repetition:
    """The repetition control a request gets unless it sets a penalty of its own (the embedded
    model's defaults, ``EmbeddedConfig``; chosen by measurement, docs/benchmarks.md "Loops")."""

    repeat_penalty: float = 1.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    penalty_last_n: int = 64
    dry_multiplier: float = 0.0
    dry_base: float = 1.75
    dry_allowed_length: int = 2
    dry_last_n: int = 1024
    dry_breakers: tuple[str, ...] = ("\n",)

    @classmethod
    def of(cls, params: SamplingParams, defaults: "Repetition") -> "Repetition":
        """What ``params`` asks for: a request that sets ``repetition_penalty`` (any value, 1.0
        included) or a non-zero frequency or presence penalty takes control of all of them (those
        it left unset are off, and so is DRY); one that sets none gets ``defaults``. A zero
        frequency or presence penalty alone is what many clients send for "unset": it keeps the
        defaults (docs/sampling.md)."""
        if not params.frequency_penalty and not params.presence_penalty and params.repetition_penalty is None:
            return defaults
        return replace(defaults, repeat_penalty=params.repetition_penalty or 1.0,
                       frequency_penalty=params.frequency_penalty or 0.0,
                       presence_penalty=params.presence_penalty or 0.0, dry_multiplier=0.0)

    @property
    def penalises(self) -> bool:
        return self.repeat_penalty != 1.0 or self.frequency_penalty != 0.0 or self.presence_penalty != 0.0


NO_REPETITION_CONTROL = Repetition()
MAX_TOP_LOGPROBS = 20


class SamplerChain:
    """Owns one ``llama_sampler`` chain; ``close`` frees it (idempotent). ``grammar``: the GBNF
    text constraining the output (``GrammarCache.get``), or None.

    The chain is two sub-chains: *shaping* (logit bias, repetition penalties, DRY: what changes
    the model's distribution) then *choosing* (grammar, top-k, top-p, min-p, temperature, then a
    seeded draw or greedy). Log-probabilities, when asked for, are read between the two: the
    distribution after biases and penalties, before temperature and truncation, so at
    temperature 0 the chosen token's is always the largest (docs/sampling.md)."""

    def __init__(self, vocab: Any, params: SamplingParams, grammar: str | None = None,
                 lazy_trigger: str | None = None, repetition: Repetition = NO_REPETITION_CONTROL) -> None:
        """``lazy_trigger``: a regular expression; the grammar applies only once the output
        matches it, from its first group on (llama.cpp's lazy grammar: tool calls under
        ``tool_choice: auto``)."""
        import llama_cpp as lc

        self._lc = lc
        self.ptr = None
        n_vocab = lc.llama_vocab_n_tokens(vocab)
        self._n_vocab = n_vocab
        self.top_logprobs = min(params.top_logprobs, MAX_TOP_LOGPROBS) if params.logprobs else 0
        self.logprobs = params.logprobs
        self.last: tuple[float, list[tuple[int, float]]] | None = None  # the last token's (logprob, top)
        rep = Repetition.of(params, repetition)
        bias = _bias_array(lc, n_vocab, params.logit_bias)  # InvalidRequest before anything is allocated
        chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        self.ptr = chain
        shape = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        choose = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        lc.llama_sampler_chain_add(chain, shape)  # the outer chain owns (and frees) both
        lc.llama_sampler_chain_add(chain, choose)
        self._shape, self._choose = shape, choose
        shaping = False
        if bias is not None:
            lc.llama_sampler_chain_add(shape, lc.llama_sampler_init_logit_bias(n_vocab, len(bias), bias))
            shaping = True
        if rep.penalises and rep.penalty_last_n != 0:
            lc.llama_sampler_chain_add(shape, lc.llama_sampler_init_penalties(
                n_vocab, rep.penalty_last_n, rep.repeat_penalty, rep.frequency_penalty, rep.presence_penalty))
            shaping = True
        if rep.dry_multiplier > 0:
            breakers = (ctypes.c_char_p * len(rep.dry_breakers))(*(b.encode("utf-8") for b in rep.dry_breakers))
            lc.llama_sampler_chain_add(shape, lc.llama_sampler_init_dry(
                vocab, rep.dry_multiplier, rep.dry_base, rep.dry_allowed_length, rep.dry_last_n,
                breakers, len(rep.dry_breakers)))
            shaping = True
        # Plain greedy decoding is an argmax over the logits row: done in NumPy it skips building
        # llama.cpp's 49k-entry candidate array for every token (same token: first maximum wins).
        # Only when nothing shapes the distribution: biases and penalties must never be bypassed.
        plain = grammar is None and params.temperature <= 0 and not shaping and not self.logprobs
        self._argmax_of = n_vocab if plain else 0
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
            lc.llama_sampler_chain_add(choose, g)
        if params.temperature <= 0:
            lc.llama_sampler_chain_add(choose, lc.llama_sampler_init_greedy())
        else:
            if params.top_k is not None and params.top_k > 0:
                lc.llama_sampler_chain_add(choose, lc.llama_sampler_init_top_k(params.top_k))
            if params.top_p < 1.0:
                lc.llama_sampler_chain_add(choose, lc.llama_sampler_init_top_p(params.top_p, 1))
            if params.min_p is not None and params.min_p > 0:
                lc.llama_sampler_chain_add(choose, lc.llama_sampler_init_min_p(params.min_p, 1))
            lc.llama_sampler_chain_add(choose, lc.llama_sampler_init_temp(params.temperature))
            seed = params.seed if params.seed is not None else DEFAULT_SEED
            lc.llama_sampler_chain_add(choose, lc.llama_sampler_init_dist(seed & 0xFFFFFFFF))
        self._cells: Any = None  # the candidate array of the log-probability path, reused per token

    def sample(self, ctx: Any, index: int) -> int:
        """Sample (and accept) a token from output ``index`` of the last decode."""
        if self._argmax_of:
            row = self._lc.llama_get_logits_ith(ctx, index)
            return int(np.ctypeslib.as_array(row, shape=(self._argmax_of,)).argmax())
        if not self.logprobs:
            return self._lc.llama_sampler_sample(self.ptr, ctx, index)
        return self._sample_with_logprobs(ctx, index)

    def _sample_with_logprobs(self, ctx: Any, index: int) -> int:
        """``llama_sampler_sample`` done by hand, reading the distribution between the chains."""
        lc, n = self._lc, self._n_vocab
        if self._cells is None:
            self._cells = np.empty(n, dtype=_TOKEN_DATA)
        cells = self._cells
        cells["id"] = np.arange(n, dtype=np.int32)
        cells["logit"] = np.ctypeslib.as_array(lc.llama_get_logits_ith(ctx, index), shape=(n,))
        cells["p"] = 0.0
        data = cells.ctypes.data_as(ctypes.POINTER(lc.llama_token_data))
        cur = lc.llama_token_data_array(data=data, size=n, selected=-1, sorted=False)
        lc.llama_sampler_apply(self._shape, ctypes.byref(cur))
        # Shaping samplers change logits in place (never the order or the size).
        logits = cells["logit"].astype(np.float64)
        finite = np.isfinite(logits)
        top = float(logits[finite].max())
        lse = top + float(np.log(np.exp(logits[finite] - top).sum()))
        logprobs = logits - lse
        best: list[tuple[int, float]] = []
        if self.top_logprobs:
            k = self.top_logprobs
            ids = np.argpartition(-logprobs, k - 1)[:k]
            ids = ids[np.argsort(-logprobs[ids], kind="stable")]
            best = [(int(i), float(logprobs[i])) for i in ids]
        lc.llama_sampler_apply(self._choose, ctypes.byref(cur))
        token = int(cur.data[cur.selected].id)
        lc.llama_sampler_accept(self.ptr, token)
        self.last = (float(logprobs[token]), best)
        return token

    def close(self) -> None:
        if self.ptr is not None:
            self._lc.llama_sampler_free(self.ptr)
            self.ptr = None


_TOKEN_DATA = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])


def _bias_array(lc: Any, n_vocab: int, bias: dict[int, float] | None) -> Any:
    """``logit_bias`` as llama.cpp's array; a bias of -100 or less bans the token outright
    (OpenAI: "-100 should result in a ban"). A token id outside the vocabulary is a 400."""
    if not bias:
        return None
    for token in bias:
        if not 0 <= token < n_vocab:
            raise InvalidRequest(details=[FieldProblem(
                "logit_bias", f"token id {token} is not in the model's vocabulary (0..{n_vocab - 1})")])
    items = (lc.llama_logit_bias * len(bias))()
    for i, (token, value) in enumerate(sorted(bias.items())):
        items[i].token = token
        items[i].bias = float("-inf") if value <= -100 else value
    return items
