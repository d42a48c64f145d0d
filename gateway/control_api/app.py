"""The gateway's control API: aiohttp on the gateway's own event loop, JSON under ``/api/v1/``.

Each area is a module ``gateway/control_api/routes_<area>.py`` exposing ``routes(gw) -> list[RouteDef]`` and
``OPENAPI_PATHS`` (OpenAPI path items), optionally ``SCHEMAS`` (named component schemas) and ``MODELS`` (the
pydantic request models, published as component schemas). :class:`ControlApi` mounts every module named in
:data:`ROUTE_MODULES` and serves the assembled OpenAPI 3 document at ``GET /api/v1/openapi.json``.

Handlers run on the loop that runs the SIP core, so a write through the API never races a REGISTER or an
INVITE, and every request is validated before anything is written. The API listens on loopback unless the
configuration says otherwise. With a control token (``GatewayConfig.control_token``: ``gateway serve
--control-token-file``, or the token made for a non-loopback ``--http``) every request needs
``Authorization: Bearer <token>`` (:mod:`gateway.control_api.auth`); without one it has no authentication, and
binding it elsewhere than loopback logs a warning.
"""

from __future__ import annotations

import importlib
import logging
from types import ModuleType
from typing import Any

from aiohttp import web

from gateway.control_api.auth import REALM, bearer_middleware, is_loopback
from gateway.control_api.base import MAX_BODY, PREFIX, ApiError, check_query, json_response, op

log = logging.getLogger("sipgw.control")
access_log = logging.getLogger("sipgw.http")

#: Route modules mounted by :class:`ControlApi`, as ``gateway.control_api.routes_<name>``.
ROUTE_MODULES: tuple[str, ...] = ("system", "users", "devices", "registrations", "calls", "trace", "clock", "media",
                                  "signin", "voicemail", "forwarding", "e911",
                                  "queues", "meetings")
#: Modules another part of the gateway provides; the API starts without them (logged) while they are missing.
OPTIONAL_MODULES = frozenset({"media"})

ACCESS_FORMAT = 'event=http request="%r" status=%s bytes=%b time_s=%Tf peer=%a'

_STATUS_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "body_too_large",
                 415: "unsupported_media_type"}


def load_route_modules(names: tuple[str, ...] = ROUTE_MODULES) -> list[ModuleType]:
    modules = []
    for name in names:
        full = f"gateway.control_api.routes_{name}"
        try:
            modules.append(importlib.import_module(full))
        except ModuleNotFoundError as exc:
            if exc.name == full and name in OPTIONAL_MODULES:
                log.warning("event=control_module_missing module=%s", full)
                continue
            raise
    return modules


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return json_response(exc.document(), status=exc.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _STATUS_CODES.get(exc.status, "http_error")
        if exc.status == 404:
            message, where = f"no route {request.method} {request.path}; see {PREFIX}/openapi.json", "path"
        elif exc.status == 405:
            allowed = ", ".join(sorted(getattr(exc, "allowed_methods", ()) or ()))
            message, where = f"{request.method} is not allowed on {request.path} (allowed: {allowed})", "method"
        elif exc.status == 413:
            message, where = f"the body is larger than {MAX_BODY} bytes", "body"
        else:
            message, where = exc.reason or exc.text or "bad request", None
        return json_response({"error": {"code": code, "message": message, "where": where}}, status=exc.status)
    except Exception:
        log.exception("event=control_error method=%s path=%s", request.method, request.path)
        return json_response({"error": {"code": "internal", "message": "the gateway failed on this request; "
                                        "see its log", "where": None}}, status=500)


def _model_schemas(modules: list[ModuleType]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for module in modules:
        for model in getattr(module, "MODELS", ()):
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in schema.pop("$defs", {}).items():
                out.setdefault(name, sub)
            out[model.__name__] = schema
    return out


#: The OpenAPI security scheme of the control token.
SECURITY_SCHEME = "controlToken"


def build_openapi(modules: list[ModuleType], build: str = "", token_required: bool = False) -> dict[str, Any]:
    """The OpenAPI 3 document; ``token_required``: the gateway has a control token, so every operation needs it
    (and may answer 401)."""
    paths: dict[str, Any] = {
        f"{PREFIX}/openapi.json": {"get": op("this document", schema={"type": "object"}, errors=())},
    }
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object", "required": ["error"],
            "properties": {"error": {"type": "object", "required": ["code", "message", "where"], "properties": {
                "code": {"type": "string"}, "message": {"type": "string"},
                "where": {"type": ["string", "null"],
                          "description": "the part of the request that is wrong: body, body.<field>, "
                                         "path.<param>, query.<param>"},
                "details": {"type": "array", "items": {"type": "object"}}}}},
        },
    }
    for module in modules:
        for path, item in module.OPENAPI_PATHS.items():
            paths.setdefault(path, {}).update(item)
        schemas.update(getattr(module, "SCHEMAS", {}))
    schemas.update(_model_schemas(modules))
    if token_required:
        unauthorized = {"description": "no bearer token, or a token that was not accepted (WWW-Authenticate: "
                                       f'Bearer realm="{REALM}")',
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        for item in paths.values():  # new operation objects: the modules' OPENAPI_PATHS stay as they are
            for method, operation in list(item.items()):
                item[method] = {**operation, "responses": {**operation.get("responses", {}), "401": unauthorized}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "sipgw-lab gateway control API", "version": "1", "description":
                 "Users, devices, registrations, calls, SIP trace, clock and reset of the embedded reference "
                 f"gateway. {build}".strip()},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {SECURITY_SCHEME: {
                "type": "http", "scheme": "bearer",
                "description": "the gateway's control token (gateway serve --control-token-file FILE, or "
                               "control-token in its data directory when --http is not on loopback); a gateway "
                               "without one (loopback, no token file) asks for nothing"}},
        },
        "security": [{SECURITY_SCHEME: []}] if token_required else [],
    }


