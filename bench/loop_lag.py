"""How long a large JSON-schema request stalls another running stream (issue 15).

A real ``hubbub serve`` (temporary data dir) decodes one long answer, streamed, while a second
request with a ~100 KiB ``json_schema`` response format arrives. Building that schema's grammar
took ~0.85 s *on the event loop* before issue 15, so the running stream got no token for that
long. Now it runs in a worker thread: the stream's largest gap between tokens while the second
request starts should stay under 50 ms.

Per run: the largest gap between consecutive content chunks of the running stream in the window
from just before the schema request is sent until its first token; also the median gap of the
same stream outside that window. Each run uses a fresh schema (a cached grammar would hide the
cost). Prints each run and the median of ``--runs`` (5) runs; ``--max-gap-ms`` makes it exit 1
above that.

    .venv/bin/python bench/loop_lag.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "providers"))
from big_schema import big_schema  # noqa: E402

from _common import HubbubServer  # noqa: E402

MODEL = "smollm2-135m-instruct"


def run_once(url: str, salt: int) -> tuple[float, float, float]:
    gaps: list[tuple[float, float]] = []  # (time of chunk, gap since the previous one)
    started = threading.Event()
    window: dict[str, float] = {}

    def reader() -> None:
        body = {"model": MODEL, "stream": True, "temperature": 0, "max_tokens": 400,
                "messages": [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]}
        last = None
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=300) as r:
            for line in r.iter_lines():
                if not line.startswith("data: {"):
                    continue
                now = time.monotonic()
                if last is not None:
                    gaps.append((now, now - last))
                last = now
                if len(gaps) == 20:
                    started.set()
                if "end" in window and now > window["end"] + 0.5:
                    break

    t = threading.Thread(target=reader)
    t.start()
    started.wait(120)
    schema = big_schema()
    schema["description"] = f"run {salt} {time.time()}"  # a new schema: no cached grammar
    window["start"] = time.monotonic()
    httpx.post(f"{url}/v1/chat/completions", timeout=300, json={
        "model": MODEL, "max_tokens": 1, "messages": [{"role": "user", "content": "Fill in the record."}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "big", "schema": schema}}})
    window["end"] = time.monotonic()
    t.join(300)
    inside = [g for at, g in gaps if window["start"] <= at <= window["end"] + 0.05]
    outside = [g for at, g in gaps if not (window["start"] <= at <= window["end"] + 0.05)]
    return max(inside or [0.0]) * 1000, statistics.median(outside) * 1000, (window["end"] - window["start"]) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-gap-ms", type=float, default=None)
    args = parser.parse_args()
    with HubbubServer() as server:
        url = server.url
        print(f"{'run':>3} {'max gap ms':>11} {'usual gap ms':>13} {'schema request ms':>18}")
        results = []
        for i in range(args.runs):
            worst, usual, took = run_once(url, i)
            results.append(worst)
            print(f"{i + 1:>3} {worst:>11.1f} {usual:>13.1f} {took:>18.0f}")
        median = statistics.median(results)
        print(f"largest token gap of the running stream while a 100 KiB schema request starts "
              f"(median of {args.runs}): {median:.1f} ms")
        print(json.dumps({"max_gap_ms_median": median, "runs": results}))
    if args.max_gap_ms is not None and median > args.max_gap_ms:
        sys.exit(1)


if __name__ == "__main__":
    main()
