"""What every route module of the control API shares: located JSON errors, body and query validation.

An error is always ``{"error": {"code": "...", "message": "...", "where": "..."}}`` with a 4xx status (5xx only
for a fault of the gateway itself). ``where`` names the part of the request that is wrong: ``body`` (malformed
JSON), ``body.policy.allow_call_redirect`` (a field), ``path.username``, ``query.since``. Handlers validate
everything before they write anything, so a rejected request changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

M = TypeVar("M", bound=BaseModel)

PREFIX = "/api/v1"
#: Largest request body accepted (the API carries small JSON documents only).
MAX_BODY = 256 * 1024


class ApiError(Exception):
    """A request the API refuses; turned into the JSON error document by :func:`error_middleware`."""

    def __init__(self, status: int, code: str, message: str, where: str | None = None,
                 details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.where = where
        self.details = details

    def document(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message, "where": self.where}
        if self.details:
            err["details"] = self.details
        return {"error": err}


def not_found(what: str, ident: str, where: str) -> ApiError:
    return ApiError(404, "not_found", f"no {what} {ident!r}", where)


class Closed(BaseModel):
    """Request bodies: unknown fields are errors, and no silent type coercion ("1" is not a number)."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _loc(prefix: str, loc: Iterable[Any]) -> str:
    parts = [prefix]
    for p in loc:
        if isinstance(p, int):
            parts[-1] += f"[{p}]"
        else:
            parts.append(str(p))
    return ".".join(parts)


def validation_error(exc: ValidationError, prefix: str) -> ApiError:
    details = []
    # An unknown field first: it is usually a misspelling, and explains the "missing" error that comes with it.
    errors = sorted(exc.errors(include_url=False), key=lambda e: e.get("type") != "extra_forbidden")
    for e in errors:
        where = _loc(prefix, e.get("loc", ()))
        msg = e.get("msg", "invalid")
        if e.get("type") == "extra_forbidden":
            msg = "unknown field"
        elif e.get("type") == "missing":
            msg = "required field is missing"
        details.append({"where": where, "message": msg})
    first = details[0] if details else {"where": prefix, "message": "invalid"}
    more = f" (and {len(details) - 1} more problem(s), see details)" if len(details) > 1 else ""
    return ApiError(400, "invalid_request", f"{first['where']}: {first['message']}{more}", first["where"], details)


async def read_json(request: web.Request) -> Any:
    """The request body as JSON; a located 400 when it is missing, too large, not UTF-8 or not JSON."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, "body_too_large", f"the body is {request.content_length} bytes; at most {MAX_BODY}",
                       "body")
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise ApiError(413, "body_too_large", f"the body is larger than {MAX_BODY} bytes", "body")
    if not raw.strip():
        raise ApiError(400, "malformed_json", "the request needs a JSON body", "body")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "malformed_json", f"the body is not UTF-8 (byte {exc.start})", "body") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiError(400, "malformed_json",
                       f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                       "body") from None


async def read_body(request: web.Request, model: type[M]) -> M:
    """Read and validate a JSON object body against ``model`` (a :class:`Closed` model)."""
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_request", f"the body must be a JSON object, not {type(data).__name__}",
                       "body")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, "body") from None


def check_query(request: web.Request, allowed: Iterable[str]) -> None:
    allowed = set(allowed)
    for key in request.query:
        if key not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise ApiError(400, "invalid_request", f"unknown query parameter {key!r} (known: {known})",
                           f"query.{key}")


def query_float(request: web.Request, name: str) -> float | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    try:
        out = float(value)
    except ValueError:
        raise ApiError(400, "invalid_request", f"{name}={value!r} is not a number (seconds since the epoch)",
                       f"query.{name}") from None
    if out != out or out in (float("inf"), float("-inf")):
        raise ApiError(400, "invalid_request", f"{name}={value!r} is not a finite number", f"query.{name}")
    return out


def query_int(request: web.Request, name: str, *, minimum: int = 0) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    if not value.isdigit() or int(value) < minimum:
        raise ApiError(400, "invalid_request", f"{name}={value!r} is not a whole number >= {minimum}",
                       f"query.{name}")
    return int(value)


def query_bool(request: web.Request, name: str) -> bool | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    low = value.lower()
    if low in ("1", "true", "yes"):
        return True
    if low in ("0", "false", "no"):
        return False
    raise ApiError(400, "invalid_request", f"{name}={value!r} is not true or false", f"query.{name}")


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, ensure_ascii=False))


# --- OpenAPI helpers ---------------------------------------------------------------------------------------------

def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


ERROR_RESPONSE = {"description": "a located error", "content": {"application/json": {"schema": ref("Error")}}}


def op(summary: str, *, ok: int = 200, schema: dict | None = None, body: type[BaseModel] | None = None,
       params: list[dict] | None = None, content_type: str = "application/json", errors: Iterable[int] = (400,),
       ) -> dict[str, Any]:
    """One OpenAPI operation object."""
    response: dict[str, Any] = {"description": summary}
    if schema is not None or content_type != "application/json":
        response["content"] = {content_type: {"schema": schema or {"type": "string"}}}
    out: dict[str, Any] = {"summary": summary, "responses": {str(ok): response}}
    for status in errors:
        out["responses"][str(status)] = ERROR_RESPONSE
    if params:
        out["parameters"] = params
    if body is not None:
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(body.__name__)}}}
    return out


def path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string"}}


def query_param(name: str, description: str, type_: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": {"type": type_}}
