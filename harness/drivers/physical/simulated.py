"""A device whose inventory says ``connection: {protocol: simulator}``: the vendor's API simulator
(:mod:`harness.simulators`) in front of a pjsua2 device registered with the lab's gateway.

The simulated device starts as it leaves the factory (Poly REST off with the factory password, Yealink
accepting no Action URI caller and asking "Allow Remote Control?", Cisco with no ``Control_Server_URL``,
Algo API off), so the driver's bootstrap step (:mod:`harness.bootstrap`) runs exactly as on hardware.
What a provisioning server or a person at the phone would do is :class:`SimulatorDeviceSide`, which acts on
the simulator object directly; an FXS port's analog line simulator is :class:`SimulatedLineSide`.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx

from device_profiles.ua_format import format_user_agent
from harness.drivers.vendors import Endpoint

_SIMULATORS = {"Poly": "poly", "Yealink": "yealink", "Cisco": "cisco", "Algo": "algo", "AudioCodes": "audiocodes"}


class SimulatorDeviceSide:
    """Stands for the provisioning server and the person at the device, on a simulator."""

    kind = "simulator"

    def __init__(self, sim: Any) -> None:
        self.sim = sim
        self.actions: list[str] = []

    def apply_config(self, params: dict[str, str], why: str) -> str:
        self.sim.provision(dict(params))
        self.actions.append(f"provisioned {', '.join(sorted(params))}: {why}")
        return "simulator provisioning"

    def confirm_on_device(self, prompt: str) -> str:
        confirm = getattr(self.sim, "confirm_remote_control", None)
        if confirm is None:
            raise ValueError(f"the {type(self.sim).__name__} shows no prompt to confirm ({prompt!r})")
        confirm()
        self.actions.append(f"confirmed {prompt!r} on the device")
        return "simulator"


class SimulatedLineSide:
    """The analog line simulator on an FXS port of a simulated ATA (the simulator's ``/_sim/`` paths)."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=5.0)

    def _post(self, path: str, body: Any = None) -> None:
        r = self.http.post(path, json=body)
        if r.status_code >= 400:
            raise RuntimeError(f"line simulator {path}: HTTP {r.status_code}: {r.text[:160]}")

    def offhook(self, port: int) -> None:
        self._post(f"/_sim/ports/{port}/offhook")

    def onhook(self, port: int) -> None:
        self._post(f"/_sim/ports/{port}/onhook")

    def dial(self, port: int, digits: str) -> None:
        self._post(f"/_sim/ports/{port}/dial", {"digits": digits})

    def close(self) -> None:
        self.http.close()


@dataclass
class SimulatedDevice:
    vendor: str
    sim: Any
    backend: Any
    username: str | None
    password: str
    device_side: SimulatorDeviceSide
    extras: list[Any] = field(default_factory=list)
    stopped: bool = False

    @property
    def url(self) -> str:
        return self.sim.url

    def endpoint(self, options: dict[str, Any]) -> Endpoint:
        opts = dict(options)
        if self.vendor == "AudioCodes":
            side = SimulatedLineSide(self.sim.url)
            self.extras.append(side)
            opts.setdefault("line_side", side)
        return Endpoint(self.sim.url, self.username, self.password, True, 5.0, opts)

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        for extra in self.extras:
            with contextlib.suppress(Exception):
                extra.close()
        with contextlib.suppress(Exception):
            self.sim.stop()
        with contextlib.suppress(Exception):
            self.backend.close()


def _mac_colons(mac: str) -> str:
    m = re.sub(r"[^0-9a-fA-F]", "", mac).lower()
    return ":".join(m[i:i + 2] for i in range(0, 12, 2))


def start_simulated(driver: Any) -> SimulatedDevice:
    """Spawn the pjsua2 device (registered with the lab's gateway) and the vendor simulator in front of it."""
    from harness.simulators.sipua_backend import SipLine, SipuaBackend

    ctx = driver.ctx
    kind = _SIMULATORS.get(ctx.vendor)
    if kind is None:
        raise ValueError(f"{ctx.device_id}: there is no {ctx.vendor} API simulator; simulated vendors: "
                         f"{', '.join(sorted(_SIMULATORS))}")
    gw = ctx.gateway
    if gw is None:
        raise ValueError(f"{ctx.device_id}: a simulated device needs the lab's gateway "
                         "(gateway: embedded or HOST:PORT)")
    mac = ctx.mac or "000000000000"
    ua = format_user_agent(ctx.profile, ctx.firmware, mac)
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    lines = [SipLine(acc.username, acc.password, acc.number, acc.name) for acc in ctx.lines]
    name = re.sub(r"[^A-Za-z0-9_.\-]", "_", ctx.device_id)[:64]
    # The device carries DTMF as the catalogue says its vendor and kind do (device_profiles/dtmf.yaml), as an
    # emulated device does: a MediaPack relays the analogue line's digits as SIP INFO.
    from device_profiles.dtmf import default_dtmf_defaults

    dtmf = default_dtmf_defaults().lookup(ctx.profile.vendor, ctx.profile.kind)
    backend = SipuaBackend.spawn(name=name, vendor=ctx.vendor, model=ctx.model, firmware=ctx.firmware or "",
                                 mac=_mac_colons(mac), user_agent=ua, lines=lines, gateway=(gw.host, gw.udp_port),
                                 domain=gw.domain, log_dir=ctx.work_dir,
                                 dtmf_method=dtmf.method if dtmf is not None else "rfc4733")
    password = secrets.token_urlsafe(9)
    username: str | None = None
    try:
        if kind == "poly":
            from harness.simulators.poly_rest import FACTORY_USER, PolyRestSimulator

            sim: Any = PolyRestSimulator(backend, factory_state=True)
            username = FACTORY_USER
        elif kind == "yealink":
            from harness.simulators.yealink_action_uri import YealinkActionUriSimulator

            sim = YealinkActionUriSimulator(backend, allowed_ips=(), confirm_prompt=True, admin_password=password)
            username = "admin"
        elif kind == "cisco":
            from harness.simulators.cisco_mpp import CiscoMppSimulator

            sim = CiscoMppSimulator(backend, control_server_url="", admin_password=password)
            username = "admin"
        elif kind == "algo":
            from harness.simulators.algo_rest import AlgoRestSimulator

            sim = AlgoRestSimulator(backend, api_enabled=False)
        else:
            from harness.simulators.audiocodes_mp import AudioCodesMpSimulator

            sim = AudioCodesMpSimulator(backend, username="Admin", password=password)
            username = "Admin"
        sim.start()
    except BaseException:
        backend.close()
        raise
    return SimulatedDevice(ctx.vendor, sim, backend, username, password, SimulatorDeviceSide(sim))
