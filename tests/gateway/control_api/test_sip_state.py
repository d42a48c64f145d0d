"""Registrations, trace (JSON, pcap, ladder), calls and reset after real SIP over loopback UDP."""

from __future__ import annotations

import shutil
import struct
import subprocess
import time

import pytest

from gateway.sip import Request, Response
from tests.gateway.control_api.conftest import assert_error
from tests.gateway.control_api.sipphone import VVX_UA


@pytest.fixture
def registered(api, phones):
    api.create_user("avery", "Avery Chen", password="pw-avery", number="+14255550101")
    phone = phones("avery", "pw-avery")
    t0 = time.time()
    resp = phone.register()
    assert resp.status == 200
    return phone, t0


def _pcap_packets(data: bytes) -> list[bytes]:
    magic, _, _, _, _, _, linktype = struct.unpack("<IHHiIII", data[:24])
    assert magic == 0xA1B2C3D4 and linktype == 101
    out, i = [], 24
    while i < len(data):
        _, _, incl, _ = struct.unpack("<IIII", data[i:i + 16])
        out.append(data[i + 16:i + 16 + incl])
        i += 16 + incl
    return out


def test_registration_is_listed_with_flow_agent_and_verdict(api, registered):
    phone, _ = registered
    reg = api.registration("avery")
    (contact,) = reg["contacts"]
    assert contact["contact"] == f"sip:avery@127.0.0.1:{phone.addr[1]}"
    assert contact["flow"]["transport"] == "UDP" and contact["flow"]["port"] == phone.addr[1]
    assert 3500 < contact["expires_in"] <= 3600
    assert contact["user_agent"] == VVX_UA
    assert contact["firmware_verdict"] == "supported" and contact["device_key"] == "0004f28e5a79"
    assert [r["username"] for r in api.registrations()] == ["avery"]
    dev = api.device("0004f28e5a79")
    assert dev["registered"] is True and dev["user_agent"] == VVX_UA and dev["model"] == "VVX 450"
    assert api.user("avery")["registered_contacts"] == 1
    assert api.health()["counts"]["registered_users"] >= 1
    phone.register(expires=0)
    assert api.registration("avery")["contacts"] == []
    assert_error(api._http.get("/api/v1/registrations/nobody"), 404, "path.username")


def test_trace_by_call_id_and_window(api, registered):
    phone, t0 = registered
    entries = api.trace(call_id=phone.reg_call_id)
    lines = [(e["direction"], e["first_line"]) for e in entries]
    assert lines == [
        ("in", "REGISTER sip:sipgw.lab SIP/2.0"), ("out", "SIP/2.0 401 Unauthorized"),
        ("in", "REGISTER sip:sipgw.lab SIP/2.0"), ("out", "SIP/2.0 200 OK"),
    ]
    assert entries[0]["source"] == f"127.0.0.1:{phone.addr[1]}"
    assert "Authorization: Digest" in entries[2]["message"]
    assert all(e["call_id"] == phone.reg_call_id for e in entries)
    assert api.trace(call_id="no-such-call") == []
    assert len(api.trace(call_id=phone.reg_call_id, since=t0 - 1, until=time.time() + 1)) == 4
    assert api.trace(call_id=phone.reg_call_id, until=t0 - 60) == []
    assert len(api.trace(call_id=phone.reg_call_id, after_seq=entries[1]["seq"])) == 2
    assert [e["first_line"] for e in api.trace(call_id=phone.reg_call_id, limit=1)] == ["SIP/2.0 200 OK"]


def test_trace_pcap_and_ladder(api, registered, tmp_path):
    phone, _ = registered
    data = api.trace_pcap(call_id=phone.reg_call_id)
    packets = _pcap_packets(data)
    assert len(packets) == 4
    assert b"REGISTER sip:sipgw.lab SIP/2.0" in packets[0] and b"SIP/2.0 401" in packets[1]
    src_port = struct.unpack("!H", packets[0][20:22])[0]
    assert src_port == phone.addr[1]
    if shutil.which("tshark"):
        path = tmp_path / "reg.pcap"
        path.write_bytes(data)
        out = subprocess.run(["tshark", "-r", str(path), "-Y", "sip", "-T", "fields", "-e", "sip.Method",
                              "-e", "sip.Status-Code"], capture_output=True, text=True, timeout=60, check=True)
        assert out.stdout.split() == ["REGISTER", "401", "REGISTER", "200"]
    ladder = api.trace_ladder(call_id=phone.reg_call_id)
    rows = ladder.splitlines()
    assert f"127.0.0.1:{phone.addr[1]}" in rows[0]
    arrows = [r for r in rows[2:] if r]
    assert len(arrows) == 4 and all(r.endswith("  UDP") for r in arrows)
    assert " REGISTER " in arrows[0] and "->|" in arrows[0]  # the phone's column is first: left to right
    assert " 401 Unauthorized " in arrows[1] and "|<-" in arrows[1]
    assert " 200 OK " in arrows[3] and "|<-" in arrows[3]


