"""Which process a UDP REGISTER goes to, read from its bytes (gateway.shards.dispatch)."""

from __future__ import annotations

import pytest

from gateway.shards.dispatch import RegisterDispatch, shard_of

USERS = {"alice": "alice", "bob": "bob", "+14255550100": "alice", "14255550100": "alice"}
SIGN_IN = {"dev-0004f2000001"}


def dispatch(shards: int = 4) -> RegisterDispatch:
    return RegisterDispatch(shards, USERS.get, lambda u: u not in USERS or u in SIGN_IN)


def register(to: str = "<sip:alice@sipgw.lab>", *, extra: str = "", to_name: str = "To", body: str = "") -> bytes:
    return (f"REGISTER sip:sipgw.lab SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1;rport\r\n"
            f"From: <sip:alice@sipgw.lab>;tag=1\r\n"
            f"{to_name}: {to}\r\n"
            f"Call-ID: a@b\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@127.0.0.1:5070>\r\n"
            f"{extra}Content-Length: {len(body)}\r\n\r\n{body}").encode()


def test_a_user_goes_to_the_shard_of_its_name_whatever_form_the_to_takes():
    d = dispatch()
    want = shard_of("alice", 4)
    assert d.shard(register()) == want
    assert d.shard(register("sip:alice@sipgw.lab")) == want
    assert d.shard(register('"Alice" <sip:+14255550100@sipgw.lab;user=phone>;tag=x')) == want
    assert d.shard(register("<sips:alice@sipgw.lab>", to_name="t")) == want  # compact form (RFC 3261 §7.3.3)
    assert d.shard(register(to_name="TO")) == want  # header names are case-insensitive
    assert {dispatch(2).shard(register(f"<sip:{u}@sipgw.lab>")) for u in ("alice", "bob")} <= {0, 1}


def test_credentials_of_a_known_user_leave_it_with_its_shard():
    authz = ('Authorization: Digest username="alice", realm="sipgw.lab", nonce="n", uri="sip:sipgw.lab", '
             'response="r"\r\n')
    assert dispatch().shard(register(extra=authz)) == shard_of("alice", 4)


@pytest.mark.parametrize("data", [
    b"INVITE sip:alice@sipgw.lab SIP/2.0\r\nTo: <sip:alice@sipgw.lab>\r\n\r\n",  # not a REGISTER
    b"SIP/2.0 200 OK\r\nTo: <sip:alice@sipgw.lab>\r\n\r\n",
    register("<sip:carol@sipgw.lab>"),  # not a user of the directory
    register("<sip:al%69ce@sipgw.lab>"),  # escaped: the gateway's parser decides
    register("<sip:ALICE@sipgw.lab>"),  # user parts are case-sensitive (RFC 3261 §19.1.4): not alice
    register("<tel:+14255550100>"),  # no SIP URI
    register(extra='Authorization: Digest username="dev-0004f2000001", realm="sipgw.lab"\r\n'),  # sign-in account
    register(extra='Authorization: Digest username="mallory", realm="sipgw.lab"\r\n'),  # unknown digest user
    register(extra="Authorization: Digest realm=\"sipgw.lab\",\r\n username=\"alice\"\r\n"),  # folded: not read
    register(extra="X-Sipgw-Lab-Network: ip=10.0.0.5; bssid=00:11:22:33:44:55\r\n"),  # E911 reads it
    register(extra="x-sipgw-lab-network: subnet=10.0.0.0/24\r\n"),
    b"REGISTER sip:sipgw.lab SIP/2.0\r\n\r\n",  # no To at all
    b"\x00\x01garbage",
])
def test_what_the_gateways_process_keeps(data):
    assert dispatch().shard(data) == 0


def test_a_to_in_the_body_is_not_read():
    assert dispatch().shard(register("<sip:carol@sipgw.lab>", body="To: <sip:alice@sipgw.lab>\r\n")) == 0


def test_one_process_keeps_everything_and_bad_counts_are_refused():
    assert dispatch(1).shard(register()) == 0
    with pytest.raises(ValueError, match="at least 1"):
        RegisterDispatch(0, USERS.get, lambda u: False)


def test_shards_spread_users_and_do_not_move():
    names = [f"user{i}" for i in range(400)]
    counts = [0, 0]
    for n in names:
        counts[shard_of(n, 2)] += 1
    assert min(counts) > 150  # crc32 spreads them
    assert [shard_of(n, 2) for n in names] == [shard_of(n, 2) for n in names]
