"""Many concurrent SSE streams through hubbub, against the same streams straight from the upstream.

One run, one process tree:

* the upstream: ``bench/fast_upstream.py`` in its own process, answering every request
  with the same ``--tokens`` tokens, ``--delay-ms`` apart (so streams overlap, as they do
  in front of a real model);
* hubbub: a real ``hubbub serve`` (temporary data dir, SQLite, no API keys, no per-user
  limits, the embedded model off), one model ``bench`` served by that upstream;
* the load client: a process of its own (no GIL shared with anything), raw asyncio
  sockets on uvloop with httptools, one connection per stream, which opens ``--streams``
  streaming ``POST /v1/chat/completions`` evenly over ``--ramp`` seconds and stamps the
  arrival of every token.

The same load runs twice, first straight at the upstream (``direct``), then through
hubbub; the parent samples hubbub's RSS and CPU time meanwhile. Reported:

* the most streams open at once (response headers in, ``[DONE]`` not yet), and errors
  (a failed connect, a status other than 200, a stream cut short or with an error event,
  a wrong token count): the target is every stream open together, with 0 errors;
* hubbub's RSS before the load (after warm-up requests) and at its peak, and the
  difference per open stream: the target is < 50 KB per stream (when hubbub lags behind
  the ramp, requests not answered yet hold memory too, so the figure is an overestimate);
* the gaps between consecutive tokens as the client sees them, p50 and p99, through
  hubbub and direct, their ratio and difference (the per-token latency hubbub adds,
  including its jitter under load); time to the first token likewise;
* hubbub's CPU time per token (utime + stime over the run / tokens delivered), which a
  busy machine disturbs much less than the latencies.

    .venv/bin/python bench/streams.py                      # 1000 streams, 64 tokens, 50 ms apart
    .venv/bin/python bench/streams.py --streams 2000 --json streams.json --plot docs/img/streams.png
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fast_upstream  # noqa: E402
from _common import HubbubServer, LoadProcess  # noqa: E402

MEMORY_TARGET_KB = 50.0
_TOKEN = b'"delta":{"content":"'  # a content chunk, both from hubbub and from the upstream (OpenAI's format)


# -- the load client (runs in its own process) ------------------------------------------


@dataclass
class StreamRecord:
    sent: float = 0.0  # monotonic clock, shared by every process on the machine
    opened: float | None = None  # response headers in
    ended: float | None = None
    status: int | None = None
    tokens: list[float] = field(default_factory=list)  # arrival of each content chunk
    done: bool = False  # saw data: [DONE]
    error: str | None = None


class _Stream(asyncio.Protocol):
    """One streaming request on its own connection, parsed with httptools."""

    def __init__(self, request: bytes, rec: StreamRecord, finished: asyncio.Future[None], counts: dict[str, int]) -> None:
        import httptools

        self.request = request
        self.rec = rec
        self.finished = finished
        self.counts = counts
        self.parser = httptools.HttpResponseParser(self)
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.counts["held"] += 1
        self.counts["peak_held"] = max(self.counts["peak_held"], self.counts["held"])
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except Exception as exc:  # noqa: BLE001 - a malformed response is an error of this stream
            self._end(f"parse: {type(exc).__name__}")

    def connection_lost(self, exc: Exception | None) -> None:
        self._end("connection lost before the end")

    # httptools callbacks
    def on_headers_complete(self) -> None:
        self.rec.status = self.parser.get_status_code()
        self.rec.opened = time.monotonic()
        if self.rec.status == 200:
            self.counts["open"] += 1
            self.counts["peak"] = max(self.counts["peak"], self.counts["open"])

    def on_body(self, body: bytes) -> None:
        now = time.monotonic()
        frames = (self.buf + body).split(b"\n\n")
        self.buf = frames.pop()
        for frame in frames:
            if _TOKEN in frame:
                self.rec.tokens.append(now)
            elif frame == b"data: [DONE]":
                self.rec.done = True
            elif b'"error"' in frame:
                self.rec.error = "error event: " + frame[:200].decode(errors="replace")

    def on_message_complete(self) -> None:
        self._end(None)
        if self.transport is not None:
            self.transport.close()

    def _end(self, error: str | None) -> None:
        if self.finished.done():
            return
        self.rec.ended = time.monotonic()
        if self.rec.status == 200 and self.rec.opened is not None:
            self.counts["open"] -= 1
        if self.transport is not None:
            self.counts["held"] -= 1
        if self.rec.status not in (None, 200):
            error = f"status {self.rec.status}"
        if error is None and not self.rec.done:
            error = "no [DONE]"
        if self.rec.error is None:
            self.rec.error = error
        self.finished.set_result(None)


async def _load(host: str, port: int, path: str, body: bytes, streams: int, ramp: float, timeout: float
                ) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: text/event-stream\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    counts = {"open": 0, "peak": 0, "held": 0, "peak_held": 0}  # held: connected, not yet ended
    records = [StreamRecord() for _ in range(streams)]
    timeline: list[tuple[float, int]] = []

    async def one(i: int) -> None:
        await asyncio.sleep(max(0.0, start + i * ramp / streams - time.monotonic()))
        finished: asyncio.Future[None] = loop.create_future()
        rec = records[i]
        rec.sent = time.monotonic()
        try:
            transport, _ = await loop.create_connection(lambda: _Stream(request, rec, finished, counts), host, port)
        except OSError as exc:
            rec.error = f"connect: {exc.strerror or type(exc).__name__}"
            return
        try:
            await asyncio.wait_for(finished, timeout)
        except asyncio.TimeoutError:
            rec.error = "timeout"
            transport.close()

    async def sample() -> None:
        while True:
            timeline.append((time.monotonic(), counts["open"]))
            await asyncio.sleep(0.05)

    start = time.monotonic() + 0.2
    sampler = loop.create_task(sample())
    await asyncio.gather(*(one(i) for i in range(streams)))
    sampler.cancel()
    timeline.append((time.monotonic(), counts["open"]))
    return {
        "start": start,
        "peak": counts["peak"],
        "peak_held": counts["peak_held"],
        "timeline": timeline,
        "records": [(r.sent, r.opened, r.ended, r.status, r.tokens, r.error) for r in records],
    }


async def _load_job(job: dict[str, Any]) -> dict[str, Any]:
    return await _load(**job)


# -- the server side: RSS and CPU of hubbub ------------------------------------------------


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sampler(threading.Thread):
    """RSS of ``pid`` every ``interval`` s while the load runs."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, int]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.samples.append((time.monotonic(), rss_kb(self.pid)))
            except OSError:
                return
            self._halt.wait(self.interval)

    def stop(self) -> list[tuple[float, int]]:
        self._halt.set()
        self.join()
        return self.samples


