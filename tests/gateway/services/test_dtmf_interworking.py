"""DTMF interworking decisions: what each leg says (SDP, INFO, catalogue) and whether a call is anchored.

Pure logic on parsed messages and bindings; the relay is a fake that records what it was asked to reserve.
"""

from __future__ import annotations

import itertools

import pytest

from device_profiles.catalogue import default_catalogue
from device_profiles.dtmf import default_dtmf_defaults, dtmf_default_for_user_agent, load_dtmf_defaults
from device_profiles.yamlio import DataFileError
from gateway.services.dtmf_interworking import (
    RELAY_HEADER,
    DtmfInterworking,
    Method,
    accepts_info,
    callee_dtmf,
    caller_dtmf,
    decide,
    parse_stand_in,
    relay_token_of,
    stand_in_refer_to,
    telephone_event_types,
)
from gateway.services.model import Flow, User
from gateway.services.registrar import Binding
from gateway.services.routing import RouteDecision, Target
from gateway.sip import NameAddr, parse_message
from harness.emulated.profiles import behaviour_for
from sipua.sdp import without_telephone_event

YEALINK = "Yealink SIP-T54W 96.86.0.100"
MEDIAPACK = "Audiocodes-Sip-Gateway-MP-504/v.7.26A.356.075"
UNKNOWN_UA = "Acme Softphone 1.0"

SDP_4733 = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n")
SDP_PLAIN = without_telephone_event(SDP_4733)


def invite(sdp: str | None = SDP_4733, *, allow: str | None = "INVITE, ACK, BYE, CANCEL, INFO",
           recv_info: str | None = None, user_agent: str | None = YEALINK, extra: str = "") -> object:
    body = (sdp or "").encode()
    lines = ["INVITE sip:+14255550202@sipgw.lab SIP/2.0",
             "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKx1", "Max-Forwards: 70",
             "From: <sip:alice@sipgw.lab>;tag=a1", "To: <sip:+14255550202@sipgw.lab>", "Call-ID: call-1@test",
             "CSeq: 1 INVITE", "Contact: <sip:alice@127.0.0.1:5070>"]
    if allow is not None:
        lines.append(f"Allow: {allow}")
    if recv_info is not None:
        lines.append(f"Recv-Info: {recv_info}")
    if user_agent is not None:
        lines.append(f"User-Agent: {user_agent}")
    if extra:
        lines.append(extra)
    if sdp is not None:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return parse_message(("\r\n".join(lines) + "\r\n\r\n").encode() + body)


def device_target(user_agent: str | None, label: str = "device bob/1", *, recv_info: tuple[str, ...] | None = None,
                  allow: tuple[str, ...] | None = None) -> Target:
    flow = Flow("UDP", "127.0.0.1", 5080)
    b = Binding("bob", NameAddr.parse("<sip:bob@127.0.0.1:5080>"), "sip:bob@127.0.0.1:5080", 1e9, "r", 1, flow,
                user_agent, "dev", 0.0, recv_info=recv_info, allow=allow)
    return Target("device", b.uri, flow, label, b)


def routed(*targets: Target) -> RouteDecision:
    return RouteDecision(targets=tuple(targets), callee=User("bob", "Bob Baker", "+14255550202"))


# --- reading what the legs say ------------------------------------------------------------------------------------

def test_telephone_event_types_reads_the_first_audio_stream_only():
    assert telephone_event_types(SDP_4733) == [("101", 8000)]
    assert telephone_event_types(SDP_PLAIN) == []
    wide = SDP_4733.replace("0 8 101", "0 8 101 102") + "a=rtpmap:102 telephone-event/16000\r\n"
    assert telephone_event_types(wide.encode()) == [("101", 8000), ("102", 16000)]
    # A telephone-event rtpmap for a format the m= line does not list does not count.
    assert telephone_event_types(SDP_4733.replace(" 101\r\n", "\r\n", 1)) == []
    video_first = "v=0\r\nm=video 5000 RTP/AVP 96\r\na=rtpmap:96 telephone-event/8000\r\n" + SDP_PLAIN[
        SDP_PLAIN.index("m=audio"):]
    assert telephone_event_types(video_first) == []
    second_audio = SDP_PLAIN + "m=audio 4002 RTP/AVP 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    assert telephone_event_types(second_audio) == []
    assert telephone_event_types("garbage\r\nm=audio\r\na=rtpmap:x\r\n") == []


