"""Request validation that reproduces FastAPI + pydantic v1 error lists, byte for byte.

The bots dialect (API.md §4) promises 422 bodies exactly as a pydantic-v1-era
FastAPI app wrote them (``{"detail": [{"loc", "msg", "type"[, "ctx"]}]}``). pydantic 2
words and types its errors differently, and ``pydantic.v1`` is not supported on
newer Pythons, so this module re-implements the few v1 rules the dialect needs:

- v1's lax coercions, deliberately: a ``str`` field takes numbers (``1`` -> ``"1"``,
  ``true`` -> ``"True"``), a ``bool`` takes ``"yes"``/``"off"``/``1``/``"t"``…, an ``int``
  truncates floats, a nested model takes anything ``dict()`` accepts;
- one error per field (the first failing rule), fields in declaration order, every
  list item checked; then the root validators, in order, each seeing only the fields
  that validated — and they run even when a field failed, as in v1;
- FastAPI's own body handling: no body or ``null`` is ``["body"]`` "field required",
  malformed JSON is ``["body", <pos>]`` ``value_error.jsondecode`` with the decoder's ctx.

``tests/dialects/test_bots.py`` checks all of this against the real ``pydantic.v1``
wherever it can still be imported.
"""

from __future__ import annotations

import email.message
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from hubbub.errors import InvalidRequest

Loc = tuple[Any, ...]
BOOL_TRUE = {1, "1", "on", "t", "true", "y", "yes"}
BOOL_FALSE = {0, "0", "off", "f", "false", "n", "no"}


class V1ValidationError(InvalidRequest):
    """A 422 whose ``errors`` are already in pydantic v1's shape."""

    status = 422

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("Validation error")
        self.errors = errors


class Invalid(Exception):
    """One v1 error at one location (raised by a rule; the caller adds the location)."""

    def __init__(self, msg: str, type_: str, ctx: dict[str, Any] | None = None) -> None:
        super().__init__(msg)
        self.msg, self.type, self.ctx = msg, type_, ctx


def error(loc: Loc, msg: str, type_: str, ctx: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"loc": list(loc), "msg": msg, "type": type_}
    if ctx:
        out["ctx"] = ctx
    return out


class Failed(Exception):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors


# -- scalar rules (each: value -> value, or raise Invalid) -----------------------


@dataclass
class Str:
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None  # matched whole-string (stricter than v1's ``re.match`` on ``$``)

    def __call__(self, v: Any, loc: Loc) -> str:
        if isinstance(v, str):
            s = v
        elif isinstance(v, (int, float)):  # bool included: v1 gives "True"/"False"
            s = str(v)
        else:
            raise Invalid("str type expected", "type_error.str")
        if self.min_length is not None and len(s) < self.min_length:
            raise Invalid(f"ensure this value has at least {self.min_length} characters",
                          "value_error.any_str.min_length", {"limit_value": self.min_length})
        if self.max_length is not None and len(s) > self.max_length:
            raise Invalid(f"ensure this value has at most {self.max_length} characters",
                          "value_error.any_str.max_length", {"limit_value": self.max_length})
        if self.pattern is not None and not re.fullmatch(self.pattern, s):
            raise Invalid(f'string does not match regex "{self.pattern}"', "value_error.str.regex",
                          {"pattern": self.pattern})
        return s

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "string"}
        for key, value in (("minLength", self.min_length), ("maxLength", self.max_length),
                           ("pattern", self.pattern)):
            if value is not None:
                out[key] = value
        return out


class Bool:
    def __call__(self, v: Any, loc: Loc) -> bool:
        if v is True or v is False:
            return v
        if isinstance(v, str):
            v = v.lower()
        try:
            if v in BOOL_TRUE:
                return True
            if v in BOOL_FALSE:
                return False
        except TypeError:  # unhashable: a list or an object
            pass
        raise Invalid("value could not be parsed to a boolean", "type_error.bool")

    def schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


def _limits(v: float, ge: float | None, le: float | None) -> None:
    if ge is not None and not v >= ge:
        raise Invalid(f"ensure this value is greater than or equal to {ge}", "value_error.number.not_ge",
                      {"limit_value": ge})
    if le is not None and not v <= le:
        raise Invalid(f"ensure this value is less than or equal to {le}", "value_error.number.not_le",
                      {"limit_value": le})


@dataclass
class Float:
    ge: float | None = None
    le: float | None = None

    def __call__(self, v: Any, loc: Loc) -> float:
        try:
            f = v if isinstance(v, float) else float(v)
        except (TypeError, ValueError, OverflowError):  # v1 let OverflowError escape as a 500; we do not
            raise Invalid("value is not a valid float", "type_error.float") from None
        _limits(f, self.ge, self.le)
        return f

    def schema(self) -> dict[str, Any]:
        return _with_limits({"type": "number"}, self.ge, self.le)


@dataclass
class Int:
    ge: int | None = None
    le: int | None = None

    def __call__(self, v: Any, loc: Loc) -> int:
        if isinstance(v, int) and not isinstance(v, bool):
            i = v
        else:
            try:
                i = int(v)  # v1 truncates 1.9 -> 1 and parses "12"
            except (TypeError, ValueError, OverflowError):
                raise Invalid("value is not a valid integer", "type_error.integer") from None
        _limits(i, self.ge, self.le)
        return i

    def schema(self) -> dict[str, Any]:
        return _with_limits({"type": "integer"}, self.ge, self.le)


