"""RAG in chat: an uploaded fact reaches the prompt as a numbered source, the answer names its
source (bento and bots: ``X-Rag-Sources``; OpenAI: ``rag_sources``), and the real embedded
model answers from it."""

from __future__ import annotations

import json

import pytest

from hubbub.settings import EMBEDDED_MODEL_ID
from support import ScriptedProvider, collect_sse, register_scripted

FACT = "The Q4 revenue of Zorblax Corp was 17.3 million florins."
QUESTION = "What does the report say about Q4 revenue of Zorblax Corp?"


@pytest.fixture(scope="module")
def scripted(server):
    provider = ScriptedProvider("It was 17.3 million florins [1].")
    register_scripted(server, "rag-scripted", provider, context_length=4096)
    return provider


@pytest.fixture(scope="module")
async def report(server, scripted):
    import httpx

    async with httpx.AsyncClient(base_url=server.url, timeout=60) as c:
        r = await c.post("/api/documents", files={"file": ("zorblax-q4.md", f"# Q4 results\n\n{FACT}\n".encode(),
                                                           "text/markdown")})
        assert r.status_code == 201, r.text
        return r.json()


def system_prompt(provider: ScriptedProvider) -> str:
    messages = provider.requests[-1].messages
    assert messages[0].role == "system"
    return messages[0].content


async def test_bento_rag_puts_the_passage_in_the_prompt_and_names_the_source(client, scripted, report) -> None:
    body = {"model": "rag-scripted", "ragEnabled": True, "messages": [{"role": "user", "content": QUESTION}]}
    response, events = await collect_sse(client, "POST", "/api/bento/chat/stream", json=body)
    assert response.status_code == 200
    assert "".join(e.json()["content"] for e in events if e.data != "[DONE]") == "It was 17.3 million florins [1]."
    sources = json.loads(response.headers["x-rag-sources"])
    assert sources[0] == {"documentId": report["id"], "title": "zorblax-q4"}
    prompt = system_prompt(scripted)
    assert "[1] zorblax-q4 › Q4 results\n" + FACT in prompt
    assert scripted.requests[-1].messages[-1].content == QUESTION  # the question itself is untouched


async def test_without_rag_nothing_is_added(client, scripted, report) -> None:
    body = {"model": "rag-scripted", "messages": [{"role": "user", "content": QUESTION}]}
    response, _ = await collect_sse(client, "POST", "/api/bento/chat/stream", json=body)
    assert response.status_code == 200 and "x-rag-sources" not in response.headers
    assert all(FACT not in m.content for m in scripted.requests[-1].messages)


async def test_client_system_prompt_is_kept_before_the_sources(client, scripted, report) -> None:
    body = {"model": "rag-scripted", "ragEnabled": True, "messages": [
        {"role": "system", "content": "You are terse."}, {"role": "user", "content": QUESTION}]}
    response, _ = await collect_sse(client, "POST", "/api/bento/chat/stream", json=body)
    assert response.status_code == 200
    prompt = system_prompt(scripted)
    assert prompt.startswith("You are terse.") and FACT in prompt
    assert sum(m.role == "system" for m in scripted.requests[-1].messages) == 1


async def test_sources_fit_the_models_context(server, client, report) -> None:
    tiny = ScriptedProvider("ok")
    register_scripted(server, "rag-tiny", tiny, context_length=40)  # room for the question, not the passage
    body = {"model": "rag-tiny", "ragEnabled": True, "maxTokens": 4,
            "messages": [{"role": "user", "content": "Zorblax Q4 revenue?"}]}
    response, _ = await collect_sse(client, "POST", "/api/bento/chat/stream", json=body)
    assert response.status_code == 200, response.text
    assert json.loads(response.headers["x-rag-sources"]) == []
    assert all(FACT not in m.content for m in tiny.requests[-1].messages)


async def test_openai_rag_reports_sources_in_body_and_first_chunk(client, scripted, report) -> None:
    body = {"model": "rag-scripted", "rag": True, "messages": [{"role": "user", "content": QUESTION}]}
    r = await client.post("/v1/chat/completions", json=body)
    assert r.status_code == 200
    assert r.json()["rag_sources"][0]["documentId"] == report["id"]
    assert r.json()["choices"][0]["message"]["content"] == "It was 17.3 million florins [1]."
    response, events = await collect_sse(client, "POST", "/v1/chat/completions", json={**body, "stream": True})
    chunks = [e.json() for e in events if e.data != "[DONE]"]
    assert chunks[0]["rag_sources"][0]["title"] == "zorblax-q4"
    assert all("rag_sources" not in c for c in chunks[1:])
    r = await client.post("/v1/chat/completions", json={**body, "rag": False})
    assert "rag_sources" not in r.json()


async def test_bot_with_rag_enabled(client, scripted, report) -> None:
    r = await client.post("/api/bots", json={"slug": "zorblax-analyst", "name": "Analyst", "model": "rag-scripted",
                                             "ragEnabled": True})
    assert r.status_code == 201, r.text
    r = await client.post("/chat", json={"bot_slug": "zorblax-analyst", "prompt": QUESTION, "stream": False})
    assert r.status_code == 200 and r.json() == {"content": "It was 17.3 million florins [1]."}
    assert json.loads(r.headers["x-rag-sources"])[0]["documentId"] == report["id"]
    assert FACT in system_prompt(scripted)
    r = await client.post("/v1/chat/completions", json={"model": "@zorblax-analyst",
                                                        "messages": [{"role": "user", "content": QUESTION}]})
    assert r.json()["rag_sources"][0]["documentId"] == report["id"]


async def test_real_model_answers_from_the_document(client, report) -> None:
    body = {"model": EMBEDDED_MODEL_ID, "ragEnabled": True, "temperature": 0, "maxTokens": 24,
            "messages": [{"role": "user", "content": "What was the Q4 revenue of Zorblax Corp?"}]}
    response, events = await collect_sse(client, "POST", "/api/bento/chat/stream", json=body)
    assert response.status_code == 200
    answer = "".join(e.json()["content"] for e in events if e.data != "[DONE]")
    assert "17.3" in answer, answer
    assert report["id"] in {s["documentId"] for s in json.loads(response.headers["x-rag-sources"])}
