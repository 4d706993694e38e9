"""Failover with tools (issue 16, docs/tool-calling.md "Failover"): an upstream stream cut before
any tool-call delta went out fails over to the next channel, which answers the whole call; one
cut in the middle of a call's arguments never reaches the client as a finished call — it ends
with a clear in-band error (a 502 when not streamed), never ``finish_reason: "tool_calls"``, and
no other channel is asked to finish a call the client has seen part of.

The upstream is the recording OpenAI server (tests/recorders.py), which streams calls as OpenAI
does (a call's first delta names it, later ones carry 7-byte argument fragments), behind two
fault proxies (tests/providers/upstream.py) that cut its streams at a chosen byte.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import httpx
import pytest

from recorders import OpenAIRecorder, Reply
from support import ServerThread, start_server
from upstream import FaultProxy

TOOL = {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city",
                                         "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                        "required": ["city"]}}}
ARGUMENTS = json.dumps({"city": "Oslo, the capital of Norway"})
REQUEST = {"model": "m", "messages": [{"role": "user", "content": "Weather in Oslo?"}], "tools": [TOOL],
           "tool_choice": "required"}


@pytest.fixture(scope="module")
def recorder() -> Iterator[OpenAIRecorder]:
    rec = OpenAIRecorder().start()
    yield rec
    rec.stop()


@pytest.fixture(scope="module")
def proxies(recorder: OpenAIRecorder) -> Iterator[dict[str, FaultProxy]]:
    made = {name: FaultProxy(recorder.port).start() for name in ("primary", "fallback")}
    yield made
    for proxy in made.values():
        proxy.stop()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, proxies: dict[str, FaultProxy]) -> Iterator[ServerThread]:
    server = start_server(
        tmp_path_factory.mktemp("tool-failover"),
        providers=[{"name": f"via-{n}", "base_url": p.url} for n, p in proxies.items()],
        models=[{"id": "m", "context_length": 4096}],
        # No retries on the same channel: a cut goes straight to the next one (or to the client).
        channels=[{"name": "primary", "model": "m", "provider": "via-primary", "priority": 10, "max_retries": 0},
                  {"name": "fallback", "model": "m", "provider": "via-fallback", "priority": 0, "max_retries": 0}],
        failover={"cooldown_seconds": 0.0, "first_token_timeout": 60.0})
    yield server
    server.stop()


@pytest.fixture
def fresh(recorder: OpenAIRecorder, proxies: dict[str, FaultProxy]) -> tuple[OpenAIRecorder, dict[str, FaultProxy]]:
    recorder.requests.clear()
    recorder.replies.clear()
    for proxy in proxies.values():
        proxy.set("pass")
    return recorder, proxies


def _call_reply() -> Reply:
    return Reply(text="", tool_calls=[("get_weather", ARGUMENTS)])


def _body_offset(proxy: FaultProxy, marker: bytes) -> int:
    """Where ``marker`` starts in the body of the proxy's first forwarded response, as the proxy
    counts (raw bytes after the headers)."""
    raw = proxy.connections[0].response
    body = raw[raw.index(b"\r\n\r\n") + 4:]
    return body.index(marker)


def _events(text: str) -> list[Any]:
    return [json.loads(line[6:]) for line in text.splitlines()
            if line.startswith("data: ") and line[6:].strip() != "[DONE]"]


async def _stream(hub: ServerThread) -> tuple[int, list[Any]]:
    async with httpx.AsyncClient(base_url=hub.url, timeout=120) as client:
        r = await client.post("/v1/chat/completions", json={**REQUEST, "stream": True})
        return r.status_code, _events(r.text)


def _joined(events: list[Any]) -> tuple[list[tuple[str, str]], list[str]]:
    calls: dict[int, list[str]] = {}
    finishes = []
    for e in events:
        for choice in e.get("choices") or ():
            for d in (choice.get("delta") or {}).get("tool_calls") or ():
                call = calls.setdefault(d["index"], ["", ""])
                call[0] += (d.get("function") or {}).get("name") or ""
                call[1] += (d.get("function") or {}).get("arguments") or ""
            if choice.get("finish_reason"):
                finishes.append(choice["finish_reason"])
    return [tuple(calls[i]) for i in sorted(calls)], finishes  # type: ignore[misc]


async def _cut_offsets(hub: ServerThread, recorder: OpenAIRecorder, primary: FaultProxy) -> tuple[int, int]:
    """A clean run first, to learn the byte offsets: where the first tool-call delta starts, and a
    point in the middle of the call's arguments (inside its second fragment)."""
    recorder.replies.append(_call_reply())
    status, events = await _stream(hub)
    assert status == 200 and _joined(events) == ([("get_weather", ARGUMENTS)], ["tool_calls"])
    first_call = _body_offset(primary, b'data: {"id": "chatcmpl-rec", "object": "chat.completion.chunk", "created": 1, '
                                       b'"model": "m", "choices": [{"index": 0, "delta": {"tool_calls"')
    fragment = json.dumps(ARGUMENTS[7:14])[1:-1].encode()  # the second fragment, as escaped in JSON
    middle = _body_offset(primary, fragment) + 3
    primary.set("pass")
    recorder.requests.clear()
    return first_call, middle


