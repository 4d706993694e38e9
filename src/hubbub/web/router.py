"""``GET /`` (the chat page) and ``GET /static/...`` (its assets), no key needed.

The page is plain ES modules and vendored libraries shipped inside the package,
so nothing is built at run time and nothing is fetched from elsewhere. A strict
Content-Security-Policy makes "no request leaves the server" a browser-enforced
rule, not just a habit of the code.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse, Response

STATIC = Path(__file__).parent / "static"

# Only this server: scripts, styles, fetches, images (data: for inline SVG icons, blob: for downloads).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml"}
_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}

router = APIRouter(tags=["web"], include_in_schema=False)


@router.get("/", summary="The chat page")
async def index() -> Response:
    return FileResponse(STATIC / "index.html", media_type="text/html",
                        headers={**_HEADERS, "Content-Security-Policy": CSP})


@router.get("/static/{path:path}", summary="The chat page's assets")
async def asset(path: str) -> Response:
    """A file under ``static/`` only: ``..`` and absolute paths resolve outside it and are 404s
    (so is a NUL, which no file name holds and which the filesystem calls refuse)."""
    if "\x00" in path:
        return JSONResponse({"detail": "Not Found"}, status_code=404)
    target = (STATIC / path).resolve()
    if not target.is_relative_to(STATIC.resolve()) or not target.is_file():
        return JSONResponse({"detail": "Not Found"}, status_code=404)
    media_type = _TYPES.get(target.suffix, "text/plain" if target.suffix in ("", ".md") or
                            target.name.endswith("LICENSE") else None)
    return FileResponse(target, media_type=media_type, headers=_HEADERS)
