"""Stored responses outlive their process and their replica (issue 18), through the official
``openai`` SDK: ``previous_response_id`` after a restart and on another replica sharing
PostgreSQL and Redis, a background stream resumed on the other replica with
``starting_after`` (every remaining event exactly once), a cancel sent to the replica that does
not run it, and a response whose process was killed reads ``failed``."""

from __future__ import annotations

import signal

import httpx
import openai
import pytest

from support import ServerProcess
from test_responses import LONG, check_sequence, parse_sse

EMBEDDED = "smollm2-135m-instruct"
ENV = {"max_tokens_cap": "256", "embedded__max_sequences": "2"}


def sdk(server: ServerProcess) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def replicas(tmp_path_factory, module_pg_database, redis_url):
    env = {**ENV, "database_url": module_pg_database, "redis_url": redis_url}
    a = ServerProcess(tmp_path_factory.mktemp("a"), **env).wait_ready()
    b = ServerProcess(tmp_path_factory.mktemp("b"), **env).wait_ready()
    yield a, b
    a.stop()
    b.stop()


async def _tokens_alone(client: openai.AsyncOpenAI, text: str) -> int:
    alone = await client.responses.create(model=EMBEDDED, input=text, max_output_tokens=16, store=False)
    return alone.usage.input_tokens


async def test_previous_response_id_on_another_replica(replicas):
    a, b = replicas
    first = await sdk(a).responses.create(model=EMBEDDED, input="My name is Ada.", max_output_tokens=16,
                                          temperature=0)
    second = await sdk(b).responses.create(model=EMBEDDED, input="What is my name?", previous_response_id=first.id,
                                           max_output_tokens=16, temperature=0)
    assert second.previous_response_id == first.id and second.status in ("completed", "incomplete")
    assert second.usage.input_tokens > await _tokens_alone(sdk(b), "What is my name?"), "the parent's turn is in it"
    assert (await sdk(a).responses.retrieve(second.id)).output_text == second.output_text
    items = await sdk(a).responses.input_items.list(second.id)
    assert [i.content[0].text for i in items.data] == ["What is my name?"]


async def test_a_background_stream_resumes_on_the_other_replica(replicas):
    a, b = replicas
    seen: list = []
    async with httpx.AsyncClient(base_url=a.url, timeout=120) as http:
        async with http.stream("POST", "/v1/responses", json={"model": EMBEDDED, "input": LONG, "stream": True,
                                                               "background": True, "max_output_tokens": 48}) as r:
            assert r.status_code == 200
            buffer = b""
            async for chunk in r.aiter_bytes():
                buffer += chunk
                whole, _, buffer = buffer.rpartition(b"\n\n")
                if whole:
                    seen += parse_sse(whole + b"\n\n")
                if sum(k == "response.output_text.delta" for k, _ in seen) >= 4:
                    break  # the client drops: the response goes on, on A
    response_id = seen[0][1]["response"]["id"]
    last = seen[-1][1]["sequence_number"]
    rest = [e async for e in await sdk(b).responses.retrieve(response_id, stream=True, starting_after=last)]
    assert [e.sequence_number for e in rest] == list(range(last + 1, last + 1 + len(rest)))
    assert rest[-1].type in ("response.completed", "response.incomplete")
    async with httpx.AsyncClient(base_url=b.url, timeout=120) as http:
        full = parse_sse((await http.get(f"/v1/responses/{response_id}", params={"stream": "true"})).content)
    check_sequence(full)
    assert [d for _, d in seen] + [e.model_dump(exclude_unset=True) for e in rest] == [d for _, d in full]
    final = await sdk(b).responses.retrieve(response_id)
    assert final.output_text == "".join(d["delta"] for k, d in full if k == "response.output_text.delta")


async def test_a_cancel_sent_to_b_stops_the_response_running_on_a(replicas):
    a, b = replicas
    started = await sdk(a).responses.create(model=EMBEDDED, input=LONG, background=True, max_output_tokens=256)
    async with httpx.AsyncClient(base_url=a.url, timeout=120) as http:
        async with http.stream("GET", f"/v1/responses/{started.id}", params={"stream": "true"}) as r:
            n = 0
            async for line in r.aiter_lines():
                n += line.startswith("event: response.output_text.delta")
                if n >= 2:
                    break
    cancelled = await sdk(b).responses.cancel(started.id)
    assert cancelled.status == "cancelled"
    on_a = await sdk(a).responses.retrieve(started.id)
    assert on_a.status == "cancelled" and on_a.output_text == cancelled.output_text and on_a.output_text


async def test_previous_response_id_after_a_restart_and_a_killed_process(tmp_path):
    server = ServerProcess(tmp_path, **ENV).wait_ready()
    try:
        first = await sdk(server).responses.create(model=EMBEDDED, input="My name is Ada.", max_output_tokens=16)
        running = await sdk(server).responses.create(model=EMBEDDED, input=LONG, background=True,
                                                     max_output_tokens=256)
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
            async with http.stream("GET", f"/v1/responses/{running.id}", params={"stream": "true"}) as r:
                async for line in r.aiter_lines():
                    if line.startswith("event: response.output_text.delta"):
                        break
    finally:
        server.signal(signal.SIGKILL)  # no shutdown: the background response dies mid-answer
        server.proc.wait(30)
        server._log.close()
    again = ServerProcess(tmp_path, **ENV).wait_ready()
    try:
        client = sdk(again)
        second = await client.responses.create(model=EMBEDDED, input="What is my name?",
                                               previous_response_id=first.id, max_output_tokens=16)
        assert second.usage.input_tokens > await _tokens_alone(client, "What is my name?")
        assert (await client.responses.retrieve(first.id)).output_text == first.output_text
        dead = await client.responses.retrieve(running.id)
        assert dead.status == "failed" and dead.error.code == "server_error"
        async with httpx.AsyncClient(base_url=again.url, timeout=120) as http:
            frames = parse_sse((await http.get(f"/v1/responses/{running.id}", params={"stream": "true"})).content)
        assert check_sequence(frames)["response"]["status"] == "failed"
        continued = await client.responses.create(model=EMBEDDED, input="Go on.", previous_response_id=running.id,
                                                  max_output_tokens=16)
        assert continued.status in ("completed", "incomplete")
    finally:
        again.stop()
