"""What a gateway adds: hubbub and LiteLLM's proxy in front of the same fast upstream.

One run, one process tree:

* the upstream: ``bench/fast_upstream.py`` (a raw asyncio server answering a fixed
  answer of ``--tokens`` tokens at once), in its own process;
* hubbub: a real ``hubbub serve`` (temporary data dir, SQLite, no API keys, the
  embedded model disabled), its ``hubbub.toml`` declaring one model ``bench``
  served by that upstream through a ``[[providers]]`` entry;
* LiteLLM: its proxy (``litellm --config``, one worker) with one model ``bench``
  pointing at the same upstream, installed by this script into
  ``bench/.venv-litellm`` (reused when present; ``--no-litellm`` skips it);
* the load generator: a process of its own (so it shares no GIL with anything),
  a minimal keep-alive HTTP/1.1 client on uvloop + httptools, one connection per
  concurrent worker, like ``wrk``.

The same ``POST .../chat/completions`` body goes to the three targets, whole
and streamed (``stream_options.include_usage``). Measured:

* latency at concurrency 1 (request sent → last byte), p50 and p99, and the
  *added* latency, through − direct, per percentile; the targets are measured in
  interleaved blocks (direct, hubbub, LiteLLM, direct, …) so a busy moment of the
  machine hits all of them alike;
* throughput at concurrency ``--concurrency`` (64): completed requests per second
  over ``--duration`` seconds, rounds interleaved the same way, the median round
  quoted; also each server's CPU time per request (utime + stime of its process
  tree / requests), which a busy machine disturbs much less than wall time.

Targets (issue 4): hubbub's added p50 ≤ 1 ms at concurrency 1, and its throughput
≥ 5× LiteLLM's at concurrency 64. ``--check`` exits 1 when a target is missed.

    .venv/bin/python bench/overhead.py
    .venv/bin/python bench/overhead.py --json overhead.json --plot docs/img/overhead.png
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fast_upstream  # noqa: E402
from _common import CpuMeter, HubbubServer, LoadProcess, free_port  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
LITELLM_VENV = BENCH_DIR / ".venv-litellm"
MODEL = "bench"
PROMPT = "Say something about foxes."
MODES = ("json", "stream")  # non-streaming, streaming


def request_body(stream: bool) -> bytes:
    body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    return orjson.dumps(body)


# -- the load generator (runs in its own process) ---------------------------------------------------


class _Conn(asyncio.Protocol):
    """One keep-alive connection; ``request`` sends prebuilt bytes and waits for the whole answer."""

    def __init__(self) -> None:
        import httptools

        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.body: list[bytes] = []
        self.first_byte = 0.0
        self.keep_alive = True
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except Exception as exc:
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed"))

    def on_headers_complete(self) -> None:
        # Asked here: once the message is complete the parser has reset and always says False.
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        if not self.body:
            self.first_byte = time.perf_counter()
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def request(self, raw: bytes) -> tuple[int, bytes, float]:
        assert self.transport is not None
        self.body = []
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        await self.waiter
        status = self.parser.get_status_code()
        if not self.keep_alive:
            self.transport.close()
            self.closed = True
        return status, b"".join(self.body), self.first_byte


async def _connect(host: str, port: int) -> _Conn:
    _, proto = await asyncio.get_running_loop().create_connection(_Conn, host, port)
    return proto


def _raw_request(host: str, port: int, path: str, body: bytes | None) -> bytes:
    if body is None:
        return f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer sk-bench\r\n\r\n".encode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer sk-bench\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def _looks_complete(status: int, body: bytes, stream: bool) -> bool:
    if status != 200:
        return False
    if stream is None:  # a GET (diagnostics): any 200
        return True
    if stream:
        return body.endswith(b"data: [DONE]\n\n") or body.rstrip().endswith(b"[DONE]")
    return b'"content"' in body


async def _run_job(job: dict[str, Any]) -> dict[str, Any]:
    """``latency``: ``count`` requests one after another; ``throughput``: ``concurrency`` workers
    for ``duration`` seconds (after ``warmup`` seconds not counted)."""
    host, port, path, stream = job["host"], job["port"], job["path"], job["stream"]
    raw = _raw_request(host, port, path, None if stream is None else request_body(stream))
    if job["kind"] == "latency":
        conn = await _connect(host, port)
        latencies, ttfts, errors = [], [], 0
        for _ in range(job["count"]):
            if conn.closed:
                conn = await _connect(host, port)
            t0 = time.perf_counter()
            status, body, first = await conn.request(raw)
            t1 = time.perf_counter()
            if _looks_complete(status, body, stream):
                latencies.append((t1 - t0) * 1000.0)
                ttfts.append((first - t0) * 1000.0)
            else:
                errors += 1
        if conn.transport is not None:
            conn.transport.close()
        return {"latencies_ms": latencies, "ttft_ms": ttfts, "errors": errors}

    concurrency, duration, warmup = job["concurrency"], job["duration"], job["warmup"]
    conns = await asyncio.gather(*(_connect(host, port) for _ in range(concurrency)))
    loop = asyncio.get_running_loop()
    t_start = loop.time() + warmup
    t_end = t_start + duration
    done, errors = [0], [0]
    latencies: list[float] = []

    async def worker(conn: _Conn) -> None:
        while True:
            now = loop.time()
            if now >= t_end:
                break
            if conn.closed:
                conn = await _connect(host, port)
            t0 = time.perf_counter()
            try:
                status, body, _ = await conn.request(raw)
            except ConnectionError:
                errors[0] += 1
                continue
            t1 = time.perf_counter()
            finished = loop.time()
            if t_start <= finished < t_end:
                if _looks_complete(status, body, stream):
                    done[0] += 1
                    latencies.append((t1 - t0) * 1000.0)
                else:
                    errors[0] += 1

    await asyncio.gather(*(worker(c) for c in conns))
    for c in conns:
        if c.transport is not None:
            c.transport.close()
    return {"completed": done[0], "errors": errors[0], "seconds": duration,
            "rps": done[0] / duration, "latencies_ms": latencies}


# -- the targets ---------------------------------------------------------------------------------------


class Target:
    def __init__(self, name: str, base: str, path: str, pids: list[int]) -> None:
        self.name, self.path, self.pids = name, path, pids
        url = httpx.URL(base)
        self.base, self.host, self.port = base, url.host, url.port

    def cpu_seconds(self) -> float:
        """utime + stime of the target's processes and their children (LiteLLM's workers)."""
        total = 0.0
        tick = os.sysconf("SC_CLK_TCK")
        for pid in _tree(self.pids):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick
            except (OSError, IndexError, ValueError):
                pass
        return total


def _tree(pids: list[int]) -> list[int]:
    """``pids`` and all their descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def hubbub_config(upstream_base: str) -> str:
    return f"""\
default_model = "{MODEL}"

[embedded]
enabled = false            # upstream models only: nothing else competes for the cores

[[providers]]
name = "fast"
base_url = "{upstream_base}"

[[models]]
id = "{MODEL}"
provider = "fast"
upstream_model = "fast-upstream"
context_length = 8192
"""


