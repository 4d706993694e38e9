"""Continuous batching for the embedded model.

One decode thread owns the llama.cpp context. Every step it builds one batch
(``llama_batch``) holding the next token of every decoding sequence plus chunks
of the prompts still being read, calls ``llama_decode`` once, then samples each
sequence's token with that sequence's own sampler chain. Requests join at the
next step and leave the moment they finish or are cancelled; the others never
notice, since each sequence has its own positions and its own cells in the
(unified) KV cache.

Each sequence has its own stream of the KV cache (``kv_unified = false``) and
flash attention is on: with that layout a sequence's arithmetic does not depend on
what else is in the batch, so at temperature 0 a request gets token for token the
answer it would get alone (a unified cache interleaves sequences' cells, which
changes the order of float sums and, measured here, the answer of 5 in 8 prompts).

Shared prefixes: a finished sequence stays *parked* in its stream. A new request
whose prompt starts like a parked sequence — the earlier turns of a conversation,
a bot's system prompt — takes that stream over and reads only the rest of its
prompt. When the best match is a running sequence (or a parked one already
taken), and the shared part is long (``COPY_MIN_PREFIX``), its stream is copied
(``llama_memory_seq_cp``: a buffer copy, cheaper than recomputing that many
tokens). Parked streams are reused least recently used first.

Cancellation is checked every step; while a step reads a long prompt, llama.cpp's
abort callback (polled between graph nodes) stops it at once if every sequence in
that step has been cancelled.

Thread safety: ``submit`` may be called from any thread; everything else runs on
the decode thread. A job's events are buffered during a step and handed to the
event loop once per step for all jobs (one ``call_soon_threadsafe``, not one per
token per stream): every wake-up of the event loop takes a core from llama.cpp's
threads mid-step, which measured as a third of batched throughput.
"""

from __future__ import annotations

import asyncio
import codecs
import collections
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from hubbub.core.events import Finish, TextDelta, UsageReport
from hubbub.core.types import FinishReason, TokenLogprob, TopLogprob, Usage
from hubbub.errors import UpstreamError
from hubbub.providers.sampling import SamplerChain
from hubbub.providers.stops import StopMatcher

log = logging.getLogger(__name__)

END = object()  # the last item a job emits
MIN_SHARED_PREFIX = 16  # tokens: below this a parked stream is not worth keeping
COPY_MIN_PREFIX = 256  # tokens: a shared prefix at least this long is copied rather than recomputed
ABORTABLE_PREFILL = 32  # tokens of prompt in a step above which the abort callback is installed


@dataclass(eq=False)
class Job:
    """One request: its prompt, budget, sampler and where its events go."""

    prompt: list[int]
    budget: int  # tokens it may generate
    sampler: SamplerChain
    stops: list[str]
    cancel: threading.Event
    loop: asyncio.AbstractEventLoop  # where the events go: ``queue`` is read there
    queue: asyncio.Queue[object]
    # Whether its prompt may start from cached cells. A seeded request reads its whole prompt:
    # a reused prefix leaves the last prompt token's logits computed in another shape of batch,
    # which moves them in the last bits, enough to change what a seeded sampler draws (the
    # same seed must give the same answer, whatever the cache held before).
    reuse: bool = True
    # -- decode-thread state ----------------------------------------------------
    seq_id: int = -1
    kv: list[int] = field(default_factory=list)  # tokens whose cells are in the cache
    pending: list[int] = field(default_factory=list)  # tokens to evaluate next; the last one gets logits
    generated: int = 0
    _stop: StopMatcher | None = None
    _utf8: Any = None
    _out: list[object] = field(default_factory=list)  # events of this step, not yet delivered
    _logprobs: list[TokenLogprob] = field(default_factory=list)  # of tokens whose text is held back

    def __post_init__(self) -> None:
        self.pending = list(self.prompt)
        self._stop = StopMatcher(self.stops)
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")