class ControlApi:
    """The control API of one :class:`gateway.server.EmbeddedGateway`."""

    def __init__(self, gw, modules: tuple[str, ...] = ROUTE_MODULES):
        self.gw = gw
        self.modules = load_route_modules(modules)
        secret = getattr(gw.config, "control_token", None)
        #: the control token, or None: every request of this app needs ``Authorization: Bearer <token>``
        self.token: str | None = secret.get_secret_value() if secret is not None else None
        middlewares = [error_middleware]
        if self.token is not None:
            middlewares.append(bearer_middleware(self.token))
        self.app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY)
        for module in self.modules:
            self.app.add_routes(module.routes(gw))
        from gateway.server import BUILD

        self.openapi = build_openapi(self.modules, BUILD, token_required=self.token is not None)

        async def openapi(request: web.Request) -> web.Response:
            check_query(request, ())
            return json_response(self.openapi)

        self.app.add_routes([web.get(f"{PREFIX}/openapi.json", openapi)])
        self._runner: web.AppRunner | None = None
        self.address: tuple[str, int] | None = None

    def route_table(self) -> list[tuple[str, str]]:
        """(method, path template) of every mounted route, HEAD excepted."""
        out = []
        for route in self.app.router.routes():
            if route.method == "HEAD":
                continue
            info = route.resource.get_info() if route.resource is not None else {}
            out.append((route.method, info.get("path") or info.get("formatter") or ""))
        return out

    async def start(self, host: str, port: int) -> tuple[str, int]:
        from gateway.control_api.routes_users import ensure_baselines

        ensure_baselines(self.gw)
        if not is_loopback(host) and self.token is None:
            log.warning("event=control_not_loopback host=%s note=\"the control API has no authentication\"", host)
        log.info("event=control_auth token=%s", "required" if self.token is not None else "none")
        self._runner = web.AppRunner(self.app, access_log=access_log, access_log_format=ACCESS_FORMAT,
                                     handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await self._runner.cleanup()
            self._runner = None
            raise
        bound = self._runner.addresses  # the real port when 0 was asked for
        self.address = (host, int(bound[0][1]) if bound else port)
        log.info("event=control_listening url=http://%s:%d%s", *self._url_host(), PREFIX)
        return self.address

    def _url_host(self) -> tuple[str, int]:
        assert self.address is not None
        host, port = self.address
        return (f"[{host}]" if ":" in host else host), port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
