"""Turning FastAPI/pydantic validation errors into the core's ``FieldProblem`` list."""

from __future__ import annotations

from fastapi.exceptions import RequestValidationError

from hubbub.errors import FieldProblem


def problems(exc: RequestValidationError) -> list[FieldProblem]:
    out: list[FieldProblem] = []
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        path = [str(p) for p in loc if p != "body"]
        kind = err.get("type", "value_error")
        message = err.get("msg", "Invalid value")
        if kind == "json_invalid":
            message = "Request body is not valid JSON"
        out.append(FieldProblem(field=".".join(path) or "body", message=message, kind=kind, loc=loc,
                                input=err.get("input")))
    return out
