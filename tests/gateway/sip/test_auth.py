"""Digest authentication: RFC test vectors, header parsing, and client/server round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.sip.auth import (
    ALGORITHMS,
    CHALLENGE_HEADERS,
    AuthOutcome,
    DigestChallenge,
    DigestClient,
    DigestCredentials,
    DigestParseError,
    DigestServer,
    NonceCountTracker,
    authorization_for,
    choose_challenge,
    compute_ha1,
    compute_response,
    parse_auth_params,
    parse_challenge,
    parse_credentials,
)

SECRET = b"sipgw-lab test secret, 32 bytes!"
T0 = 1_700_000_000.0  # wall-clock seconds

# --- RFC test vectors ------------------------------------------------------------------------------

RFC2617_CHALLENGE = (
    'Digest\r\n realm="testrealm@host.com",\r\n qop="auth,auth-int",\r\n'
    ' nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",\r\n opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)
RFC2617_AUTHORIZATION = (
    'Digest username="Mufasa",\r\n realm="testrealm@host.com",\r\n'
    ' nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",\r\n uri="/dir/index.html",\r\n'
    " qop=auth,\r\n nc=00000001,\r\n cnonce=\"0a4f113b\",\r\n"
    ' response="6629fae49393a05397450978507c4ef1",\r\n opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)


def test_rfc2617_section_3_5_md5_example() -> None:
    challenge = parse_challenge(RFC2617_CHALLENGE)
    assert challenge.realm == "testrealm@host.com"
    assert challenge.qop == ("auth", "auth-int")
    assert challenge.algorithm == "MD5"
    creds = authorization_for(
        challenge, username="Mufasa", password="Circle Of Life", method="GET", uri="/dir/index.html",
        cnonce="0a4f113b",
    )
    assert creds.response == "6629fae49393a05397450978507c4ef1"
    assert (creds.qop, creds.nc, creds.opaque) == ("auth", "00000001", "5ccc069c403ebaf9f0171e9517f40e41")
    parsed = parse_credentials(RFC2617_AUTHORIZATION)
    assert parsed.response == creds.response
    assert parsed.nc == "00000001" and parsed.cnonce == "0a4f113b" and parsed.uri == "/dir/index.html"


RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC7616_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"


@pytest.mark.parametrize(
    "algorithm,expected",
    [
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ],
)
def test_rfc7616_section_3_9_1_example(algorithm: str, expected: str) -> None:
    challenge = parse_challenge(
        f'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, '
        f'nonce="{RFC7616_NONCE}", opaque="{RFC7616_OPAQUE}"'
    )
    creds = authorization_for(
        challenge, username="Mufasa", password="Circle of Life", method="GET", uri="/dir/index.html",
        cnonce=RFC7616_CNONCE,
    )
    assert creds.response == expected
    again = parse_credentials(str(creds))
    assert again == creds


def test_compute_response_without_qop_is_rfc2069_form() -> None:
    ha1 = compute_ha1("Mufasa", "testrealm@host.com", "Circle Of Life")
    # RFC 2617 §3.2.2.1: request-digest = KD(H(A1), nonce ":" H(A2)) when qop is absent.
    import hashlib

    ha2 = hashlib.md5(b"GET:/dir/index.html").hexdigest()
    expected = hashlib.md5(f"{ha1}:abc:{ha2}".encode()).hexdigest()
    assert compute_response(algorithm="MD5", ha1=ha1, nonce="abc", method="GET", uri="/dir/index.html") == (
        expected
    )


# --- parsing ---------------------------------------------------------------------------------------


def test_parse_is_case_insensitive_and_tolerant_of_spacing() -> None:
    challenge = parse_challenge(
        'digest REALM = "sip.example.com" ,, Nonce="n1",ALGORITHM=sha-256,QOP="AUTH",  stale=TRUE,'
    )
    assert challenge.realm == "sip.example.com"
    assert challenge.nonce == "n1"
    assert challenge.algorithm == "SHA-256"
    assert challenge.qop == ("auth",)
    assert challenge.stale is True


def test_parse_quoted_strings_with_commas_and_escapes() -> None:
    scheme, params = parse_auth_params(
        r'Digest realm="a, \"quoted\" realm\\", nonce="x=y,z", opaque=tok, uri="sip:bob@h;transport=tcp"'
    )
    assert scheme == "Digest"
    assert params == {
        "realm": 'a, "quoted" realm\\',
        "nonce": "x=y,z",
        "opaque": "tok",
        "uri": "sip:bob@h;transport=tcp",
    }


def test_parse_keeps_unknown_parameters() -> None:
    creds = parse_credentials(
        'Digest username="alice", realm="r", nonce="n", uri="sip:r", response="00", foo="bar"'
    )
    assert creds.extra == {"foo": "bar"}
    assert 'foo="bar"' in str(creds)


def test_parse_accepts_unquoted_uri_from_sloppy_clients() -> None:
    creds = parse_credentials('Digest username="a", realm="r", nonce="n", uri=sip:r@h, response="0"')
    assert creds.uri == "sip:r@h"


@pytest.mark.parametrize(
    "text,message",
    [
        ('Digest realm="abc', "unterminated quoted string at offset 13"),
        ("Digest realm", "expected '=' after parameter name 'realm'"),
        ("Digest realm=", "missing value for parameter 'realm'"),
        ('Digest realm="a" nonce="b"', "expected ',' after the value of 'realm'"),
        ('Digest realm="a", realm="b", nonce="n"', "parameter 'realm' appears more than once"),
        ('Basic realm="a"', "uses scheme 'Basic', not Digest"),
        ('Digest nonce="n"', "has no 'realm' parameter"),
        ('Digest realm="r"', "has no 'nonce' parameter"),
        ("", "missing authentication scheme"),
        ('Digest ="x"', "expected a parameter name"),
    ],
)
def test_bad_challenges_say_what_and_where(text: str, message: str) -> None:
    with pytest.raises(DigestParseError, match=message.replace("(", r"\(")):
        parse_challenge(text)


@pytest.mark.parametrize(
    "text,message",
    [
        ('Digest username="a", realm="r", nonce="n", uri="u"', "has no 'response' parameter"),
        ('Digest username="a", realm="r", nonce="n", uri="u", response="0", nc=1', "nc must be 8 hex"),
        ('Digest username*=UTF-8\'\'x, realm="r", nonce="n", uri="u", response="0"', "username\\*"),
    ],
)
def test_bad_credentials(text: str, message: str) -> None:
    with pytest.raises(DigestParseError, match=message):
        parse_credentials(text)


_texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@given(realm=_texts, nonce=_texts, opaque=st.none() | _texts, stale=st.booleans())
def test_challenge_round_trip(realm: str, nonce: str, opaque: str | None, stale: bool) -> None:
    challenge = DigestChallenge(realm=realm, nonce=nonce, algorithm="SHA-256", qop=("auth",), opaque=opaque,
                                stale=stale)
    assert parse_challenge(str(challenge)) == challenge


@given(username=_texts, realm=_texts, uri=_texts, cnonce=_texts)
def test_credentials_round_trip(username: str, realm: str, uri: str, cnonce: str) -> None:
    creds = DigestCredentials(username=username, realm=realm, nonce="n", uri=uri, response="ab",
                              cnonce=cnonce, qop="auth", nc="0000000a", algorithm="MD5-sess")
    assert parse_credentials(str(creds)) == creds


def test_choose_challenge_takes_first_supported() -> None:
    offered = ['Digest realm="r", nonce="n", algorithm=SHA-512', 'Digest realm="r", nonce="n", algorithm=MD5']
    assert choose_challenge(offered).algorithm == "MD5"
    with pytest.raises(ValueError, match="no supported digest algorithm"):
        choose_challenge(offered[:1])


# --- server and client together --------------------------------------------------------------------


def make_server(**kwargs: object) -> DigestServer:
    defaults: dict[str, object] = {"algorithms": ALGORITHMS, "qop": ("auth", "auth-int")}
    defaults.update(kwargs)
    return DigestServer("sip.example.com", SECRET, **defaults)  # type: ignore[arg-type]


def answer(challenge: DigestChallenge, *, password: str = "s3cret", nc: int = 1, method: str = "REGISTER",
           qop: str | None = None, body: bytes = b"") -> DigestCredentials:
    return authorization_for(challenge, username="1001", password=password, method=method,
                             uri="sip:sip.example.com", nc=nc, qop=qop, body=body)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("qop", ["auth", "auth-int"])
def test_round_trip_every_algorithm(algorithm: str, qop: str) -> None:
    server = make_server(algorithms=(algorithm,))
    challenge = parse_challenge(str(server.challenge(T0)))
    creds = answer(challenge, qop=qop, body=b"v=0\r\n")
    result = server.verify(str(creds), method="REGISTER", now=T0 + 1, password="s3cret", body=b"v=0\r\n",
                           request_uri="sip:sip.example.com")
    assert result.ok, result.reason
    assert result.username == "1001"


def test_auth_int_covers_the_body() -> None:
    server = make_server()
    creds = answer(server.challenge(T0), qop="auth-int", body=b"original")
    result = server.verify(creds, method="REGISTER", now=T0, password="s3cret", body=b"tampered")
    assert result.outcome is AuthOutcome.WRONG_RESPONSE


def test_verify_with_stored_ha1_per_algorithm() -> None:
    server = make_server()
    stored = {base: compute_ha1("1001", "sip.example.com", "s3cret", base)
              for base in ("MD5", "SHA-256", "SHA-512-256")}
    # The challenges share one nonce, so each answer uses the next nonce count.
    for count, challenge in enumerate(server.challenges(T0), start=1):
        result = server.verify(answer(challenge, nc=count), method="REGISTER", now=T0, ha1=stored)
        assert result.ok, (challenge.algorithm, result.reason)
    sha256 = next(c for c in server.challenges(T0) if c.algorithm == "SHA-256")
    md5_only = server.verify(answer(sha256), method="REGISTER", now=T0, ha1={"MD5": stored["MD5"]})
    assert md5_only.outcome is AuthOutcome.UNSUPPORTED


def test_challenges_are_offered_in_preference_order_with_one_nonce() -> None:
    server = DigestServer("r", SECRET)
    challenges = server.challenges(T0)
    assert [c.algorithm for c in challenges] == ["SHA-256", "MD5"]
    assert len({c.nonce for c in challenges}) == 1
    assert challenges[0].qop == ("auth",)


def test_wrong_password() -> None:
    server = make_server()
    result = server.verify(answer(server.challenge(T0), password="guess"), method="REGISTER", now=T0,
                           password="s3cret")
    assert result.outcome is AuthOutcome.WRONG_RESPONSE
    assert not result.ok and not result.stale


def test_wrong_method_fails() -> None:
    server = make_server()
    creds = answer(server.challenge(T0), method="INVITE")
    assert server.verify(creds, method="REGISTER", now=T0, password="s3cret").outcome is (
        AuthOutcome.WRONG_RESPONSE
    )


def test_stale_nonce_when_password_right() -> None:
    server = make_server(nonce_lifetime=300)
    creds = answer(server.challenge(T0))
    assert server.verify(creds, method="REGISTER", now=T0 + 299, password="s3cret").ok
    later = answer(parse_challenge(str(server.challenge(T0))), nc=1)
    result = server.verify(later, method="REGISTER", now=T0 + 301, password="s3cret")
    assert result.outcome is AuthOutcome.STALE and result.stale
    fresh = server.challenge(T0 + 301, stale=result.stale)
    assert "stale=true" in str(fresh)
    assert parse_challenge(str(fresh)).stale is True
    assert server.verify(answer(fresh), method="REGISTER", now=T0 + 302, password="s3cret").ok


def test_expired_nonce_with_wrong_password_is_not_stale() -> None:
    server = make_server(nonce_lifetime=300)
    creds = answer(server.challenge(T0), password="guess")
    result = server.verify(creds, method="REGISTER", now=T0 + 1000, password="s3cret")
    assert result.outcome is AuthOutcome.WRONG_RESPONSE and not result.stale


def test_replayed_nonce_count() -> None:
    server = make_server()
    challenge = server.challenge(T0)
    first = answer(challenge, nc=1)
    assert server.verify(first, method="REGISTER", now=T0, password="s3cret").ok
    replay = server.verify(first, method="REGISTER", now=T0 + 1, password="s3cret")
    assert replay.outcome is AuthOutcome.REPLAY
    assert server.verify(answer(challenge, nc=2), method="REGISTER", now=T0 + 2, password="s3cret").ok


def test_out_of_order_counts_inside_the_window_are_accepted_once() -> None:
    server = make_server()
    challenge = server.challenge(T0)
    for nc in (5, 3, 4, 1):
        assert server.verify(answer(challenge, nc=nc), method="REGISTER", now=T0, password="s3cret").ok
    for nc in (3, 5):
        result = server.verify(answer(challenge, nc=nc), method="REGISTER", now=T0, password="s3cret")
        assert result.outcome is AuthOutcome.REPLAY


def test_tampered_nonce() -> None:
    server = make_server()
    challenge = server.challenge(T0)
    nonce = challenge.nonce
    flipped = nonce[:5] + ("A" if nonce[5] != "A" else "B") + nonce[6:]
    forged = DigestChallenge(realm=challenge.realm, nonce=flipped, algorithm=challenge.algorithm,
                             qop=challenge.qop)
    result = server.verify(answer(forged), method="REGISTER", now=T0, password="s3cret")
    assert result.outcome is AuthOutcome.BAD_NONCE
    for junk in ("", "abc", "!!!!", nonce + "AA"):
        junk_challenge = DigestChallenge(realm=challenge.realm, nonce=junk, qop=("auth",))
        outcome = server.verify(answer(junk_challenge), method="REGISTER", now=T0, password="s3cret").outcome
        assert outcome is AuthOutcome.BAD_NONCE, junk


def test_nonce_from_another_secret_or_realm_is_refused() -> None:
    other = DigestServer("sip.example.com", b"another secret of 32 bytes......", algorithms=ALGORITHMS)
    server = make_server()
    result = server.verify(answer(other.challenge(T0)), method="REGISTER", now=T0, password="s3cret")
    assert result.outcome is AuthOutcome.BAD_NONCE
    other_realm = DigestServer("other.example.com", SECRET)
    assert other_realm.nonce_issue_time(server.make_nonce(T0)) is None


def test_restarted_server_and_second_process_verify_the_nonce() -> None:
    creds = answer(make_server().challenge(T0))
    restarted = make_server()
    assert restarted.verify(creds, method="REGISTER", now=T0 + 10, password="s3cret").ok


def test_key_rotation() -> None:
    old = make_server()
    creds = answer(old.challenge(T0))
    keys = [b"new key, also at least 16 bytes", SECRET]
    rotated = DigestServer("sip.example.com", keys, algorithms=ALGORITHMS)
    assert rotated.verify(creds, method="REGISTER", now=T0, password="s3cret").ok
    assert old.nonce_issue_time(rotated.make_nonce(T0)) is None


def test_secrets_longer_than_a_mac_key_count_whole() -> None:
    # The nonce MAC (keyed BLAKE2s) takes at most 32 key bytes: secrets that differ only after those must
    # still sign differently.
    first = DigestServer("sip.example.com", b"k" * 40 + b"1")
    second = DigestServer("sip.example.com", b"k" * 40 + b"2")
    assert first.nonce_issue_time(first.make_nonce(T0)) == T0
    assert second.nonce_issue_time(first.make_nonce(T0)) is None


def test_future_nonce_is_refused() -> None:
    server = make_server()
    creds = answer(server.challenge(T0 + 60))
    assert server.verify(creds, method="REGISTER", now=T0, password="s3cret").outcome is AuthOutcome.BAD_NONCE


def test_wrong_realm_and_unoffered_algorithm() -> None:
    server = DigestServer("sip.example.com", SECRET, algorithms=("SHA-256",))
    challenge = server.challenge(T0)
    other_realm = DigestChallenge(realm="evil", nonce=challenge.nonce, algorithm="SHA-256", qop=("auth",))
    assert server.verify(answer(other_realm), method="REGISTER", now=T0, password="s3cret").outcome is (
        AuthOutcome.WRONG_REALM
    )
    md5 = DigestChallenge(realm="sip.example.com", nonce=challenge.nonce, algorithm="MD5", qop=("auth",))
    assert server.verify(answer(md5), method="REGISTER", now=T0, password="s3cret").outcome is (
        AuthOutcome.UNSUPPORTED
    )


def test_rfc2069_credentials_only_when_allowed() -> None:
    for allowed in (False, True):
        server = make_server(allow_no_qop=allowed)
        challenge = server.challenge(T0)
        legacy = DigestChallenge(realm=challenge.realm, nonce=challenge.nonce, algorithm="MD5")
        creds = answer(legacy)
        assert creds.qop is None and creds.nc is None
        result = server.verify(creds, method="REGISTER", now=T0, password="s3cret")
        assert result.ok is allowed
        if not allowed:
            assert result.outcome is AuthOutcome.NO_QOP


def test_uri_mismatch_and_opaque() -> None:
    server = make_server(opaque="op4que")
    challenge = server.challenge(T0)
    assert challenge.opaque == "op4que"
    creds = answer(challenge)
    assert server.verify(creds, method="REGISTER", now=T0, password="s3cret",
                         request_uri="sip:other.example.com").outcome is AuthOutcome.URI_MISMATCH
    no_opaque = DigestChallenge(realm=challenge.realm, nonce=challenge.nonce, algorithm=challenge.algorithm,
                                qop=challenge.qop)
    assert server.verify(answer(no_opaque), method="REGISTER", now=T0, password="s3cret").outcome is (
        AuthOutcome.BAD_NONCE
    )


def test_malformed_credentials_string() -> None:
    result = make_server().verify('Digest username="a', method="REGISTER", now=T0, password="x")
    assert result.outcome is AuthOutcome.MALFORMED
    assert "unterminated quoted string" in result.reason


def test_server_configuration_errors() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        DigestServer("r", b"short")
    with pytest.raises(ValueError, match="unsupported digest algorithm 'SHA-1'"):
        DigestServer("r", SECRET, algorithms=("SHA-1",))
    with pytest.raises(ValueError, match="unsupported qop"):
        DigestServer("r", SECRET, qop=("auth-conf",))
    server = make_server()
    with pytest.raises(ValueError, match="exactly one of password or ha1"):
        server.verify(answer(server.challenge(T0)), method="REGISTER", now=T0)


def test_digest_client_counts_nonce_uses() -> None:
    server = make_server(algorithms=("SHA-256", "MD5"))
    client = DigestClient("1001", "s3cret")
    challenges = [str(c) for c in server.challenges(T0)]
    first = client.authorize(challenges, method="REGISTER", uri="sip:sip.example.com")
    second = client.authorize(challenges, method="REGISTER", uri="sip:sip.example.com")
    assert (first.algorithm, first.nc, second.nc) == ("SHA-256", "00000001", "00000002")
    assert first.cnonce != second.cnonce
    for creds in (first, second):
        assert server.verify(creds, method="REGISTER", now=T0, password="s3cret").ok


# --- the nonce-count tracker ------------------------------------------------------------------------


def test_tracker_memory_is_bounded_and_forgotten_nonces_turn_stale() -> None:
    tracker = NonceCountTracker(max_nonces=2, window=8)
    assert tracker.check_and_record("n1", 1, issued=1.0) is AuthOutcome.OK
    assert tracker.check_and_record("n2", 1, issued=2.0) is AuthOutcome.OK
    assert tracker.check_and_record("n3", 1, issued=3.0) is AuthOutcome.OK
    assert len(tracker) == 2
    # n1 was evicted: even a never-seen count cannot be trusted any more.
    assert tracker.check_and_record("n1", 2, issued=1.0) is AuthOutcome.STALE
    # A nonce issued after everything evicted is still fine.
    assert tracker.check_and_record("n4", 1, issued=4.0) is AuthOutcome.OK


def test_tracker_window_edges() -> None:
    tracker = NonceCountTracker(window=4)
    assert tracker.check_and_record("n", 10, issued=0) is AuthOutcome.OK
    assert tracker.check_and_record("n", 7, issued=0) is AuthOutcome.OK  # offset 3, inside the window
    assert tracker.check_and_record("n", 6, issued=0) is AuthOutcome.REPLAY  # offset 4, too old to know
    assert tracker.check_and_record("n", 100, issued=0) is AuthOutcome.OK  # jump beyond the window
    assert tracker.check_and_record("n", 10, issued=0) is AuthOutcome.REPLAY
    assert tracker.check_and_record("n", 99, issued=0) is AuthOutcome.OK
    assert tracker.check_and_record("n", 99, issued=0) is AuthOutcome.REPLAY


def test_challenge_headers_per_status() -> None:
    assert CHALLENGE_HEADERS[401] == ("WWW-Authenticate", "Authorization")
    assert CHALLENGE_HEADERS[407] == ("Proxy-Authenticate", "Proxy-Authorization")


def test_challenge_and_answer_travel_in_sip_messages() -> None:
    from gateway.sip.message import Request, Response
    from gateway.sip.parser import parse_message

    register = Request.build("REGISTER", "sip:sip.example.com", headers=[
        ("Via", "SIP/2.0/UDP 10.0.0.5;branch=z9hG4bKreg"), ("From", "<sip:1001@sip.example.com>;tag=r"),
        ("To", "<sip:1001@sip.example.com>"), ("Call-ID", "reg-1"), ("CSeq", "1 REGISTER"),
    ])
    server = make_server(algorithms=("SHA-256", "MD5"))
    challenge_name, answer_name = CHALLENGE_HEADERS[401]
    unauthorized = Response.for_request(register, 401, headers=[(challenge_name, str(c))
                                                              for c in server.challenges(T0)])
    received = parse_message(unauthorized.to_bytes())
    offered = received.headers.get_all(challenge_name)
    assert len(offered) == 2  # never split on the commas inside a challenge
    creds = DigestClient("1001", "s3cret").authorize(offered, method="REGISTER", uri=register.uri)
    retry = parse_message(Request.build("REGISTER", register.uri, headers=[
        *[(n, v) for n, v in register.headers.items() if n != "CSeq"], ("CSeq", "2 REGISTER"),
        (answer_name, str(creds)),
    ]).to_bytes())
    assert isinstance(retry, Request)
    result = server.verify(retry.headers.get(answer_name) or "", method=retry.method, now=T0 + 1,
                           password="s3cret", request_uri=retry.uri)
    assert result.ok and result.username == "1001"


@pytest.mark.parametrize("stale", [False, True])
@pytest.mark.parametrize("opaque", [None, 'o"paque\\x'])
def test_challenge_values_are_the_challenges_as_written(stale: bool, opaque: str | None) -> None:
    # Same random bytes and time: the fast header values must be exactly str() of the challenge objects.
    a = DigestServer("sip.example.com", SECRET, opaque=opaque, random_bytes=lambda n: b"\x07" * n)
    b = DigestServer("sip.example.com", SECRET, opaque=opaque, random_bytes=lambda n: b"\x07" * n)
    values = a.challenge_values(T0, stale=stale)
    assert values == [str(c) for c in b.challenges(T0, stale=stale)]
    assert len(values) == 2 and values[0].startswith('Digest realm="sip.example.com", nonce="')
    # And they work: credentials answering the parsed value verify.
    result = a.verify(answer(parse_challenge(values[1])), method="REGISTER", now=T0, password="s3cret")
    assert result.ok, result.reason


_AUTH_TEXT = st.text(st.sampled_from(list("aZ09-.!%*_+`'~ \t\r\n,=\"\\;:@/<>")), max_size=40)


@given(_AUTH_TEXT)
def test_the_fast_auth_param_reader_agrees_with_the_careful_one(text: str) -> None:
    # The regular-expression reader handles well-formed values; whatever it accepts, the character-by-character
    # reader (the one that explains errors) must accept with the same result.
    from gateway.sip.auth import _parse_auth_params_fast, _parse_auth_params_slow

    fast = _parse_auth_params_fast(text)
    if fast is not None:
        assert fast == _parse_auth_params_slow(text)


def test_the_fast_auth_param_reader_takes_ordinary_credentials() -> None:
    from gateway.sip.auth import _parse_auth_params_fast

    text = ('Digest username="bench0001",realm="sipgw.lab",nonce="AAAB",uri="sip:+1@sipgw.lab",'
            'response="0123",algorithm=MD5,cnonce="6b8b",qop=auth,nc=00000001, opaque="a\\"b"')
    assert _parse_auth_params_fast(text) == ("Digest", {
        "username": "bench0001", "realm": "sipgw.lab", "nonce": "AAAB", "uri": "sip:+1@sipgw.lab",
        "response": "0123", "algorithm": "MD5", "cnonce": "6b8b", "qop": "auth", "nc": "00000001",
        "opaque": 'a"b'})
    assert _parse_auth_params_fast('Digest a=1, a=2') is None  # the careful reader reports the duplicate
    with pytest.raises(DigestParseError, match="more than once"):
        parse_auth_params('Digest a=1, a=2')


_PARAM_NAME = st.text(st.sampled_from(list("aZ09-._ ")), max_size=6)
_PARAM_VALUE = st.text(st.sampled_from(list('aZ09 ,;:@="\\\t')), max_size=8)
_SEPARATOR = st.sampled_from([",", ", ", ",,", " ,", ",  ", "", " "])


@given(st.sampled_from(["Digest", "Di gest", "", " Digest"]),
       st.lists(st.tuples(_PARAM_NAME, st.booleans(), _PARAM_VALUE, _SEPARATOR), max_size=5),
       st.sampled_from(["", " ", ",", ", "]))
def test_the_quick_auth_param_reader_agrees_with_the_others(scheme: str, params: list, tail: str) -> None:
    # The string-search reader gives up on anything unusual; whatever it accepts, both others read the same way.
    from gateway.sip.auth import _parse_auth_params_fast, _parse_auth_params_quick, _parse_auth_params_slow

    text = scheme + " " + "".join(f'{name}={chr(34) + value + chr(34) if quoted else value}{sep}'
                                  for name, quoted, value, sep in params) + tail
    for candidate in (text, text.strip()):
        quick = _parse_auth_params_quick(candidate)
        if quick is not None:
            assert quick == _parse_auth_params_fast(candidate) == _parse_auth_params_slow(candidate)


@given(_AUTH_TEXT)
def test_the_quick_auth_param_reader_agrees_on_any_text(text: str) -> None:
    from gateway.sip.auth import _parse_auth_params_fast, _parse_auth_params_quick

    quick = _parse_auth_params_quick(text)
    if quick is not None:
        assert quick == _parse_auth_params_fast(text)


@pytest.mark.parametrize("separator", [",", ", "])
def test_the_quick_auth_param_reader_takes_what_phones_and_sipp_send(separator: str) -> None:
    from gateway.sip.auth import _parse_auth_params_quick

    text = separator.join(['Digest username="bench0001"', 'realm="sipgw.lab"', 'nonce="AAAB"', 'uri="sip:sipgw.lab"',
                           'response="0123"', "algorithm=MD5", 'cnonce="6b8b"', "qop=auth", "nc=00000001"])
    assert _parse_auth_params_quick(text) == ("Digest", {
        "username": "bench0001", "realm": "sipgw.lab", "nonce": "AAAB", "uri": "sip:sipgw.lab", "response": "0123",
        "algorithm": "MD5", "cnonce": "6b8b", "qop": "auth", "nc": "00000001"})
    # Escapes, a parameter given twice, white space around "=": left to the other readers.
    assert _parse_auth_params_quick('Digest opaque="a\\"b"') is None
    assert _parse_auth_params_quick("Digest a=1, a=2") is None
    assert _parse_auth_params_quick("Digest a = 1") is None


@given(st.binary(min_size=8, max_size=8), st.integers(min_value=0, max_value=2**40))
def test_a_nonce_is_base64url_without_padding_of_time_salt_and_mac(salt: bytes, millis: int) -> None:
    # The nonce is written and read with binascii directly; base64's URL-safe functions are the reference.
    import base64

    server = DigestServer("sip.example.com", SECRET, random_bytes=lambda n: salt[:n])
    now = millis / 1000
    nonce = server.make_nonce(now)
    raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
    assert base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=") == nonce
    assert raw[8:16] == salt
    assert server.nonce_issue_time(nonce) == int(now * 1000) / 1000  # kept in whole milliseconds


@given(st.text(max_size=40))
def test_any_text_as_a_nonce_is_refused_without_an_error(text: str) -> None:
    # Whatever a client puts in nonce="...": not ASCII, outside the alphabet, a wrong length, a forged MAC.
    assert make_server().nonce_issue_time(text) is None
