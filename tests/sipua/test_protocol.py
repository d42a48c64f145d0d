"""Bad input to sipua is refused before it reaches a worker, with the field named; a worker refuses what
it cannot do with a CommandError and keeps running."""

from __future__ import annotations

import pytest

from sipua import CommandError, InvalidArgument, ProtocolError, WorkerConfig
from sipua import protocol as p


@pytest.mark.parametrize(("build", "where"), [
    (lambda: WorkerConfig(name="has space", user_agent="x", log_path="/tmp/x.log"), "WorkerConfig.name"),
    (lambda: WorkerConfig(name="ok", user_agent="x\r\nVia: evil", log_path="/tmp/x.log"), "WorkerConfig.user_agent"),
    (lambda: WorkerConfig(name="ok", user_agent="x", log_path="/tmp/x.log", rtp_port=4001), "WorkerConfig.rtp_port"),
    (lambda: p.TransportSpec(kind="sctp"), "TransportSpec.kind"),
    (lambda: p.TransportSpec(kind="udp", host="localhost"), "TransportSpec.host"),
    (lambda: p.MakeCall(account="a", target="http://example.com"), "MakeCall.target"),
    (lambda: p.MakeCall(account="a", target="sip:b@h", headers={"X-A": "1\r\nBYE"}), "MakeCall.headers[0]"),
    (lambda: p.Answer(call=1, code=486), "Answer.code"),
    (lambda: p.Answer(call=1, code=302), "Answer.headers"),
    (lambda: p.SendDtmf(call=1, digits="12x"), "SendDtmf.digits"),
    (lambda: p.Record(call=1, path="/tmp/out.mp3"), "Record.path"),
    (lambda: p.PlayTone(freq_hz=9000), "PlayTone.freq_hz"),
])
def test_bad_arguments_name_the_field(build, where):
    with pytest.raises(InvalidArgument) as info:
        build()
    assert str(info.value).startswith(where), str(info.value)


def test_wire_round_trip_and_refusals():
    cmd = p.MakeCall(account="a", target="sip:bob@127.0.0.1:5062", headers=(("X-Test", "1"),))
    frame = p.decode_frame(p.encode_request(7, cmd))
    assert p.decode_command(frame["cmd"], frame["args"]) == cmd
    with pytest.raises(ProtocolError, match="unknown command"):
        p.decode_command("launch_rockets", {})
    with pytest.raises(InvalidArgument, match=r"MakeCall: unknown field\(s\) \['color'\]"):
        p.decode_command("make_call", {"account": "a", "target": "sip:b@h", "color": "red"})
    with pytest.raises(ProtocolError, match="protocol version"):
        p.decode_frame(b'{"v": 99, "kind": "ready"}')


def test_worker_refuses_what_it_cannot_do_and_stays_up(spawn):
    w = spawn("refuser")
    with pytest.raises(CommandError) as info:
        w.hangup(12345)
    assert info.value.code == "no_such_call" and "12345" in str(info.value)
    with pytest.raises(CommandError) as info:
        w.make_call("nope", "sip:x@127.0.0.1:9")
    assert info.value.code == "no_such_account"
    assert w.ping()["pid"] == w.pid
