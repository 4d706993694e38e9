"""``hubbub serve`` logs: JSON lines (the default away from a terminal) carrying the request id,
from the access line and from any module logging while the request runs; text on request."""

from __future__ import annotations

import io
import json
import logging
import time

import httpx
import pytest

from hubbub.logs import RequestIdFilter, TextFormatter, request_id
from support import ServerProcess, free_port


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A real ``hubbub serve`` process (stdout/stderr to a file), with one model behind an upstream
    that refuses connections, so a request to it logs a channel failure."""
    data = tmp_path_factory.mktemp("logs")
    config = data / "hubbub.toml"
    config.write_text(f"""
default_model = "gone-model"

[[providers]]
name = "gone"
base_url = "http://127.0.0.1:{free_port()}/v1"

[[models]]
id = "gone-model"
provider = "gone"
context_length = 4096
""")
    server = ServerProcess(data, config=str(config), embedded__enabled="false")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def _lines(server: ServerProcess, until, timeout: float = 10.0) -> list[dict]:
    """The JSON log lines so far, once ``until(lines)`` holds (the access line follows the response)."""
    deadline = time.monotonic() + timeout
    while True:
        text = server.log_path.read_text()
        lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        if until(lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_every_line_is_json_and_the_access_line_carries_the_request_id(served) -> None:
    r = httpx.get(f"{served.url}/v1/models", headers={"X-Request-Id": "rid-models-1"}, timeout=10)
    assert r.status_code == 200 and r.headers["x-request-id"] == "rid-models-1"
    lines = _lines(served, lambda ls: any(x.get("request_id") == "rid-models-1" for x in ls))
    access = [x for x in lines if x.get("request_id") == "rid-models-1"]
    assert len(access) == 1, access
    line = access[0]
    assert line["logger"] == "hubbub.access" and line["level"] == "info"
    assert (line["method"], line["path"], line["status"]) == ("GET", "/v1/models", 200)
    assert isinstance(line["duration_ms"], float) and 0 <= line["duration_ms"] < 10_000
    assert line["message"].startswith("GET /v1/models 200 ")
    assert line["timestamp"].endswith("Z") and "T" in line["timestamp"]
    # Outside requests (startup) there is no request id; only the "listening on" print is not JSON.
    assert any(x["logger"] == "hubbub" and "ready on" in x["message"] and "request_id" not in x for x in lines)
    assert not any("color_message" in x for x in lines)  # uvicorn's coloured copy of its message
    other = [t for t in served.log_path.read_text().splitlines() if t and not t.startswith("{")]
    assert all("listening on" in t for t in other), other


def test_lines_logged_inside_a_request_carry_its_id(served) -> None:
    body = {"model": "gone-model", "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post(f"{served.url}/v1/chat/completions", json=body, headers={"X-Request-Id": "rid-gone-2"},
                   timeout=30)
    assert r.status_code == 503, r.text
    lines = _lines(served, lambda ls: any(x.get("logger") == "hubbub.access" and x.get("request_id") == "rid-gone-2"
                                          for x in ls))
    mine = [x for x in lines if x.get("request_id") == "rid-gone-2"]
    failure = [x for x in mine if x["logger"] == "hubbub.providers.channels"]
    assert failure and failure[0]["level"] == "warning" and "gone" in failure[0]["message"], mine
    assert mine[-1]["logger"] == "hubbub.access" and mine[-1]["status"] == 503


def test_a_request_without_an_id_gets_one_in_its_lines(served) -> None:
    r = httpx.get(f"{served.url}/healthz", timeout=10)
    rid = r.headers["x-request-id"]
    lines = _lines(served, lambda ls: any(x.get("request_id") == rid for x in ls))
    assert [x["path"] for x in lines if x.get("request_id") == rid] == ["/healthz"]


def test_text_lines_end_with_the_request_id_and_extra_fields() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(TextFormatter())
    handler.addFilter(RequestIdFilter())
    log = logging.getLogger("hubbub.test_logs")
    log.addHandler(handler)
    log.propagate = False
    try:
        token = request_id.set("rid-text-3")
        try:
            log.warning("inside %s", "a request", extra={"status": 201})
        finally:
            request_id.reset(token)
        log.warning("outside")
    finally:
        log.removeHandler(handler)
        log.propagate = True
    inside, outside = out.getvalue().splitlines()
    assert inside.endswith(" WARNING hubbub.test_logs: inside a request status=201 [rid-text-3]")
    assert outside.endswith(" WARNING hubbub.test_logs: outside")


# -- no secret in any line (issue 22, High 1) --------------------------------------


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    """A real ``hubbub serve`` with an admin key (created through the API while it was open)."""
    data = tmp_path_factory.mktemp("logs-keyed")
    config = data / "hubbub.toml"
    config.write_text(f"""