class BatchEngine:
    """The decode thread and its scheduler. ``close`` stops it and fails what is left."""

    def __init__(
        self,
        ctx: Any,
        vocab: Any,
        *,
        n_batch: int,
        max_sequences: int,
        token_piece: Callable[[int], bytes],
    ) -> None:
        import llama_cpp as lc

        self._lc = lc
        self._ctx = ctx
        self._mem = lc.llama_get_memory(ctx)
        # End-of-generation tokens, looked up once: a C call per token costs a GIL round trip.
        self._eog = frozenset(t for t in range(lc.llama_vocab_n_tokens(vocab)) if lc.llama_vocab_is_eog(vocab, t))
        self._piece = token_piece
        self._n_batch = n_batch
        self.max_sequences = max_sequences
        self._batch = lc.llama_batch_init(n_batch, 0, 1)
        self._inbox: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._waiting: collections.deque[Job] = collections.deque()
        self._active: list[Job] = []  # in admission order
        # Idle streams that still hold a finished sequence's cells: seq id → its tokens, LRU first.
        self._parked: collections.OrderedDict[int, list[int]] = collections.OrderedDict()
        self._free_ids = list(range(max_sequences - 1, -1, -1))
        self._step_jobs: list[Job] = []
        self._outgoing: list[Job] = []  # jobs that emitted since the last delivery
        self._abort_cb = lc.ggml_abort_callback(self._should_abort)
        self._no_abort_cb = lc.ggml_abort_callback()
        self._closed = False
        # Observability (tests, /metrics): is anything decoding, when did a job last end, how many wait.
        self.busy = False
        self.last_finished_at = 0.0
        self.steps = 0
        self.reused_tokens = 0
        self._thread = threading.Thread(target=self._run, name="hubbub-llama", daemon=True)
        self._thread.start()

    # -- any thread ---------------------------------------------------------------

    def submit(self, job: Job) -> None:
        self.busy = True
        self._inbox.put(job)

    def close(self, timeout: float = 5.0) -> None:
        if self._closed:
            return
        self._closed = True
        self._inbox.put(None)
        self._thread.join(timeout)

    @property
    def waiting(self) -> int:
        """Requests not yet given a sequence (the queue depth)."""
        return self._inbox.qsize() + len(self._waiting)

    @property
    def running(self) -> int:
        return len(self._active)

    # -- decode thread ------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                if not self._active and not self._waiting:
                    self.busy = False
                    item = self._inbox.get()
                    if item is None:
                        break
                    self.busy = True
                    self._waiting.append(item)
                if not self._drain_inbox():
                    break
                self._drop_cancelled()
                self._admit()
                if self._active:
                    self._step()
                self._deliver()
        except Exception:  # never leave requests hanging on a dead thread
            log.exception("embedded decode loop failed")
        finally:
            for job in [*self._active, *self._waiting]:
                self._emit(job, UpstreamError("The embedded model stopped"))
                self._end(job, None)
            self._active.clear()
            self._waiting.clear()
            self._deliver()
            self._lc.llama_batch_free(self._batch)
            self.busy = False

    def _emit(self, job: Job, item: object) -> None:
        if not job._out:
            self._outgoing.append(job)
        job._out.append(item)

    def _deliver(self) -> None:
        """Hand this step's events to their event loops: one wake-up per loop."""
        batches: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Queue[object], list[object]]]] = {}
        for job in self._outgoing:
            if job._out:
                batches.setdefault(job.loop, []).append((job.queue, job._out))
                job._out = []
        self._outgoing.clear()
        for loop, items in batches.items():
            try:
                loop.call_soon_threadsafe(_put_all, items)
            except RuntimeError:  # that event loop is gone (shutdown): its requests stop
                for job in [*self._active, *self._waiting]:
                    if job.loop is loop:
                        job.cancel.set()

    def _drain_inbox(self) -> bool:
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return True
            if item is None:
                return False
            self._waiting.append(item)

    def _drop_cancelled(self) -> None:
        for job in [j for j in self._active if j.cancel.is_set()]:
            self._finish(job, "cancelled")
        if any(j.cancel.is_set() for j in self._waiting):
            for job in [j for j in self._waiting if j.cancel.is_set()]:
                self._waiting.remove(job)
                self._finish(job, "cancelled")

    def _admit(self) -> None:
        while self._waiting and len(self._active) < self.max_sequences:
            job = self._waiting.popleft()
            if job.budget <= 0:
                self._finish(job, "length")
                continue
            self._attach_prefix(job)
            self._active.append(job)

    def _attach_prefix(self, job: Job) -> None:
        """Give ``job`` a stream next to the running ones, reusing the longest cached prefix.

        llama.cpp evaluates separate KV streams in one ubatch only when the sequence ids are
        consecutive (otherwise it splits the step: measured 36 -> 69 ms), so a request gets the
        lowest id that keeps the running ids contiguous, or a parked stream in such a place
        whose tokens start like its prompt."""
        tokens = job.pending
        limit = len(tokens) - 1 if job.reuse else 0  # at least one token must be evaluated, for its logits
        allowed = self._contiguous_ids()
        parked_len, parked_id = 0, -1
        best_len, best_src = 0, -1
        for seq_id, kv in self._parked.items():
            n = min(_common_prefix(kv, tokens), limit)
            if seq_id in allowed and n > parked_len:
                parked_len, parked_id = n, seq_id
            if n > best_len:
                best_len, best_src = n, seq_id
        for other in self._active:
            n = min(_common_prefix(other.kv, tokens), limit)
            if n > best_len:
                best_len, best_src = n, other.seq_id
        lc, mem = self._lc, self._mem
        if parked_len >= MIN_SHARED_PREFIX and parked_len + COPY_MIN_PREFIX > best_len:
            # Take the parked stream over: drop what differs, keep the shared cells.
            self._parked.pop(parked_id)
            lc.llama_memory_seq_rm(mem, parked_id, parked_len, -1)
            job.seq_id, reused = parked_id, parked_len
        else:
            job.seq_id, reused = self._take_id(allowed, keep=best_src), 0
            if best_len >= COPY_MIN_PREFIX:
                # Streams are separate buffers: llama.cpp copies a whole stream, then we trim it.
                lc.llama_memory_seq_cp(mem, best_src, job.seq_id, -1, -1)
                lc.llama_memory_seq_rm(mem, job.seq_id, best_len, -1)
                reused = best_len
        job.kv = tokens[:reused]
        job.pending = tokens[reused:]
        self.reused_tokens += reused

    def _contiguous_ids(self) -> set[int]:
        """Ids a new sequence may take so that the running ids stay one contiguous range."""
        running = {job.seq_id for job in self._active}
        if not running:
            return set(range(self.max_sequences))
        low, high = min(running), max(running)
        inside = {i for i in range(low, high + 1) if i not in running}
        if inside:  # fill a hole first
            return inside
        return {i for i in (low - 1, high + 1) if 0 <= i < self.max_sequences}

    def _take_id(self, allowed: set[int], keep: int = -1) -> int:
        """The lowest allowed stream that holds nothing, else the least recently used parked one."""
        free = sorted(i for i in self._free_ids if i in allowed)
        if free:
            self._free_ids.remove(free[0])
            return free[0]
        candidates = [i for i in self._parked if i in allowed and i != keep] or [i for i in self._parked if i in allowed]
        victim = candidates[0]
        del self._parked[victim]
        self._lc.llama_memory_seq_rm(self._mem, victim, -1, -1)
        return victim

    def _release(self, job: Job) -> None:
        """Park ``job``'s cells in its stream for later prefix hits, or drop them."""
        if job.seq_id < 0:
            return
        seq_id, job.seq_id = job.seq_id, -1
        if len(job.kv) >= MIN_SHARED_PREFIX:
            self._parked[seq_id] = job.kv
        else:
            self._lc.llama_memory_seq_rm(self._mem, seq_id, -1, -1)
            self._free_ids.append(seq_id)

    def _step(self) -> None:
        lc, b = self._lc, self._batch
        n = 0
        outputs: list[tuple[Job, int]] = []
        taken: list[tuple[Job, int]] = []
        prefill = 0
        # Decoding sequences first (one token each), then prompt chunks in the room left.
        # In seq-id order: llama.cpp splits a batch of separate KV streams into equal ubatches of
        # *consecutive* sequences, so out-of-order ids cost extra ubatches (measured: 36 -> 69 ms a step).
        for job in sorted(self._active, key=lambda j: (len(j.pending) > 1, j.seq_id)):
            room = self._n_batch - n
            if room <= 0:
                break
            take = min(len(job.pending), room)
            pos = len(job.kv)
            last = take == len(job.pending)
            for k in range(take):
                b.token[n] = job.pending[k]
                b.pos[n] = pos + k
                b.n_seq_id[n] = 1
                b.seq_id[n][0] = job.seq_id
                b.logits[n] = False
                n += 1
            if last:
                b.logits[n - 1] = True
                outputs.append((job, n - 1))
            if take > 1:
                prefill += take
            taken.append((job, take))
        b.n_tokens = n
        self._step_jobs = [job for job, _ in taken]
        abortable = prefill >= ABORTABLE_PREFILL
        if abortable:
            lc.llama_set_abort_callback(self._ctx, self._abort_cb, None)
        try:
            rc = lc.llama_decode(self._ctx, b)
        finally:
            if abortable:
                lc.llama_set_abort_callback(self._ctx, self._no_abort_cb, None)
        self.steps += 1
        if rc == 1:  # no room in the KV cache for this batch
            self._no_room(taken)
            return
        if rc == 2:  # aborted: every sequence in it was cancelled; drop any cells it did write
            for job, _ in taken:
                lc.llama_memory_seq_rm(self._mem, job.seq_id, len(job.kv), -1)
            return
        if rc != 0:
            for job, _ in taken:
                self._emit(job, UpstreamError("Model error", details=f"llama_decode returned {rc}"))
                lc.llama_memory_seq_rm(self._mem, job.seq_id, len(job.kv), -1)
                self._end(job, None)
            return
        for job, take in taken:
            job.kv.extend(job.pending[:take])
            del job.pending[:take]
        for job, index in outputs:
            self._on_token(job, job.sampler.sample(self._ctx, index))

    def _should_abort(self, _data: object) -> bool:
        jobs = self._step_jobs
        return bool(jobs) and all(job.cancel.is_set() for job in jobs)

    def _no_room(self, taken: list[tuple[Job, int]]) -> None:
        """``llama_decode`` found no room: cannot happen while budgets keep each sequence
        within its stream; end the requests of this step rather than loop."""
        log.error("llama_decode found no KV room for a step of %d sequences", len(taken))
        for job, _ in taken:
            self._lc.llama_memory_seq_rm(self._mem, job.seq_id, len(job.kv), -1)
            self._finish(job, "length")

    def _on_token(self, job: Job, token: int) -> None:
        if job.cancel.is_set():
            self._finish(job, "cancelled")
            return
        if token in self._eog:
            self._finish(job, "stop")
            return
        job.generated += 1
        stop = job._stop
        piece = self._piece(token)
        if job.sampler.logprobs:
            job._logprobs.append(self._logprob(token, piece, job.sampler))
        out = stop.feed(job._utf8.decode(piece))  # type: ignore[union-attr]
        if out:
            self._emit(job, self._text(job, out))
        if stop.stopped:  # type: ignore[union-attr]
            self._finish(job, "stop")
        elif job.generated >= job.budget:
            self._finish(job, "length")
        else:
            job.pending = [token]

    @staticmethod
    def _text(job: Job, text: str) -> TextDelta:
        if not job._logprobs:
            return TextDelta(text)
        delta = TextDelta(text, logprobs=tuple(job._logprobs))
        job._logprobs.clear()
        return delta

    def _logprob(self, token: int, piece: bytes, sampler: SamplerChain) -> TokenLogprob:
        logprob, top = sampler.last or (0.0, [])
        alternatives = []
        for other, value in top:
            raw = self._piece(other)
            alternatives.append(TopLogprob(raw.decode("utf-8", errors="replace"), value, tuple(raw)))
        return TokenLogprob(piece.decode("utf-8", errors="replace"), logprob, tuple(piece), tuple(alternatives))

    def _finish(self, job: Job, reason: FinishReason) -> None:
        if reason != "cancelled":
            tail = job._stop.feed(job._utf8.decode(b"", final=True)) + job._stop.flush()  # type: ignore[union-attr]
            if tail:
                self._emit(job, self._text(job, tail))
        self._emit(job, UsageReport(Usage(len(job.prompt), job.generated)))
        self._emit(job, Finish(reason, stop_sequence=job._stop.matched if job._stop else None))
        self._end(job, job)

    def _end(self, job: Job, keep: Job | None) -> None:
        if job in self._active:
            self._active.remove(job)
        if keep is not None:
            self._release(job)
        elif job.seq_id >= 0:
            self._lc.llama_memory_seq_rm(self._mem, job.seq_id, -1, -1)
            self._free_ids.append(job.seq_id)
            job.seq_id = -1
        job.sampler.close()
        self._emit(job, END)
        self.last_finished_at = time.monotonic()


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    # Compare in slices first: cheap in C, and prompts share long prefixes or none.
    step = 64
    while i + step <= n and a[i : i + step] == b[i : i + step]:
        i += step
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _put_all(items: list[tuple[asyncio.Queue[object], list[object]]]) -> None:
    """On the event loop: queue each job's events of one step."""
    for events_queue, events in items:
        for event in events:
            events_queue.put_nowait(event)
