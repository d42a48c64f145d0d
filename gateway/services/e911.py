"""Dynamic emergency calling (E911): the tenant's location information service (LIS) and emergency routing.

Seed, footnote 1 of the vendor table: the marked models support dynamic emergency calling with SIP Gateway;
compatible Cisco phones discover their location over LLDP only. What an administrator configures, as in the
Teams admin centre (README, "Dynamic E911"):

- **civic addresses** (``id`` → country, state ``A1``, city ``A3``, street ``RD``, house number ``HNO``,
  location ``LOC`` such as a floor, name ``NAM``, postal code ``PC``), RFC 5139 element names;
- **network places** mapped to an address: subnets, switches (LLDP chassis id) and switch ports (chassis id and
  port id); resolution prefers the most specific: port, then switch, then the longest matching subnet;
- a **static emergency address** per phone number, and the tenant's default address: used when the device
  does not support dynamic E911, when its network attributes match nothing, and for Cisco phones without LLDP
  data (their subnet is not used: Cisco discovers location over LLDP only).

A device reports its network attributes. On the loopback lab a device cannot sit in the inventory's subnet, so
*(lab design)* it sends them in the lab header ``X-Sipgw-Lab-Network: subnet=10.20.1.0/24; chassis=00:1b:54:aa:10:01;
port=Gi1/0/11`` on its REGISTER (remembered per user name) or on the emergency INVITE itself (which wins).

Emergency numbers (911, 112, 999, 000, 110, 119) and the test number 933 reach an emulated PSAP on the PSTN
side (a PSTN party of the media node, identity ``+<number>``). The gateway inserts the location into the
INVITE towards the PSAP as PIDF-LO (RFC 4119 with the RFC 5139 civic address, RFC 5491 profile) in a
``multipart/mixed`` body next to the SDP, pointed at by ``Geolocation: <cid:…>`` (RFC 6442 §4.1) with
``Geolocation-Routing: no`` (§4.2); a device that sent its own ``Geolocation`` keeps it. Emergency calls are
allowed whatever the caller's calling policy or sign-in state; the PSAP's callback is an ordinary PSTN call to
the user's number.

This module's logic (:class:`LocationService`, :func:`pidf_lo`, :func:`parse_network_header`) does no I/O;
:class:`E911Service` wires it into the SIP core and keeps the tenant's LIS in the store.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from gateway.services.directory import number_key
from gateway.services.routing import dialled_number
from gateway.sip.errors import SipParseError
from gateway.sip.multipart import BodyPart, build_multipart

log = logging.getLogger("sipgw.e911")

EMERGENCY_NUMBERS = ("911", "112", "999", "000", "110", "119")
TEST_NUMBER = "933"
LAB_NETWORK_HEADER = "X-Sipgw-Lab-Network"
SETTING_KEY = "e911.lis"
CIVIC_FIELDS = ("country", "A1", "A3", "RD", "HNO", "LOC", "NAM", "PC")
_ADDRESS_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_CHASSIS = re.compile(r"^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$")


class LisError(ValueError):
    """A LIS document or network attribute that is wrong; ``where`` names the part at fault."""

    def __init__(self, message: str, where: str) -> None:
        super().__init__(message)
        self.where = where


@dataclass(frozen=True)
class CivicAddress:
    id: str
    country: str
    A1: str = ""
    A3: str = ""
    RD: str = ""
    HNO: str = ""
    LOC: str = ""
    NAM: str = ""
    PC: str = ""

    def to_json(self) -> dict[str, str]:
        return asdict(self)

    def one_line(self) -> str:
        parts = [f"{self.HNO} {self.RD}".strip(), self.LOC, self.A3, f"{self.A1} {self.PC}".strip(), self.country]
        return ", ".join(p for p in parts if p)


@dataclass(frozen=True)
class NetworkAttributes:
    """What a device reports about where it is plugged in."""

    subnet: str | None = None
    chassis: str | None = None
    port: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.subnet or self.chassis)

    def header_value(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in (("subnet", self.subnet), ("chassis", self.chassis),
                                                  ("port", self.port)) if v)


def normalise_chassis(value: str, where: str) -> str:
    if not _CHASSIS.match(value.strip()):
        raise LisError(f"chassis id {value!r} is not a MAC address such as 00:1b:54:aa:10:01", where)
    return value.strip().lower().replace("-", ":")


def parse_network_header(value: str) -> NetworkAttributes:
    """``subnet=10.20.1.0/24; chassis=00:1b:54:aa:10:01; port=Gi1/0/11`` (any of them; at least one)."""
    out: dict[str, str] = {}
    for item in value.split(";"):
        item = item.strip()
        if not item:
            continue
        key, sep, val = item.partition("=")
        key, val = key.strip().lower(), val.strip()
        where = f"header.{LAB_NETWORK_HEADER}.{key}"
        if not sep or not val:
            raise LisError(f"{LAB_NETWORK_HEADER}: {item!r} is not key=value", f"header.{LAB_NETWORK_HEADER}")
        if key not in ("subnet", "chassis", "port"):
            raise LisError(f"{LAB_NETWORK_HEADER}: unknown attribute {key!r} (subnet, chassis, port)", where)
        if key in out:
            raise LisError(f"{LAB_NETWORK_HEADER}: {key} given twice", where)
        if key == "subnet":
            try:
                val = str(ipaddress.ip_network(val, strict=False))
            except ValueError:
                raise LisError(f"{LAB_NETWORK_HEADER}: {val!r} is not a subnet such as 10.1.20.0/24", where) from None
        elif key == "chassis":
            val = normalise_chassis(val, where)
        out[key] = val
    if not out:
        raise LisError(f"{LAB_NETWORK_HEADER} is empty", f"header.{LAB_NETWORK_HEADER}")
    if "port" in out and "chassis" not in out:
        raise LisError(f"{LAB_NETWORK_HEADER}: a port needs its switch's chassis id",
                       f"header.{LAB_NETWORK_HEADER}.port")
    return NetworkAttributes(**out)


@dataclass(frozen=True)
class Resolution:
    """Where an emergency call is said to come from, and why."""

    address: CivicAddress
    method: str  # port | switch | subnet | static | device
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address.to_json(), "method": self.method, "reason": self.reason,
                "dynamic": self.method in ("port", "switch", "subnet")}


@dataclass
class LocationService:
    """The tenant's LIS: addresses, network places, static addresses per number, and the resolution rules."""

    addresses: dict[str, CivicAddress] = field(default_factory=dict)
    subnets: dict[str, str] = field(default_factory=dict)  # network → address id
    switches: dict[str, str] = field(default_factory=dict)  # chassis → address id
    ports: dict[tuple[str, str], str] = field(default_factory=dict)  # (chassis, port) → address id
    static: dict[str, str] = field(default_factory=dict)  # number key → address id
    default_address: str | None = None

    DEFAULT = CivicAddress("company", "US", "WA", "Redmond", "Microsoft Way", "1", "", "Company address", "98052")

    # --- documents ----------------------------------------------------------------------------------------
    @classmethod
    def from_json(cls, doc: Any) -> LocationService:
        """Validate a whole LIS document (nothing is kept from a document with an error)."""
        if not isinstance(doc, dict):
            raise LisError("the LIS document must be a JSON object", "body")
        known = {"addresses", "subnets", "switches", "ports", "static", "default_address"}
        for key in doc:
            if key not in known:
                raise LisError(f"unknown field {key!r} (known: {', '.join(sorted(known))})", f"body.{key}")
        lis = cls()
        addrs = doc.get("addresses", [])
        if not isinstance(addrs, list):
            raise LisError("addresses must be a list", "body.addresses")
        for i, a in enumerate(addrs):
            where = f"body.addresses[{i}]"
            if not isinstance(a, dict):
                raise LisError("an address must be an object", where)
            for k, v in a.items():
                if k != "id" and k not in CIVIC_FIELDS:
                    raise LisError(f"unknown civic field {k!r} (known: id, {', '.join(CIVIC_FIELDS)})",
                                   f"{where}.{k}")
                if not isinstance(v, str):
                    raise LisError(f"{k} must be a string", f"{where}.{k}")
            aid = a.get("id", "")
            if not _ADDRESS_ID.match(aid):
                raise LisError(f"address id {aid!r} must be 1-64 of letters, digits, '.', '_', '-'", f"{where}.id")
            if aid in lis.addresses:
                raise LisError(f"address id {aid!r} is given twice", f"{where}.id")
            if not re.match(r"^[A-Z]{2}$", a.get("country", "")):
                raise LisError("country must be a two-letter ISO 3166 code such as US", f"{where}.country")
            lis.addresses[aid] = CivicAddress(**a)

        def address_ref(value: Any, where: str) -> str:
            if not isinstance(value, str) or value not in lis.addresses:
                raise LisError(f"address {value!r} is not one of the document's addresses "
                               f"({', '.join(lis.addresses) or 'none'})", where)
            return value

        def mapping(name: str) -> list[tuple[int, dict]]:
            items = doc.get(name, [])
            if not isinstance(items, list):
                raise LisError(f"{name} must be a list", f"body.{name}")
            for i, item in enumerate(items):
                if not isinstance(item, dict):
                    raise LisError("each entry must be an object", f"body.{name}[{i}]")
            return list(enumerate(items))

        for i, s in mapping("subnets"):
            where = f"body.subnets[{i}]"
            _only(s, {"subnet", "address"}, where)
            try:
                net = str(ipaddress.ip_network(str(s.get("subnet")), strict=False))
            except ValueError:
                raise LisError(f"{s.get('subnet')!r} is not a subnet such as 10.1.20.0/24", f"{where}.subnet") from None
            lis.subnets[net] = address_ref(s.get("address"), f"{where}.address")
        for i, s in mapping("switches"):
            where = f"body.switches[{i}]"
            _only(s, {"chassis", "address"}, where)
            chassis = normalise_chassis(str(s.get("chassis", "")), f"{where}.chassis")
            lis.switches[chassis] = address_ref(s.get("address"), f"{where}.address")
        for i, s in mapping("ports"):
            where = f"body.ports[{i}]"
            _only(s, {"chassis", "port", "address"}, where)
            chassis = normalise_chassis(str(s.get("chassis", "")), f"{where}.chassis")
            port = s.get("port")
            if not isinstance(port, str) or not port.strip():
                raise LisError("port must be the switch port id, e.g. Gi1/0/11", f"{where}.port")
            lis.ports[(chassis, port.strip())] = address_ref(s.get("address"), f"{where}.address")
        for i, s in mapping("static"):
            where = f"body.static[{i}]"
            _only(s, {"number", "address"}, where)
            num = s.get("number")
            if not isinstance(num, str) or not re.match(r"^\+?[0-9]{2,15}$", num):
                raise LisError(f"number {num!r} is not a phone number", f"{where}.number")
            lis.static[number_key(num)] = address_ref(s.get("address"), f"{where}.address")
        if doc.get("default_address") is not None:
            lis.default_address = address_ref(doc["default_address"], "body.default_address")
        return lis

    def to_json(self) -> dict[str, Any]:
        return {
            "addresses": [a.to_json() for a in self.addresses.values()],
            "subnets": [{"subnet": s, "address": a} for s, a in self.subnets.items()],
            "switches": [{"chassis": c, "address": a} for c, a in self.switches.items()],
            "ports": [{"chassis": c, "port": p, "address": a} for (c, p), a in self.ports.items()],
            "static": [{"number": "+" + n, "address": a} for n, a in self.static.items()],
            "default_address": self.default_address,
        }

    # --- resolution ---------------------------------------------------------------------------------------
    def static_address(self, number: str | None) -> CivicAddress:
        aid = self.static.get(number_key(number)) if number else None
        aid = aid or self.default_address
        return self.addresses.get(aid, self.DEFAULT) if aid else self.DEFAULT

    def resolve(self, attrs: NetworkAttributes | None, number: str | None, *, dynamic: bool,
                lldp_only: bool = False, model: str = "the device") -> Resolution:
        """The location of an emergency call: the most specific network place, else the static address."""
        if not dynamic:
            return Resolution(self.static_address(number), "static",
                              f"{model} does not support dynamic emergency calling (footnote 1); static address")
        if attrs is None or attrs.empty:
            return Resolution(self.static_address(number), "static",
                              f"{model} reported no network attributes; static address")
        if attrs.chassis:
            aid = self.ports.get((attrs.chassis, attrs.port or ""))
            if aid:
                return Resolution(self.addresses[aid], "port", f"switch {attrs.chassis} port {attrs.port}")
            aid = self.switches.get(attrs.chassis)
            if aid:
                return Resolution(self.addresses[aid], "switch", f"switch {attrs.chassis}")
        elif lldp_only:
            return Resolution(self.static_address(number), "static",
                              f"{model} discovers its location over LLDP only and reported no LLDP data; "
                              "static address")
        if attrs.subnet and not lldp_only:
            dev = ipaddress.ip_network(attrs.subnet, strict=False)
            best: tuple[int, str] | None = None
            for net, aid in self.subnets.items():
                n = ipaddress.ip_network(net)
                # subnet_of of the same version only (the type checker cannot tell that from the test before it)
                if n.version == dev.version and dev.subnet_of(n) and (  # type: ignore[arg-type]
                        best is None or n.prefixlen > best[0]):
                    best = (n.prefixlen, aid)
            if best is not None:
                return Resolution(self.addresses[best[1]], "subnet", f"subnet {attrs.subnet}")
        return Resolution(self.static_address(number), "static",
                          f"no network place of the LIS matches {attrs.header_value()}; static address")


