"""The endpoint remembers its stateless answers for 64*T1: a byte-identical retransmission from the same address
gets the same bytes again without the TU, anything else goes to the TU, and the memory stays bounded."""

from __future__ import annotations

from gateway.sip.endpoint import Address, Send, SipEndpoint
from gateway.sip.message import Request, Response

PHONE = Address("UDP", "192.0.2.10", 5062)
OTHER = Address("UDP", "192.0.2.11", 5062)


def _register(n: int) -> bytes:
    return (f"REGISTER sip:192.0.2.20 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-mem-{n}\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:1007@192.0.2.20>;tag=f1\r\nTo: <sip:1007@192.0.2.20>\r\n"
            f"Call-ID: mem-{n}@192.0.2.10\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n").encode()


class _Challenger:
    """A TU that answers every request statelessly with a 401 whose nonce counts the TU's own answers."""

    def __init__(self) -> None:
        self.asked = 0

    def __call__(self, req: Request, source: Address) -> Response:
        self.asked += 1
        return Response.for_request(req, 401, headers=[("WWW-Authenticate", f'Digest nonce="n{self.asked}"')],
                                    to_tag="t1")


def _endpoint(limit: int | None = None) -> tuple[SipEndpoint, _Challenger]:
    ep = SipEndpoint(sent_by="192.0.2.20:5060")
    tu = _Challenger()
    ep.stateless = tu
    if limit is not None:
        ep.stateless_limit = limit
    return ep, tu


def _sent(actions: list) -> list[bytes]:  # type: ignore[type-arg]
    return [a.data for a in actions if isinstance(a, Send)]


def test_a_retransmission_gets_the_same_answer_without_the_tu() -> None:
    ep, tu = _endpoint()
    first = _sent(ep.receive(_register(1), PHONE, 0.0))
    again = _sent(ep.receive(_register(1), PHONE, 4.0))
    assert first == again and b'nonce="n1"' in first[0]
    assert (tu.asked, ep.stateless_repeats, ep.transaction_count) == (1, 1, 0)


def test_another_request_or_another_source_goes_to_the_tu() -> None:
    ep, tu = _endpoint()
    ep.receive(_register(1), PHONE, 0.0)
    assert b'nonce="n2"' in _sent(ep.receive(_register(2), PHONE, 0.1))[0]
    assert b'nonce="n3"' in _sent(ep.receive(_register(1), OTHER, 0.2))[0]
    assert (tu.asked, ep.stateless_repeats) == (3, 0)


def test_after_64_t1_the_tu_answers_again() -> None:
    ep, tu = _endpoint()
    ep.receive(_register(1), PHONE, 0.0)
    late = _sent(ep.receive(_register(1), PHONE, 64 * ep.timers.t1))
    assert b'nonce="n2"' in late[0] and tu.asked == 2
    # The new answer is the one remembered now.
    assert _sent(ep.receive(_register(1), PHONE, 64 * ep.timers.t1 + 1)) == late and tu.asked == 2


def test_the_memory_is_bounded_and_forgets_the_oldest_first() -> None:
    ep, tu = _endpoint(limit=2)
    for n in (1, 2, 3):
        ep.receive(_register(n), PHONE, float(n))
    assert len(ep._stateless_sent) == 2
    ep.receive(_register(3), PHONE, 3.5)
    ep.receive(_register(2), PHONE, 3.6)
    assert (tu.asked, ep.stateless_repeats) == (3, 2)
    ep.receive(_register(1), PHONE, 3.7)  # forgotten: the TU answers it
    assert tu.asked == 4


def test_answers_older_than_64_t1_are_dropped_together_when_the_memory_is_full() -> None:
    ep, _ = _endpoint(limit=3)
    ep.receive(_register(1), PHONE, 0.0)
    ep.receive(_register(2), PHONE, 0.1)
    ep.receive(_register(3), PHONE, 40.0)
    ep.receive(_register(4), PHONE, 40.1)  # full: both answers older than 32 s go, the 40 s one stays
    assert [key[0] for key in ep._stateless_sent] == [_register(3), _register(4)]


def test_a_full_memory_forgets_in_sending_order_over_many_answers() -> None:
    """Past its limit the memory forgets one answer per new one, oldest first, however many went before; an answer
    given again after it aged out is forgotten by its new place, not its old one."""
    ep, tu = _endpoint(limit=4)
    for n in range(1, 200):
        ep.receive(_register(n), PHONE, n * 0.01)
        assert len(ep._stateless_sent) == min(n, 4)
    assert [key[0] for key in ep._stateless_sent] == [_register(n) for n in (196, 197, 198, 199)]
    late = 196 * 0.01 + 64 * ep.timers.t1
    ep.receive(_register(196), PHONE, late)  # aged out: the TU answers again, and it is the newest now
    ep.receive(_register(500), PHONE, late)  # full: the oldest live answer (197) goes, not 196's old place
    assert [key[0] for key in ep._stateless_sent] == [_register(n) for n in (198, 199, 196, 500)]
    assert len(ep._stateless_order) <= 2 * 4
    assert tu.asked == 201
