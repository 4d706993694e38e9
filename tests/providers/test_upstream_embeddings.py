"""/v1/embeddings through a real upstream (``python -m llama_cpp.server --embedding true``) and
its channels (issue 21): a provider with ``embeddings = true`` serves them, one without is a 400."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest

from support import free_port, start_server
from upstream import LlamaServer

sys.path.insert(0, str(Path(__file__).parents[1] / "dialects"))
from openai_schema import RecordingTransport, check  # noqa: E402

TEXTS = ["The cat sat on the mat.", "Stock markets fell sharply today."]


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory):
    server = LlamaServer(tmp_path_factory.mktemp("llama-embed") / "server.log", embedding=True).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def hubbub(llama, tmp_path_factory: pytest.TempPathFactory):
    dead = f"http://127.0.0.1:{free_port()}/v1"
    server = start_server(
        tmp_path_factory.mktemp("hubbub"),
        providers=[{"name": "emb", "base_url": llama.url + "/v1", "embeddings": True},
                   {"name": "dead-emb", "base_url": dead, "embeddings": True, "connect_timeout": 1},
                   {"name": "chat-only", "base_url": llama.url + "/v1"}],
        models=[{"id": "up-embed", "provider": "emb", "context_length": 2048},
                {"id": "up-embed-pair", "context_length": 2048},
                {"id": "up-chat", "provider": "chat-only", "context_length": 2048}],
        channels=[{"name": "pair-dead", "model": "up-embed-pair", "provider": "dead-emb", "priority": 10},
                  {"name": "pair-live", "model": "up-embed-pair", "provider": "emb", "priority": 0}],
    )
    yield server
    server.stop()


@pytest.fixture
async def api(hubbub):
    recorder = RecordingTransport()
    sdk = openai.AsyncOpenAI(base_url=f"{hubbub.url}/v1", api_key="unused", max_retries=0,
                             http_client=httpx.AsyncClient(transport=recorder, timeout=60))
    yield sdk
    await sdk.close()
    assert check(recorder.recorded) > 0


async def test_embeddings_through_an_upstream_channel(api, llama):
    got = await api.embeddings.create(model="up-embed", input=TEXTS, encoding_format="float")
    vectors = np.array([d.embedding for d in got.data])
    assert got.model == "up-embed" and vectors.shape == (2, 576)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert got.usage.prompt_tokens > 0  # the upstream's own count
    # The upstream runs the same GGUF, mean-pooled: its vectors are the embedded embedder's.
    local = await api.embeddings.create(model="smollm2-135m-instruct", input=TEXTS, encoding_format="float")
    assert all(float(np.dot(a.embedding, b.embedding)) > 0.98 for a, b in zip(got.data, local.data))


async def test_a_dead_channel_is_passed_over(api):
    got = await api.embeddings.create(model="up-embed-pair", input="hello", encoding_format="float")
    assert len(got.data[0].embedding) == 576


async def test_a_model_whose_upstream_does_not_embed_is_a_400(api):
    with pytest.raises(openai.BadRequestError) as refused:
        await api.embeddings.create(model="up-chat", input="hello")
    assert refused.value.body["param"] == "model"
