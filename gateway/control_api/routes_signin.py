"""Provisioning, sign-in, enrolment, bulk sign-in and offboarding through the control API.

``GET /provisioning`` gives the provisioning server's URL (what DHCP option 66/160 would hand a device) and the
web pages; ``GET /provisioning/exchanges`` the HTTP exchanges for evidence. Per device: what its display shows
(``GET /devices/{key}/signin``: state, pairing code, sign-in URL), remote sign-in of a common-area account
(``POST /devices/{key}/signin``), sign-out (``POST /devices/{key}/signout``). Admin enrolment by MAC (one, or a
CSV of MACs) answers one-time verification codes for ``*55*<code>``; bulk sign-in takes a ``Username,HardwareId``
CSV. ``POST /lifecycle/sweep`` runs the offboarding sweeper at once (it also runs every second).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field, field_validator

from gateway.control_api.base import (
    PREFIX,
    ApiError,
    Closed,
    check_query,
    json_response,
    not_found,
    op,
    path_param,
    query_int,
    read_body,
    ref,
)
from gateway.control_api.routes_devices import device_view
from gateway.services.lifecycle import offboarding_date
from gateway.services.signin import SignInError, normalise_mac


class RemoteSignIn(Closed):
    username: str = Field(min_length=1, max_length=200)


class Enrolment(Closed):
    mac: str | None = Field(default=None, description="one MAC")
    csv: str | None = Field(default=None, description="several MACs, one a line (a header 'mac' is allowed)")

    @field_validator("mac")
    @classmethod
    def _mac(cls, value: str | None) -> str | None:
        return None if value is None else normalise_mac(value)


class BulkSignIn(Closed):
    csv: str = Field(description="Username,HardwareId rows (HardwareId xx-xx-xx-xx-xx-xx, ATA ports :001 …)")


class ProvisioningSettings(Closed):
    code_ttl_s: int = Field(default=None, ge=60, le=86400,  # type: ignore[assignment]
                            description="pairing-code lifetime in seconds (default 900)")
    lab_mode: bool = Field(default=None,  # type: ignore[assignment]
                           description="served files keep the harness's control path open")


MODELS = (RemoteSignIn, Enrolment, BulkSignIn, ProvisioningSettings)


def _prov(gw):
    prov = getattr(gw, "provisioning", None)
    if prov is None:
        raise ApiError(409, "not_running", "the provisioning server is not running", None)
    return prov


def _err(exc: SignInError) -> ApiError:
    where = exc.where if exc.where is None or "." in exc.where else f"body.{exc.where}"
    if exc.where == "key":
        where = "path.key"
    return ApiError(exc.status, exc.code, exc.message, where)


def routes(gw) -> list[web.RouteDef]:
    def device(key: str):
        d = gw.devices.get(key)
        if d is None:
            raise not_found("device", key, "path.key")
        return d

    def view(d) -> dict[str, Any]:
        out = device_view(gw, d)
        out["offboarding_date"] = offboarding_date(d)
        return out

    async def info(request: web.Request) -> web.Response:
        check_query(request, ())
        prov = _prov(gw)
        url = prov.server.url
        return json_response({"url": url, "signin_page": f"{url}/signin", "admin_page": f"{url}/admin/devices",
                              "code_ttl_s": prov.signin.code_ttl_s, "lab_mode": prov.server.lab_mode})

    async def settings(request: web.Request) -> web.Response:
        check_query(request, ())
        body = await read_body(request, ProvisioningSettings)
        if not body.model_fields_set:
            raise ApiError(400, "invalid_request", "nothing to change: give code_ttl_s or lab_mode", "body")
        prov = _prov(gw)
        if "code_ttl_s" in body.model_fields_set:
            prov.signin.code_ttl_s = float(body.code_ttl_s)
        if "lab_mode" in body.model_fields_set:
            prov.server.lab_mode = body.lab_mode
        return await info(request)

    async def exchanges(request: web.Request) -> web.Response:
        check_query(request, ("after_seq",))
        return json_response({"exchanges": _prov(gw).server.exchanges(query_int(request, "after_seq") or 0)})

    async def signin_status(request: web.Request) -> web.Response:
        check_query(request, ())
        d = device(request.match_info["key"])
        return json_response(_prov(gw).server.status(d.key))

    async def remote_signin(request: web.Request) -> web.Response:
        check_query(request, ())
        d = device(request.match_info["key"])
        body = await read_body(request, RemoteSignIn)
        try:
            saved = _prov(gw).signin.remote_sign_in(d.key, body.username)
        except SignInError as exc:
            raise _err(exc) from None
        return json_response(view(saved))

    async def signout(request: web.Request) -> web.Response:
        check_query(request, ())
        d = device(request.match_info["key"])
        try:
            saved = _prov(gw).signin.sign_out(d.key, by="admin")
        except SignInError as exc:
            raise _err(exc) from None
        return json_response(view(saved))

    async def enrol(request: web.Request) -> web.Response:
        check_query(request, ())
        body = await read_body(request, Enrolment)
        if (body.mac is None) == (body.csv is None):
            raise ApiError(400, "invalid_request", "give either mac or csv", "body")
        macs: list[str] = []
        if body.mac:
            macs = [body.mac]
        else:
            for n, line in enumerate((body.csv or "").splitlines(), 1):
                text = line.strip().split(",")[0].strip()
                if not text or (n == 1 and text.lower() in ("mac", "macaddress", "hardwareid")):
                    continue
                try:
                    macs.append(normalise_mac(text))
                except ValueError as exc:
                    raise ApiError(400, "invalid_request", f"line {n}: {exc}", "body.csv") from None
        signin = _prov(gw).signin
        for mac in macs:  # check all before enrolling any (every line: each port of an ATA is one)
            for d in signin.lines(mac):
                if d.pair_state.value == "paired":
                    raise ApiError(409, "already_signed_in", f"device {d.key} is signed in as {d.username}", "body")
        out = []
        for mac in macs:
            _, code, expires = signin.enrol(mac)
            out.append({"mac": mac, "verification_code": code, "expires": expires, "dial": f"*55*{code}"})
        return json_response({"enrolments": out}, status=201)

    async def bulk(request: web.Request) -> web.Response:
        check_query(request, ())
        body = await read_body(request, BulkSignIn)
        try:
            batch = _prov(gw).signin.bulk_sign_in(body.csv)
        except SignInError as exc:
            raise _err(exc) from None
        return json_response({"id": batch.id, "created": batch.created, "succeeded": batch.succeeded,
                              "rows": [r.__dict__ for r in batch.rows]}, status=201)

    async def sweep(request: web.Request) -> web.Response:
        check_query(request, ())
        done = _prov(gw).lifecycle.sweep()
        return json_response({"offboarded": [{"key": o.key, "state_before": o.state_before.value,
                                              "idle_s": o.idle_s, "reason": o.reason} for o in done]})

    return [
        web.get(f"{PREFIX}/provisioning", info),
        web.patch(f"{PREFIX}/provisioning", settings),
        web.get(f"{PREFIX}/provisioning/exchanges", exchanges),
        web.get(f"{PREFIX}/devices/{{key}}/signin", signin_status),
        web.post(f"{PREFIX}/devices/{{key}}/signin", remote_signin),
        web.post(f"{PREFIX}/devices/{{key}}/signout", signout),
        web.post(f"{PREFIX}/enrolments", enrol),
        web.post(f"{PREFIX}/signin/bulk", bulk),
        web.post(f"{PREFIX}/lifecycle/sweep", sweep),
    ]


_KEY = path_param("key", "the device key (its MAC)")
_OBJ = {"type": "object"}

OPENAPI_PATHS: dict[str, Any] = {
    f"{PREFIX}/provisioning": {
        "get": op("provisioning server URL and web pages", schema=_OBJ, errors=(400, 409)),
        "patch": op("pairing-code lifetime and lab mode", schema=_OBJ, body=ProvisioningSettings, errors=(400, 409)),
    },
    f"{PREFIX}/provisioning/exchanges": {"get": op("HTTP exchanges of the provisioning server", schema=_OBJ)},
    f"{PREFIX}/devices/{{key}}/signin": {
        "get": op("what the device shows: state, pairing code, sign-in URL", schema=_OBJ, params=[_KEY],
                  errors=(400, 404)),
        "post": op("remote sign-in of a common-area account", schema=ref("Device"), body=RemoteSignIn,
                   params=[_KEY], errors=(400, 403, 404, 409)),
    },
    f"{PREFIX}/devices/{{key}}/signout": {
        "post": op("sign the device out", schema=ref("Device"), params=[_KEY], errors=(400, 404, 409)),
    },
    f"{PREFIX}/enrolments": {
        "post": op("enrol devices by MAC: one-time verification codes for *55*", ok=201, schema=_OBJ,
                   body=Enrolment, errors=(400, 409)),
    },
    f"{PREFIX}/signin/bulk": {
        "post": op("bulk sign-in from a Username,HardwareId CSV", ok=201, schema=_OBJ, body=BulkSignIn,
                   errors=(400, 429)),
    },
    f"{PREFIX}/lifecycle/sweep": {"post": op("run the offboarding sweeper now", schema=_OBJ)},
}
