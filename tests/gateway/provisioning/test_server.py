"""The provisioning server and the SIP side of sign-in on a running embedded gateway (loopback, ephemeral ports):
bootstrap and state URLs, User-Agent checks, /lang_xx and /tenantid, device sign-in and sign-out, onboarding
credentials that reach only *55* and emergency numbers, *55* enrolment, device credentials registering as the
paired user, offboarding refusal until a factory reset, and all of it after a restart."""

from __future__ import annotations

import re

import httpx
import pytest

from gateway.config import GatewayConfig
from gateway.control_api.client import ControlApiError, ControlClient
from gateway.server import EmbeddedGateway
from tests.gateway.control_api.sipphone import UdpPhone

YEALINK_UA = "Yealink SIP-T46S 66.86.0.15 80:5e:c0:12:dc:69"
MAC = "805ec012dc69"
POLY_UA = "FileTransport PolycomVVX-VVX_450-UA/5.9.5.0614 Type/Application"
CISCO_UA = "Cisco-CP-8832-3PCC/12.0.1 (00562b043615)"


def start(data_dir):
    gw = EmbeddedGateway(data_dir, GatewayConfig(sip="127.0.0.1:0", http="127.0.0.1:0"))
    gw.start_in_thread()
    return gw


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    g = start(tmp_path_factory.mktemp("gw"))
    yield g
    g.stop_thread()


@pytest.fixture
def api(gw):
    with ControlClient(gw.endpoints.control_url) as client:
        client.reset()
        for d in client.devices():
            client.delete_device(d["key"])
        for u in client.users():
            client.delete_user(u["username"])
        client.create_user("avery", "Avery Chen", password="pw-avery", number="+14255550101")
        yield client


def fetch(gw, path, ua=YEALINK_UA):
    return httpx.get(gw.endpoints.provisioning_url + path, headers={"User-Agent": ua}, timeout=5)


def kv(text):
    return dict(line.split(" = ", 1) for line in text.splitlines() if " = " in line)


def onboard(gw, path=f"/{MAC}.cfg"):
    boot = fetch(gw, path)
    assert boot.status_code == 200, boot.text
    state_url = kv(boot.text)["static.auto_provision.server.url"]
    state = httpx.get(state_url, headers={"User-Agent": YEALINK_UA}, timeout=5)
    assert state.headers["X-Sgw-State"] == "signed_out"
    return state_url, kv(state.text)


def test_bootstrap_onboards_and_state_url_signs_out(gw, api):
    state_url, cfg = onboard(gw, f"/lang_de/tenantid/7f1b9c52-5d2e-4a8e-9b1c-2f0e6a1d3c4b/{MAC}.cfg")
    assert "/lang_de/tenantid/7f1b9c52-5d2e-4a8e-9b1c-2f0e6a1d3c4b/s/" in state_url
    assert cfg["lang.gui"] == "de" and cfg["account.1.user_name"] == f"onb-{MAC}"
    assert cfg["features.action_uri.enable"] == "1"  # lab mode keeps the control path open
    assert api.device(MAC)["pair_state"] == "unpaired"
    ex = api.signin.exchanges()
    assert [e["status"] for e in ex[-2:]] == [200, 200] and "***" in ex[-1]["response_body"]


@pytest.mark.parametrize("path,ua,status,words", [
    (f"/{MAC}.cfg", "curl/8.0", 403, "not a device"),
    (f"/{MAC}.ini", YEALINK_UA, 404, f"{MAC}.cfg"),
    ("/001122334455.cfg", YEALINK_UA, 403, "User-Agent says"),
    (f"/lang_xx/{MAC}.cfg", YEALINK_UA, 404, "not offered"),
    (f"/{MAC}.cfg", "Yealink SIP-T46S 66.80.0.15 80:5e:c0:12:dc:69", 403, "firmware"),
    ("/a/b/c", YEALINK_UA, 404, "expected"),
])
def test_bad_requests_are_refused_with_the_reason(gw, api, path, ua, status, words):
    r = fetch(gw, path, ua)
    assert r.status_code == status and words in r.text


def test_vendor_formats_by_user_agent(gw, api):
    r = fetch(gw, "/0004f28e5a79.cfg", POLY_UA)
    assert r.status_code == 200 and "<polycomConfig>" in r.text and 'reg.1.auth.userId="onb-0004f28e5a79"' in r.text
    r = fetch(gw, "/CP-8832-3PCC.xml", CISCO_UA)
    assert r.status_code == 200 and "<User_ID_1_>onb-00562b043615</User_ID_1_>" in r.text


def test_sign_in_and_out_from_the_device(gw, api):
    state_url, _ = onboard(gw)
    token = state_url.split("/s/")[1].split("/")[0]
    base = gw.endpoints.provisioning_url
    pairing = httpx.post(f"{base}/s/{token}/signin", timeout=5).json()
    assert re.fullmatch(r"[A-Z2-9]{9}", pairing["pairing_code"])
    assert api.signin.status(MAC)["pairing_code"] == pairing["pairing_code"]
    page = httpx.post(f"{base}/signin", data={"username": "avery", "password": "pw-avery",
                                              "code": pairing["pairing_code"]}, timeout=5)
    assert page.status_code == 200 and "signed in as Avery Chen" in page.text
    signed = httpx.get(state_url, headers={"User-Agent": YEALINK_UA}, timeout=5)
    cfg = kv(signed.text)
    assert signed.headers["X-Sgw-State"] == "signed_in" and cfg["account.1.label"] == "+14255550101"
    assert cfg["account.1.user_name"] == f"dev-{MAC}"
    out = httpx.post(f"{base}/s/{token}/signout", timeout=5).json()
    assert out["message"] == "Signed Out Successfully" and api.device(MAC)["pair_state"] == "unpaired"


