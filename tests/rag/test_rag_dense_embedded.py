"""RAG dense mode on the embedded GGUF's embeddings (issue 21): no optional package needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hubbub.providers.gguf_embedder import from_config
from hubbub.rag.config import RagConfig
from hubbub.rag.service import RagService, build_embedder
from hubbub.settings import EMBEDDED_MODEL_ID, EmbeddedConfig
from hubbub.storage.db import create_engine, migrate


@pytest.fixture(scope="module")
def gguf():
    return from_config(EmbeddedConfig(n_threads=1), EMBEDDED_MODEL_ID)


async def test_dense_and_hybrid_search_run_on_the_embedded_embedder(gguf, tmp_path: Path) -> None:
    config = RagConfig(embedder="embedded")
    embedder = build_embedder(config, embedded=gguf)
    assert embedder is gguf
    engine = create_engine(f"sqlite:///{tmp_path / 'dense.db'}")
    await migrate(engine)
    try:
        rag = RagService(engine, config, embedder=embedder)
        assert rag.default_mode == "hybrid" and "dense" in rag.modes
        car = await rag.ingest_text("Garage", "My car needs new tyres before the winter.", None)
        await rag.ingest_text("Kitchen", "Bake the bread for forty minutes at high heat.", None)
        await rag.ingest_text("Garden", "Tomatoes need sun and regular watering.", None)
        dense = await rag.search("Which car needs new tyres?", None, 3, "dense")
        assert len(dense) == 3 and dense[0].document_id == car.id
        assert dense[0].score > dense[-1].score
        hybrid = await rag.search("Which car needs new tyres?", None, 3, "hybrid")
        assert hybrid[0].document_id == car.id
        vectors = await gguf.embed(["one", "two"])
        assert vectors.shape == (2, gguf.dimensions) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
    finally:
        await rag.aclose()
        await engine.dispose()


def test_embedded_needs_the_embedded_model_and_channel_a_model_that_embeds():
    with pytest.raises(ValueError, match="embedded"):
        build_embedder(RagConfig(embedder="embedded"))
    with pytest.raises(ValueError, match="channel"):
        build_embedder(RagConfig(embedder="channel", embedder_model="nope"))
