"""Load test (issue 22): 500 concurrent stored-chat streams on one replica with Redis, and 500
concurrent stateless streams with the default settings.

One run, one process tree, two parts:

* **stored**: a real ``hubbub serve`` with ``redis_url`` (Redis at ``--redis-url``) and a
  database (``--database-url``; by default a scratch PostgreSQL database on 127.0.0.1:5432,
  dropped afterwards, or SQLite when no PostgreSQL answers), one model ``bench`` on
  ``fast_upstream.py`` (its pool above ``--streams``, so the upstream is not what is measured).
  ``--streams`` builder streams (``POST /api/chat``, ``enableDSL: false``) start over ``--ramp``
  seconds. Each must answer 200, carry the upstream's exact text and end with ``done``, and its
  chat must end ``complete`` in the database. Meanwhile the benchmark counts hubbub's Redis
  connections as Redis sees them (``CLIENT LIST``, by the name hubbub gives them): before
  issue 22 each stream's follower held about two of a pool of 100 and the replica fell over at
  about 50 streams.
* **stateless**: a fresh ``hubbub serve`` with nothing but the provider and the model declared
  (default ``max_connections``, default failover settings, no Redis), ``--streams`` streaming
  ``POST /v1/chat/completions``. Target: no 5xx, no error, and no channel cooldown
  (``GET /api/channels`` polled during the load and read after it).

The load client is a process of its own (httpx on uvloop, one connection per stream).

    .venv/bin/python bench/load.py                    # 500 + 500 streams, 20 tokens 250 ms apart
    .venv/bin/python bench/load.py --only stored --streams 1000 --json load.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fast_upstream  # noqa: E402
from _common import HubbubServer, LoadProcess  # noqa: E402
from streams import hubbub_config  # noqa: E402

PG_ADMIN = {"user": "postgres", "host": "127.0.0.1", "port": 5432, "database": "test"}


# -- the load client (its own process) -----------------------------------------------------


async def _one(client: Any, path: str, body: dict[str, Any], stored: bool) -> dict[str, Any]:
    """One stream: status, the text it carried, whether it ended properly, its chat id."""
    import orjson

    out: dict[str, Any] = {"status": None, "text": "", "ended": False, "error": None, "chat": None}
    try:
        async with client.stream("POST", path, json=body) as r:
            out["status"], out["chat"] = r.status_code, r.headers.get("x-chat-id")
            if r.status_code != 200:
                out["error"] = f"status {r.status_code}: {(await r.aread())[:200]!r}"
                return out
            async for line in r.aiter_lines():
                if not line.startswith("data: "):
                    continue
                if line == "data: [DONE]":
                    out["ended"] = True
                    continue
                event = orjson.loads(line[6:])
                if stored:
                    kind = event.get("type")
                    out["text"] += event.get("content", "") if kind == "text" else ""
                    out["ended"] |= kind == "done"
                    if kind == "error":
                        out["error"] = f"error event: {event}"
                elif "error" in event:
                    out["error"] = f"error event: {event}"
                elif event.get("choices"):
                    out["text"] += event["choices"][0]["delta"].get("content") or ""
    except Exception as exc:  # noqa: BLE001 - a broken stream is this stream's error
        out["error"] = f"{type(exc).__name__}: {exc}"
    if out["error"] is None and not out["ended"]:
        out["error"] = "cut short (no done)"
    return out


async def _load_job(job: dict[str, Any]) -> dict[str, Any]:
    import httpx

    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=job["url"], timeout=job["timeout"], limits=limits) as client:
        started = time.monotonic()

        async def paced(i: int) -> dict[str, Any]:
            await asyncio.sleep(i * job["ramp"] / job["streams"])
            return await _one(client, job["path"], job["body"], job["stored"])

        results = await asyncio.gather(*(paced(i) for i in range(job["streams"])))
        return {"results": results, "seconds": time.monotonic() - started}


# -- the parent: servers, watchers, verdicts ---------------------------------------------------


def _pg(sql: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(**PG_ADMIN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


class RedisConnections(threading.Thread):
    """Peak number of Redis connections named ``hubbub:<pid>:…`` (the server under test)."""

    def __init__(self, url: str, pid: int) -> None:
        super().__init__(daemon=True)
        import redis

        self._redis = redis.Redis.from_url(url)
        self._prefix = f"hubbub:{pid}:"
        self.peak = 0
        self._halt = threading.Event()

    def count(self) -> int:
        return sum(1 for c in self._redis.client_list() if c.get("name", "").startswith(self._prefix))

    def run(self) -> None:
        while not self._halt.wait(0.1):
            self.peak = max(self.peak, self.count())

    def stop(self) -> int:
        self._halt.set()
        self.join()
        self._redis.close()
        return self.peak


class ChannelWatch(threading.Thread):
    """Polls ``GET /api/channels`` during the load: any cooldown, the most failures seen."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.cooled = False
        self.failures = 0
        self.errors: dict[str, int] = {}
        self._halt = threading.Event()

    def poll(self) -> None:
        import httpx

        for channel in httpx.get(self.url + "/api/channels", timeout=10).json()["channels"]:
            self.cooled |= channel["state"] != "healthy" or bool(channel["cooldownRemaining"])
            self.failures = max(self.failures, channel["failures"])
            self.errors = {k: v for k, v in (channel["errors"] or {}).items() if v} or self.errors

    def run(self) -> None:
        while not self._halt.wait(0.5):
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - a busy server answers late: the next poll counts
                pass

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self.poll()  # and once more after the load


