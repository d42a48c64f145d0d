"""Unsolicited MWI NOTIFY after a device reboot to the same address and port (RFC 3261 §10.2.4, RFC 5626 §4.2),
and none on plain refreshes or for a UA that sends every REGISTER with a new Call-ID."""

from __future__ import annotations

from gateway.services.directory import Directory
from gateway.services.model import Flow
from gateway.services.mwi import MwiService
from gateway.services.registrar import Binding, DeviceRegistry, Registrar
from gateway.sip import NameAddr, Request
from gateway.sip.auth import DigestServer
from gateway.store.sqlite import Store

URI = "sip:zed@127.0.0.1:5099"
DOMAIN = "sipgw.lab"


class FakeStack:
    def __init__(self):
        self.sent: list[Request] = []

    def now(self) -> float:
        return 100.0

    def send_request(self, req, dest):
        self.sent.append(req)
        return len(self.sent)

    def contact_uri(self, transport):
        return "sip:gw@127.0.0.1:5060"


def tenant() -> tuple[Directory, Registrar]:
    """A directory and registrar on an in-memory store: what the service reads, with nothing in it."""
    store = Store(":memory:")
    directory = Directory(store, DOMAIN)
    return directory, Registrar(directory, DigestServer(DOMAIN, b"k" * 32), DeviceRegistry(store))

def binding(call_id: str, cseq: int, *, instance: str | None = None, reg_id: str | None = None) -> Binding:
    params = "".join(f";{k}={v}" for k, v in (("+sip.instance", instance), ("reg-id", reg_id)) if v)
    return Binding("zed", NameAddr.parse(f"<{URI}>{params}"), URI, 1000.0, call_id, cseq,
                   Flow("UDP", "127.0.0.1", 5099), "Yealink SIP-T54W 96.86.0.100", "zed/T54W", 1.0, instance)


def service(counts=(1, 0)) -> tuple[MwiService, FakeStack]:
    stack = FakeStack()
    directory, registrar = tenant()
    return MwiService(stack, directory, registrar, counts=lambda u: counts, domain=DOMAIN), stack


def register(svc: MwiService, b: Binding) -> None:
    svc.on_registration("zed", [b])


def test_new_call_id_after_refreshes_is_a_reboot_and_is_told():
    svc, stack = service()
    register(svc, binding("boot1@x", 1))
    for cseq in (2, 3, 4):  # plain refreshes of the boot cycle
        register(svc, binding("boot1@x", cseq))
    assert len(stack.sent) == 1
    register(svc, binding("boot2@x", 1))  # rebooted: same contact and flow, a new Call-ID
    assert len(stack.sent) == 2 and b"Voice-Message: 1/0" in stack.sent[-1].body
    assert str(stack.sent[-1].request_uri) == URI
    register(svc, binding("boot2@x", 2))  # its refresh
    assert len(stack.sent) == 2
    register(svc, binding("boot3@x", 1))  # and the next reboot
    assert len(stack.sent) == 3


def test_reboot_before_the_first_refresh_is_told():
    svc, stack = service()
    register(svc, binding("boot1@x", 1))
    register(svc, binding("boot2@x", 1))
    assert len(stack.sent) == 2


def test_cseq_that_went_back_under_the_same_call_id_is_a_reboot():
    svc, stack = service()
    register(svc, binding("fixed@x", 10))
    register(svc, binding("fixed@x", 11))
    assert len(stack.sent) == 1
    register(svc, binding("fixed@x", 1))
    assert len(stack.sent) == 2


def test_new_instance_or_reg_id_is_a_reboot():
    svc, stack = service()
    inst = '"<urn:uuid:00000000-0000-1000-8000-00046d000001>"'
    register(svc, binding("c@x", 1, instance=inst, reg_id="1"))
    register(svc, binding("c@x", 2, instance=inst, reg_id="1"))
    assert len(stack.sent) == 1
    register(svc, binding("c@x", 3, instance=inst, reg_id="2"))
    assert len(stack.sent) == 2
    register(svc, binding("c@x", 4, instance='"<urn:uuid:00000000-0000-1000-8000-00046d000002>"', reg_id="2"))
    assert len(stack.sent) == 3


def test_a_new_call_id_on_every_register_is_told_at_most_twice():
    """The load tools' pattern (SIPp: one Call-ID per scenario call): no NOTIFY per REGISTER."""
    svc, stack = service()
    for n in range(50):
        register(svc, binding(f"load-{n}@x", 2))
    assert len(stack.sent) == 2
    register(svc, binding("load-49@x", 3))  # it starts refreshing under one Call-ID: reboots count again
    register(svc, binding("load-50@x", 1))
    assert len(stack.sent) == 3


def test_other_bindings_of_the_user_are_not_taken_for_reboots():
    svc, stack = service()
    other = Binding("zed", NameAddr.parse("<sip:zed@127.0.0.1:6000>"), "sip:zed@127.0.0.1:6000", 1000.0, "o@x", 1,
                    Flow("UDP", "127.0.0.1", 6000), None, "zed/other", 1.0)
    svc.on_registration("zed", [binding("a@x", 1), other])
    assert len(stack.sent) == 2
    for cseq in range(2, 6):  # the first device refreshes; the other one is passed along unchanged
        svc.on_registration("zed", [binding("a@x", cseq), other])
    assert len(stack.sent) == 2


class _RefusingStack(FakeStack):
    def send_request(self, req, dest):
        raise ValueError("no route to the contact")


def test_the_control_api_record_names_only_notifies_that_left():
    """A NOTIFY held back until the REGISTER's 200 is recorded when it is sent, not when it is decided."""
    later: list = []
    for stack, recorded in ((FakeStack(), 1), (_RefusingStack(), 0)):
        directory, registrar = tenant()
        svc = MwiService(stack, directory, registrar, counts=lambda u: (2, 1), domain=DOMAIN,
                         call_later=lambda delay, fn: later.append(fn))
        register(svc, binding("boot1@x", 1))
        assert svc.sent == []  # decided, held until the current event is handled
        later.pop()()
        assert len(svc.sent) == recorded
        if recorded:
            assert svc.sent[0][:2] == ("zed", URI) and "Voice-Message: 2/1" in svc.sent[0][2]