def test_bad_trace_queries(api, raw):
    assert_error(raw.get("/trace", params={"since": "yesterday"}), 400, "query.since")
    assert_error(raw.get("/trace", params={"since": "10", "until": "5"}), 400, "query.until")
    assert_error(raw.get("/trace.pcap", params={"limit": "0"}), 400, "query.limit")
    assert_error(raw.get("/trace.txt", params={"call": "c999999"}), 404, "query.call")
    assert_error(raw.get("/trace", params={"callid": "x"}), 400, "query.callid")


def test_hangup_of_a_ringing_call_and_reset(api, phones, gateway):
    api.create_user("avery", "Avery Chen", password="pw-a", number="+14255550101")
    api.create_user("blake", "Blake Rivera", password="pw-b", number="+14255550102")
    # answering the gateway's unsolicited NOTIFY: its retransmission must not land in the trace after the reset
    caller, callee = phones("avery", "pw-a", answers_notify=True), phones("blake", "pw-b", answers_notify=True)
    assert caller.register().status == 200 and callee.register().status == 200
    call_id, invite = caller.invite("+14255550102")
    inbound = callee.receive(5.0, lambda m: isinstance(m, Request) and m.method == "INVITE")
    callee.answer(inbound, 180, to_tag="blake1")
    caller.receive(5.0, lambda m: isinstance(m, Response) and m.status == 180)
    (call,) = api.calls()
    assert call["state"] == "early" and call["a_call_id"] == call_id
    assert call["b_call_ids"] == [inbound.call_id]
    assert api.call(call["id"]) == call
    by_call = api.trace(call=call["id"])
    assert {e["call_id"] for e in by_call} == {call_id, inbound.call_id}

    api.hangup(call["id"])
    cancel = callee.receive(5.0, lambda m: isinstance(m, Request) and m.method == "CANCEL")
    callee.answer(cancel, 200)
    callee.answer(inbound, 487, to_tag="blake1")
    final = caller.response_to(call_id, invite.cseq.seq)
    assert final.status == 487
    caller.ack_failure(invite, final)
    assert api.calls() == []
    ended = api.call(call["id"])
    assert ended["state"] == "ended" and ended["ended"] >= ended["created"]
    assert_error(api._http.post(f"/api/v1/calls/{call['id']}/hangup"), 409, "path.id", "call_ended")
    assert_error(api._http.post("/api/v1/calls/c999999/hangup"), 404, "path.id")
    assert [c["id"] for c in api.calls(ended=True)] == [call["id"]]

    result = api.reset()
    assert result["trace_entries_cleared"] > 0
    # The module's gateway also served earlier tests' phones, which do not answer its unsolicited NOTIFY: a
    # retransmission of one (for up to 32 s, Timer F) is new traffic after the reset, not a leftover of it.
    mine = {f"{p.addr[0]}:{p.addr[1]}" for p in (caller, callee)}
    assert [e for e in api.trace() if mine & {e["source"], e["destination"]}] == []
    assert api.calls(ended=True) == []
    assert len(api.registration("avery")["contacts"]) == 1  # registrations survive a reset
    assert [u["username"] for u in api.users()] == ["avery", "blake"]


def test_deleting_a_registered_user_drops_its_bindings(api, registered, gateway):
    assert len(api.registration("avery")["contacts"]) == 1
    api.delete_user("avery")
    assert "avery" not in gateway.registrar.all_bindings(gateway.core.now())
    assert [r["username"] for r in api.registrations()] == []


def test_a_test_phone_that_answers_notify_answers_the_gateways_unsolicited_one(api, phones):
    """The gateway's message-summary NOTIFY on REGISTER is answered 200 by the test phone while it waits for
    something else, so no retransmission of it lands in a later test's trace (RFC 3261 §17.1.2.2)."""
    api.create_user("avery", "Avery Chen", password="pw-a", number="+14255550101")
    phone = phones("avery", "pw-a", answers_notify=True)
    assert phone.register().status == 200
    with pytest.raises(TimeoutError):
        phone.receive(1.0, lambda m: False)  # nothing wanted: every request that arrives is answered
    mine = f"{phone.addr[0]}:{phone.addr[1]}"  # the module's gateway also serves other tests' phones
    entries = [e for e in api.trace() if mine in (e["source"], e["destination"])]
    notifies = [e for e in entries if e["first_line"].startswith("NOTIFY ")]
    answers = [e for e in entries if e["direction"] == "in" and e["first_line"].startswith("SIP/2.0 200")
               and "NOTIFY" in e["message"].split("CSeq:", 1)[1].split("\r\n", 1)[0]]
    assert len(notifies) == 1 and len(answers) == 1, [e["first_line"] for e in entries]
