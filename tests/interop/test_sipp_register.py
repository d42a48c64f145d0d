"""REGISTER against the running gateway with SIPp over UDP: digest, unregister, no user enumeration,
throttling, firmware gating by User-Agent (RFC 3261 §10.3, §22; RFC 8760 digest)."""

from __future__ import annotations

import pytest

from tests.interop.conftest import make_gateway
from tests.interop.interop_helpers import GOOD_UA, OLD_UA, SippRunner

pytestmark = pytest.mark.slow


def warning_of(resp) -> str:
    return resp.headers.get("Warning") or ""


@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_register_with_digest_then_unregister(gw, sipp, ports, new_user, transport):
    u = new_user()
    port = ports.take()
    res = sipp.register(u.username, u.password, port, ua=GOOD_UA.format(u.mac), transport=transport)
    assert res.returncode == 0, res.explain()
    statuses = [r.status for r in res.responses("REGISTER")]
    assert statuses == [401, 200], res.explain()
    challenge = res.responses("REGISTER")[0].headers.get_all("WWW-Authenticate")
    assert any("algorithm=MD5" in c for c in challenge) and any("algorithm=SHA-256" in c for c in challenge)
    ok = res.responses("REGISTER")[1]
    assert f"127.0.0.1:{port}" in ok.headers.get("Contact")
    bindings = gw.registrar.bindings(u.username, gw.core.now())
    kind = {"u1": "UDP", "t1": "TCP"}[transport]
    assert [(b.flow.transport, b.flow.host) for b in bindings] == [(kind, "127.0.0.1")]
    assert bindings[0].uri == f"sip:{u.username}@127.0.0.1:{port}"

    res = sipp.register(u.username, u.password, port, ua=GOOD_UA.format(u.mac), expires=0, transport=transport)
    assert res.returncode == 0, res.explain()
    assert res.responses("REGISTER")[-1].status == 200
    assert res.responses("REGISTER")[-1].headers.get("Contact") is None
    assert gw.registrar.bindings(u.username, gw.core.now()) == []


def test_wrong_password_and_unknown_user_answered_identically(gw, sipp, ports, new_user):
    u = new_user()
    wrong = sipp.run("register_403.xml", port=ports.take(), keys={"ua": GOOD_UA.format(u.mac), "expires": "300"},
                     inf=[[u.username, "not-the-password"]])
    unknown = sipp.run("register_403.xml", port=ports.take(), keys={"ua": GOOD_UA.format(u.mac), "expires": "300"},
                       inf=[["nobody-" + u.username, "whatever"]])
    for res in (wrong, unknown):
        assert res.returncode == 0, res.explain()
        assert [r.status for r in res.responses("REGISTER")] == [401, 403], res.explain()

    def shape(res):
        first, final = res.responses("REGISTER")
        www = [c.split("nonce=")[0] + c.split(",", 2)[-1] for c in first.headers.get_all("WWW-Authenticate")]
        names = [n for n, _ in final.headers.items() if n not in ("Via", "From", "To", "Call-ID", "CSeq")]
        return www, final.status, final.reason, warning_of(final), names

    assert shape(wrong) == shape(unknown)
    assert "SGW-AUTH-FAILED" in warning_of(wrong.responses("REGISTER")[1])
    assert gw.registrar.bindings(u.username, gw.core.now()) == []


def test_repeated_failures_are_throttled(tmp_path_factory, tmp_path, ports):
    gw, eps = make_gateway(tmp_path_factory, auth_throttle_failures=3)
    try:
        from gateway.services.model import User

        gw.directory.put_user(User("tina", "Tina", "+14255559001"), password="right")
        runner = SippRunner(tmp_path, eps.udp)
        try:
            # The throttle counts failures per source address: a loopback address of its own (127.0.0.7).
            port = ports.take()
            for _ in range(3):
                res = runner.run("register_403.xml", port=port, local_ip="127.0.0.7",
                                 keys={"ua": GOOD_UA.format(1), "expires": "300"}, inf=[["tina", "wrong"]])
                assert res.returncode == 0, res.explain()
            res = runner.run("register_503.xml", port=port, local_ip="127.0.0.7",
                             keys={"ua": GOOD_UA.format(1), "expires": "300"}, inf=[["tina", "right"]])
            assert res.returncode == 0, res.explain()
            final = res.responses("REGISTER")[-1]
            assert final.status == 503 and final.headers.get("Retry-After")
            assert "SGW-AUTH-THROTTLED" in warning_of(final)
            assert gw.registrar.stats.throttled >= 1
            # Another address is not affected.
            ok = runner.register("tina", "right", ports.take(), ua=GOOD_UA.format(1))
            assert [r.status for r in ok.responses("REGISTER")] == [401, 200], ok.explain()
        finally:
            runner.stop_all()
    finally:
        gw.stop_thread()


def test_firmware_below_minimum_is_refused_with_warning(gw, sipp, ports, new_user):
    u = new_user()
    res = sipp.run("register_403.xml", port=ports.take(), keys={"ua": OLD_UA.format(u.mac), "expires": "300"},
                   inf=[[u.username, u.password]])
    assert res.returncode == 0, res.explain()
    final = res.responses("REGISTER")[-1]
    assert final.status == 403
    w = warning_of(final)
    assert w.startswith("399 ") and "SGW-FW-BELOW-MINIMUM" in w, w
    assert "VVX 450" in w and "5.9.4.3247" in w and "5.9.5" in w, w  # model, found, required
    assert gw.registrar.bindings(u.username, gw.core.now()) == []
    device = gw.devices.get(f"0004f28e{u.mac:04x}")
    assert device is not None and device.verdict == "below_minimum"


def test_warn_policy_lets_old_firmware_register(tmp_path_factory, tmp_path, ports):
    gw, eps = make_gateway(tmp_path_factory, firmware_policy="warn")
    try:
        from gateway.services.model import User

        gw.directory.put_user(User("walt", "Walt", "+14255559002"), password="pw")
        runner = SippRunner(tmp_path, eps.udp)
        try:
            res = runner.register("walt", "pw", ports.take(), ua=OLD_UA.format(2))
            assert res.returncode == 0, res.explain()
            final = res.responses("REGISTER")[-1]
            assert final.status == 200
            assert "SGW-FW-BELOW-MINIMUM" in warning_of(final)
            assert len(gw.registrar.bindings("walt", gw.core.now())) == 1
        finally:
            runner.stop_all()
    finally:
        gw.stop_thread()
