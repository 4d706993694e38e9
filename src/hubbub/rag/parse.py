"""Uploaded bytes -> plain text with markdown-style headings (``# Title``) kept.

Formats: plain text, markdown, HTML (stdlib parser; headings become ``#`` lines, scripts
and styles are dropped), PDF (``pypdf``, the pages' text in order) and JSON (``{"title", "content"}`` / ``{"text"}``, or any JSON
whose string values are joined). The format is chosen by file extension, then by media type.

A file is cleaned rather than refused for text no database can store (issue 22, docs/security.md):
NUL characters are removed and lone UTF-16 surrogates (which a JSON file can spell) become U+FFFD.
A file the parser cannot read — malformed, nested past any sane depth, a PDF that trips one of
pypdf's safety limits — is a 400, never a 500.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePath

from hubbub.errors import InvalidRequest


class UnsupportedDocument(InvalidRequest):
    """A file of a kind hubbub cannot read (415)."""

    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


@dataclass
class Parsed:
    title: str
    text: str
    media_type: str


EXTENSIONS = {
    ".txt": "text/plain", ".text": "text/plain", ".md": "text/markdown", ".markdown": "text/markdown",
    ".html": "text/html", ".htm": "text/html", ".pdf": "application/pdf", ".json": "application/json",
}
SUPPORTED = sorted(set(EXTENSIONS.values()))


def media_type_of(filename: str | None, content_type: str | None) -> str:
    suffix = PurePath(filename or "").suffix.lower()
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    base = (content_type or "").split(";")[0].strip().lower()
    if base in SUPPORTED:
        return base
    if base.startswith("text/") or (not suffix and base in ("", "application/octet-stream")):
        return "text/plain"
    raise UnsupportedDocument(f"Unsupported document type {base or suffix!r}; supported: {', '.join(SUPPORTED)}")


def _decode(data: bytes) -> str:
    encoding = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        pass
    return data.decode("latin-1")  # never fails: a legacy 8-bit file reads as something


class _HTMLText(HTMLParser):
    _SKIP = {"script", "style", "noscript", "template", "head"}
    _BLOCK = {"p", "div", "li", "br", "tr", "section", "article", "pre", "blockquote", "table", "ul", "ol"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skip = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs) -> None:  # noqa: ANN001
        if tag == "title":
            self._in_title = True
        elif tag in self._SKIP:
            self._skip += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self.parts.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif re.fullmatch(r"h[1-6]", tag) or tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skip:
            self.parts.append(data)


def _html(text: str) -> tuple[str, str]:
    parser = _HTMLText()
    parser.feed(text)
    parser.close()
    body = re.sub(r"[ \t]+", " ", "".join(parser.parts))
    return parser.title.strip(), re.sub(r"\n\s*\n\s*\n+", "\n\n", body).strip()


def _pdf(data: bytes) -> tuple[str, str]:
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
        title = str((reader.metadata or {}).get("/Title") or "")
    except Exception as exc:  # noqa: BLE001 - any failure of the parser on this file (pypdf's own
        # PyPdfError and its LimitReachedError, but malformed files also raise KeyError, TypeError,
        # RecursionError, zlib.error…) means the file cannot be read: bad input, not a server fault.
        raise InvalidRequest(f"Could not read the PDF: {type(exc).__name__}: {exc}"[:500]) from None
    return title.strip(), "\n\n".join(p.strip() for p in pages if p.strip())


def _json(text: str) -> tuple[str, str]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidRequest(f"Invalid JSON document: {exc}") from exc
    except RecursionError:
        raise InvalidRequest("Invalid JSON document: nested too deeply") from None
    if isinstance(value, dict) and isinstance(value.get("content") or value.get("text"), str):
        return str(value.get("title") or ""), value.get("content") or value.get("text")
    strings: list[str] = []
    stack: list[object] = [value]  # depth-first, in document order, without recursion
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            strings.append(node)
        elif isinstance(node, dict):
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))
    return "", "\n\n".join(strings)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def clean(text: str) -> str:
    """``text`` without what no database can store: NULs removed, lone surrogates as U+FFFD."""
    return _LONE_SURROGATE.sub("\ufffd", text.replace("\x00", ""))


def _first_heading(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line.lstrip("#").strip()[:200]
    return ""


def parse(data: bytes, filename: str | None = None, content_type: str | None = None) -> Parsed:
    """Read an upload. The title is the document's own (HTML ``<title>``, PDF metadata, JSON
    ``title``), else the file name, else its first line."""
    media = media_type_of(filename, content_type)
    if media == "application/pdf":
        title, text = _pdf(data)
    elif media == "text/html":
        title, text = _html(_decode(data))
    elif media == "application/json":
        title, text = _json(_decode(data))
    else:
        title, text = "", _decode(data).replace("\r\n", "\n")
    text, title = clean(text), clean(title)
    if not text.strip():
        raise InvalidRequest("The document has no text")
    title = title or (PurePath(clean(filename)).stem if filename else "") or _first_heading(text) or "Untitled"
    return Parsed(title=title.strip(), text=text, media_type=media)