def test_stripping_telephone_event_keeps_everything_else():
    assert "telephone-event" not in SDP_PLAIN and "a=fmtp:101" not in SDP_PLAIN
    assert "m=audio 4000 RTP/AVP 0 8\r\n" in SDP_PLAIN and "a=rtpmap:8 PCMA/8000" in SDP_PLAIN
    assert without_telephone_event(SDP_PLAIN) == SDP_PLAIN


@pytest.mark.parametrize(("allow", "recv_info", "ok", "why"), [
    ("INVITE, ACK, INFO", None, True, "Allow: INFO"),
    ("INVITE, ACK, info", None, True, "Allow: INFO"),
    ("INVITE, ACK", None, False, "Allow without INFO"),
    (None, None, False, "no Allow or Recv-Info"),
    ("INVITE, ACK", "foo, dtmf", True, "Recv-Info: foo, dtmf"),
    ("INVITE, ACK", "", False, "an empty Recv-Info (no Info Package)"),
    ("INVITE, INFO", "", True, "Allow: INFO"),
])
def test_accepts_info_from_recv_info_or_allow(allow, recv_info, ok, why):
    assert accepts_info(invite(allow=allow, recv_info=recv_info)) == (ok, why)


@pytest.mark.parametrize(("sdp", "allow", "user_agent", "method", "basis"), [
    (SDP_4733, "INVITE, INFO", YEALINK, Method.RFC4733, "SDP offer lists telephone-event, payload type 101"),
    (SDP_4733, "INVITE", MEDIAPACK, Method.RFC4733, "SDP offer lists telephone-event"),  # the SDP wins
    (SDP_PLAIN, "INVITE, INFO", YEALINK, Method.INFO, "SDP offer without telephone-event; Allow: INFO"),
    (SDP_PLAIN, "INVITE", YEALINK, None, None),  # neither method: in-band only, nothing to convert
    (None, "INVITE, INFO", MEDIAPACK, Method.INFO, "catalogue default for AudioCodes ata"),  # late offer
    (None, "INVITE, INFO", YEALINK, Method.RFC4733, "catalogue default for Yealink"),
    (None, "INVITE, INFO", UNKNOWN_UA, None, None),
    (None, "INVITE, INFO", None, None, None),
])
def test_caller_method(sdp, allow, user_agent, method, basis):
    got = caller_dtmf(invite(sdp, allow=allow, user_agent=user_agent))
    if method is None:
        assert got is None
    else:
        assert got is not None and got.method is method and basis in got.basis, got


# --- every combination of caller and callee ----------------------------------------------------------------------

CALLERS = {"rfc4733": invite(SDP_4733), "info": invite(SDP_PLAIN), "unknown": invite(None, user_agent=UNKNOWN_UA)}
CALLEES = {"rfc4733": YEALINK, "info": MEDIAPACK, "unknown": UNKNOWN_UA}


@pytest.mark.parametrize(("caller", "callee"), list(itertools.product(CALLERS, CALLEES)))
def test_anchored_exactly_when_both_are_known_and_differ(caller, callee):
    d = decide(CALLERS[caller], routed(device_target(CALLEES[callee])))
    differ = "unknown" not in (caller, callee) and caller != callee
    assert d.anchor is differ
    note = d.note()
    if differ:
        c, e = ("RFC 4733", "INFO") if caller == "rfc4733" else ("INFO", "RFC 4733")
        assert note.startswith(f"DTMF interworking: caller {c}, callee {e} → anchored on media node"), note
        assert d.callee_method is Method(callee)
    elif caller == "unknown":
        assert "caller's method unknown" in note and note.endswith("not anchored")
    elif callee == "unknown":
        assert "callee method unknown → not anchored" in note
    else:
        assert "no conversion needed, not anchored" in note


