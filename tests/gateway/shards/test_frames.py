"""Frames between the gateway's process and its registrar workers (gateway.shards.frames)."""

from __future__ import annotations

import marshal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.services.model import Device, Flow, PairState
from gateway.services.registrar import Binding
from gateway.shards import frames
from gateway.sip import NameAddr


@given(st.lists(st.tuples(st.sampled_from(["127.0.0.1", "::1", "192.0.2.200"]), st.integers(0, 65535),
                          st.binary(max_size=2000)), min_size=1, max_size=8))
def test_a_datagram_frame_gives_back_what_went_in(datagrams):
    frame = frames.datagram_frame([frames.datagram_entry(h, p, d) for h, p, d in datagrams])
    assert frames.read_datagrams(frame) == datagrams


@pytest.mark.parametrize("frame, problem", [
    (b"D\x00", "not a datagram frame"),
    (b"M[]", "not a datagram frame"),
    (b"D\x13\xc4\x09\x00\x00\x00\x05127.0", "datagram 1 of a 13-byte frame claims 14 bytes, 5 are left"),
    (b"D\x13\xc4\x02\x00\x00\x00\x01\xff\xfeX", "host of datagram 1 is not ASCII"),
    (b"D\x13\xc4\x01\x00\x00\x00\x01aX\x13", "ends inside the header of its datagram 2"),
])
def test_a_bad_datagram_frame_says_what_is_wrong(frame, problem):
    with pytest.raises(frames.FrameError, match=problem):
        frames.read_datagrams(frame)


@pytest.mark.parametrize("frame, problem", [
    (b"D...", "not a message frame"),
    (b"", "not a message frame"),
    (b"M\xff\x00", "cannot be read"),
    (b"M" + marshal.dumps({"k": "bind"}), "not a list"),
    (b"M" + marshal.dumps([{"u": "alice"}]), "string 'k'"),
    (b"M" + marshal.dumps([{"k": "bind"}])[:-3], "cannot be read"),
])
def test_a_bad_message_frame_says_what_is_wrong(frame, problem):
    with pytest.raises(frames.FrameError, match=problem):
        frames.read_messages(frame)


def binding(**kw) -> Binding:
    values = dict(username="alice", contact=NameAddr.parse('"Alice" <sip:alice@192.0.2.1:5062;transport=udp>;q=0.5'),
                  uri="sip:alice@192.0.2.1:5062;transport=udp", expires_at=1234.5, call_id="c@d", cseq=7,
                  flow=Flow("UDP", "192.0.2.1", 5062), user_agent="Yealink SIP-T54W 96.86.0.100",
                  device_key="805ec0aabbcc", registered_at=1.7e9, instance="urn:uuid:1", q=0.5,
                  recv_info=("dtmf",), allow=("INVITE", "BYE"))
    values.update(kw)
    return Binding(**values)


def test_a_binding_travels_whole():
    for b in (binding(), binding(instance=None, user_agent=None, recv_info=None, allow=None, q=1.0),
              binding(flow=Flow("UDP", "::1", 5060), recv_info=())):
        back = frames.binding_from_wire(frames.read_messages(frames.messages_frame([{"k": "bind", "b": [
            frames.binding_to_wire(b)]}]))[0]["b"][0])
        for name in ("username", "uri", "expires_at", "call_id", "cseq", "flow", "user_agent", "device_key",
                     "registered_at", "instance", "q", "recv_info", "allow"):
            assert getattr(back, name) == getattr(b, name), name
        assert back.contact.uri == b.contact.uri and str(back.contact) == str(b.contact)


def test_a_bad_binding_is_named():
    item = frames.binding_to_wire(binding())
    item[1] = "<not a uri"
    with pytest.raises(frames.FrameError, match=r"binding .* cannot be read"):
        frames.binding_from_wire(item)
    with pytest.raises(frames.FrameError, match="cannot be read"):
        frames.binding_from_wire(item[:5])


def test_a_device_record_travels_whole_and_a_bad_one_is_named():
    device = Device(key="0004f28e5a79", vendor="Poly", model="VVX 450", firmware="5.9.5.0614",
                    user_agent="PolycomVVX-VVX_450-UA/5.9.5.0614_0004f28e5a79", verdict="supported",
                    pair_state=PairState.OFFBOARDED, username="alice", mac="0004f28e5a79", last_connected=1.0,
                    created=0.5, id=3)
    assert frames.device_from_wire(frames.device_to_wire(device)) == device
    with pytest.raises(frames.FrameError, match="unknown fields or no key"):
        frames.device_from_wire({"key": "x", "colour": "red"})
    with pytest.raises(frames.FrameError, match="'x' cannot be read"):
        frames.device_from_wire({"key": "x", "pair_state": "lost"})