def _with_limits(out: dict[str, Any], ge: float | None, le: float | None) -> dict[str, Any]:
    if ge is not None:
        out["minimum"] = ge
    if le is not None:
        out["maximum"] = le
    return out


@dataclass
class Choice:
    """A ``str`` Enum field in v1 (``type_error.enum``)."""

    values: tuple[str, ...]

    def __call__(self, v: Any, loc: Loc) -> str:
        if isinstance(v, str) and v in self.values:
            return v
        permitted = ", ".join(repr(x) for x in self.values)
        raise Invalid(f"value is not a valid enumeration member; permitted: {permitted}", "type_error.enum",
                      {"enum_values": list(self.values)})

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.values)}


# -- containers -----------------------------------------------------------------


@dataclass
class Field:
    """A model field. ``nullable``: ``Optional[...]`` in v1 (``null`` passes as ``None``)."""

    name: str
    rule: Any
    required: bool = False
    nullable: bool = True
    description: str = ""


@dataclass
class ListOf:
    item: Any

    def __call__(self, v: Any, loc: Loc) -> list[Any]:
        if not isinstance(v, (list, tuple)):
            raise Invalid("value is not a valid list", "type_error.list")
        out, errors = [], []
        for i, item in enumerate(v):
            try:
                out.append(_check(self.item, item, (*loc, i), nullable=False))
            except Failed as exc:
                errors.extend(exc.errors)
        if errors:
            raise Failed(errors)
        return out

    def schema(self) -> dict[str, Any]:
        return {"type": "array", "items": self.item.schema()}


@dataclass
class Model:
    """A v1 ``BaseModel``: fields in order, then root validators (``values -> None``, raise ValueError).

    ``partial``: absent optional fields are left out of the result (v1's ``exclude_unset``, for PATCH).
    """

    title: str
    fields: list[Field]
    roots: list[Callable[[dict[str, Any]], None]] = field(default_factory=list)
    partial: bool = False

    def __call__(self, v: Any, loc: Loc) -> dict[str, Any]:
        if not isinstance(v, dict):
            try:
                v = dict(v)  # v1 accepted anything dict() does, e.g. [["role", "user"], ...]
            except (TypeError, ValueError):
                raise Invalid("value is not a valid dict", "type_error.dict") from None
            if not all(isinstance(k, str) for k in v):
                raise Invalid("keywords must be strings", "type_error")
        values: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        for f in self.fields:
            if f.name not in v:
                if f.required:
                    errors.append(error((*loc, f.name), "field required", "value_error.missing"))
                elif not self.partial:
                    values[f.name] = None
                continue
            try:
                values[f.name] = _check(f.rule, v[f.name], (*loc, f.name), f.nullable)
            except Failed as exc:
                errors.extend(exc.errors)
        for root in self.roots:
            try:
                root(values)
            except ValueError as exc:
                errors.append(error((*loc, "__root__"), str(exc), "value_error"))
        if errors:
            raise Failed(errors)
        return values

    def schema(self) -> dict[str, Any]:
        props = {}
        for f in self.fields:
            props[f.name] = {**f.rule.schema(), **({"description": f.description} if f.description else {})}
        out: dict[str, Any] = {"title": self.title, "type": "object", "properties": props}
        required = [f.name for f in self.fields if f.required]
        if required:
            out["required"] = required
        return out


def _check(rule: Any, value: Any, loc: Loc, nullable: bool) -> Any:
    if value is None:
        if nullable:
            return None
        raise Failed([error(loc, "none is not an allowed value", "type_error.none.not_allowed")])
    try:
        return rule(value, loc)
    except Invalid as exc:
        raise Failed([error(loc, exc.msg, exc.type, exc.ctx)]) from None


# -- FastAPI's body handling ----------------------------------------------------


def parse_body(raw: bytes, content_type: str | None, model: Model) -> dict[str, Any]:
    """Decode and validate a request body as FastAPI (pydantic v1 era) did; 422 on failure."""
    body: Any = None
    if raw:
        body = raw
        if _is_json(content_type):
            try:
                body = json.loads(raw)
            except json.JSONDecodeError as exc:
                ctx = {"msg": exc.msg, "doc": exc.doc, "pos": exc.pos, "lineno": exc.lineno, "colno": exc.colno}
                raise V1ValidationError([error(("body", exc.pos), str(exc), "value_error.jsondecode", ctx)]) from None
            except Exception:  # not UTF-8 at all, or nested past the recursion limit: FastAPI answered 400
                raise InvalidRequest("There was an error parsing the body") from None
    return validate(body, model)


def validate(body: Any, model: Model) -> dict[str, Any]:
    """Validate a decoded body (``None``: there was none) as FastAPI validated its one body model."""
    if body is None:
        raise V1ValidationError([error(("body",), "field required", "value_error.missing")])
    try:
        return _check(model, body, ("body",), nullable=False)
    except Failed as exc:
        raise V1ValidationError(exc.errors) from None


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def request_body(model: Model) -> dict[str, Any]:
    """``openapi_extra`` declaring ``model`` as the JSON body, so /docs shows it."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.schema()}}}}