ALLOW_NO_INFO = ("INVITE", "ACK", "BYE", "CANCEL", "REFER", "NOTIFY")
ALLOW_INFO = (*ALLOW_NO_INFO, "INFO")


@pytest.mark.parametrize(("user_agent", "recv_info", "allow", "method", "source"), [
    # what the REGISTER declared decides over the catalogue
    (MEDIAPACK, None, ALLOW_NO_INFO, Method.RFC4733, "REGISTER's Allow without INFO"),
    (MEDIAPACK, (), ALLOW_NO_INFO, Method.RFC4733, "REGISTER's an empty Recv-Info and Allow without INFO"),
    (UNKNOWN_UA, None, ALLOW_NO_INFO, Method.RFC4733, "REGISTER's Allow without INFO"),
    (YEALINK, ("dtmf",), ALLOW_INFO, Method.INFO, "REGISTER's Recv-Info: dtmf"),
    (UNKNOWN_UA, ("x-dtmf-relay", "nothing"), None, Method.INFO, "REGISTER's Recv-Info: x-dtmf-relay"),
    # taking INFO without naming a DTMF package does not decide: the catalogue does, and the note says both
    (MEDIAPACK, None, ALLOW_INFO, Method.INFO, "catalogue default for AudioCodes"),
    (YEALINK, ("infodial",), ALLOW_INFO, Method.RFC4733, "catalogue default for Yealink"),
    (UNKNOWN_UA, None, ALLOW_INFO, None, None),
    # nothing declared: the catalogue, as before
    (MEDIAPACK, None, None, Method.INFO, "catalogue default for AudioCodes"),
])
def test_the_callees_register_decides_over_the_catalogue(user_agent, recv_info, allow, method, source):
    leg = callee_dtmf(device_target(user_agent, recv_info=recv_info, allow=allow))
    if method is None:
        assert leg is None
        return
    assert leg is not None and leg.method is method, leg
    assert leg.basis.startswith(source), leg.basis
    if source.startswith("catalogue") and (recv_info or allow):
        assert "does not decide" in leg.basis, leg.basis


def test_the_trace_note_names_the_register_when_it_decided():
    # A MediaPack (catalogue: INFO) that said it takes no INFO is RFC 4733: an RFC 4733 caller is not anchored.
    d = decide(invite(SDP_4733), routed(device_target(MEDIAPACK, allow=ALLOW_NO_INFO)))
    assert not d.anchor
    assert d.note() == "DTMF interworking: caller RFC 4733, callee RFC 4733 → no conversion needed, not anchored"
    # A Yealink (catalogue: RFC 4733) that declared a DTMF Info Package is anchored, and the note says why.
    d = decide(invite(SDP_4733), routed(device_target(YEALINK, recv_info=("dtmf",), allow=ALLOW_INFO)))
    assert d.anchor and d.callee_method is Method.INFO
    assert "device bob/1: REGISTER's Recv-Info: dtmf (RFC 6086 §5.2.3)" in d.note(), d.note()


