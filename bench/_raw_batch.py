"""The physical limit of batched decoding: raw ``llama_decode`` of an n-sequence batch.

No sampling, no detokenizing, no Python per token beyond filling the batch: each
step feeds one token per sequence and asks for its logits, which is the least
work a batched decoder can do. The context is laid out exactly as hubbub's
(one KV stream per sequence, flash attention, same ``n_ctx`` per sequence,
``n_batch`` and threads), so the ratio against hubbub measures hubbub's own cost.
"""

from __future__ import annotations

import time
from pathlib import Path


class RawBatch:
    def __init__(self, path: Path, n_ctx: int, n_batch: int, n_threads: int, n_seq: int) -> None:
        import llama_cpp as lc
        from llama_cpp import _internals
        from llama_cpp._logger import set_verbose

        set_verbose(False)
        self.lc = lc
        self.n_seq = n_seq
        params = lc.llama_model_default_params()
        params.use_extra_bufts = False  # as the embedded provider: AMX matmul crashes on batched steps
        self.model = _internals.LlamaModel(path_model=str(path), params=params, verbose=False)
        params = lc.llama_context_default_params()
        params.n_ctx = n_ctx * n_seq
        params.n_batch = params.n_ubatch = n_batch
        params.n_seq_max = n_seq
        params.n_threads = params.n_threads_batch = n_threads
        params.kv_unified = False
        params.flash_attn_type = lc.LLAMA_FLASH_ATTN_TYPE_ENABLED
        params.no_perf = True
        self.ctx = _internals.LlamaContext(model=self.model, params=params, verbose=False)
        self.batch = lc.llama_batch_init(max(n_batch, n_seq), 0, 1)

    def _add(self, token: int, pos: int, seq: int, logits: bool) -> None:
        b = self.batch
        i = b.n_tokens
        b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = token, pos, 1, logits
        b.seq_id[i][0] = seq
        b.n_tokens = i + 1

    def decode_rate(self, prompt: list[int], steps: int, n_seq: int | None = None) -> float:
        """Tokens/s of ``steps`` decode steps of ``n_seq`` sequences after a (timed-out) prefill."""
        lc, n_seq = self.lc, n_seq or self.n_seq
        lc.llama_memory_clear(lc.llama_get_memory(self.ctx.ctx), True)
        for seq in range(n_seq):  # prefill each sequence on its own: only the decode steps are timed
            self.batch.n_tokens = 0
            for pos, token in enumerate(prompt):
                self._add(token, pos, seq, pos == len(prompt) - 1)
            if lc.llama_decode(self.ctx.ctx, self.batch) != 0:
                raise RuntimeError("prefill failed")
        pos = len(prompt)
        start = time.perf_counter()
        for step in range(steps):
            self.batch.n_tokens = 0
            for seq in range(n_seq):
                self._add(1000 + (step * 7 + seq) % 5000, pos, seq, True)
            if lc.llama_decode(self.ctx.ctx, self.batch) != 0:
                raise RuntimeError("decode failed")
            pos += 1
        return n_seq * steps / (time.perf_counter() - start)

    def close(self) -> None:
        self.lc.llama_batch_free(self.batch)
        self.ctx.close()
        self.model.close()