def _only(item: dict, allowed: set[str], where: str) -> None:
    for key in item:
        if key not in allowed:
            raise LisError(f"unknown field {key!r} (known: {', '.join(sorted(allowed))})", f"{where}.{key}")


def pidf_lo(address: CivicAddress, entity: str, *, method: str, device_id: str | None = None,
            now: float | None = None) -> bytes:
    """A PIDF-LO document (RFC 4119, civic address per RFC 5139, profile RFC 5491 §3.4: one ``dm:device``)."""
    ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now if now is not None else time.time()))
    civic = "".join(f"<ca:{k}>{escape(getattr(address, k))}</ca:{k}>" for k in CIVIC_FIELDS if getattr(address, k))
    gp_method = {"port": "Wiremap", "switch": "Wiremap", "subnet": "DHCP"}.get(method, "Manual")
    device = f"<dm:deviceID>{escape(device_id)}</dm:deviceID>" if device_id else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10" '
        'xmlns:ca="urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr" '
        f'xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" entity="{escape(entity)}">'
        f'<dm:device id="d1"><gp:geopriv><gp:location-info><ca:civicAddress>{civic}</ca:civicAddress>'
        f'</gp:location-info><gp:usage-rules/><gp:method>{gp_method}</gp:method></gp:geopriv>{device}'
        f'<dm:timestamp>{ts}</dm:timestamp></dm:device></presence>\n'
    ).encode()