def test_the_registrar_keeps_recv_info_and_allow_on_the_binding(tmp_path):
    from gateway.services.directory import Directory
    from gateway.services.registrar import DeviceRegistry, Registrar, RegistrarConfig
    from gateway.sip import Request
    from gateway.sip.auth import DigestClient, DigestServer
    from gateway.store.sqlite import Store

    store = Store(tmp_path / "gw.db")
    try:
        directory = Directory(store, "sipgw.lab")
        directory.put_user(User("bob", "Bob Baker", "+14255550202"), password="pw-b")
        auth = DigestServer("sipgw.lab", b"0123456789abcdef0123456789abcdef", algorithms=("MD5",))
        reg = Registrar(directory, auth, DeviceRegistry(store), RegistrarConfig(firmware_policy="warn"))
        client = DigestClient("bob", "pw-b")
        flow = Flow("UDP", "127.0.0.1", 5080)
        seq = itertools.count(1)

        def register(*extra: tuple[str, str], authz: str | None = None):
            headers = [("Via", f"SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-r{next(seq)}"),
                       ("From", "<sip:bob@sipgw.lab>;tag=f1"), ("To", "<sip:bob@sipgw.lab>"), ("Call-ID", "reg-b"),
                       ("CSeq", f"{next(seq)} REGISTER"), ("Contact", "<sip:bob@127.0.0.1:5080>"),
                       ("Expires", "3600"), ("User-Agent", MEDIAPACK), *extra]
            if authz:
                headers.append(("Authorization", authz))
            return reg.handle(Request.build("REGISTER", "sip:sipgw.lab", headers), flow, 100.0, 1.7e9)

        def bind(*extra: tuple[str, str]):
            resp = register(*extra)
            assert resp.status == 401, resp.status
            authz = str(client.authorize(resp.headers.get_all("WWW-Authenticate"), method="REGISTER",
                                         uri="sip:sipgw.lab"))
            assert register(*extra, authz=authz).status == 200
            (b,) = reg.bindings("bob", 100.0)
            return b

        b = bind(("Allow", "INVITE, ACK, bye"), ("Allow", "CANCEL"), ("Recv-Info", "DTMF, foo"))
        assert b.allow == ("INVITE", "ACK", "BYE", "CANCEL") and b.recv_info == ("dtmf", "foo")
        # a refresh that declares nothing forgets what the last one declared (the binding is what it said now)
        b = bind()
        assert b.allow is None and b.recv_info is None
        b = bind(("Recv-Info", ""))
        assert b.recv_info == () and b.allow is None
        assert callee_dtmf(Target("device", b.uri, flow, "bob", b)).basis.startswith("catalogue default")
    finally:
        store.close()


def test_media_node_parties_are_never_a_reason_to_anchor():
    teams = Target("teams", "sip:+14255550202@127.0.0.1:6000", Flow("UDP", "127.0.0.1", 6000), "Teams client of bob")
    d = decide(invite(SDP_PLAIN), routed(teams))
    assert d.callees == () and not d.anchor


def test_a_fork_is_anchored_when_any_device_differs():
    d = decide(invite(SDP_4733), routed(device_target(YEALINK, "desk"), device_target(MEDIAPACK, "ata")))
    assert d.anchor and d.callee_method is Method.INFO and "ata:" in d.note()


# --- the hook -----------------------------------------------------------------------------------------------------

RELAY_FLOW = Flow("UDP", "127.0.0.1", 7000)


class FakeRelay:
    def __init__(self, flow: Flow | None = RELAY_FLOW) -> None:
        self.flow = flow
        self.specs = []

    def reserve(self, spec):
        self.specs.append(spec)
        return self.flow


TRUSTED = ("127.0.0.1", 7000)


def service(relay=None, notes=None):
    return DtmfInterworking(relay, trusted=lambda src: src == TRUSTED,
                            note=(lambda text, ids: notes.append((text, list(ids)))) if notes is not None else None)


def test_anchoring_sends_the_call_to_the_relay_and_the_relays_invite_gets_the_original_targets():
    relay, notes = FakeRelay(), []
    svc = service(relay, notes)
    original = routed(device_target(MEDIAPACK))
    out = svc.on_route(invite(SDP_4733), ("127.0.0.1", 5070), original)
    assert [t.kind for t in out.targets] == ["relay"] and out.callee is None
    spec = relay.specs[0]
    assert (spec.dialled, spec.caller_method, spec.callee_method) == ("+14255550202", Method.RFC4733, Method.INFO)
    assert out.targets[0].uri == f"sip:relay-{spec.token}@127.0.0.1:7000"
    assert notes[0][1] == ["call-1@test"] and "→ anchored on media node" in notes[0][0]
    # The relay's own INVITE (from the media node, naming the anchor) is routed to what the caller's call was.
    relay_invite = invite(SDP_PLAIN, extra=f"{RELAY_HEADER}: {spec.token}")
    assert svc.on_route(relay_invite, TRUSTED, routed()) is original
    # The same header from anywhere else is not believed.
    assert svc.on_route(relay_invite, ("127.0.0.1", 5070), routed()).targets == ()
    svc.forget(spec.token)
    assert spec.token not in svc.anchors


