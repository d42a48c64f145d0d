"""SIP ladders drawn from real trace entries (``gateway.trace.TraceRecorder`` with real SIP message bytes)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from gateway.trace import TraceRecorder
from harness.reporting.ladder import LadderError, build_ladder, render_fragment, render_html, render_text
from tests.harness.reporting import sip_samples as s


@pytest.fixture(scope="module")
def ladder():
    return build_ladder(s.recorded_call().entries(), s.LABELS)


def test_participants_and_labels(ladder):
    assert [(p.address, p.label) for p in ladder.participants] == [
        ("127.0.0.1:5071", "yealink-t46s"), ("127.0.0.1:5060", "gateway"), ("127.0.0.1:5080", "Teams client")]
    assert ladder.participants[0].detail == "Yealink SIP-T46S 66.86.0.15"  # the User-Agent it sent
    assert ladder.call_ids == (s.A_CALL_ID, s.B_CALL_ID)
    assert [m.short_label() for m in ladder.messages[:4]] == ["INVITE (SDP)", "100 Trying", "INVITE (SDP)",
                                                              "180 Ringing"]


def test_unlabelled_addresses_use_the_user_agent_and_the_gateway_is_found():
    ladder = build_ladder([e.as_dict() for e in s.recorded_call().entries()])
    labels = [p.label for p in ladder.participants]
    assert labels == ["Yealink", "gateway", "sipgw-lab-teams-client"]


def _columns(header_line):
    return [m.start() for m in re.finditer(r"\|", header_line)]


def test_text_ladder_arrows_go_between_the_right_columns(ladder):
    text = render_text(ladder, title="make_calls on yealink-t46s")
    lines = text.splitlines()
    assert lines[0] == "make_calls on yealink-t46s"
    assert f"c1  Call-ID: {s.A_CALL_ID}" in text and f"c2  Call-ID: {s.B_CALL_ID}" in text
    lifeline = next(line for line in lines if set(line.strip()) == {"|", " "})
    phone, gw, teams = _columns(lifeline)
    rows = [line for line in lines if line.startswith("[")]
    assert len(rows) == 13
    invite = rows[0]
    assert invite.startswith("[ 1]   +0.000 UDP c1")
    assert invite[phone] == "|" and invite[gw] == "|" and invite[gw - 1] == ">" and "INVITE (SDP)" in invite[phone:gw]
    trying = rows[1]
    assert trying[phone + 1] == "<" and "100 Trying" in trying[phone:gw]
    b_invite = rows[2]
    assert b_invite[teams - 1] == ">" and "INVITE (SDP)" in b_invite[gw:teams] and "c2" in b_invite[:22]
    assert rows[12].startswith("[13]   +6.130") and rows[12][gw + 1] == "<"
    # the whole messages follow, numbered as on the arrows
    assert "--- [3] +0.004s" in text and "gateway (127.0.0.1:5060) -> Teams client (127.0.0.1:5080)" in text
    assert "a=rtpmap:101 telephone-event/8000" in text
    assert "\r" not in text


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_html_ladder_has_an_arrow_per_message_linked_to_its_details(ladder):
    html = render_html(ladder, title="make_calls")
    p = _Collect()
    p.feed(html)
    arrows = [a for t, a in p.tags if t == "a" and "msg" in a.get("class", "")]
    details = {a["id"] for t, a in p.tags if t == "details"}
    assert len(arrows) == 13
    assert {a["href"].lstrip("#") for a in arrows} == details
    assert not [a for t, a in p.tags if t in ("link", "script") and ("src" in a or "href" in a)]  # no network
    assert "INVITE sip:+14255550123@127.0.0.1:5060;transport=udp SIP/2.0" in html  # first line, in the details
    assert html.count("<polygon") == 13  # one arrowhead each


def test_html_escapes_message_text():
    rec = TraceRecorder()
    evil = (b"MESSAGE sip:a@127.0.0.1 SIP/2.0\r\nCall-ID: x<script>@h\r\nUser-Agent: <b>ua</b>\r\n"
            b"Content-Length: 20\r\n\r\n<script>alert(1)</script>")
    rec.record(1.0, "in", "UDP", ("127.0.0.1", 5071), ("127.0.0.1", 5060), evil)
    html = str(render_fragment(build_ladder(rec.entries())))
    assert "<script>" not in html and "&lt;script&gt;alert(1)" in html


def test_ipv6_participants():
    rec = TraceRecorder()
    rec.record(1.0, "in", "TLS", ("::1", 5071), ("::1", 5061), b"OPTIONS sip:gw SIP/2.0\r\nCall-ID: o1\r\n\r\n")
    ladder = build_ladder(rec.entries())
    assert [p.address for p in ladder.participants] == ["[::1]:5071", "[::1]:5061"]
    assert "OPTIONS" in render_text(ladder)


def test_no_messages():
    assert "no SIP messages were traced" in render_text(build_ladder([]))
    assert "No SIP messages were traced" in render_fragment(build_ladder([]))


@pytest.mark.parametrize("entry,msg", [
    ({"seq": 1, "time": 1.0, "direction": "in", "source": "127.0.0.1:5060"}, "trace entry 1: missing destination"),
    ({"seq": 1, "time": 1.0, "direction": "in", "source": "127.0.0.1", "destination": "127.0.0.1:5060",
      "message": ""}, "trace entry 1: source '127.0.0.1' is not host:port"),
    ({"seq": 1, "time": "noon", "direction": "in", "source": "127.0.0.1:1", "destination": "127.0.0.1:5060",
      "message": ""}, "time 'noon' is not a number"),
    ({"seq": 1, "time": 1.0, "direction": "sideways", "source": "127.0.0.1:1", "destination": "127.0.0.1:5060",
      "message": ""}, "direction 'sideways'"),
    ("INVITE", "expected an object"),
])
def test_bad_entries_are_named(entry, msg):
    with pytest.raises(LadderError, match=re.escape(msg)):
        build_ladder([entry])
