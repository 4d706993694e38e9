"""``/api/documents`` (API.md §6) over HTTP: upload (JSON, multipart txt/md/html/pdf), list, get,
delete, search, errors in the route's shape, ownership between keys, and the body limit."""

from __future__ import annotations

import httpx
import pytest
from rag_pdfgen import make_pdf

from support import start_server

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("docs"), embedded={"enabled": False}, max_document_bytes=LIMIT)
    keys = srv.container.keys

    async def make():
        return [(await keys.create(name, admin=name == "admin"))[1] for name in ("admin", "alice", "bob")]

    srv.keys = dict(zip(("admin", "alice", "bob"), srv.call(make())))
    srv.container.auth.forget()
    yield srv
    srv.stop()


def client_for(srv, who: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=srv.url, headers={"Authorization": f"Bearer {srv.keys[who]}"}, timeout=60)


async def test_json_upload_get_search_delete(docs_server) -> None:
    async with client_for(docs_server, "alice") as c:
        r = await c.post("/api/documents", json={"title": "Zorblax Q4", "content": "# Revenue\nThe Q4 revenue "
                                                 "of Zorblax Corp was 17.3 million florins.", "extra": 1})
        assert r.status_code == 201, r.text
        created = r.json()
        assert created["title"] == "Zorblax Q4" and created["chunks"] == 1 and created["id"].startswith("doc_")
        r = await c.get(f"/api/documents/{created['id']}")
        assert r.status_code == 200
        assert r.json()["passages"][0]["heading"] == "Zorblax Q4 › Revenue"
        assert any(d["id"] == created["id"] for d in (await c.get("/api/documents")).json()["documents"])
        r = await c.post("/api/documents/search", json={"query": "Zorblax revenue", "k": 3})
        assert r.status_code == 200
        first = r.json()["results"][0]
        assert set(first) == {"documentId", "title", "text", "score"}
        assert first["documentId"] == created["id"] and "17.3 million florins" in first["text"]
        assert (await c.delete(f"/api/documents/{created['id']}")).status_code == 204
        r = await c.get(f"/api/documents/{created['id']}")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        assert (await c.delete(f"/api/documents/{created['id']}")).status_code == 404


@pytest.mark.parametrize(("name", "media", "data", "needle"), [
    ("notes.txt", "text/plain", b"Plain notes about flutter.", "flutter"),
    ("guide.md", "text/markdown", b"# Guide\n\nMarkdown about ailerons.", "ailerons"),
    ("page.html", "text/html", b"<title>Page</title><h1>Spoilers</h1><p>HTML about spoilers.</p>", "spoilers"),
    ("paper.pdf", "application/pdf", make_pdf(["PDF about winglets."], title="Paper"), "winglets"),
    ("data.json", "application/json", b'{"title": "Jason", "content": "JSON about canards."}', "canards"),
])
async def test_multipart_uploads_of_each_format(docs_server, name, media, data, needle) -> None:
    async with client_for(docs_server, "alice") as c:
        r = await c.post("/api/documents", files={"file": (name, data, media)})
        assert r.status_code == 201, r.text
        doc_id = r.json()["id"]
        assert (await c.get(f"/api/documents/{doc_id}")).json()["mediaType"] == media
        results = (await c.post("/api/documents/search", json={"query": needle})).json()["results"]
        assert results and results[0]["documentId"] == doc_id and needle in results[0]["text"].lower()


async def test_documents_belong_to_the_key_that_uploaded_them(docs_server) -> None:
    async with client_for(docs_server, "alice") as alice, client_for(docs_server, "bob") as bob, \
            client_for(docs_server, "admin") as admin:
        doc = (await alice.post("/api/documents", json={"title": "Secret", "content": "quokka migration"})).json()
        assert (await bob.get(f"/api/documents/{doc['id']}")).status_code == 404
        assert (await bob.delete(f"/api/documents/{doc['id']}")).status_code == 404
        assert (await bob.post("/api/documents/search", json={"query": "quokka"})).json()["results"] == []
        assert all(d["id"] != doc["id"] for d in (await bob.get("/api/documents")).json()["documents"])
        assert (await admin.get(f"/api/documents/{doc['id']}")).status_code == 200  # admin sees all
        found = (await admin.post("/api/documents/search", json={"query": "quokka"})).json()["results"]
        assert [r["documentId"] for r in found] == [doc["id"]]
    async with httpx.AsyncClient(base_url=docs_server.url) as anonymous:
        r = await anonymous.get("/api/documents")
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(("kwargs", "status", "code"), [
    ({"json": {"title": "No content"}}, 400, "invalid_request"),
    ({"json": {"title": "Empty", "content": "   "}}, 400, "invalid_request"),
    ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, "invalid_request"),
    ({"json": ["a", "list"]}, 400, "invalid_request"),
    ({"files": {"file": ("sheet.xlsx", b"PK\x03\x04", "application/vnd.ms-excel")}}, 415, "unsupported_media_type"),
    ({"files": {"file": ("broken.pdf", b"%PDF-1.4 nope", "application/pdf")}}, 400, "invalid_request"),
    ({"files": {"other": ("a.txt", b"text", "text/plain")}}, 400, "invalid_request"),
    ({"content": b"--x\r\nbroken", "headers": {"content-type": "multipart/form-data; boundary=x"}},
     400, "invalid_request"),
    ({"json": {"title": "Big", "content": "x" * (LIMIT + 10)}}, 413, "payload_too_large"),
])
async def test_bad_uploads_get_the_routes_error_shape(docs_server, kwargs, status, code) -> None:
    async with client_for(docs_server, "alice") as c:
        r = await c.post("/api/documents", **kwargs)
        assert r.status_code == status, r.text
        assert r.json()["error"]["code"] == code and r.json()["error"]["message"]


@pytest.mark.parametrize("body", [{}, {"query": ""}, {"query": "x", "k": 0}, {"query": "x", "k": 51},
                                  {"query": "x", "mode": "dense"}, {"query": 5}])
async def test_bad_searches_are_400(docs_server, body) -> None:
    async with client_for(docs_server, "alice") as c:
        r = await c.post("/api/documents/search", json=body)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request", r.text
        assert r.json()["error"]["details"][0]["field"]