async def test_a_cut_before_any_tool_call_delta_fails_over_to_the_next_channel(hub, fresh):
    recorder, proxies = fresh
    first_call, _ = await _cut_offsets(hub, recorder, proxies["primary"])
    proxies["primary"].set("cut", cut_after=first_call)
    recorder.replies.extend([_call_reply(), _call_reply()])
    status, events = await _stream(hub)
    assert status == 200
    assert proxies["primary"].connections[0].cut and len(proxies["fallback"].connections) == 1
    calls, finishes = _joined(events)
    assert calls == [("get_weather", ARGUMENTS)] and finishes == ["tool_calls"]
    assert not any("error" in e for e in events)
    # the fallback was asked the same thing: tools and tool_choice passed through unchanged
    assert len(recorder.requests) == 2 and recorder.requests[1]["tools"] == [TOOL]
    assert recorder.requests[1]["tool_choice"] == "required"
    assert recorder.requests[1]["messages"] == REQUEST["messages"]  # no prefix: nothing had been sent


async def test_a_cut_in_the_middle_of_a_calls_arguments_ends_in_an_error_never_a_finished_call(hub, fresh):
    recorder, proxies = fresh
    _, middle = await _cut_offsets(hub, recorder, proxies["primary"])
    proxies["primary"].set("cut", cut_after=middle)
    recorder.replies.extend([_call_reply(), _call_reply()])
    status, events = await _stream(hub)
    assert status == 200 and proxies["primary"].connections[0].cut
    calls, finishes = _joined(events)
    assert calls and calls[0][0] == "get_weather" and calls[0][1] != ARGUMENTS  # part of the call went out
    assert ARGUMENTS.startswith(calls[0][1])
    assert "tool_calls" not in finishes  # never presented as finished
    errors = [e["error"] for e in events if "error" in e]
    assert len(errors) == 1 and "tool call" in errors[0]["message"], events[-1]
    assert "error" in events[-1]  # the error ends the stream
    assert proxies["fallback"].connections == []  # no channel may finish a call the client saw part of
    assert len(recorder.requests) == 1


async def test_a_whole_answer_cut_in_a_calls_arguments_is_an_error_not_a_call(hub, fresh):
    recorder, proxies = fresh
    _, middle = await _cut_offsets(hub, recorder, proxies["primary"])
    proxies["primary"].set("cut", cut_after=middle)
    recorder.replies.extend([_call_reply(), _call_reply()])
    async with httpx.AsyncClient(base_url=hub.url, timeout=120) as client:
        r = await client.post("/v1/chat/completions", json=REQUEST)
    assert r.status_code == 502, r.text
    assert "tool call" in r.json()["error"]["message"] and "choices" not in r.json()
    assert proxies["fallback"].connections == []