def civic_from_pidf(body: bytes | str) -> dict[str, str]:
    """The civic address elements of a PIDF-LO document (for checks on what the PSAP received)."""
    import xml.etree.ElementTree as ET

    text = body.decode() if isinstance(body, bytes) else body
    root = ET.fromstring(text)
    ns = "{urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr}"
    civic = root.find(f".//{ns}civicAddress")
    if civic is None:
        raise ValueError("the PIDF-LO document holds no civicAddress")
    return {child.tag.removeprefix(ns): child.text or "" for child in civic}


def emergency_number(uri_user: str | None) -> str | None:
    """The emergency or test number dialled (``911``, ``+911``, ``933``), or None."""
    raw = dialled_number(uri_user).lstrip("+")
    return raw if raw in EMERGENCY_NUMBERS or raw == TEST_NUMBER else None


def with_location(body: bytes, content_type: str | None, pidf: bytes) -> tuple[bytes, str, str]:
    """(new body, its Content-Type, the Content-ID of the location) for an INVITE: SDP and PIDF-LO in one
    ``multipart/mixed`` body (RFC 6442 §4.1, RFC 5621)."""
    cid = f"loc-{secrets.token_hex(6)}@sipgw.lab"
    parts = []
    if body:
        parts.append(BodyPart([("Content-Type", content_type or "application/sdp")], body))
    parts.append(BodyPart([("Content-Type", "application/pidf+xml"), ("Content-ID", f"<{cid}>")], pidf))
    new_type, new_body = build_multipart(parts)
    return new_body, new_type, cid


