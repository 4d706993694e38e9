"""The OpenAI-compatible provider against upstreams that try to exhaust it (issue 22, Medium 9):
raw asyncio servers the test owns, sending what no honest upstream sends. Each bound is a
provider setting (docs/upstreams.md, "Limits on what an upstream sends")."""

from __future__ import annotations

import asyncio
import gzip
import json
from contextlib import aclosing
from typing import Any

import pytest

from hubbub.core.events import Finish, TextDelta, UsageReport
from hubbub.core.types import Message, ProviderRequest, SamplingParams
from hubbub.providers.faults import UpstreamUnavailable
from hubbub.providers.openai_compat import OpenAICompatProvider
from hubbub.settings import ProviderConfig
from test_http1 import Server

MiB = 1024 * 1024


def _request(max_tokens: int | None = 8) -> ProviderRequest:
    return ProviderRequest("m", [Message("user", "Hi")], SamplingParams(max_tokens=max_tokens))


async def _run(server: Server, max_tokens: int = 8, **config: Any) -> tuple[list[Any], Exception | None]:
    provider = OpenAICompatProvider(ProviderConfig(name="hostile", base_url=server.origin + "/v1", **config))
    events: list[Any] = []
    error: Exception | None = None
    try:
        async with aclosing(provider.stream(_request(max_tokens))) as stream:
            async for event in stream:
                events.append(event)
    except Exception as exc:  # noqa: BLE001 (what failed is the point)
        error = exc
    finally:
        await provider.aclose()
    return events, error


def _sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _content(text: str) -> bytes:
    return _sse({"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]})


async def test_a_whole_answer_larger_than_max_body_bytes_is_refused_while_it_comes():
    sent = 0

    async def endless(request, reader, writer):  # noqa: ANN001
        nonlocal sent
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n")
        for _ in range(4000):  # 1 GB if nobody stops it
            writer.write(b" " * 262144)
            sent += 262144
            await writer.drain()

    server = await Server(endless).start()
    events, error = await _run(server, stream=False, max_body_bytes=MiB)
    await asyncio.wait_for(server.closed.wait(), 10)
    await server.stop()
    assert isinstance(error, UpstreamUnavailable) and error.kind == "server_error"
    assert "larger than 1048576 bytes" in error.details and not events
    assert sent < 32 * MiB


async def test_a_gzip_bomb_is_never_inflated_whole():
    bomb = gzip.compress(b" " * (200 * MiB), compresslevel=9)  # about 200 KB

    async def answer(request, reader, writer):  # noqa: ANN001
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {len(bomb)}\r\n\r\n".encode()
                     + bomb)
        await writer.drain()

    server = await Server(answer).start()
    events, error = await _run(server, stream=False, max_body_bytes=4 * MiB)
    await server.stop()
    assert isinstance(error, UpstreamUnavailable) and "larger than 4194304 bytes" in error.details


async def test_an_endless_stream_line_is_cut_at_max_event_bytes():
    sent = 0

    async def endless_line(request, reader, writer):  # noqa: ANN001
        nonlocal sent
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        writer.write(_chunk(_content("Hello")))
        writer.write(_chunk(b"data: {\"choices\": [{\"delta\": {\"content\": \""))
        for _ in range(4000):
            writer.write(_chunk(b"a" * 65536))
            sent += 65536
            await writer.drain()

    server = await Server(endless_line).start()
    events, error = await _run(server, max_event_bytes=MiB)
    await asyncio.wait_for(server.closed.wait(), 10)
    await server.stop()
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hello"]
    assert isinstance(error, UpstreamUnavailable) and error.kind == "stream_broken"
    assert "longer than 1048576 bytes" in error.details
    assert sent < 32 * MiB


async def test_an_upstream_that_ignores_max_tokens_is_cut_at_max_tokens():
    finished = asyncio.Event()

    async def chatty(request, reader, writer):  # noqa: ANN001
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for i in range(500):  # asked for 5
                writer.write(_chunk(_content(f" w{i}")))
                await writer.drain()
                await asyncio.sleep(0.005)
            writer.write(_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
            await writer.drain()
            finished.set()
        except ConnectionError:
            pass

    server = await Server(chatty).start()
    events, error = await _run(server, max_tokens=5)
    await asyncio.wait_for(server.closed.wait(), 10)
    await server.stop()
    assert error is None
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == " w0 w1 w2 w3 w4"
    assert sum(e.tokens for e in events if isinstance(e, TextDelta)) == 5
    assert events[-2].usage.completion_tokens == 5 and events[-1] == Finish("length")
    assert not finished.is_set()  # hubbub hung up on the rest


@pytest.mark.parametrize("bad", [b"[1, 2]", b'{"choices": {"delta": 1}}', b'{"choices": [{"delta": {"content": 7}}]}',
                                 b'{"choices": [{"delta": "x"}]}', b'{"usage": {"prompt_tokens": "many"}}'])
async def test_a_chunk_of_the_wrong_shape_breaks_the_stream_cleanly(bad):
    async def odd(request, reader, writer):  # noqa: ANN001
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        writer.write(_chunk(_content("Hi") + b"data: " + bad + b"\n\n") + _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        await writer.drain()

    server = await Server(odd).start()
    events, error = await _run(server)
    await server.stop()
    # The upstream's fault, said as such (the router continues elsewhere), never hubbub's own crash.
    assert isinstance(error, UpstreamUnavailable) and error.kind == "stream_broken"
    assert error.details == "hostile: unreadable stream chunk"
    assert not any(isinstance(e, UsageReport) for e in events)