def litellm_python() -> Path:
    return LITELLM_VENV / "bin" / "python"


def ensure_litellm() -> Path:
    """``litellm[proxy]`` in its own venv (never in hubbub's: its pins would fight hubbub's)."""
    exe = LITELLM_VENV / "bin" / "litellm"
    if exe.exists():
        return exe
    print(f"installing litellm[proxy] into {LITELLM_VENV} (once)…", flush=True)
    base = shutil.which("python3.11") or sys.executable
    subprocess.run([base, "-m", "venv", str(LITELLM_VENV)], check=True)
    subprocess.run([str(litellm_python()), "-m", "pip", "install", "-q", "litellm[proxy]"], check=True)
    return exe


class LiteLLMProxy:
    def __init__(self, upstream_base: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._tmp = tempfile.TemporaryDirectory(prefix="litellm-bench-")
        config = Path(self._tmp.name) / "config.yaml"
        config.write_text(
            "model_list:\n"
            f"  - model_name: {MODEL}\n"
            "    litellm_params:\n"
            "      model: openai/fast-upstream\n"
            f"      api_base: {upstream_base}\n"
            "      api_key: sk-bench\n"
            "litellm_settings:\n"
            "  telemetry: false\n"
        )
        self.log_path = Path(self._tmp.name) / "litellm.log"
        self._log = open(self.log_path, "wb")
        env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR",
               "LITELLM_TELEMETRY": "False", "DISABLE_SCHEMA_UPDATE": "True",
               # no master key, like hubbub here with no API keys: neither side authenticates
               "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true"}
        for name in ("DATABASE_URL", "LITELLM_MASTER_KEY", "OPENAI_API_KEY"):
            env.pop(name, None)
        self.proc = subprocess.Popen(
            [str(ensure_litellm()), "--config", str(config), "--host", "127.0.0.1", "--port", str(self.port),
             "--num_workers", "1"],
            stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=self._tmp.name,
            preexec_fn=fast_upstream._die_with_parent,
        )
        deadline = time.monotonic() + 180
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"litellm exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + "/health/liveliness", timeout=2.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"litellm not ready after 180 s:\n{self.log_tail()}")
            time.sleep(0.3)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                for pid in reversed(_tree([self.proc.pid])):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                self.proc.wait()
        self._log.close()
        self._tmp.cleanup()


