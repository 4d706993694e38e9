"""Files the parser cannot read are 400s, never 500s (issue 22, Low): a JSON file nested past
Python's recursion limit and a PDF that trips one of pypdf's safety limits (here: a page tree
that contains itself) both answered 500."""

from __future__ import annotations

import httpx
import pytest
from rag_pdfgen import make_pdf

from hubbub.errors import InvalidRequest
from hubbub.rag.parse import parse
from support import start_server

DEEP_JSON = b"[" * 200_000 + b'"x"' + b"]" * 200_000
DEEP_OBJECT = b'{"a":' * 100_000 + b'"x"' + b"}" * 100_000


def cyclic_pdf() -> bytes:
    """``make_pdf``'s file with its page tree's only kid pointing back at the tree itself."""
    pdf = make_pdf(["Looping."])
    return pdf.replace(b"/Kids [3 0 R]", b"/Kids [2 0 R]")


def oversized_xref_pdf() -> bytes:
    """``make_pdf``'s file whose cross-reference table claims ten million entries: pypdf refuses
    it with ``LimitReachedError``, which is not a ``PdfReadError`` (what the parser used to catch)."""
    pdf = make_pdf(["Too many objects."])
    start = pdf.index(b"xref\n0 ")
    return pdf[:start] + b"xref\n0 9999999" + pdf[pdf.index(b"\n", start + 5):]


def test_that_file_trips_one_of_pypdfs_limits():
    import io

    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError, PdfReadError

    with pytest.raises(LimitReachedError) as raised:
        PdfReader(io.BytesIO(oversized_xref_pdf()))
    assert not isinstance(raised.value, PdfReadError)


@pytest.mark.parametrize(("name", "data"), [("deep.json", DEEP_JSON), ("deep-object.json", DEEP_OBJECT),
                                            ("loop.pdf", cyclic_pdf()), ("limit.pdf", oversized_xref_pdf()),
                                            ("junk.pdf", b"%PDF-1.4\n" + b"\x00\xff" * 500)])
def test_unreadable_files_are_invalid_requests(name, data):
    with pytest.raises(InvalidRequest):
        parse(data, name)


def test_a_merely_deep_json_file_is_read_without_recursion():
    data = b'{"a": ' * 500 + b'"deep text"' + b"}" * 500  # deep, but within the parser's limit
    assert parse(data, "deep.json").text == "deep text"


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("hostile-docs"), embedded={"enabled": False})
    yield srv
    srv.stop()


@pytest.mark.parametrize(("name", "media", "data"), [("deep.json", "application/json", DEEP_JSON),
                                                     ("limit.pdf", "application/pdf", oversized_xref_pdf())])
def test_uploading_them_is_400_in_the_documents_shape(docs, name, media, data):
    r = httpx.post(f"{docs.url}/api/documents", files={"file": (name, data, media)}, timeout=60)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_request"
    r = httpx.post(f"{docs.url}/api/documents", content=DEEP_JSON, headers={"content-type": "application/json"},
                   timeout=60)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request", r.text
