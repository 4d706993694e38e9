"""Every stored turn ends in a final state with what was generated kept (issue 22, Medium 6).

A model or an upstream may generate a NUL; PostgreSQL refuses a NUL in text. Before, the final write failed, the retry failed the same
way, and the chat stayed ``streaming`` for ever with its text lost. Now such characters
are stored as U+FFFD (docs/security.md) and the client gets ``done``."""

from __future__ import annotations

import uuid

import httpx
import pytest

from support import ScriptedProvider, collect_sse, register_scripted, start_on_backend


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request, tmp_path_factory):
    srv = start_on_backend(request, tmp_path_factory, "endings", embedded={"enabled": False})
    yield srv
    srv.stop()


async def test_a_generated_nul_is_kept_as_a_replacement_and_the_turn_ends(backend):
    odd = "\x00"  # (a lone surrogate cannot come from a model: llama.cpp and the upstream JSON parsers
    # never produce one; storage.repositories.storable maps it too)
    model = f"odd-{uuid.uuid4().hex[:8]}"
    register_scripted(backend, model, ScriptedProvider(f"before{odd}after and more"))
    async with httpx.AsyncClient(base_url=backend.url, timeout=60) as client:
        r, events = await collect_sse(client, "POST", "/api/chat", json={
            "messages": [{"role": "user", "content": "Say it."}], "model": model, "enableDSL": False})
        assert r.status_code == 200
        bodies = [e.json() for e in events]
        assert bodies[-1]["type"] == "done", bodies[-3:]
        chat = (await client.get(f"/api/chat/{r.headers['x-chat-id']}")).json()
    assert chat["status"] == "complete"
    assert chat["messages"][-1]["content"] == "before\ufffdafter and more"