def check_answer(target: Target, tokens: int) -> None:
    """One request of each kind, parsed in full: the benchmark measures real answers, not errors."""
    expected = "".join(fast_upstream.WORDS[i % len(fast_upstream.WORDS)] for i in range(tokens))
    url = f"{target.base}{target.path}"
    r = httpx.post(url, content=request_body(False), headers={"Content-Type": "application/json"}, timeout=30)
    r.raise_for_status()
    text = r.json()["choices"][0]["message"]["content"]
    if text != expected:
        raise RuntimeError(f"{target.name}: unexpected answer {text!r}")
    parts, usage = [], None
    with httpx.stream("POST", url, content=request_body(True), headers={"Content-Type": "application/json"},
                      timeout=30) as resp:
        resp.raise_for_status()
        for line in resp.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                obj = json.loads(line[6:])
                for choice in obj.get("choices") or ():
                    parts.append((choice.get("delta") or {}).get("content") or "")
                usage = obj.get("usage") or usage
    if "".join(parts) != expected or not usage:
        raise RuntimeError(f"{target.name}: unexpected stream {''.join(parts)!r}, usage {usage}")


# -- measuring -----------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def measure(targets: list[Target], load: LoadProcess, args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {t.name: {} for t in targets}
    for mode in MODES:
        stream = mode == "stream"
        for t in targets:  # warm-up: connections, caches, JITs of the interpreters' own kind
            load.run(kind="latency", host=t.host, port=t.port, path=t.path, stream=stream, count=args.warmup)
            load.run(kind="throughput", host=t.host, port=t.port, path=t.path, stream=stream,
                     concurrency=args.concurrency, duration=1.0, warmup=0.5)
        lat: dict[str, list[float]] = {t.name: [] for t in targets}
        ttft: dict[str, list[float]] = {t.name: [] for t in targets}
        errors = {t.name: 0 for t in targets}
        block = max(1, args.requests // args.rounds)
        for _ in range(args.rounds):
            for t in targets:
                r = load.run(kind="latency", host=t.host, port=t.port, path=t.path, stream=stream, count=block)
                lat[t.name] += r["latencies_ms"]
                ttft[t.name] += r["ttft_ms"]
                errors[t.name] += r["errors"]
        rps: dict[str, list[float]] = {t.name: [] for t in targets}
        lat64: dict[str, list[float]] = {t.name: [] for t in targets}
        cpu: dict[str, list[float]] = {t.name: [] for t in targets}
        for _ in range(args.rounds_c64):
            for t in targets:
                before = t.cpu_seconds()
                r = load.run(kind="throughput", host=t.host, port=t.port, path=t.path, stream=stream,
                             concurrency=args.concurrency, duration=args.duration, warmup=0.5)
                used = t.cpu_seconds() - before
                rps[t.name].append(r["rps"])
                lat64[t.name] += r["latencies_ms"]
                errors[t.name] += r["errors"]
                # CPU over warm-up + measured window, per request of the measured window (an upper bound)
                cpu[t.name].append(used * 1000.0 / max(1, r["completed"]) * args.duration / (args.duration + 0.5))
        for t in targets:
            results[t.name][mode] = {
                "c1": {"n": len(lat[t.name]), "p50_ms": pct(lat[t.name], 50), "p99_ms": pct(lat[t.name], 99),
                       "mean_ms": statistics.fmean(lat[t.name]) if lat[t.name] else float("nan"),
                       "ttft_p50_ms": pct(ttft[t.name], 50)},
                f"c{args.concurrency}": {"rps_median": statistics.median(rps[t.name]), "rps_rounds": rps[t.name],
                                         "p50_ms": pct(lat64[t.name], 50), "p99_ms": pct(lat64[t.name], 99),
                                         "cpu_ms_per_request": statistics.median(cpu[t.name])},
                "errors": errors[t.name],
            }
    return results


def summarize(results: dict[str, Any], concurrency: int) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    direct = results["direct"]
    for name in results:
        if name == "direct":
            continue
        for mode in MODES:
            c1, d1 = results[name][mode]["c1"], direct[mode]["c1"]
            summary[f"{name}_{mode}_added_p50_ms"] = c1["p50_ms"] - d1["p50_ms"]
            summary[f"{name}_{mode}_added_p99_ms"] = c1["p99_ms"] - d1["p99_ms"]
    if "litellm" in results:
        for mode in MODES:
            key = f"c{concurrency}"
            summary[f"throughput_ratio_{mode}"] = (
                results["hubbub"][mode][key]["rps_median"] / results["litellm"][mode][key]["rps_median"])
    return summary


def print_table(results: dict[str, Any], summary: dict[str, Any], concurrency: int) -> None:
    key = f"c{concurrency}"
    head = (f"{'target':<8} {'mode':<6} | {'p50 ms':>7} {'p99 ms':>7} {'+p50 ms':>8} {'+p99 ms':>8} | "
            f"{'req/s c' + str(concurrency):>10} {'p50 ms':>7} {'p99 ms':>7} {'cpu ms/req':>10} | err")
    print(head)
    print("-" * len(head))
    for mode in MODES:
        for name, res in results.items():
            r = res[mode]
            added50 = summary.get(f"{name}_{mode}_added_p50_ms")
            added99 = summary.get(f"{name}_{mode}_added_p99_ms")
            fmt = (lambda v: f"{v:8.2f}" if v is not None else f"{'':>8}")
            print(f"{name:<8} {mode:<6} | {r['c1']['p50_ms']:7.2f} {r['c1']['p99_ms']:7.2f} {fmt(added50)} "
                  f"{fmt(added99)} | {r[key]['rps_median']:10.0f} {r[key]['p50_ms']:7.1f} {r[key]['p99_ms']:7.1f} "
                  f"{r[key]['cpu_ms_per_request']:10.2f} | {r['errors']}")
    print()
    for mode in MODES:
        line = f"{mode:<6}: hubbub added p50 {summary[f'hubbub_{mode}_added_p50_ms']:.2f} ms " \
               f"(p99 {summary[f'hubbub_{mode}_added_p99_ms']:.2f} ms)"
        if f"litellm_{mode}_added_p50_ms" in summary:
            line += f", LiteLLM added p50 {summary[f'litellm_{mode}_added_p50_ms']:.2f} ms"
        if f"throughput_ratio_{mode}" in summary:
            line += f"; throughput hubbub/LiteLLM at c{concurrency}: {summary[f'throughput_ratio_{mode}']:.1f}x"
        print(line)


def targets_met(summary: dict[str, Any]) -> bool:
    ok = all(summary[f"hubbub_{m}_added_p50_ms"] <= 1.0 for m in MODES)
    if "throughput_ratio_json" in summary:
        ok = ok and all(summary[f"throughput_ratio_{m}"] >= 5.0 for m in MODES)
    return ok


def plot(results: dict[str, Any], summary: dict[str, Any], concurrency: int, path: Path, note: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in ("direct", "hubbub", "litellm") if n in results]
    colors = {"direct": "#9e9e9e", "hubbub": "#2e7d32", "litellm": "#c62828"}
    labels = {"direct": "direct upstream", "hubbub": "hubbub", "litellm": "LiteLLM proxy"}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        xs = [m + (i - (len(names) - 1) / 2) * width for m in range(len(MODES))]
        p50 = [results[name][m]["c1"]["p50_ms"] for m in MODES]
        p99 = [results[name][m]["c1"]["p99_ms"] for m in MODES]
        ax1.bar(xs, p50, width, color=colors[name], label=labels[name])
        ax1.scatter(xs, p99, marker="_", s=300, color="black", zorder=3, label="p99" if i == 0 else None)
        for x, v in zip(xs, p50):
            ax1.annotate(f"{v:.2f}", (x, v), ha="center", va="top", fontsize=8, color="white"
                         if name != "direct" else "black", xytext=(0, -2), textcoords="offset points")
        rps = [results[name][m][f"c{concurrency}"]["rps_median"] for m in MODES]
        ax2.bar(xs, rps, width, color=colors[name], label=labels[name])
        for x, v in zip(xs, rps):
            ax2.annotate(f"{v:.0f}", (x, v), ha="center", va="bottom", fontsize=8)
    added = ", ".join(f"{'streaming' if m == 'stream' else 'non-streaming'} +{summary[f'hubbub_{m}_added_p50_ms']:.2f} ms"
                      for m in MODES)
    ax1.set_xlabel(f"hubbub's added p50: {added}", fontsize=8)
    if "throughput_ratio_json" in summary:
        ratios = ", ".join(f"{summary[f'throughput_ratio_{m}']:.1f}x" for m in MODES)
        ax2.set_xlabel(f"hubbub / LiteLLM: {ratios}", fontsize=8)
    for ax in (ax1, ax2):
        ax.set_xticks(range(len(MODES)), ["non-streaming", "streaming"])
        ax.set_yscale("log")  # the direct upstream is orders of magnitude away from both gateways
        ax.grid(axis="y", alpha=0.3, which="both")
    ax1.set_ylabel("ms, log scale (bar p50, tick p99)")
    ax1.set_title("Latency at concurrency 1")
    ax1.legend(fontsize=8)
    ax2.set_ylabel("requests / s, log scale")
    ax2.set_title(f"Throughput at concurrency {concurrency}")
    fig.suptitle(note, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description="Gateway overhead: direct upstream vs hubbub vs LiteLLM's proxy.")
    parser.add_argument("--tokens", type=int, default=16, help="tokens in the upstream's answer (default 16)")
    parser.add_argument("--requests", type=int, default=1000, help="requests per target and mode at concurrency 1")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved blocks the concurrency-1 requests split into")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per throughput round")
    parser.add_argument("--rounds-c64", type=int, default=3, help="interleaved throughput rounds per target and mode")
    parser.add_argument("--warmup", type=int, default=200, help="warm-up requests per target and mode")
    parser.add_argument("--no-litellm", action="store_true", help="only direct vs hubbub")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--plot", type=Path, help="write a PNG chart here (matplotlib)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target of the issue is missed")
    args = parser.parse_args()

    upstream, base = fast_upstream.start(tokens=args.tokens)
    load: LoadProcess | None = None
    hubbub: HubbubServer | None = None
    litellm: LiteLLMProxy | None = None
    try:
        hubbub = HubbubServer(config=hubbub_config(base), env={"HUBBUB_EMBEDDED__ENABLED": "false"})
        hubbub.__enter__()
        targets = [
            Target("direct", base.removesuffix("/v1"), "/v1/chat/completions", [upstream.pid]),
            Target("hubbub", hubbub.url, "/v1/chat/completions", [hubbub.proc.pid]),  # type: ignore[union-attr]
        ]
        if not args.no_litellm:
            litellm = LiteLLMProxy(base)
            targets.append(Target("litellm", litellm.url, "/v1/chat/completions", [litellm.proc.pid]))
        for t in targets:
            check_answer(t, args.tokens)
        load = LoadProcess(_run_job)
        print(f"upstream {base} ({args.tokens} tokens), hubbub {hubbub.url}"
              + (f", LiteLLM {litellm.url}" if litellm else "") + f"; {os.cpu_count()} CPUs", flush=True)
        ours = _tree([os.getpid()])  # this process, the servers, the upstream, the load generator
        meter = CpuMeter(ours)
        results = measure(targets, load, args)
        busy = meter.foreign()
    finally:
        if load is not None:
            load.close()
        if litellm is not None:
            litellm.stop()
        if hubbub is not None:
            hubbub.stop()
        fast_upstream.stop(upstream)

    summary = summarize(results, args.concurrency)
    print()
    print_table(results, summary, args.concurrency)
    met = targets_met(summary)
    print(f"targets (added p50 <= 1 ms; throughput >= 5x LiteLLM): {'met' if met else 'MISSED'}")
    print(f"other processes used {busy:.0%} of the machine during the run")
    meta = {"tokens": args.tokens, "concurrency": args.concurrency, "cpus": os.cpu_count(),
            "python": sys.version.split()[0], "date": time.strftime("%Y-%m-%d"),
            "others_cpu_share": round(busy, 3)}
    if litellm is not None:
        try:
            out = subprocess.run([str(litellm_python()), "-c", "import importlib.metadata as m;"
                                  "print(m.version('litellm'))"], capture_output=True, text=True, timeout=60)
            meta["litellm"] = out.stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            pass
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "results": results, "summary": summary}, indent=2))
        print(f"json: {args.json}")
    if args.plot:
        note = (f"fast upstream, {args.tokens}-token answer; {os.cpu_count()} CPUs, one process per server"
                + (f"; LiteLLM {meta.get('litellm')}" if "litellm" in meta else ""))
        plot(results, summary, args.concurrency, args.plot, note)
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
