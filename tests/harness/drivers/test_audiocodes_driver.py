"""The audiocodes-mp driver: recorded Mediant ``/api/v1/status``; without an analog line simulator every
call operation is NotApplicable and says what to configure."""

from __future__ import annotations

import pytest

from harness.drivers.vendors import Endpoint, VendorApiError, audiocodes
from harness.protocols import NotApplicable
from tests.harness.drivers.recorded import Replay, reply


def session(routes):
    rp = Replay(routes)
    return audiocodes.connect(Endpoint("https://192.0.2.40", "Admin", "pw", True, 2.0, {"transport": rp.transport})), rp


def test_recorded_status_identity():
    s, rp = session({("GET", "/api/v1/status"): (200, reply("audiocodes", "status.json"))})
    ident = audiocodes.identity(s)
    assert (ident.model, ident.firmware, ident.mac, ident.serial) == ("MP114", "6.60A.367.001", "00908f4a5b6c",
                                                                      "5017834")
    assert rp.requests[0].headers["Authorization"].startswith("Basic ")


def test_no_line_simulator_means_not_applicable():
    s, _ = session({})
    for fn, args in ((audiocodes.dial, ("+14255550111",)), (audiocodes.answer, ("port1-1",)),
                     (audiocodes.hangup, ("port1-1",))):
        with pytest.raises(NotApplicable, match="line simulator"):
            fn(s, *args)
    with pytest.raises(NotApplicable, match="hook flash"):
        audiocodes.hold(s, "port1-1")


def test_reset_refused_is_a_clear_error():
    s, _ = session({("POST", "/api/v1/actions/reset"): (409, {"description": "Cannot reset while calls are up"})})
    with pytest.raises(VendorApiError, match="HTTP 409: Cannot reset while calls are up"):
        audiocodes.reboot(s)


# --------------------------------------------------------------------------------- hold by the far end, call waiting
INV_SENDONLY = ("INVITE sip:acme@192.0.2.40 SIP/2.0\r\nTo: <sip:+14255550241@lab>;tag=dev1\r\nCSeq: {n} INVITE\r\n"
                "Content-Type: application/sdp\r\n\r\nv=0\r\nc=IN IP4 192.0.2.9\r\nm=audio 4000 RTP/AVP 0\r\na={d}\r\n")


class FakeTrace:
    """The gateway's trace API: entries of one leg, filtered by after_seq as the control API does."""

    def __init__(self) -> None:
        self.entries: list[dict] = []
        self.asked: list[int] = []

    def add(self, direction: str, first_line: str, message: str) -> None:
        self.entries.append({"seq": len(self.entries) + 1, "direction": direction, "first_line": first_line,
                             "message": message, "call_id": "leg-1", "time": float(len(self.entries))})

    def reinvite(self, n: int, direction: str) -> None:
        self.add("out", "INVITE sip:acme@192.0.2.40 SIP/2.0", INV_SENDONLY.format(n=n, d=direction))

    def answer(self, n: int, code: int) -> None:
        self.add("in", f"SIP/2.0 {code} X", f"SIP/2.0 {code} X\r\nCSeq: {n} INVITE\r\n\r\n")

    def trace(self, *, call_id=None, after_seq=None, **_):
        self.asked.append(after_seq or 0)
        return [e for e in self.entries if e["call_id"] == call_id and e["seq"] > (after_seq or 0)]


def test_remote_hold_is_the_last_accepted_reinvite_sent_to_the_device():
    from harness.drivers.physical.sip_side import RemoteHoldObserver

    tr = FakeTrace()
    obs = RemoteHoldObserver(tr)
    assert obs.held("leg-1") is None  # no re-INVITE yet: the device's own view stands
    tr.reinvite(2, "sendonly")
    assert obs.held("leg-1") is None  # offered, not accepted yet
    tr.answer(2, 200)
    assert obs.held("leg-1") is True
    tr.reinvite(3, "sendrecv")
    tr.answer(3, 491)  # glare: refused, nothing changes (RFC 3261 §14.1)
    assert obs.held("leg-1") is True
    tr.reinvite(4, "sendrecv")
    tr.answer(4, 200)
    assert obs.held("leg-1") is False
    tr.reinvite(5, "inactive")
    tr.answer(5, 200)
    assert obs.held("leg-1") is True
    assert tr.asked[-1] > 0  # later reads start after the last entry seen


def _mp_driver(control):
    from harness.drivers.physical.audiocodes_mp import AudioCodesMpDriver
    from tests.harness.drivers.recorded import context

    return AudioCodesMpDriver(context("AudioCodes", "MP114", "6.60A.367.001", control=control))