default_model = "gone-model"

[[providers]]
name = "gone"
base_url = "http://127.0.0.1:{free_port()}/v1"

[[models]]
id = "gone-model"
provider = "gone"
context_length = 4096
""")
    server = ServerProcess(data, config=str(config), embedded__enabled="false")
    try:
        server.wait_ready()
        r = httpx.post(f"{server.url}/api/keys", json={"name": "ops", "admin": True}, timeout=10)
        assert r.status_code == 201, r.text
        server.key = r.json()["key"]
        yield server
    finally:
        server.stop()


async def _ws_events(ws, until_type: str, timeout: float = 30) -> list[dict]:
    import asyncio

    out: list[dict] = []
    async with asyncio.timeout(timeout):
        while not out or out[-1]["type"] != until_type:
            out.append(json.loads(await ws.recv()))
    return out


async def test_no_key_reaches_the_log_from_websockets_or_query_strings(keyed) -> None:
    """The WebSocket key in ``?api_key=`` (uvicorn logs a socket's path with its query string),
    in a header, in a first ``auth`` message, and a key in an HTTP query string: the key appears
    in no line, and the line that carried it shows it masked."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    key, ws_url = keyed.key, keyed.url.replace("http://", "ws://") + "/api/chat/ws"
    message = {"type": "message", "content": "hi", "model": "gone-model"}
    # Every way in is admitted: the message reaches the model (whose upstream is gone: an error event).
    for url, headers, first in ((f"{ws_url}?api_key={key}", None, None),
                                (ws_url, {"Authorization": f"Bearer {key}"}, None),
                                (ws_url, None, {"type": "auth", "key": key})):
        async with connect(url, additional_headers=headers) as ws:
            if first:
                await ws.send(json.dumps(first))
            await ws.send(json.dumps(message))
            events = await _ws_events(ws, "error")
            assert events[-1]["content"]["code"] == "CHANNEL_UNAVAILABLE", events
    # A wrong key in the first message closes the socket with 4401.
    async with connect(ws_url) as ws:
        await ws.send(json.dumps({"type": "auth", "key": key + "x"}))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd.code == 4401
    r = httpx.get(f"{keyed.url}/v1/models?api_key={key}&token={key}", headers={"Authorization": f"Bearer {key}"},
                  timeout=10)
    assert r.status_code == 200

    text = ""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the lines logged after the last response
        text = keyed.log_path.read_text()
        if text.count("[accepted]") >= 4 and "/v1/models" in text:
            break
        time.sleep(0.05)
    assert key not in text and key[3:] not in text, [line for line in text.splitlines() if key[3:] in line]
    accepted = [json.loads(line)["message"] for line in text.splitlines() if "[accepted]" in line]
    assert any("/api/chat/ws?api_key=***" in line for line in accepted), accepted


def test_redact_masks_credentials_and_keeps_the_rest() -> None:
    from hubbub.logs import redact

    key = "hb_" + "A1b2_C3-d4" * 4
    assert redact(f'1.2.3.4:5 - "WebSocket /api/chat/ws?api_key={key}&x=1" [accepted]') == \
        '1.2.3.4:5 - "WebSocket /api/chat/ws?api_key=***&x=1" [accepted]'
    assert redact(f"GET /p?a=1&TOKEN=s3cret#f") == "GET /p?a=1&TOKEN=***#f"
    assert redact("Authorization: Bearer sk-live.123") == "Authorization: Bearer ***"
    assert redact("redis://user:pa55@127.0.0.1:6379/0") == "redis://user:***@127.0.0.1:6379/0"
    assert redact(f"the key {key} leaked") == "the key *** leaked"
    assert redact("monkey=1 turkey=2 GET /keys?limit=5") == "monkey=1 turkey=2 GET /keys?limit=5"
