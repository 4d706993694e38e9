"""SSE responses shared by the dialects, over HTTP through a real server: ``: ping`` after
silence and only then, and a client that leaves stops the generation behind the stream."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from hubbub.core.events import TextDelta
from hubbub.http.sse import PING
from support import ScriptedProvider, register_scripted, start_server

PING_SECONDS = 0.1


@pytest.fixture(scope="module")
def ping_server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("sse"), embedded={"enabled": False}, sse_ping_seconds=PING_SECONDS)
    register_scripted(srv, "slow", ScriptedProvider("one two three", delay=4 * PING_SECONDS))
    register_scripted(srv, "fast", ScriptedProvider("one two three four"))
    yield srv
    srv.stop()


async def _raw(srv, model: str) -> bytes:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
        r = await c.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    return r.content


async def test_a_quiet_stream_gets_pings_between_its_events(ping_server) -> None:
    raw = await _raw(ping_server, "slow")
    frames = raw.split(b"\n\n")[:-1]
    ping = PING.rstrip(b"\n")
    # About 3 per gap of 4 ping_seconds; the first gap passes before the 200 (the first word is
    # awaited before the response starts), the two after it are streamed.
    assert frames.count(ping) >= 4
    data = [f for f in frames if f.startswith(b"data: ")]
    assert data[-1] == b"data: [DONE]"
    assert [b'"content":"one"' in data[1], b'"content":" two"' in data[2], b'"content":" three"' in data[3]] \
        == [True, True, True]
    assert ping in frames[frames.index(data[1]):frames.index(data[2])]
    assert frames[-1] == b"data: [DONE]"


async def test_a_busy_stream_gets_no_pings(ping_server) -> None:
    raw = await _raw(ping_server, "fast")
    assert PING not in raw and raw.endswith(b"data: [DONE]\n\n")


class _Endless(ScriptedProvider):
    """Streams a word every 20 ms until closed, and records how it ended."""

    def __init__(self) -> None:
        super().__init__("")
        self.ended: str | None = None

    async def stream(self, request):
        try:
            while True:
                await asyncio.sleep(0.02)
                yield TextDelta("word ")
        except asyncio.CancelledError:
            self.ended = "cancelled"
            raise
        except GeneratorExit:
            self.ended = "closed"
            raise


async def test_a_client_that_leaves_stops_the_generation(ping_server) -> None:
    provider = _Endless()
    register_scripted(ping_server, "endless", provider)
    body = {"model": "endless", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    async with httpx.AsyncClient(base_url=ping_server.url, timeout=30) as c:
        async with c.stream("POST", "/v1/chat/completions", json=body) as r:
            assert r.status_code == 200
            seen = 0
            async for chunk in r.aiter_bytes():
                seen += chunk.count(b'"content":"word "')
                if seen >= 3:
                    break
    deadline = asyncio.get_running_loop().time() + 5
    while provider.ended is None and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
    assert provider.ended in ("cancelled", "closed")
