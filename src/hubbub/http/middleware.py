"""The edge of the app: pure ASGI (no BaseHTTPMiddleware: it buffers and slows streams).

``RequestMiddleware`` is one layer, not one per concern: every layer wraps ``send``, and
a stream calls ``send`` once per event, so each layer costs a coroutine call per token of
every open stream. ``DirectRoutes`` serves the fast path (``http/fastpath.py``): inside any
middleware added to the app, before Starlette's own layers and router.
"""

from __future__ import annotations

import logging
import os
import time

from typing import Any, Awaitable, Callable

from starlette._utils import get_route_path
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hubbub.logs import request_id
from hubbub.metrics import Metrics

access_log = logging.getLogger("hubbub.access")
_CLOSE = (b"connection", b"close")


class RequestMiddleware:
    """What every HTTP request gets at the edge:

    - an id (``X-Request-Id``: the client's, if sane, else a new one), echoed on the
      response and kept in ``logs.request_id`` for every line logged while it runs;
    - one access line when the response has ended (a stream: when its last byte went out,
      so ``duration_ms`` is the whole stream);
    - a count in ``hubbub_http_requests`` by route template (not the raw path: ids would
      explode the label set) and status.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if 0 < len(candidate) <= 128 and candidate.isprintable():
                    rid = candidate
                break
        rid = rid or os.urandom(16).hex()
        scope.setdefault("state", {})["request_id"] = rid
        header = (b"x-request-id", rid.encode("latin-1"))
        status = 500  # what the client gets when the app fails before it answers

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                nonlocal status
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
                if status == 408:  # a body that did not arrive in time: the rest of it must not be
                    message["headers"].append(_CLOSE)  # read as the next request, so the connection ends
            await send(message)

        token = request_id.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            method = scope["method"]
            route = scope.get("route")
            template = getattr(route, "path_format", None) or getattr(route, "path", None) or "unmatched"
            self.metrics.count_request(method, template, status)
            if access_log.isEnabledFor(logging.INFO):
                duration = round((time.perf_counter() - started) * 1000, 1)
                path = scope["path"]  # never the query string: it may hold secrets
                access_log.info("%s %s %d %.1fms", method, path, status, duration,
                                extra={"method": method, "path": path, "status": status, "duration_ms": duration})
        # Reset only on success: when the app raised, the server logs the error next, in this same
        # task, and that line should carry the id too (each request runs in a task of its own).
        request_id.reset(token)


class DirectRoutes:
    """Exact paths (no path parameters) whose route has a ``direct`` handler, a function from the
    request to the response that already admits, limits the body and renders every error in its
    dialect's shape. They skip Starlette's middleware (server errors, exceptions, exit stacks),
    FastAPI's router walk and its request handler; everything else goes on to ``app``."""

    def __init__(self, app: ASGIApp, routes: dict[tuple[str, str], Any]) -> None:
        self.app = app
        self.routes = routes  # (method, path) -> a route with ``direct``

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = self.routes.get((scope["method"], get_route_path(scope)))
            if route is not None:
                scope["route"], scope["endpoint"], scope["path_params"] = route, route.endpoint, {}
                scope["hubbub.fast_path"] = True  # what the parity test looks for
                handler: Callable[[Request], Awaitable[Response]] = route.direct
                response = await handler(Request(scope, receive, send))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