def default_pool(config: str) -> str:
    """``config`` without its ``max_connections``: the provider keeps its default pool."""
    return "\n".join(line for line in config.splitlines() if not line.startswith("max_connections"))


def summarize(results: list[dict[str, Any]], expected: str) -> dict[str, Any]:
    kinds: dict[str, int] = {}
    for r in results:
        error = r["error"] or (None if r["text"] == expected else f"wrong text ({len(r['text'])} chars)")
        if error:
            kind = error.split(":")[0]
            kinds[kind] = kinds.get(kind, 0) + 1
    return {
        "streams": len(results),
        "ok": len(results) - sum(kinds.values()),
        "errors": kinds,
        "status_5xx": sum(1 for r in results if (r["status"] or 0) >= 500),
    }


def run_stored(args: argparse.Namespace, client: LoadProcess, base: str, expected: str) -> dict[str, Any]:
    import httpx

    scratch = None
    database = args.database_url
    if database == "auto":
        scratch = f"hubbub_bench_{uuid.uuid4().hex[:10]}"
        try:
            _pg(f'CREATE DATABASE "{scratch}"')
            database = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{scratch}"
        except OSError:  # no PostgreSQL here
            scratch, database = None, ""  # SQLite in the server's temporary data dir
    env = {"HUBBUB_EMBEDDED__ENABLED": "false", "HUBBUB_REDIS_URL": args.redis_url}
    if database:
        env["HUBBUB_DATABASE_URL"] = database
    try:
        with HubbubServer(config=hubbub_config(base, args.streams), env=env) as hubbub:
            assert hubbub.proc is not None
            print(f"stored: hubbub {hubbub.url}, database {database or 'SQLite'}, Redis {args.redis_url}", flush=True)
            watch = RedisConnections(args.redis_url, hubbub.proc.pid)
            idle = watch.count()
            watch.start()
            body = {"messages": [{"role": "user", "content": "Tell me a story."}], "model": "bench",
                    "enableDSL": False}
            load = client.run(url=hubbub.url, path="/api/chat", body=body, streams=args.streams,
                              ramp=args.ramp, timeout=args.timeout, stored=True)
            peak = watch.stop()
            summary = summarize(load["results"], expected)
            statuses: dict[str, int] = {}
            with httpx.Client(base_url=hubbub.url, timeout=60) as http:
                for r in load["results"]:
                    if r["chat"]:
                        status = http.get(f"/api/chat/{r['chat']}").json().get("status", "?")
                        statuses[status] = statuses.get(status, 0) + 1
            summary.update(seconds=load["seconds"], chats=statuses, redis_connections_idle=idle,
                           redis_connections_peak=peak)
            summary["met"] = summary["ok"] == args.streams and statuses.get("complete", 0) == args.streams
            return summary
    finally:
        if scratch:
            _pg(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


def run_stateless(args: argparse.Namespace, client: LoadProcess, base: str, expected: str) -> dict[str, Any]:
    server = HubbubServer(config=default_pool(hubbub_config(base, args.streams)),
                          env={"HUBBUB_EMBEDDED__ENABLED": "false"})
    with server as hubbub:
        print(f"stateless: hubbub {hubbub.url}, default settings (SQLite, no Redis)", flush=True)
        watch = ChannelWatch(hubbub.url)
        watch.start()
        body = {"model": "bench", "messages": [{"role": "user", "content": "Tell me a story."}], "stream": True}
        load = client.run(url=hubbub.url, path="/v1/chat/completions", body=body, streams=args.streams,
                          ramp=args.ramp, timeout=args.timeout, stored=False)
        watch.stop()
    summary = summarize(load["results"], expected)
    summary.update(seconds=load["seconds"], channel_cooldown=watch.cooled, channel_failures=watch.failures,
                   channel_errors=watch.errors)
    summary["met"] = summary["ok"] == args.streams and summary["status_5xx"] == 0 and not watch.cooled
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description="500 stored-chat streams with Redis; 500 stateless streams.")
    parser.add_argument("--streams", type=int, default=500, help="concurrent streams in each part (default 500)")
    parser.add_argument("--tokens", type=int, default=20, help="tokens per answer (default 20)")
    parser.add_argument("--delay-ms", type=float, default=250.0, help="upstream pause between tokens (default 250)")
    parser.add_argument("--ramp", type=float, default=3.0, help="seconds over which the streams start (default 3)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds one stream may take (default 300)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--database-url", default="auto",
                        help="for the stored part (default: a scratch PostgreSQL database, else SQLite)")
    parser.add_argument("--only", choices=["stored", "stateless"], help="run one part")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--check", action="store_true", help="exit 1 when a part misses its target")
    args = parser.parse_args()

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the children inherit it
    expected = "".join(fast_upstream.Answer(args.tokens, 0, "x").tokens)
    upstream, base = fast_upstream.start(tokens=args.tokens, token_delay_ms=args.delay_ms)
    client = LoadProcess(_load_job)
    print(f"{args.streams} streams per part over {args.ramp:g}s; upstream {args.tokens} tokens "
          f"{args.delay_ms:g} ms apart; {os.cpu_count()} CPUs", flush=True)
    results: dict[str, Any] = {}
    try:
        if args.only in (None, "stored"):
            import redis

            try:
                redis.Redis.from_url(args.redis_url).ping()
            except redis.ConnectionError:
                sys.exit(f"no Redis at {args.redis_url}")
            results["stored"] = run_stored(args, client, base, expected)
        if args.only in (None, "stateless"):
            results["stateless"] = run_stateless(args, client, base, expected)
    finally:
        client.close()
        fast_upstream.stop(upstream)

    print()
    if "stored" in results:
        s = results["stored"]
        print(f"stored (Redis): {s['ok']}/{s['streams']} streams complete in {s['seconds']:.1f}s, "
              f"errors {s['errors']}, 5xx {s['status_5xx']}; chats {s['chats']}; "
              f"hubbub's Redis connections: {s['redis_connections_idle']} "
              f"idle, {s['redis_connections_peak']} at peak → {'met' if s['met'] else 'MISSED'}")
    if "stateless" in results:
        s = results["stateless"]
        print(f"stateless (defaults): {s['ok']}/{s['streams']} streams complete in {s['seconds']:.1f}s, errors "
              f"{s['errors']}, 5xx {s['status_5xx']}; channel cooldown: {'YES' if s['channel_cooldown'] else 'no'} "
              f"(failures {s['channel_failures']}, {s['channel_errors']}) → {'met' if s['met'] else 'MISSED'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
        print(f"json: {args.json}")
    return 1 if args.check and not all(r["met"] for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
