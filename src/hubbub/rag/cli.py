"""``hubbub ingest PATH…``: load files and folders into the document index, with progress on stderr."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from hubbub.errors import HubbubError
from hubbub.rag.parse import EXTENSIONS


def collect(paths: list[Path]) -> list[Path]:
    """Files named, plus every supported file under the folders named (sorted, each once)."""
    found: dict[Path, None] = {}
    for path in paths:
        if path.is_dir():
            for item in sorted(path.rglob("*")):
                if item.is_file() and item.suffix.lower() in EXTENSIONS and not item.name.startswith("."):
                    found.setdefault(item, None)
        elif path.is_file():
            found.setdefault(path, None)
    return list(found)


def _bar(done: int, total: int, name: str, width: int = 30) -> str:
    filled = width * done // max(total, 1)
    return f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {name[-40:]:<40}"


async def _embedder(settings: Any) -> Any:
    """The server's RAG embedder, built the same way (container.build_container) for the CLI."""
    from hubbub.rag.service import build_embedder

    if settings.rag.embedder == "embedded":
        from hubbub.providers.gguf_embedder import from_config
        from hubbub.settings import EMBEDDED_MODEL_ID

        return build_embedder(settings.rag, embedded=from_config(settings.embedded, EMBEDDED_MODEL_ID))
    if settings.rag.embedder == "channel":
        from hubbub.container import build_registry

        registry, _ = await build_registry(settings)
        return build_embedder(settings.rag, registry=registry)
    return build_embedder(settings.rag)


async def ingest_paths(settings: Any, paths: list[Path], owner: str | None, out: TextIO | None = None) -> int:
    """Ingest ``paths``; returns how many files failed (each failure is reported, the rest go on)."""
    from hubbub.rag.service import RagService
    from hubbub.storage.db import create_engine, migrate

    out = out or sys.stderr  # looked up now, not at import (tests and wrappers replace it)
    files = collect(paths)
    engine = create_engine(settings.resolved_database_url)
    rag = RagService(engine, settings.rag, await _embedder(settings))
    failed = chunks = 0
    started = time.perf_counter()
    try:
        await migrate(engine)
        for n, path in enumerate(files, start=1):
            out.write(_bar(n - 1, len(files), path.name))
            out.flush()
            try:
                data = await asyncio.to_thread(path.read_bytes)
                info = await rag.ingest_bytes(data, filename=path.name, content_type=None, owner=owner)
                chunks += info.chunk_count
            except (HubbubError, OSError) as exc:
                failed += 1
                out.write(f"\r{path}: {getattr(exc, 'message', exc)}\n")
        out.write(_bar(len(files), len(files), "done") + "\n")
        out.write(f"ingested {len(files) - failed} of {len(files)} files ({chunks} chunks) "
                  f"in {time.perf_counter() - started:.1f}s\n")
    finally:
        await rag.aclose()
        await engine.dispose()
    return failed
