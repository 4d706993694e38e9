"""The fast path: the routes served straight from the edge (STYLE.md §12).

A listed route's endpoint takes only the ``Request``, reads its own body (``routing.json_body``)
and returns a ``Response``; it needs nothing from FastAPI per request. So ``HubbubApp`` serves
it from ``middleware.DirectRoutes``, before Starlette's router walk, its exception layers and
FastAPI's request handler — about a third less CPU per proxied request (docs/benchmarks.md).
It is still the same route object: the same admission, body limit, idempotency and error
rendering (``routing.DialectRoute``), and every middleware added to the app reaches it, since
``DirectRoutes`` sits inside the app's own middleware (``app.HubbubApp.build_middleware_stack``).
``tests/http/test_fastpath.py`` sends the same requests through this path and the normal one.

To put a route on it: list its method and path here, and give its endpoint the signature
``async def endpoint(request: Request) -> Response``. Start-up refuses a listed route whose
endpoint has another signature, and a listed path that no router defines.
"""

from __future__ import annotations

FAST_ROUTES: frozenset[tuple[str, str]] = frozenset({
    ("POST", "/v1/chat/completions"),  # every proxied OpenAI request
    ("POST", "/api/chat"),  # builder and conversations turns (dispatch.py)
    ("POST", "/v1/messages"),  # every Anthropic Messages request
    ("POST", "/v1/responses"),  # OpenAI Responses API (dialects/responses)
})
