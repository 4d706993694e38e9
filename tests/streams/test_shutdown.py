"""Graceful shutdown (issue 5): on SIGTERM hubbub stops accepting connections at once, lets a
running generation go on for ``shutdown_grace_seconds``, then ends it ``interrupted`` — its
stream still ends with ``done`` — and nothing is left ``streaming``.

hubbub runs as a real subprocess (``python -m hubbub serve``) with the embedded model, asked
for a long story so that it is still writing when the grace period ends.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import time

import httpx

from support import ServerProcess, sse_events

LONG = [{"role": "user", "content": "Write a very long story about a dragon."}]
GRACE = 2.0
ENV = {"max_tokens_cap": "2000", "shutdown_grace_seconds": str(GRACE)}


def refuses_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return False
    except OSError:
        return True


async def test_sigterm_stops_accepting_then_ends_the_generation_within_the_grace(tmp_path):
    server = ServerProcess(tmp_path, **ENV).wait_ready()
    received: list[dict] = []
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            async with client.stream("POST", "/api/chat", json={"messages": LONG, "enableDSL": False}) as r:
                assert r.status_code == 200
                chat_id = r.headers["x-chat-id"]
                events = sse_events(r)
                while sum(e["type"] == "text" for e in received) < 10:  # it is writing
                    received.append((await anext(events)).json())
                server.signal(signal.SIGTERM)
                signalled = time.monotonic()

                refused_after = None
                while time.monotonic() - signalled < 2.0:
                    if refuses_connections(server.port):
                        refused_after = time.monotonic() - signalled
                        break
                    await asyncio.sleep(0.05)
                assert refused_after is not None and refused_after < 1.0, "new connections still accepted"

                async with asyncio.timeout(GRACE + 5):
                    async for event in events:
                        received.append(event.json())
                ended_after = time.monotonic() - signalled
        assert received[-1] == {"type": "done", "content": ""}, "the stream ends with done, not cut off"
        assert ended_after < GRACE + 1.5, f"the generation ran {ended_after:.1f}s past SIGTERM"
        server.proc.wait(timeout=GRACE + 10)
        assert server.proc.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once done
    finally:
        server.stop()

    restarted = ServerProcess(tmp_path, **ENV).wait_ready()
    try:
        async with httpx.AsyncClient(base_url=restarted.url, timeout=60) as client:
            chat = (await client.get(f"/api/chat/{chat_id}")).json()
    finally:
        restarted.stop()
    answer = chat["messages"][-1]
    assert answer["role"] == "assistant"
    assert answer["status"] in ("complete", "interrupted") and chat["status"] == answer["status"]
    assert answer["content"] == "".join(e["content"] for e in received if e["type"] == "text")
    assert answer["status"] == "interrupted", "a long story outlasts a 2 s grace"
