"""Embeddings from the embedded GGUF (the documented fallback of ``/v1/embeddings``, issue 21).

SmolLM2 is a chat model, not an embedding model: its mean-pooled hidden states are a usable but
modest embedding (fine for a small RAG index or a smoke test; configure a real embedding model
for quality, docs/api-decisions.md "Embeddings"). The model file is the chat model's, loaded a
second time by llama-cpp-python in embedding mode (``embedding=True``, mean pooling) on first use:
nothing is loaded when no one asks for embeddings. Loading and decoding run in a worker thread,
one request at a time (a ``Llama`` is not thread-safe); each input is decoded as its own
sequence, so an input's vector does not depend on the others sent with it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hubbub.errors import FieldProblem, InvalidRequest

if TYPE_CHECKING:
    from hubbub.settings import EmbeddedConfig

log = logging.getLogger(__name__)
_PATCH_LOCK = threading.Lock()


class GGUFEmbedder:
    """Unit-normalised, mean-pooled float32 vectors of a GGUF model (``n_embd`` dimensions; 576 for
    SmolLM2-135M). Inputs are at most ``n_ctx`` tokens; a longer one is a 400 naming it."""

    def __init__(self, path: Path, name: str, n_ctx: int = 2048, n_threads: int | None = None) -> None:
        self.path = path
        self.name = name
        self.n_ctx = n_ctx
        self._threads = n_threads
        self._llama: Any = None
        self._lock = asyncio.Lock()

    def _load(self) -> Any:
        import llama_cpp
        import llama_cpp.llama_cpp as low_level

        # No extra buffer types (AMX), as the chat model loads (embedded.py, docs/architecture.md):
        # ``Llama`` takes no such argument, so its defaults are amended for this one construction
        # (under the module lock: two loads never overlap; the chat model is loaded at start).
        defaults = low_level.llama_model_default_params

        def without_extra_bufts() -> Any:
            params = defaults()
            params.use_extra_bufts = False
            return params

        with _PATCH_LOCK:
            low_level.llama_model_default_params = without_extra_bufts
            try:
                return self._construct(llama_cpp)
            finally:
                low_level.llama_model_default_params = defaults

    def _construct(self, llama_cpp: Any) -> Any:
        # The whole input must be in one micro-batch for llama.cpp to pool it: n_ubatch = n_ctx.
        return llama_cpp.Llama(model_path=str(self.path), embedding=True,
                               pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN, n_ctx=self.n_ctx,
                               n_batch=self.n_ctx, n_ubatch=self.n_ctx, n_threads=self._threads,
                               n_threads_batch=self._threads, verbose=False)

    async def _model(self) -> Any:
        if self._llama is None:
            self._llama = await asyncio.to_thread(self._load)
            log.info("loaded %s in embedding mode (%d dimensions)", self.path.name, self._llama.n_embd())
        return self._llama

    @property
    def dimensions(self) -> int | None:
        """The vectors' length, once the model is loaded (None before)."""
        return self._llama.n_embd() if self._llama is not None else None

    def _tokens(self, llama: Any, text: str) -> int:
        return len(llama.tokenize(text.encode("utf-8")))

    def _run(self, llama: Any, texts: list[str]) -> tuple[np.ndarray, int]:
        problems = [FieldProblem(f"input.{i}" if len(texts) > 1 else "input",
                                 f"is {n} tokens; the embedded embedder takes at most {self.n_ctx}")
                    for i, n in enumerate(self._tokens(llama, t) for t in texts) if n > self.n_ctx]
        if problems:
            raise InvalidRequest("Input too long", problems)
        rows, total = llama.embed(texts, normalize=False, truncate=False, return_count=True)
        matrix = np.asarray(rows, dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return matrix / np.where(norms == 0, 1, norms), int(total)

    async def embed_counted(self, texts: list[str], dimensions: int | None = None) -> tuple[np.ndarray, int]:
        async with self._lock:
            llama = await self._model()
            return await asyncio.to_thread(self._run, llama, texts)

    async def embed(self, texts: list[str]) -> np.ndarray:
        return (await self.embed_counted(texts))[0]

    def count_tokens(self, text: str) -> int | None:
        return self._tokens(self._llama, text) if self._llama is not None else None

    async def aclose(self) -> None:
        llama, self._llama = self._llama, None
        if llama is not None:
            await asyncio.to_thread(llama.close)


def from_config(config: "EmbeddedConfig", name: str) -> GGUFEmbedder:
    """The embedder over the embedded model's GGUF (``[embedded]``: ``model_path``, ``n_threads``,
    ``embedding_n_ctx``); nothing is loaded until the first request."""
    from hubbub.providers.embedded import find_default_model_file

    path = Path(config.model_path) if config.model_path else find_default_model_file()
    return GGUFEmbedder(path, name, n_ctx=config.embedding_n_ctx, n_threads=config.n_threads)