def start_profiler(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling ``pid`` (idle frames left out) until SIGINT; ``out`` gets a speedscope profile."""
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        sys.exit("--profile needs py-spy (pip install py-spy)")
    return subprocess.Popen([spy, "record", "--nonblocking", "-p", str(pid), "-r", "100", "-f", "speedscope", "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# -- statistics ---------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def summarize(result: dict[str, Any], tokens: int) -> dict[str, Any]:
    gaps: list[float] = []
    ttft: list[float] = []
    errors: dict[str, int] = {}
    delivered = 0
    for sent, _opened, _ended, _status, stamps, error in result["records"]:
        if error is None and len(stamps) != tokens:
            error = f"{len(stamps)} tokens, not {tokens}"
        if error is not None:
            kind = error.split(":")[0]
            errors[kind] = errors.get(kind, 0) + 1
        delivered += len(stamps)
        if stamps:
            ttft.append((stamps[0] - sent) * 1000)
            gaps += [(b - a) * 1000 for a, b in zip(stamps, stamps[1:])]
    return {
        "streams": len(result["records"]),
        "peak_open": result["peak"],
        "peak_held": result["peak_held"],
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "tokens_delivered": delivered,
        "gap_p50_ms": pct(gaps, 50),
        "gap_p99_ms": pct(gaps, 99),
        "gap_max_ms": max(gaps) if gaps else float("nan"),
        "ttft_p50_ms": pct(ttft, 50),
        "ttft_p99_ms": pct(ttft, 99),
        "_gaps": gaps,
    }


# -- the run ------------------------------------------------------------------------------


def hubbub_config(base_url: str, streams: int) -> str:
    return f"""
default_model = "bench"

[embedded]
enabled = false

[[providers]]
name = "fast"
base_url = "{base_url}"
max_connections = {streams + 64}

[[models]]
id = "bench"
provider = "fast"
context_length = 8192
"""


def warm_up(url: str) -> None:
    import httpx

    body = {"model": "bench", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    for _ in range(3):
        with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=60) as r:
            r.raise_for_status()
            for _ in r.iter_bytes():
                pass


def plot(direct: dict[str, Any], hub: dict[str, Any], summary: dict[str, Any], path: Path, note: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    t0 = hub["load"]["start"]
    ts = [t - t0 for t, _ in hub["load"]["timeline"]]
    ax1.plot(ts, [n for _, n in hub["load"]["timeline"]], color="#2e7d32", label="open streams (hubbub)")
    ts_d = [t - direct["load"]["start"] for t, _ in direct["load"]["timeline"]]
    ax1.plot(ts_d, [n for _, n in direct["load"]["timeline"]], color="#9e9e9e", ls="--", label="open streams (direct)")
    ax1.set_xlabel("s since the first request")
    ax1.set_ylabel("open streams")
    ax1b = ax1.twinx()
    ax1b.plot([t - t0 for t, _ in hub["rss"]], [kb / 1024 for _, kb in hub["rss"]], color="#1565c0", label="hubbub RSS")
    ax1b.set_ylabel("hubbub RSS (MiB)", color="#1565c0")
    h1, l1 = ax1.get_legend_handles_labels()
    h2, l2 = ax1b.get_legend_handles_labels()
    ax1.legend(h1 + h2, l1 + l2, fontsize=8, loc="lower center")
    ax1.set_title(f"{summary['hubbub']['peak_open']} streams open at once, "
                  f"{summary['memory']['kb_per_stream']:.1f} KB each")
    for name, data, color in (("direct", direct["summary"], "#9e9e9e"), ("hubbub", hub["summary"], "#2e7d32")):
        gaps = sorted(data["_gaps"])
        if gaps:
            ax2.plot(gaps, [i / len(gaps) for i in range(len(gaps))], color=color,
                     label=f"{name}: p50 {data['gap_p50_ms']:.1f} ms, p99 {data['gap_p99_ms']:.1f} ms")
    ax2.set_xscale("log")
    ax2.set_xlabel("gap between tokens at the client (ms)")
    ax2.set_ylabel("share of gaps")
    ax2.set_title("Inter-token gaps")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8)
    fig.suptitle(note, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


def _cpu(seconds: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.2f}" for name, value in seconds.items())


def main() -> int:
    parser = argparse.ArgumentParser(description="Concurrent SSE streams: hubbub vs the same upstream direct.")
    parser.add_argument("--streams", type=int, default=1000, help="concurrent streams (default 1000)")
    # The defaults hold all 1000 streams open at once (2k tokens/s in all); --tokens 64 --delay-ms 50
    # --ramp 2 is the stress run (20k tokens/s), past what one hubbub process carries on 2 cores.
    parser.add_argument("--tokens", type=int, default=20, help="tokens per answer (default 20)")
    parser.add_argument("--delay-ms", type=float, default=500.0, help="upstream pause between tokens (default 500)")
    parser.add_argument("--ramp", type=float, default=6.0,
                        help="seconds over which the streams start (default 6; keep it below tokens × delay)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--plot", type=Path, help="write a PNG chart here (matplotlib)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--profile", type=Path,
                        help="record hubbub with py-spy during the load (speedscope JSON written here)")
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the children inherit it
    if hard < 2 * args.streams + 256:
        print(f"warning: the open-files limit ({hard}) is low for {args.streams} streams "
              f"(hubbub holds 2 sockets per stream)", file=sys.stderr)
    span = args.tokens * args.delay_ms / 1000
    if args.ramp >= span:
        print(f"warning: the ramp ({args.ramp}s) is not shorter than a stream ({span:.1f}s): "
              "not every stream can be open at once", file=sys.stderr)
    timeout = span * 10 + 60
    body = orjson.dumps({"model": "bench", "messages": [{"role": "user", "content": "Tell me a story."}],
                         "stream": True})

    upstream, base = fast_upstream.start(tokens=args.tokens, token_delay_ms=args.delay_ms)
    client: LoadProcess | None = None
    hubbub: HubbubServer | None = None
    try:
        hubbub = HubbubServer(config=hubbub_config(base, args.streams), env={"HUBBUB_EMBEDDED__ENABLED": "false"})
        hubbub.__enter__()
        assert hubbub.proc is not None
        pid = hubbub.proc.pid
        client = LoadProcess(_load_job)
        up_host, up_port = base.removeprefix("http://").removesuffix("/v1").split(":")
        print(f"upstream {base} ({args.tokens} tokens, {args.delay_ms:g} ms apart), hubbub {hubbub.url}; "
              f"{args.streams} streams over {args.ramp:g}s; {os.cpu_count()} CPUs", flush=True)

        job = {"body": body, "streams": args.streams, "ramp": args.ramp, "timeout": timeout}
        others = {"upstream": upstream.pid, "client": client.proc.pid}
        before = {name: cpu_seconds(p) for name, p in others.items()}
        direct_load = client.run(host=up_host, port=int(up_port), path="/v1/chat/completions", **job)
        direct = {"load": direct_load, "summary": summarize(direct_load, args.tokens)}
        direct["summary"]["cpu_s"] = {name: cpu_seconds(p) - before[name] for name, p in others.items()}

        warm_up(hubbub.url)
        time.sleep(0.5)
        rss_before = rss_kb(pid)
        cpu_before = cpu_seconds(pid)
        before = {name: cpu_seconds(p) for name, p in others.items()}
        sampler = Sampler(pid)
        sampler.start()
        spy = start_profiler(pid, args.profile) if args.profile else None
        hub_load = client.run(host="127.0.0.1", port=hubbub.port, path="/v1/chat/completions", **job)
        samples = sampler.stop()
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            spy.wait(60)
        cpu_used = cpu_seconds(pid) - cpu_before
        rss_after = rss_kb(pid)
        hub = {"load": hub_load, "summary": summarize(hub_load, args.tokens), "rss": samples}
        hub["summary"]["cpu_s"] = {"hubbub": cpu_used,
                                   **{name: cpu_seconds(p) - before[name] for name, p in others.items()}}
    finally:
        if client is not None:
            client.close()
        if hubbub is not None:
            hubbub.stop()
        fast_upstream.stop(upstream)

    d, h = direct["summary"], hub["summary"]
    rss_peak = max(kb for _, kb in samples) if samples else rss_after
    # Per open stream. When hubbub lags behind the ramp, requests it has not answered yet hold
    # memory too and are not counted: the figure is then an overestimate (the clean one comes
    # from a run where every stream is open at once).
    per_stream = (rss_peak - rss_before) / max(1, h["peak_open"])
    lagged = h["peak_open"] < h["peak_held"]
    cpu_per_token_us = cpu_used / max(1, h["tokens_delivered"]) * 1e6
    summary = {
        "streams": args.streams, "tokens": args.tokens, "delay_ms": args.delay_ms, "ramp_s": args.ramp,
        "cpus": os.cpu_count(),
        "direct": {k: v for k, v in d.items() if not k.startswith("_")},
        "hubbub": {k: v for k, v in h.items() if not k.startswith("_")},
        "memory": {"rss_before_kb": rss_before, "rss_peak_kb": rss_peak, "rss_after_kb": rss_after,
                   "kb_per_stream": per_stream, "overestimate": lagged},
        "hubbub_cpu_s": cpu_used, "hubbub_cpu_per_token_us": cpu_per_token_us,
        "ratios": {
            "gap_p50": h["gap_p50_ms"] / d["gap_p50_ms"], "gap_p99": h["gap_p99_ms"] / d["gap_p99_ms"],
            "ttft_p50": h["ttft_p50_ms"] / d["ttft_p50_ms"],
        },
        "added_ms": {"gap_p50": h["gap_p50_ms"] - d["gap_p50_ms"], "gap_p99": h["gap_p99_ms"] - d["gap_p99_ms"],
                     "ttft_p50": h["ttft_p50_ms"] - d["ttft_p50_ms"], "ttft_p99": h["ttft_p99_ms"] - d["ttft_p99_ms"]},
    }
    held = h["peak_open"] == args.streams and h["errors"] == 0
    summary["targets"] = {"all_streams_open_no_errors": held, "memory_under_50kb": per_stream < MEMORY_TARGET_KB}

    print()
    print(f"{'':10} {'peak open':>9} {'errors':>6} {'gap p50':>9} {'gap p99':>9} {'gap max':>9} "
          f"{'ttft p50':>9} {'ttft p99':>9}")
    for name, s in (("direct", d), ("hubbub", h)):
        print(f"{name:10} {s['peak_open']:>9} {s['errors']:>6} {s['gap_p50_ms']:>7.1f}ms {s['gap_p99_ms']:>7.1f}ms "
              f"{s['gap_max_ms']:>7.1f}ms {s['ttft_p50_ms']:>7.1f}ms {s['ttft_p99_ms']:>7.1f}ms")
        if s["error_kinds"]:
            print(f"{'':10} errors: {s['error_kinds']}")
    r, a = summary["ratios"], summary["added_ms"]
    print(f"ratio hubbub/direct: gap p50 {r['gap_p50']:.3f}, gap p99 {r['gap_p99']:.3f}, ttft p50 {r['ttft_p50']:.2f}")
    print(f"added by hubbub: gap p50 {a['gap_p50']:+.2f} ms, gap p99 {a['gap_p99']:+.2f} ms, "
          f"ttft p50 {a['ttft_p50']:+.1f} ms, ttft p99 {a['ttft_p99']:+.1f} ms")
    print(f"hubbub RSS: {rss_before / 1024:.1f} MiB before, {rss_peak / 1024:.1f} MiB at peak → "
          f"{per_stream:.1f} KB per open stream (target < {MEMORY_TARGET_KB:g} KB)"
          + (f"; an overestimate: up to {h['peak_held']} connections were held, only {h['peak_open']} "
             "answered yet" if lagged else ""))
    print(f"hubbub CPU: {cpu_used:.2f} s for {h['tokens_delivered']} tokens → {cpu_per_token_us:.0f} µs per token "
          f"(CPU s, direct run: {_cpu(d['cpu_s'])}; through hubbub: {_cpu(h['cpu_s'])})")
    print(f"targets: {args.streams} streams open at once with 0 errors: {'met' if held else 'MISSED'}; "
          f"memory per stream: {'met' if per_stream < MEMORY_TARGET_KB else 'MISSED'}")

    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
        print(f"json: {args.json}")
    if args.plot:
        note = (f"{args.streams} streams × {args.tokens} tokens, {args.delay_ms:g} ms apart, ramp {args.ramp:g}s; "
                f"{os.cpu_count()} CPUs; hubbub CPU {cpu_per_token_us:.0f} µs/token")
        plot(direct, hub, summary, args.plot, note)
    if args.check and not all(summary["targets"].values()):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
