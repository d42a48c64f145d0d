"""An embedded gateway with the media node, a tenant, and one sipua worker registered as a device."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from gateway.config import GatewayConfig
from gateway.server import EmbeddedGateway, Endpoints
from gateway.services.model import PstnRange, User

DEVICE_USER = ("dana", "Dana Device", "+14255550111", "pw-dana")
TEAMS_USER = ("terry", "Terry Teams", "+14255550122")
PSTN_PREFIX = "+1206555"


@dataclass
class Lab:
    gw: EmbeddedGateway
    eps: Endpoints
    device: object  # sipua.UAWorker, registered as DEVICE_USER

    @property
    def node(self):
        return self.gw.media

    def gw_uri(self, user: str) -> str:
        host, port = self.eps.udp
        return f"sip:{user}@{host}:{port}"


@pytest.fixture(scope="package")
def lab(tmp_path_factory) -> Iterator[Lab]:
    from sipua import UAWorker, WorkerConfig

    data = tmp_path_factory.mktemp("gw")
    cfg = GatewayConfig(sip="127.0.0.1:0", http="127.0.0.1:0", firmware_policy="warn", media_workers_max=4)
    gw = EmbeddedGateway(data, cfg, media="node")
    username, name, number, password = DEVICE_USER
    gw.directory.put_user(User(username, name, number, teams_client=True), password=password)
    gw.directory.put_user(User(TEAMS_USER[0], TEAMS_USER[1], TEAMS_USER[2], teams_client=True), password="unused")
    gw.directory.set_pstn_ranges([PstnRange(PSTN_PREFIX, None)])
    eps = gw.start_in_thread()
    device = None
    try:
        device = UAWorker.spawn(WorkerConfig(name="device", user_agent="Yealink SIP-T54W 96.86.0.100",
                                             log_path=str(data / "device.log")))
        host, port = eps.udp
        device.add_account("d", f"sip:{username}@{cfg.domain}", registrar=f"sip:{host}:{port}",
                           username=username, password=password)
        device.wait_event("reg_state", account="d", code=200, timeout=10)
        device.auto_answer("immediate")
        yield Lab(gw, eps, device)
    finally:
        if device is not None:
            device.close()
        gw.stop_thread()
