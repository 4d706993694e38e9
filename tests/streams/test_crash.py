"""Crash safety (API.md "Disconnects", issue 5): hubbub killed with SIGKILL mid-stream and
restarted on the same data dir keeps the partial answer, marked ``interrupted``, missing at
most the last second of text (the streaming row is flushed every ``flush_interval_seconds``).

hubbub runs as a real subprocess (``python -m hubbub serve``) with the embedded model, which
is asked for a long story so it is still writing when the kill lands. A scripted provider
that pauses shows the flush does not wait for the next token.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid

import httpx

from hubbub.core.events import Finish, TextDelta
from support import ScriptedProvider, ServerProcess, register_scripted, sse_events

LONG = [{"role": "user", "content": "Write a very long story about a dragon."}]
READ_SECONDS = 2.5
FLUSH_SECONDS = 1.0  # the server's default flush_interval_seconds
SLACK = 0.2  # the client reads an event a little after the server stored it
MIN_EVENTS = 40  # on a busy machine the model is slow: read on until the text says something


async def test_sigkill_mid_stream_keeps_the_answer_but_the_last_second(tmp_path):
    server = ServerProcess(tmp_path, max_tokens_cap="2000").wait_ready()
    received: list[tuple[float, str]] = []  # (when the client had it, text)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            async with client.stream("POST", "/api/chat", json={"messages": LONG, "enableDSL": False}) as r:
                assert r.status_code == 200
                chat_id = r.headers["x-chat-id"]
                started = None
                async for event in sse_events(r):
                    body = event.json()
                    assert body["type"] != "done", "the answer ended before the kill: make the prompt longer"
                    if body["type"] == "text":
                        now = time.monotonic()
                        started = started or now
                        received.append((now, body["content"]))
                        if now - started >= READ_SECONDS and len(received) >= MIN_EVENTS:
                            break
                server.signal(signal.SIGKILL)  # mid-stream: the response is still open
                killed_at = time.monotonic()
                server.proc.wait(timeout=10)
    finally:
        server.stop()

    restarted = ServerProcess(tmp_path, max_tokens_cap="2000").wait_ready()
    try:
        async with httpx.AsyncClient(base_url=restarted.url, timeout=60) as client:
            chat = (await client.get(f"/api/chat/{chat_id}")).json()
    finally:
        restarted.stop()

    assert chat["status"] == "interrupted"
    user, answer = chat["messages"]
    assert user["content"] == LONG[0]["content"]
    assert answer["role"] == "assistant" and answer["status"] == "interrupted"
    everything = "".join(text for _, text in received)
    assert everything.startswith(answer["content"]), "the stored text is what the client was sent"
    settled = "".join(text for at, text in received if at <= killed_at - FLUSH_SECONDS - SLACK)
    assert settled, "the client had nothing a second before the kill: nothing to judge"
    assert answer["content"].startswith(settled), (
        f"lost more than the last second: stored {len(answer['content'])} chars, "
        f"the client had {len(settled)} a second before the kill"
    )


class PausingProvider(ScriptedProvider):
    """A burst of words, then a long pause (a model thinking, an upstream stalling), then the rest."""

    def __init__(self, burst: str, pause: float) -> None:
        super().__init__(burst)
        self.pause = pause

    async def stream(self, request):  # noqa: ANN001
        self.requests.append(request)
        for piece in self.pieces():
            yield TextDelta(piece)
        await asyncio.sleep(self.pause)
        yield TextDelta(" end")
        yield Finish("stop")


async def test_text_is_flushed_within_a_second_even_when_the_model_pauses(client, server):
    """Regression: the row was flushed only when a token arrived, so text written just before a
    pause stayed unstored for the whole pause; a crash then lost more than the last second."""
    burst = "one two three four five"
    model = f"pausing-{uuid.uuid4().hex[:8]}"
    register_scripted(server, model, PausingProvider(burst, pause=4.0))
    async with client.stream("POST", "/api/chat", json={"messages": LONG, "model": model}) as r:
        chat_id = r.headers["x-chat-id"]
        texts: list[str] = []
        async for event in sse_events(r):
            body = event.json()
            if body["type"] == "text":
                texts.append(body["content"])
            if "".join(texts) == burst:
                break
        had_at = time.monotonic()
        await asyncio.sleep(FLUSH_SECONDS + 0.5)
        chat = (await client.get(f"/api/chat/{chat_id}")).json()
        assert time.monotonic() - had_at < 4.0, "still within the pause"
        assert chat["status"] == "streaming"
        assert chat["messages"][-1]["content"] == burst
