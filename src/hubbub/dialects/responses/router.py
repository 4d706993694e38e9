"""/v1/responses: OpenAI's Responses API, stateful (docs/api-decisions.md, "Responses")."""

from __future__ import annotations

from typing import Literal

from fastapi import Query, Request, Response

from hubbub.dialects.responses import adapter, runs
from hubbub.dialects.responses.protocol import ResponsesRequest
from hubbub.http.deps import get_container, get_owner
from hubbub.http.routing import body_doc, dialect_router, json_body, request_id
from hubbub.http.sse import SSEResponse

router = dialect_router(adapter.render_error, prefix="/v1/responses", tags=["responses"], idempotent=True)


def _json(body: object) -> Response:
    return Response(adapter.dumps(body), media_type="application/json")


def _stream(request: Request, chunks) -> SSEResponse:  # noqa: ANN001
    return SSEResponse(chunks, get_container(request).settings.sse_ping_seconds)


@router.post("", summary="Create a response (OpenAI Responses API)", openapi_extra=body_doc(ResponsesRequest))
async def create_response(request: Request) -> Response:
    # Only the request: this route is on the fast path (http/fastpath.py).
    body = json_body(request, ResponsesRequest)
    run = await runs.start(runs.Deps.of(get_container(request)), body, get_owner(request), request_id(request))
    if body.stream:
        return _stream(request, run.events())
    return _json(await run.body())


@router.get("/{response_id}", summary="A stored response; with stream=true its events (starting_after=N resumes)")
async def get_response(request: Request, response_id: str, stream: bool = False,
                       starting_after: int | None = Query(default=None, ge=0)) -> Response:
    deps = runs.Deps.of(get_container(request))
    resp = await runs.owned(deps, response_id, get_owner(request))
    if stream:
        return _stream(request, runs.replay(deps, resp, -1 if starting_after is None else starting_after))
    return _json(await runs.current_body(deps, resp))


@router.delete("/{response_id}", summary="Delete a stored response (and its stored turn)")
async def delete_response(request: Request, response_id: str) -> Response:
    deps = runs.Deps.of(get_container(request))
    return _json(await runs.delete(deps, await runs.owned(deps, response_id, get_owner(request))))


@router.get("/{response_id}/input_items", summary="The input items of a stored response")
async def input_items(request: Request, response_id: str, after: str | None = None,
                      limit: int = Query(default=20, ge=1, le=100),
                      order: Literal["asc", "desc"] = "desc") -> Response:
    deps = runs.Deps.of(get_container(request))
    resp = await runs.owned(deps, response_id, get_owner(request))
    return _json(runs.input_page(resp, after, limit, order))


@router.post("/{response_id}/cancel", summary="Cancel a background response (on any replica)")
async def cancel_response(request: Request, response_id: str) -> Response:
    deps = runs.Deps.of(get_container(request))
    return _json(await runs.cancel(deps, await runs.owned(deps, response_id, get_owner(request))))
