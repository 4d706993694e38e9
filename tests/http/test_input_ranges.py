"""Every numeric wire field has a range, checked at the edge (issue 22, High 3): out of range is
a 4xx in the route's dialect shape, never a 500, never a request that fails later in hubbub's
own encoding of an upstream request (``seed`` >= 2^64 did, and counted against the channel:
tests/providers/test_upstream_seed_range.py), never a database overflow (``rpm`` >= 2^63 did).

The values go out as raw JSON text, so NaN and ±Infinity are sent as the tokens some clients write.
"""

from __future__ import annotations

import json

import httpx
import pytest

from hubbub.settings import EMBEDDED_MODEL_ID
from support import start_server

HI = [{"role": "user", "content": "hi"}]
# Outside every documented range: past 64 bits either way, huge floats, non-numbers.
EXTREMES = ["18446744073709551616", "9223372036854775808", "-9223372036854775809", "-18446744073709551616",
            "1e308", "-1e308", "1e400", "NaN", "Infinity", "-Infinity"]


def raw(body: dict, field: str, value: str) -> bytes:
    """``body`` with ``field`` set to the JSON number text ``value`` (as written, not re-encoded)."""
    text = json.dumps({**body, field: "__VALUE__"})
    return text.replace('"__VALUE__"', value).encode()


def post(client: httpx.Client, url: str, content: bytes) -> httpx.Response:
    return client.post(url, content=content, headers={"content-type": "application/json"})


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


@pytest.mark.parametrize("field", ["temperature", "top_p", "max_tokens", "max_completion_tokens", "seed", "n"])
def test_openai_numbers_out_of_range_are_400_naming_the_parameter(http, field):
    base = {"model": EMBEDDED_MODEL_ID, "messages": HI, "max_tokens": 2}
    for value in EXTREMES:
        r = post(http, "/v1/chat/completions", raw(base, field, value))
        assert r.status_code == 400, (field, value, r.status_code, r.text)
        error = r.json()["error"]
        assert error["type"] == "invalid_request_error" and error["param"] == field, (value, error)


def test_openai_seed_takes_the_whole_int64_range(http):
    base = {"model": EMBEDDED_MODEL_ID, "messages": HI, "max_tokens": 2}
    for seed in (-(2**63), 2**63 - 1, 0):
        r = http.post("/v1/chat/completions", json={**base, "seed": seed})
        assert r.status_code == 200, (seed, r.text)


@pytest.mark.parametrize("field", ["temperature", "topP", "maxTokens"])
def test_bento_numbers_out_of_range_are_400_with_details(http, field):
    for value in EXTREMES:
        r = post(http, "/api/bento/chat/stream", raw({"messages": HI, "maxTokens": 2}, field, value))
        assert r.status_code == 400, (field, value, r.status_code, r.text)
        body = r.json()
        assert body["error"] == "Invalid request" and [d["field"] for d in body["details"]] == [field], body


def test_builder_and_websocket_temperature_out_of_range_are_validation_errors(http, server):
    for value in EXTREMES:
        r = post(http, "/api/chat", raw({"messages": HI}, "temperature", value))
        assert r.status_code == 400 and r.json()["error"]["code"] == "VALIDATION_ERROR", (value, r.text)


@pytest.mark.parametrize("field", ["temperature", "maxTokens", "topP"])
def test_bot_numbers_out_of_range_are_422_in_the_v1_shape(http, field):
    for value in EXTREMES:
        r = post(http, "/api/bots", raw({"slug": "ranges", "name": "Ranges"}, field, value))
        assert r.status_code == 422, (field, value, r.status_code, r.text)
        assert [e["loc"] for e in r.json()["detail"]] == [["body", field]], r.text
        r = http.patch("/api/bots/default", content=raw({}, field, value), headers={"content-type": "application/json"})
        assert r.status_code == 422 and [e["loc"] for e in r.json()["detail"]] == [["body", field]], r.text


def test_document_search_k_out_of_range_is_400(http):
    for value in EXTREMES:
        r = post(http, "/api/documents/search", raw({"query": "x"}, "k", value))
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request", (value, r.text)


def test_list_query_numbers_out_of_range_are_400(http):
    for value in ("18446744073709551616", "-1", "1e309", "NaN", "9" * 400, "\u0661"):
        for name in ("limit", "offset"):
            r = http.get("/api/conversations", params={name: value})
            assert r.status_code == 400 and r.json()["success"] is False, (name, value, r.text)


def test_key_limits_past_the_column_are_422_and_the_largest_is_stored(tmp_path):
    """``rpm``/``tpm``/``dailyTokens`` go into 32-bit columns (PostgreSQL INTEGER): 2^31 - 1 at most."""
    srv = start_server(tmp_path, embedded={"enabled": False})
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            r = c.post("/api/keys", json={"name": "root", "admin": True})
            assert r.status_code == 201
            c.headers["Authorization"] = f"Bearer {r.json()['key']}"
            for field in ("rpm", "tpm", "dailyTokens"):
                for value in ["2147483648", *EXTREMES]:
                    r = post(c, "/api/keys", raw({"name": "big"}, field, value))
                    assert r.status_code == 422, (field, value, r.status_code, r.text)
                    assert [d["field"] for d in r.json()["detail"]] == [field], r.text
                r = c.post("/api/keys", json={"name": "largest", field: 2**31 - 1})
                assert r.status_code == 201 and r.json()[field] == 2**31 - 1, r.text
    finally:
        srv.stop()