@pytest.mark.parametrize("case", ["agree", "rejected", "no_callee", "replaces", "from_media_node", "no_device"])
def test_calls_that_are_left_alone(case):
    relay = FakeRelay()
    svc = service(relay)
    decision = routed(device_target(MEDIAPACK))
    req, source = invite(SDP_4733), ("127.0.0.1", 5070)
    if case == "agree":
        decision = routed(device_target(YEALINK))
    elif case == "rejected":
        decision = RouteDecision(reject_status=480, reject_code="SGW-ROUTE-UNREACHABLE", reject_text="x")
    elif case == "no_callee":
        decision = RouteDecision(targets=decision.targets)  # a queue's or a service's own routing
    elif case == "replaces":
        req = invite(SDP_4733, extra="Replaces: abc@host;to-tag=1;from-tag=2")
    elif case == "from_media_node":
        source = TRUSTED
    elif case == "no_device":
        decision = routed(Target("pstn", "sip:+12065550100@127.0.0.1:6000", Flow("UDP", "127.0.0.1", 6000), "PSTN"))
    assert svc.on_route(req, source, decision) is decision
    assert relay.specs == []


def test_a_transferees_invite_with_replaces_for_a_differing_device_is_anchored_and_the_relay_carries_replaces():
    """The transfer module strips Replaces from the transferee's INVITE and puts the rewritten one on the target's
    branch (callee None: the call replaced may have been the target's own). Differing methods → a relay; the
    relay's own INVITE gets that branch, Replaces and all."""
    import dataclasses

    relay, notes = FakeRelay(), []
    svc = service(relay, notes)
    target = dataclasses.replace(device_target(YEALINK, "carol (replaces)"),
                                 headers=(("Replaces", "d1@gw;to-tag=c1;from-tag=g1"),))
    decision = RouteDecision(targets=(target,))
    out = svc.on_route(invite(SDP_PLAIN), ("127.0.0.1", 5070), decision)
    assert [t.kind for t in out.targets] == ["relay"] and out.targets[0].headers == ()
    spec = relay.specs[0]
    assert (spec.caller_method, spec.callee_method) == (Method.INFO, Method.RFC4733)
    relay_invite = invite(SDP_4733, extra=f"{RELAY_HEADER}: {spec.token}")
    again = svc.on_route(relay_invite, TRUSTED, routed())
    assert again is decision and again.targets[0].headers == (("Replaces", "d1@gw;to-tag=c1;from-tag=g1"),)
    # Agreeing parties: the transferee's INVITE goes straight to the target, which gets the Replaces.
    same = RouteDecision(targets=(dataclasses.replace(target, binding=device_target(MEDIAPACK).binding),))
    assert svc.on_route(invite(SDP_PLAIN), ("127.0.0.1", 5070), same) is same


def test_no_relay_slot_or_no_media_node_keeps_the_route_and_says_why():
    for relay, why in ((FakeRelay(flow=None), "no relay slot free on the media node"), (None, "no media node")):
        notes = []
        svc = service(relay, notes)
        decision = routed(device_target(MEDIAPACK))
        assert svc.on_route(invite(SDP_4733), ("127.0.0.1", 5070), decision) is decision
        assert f"→ not anchored ({why})" in notes[0][0]
        assert svc.anchors == {}


def test_a_failing_decision_never_stops_the_call():
    class Broken(FakeRelay):
        def reserve(self, spec):
            raise RuntimeError("boom")
    decision = routed(device_target(MEDIAPACK))
    assert service(Broken()).on_route(invite(SDP_4733), ("127.0.0.1", 5070), decision) is decision


