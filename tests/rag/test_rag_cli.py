"""``hubbub ingest PATH…``: folders and files into the index, progress on stderr, failures reported."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rag_pdfgen import make_pdf

from hubbub.cli import main
from hubbub.rag.service import RagService
from hubbub.settings import Settings
from hubbub.storage.db import create_engine


def test_ingest_a_folder(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.md").write_text("# Alpha\nAlbatross wings are long.")
    (docs / "sub" / "b.html").write_text("<title>Beta</title><p>Bumblebees hover.</p>")
    (docs / "sub" / "c.pdf").write_bytes(make_pdf(["Condors soar."], title="Gamma"))
    (docs / "ignored.bin").write_bytes(b"\x00\x01")
    (docs / "bad.json").write_text("{broken")
    data_dir = tmp_path / "data"
    code = main(["ingest", str(docs), "--data-dir", str(data_dir)])
    err = capsys.readouterr().err
    assert code == 1  # one file failed, and the exit status says so
    assert "bad.json" in err and "4/4" in err and "ingested 3 of 4 files" in err

    async def check() -> tuple[list[str], list[str]]:
        engine = create_engine(Settings(data_dir=data_dir).resolved_database_url)
        try:
            rag = RagService(engine)
            titles = sorted(d.title for d in await rag.list(None))
            found = [h.title for h in await rag.search("condors soar", None, 3)]
            return titles, found
        finally:
            await engine.dispose()

    titles, found = asyncio.run(check())
    assert titles == ["Beta", "Gamma", "a"] and found[0] == "Gamma"


def test_ingest_all_good_files_exits_zero(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    note = tmp_path / "note.txt"
    note.write_text("A single note.")
    assert main(["ingest", str(note), "--data-dir", str(tmp_path / "data")]) == 0
    assert "ingested 1 of 1 files" in capsys.readouterr().err