def test_the_driver_reads_hold_by_the_far_end_from_the_gateway():
    from harness.drivers.vendors import VendorCall
    from harness.protocols import CallState, MediaDirection

    tr = FakeTrace()
    drv = _mp_driver(tr)
    port = VendorCall("port1-1", CallState.CONFIRMED, "out", "+12065550100", 1, sip_call_id="leg-1")
    drv._sync([port])
    (call,) = drv.book.calls()
    assert call.media_direction is MediaDirection.SENDRECV and not call.remote_hold
    tr.reinvite(2, "sendonly")
    tr.answer(2, 200)
    drv._sync([port])  # the port status still says "connected": the hold is the gateway's re-INVITE
    held = drv.book.call(call.id)
    assert held.remote_hold and held.media_direction is MediaDirection.RECVONLY and not held.local_hold
    tr.reinvite(3, "sendrecv")
    tr.answer(3, 200)
    drv._sync([port])
    assert drv.book.call(call.id).media_direction is MediaDirection.SENDRECV


def test_a_second_call_to_a_busy_port_is_call_waiting_not_applicable():
    from harness.drivers.base import Driver
    from harness.drivers.vendors import VendorCall
    from harness.protocols import CallState

    drv = _mp_driver(None)
    Driver.activate(drv)  # the lifecycle only: no simulator, no poller
    drv._sync([VendorCall("port1-1", CallState.INCOMING, "in", "+12065550100", 1)])
    assert drv.wait_for_incoming(timeout=0.1).state is CallState.INCOMING  # ringing: the call waited for
    drv._sync([])
    drv._sync([VendorCall("port1-1", CallState.CONFIRMED, "out", "+12065550100", 1)])
    with pytest.raises(NotApplicable, match=r"call waiting, taken with a hook flash.*offer no hook flash"):
        drv.wait_for_incoming(timeout=0.1)
    drv._sync([])  # the call ended: an incoming call is waited for as usual
    from harness.protocols import OperationTimeout

    with pytest.raises(OperationTimeout):
        drv.wait_for_incoming(timeout=0.1)


# --------------------------------------------------------------------------------- the simulator's analogue side
@pytest.fixture
def mp_sim():
    from harness.simulators import FakeBackend
    from harness.simulators.audiocodes_mp import AudioCodesMpSimulator
    from tests.harness.simulators.conftest import fake_identity

    backend = FakeBackend(fake_identity("AudioCodes", "MP114-FXS", "6.60A.367.001",
                                        "Audiocodes-Sip-Gateway-MP-114 FXS/v.6.60A.367.001", lines=3))
    sim = AudioCodesMpSimulator(backend, restart_s=0.2)
    sim.start()
    yield sim
    sim.stop()


def test_keys_pressed_during_a_call_are_dtmf_not_a_new_call(mp_sim):
    import httpx

    with httpx.Client(base_url=mp_sim.url, timeout=5) as http:
        call = mp_sim.backend.inject_incoming("+14255550150", line=2)
        assert http.post("/_sim/ports/2/offhook").json() == {"answered": call.id}
        r = http.post("/_sim/ports/2/dial", json={"digits": "123#"})
        assert r.status_code == 200 and r.json() == {"dtmf": call.id}
        assert mp_sim.backend.dtmf_sent == [(call.id, "123#")]
        assert [c.id for c in mp_sim.backend.calls()] == [call.id]  # no second call placed
        ringing = mp_sim.backend.inject_incoming("+14255550151", line=3)
        http.post("/_sim/ports/3/offhook")  # answers it
        mp_sim.backend.far_hangup(ringing.id)
        http.post("/_sim/ports/1/offhook")
        assert http.post("/_sim/ports/1/dial", json={"digits": "100"}).status_code == 200  # dial tone: a call
        r = http.post("/_sim/ports/1/dial", json={"digits": "5"})  # still dialling: no tone to key into
        assert r.status_code == 409 and "dialling needs a dial tone" in r.json()["error"]


def test_an_answered_calls_leg_is_not_the_callers_call_to_a_dtmf_relay():
    """An anchored call has two gateway records with the device as callee: the caller's call, answered by the
    relay, and the relay's call on to the device; the device's leg is the latter's."""
    from types import SimpleNamespace

    from harness.drivers.vendors import VendorCall
    from harness.protocols import CallState

    records = [
        {"state": "confirmed", "caller": "sip:+14255550211@lab", "callee": "sip:+14255550111@lab",
         "a_call_id": "caller-leg", "b_call_ids": ["to-relay"], "answered_by": "DTMF relay r1-abc on the media node"},
        {"state": "confirmed", "caller": "sip:+14255550211@lab", "callee": "sip:+14255550111@lab",
         "a_call_id": "relay-leg", "b_call_ids": ["device-leg"], "answered_by": "device 00908f4a5b6c"},
    ]
    drv = _mp_driver(SimpleNamespace(calls=lambda: records))
    vc = VendorCall("port1-1", CallState.CONFIRMED, "in", "+14255550211", 1)
    assert drv._gateway_leg(vc) == "device-leg"
