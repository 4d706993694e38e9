"""Retrieval quality on Cranfield 1400, through hubbub's real ingestion and search path.

    .venv/bin/python bench/rag_quality.py [--data ../shared/data/cranfield] [--modes bm25,dense,hybrid]

Ingests the 1400 abstracts with ``RagService.ingest_text`` into a fresh SQLite database
(FTS5), runs the 225 queries with ``RagService.search`` for every available mode, and prints
nDCG@10 (graded: gain = 5 - relevance), recall@10 and MAP (binary: relevance 1..4 counts as
relevant; -1 judgements are ignored; rankings 50 deep), plus the ingest time and search
latency. A chunk ranks its document; a document counts once, at its best chunk.

The reference is ``bm25s`` (k1=1.2, b=0.75, Robertson idf, FTS5's parameters) over the very
same tokens: each document's indexed text (title + text) and each query are tokenised by
SQLite FTS5 itself (porter + unicode61, read back via ``fts5vocab``), so the two differ only in
the ranking code and in chunking. Dense and hybrid run when the ``dense`` extra is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from hubbub.rag.config import RagConfig
from hubbub.rag.service import RagService, build_embedder
from hubbub.rag.store import query_terms
from hubbub.storage.db import create_engine, migrate

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cranfield"
DEPTH = 50


def read_fields(path: Path) -> list[dict[str, str]]:
    """``.I``-separated records of ``.X`` fields."""
    records: list[dict[str, str]] = []
    field = None
    for line in path.read_text(errors="replace").splitlines():
        match = re.match(r"^\.([ITABW])\b\s*(.*)$", line)
        if match:
            field = match.group(1)
            if field == "I":
                records.append({"I": match.group(2).strip()})
                field = None
            else:
                records[-1].setdefault(field, "")
            continue
        if field and records:
            records[-1][field] += line + "\n"
    return records


def load(data: Path) -> tuple[list[dict[str, str]], list[str], dict[int, dict[str, int]]]:
    docs = read_fields(data / "cran.all.1400")
    queries = [" ".join(q.get("W", "").split()) for q in read_fields(data / "cran.qry")]
    qrels: dict[int, dict[str, int]] = defaultdict(dict)
    for line in (data / "cranqrel").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and int(parts[2]) > 0:  # -1: judgements to ignore
            qrels[int(parts[0])][parts[1]] = int(parts[2])  # queries numbered 1..225 in file order
    return docs, queries, qrels


def metrics(ranked: list[str], judged: dict[str, int]) -> tuple[float, float, float]:
    """nDCG@10 (gain 5 - relevance), recall@10 and average precision (relevance 1..4 relevant)."""
    dcg = sum((5 - judged[d]) / math.log2(i + 2) for i, d in enumerate(ranked[:10]) if d in judged)
    ideal = sorted((5 - r for r in judged.values()), reverse=True)[:10]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    recall = len([d for d in ranked[:10] if d in judged]) / len(judged)
    hits, precisions = 0, []
    for i, d in enumerate(ranked):
        if d in judged:
            hits += 1
            precisions.append(hits / (i + 1))
    return dcg / idcg, recall, sum(precisions) / len(judged)


def summarise(rankings: list[list[str]], qrels: dict[int, dict[str, int]]) -> tuple[float, float, float]:
    rows = [metrics(r, qrels[i + 1]) for i, r in enumerate(rankings) if qrels.get(i + 1)]
    return tuple(sum(col) / len(rows) for col in zip(*rows))  # type: ignore[return-value]


def fts_tokens(texts: list[str]) -> list[list[str]]:
    """Each text as FTS5 (porter unicode61) tokenises it, in order."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(body, tokenize='porter unicode61')")
    db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
    db.executemany("INSERT INTO t(rowid, body) VALUES (?, ?)", [(i + 1, s) for i, s in enumerate(texts)])
    out: list[list[str]] = [[] for _ in texts]
    for term, doc, _col, _offset in db.execute("SELECT term, doc, col, offset FROM v ORDER BY doc, offset"):
        out[doc - 1].append(term)
    return out


