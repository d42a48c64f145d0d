"""Devices of the tenant: list and read (firmware verdict, pair state, registration), enrol, change, remove.

The registrar records a device the first time it registers (keyed by the MAC from its User-Agent, else its
``+sip.instance``, else user and model) with the firmware verdict of its User-Agent. An administrator can also
enrol a device by MAC before it ever registers (SIP Gateway's "add a device by MAC"), give its model and
firmware (the verdict is computed from the device catalogue) and set its pair state, e.g. ``offboarded``.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Literal

from aiohttp import web
from pydantic import Field, field_validator, model_validator

from device_profiles.verdict import check_firmware
from gateway.control_api.base import (
    PREFIX,
    ApiError,
    Closed,
    check_query,
    json_response,
    not_found,
    op,
    path_param,
    query_param,
    read_body,
    ref,
)
from gateway.services.model import Device, PairState

PairStateName = Literal["onboarding", "unpaired", "paired", "offboarded"]
_MAC_SEP = re.compile(r"[:\-.]")
_MAC = re.compile(r"^[0-9a-f]{12}$")


def normalise_mac(value: str) -> str:
    mac = _MAC_SEP.sub("", value.strip()).lower()
    if not _MAC.match(mac):
        raise ValueError(f"{value!r} is not a MAC address (12 hex digits, e.g. 00:04:f2:8e:5a:79)")
    return mac


class DeviceCreate(Closed):
    mac: str = Field(description="MAC address in any common notation; it becomes the device's key")
    vendor: str | None = Field(default=None, min_length=1, max_length=100)
    model: str | None = Field(default=None, min_length=1, max_length=100)
    firmware: str | None = Field(default=None, min_length=1, max_length=100)
    username: str | None = Field(default=None, description="pair the device to this user")
    pair_state: PairStateName = Field(default=None,  # type: ignore[assignment]
                                      description="default: paired with a username, else unpaired")

    @field_validator("mac")
    @classmethod
    def _mac(cls, value: str) -> str:
        return normalise_mac(value)

    @model_validator(mode="after")
    def _firmware_needs_model(self) -> DeviceCreate:
        if self.firmware is not None and self.model is None:
            raise ValueError("firmware is given without a model")
        return self


class DevicePatch(Closed):
    username: str | None = Field(default=None, description="pair to this user; null unpairs")
    pair_state: PairStateName = Field(default=None)  # type: ignore[assignment]
    model: str = Field(default=None, min_length=1, max_length=100)  # type: ignore[assignment]
    vendor: str = Field(default=None, min_length=1, max_length=100)  # type: ignore[assignment]
    firmware: str = Field(default=None, min_length=1, max_length=100)  # type: ignore[assignment]

    @model_validator(mode="after")
    def _not_empty(self) -> DevicePatch:
        if not self.model_fields_set:
            raise ValueError("nothing to change: give at least one field")
        return self


MODELS = (DeviceCreate, DevicePatch)


def device_view(gw, device: Device) -> dict[str, Any]:
    now = gw.core.now()
    contacts = [b for bs in gw.registrar.all_bindings(now).values() for b in bs if b.device_key == device.key]
    return {
        "key": device.key,
        "vendor": device.vendor,
        "model": device.model,
        "firmware": device.firmware,
        "user_agent": device.user_agent,
        "firmware_verdict": device.verdict,
        "verdict_reason": device.verdict_reason,
        "pair_state": device.pair_state.value,
        "username": device.username,
        "mac": device.mac,
        "last_connected": device.last_connected,
        "created": device.created,
        "registered": bool(contacts),
        "contacts": [b.uri for b in contacts],
    }


def _require(gw, key: str) -> Device:
    device = gw.devices.get(key)
    if device is None:
        ports = gw.devices.ports_of(key) if ":" not in key else []
        if ports:
            raise ApiError(404, "not_found", f"no device {key!r}: that MAC is a multi-port ATA whose lines are "
                           f"known per port ({', '.join(ports)}); address one port", "path.key")
        raise not_found("device", key, "path.key")
    return device


def _check_user(gw, username: str | None) -> None:
    if username is not None and gw.directory.user(username) is None:
        raise ApiError(400, "unknown_user", f"no user {username!r} to pair the device with", "body.username")


def _verdict(model: str | None, firmware: str | None, vendor: str | None) -> tuple[str | None, str | None, str | None]:
    """(vendor, verdict, reason) from the catalogue when a model is known."""
    if model is None:
        return vendor, None, None
    v = check_firmware(model, firmware, vendor=vendor)
    return (v.vendor or vendor), v.verdict.value, v.reason


def routes(gw) -> list[web.RouteDef]:
    async def list_devices(request: web.Request) -> web.Response:
        check_query(request, ("username", "pair_state"))
        username = request.query.get("username")
        state = request.query.get("pair_state")
        if state is not None and state not in PairState._value2member_map_:
            raise ApiError(400, "invalid_request",
                           f"pair_state={state!r} is not one of {', '.join(s.value for s in PairState)}",
                           "query.pair_state")
        devices = [d for d in gw.devices.all()
                   if (username is None or d.username == username) and (state is None or d.pair_state == state)]
        return json_response({"devices": [device_view(gw, d) for d in devices]})

    async def get_device(request: web.Request) -> web.Response:
        check_query(request, ())
        return json_response(device_view(gw, _require(gw, request.match_info["key"])))

    async def create_device(request: web.Request) -> web.Response:
        check_query(request, ())
        body = await read_body(request, DeviceCreate)
        if gw.devices.get(body.mac) is not None:
            raise ApiError(409, "conflict", f"device {body.mac} is already known; PATCH it to change it", "body.mac")
        _check_user(gw, body.username)
        vendor, verdict, reason = _verdict(body.model, body.firmware, body.vendor)
        state = PairState(body.pair_state) if body.pair_state else (
            PairState.PAIRED if body.username else PairState.UNPAIRED)
        if state is PairState.PAIRED and body.username is None:
            raise ApiError(400, "invalid_request", "a paired device needs a username", "body.pair_state")
        device = Device(key=body.mac, vendor=vendor, model=body.model, firmware=body.firmware, verdict=verdict,
                        verdict_reason=reason, pair_state=state, username=body.username, mac=body.mac,
                        created=gw.clock.now())
        saved = gw.devices.put(device)
        return json_response(device_view(gw, saved), status=201)

    async def patch_device(request: web.Request) -> web.Response:
        check_query(request, ())
        device = _require(gw, request.match_info["key"])
        body = await read_body(request, DevicePatch)
        fields = body.model_fields_set
        changes: dict[str, Any] = {}
        if "username" in fields:
            _check_user(gw, body.username)
            changes["username"] = body.username
            if "pair_state" not in fields:
                changes["pair_state"] = PairState.PAIRED if body.username else PairState.UNPAIRED
        if "pair_state" in fields:
            changes["pair_state"] = PairState(body.pair_state)
        new = replace(device, **changes)
        if new.pair_state is PairState.PAIRED and new.username is None:
            raise ApiError(400, "invalid_request", "a paired device needs a username", "body.pair_state")
        if fields & {"model", "vendor", "firmware"}:
            model = body.model if "model" in fields else device.model
            firmware = body.firmware if "firmware" in fields else device.firmware
            vendor = body.vendor if "vendor" in fields else device.vendor
            if firmware is not None and model is None:
                raise ApiError(400, "invalid_request", "firmware is given for a device without a model",
                               "body.firmware")
            vendor, verdict, reason = _verdict(model, firmware, vendor)
            new = replace(new, model=model, firmware=firmware, vendor=vendor, verdict=verdict, verdict_reason=reason)
        saved = gw.devices.put(new)
        return json_response(device_view(gw, saved))

    async def delete_device(request: web.Request) -> web.Response:
        check_query(request, ())
        device = _require(gw, request.match_info["key"])
        gw.devices.remove(device.key)
        prov = getattr(gw, "provisioning", None)
        if prov is not None:
            prov.signin.forget_line(device.key)  # its credentials and codes go with it (it may be enrolled again)
        return json_response({"deleted": device.key})

    return [
        web.get(f"{PREFIX}/devices", list_devices),
        web.post(f"{PREFIX}/devices", create_device),
        web.get(f"{PREFIX}/devices/{{key}}", get_device),
        web.patch(f"{PREFIX}/devices/{{key}}", patch_device),
        web.delete(f"{PREFIX}/devices/{{key}}", delete_device),
    ]


_KEY = path_param("key", "the device key: its MAC (12 lower-case hex digits) or SIP instance")

OPENAPI_PATHS: dict[str, Any] = {
    f"{PREFIX}/devices": {
        "get": op("list devices with firmware verdict, pair state and registration",
                  schema={"type": "object", "properties": {"devices": {"type": "array", "items": ref("Device")}}},
                  params=[query_param("username", "only this user's devices"),
                          query_param("pair_state", "only devices in this pair state")]),
        "post": op("enrol a device by MAC", ok=201, schema=ref("Device"), body=DeviceCreate, errors=(400, 409)),
    },
    f"{PREFIX}/devices/{{key}}": {
        "get": op("one device", schema=ref("Device"), params=[_KEY], errors=(400, 404)),
        "patch": op("pair, unpair, offboard a device or correct its model and firmware", schema=ref("Device"),
                    body=DevicePatch, params=[_KEY], errors=(400, 404)),
        "delete": op("forget a device", params=[_KEY], errors=(400, 404)),
    },
}

SCHEMAS: dict[str, Any] = {
    "Device": {
        "type": "object",
        "properties": {
            "key": {"type": "string"}, "vendor": {"type": ["string", "null"]},
            "model": {"type": ["string", "null"]}, "firmware": {"type": ["string", "null"]},
            "user_agent": {"type": ["string", "null"]},
            "firmware_verdict": {"type": ["string", "null"],
                                 "enum": ["supported", "newer_than_approved", "below_minimum", "wrong_family",
                                          "unknown_model", "unparseable", None]},
            "verdict_reason": {"type": ["string", "null"]},
            "pair_state": {"type": "string", "enum": [s.value for s in PairState]},
            "username": {"type": ["string", "null"]}, "mac": {"type": ["string", "null"]},
            "last_connected": {"type": ["number", "null"]}, "created": {"type": ["number", "null"]},
            "registered": {"type": "boolean"}, "contacts": {"type": "array", "items": {"type": "string"}},
        },
    },
}
