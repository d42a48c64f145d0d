"""The IVR of the media node: its menu, and every digit from a registered device through the gateway.

What is judged is observed: the IVR's record of digits (with the method each arrived in) and the echo tone
the device hears after its last digit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from gateway.media_node.ivr import DIGITS, IVR_NUMBER, Ivr, IvrMenu, echo_tone_hz
from tests.gateway.media_node.test_calls_through_gateway import hangup_device, last_id, party_call, wait_for
from tests.sipua.sipua_helpers import assert_tone

pytestmark = pytest.mark.timeout(90)


def test_echo_tones_are_distinct_and_in_band():
    tones = [echo_tone_hz(d) for d in DIGITS]
    assert len(set(tones)) == 12
    assert min(tones) > 2300 and max(tones) < 3400
    with pytest.raises(ValueError, match="not a DTMF digit"):
        echo_tone_hz("x")


@pytest.mark.parametrize(("routes", "message"), [
    ({"x": "echo"}, "'x' is not a DTMF digit"),
    ({"1": "transfer"}, "action 'transfer' for digit 1"),
    ({"2": "tone:50"}, "outside 100-3400 Hz"),
])
def test_bad_menu_says_what_and_where(routes, message):
    with pytest.raises(ValueError, match=message):
        IvrMenu(routes)


def test_bad_number_refused():
    with pytest.raises(ValueError, match=r"not an E\.164 number"):
        Ivr("4255559100")


@dataclass
class FakeWorker:
    done: list = field(default_factory=list)

    def play_tone(self, hz, call, level_dbfs):
        self.done.append(("tone", hz, call))

    def hangup(self, handle):
        self.done.append(("hangup", handle))


@dataclass
class FakeCall:
    id: str
    handle: int
    worker: FakeWorker
    tone_hz: float = 0.0


def test_menu_actions_and_digits_kept():
    ivr = Ivr(menu=IvrMenu({"0": "hangup", "9": "tone:600"}))
    call = FakeCall("m1", 3, FakeWorker())
    ivr.on_answer(call)
    ivr.on_digit(call, "5", "rfc4733", 100.0)
    ivr.on_digit(call, "9", "info", 101.0)
    ivr.on_digit(call, "0", "info", 102.0)
    assert [(d.digit, d.method, d.t, d.action) for d in ivr.digits("m1")] == [
        ("5", "rfc4733", 100.0, "echo"), ("9", "info", 101.0, "tone:600"), ("0", "info", 102.0, "hangup")]
    assert call.worker.done == [("tone", echo_tone_hz("5"), 3), ("tone", 600.0, 3), ("hangup", 3)]
    ivr.forget({"m1"})
    assert ivr.digits("m1") == []


def test_device_reaches_the_ivr_with_every_digit_in_both_methods(lab, tmp_path):
    node, device = lab.node, lab.device
    since = last_id(node)
    mark = device.mark()
    call = device.make_call("d", lab.gw_uri(IVR_NUMBER))
    device.wait_event("call_state", since=mark, call=call, state="CONFIRMED", timeout=10)
    device.wait_event("media_state", since=mark, call=call, status="active", timeout=5)
    device.play_tone(810.0, call=call)  # RFC 4733 events are clocked with the audio stream
    ivr_call = party_call(node, IVR_NUMBER, "confirmed", since)
    assert ivr_call.kind == "ivr" and ivr_call.identity == IVR_NUMBER
    assert ivr_call.tone_hz == node.ivr.menu.prompt_hz

    device.send_dtmf(call, DIGITS, method="rfc4733")
    wait_for(lambda: len(node.ivr.digits(ivr_call.id)) >= 12, timeout=10, what="12 RFC 4733 digits at the IVR")
    device.send_dtmf(call, "1#", method="info")
    got = wait_for(lambda: len(d := node.ivr.digits(ivr_call.id)) >= 14 and d, what="2 INFO digits at the IVR")
    assert [(d.digit, d.method) for d in got] == [(c, "rfc4733") for c in DIGITS] + [("1", "info"), ("#", "info")]
    assert all(d.action == "echo" for d in got)
    assert [d.t for d in got] == sorted(d.t for d in got)
    # The media API's view of the same call keeps the digits too.
    assert [d["digit"] for d in node.call(ivr_call.id).dtmf] == [*DIGITS, "1", "#"]

    heard = str(tmp_path / "device-heard.wav")
    m = device.mark()
    device.record(call, heard, duration_ms=1000)
    assert device.wait_event("record_complete", since=m, call=call, timeout=5).data["complete"]
    assert_tone(heard, echo_tone_hz("#"))
    hangup_device(lab, call)


def test_router_sends_the_service_number_to_the_service(tmp_path):
    from gateway.services.directory import Directory
    from gateway.services.model import Flow
    from gateway.services.registrar import DeviceRegistry, Registrar
    from gateway.services.routing import Router
    from gateway.sip.auth import DigestServer
    from gateway.store.sqlite import Store

    store = Store(tmp_path / "gw.db")
    try:
        directory = Directory(store, "sipgw.lab")
        router = Router(directory, Registrar(directory, DigestServer("sipgw.lab", b"k" * 32), DeviceRegistry(store)),
                        media=None, domain="sipgw.lab")
        where: list[Flow | None] = [Flow("UDP", "127.0.0.1", 5999)]
        router.services["14255559100"] = lambda: where[0]
        d = router.route("14255559100", 0.0)  # dialled without '+'
        assert [(t.kind, t.uri) for t in d.targets] == [("service", "sip:+14255559100@127.0.0.1:5999")]
        where[0] = None
        busy = router.route("+14255559100", 0.0)
        assert (busy.reject_status, busy.reject_code) == (480, "SGW-ROUTE-UNREACHABLE")
    finally:
        store.close()