def reference(docs: list[dict[str, str]], queries: list[str]) -> list[list[str]]:
    import bm25s

    corpus = fts_tokens([f"{d.get('T', '').strip()}\n{d.get('W', '')}" for d in docs])
    query_tokens = fts_tokens([" ".join(query_terms(q)) for q in queries])
    retriever = bm25s.BM25(k1=1.2, b=0.75, method="robertson")
    retriever.index(corpus, show_progress=False)
    vocab = retriever.vocab_dict
    ids = [d["I"] for d in docs]
    rankings = []
    for tokens in query_tokens:
        known = [t for t in tokens if t in vocab]
        if not known:
            rankings.append([])
            continue
        scores = retriever.get_scores(known)
        order = sorted(range(len(ids)), key=lambda i: -scores[i])[:DEPTH]
        rankings.append([ids[i] for i in order if scores[i] > 0])
    return rankings


async def ingest(docs: list[dict[str, str]], config: RagConfig, path: Path) -> tuple[RagService, dict[str, str], float]:
    engine = create_engine(f"sqlite:///{path}")
    await migrate(engine)
    rag = RagService(engine, config, build_embedder(config))
    started = time.perf_counter()
    cran_id: dict[str, str] = {}
    for doc in docs:
        title = " ".join(doc.get("T", "").split()) or "Untitled"
        info = await rag.ingest_text(title, doc.get("W", "").strip() or title, None)  # two have no .W
        cran_id[info.id] = doc["I"]
    return rag, cran_id, time.perf_counter() - started


async def run_mode(rag: RagService, cran_id: dict[str, str], queries: list[str], mode: str
                   ) -> tuple[list[list[str]], list[float]]:
    rankings, latencies = [], []
    for query in queries:
        started = time.perf_counter()
        await rag.search(query, None, 10, mode)  # what a client asks for: the latency measured
        latencies.append((time.perf_counter() - started) * 1000)
        hits = await rag.search(query, None, 50, mode)  # deeper, for MAP (max k is 50 chunks)
        seen: dict[str, None] = {}
        for hit in hits:
            seen.setdefault(cran_id[hit.document_id], None)
        rankings.append(list(seen)[:DEPTH])
    return rankings, latencies


def line(name: str, scores: tuple[float, float, float], extra: str = "") -> str:
    return f"{name:<16} nDCG@10 {scores[0]:.4f}   recall@10 {scores[1]:.4f}   MAP {scores[2]:.4f}  {extra}"


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--modes", default="bm25,dense,hybrid")
    args = parser.parse_args()
    docs, queries, qrels = load(args.data)
    print(f"Cranfield: {len(docs)} documents, {len(queries)} queries, {len(qrels)} with judgements")
    wanted = args.modes.split(",")
    results: dict[str, tuple[float, float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        rag, cran_id, seconds = await ingest(docs, RagConfig(), Path(tmp) / "bm25.db")
        chunks = sum(d.chunk_count for d in await rag.list(None))
        print(f"ingest (BM25, SQLite FTS5): {len(docs)} documents, {chunks} chunks in {seconds:.2f} s")
        rankings, latencies = await run_mode(rag, cran_id, queries, "bm25")
        results["bm25"] = summarise(rankings, qrels)
        p50 = statistics.median(latencies)
        p95 = sorted(latencies)[int(len(latencies) * 0.95)]
        print(line("bm25 (hubbub)", results["bm25"], f"search p50 {p50:.2f} ms, p95 {p95:.2f} ms (k=10)"))
        await rag.store.engine.dispose()
        dense_modes = [m for m in ("dense", "hybrid") if m in wanted]
        if dense_modes:
            try:
                config = RagConfig(embedder="local")
                rag, cran_id, seconds = await ingest(docs, config, Path(tmp) / "dense.db")
            except RuntimeError as exc:
                print(f"dense, hybrid: skipped ({exc})")
            else:
                print(f"ingest (with {rag.embedder.name} embeddings): {seconds:.2f} s")
                for mode in dense_modes:
                    rankings, latencies = await run_mode(rag, cran_id, queries, mode)
                    results[mode] = summarise(rankings, qrels)
                    print(line(f"{mode} (hubbub)", results[mode],
                               f"search p50 {statistics.median(latencies):.2f} ms (k=10)"))
                await rag.store.engine.dispose()
    ref = summarise(reference(docs, queries), qrels)
    print(line("bm25s reference", ref))
    gap = results["bm25"][0] - ref[0]
    best = max(results, key=lambda m: results[m][0])
    print(f"BM25 vs reference nDCG@10: {gap:+.4f} (target within 0.02: {'yes' if abs(gap) <= 0.02 else 'NO'})")
    print(f"best mode: {best} nDCG@10 {results[best][0]:.4f} "
          f"({'above' if results[best][0] > ref[0] else 'NOT above'} the reference)")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
