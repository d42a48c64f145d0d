"""Unsolicited MWI NOTIFY on REGISTER: sent for a new binding or a changed state, not for a plain refresh."""

from __future__ import annotations

from gateway.services.directory import Directory
from gateway.services.model import Flow
from gateway.services.mwi import MwiService
from gateway.services.registrar import Binding, DeviceRegistry, Registrar
from gateway.sip import NameAddr, Request, Response
from gateway.sip.auth import DigestServer
from gateway.store.sqlite import Store

DOMAIN = "sipgw.lab"


class FakeStack:
    def __init__(self):
        self.sent: list[Request] = []

    def now(self) -> float:
        return 100.0

    def send_request(self, req, dest):
        self.sent.append(req)
        return len(self.sent)

    def send_response(self, tx, resp: Response):
        raise AssertionError("no response expected")

    def contact_uri(self, transport):
        return "sip:gw@127.0.0.1:5060"


def tenant() -> tuple[Directory, Registrar]:
    """A directory and registrar on an in-memory store: what the service reads, with nothing in it."""
    store = Store(":memory:")
    directory = Directory(store, DOMAIN)
    return directory, Registrar(directory, DigestServer(DOMAIN, b"k" * 32), DeviceRegistry(store))

def binding(uri: str = "sip:zed@127.0.0.1:5099", call_id: str = "reg-1@x", port: int = 5099) -> Binding:
    return Binding("zed", NameAddr.parse(f"<{uri}>"), uri, 1000.0, call_id, 2, Flow("UDP", "127.0.0.1", port),
                   "Yealink SIP-T54W 96.86.0.100", "zed/T54W", 1.0)


def make(counts: dict[str, tuple[int, int]]) -> tuple[MwiService, FakeStack]:
    stack = FakeStack()
    directory, registrar = tenant()
    svc = MwiService(stack, directory, registrar, counts=lambda u: counts[u], domain=DOMAIN)
    return svc, stack


def bodies(stack: FakeStack) -> list[bytes]:
    return [r.body for r in stack.sent if r.method == "NOTIFY"]


def test_refresh_of_a_told_binding_sends_nothing_and_a_new_binding_is_told():
    counts = {"zed": (0, 0)}
    svc, stack = make(counts)
    svc.on_registration("zed", [binding()])  # first registration: told
    assert len(bodies(stack)) == 1 and b"Messages-Waiting: no" in bodies(stack)[0]
    for _ in range(3):  # refreshes: same contact, Call-ID and flow, unchanged box
        svc.on_registration("zed", [binding()])
    assert len(bodies(stack)) == 1
    second = binding("sip:zed@127.0.0.1:5100", "reg-2@x", 5100)  # another device of the user
    svc.on_registration("zed", [binding(), second])
    assert len(stack.sent) == 2 and str(stack.sent[-1].request_uri) == second.uri


def test_new_flow_and_changed_state_are_told_again_a_new_call_id_alone_is_a_refresh():
    counts = {"zed": (0, 0)}
    svc, stack = make(counts)
    svc.on_registration("zed", [binding()])
    # RFC 3261 §10.2.4: a first new Call-ID is a reboot (told); a UA that changes it on every REGISTER without a
    # refresh in between (load tools do this) shows that its Call-ID marks no boot cycle: a refresh from then on
    svc.on_registration("zed", [binding(call_id="reg-reboot@x")])
    assert len(stack.sent) == 2
    svc.on_registration("zed", [binding(call_id="reg-other@x")])
    assert len(stack.sent) == 2
    del stack.sent[0]
    svc.on_registration("zed", [binding(call_id="reg-other@x", port=6000)])  # reboot or NAT rebinding: new flow
    assert len(stack.sent) == 2
    counts["zed"] = (1, 0)  # the box changed without a NOTIFY reaching this binding (e.g. no listener then)
    svc.on_registration("zed", [binding(call_id="reg-other@x", port=6000)])
    assert len(stack.sent) == 3 and b"Voice-Message: 1/0" in stack.sent[-1].body


def test_unregistered_binding_is_forgotten_and_told_when_it_comes_back():
    counts = {"zed": (2, 1)}
    svc, stack = make(counts)
    svc.on_registration("zed", [binding()])
    svc.on_registration("zed", [])  # unregistered
    svc.on_registration("zed", [binding()])
    assert len(stack.sent) == 2 and all(b"Voice-Message: 2/1" in b for b in bodies(stack))