class E911Service:
    """Wires the LIS into the gateway: learns network attributes, inserts PIDF-LO, routes to the PSAP."""

    def __init__(self, gw) -> None:
        self.gw = gw
        self.core = gw.core
        self.network: dict[str, NetworkAttributes] = {}  # user name → last attributes from REGISTER
        self.calls: list[dict[str, Any]] = []  # emergency calls seen, newest last
        raw = gw.store.setting(SETTING_KEY)
        self.lis = LocationService.from_json(json.loads(raw)) if raw else LocationService()

    def set_lis(self, doc: Any) -> LocationService:
        lis = LocationService.from_json(doc)  # raises before anything is replaced
        self.gw.store.set_setting(SETTING_KEY, json.dumps(lis.to_json()))
        self.lis = lis
        return lis

    def install(self) -> None:
        self._next_register = self.core.handlers.get("REGISTER")
        self.core.handlers["REGISTER"] = self.on_register
        self._next_invite = self.core.handlers.get("INVITE")
        self.core.handlers["INVITE"] = self.on_invite
        router = self.gw.router
        media = self.gw.media
        for num in (*EMERGENCY_NUMBERS, TEST_NUMBER):
            router.services[number_key(num)] = (lambda n=num: media.pstn_party("+" + n))

    def reset(self) -> None:
        self.calls.clear()

    # --- SIP ----------------------------------------------------------------------------------------------
    def on_register(self, req, tx, source) -> bool:
        value = req.headers.get(LAB_NETWORK_HEADER)
        if value is not None:
            try:
                user = req.to.uri.user or ""
                self.network[user] = parse_network_header(value)
            except (LisError, SipParseError) as exc:
                log.warning("event=e911_network_header_ignored user=%s problem=%r", getattr(req.to.uri, "user", ""),
                            str(exc))
        return bool(self._next_register and self._next_register(req, tx, source))

    def on_invite(self, req, tx, source) -> bool:
        try:
            number = emergency_number(req.request_uri.user)
        except SipParseError:
            number = None
        if number is not None:
            try:
                self._locate(req, number)
            except Exception:  # never lose an emergency call over its location
                log.exception("event=e911_locate_failed")
        return bool(self._next_invite and self._next_invite(req, tx, source))

    def _caller(self, req) -> str:
        from gateway.sip.auth import parse_credentials

        authz = req.headers.get("Proxy-Authorization")
        if authz:
            try:
                return parse_credentials(authz).username
            except Exception:
                pass
        try:
            return req.from_.uri.user or ""
        except SipParseError:
            return ""

    def _locate(self, req, number: str) -> None:
        username = self._caller(req)
        user = self.gw.directory.user(username) if username else None
        ua = req.headers.get("User-Agent") or ""
        dynamic, lldp_only, model = _model_support(ua)
        own = req.headers.get(LAB_NETWORK_HEADER)
        attrs = None
        if own:
            try:
                attrs = parse_network_header(own)
            except LisError as exc:
                log.warning("event=e911_network_header_ignored user=%s problem=%r", username, str(exc))
        attrs = attrs or self.network.get(username)
        entry: dict[str, Any] = {"number": number, "caller": username, "user_number": user.number if user else None,
                                 "user_agent": ua, "call_id": req.call_id, "t": time.time(),
                                 "network": asdict(attrs) if attrs else None}
        if req.headers.get("Geolocation"):
            entry.update({"method": "device", "dynamic": True, "reason": "the device sent its own location",
                          "address": None})
        else:
            res = self.lis.resolve(attrs, user.number if user else None, dynamic=dynamic, lldp_only=lldp_only,
                                   model=model)
            entity = f"pres:{(user.number if user and user.number else username)}@{self.gw.config.domain}"
            pidf = pidf_lo(res.address, entity, method=res.method)
            body, ctype, cid = with_location(req.body, req.headers.get("Content-Type"), pidf)
            req.body = body
            req.headers.set("Content-Type", ctype)
            req.headers.set("Geolocation", f"<cid:{cid}>")
            req.headers.set("Geolocation-Routing", "no")
            entry.update(res.to_json())
        # Only the call of an INVITE that carries credentials (or comes on a trusted flow) is kept once.
        if not any(c["call_id"] == entry["call_id"] for c in self.calls):
            self.calls.append(entry)
            del self.calls[:-1000]
        log.info("event=e911_call number=%s caller=%s method=%s", number, username, entry.get("method"))


def _model_support(user_agent: str) -> tuple[bool, bool, str]:
    """(supports dynamic E911, LLDP only, model name) from the device's SIP User-Agent and the catalogue."""
    from device_profiles.catalogue import default_catalogue
    from device_profiles.user_agent import parse_user_agent

    m = parse_user_agent(user_agent, source="sip") if user_agent else None
    if m is None:
        return False, False, f"an unrecognised device ({user_agent or 'no User-Agent'})"
    cat = default_catalogue()
    profile = cat.find(m.model, m.vendor)
    if profile is None:
        return False, False, f"{m.vendor} {m.model}"
    lldp_only = getattr(profile.vendor_file, "e911_location_discovery", None) == "lldp-only"
    return bool(profile.entry.e911), lldp_only, f"{profile.vendor} {profile.model}"
