"""Text no backend can store: the NUL character and lone UTF-16 surrogates, refused at the edge.

PostgreSQL's ``text`` cannot hold U+0000 (asyncpg raises, the request used to end in a 500),
and a lone surrogate (``"\\ud800"``, which JSON can spell but UTF-8 cannot encode) breaks
every encoder after the parser. SQLite would store either, so the same request behaved
differently per backend. Decision (docs/security.md, docs/api-decisions.md): a JSON body,
a WebSocket message, a path or a query string that carries one is a 400 in the route's
dialect shape, naming the field, on every backend. Uploaded *files* are cleaned instead
(``rag/parse.py``): a PDF or a text file may well contain a NUL, and refusing the whole
file for it would help nobody.

The check costs a substring search per body: the JSON is decoded again (to name the field)
only when the raw bytes hold an escaped NUL or surrogate.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import HTTPConnection

from hubbub.errors import FieldProblem, InvalidRequest

NUL_MESSAGE = "must not contain the NUL character (U+0000)"
SURROGATE_MESSAGE = "must not contain a lone UTF-16 surrogate (U+D800..U+DFFF)"

# ``\u0000`` or ``\udXXX`` as a real escape: preceded by an even number of backslashes.
_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")


def problem_in(value: str) -> str | None:
    """Why ``value`` cannot be stored, or None."""
    if "\x00" in value:
        return NUL_MESSAGE
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return SURROGATE_MESSAGE
    return None


def is_json(content_type: str | None) -> bool:
    """JSON, or no content type at all (FastAPI reads such a body as JSON too)."""
    if content_type is None:
        return True
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def check_json_body(raw: bytes, content_type: str | None) -> None:
    """Raise ``InvalidRequest`` (naming the field) if the JSON body ``raw`` holds a string no
    backend can store. Bodies that are not JSON, or not valid JSON, are left to their parser."""
    if not raw or b"\\u" not in raw or not is_json(content_type) or _ESCAPE.search(raw) is None:
        return
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # the route's own parser reports it in the dialect's shape
        return
    check_value(value)


def check_value(value: Any, loc: tuple[Any, ...] = ()) -> None:
    """Raise ``InvalidRequest`` for the first string (key or value) in ``value`` that no backend
    can store. Iterative: nesting depth is bounded by the parser, not by this walk."""
    stack: list[tuple[tuple[Any, ...], Any]] = [(loc, value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            reason = problem_in(node)
            if reason:
                _refuse(path, reason)
        elif isinstance(node, dict):
            items = list(node.items())
            for key, item in reversed(items):  # reversed: the first offending field is reported
                reason = problem_in(key)
                if reason:
                    _refuse(path, "keys " + reason)
                stack.append(((*path, key), item))
        elif isinstance(node, list):
            stack.extend(((*path, i), item) for i, item in reversed(list(enumerate(node))))


def _refuse(path: tuple[Any, ...], reason: str) -> None:
    field = ".".join(str(p) for p in path) or "body"
    raise InvalidRequest(f"{field} {reason}", [FieldProblem(field, reason, "value_error", ("body", *path))])


def check_target(conn: HTTPConnection) -> None:
    """A NUL in the request's path or query string (``%00``): 400, before any lookup uses it."""
    if "\x00" in conn.scope.get("path", ""):
        raise InvalidRequest(f"path {NUL_MESSAGE}", [FieldProblem("path", NUL_MESSAGE, "value_error", ("path",))])
    query = conn.scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        for name, value in conn.query_params.multi_items():
            if "\x00" in name or "\x00" in value:
                field = name.replace("\x00", "") or "query"
                raise InvalidRequest(f"{field} {NUL_MESSAGE}",
                                     [FieldProblem(field, NUL_MESSAGE, "value_error", ("query", field))])
