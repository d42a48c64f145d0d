"""Fixtures of the interop tests: a running embedded gateway on loopback, fresh tenant users, SIPp runs."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from gateway.config import GatewayConfig
from gateway.server import EmbeddedGateway, Endpoints
from gateway.services.model import PstnRange, User
from tests.interop.interop_helpers import Ports, SippRunner

_numbers = itertools.count(1)


@dataclass
class TenantUser:
    username: str
    password: str
    number: str
    mac: int  # distinct device id for User-Agents


def make_gateway(tmp_path_factory, *, unsolicited_mwi: bool = False, **config) -> tuple[EmbeddedGateway, Endpoints]:
    # SIPp answers only the first WWW-Authenticate and knows MD5 alone: offer MD5 first (RFC 8760 §2.4 lets
    # the server order its challenges; SHA-256 is still offered).
    config.setdefault("digest_algorithms", ["MD5", "SHA-256"])
    cfg = GatewayConfig(sip="127.0.0.1:0", http="127.0.0.1:0", **config)
    gw = EmbeddedGateway(tmp_path_factory.mktemp("gw"), cfg, control_api=False)
    gw.directory.set_pstn_ranges([PstnRange("+1206555", None)])
    eps = gw.start_in_thread()
    mwi = getattr(gw, "mwi", None)
    if not unsolicited_mwi and mwi is not None and mwi.on_registration in gw.registrar.listeners:
        # The MWI service NOTIFYs every newly registered contact (its own suite tests that). A SIPp UAS
        # started on a port that just registered would take that NOTIFY as its first "call" and abort,
        # so the SIP-core interop tests run without it.
        gw.registrar.listeners.remove(mwi.on_registration)
    return gw, eps


@pytest.fixture(scope="module")
def gateway(tmp_path_factory) -> Iterator[tuple[EmbeddedGateway, Endpoints]]:
    if not shutil.which("sipp") and not os.path.exists("/usr/bin/sipp"):
        pytest.skip("SIPp is not installed (Debian package sip-tester)")
    gw, eps = make_gateway(tmp_path_factory)
    yield gw, eps
    gw.stop_thread()


@pytest.fixture
def gw(gateway) -> EmbeddedGateway:
    return gateway[0]


@pytest.fixture
def eps(gateway) -> Endpoints:
    return gateway[1]


@pytest.fixture
def new_user(gateway) -> Callable[..., TenantUser]:
    """A fresh tenant user with a phone number (unique per call, so tests never share registrations)."""
    gw = gateway[0]

    def make(**kw) -> TenantUser:
        n = next(_numbers) + 1000 * (os.getpid() % 1000)
        username = f"u{os.getpid()}x{n}"
        number = f"+1425{n % 10**7:07d}"
        password = f"pw-{n}"
        gw.directory.put_user(User(username, f"User {n}", number, **kw), password=password)
        return TenantUser(username, password, number, n & 0xFFFF)

    return make


@pytest.fixture(scope="module")
def ports() -> Iterator[Ports]:
    p = Ports()
    yield p
    p.release()


@pytest.fixture
def sipp(gateway, tmp_path) -> Iterator[SippRunner]:
    runner = SippRunner(tmp_path, gateway[1].udp)
    yield runner
    runner.stop_all()