def phone_for(gw, cfg, ua=YEALINK_UA):
    return UdpPhone(gw.endpoints.udp, cfg["account.1.user_name"], cfg["account.1.password"], user_agent=ua)


def test_onboarding_credentials_reach_only_star55_and_emergency(gw, api):
    _, cfg = onboard(gw)
    phone = phone_for(gw, cfg)
    try:
        assert phone.register().status == 200
        assert api.device(MAC)["registered"]
        call_id, req = phone.invite("+14255550101")
        resp = phone.response_to(call_id, req.cseq.seq)
        phone.ack_failure(req, resp)
        assert resp.status == 403 and "SGW-ONBOARDING-RESTRICTED" in resp.headers.get("Warning")
        code = api.signin.enrol(MAC)["verification_code"]
        call_id, req = phone.invite("*55*000000")
        resp = phone.response_to(call_id, req.cseq.seq)
        phone.ack_failure(req, resp)
        assert resp.status == 403 and resp.reason == "Invalid Verification Code"
        call_id, req = phone.invite(f"*55*{code}")
        resp = phone.response_to(call_id, req.cseq.seq)
        phone.ack_failure(req, resp)
        assert (resp.status, resp.reason) == (603, "Enrolment Confirmed") and "SGW-ENROL-OK" in resp.headers.get(
            "Warning")
        assert api.device(MAC)["pair_state"] == "unpaired"
    finally:
        phone.register(expires=0)
        phone.close()


def test_device_credentials_register_as_the_user_and_sign_out_refuses_them(gw, api):
    api.update_user("avery", common_area=True)
    state_url, _ = onboard(gw)
    api.signin.remote_sign_in(MAC, "avery")
    cfg = kv(httpx.get(state_url, headers={"User-Agent": YEALINK_UA}, timeout=5).text)
    phone = phone_for(gw, cfg)
    try:
        assert phone.register().status == 200
        assert api.registration("avery")["contacts"]
        api.signin.sign_out(MAC)
        assert not api.registration("avery")["contacts"]
        resp = phone.register()
        assert resp.status == 403
    finally:
        phone.close()


def test_offboarded_refused_until_factory_reset_across_a_restart(tmp_path):
    g = start(tmp_path)
    try:
        state_url, cfg = onboard(g)
        with ControlClient(g.endpoints.control_url) as api:
            api.advance_clock(14 * 86400 - 3600)
            assert api.signin.sweep() == []
            api.advance_clock(3600)
            assert [o["key"] for o in api.signin.sweep()] == [MAC]
    finally:
        g.stop_thread()
    g = start(tmp_path)  # the same store: the device is still offboarded
    try:
        path = "/" + state_url.split("/", 3)[3]  # new ports after the restart; same state path
        r = fetch(g, path)
        assert r.status_code == 403 and "factory-reset" in r.text
        phone = phone_for(g, cfg)
        try:
            assert phone.register().status == 403
        finally:
            phone.close()
        _, cfg2 = onboard(g)  # the factory reset: the bootstrap again
        with ControlClient(g.endpoints.control_url) as api:
            assert api.device(MAC)["pair_state"] == "unpaired"
        assert cfg2["account.1.password"] != cfg["account.1.password"]
    finally:
        g.stop_thread()


def test_remote_sign_in_refused_for_personal_accounts(gw, api):
    onboard(gw)
    with pytest.raises(ControlApiError) as e:
        api.signin.remote_sign_in(MAC, "avery")
    assert e.value.status == 403 and e.value.code == "personal_account" and e.value.where == "body.username"


def test_control_api_errors_are_located_and_change_nothing(gw, api):
    onboard(gw)
    cases = [
        (lambda: api.signin.enrol("not-a-mac"), 400, "body.mac"),
        (lambda: api.signin.bulk("Name,Mac\nx,00-00-00-00-00-01\n"), 400, "body.csv"),
        (lambda: api.signin.remote_sign_in("001122334455", "avery"), 404, "path.key"),
        (lambda: api.signin.remote_sign_in(MAC, "ghost"), 404, "body.username"),
        (lambda: api.signin.sign_out(MAC), 409, None),
        (lambda: api.signin.configure(code_ttl_s=5), 400, "body.code_ttl_s"),
    ]
    for call, status, where in cases:
        with pytest.raises(ControlApiError) as e:
            call()
        assert (e.value.status, e.value.where) == (status, where), e.value
    assert api.device(MAC)["pair_state"] == "unpaired"


def test_pairing_code_lifetime_is_configurable(gw, api):
    state_url, _ = onboard(gw)
    token = state_url.split("/s/")[1].split("/")[0]
    try:
        assert api.signin.configure(code_ttl_s=120)["code_ttl_s"] == 120
        issued = httpx.post(f"{gw.endpoints.provisioning_url}/s/{token}/signin", timeout=5).json()
        assert issued["expires"] - gw.clock.now() <= 121
        api.advance_clock(121)
        assert api.signin.status(MAC)["pairing_code"] is None
    finally:
        api.signin.configure(code_ttl_s=900)