# --- the catalogue's defaults ---------------------------------------------------------------------------------------

def test_every_catalogue_model_has_a_default_that_the_emulated_device_follows():
    defaults = default_dtmf_defaults()
    for profile in default_catalogue():
        d = defaults.lookup(profile.vendor, profile.kind)
        assert d is not None, f"{profile.vendor} has no DTMF default in device_profiles/dtmf.yaml"
        assert d.method == behaviour_for(profile.vendor, profile.kind).dtmf_method, (profile.vendor, profile.kind)
        assert len(d.source) > 10


def test_user_agents_map_to_their_vendors_default():
    assert dtmf_default_for_user_agent(MEDIAPACK).method == "info"
    assert dtmf_default_for_user_agent(YEALINK).method == "rfc4733"
    assert dtmf_default_for_user_agent(UNKNOWN_UA) is None
    assert dtmf_default_for_user_agent(None) is None


@pytest.mark.parametrize(("text", "message"), [
    ("vendors:\n  Acme:\n    method: info\n    source: a vendor that is not there\n", "vendor 'Acme' is not in"),
    ("vendors:\n  Poly:\n    method: inband\n    source: Poly UC Software guide\n", "method"),
    ("vendors:\n  Poly:\n    method: info\n    source: Poly UC Software guide\n    kinds:\n      toaster:\n"
     "        method: info\n        source: no such kind of device\n", "'toaster' is not a device kind"),
    ("vendors:\n  Poly:\n    method: info\n", "source"),
])
def test_bad_dtmf_data_is_located(tmp_path, text, message):
    path = tmp_path / "dtmf.yaml"
    path.write_text(text)
    with pytest.raises(DataFileError) as err:
        load_dtmf_defaults(path)
    assert message in str(err.value) and f"{path}:" in str(err.value)


# --- transfers through a relay: the stand-in Refer-To ---------------------------------------------------------

@pytest.mark.parametrize("refer_to", [
    "<sip:+14255550203@127.0.0.1:5060>",
    "sip:+14255550203@127.0.0.1:5060;user=phone",
    "<sip:+12065550100@127.0.0.1:5060?Require=replaces&Replaces=abc%3Bto-tag%3D1%3Bfrom-tag%3D2>",
])
def test_a_stand_in_refer_to_names_the_relays_worker_and_keeps_the_transferors(refer_to):
    stand_in = stand_in_refer_to("r7-0a1b", "127.0.0.1:40000", refer_to)
    assert stand_in.startswith("<sip:relayxfer-r7-0a1b@127.0.0.1:40000;sgw-target=")
    assert "?" not in stand_in and "&" not in stand_in, "pjsua must call the worker, with no header of the target"
    token, original = parse_stand_in(stand_in)
    assert token == "r7-0a1b"
    assert original == (refer_to if refer_to.startswith("<") else f"<{refer_to}>")


def test_only_a_stand_in_refer_to_is_read_as_one():
    assert parse_stand_in("<sip:+14255550203@127.0.0.1:5060>") is None
    assert parse_stand_in("<sip:relayxfer-r1@127.0.0.1:4000>") is None  # no transferor's Refer-To in it


def test_a_relays_legs_are_told_by_their_route_or_their_invite():
    class Leg:
        def __init__(self, target=None, invite=None):
            self.target, self.invite = target, invite

    flow = Flow("UDP", "127.0.0.1", 40000)
    assert relay_token_of(Leg(Target("relay", "sip:relay-r3-99@127.0.0.1:40000", flow, "DTMF relay"))) == "r3-99"
    assert relay_token_of(Leg(invite=invite(extra=f"{RELAY_HEADER}: r4-aa"))) == "r4-aa"
    assert relay_token_of(Leg(invite=invite())) is None
    assert relay_token_of(Leg(device_target(YEALINK), invite=invite(extra=f"{RELAY_HEADER}: r4-aa"))) is None
