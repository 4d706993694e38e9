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
