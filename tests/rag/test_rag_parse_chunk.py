"""Parsing (txt, md, html, pdf, json) and token chunking with overlap and headings."""

from __future__ import annotations

import json

import pytest
from rag_pdfgen import make_pdf

from hubbub.errors import InvalidRequest
from hubbub.rag.chunk import approx_tokens, chunk_text, count_tokens, sections
from hubbub.rag.parse import UnsupportedDocument, parse


def test_plain_text_and_markdown_keep_their_text() -> None:
    doc = parse("Wings stall at high angles.\r\nSecond line.".encode(), "notes.txt")
    assert (doc.title, doc.media_type) == ("notes", "text/plain")
    assert doc.text == "Wings stall at high angles.\nSecond line."
    md = parse(b"# Flight\n\nLift and drag.", "flight.md")
    assert md.media_type == "text/markdown" and "# Flight" in md.text


def test_html_drops_scripts_and_turns_headings_into_markdown() -> None:
    html = (b"<html><head><title>Aero notes</title><style>p{}</style></head><body>"
            b"<h2>Lift</h2><p>Lift grows with <b>angle</b> &amp; speed.</p><script>alert(1)</script></body></html>")
    doc = parse(html, "page.html")
    assert doc.title == "Aero notes"
    assert "## Lift" in doc.text and "Lift grows with angle & speed." in doc.text
    assert "alert" not in doc.text and "p{}" not in doc.text


def test_pdf_text_and_title_come_from_the_file() -> None:
    doc = parse(make_pdf(["Annual report", "The Q4 revenue was 17.3 million."], title="Report"), "r.pdf")
    assert doc.title == "Report" and "17.3 million" in doc.text and doc.media_type == "application/pdf"


def test_broken_pdf_is_bad_input_not_a_crash() -> None:
    with pytest.raises(InvalidRequest):
        parse(b"%PDF-1.4 this is not really a pdf", "broken.pdf")


def test_json_documents() -> None:
    doc = parse(json.dumps({"title": "Memo", "content": "Budget approved."}).encode(), "m.json")
    assert (doc.title, doc.text) == ("Memo", "Budget approved.")
    nested = parse(json.dumps({"items": [{"a": "first fact"}, "second fact", 3]}).encode(), "x.json")
    assert "first fact" in nested.text and "second fact" in nested.text
    with pytest.raises(InvalidRequest):
        parse(b"{not json", "bad.json")


def test_unknown_types_and_empty_documents_are_refused() -> None:
    with pytest.raises(UnsupportedDocument) as err:
        parse(b"PK\x03\x04", "sheet.xlsx", "application/vnd.ms-excel")
    assert err.value.status == 415
    with pytest.raises(InvalidRequest):
        parse(b"   \n ", "empty.txt")
    assert parse(b"hello", None, "text/csv").media_type == "text/plain"  # any text/* reads as text


def test_sections_follow_heading_levels() -> None:
    text = "intro\n# A\none\n## B\ntwo\n# C\nthree"
    assert sections(text) == [([], "intro"), (["A"], "one"), (["A", "B"], "two"), (["C"], "three")]


def test_chunks_fit_the_budget_overlap_and_cover_every_word() -> None:
    words = [f"w{i}" for i in range(500)]
    chunks = chunk_text(" ".join(words), "Doc", max_tokens=50, overlap=10)
    assert len(chunks) > 10
    heading_cost = count_tokens("Doc")
    assert all(c.tokens + heading_cost <= 50 for c in chunks)
    covered = [w for c in chunks for w in c.text.split()]
    assert set(covered) == set(words)
    for prev, nxt in zip(chunks, chunks[1:]):
        shared = set(prev.text.split()) & set(nxt.text.split())
        assert 0 < count_tokens(" ".join(shared)) <= 10  # consecutive chunks overlap, by at most 10 tokens
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_headings_stay_with_their_chunks() -> None:
    text = "# Results\n" + "alpha " * 300 + "\n# Method\nbeta gamma"
    chunks = chunk_text(text, "Report", max_tokens=64, overlap=8)
    assert {c.heading for c in chunks} == {"Report › Results", "Report › Method"}
    assert all("beta" not in c.text for c in chunks if c.heading.endswith("Results"))  # no chunk spans sections
    assert chunks[-1].heading == "Report › Method" and chunks[-1].text == "beta gamma"


def test_a_real_tokenizer_is_used_when_given() -> None:
    calls: list[str] = []

    def counter(word: str) -> int:
        calls.append(word)
        return 10  # every word is expensive: at most 3 words fit in 32 tokens with the heading
    chunks = chunk_text("one two three four five six seven", "", max_tokens=32, overlap=0, counter=counter)
    assert calls and all(len(c.text.split()) <= 3 for c in chunks)
    assert approx_tokens("a") == 1 and approx_tokens("aerodynamics") == 3
