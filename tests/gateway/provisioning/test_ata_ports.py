"""A two-port ATA on a running embedded gateway: one configuration file carries each port's account, two ports
signed in to two users in one bulk batch each register and ring separately, and signing one out (by the admin
or from the device's port) leaves the other registered and ringing; the admin page and the control API show
each port as its own row."""

from __future__ import annotations

import httpx
import pytest

from gateway.config import GatewayConfig
from gateway.control_api.client import ControlClient
from gateway.provisioning.formats import parse
from gateway.server import EmbeddedGateway
from gateway.sip import Request, Response
from tests.gateway.control_api.sipphone import UdpPhone

ATA_UA = "Audiocodes-Sip-Gateway-MP-112/v.6.60A.367.001"  # an AudioCodes MP112: two usable ports
MAC = "00908f0a0b0c"
P1, P2 = f"{MAC}:001", f"{MAC}:002"
HW = "00-90-8f-0a-0b-0c"


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    g = EmbeddedGateway(tmp_path_factory.mktemp("gw"), GatewayConfig(sip="127.0.0.1:0", http="127.0.0.1:0"))
    g.start_in_thread()
    with ControlClient(g.endpoints.control_url) as api:
        api.create_user("lobby", "Lobby", password="pw-lobby", number="+14255550191", common_area=True,
                        voicemail=False)
        api.create_user("gate", "Gate", password="pw-gate", number="+14255550192", common_area=True,
                        voicemail=False)
        api.create_user("avery", "Avery Chen", password="pw-avery", number="+14255550101")
    yield g
    g.stop_thread()


@pytest.fixture
def api(gw):
    with ControlClient(gw.endpoints.control_url) as client:
        yield client


def get(url: str) -> httpx.Response:
    r = httpx.get(url, headers={"User-Agent": ATA_UA}, timeout=5)
    assert r.status_code == 200, r.text
    return r


def port_phones(gw, cfg: dict[str, str]) -> list[UdpPhone]:
    return [UdpPhone(gw.endpoints.udp, cfg["AuthUserName"], cfg["AuthPassword"], user_agent=ATA_UA),
            UdpPhone(gw.endpoints.udp, cfg["AuthUserName_2"], cfg["AuthPassword_2"], user_agent=ATA_UA)]


def is_invite(m) -> bool:
    return isinstance(m, Request) and m.method == "INVITE"


def rings(caller: UdpPhone, number: str, ringing: UdpPhone, silent: UdpPhone) -> None:
    """Call ``number``: the INVITE reaches ``ringing`` and not ``silent``; the call is then refused (486)."""
    call_id, invite = caller.invite(number)
    got = ringing.receive(5, is_invite)
    assert ringing.username in str(got.request_uri)  # sent to that port's contact
    ringing.answer(got, 486, to_tag="busy1")
    final = caller.receive(5, lambda m: isinstance(m, Response) and m.call_id == call_id and m.status >= 200)
    caller.ack_failure(invite, final)
    with pytest.raises(TimeoutError):
        silent.receive(0.5, is_invite)


def test_two_ports_signed_in_to_two_users_in_one_batch_ring_and_sign_out_separately(gw, api):
    boot = get(f"{gw.endpoints.provisioning_url}/{MAC}.ini")
    cfg = parse("ini", boot.text)
    assert (cfg["AuthUserName"], cfg["AuthUserName_2"]) == (f"onb-{MAC}-001", f"onb-{MAC}-002")
    state_url = cfg["ProvisioningURL"]
    signed_out = get(state_url)
    assert signed_out.headers["X-Sgw-Lines"] == "001=signed_out,002=signed_out"
    onb = port_phones(gw, parse("ini", signed_out.text))
    phones: list[UdpPhone] = []
    caller = UdpPhone(gw.endpoints.udp, "avery", "pw-avery")
    try:
        assert [p.register().status for p in onb] == [200, 200]  # both ports online
        batch = api.signin.bulk(f"Username,HardwareId\nlobby,{HW}:001\ngate,{HW}:002\n")
        assert [(r["ok"], r["device_key"]) for r in batch["rows"]] == [(True, P1), (True, P2)], batch
        signed_in = get(state_url)
        assert signed_in.headers["X-Sgw-Lines"] == "001=signed_in,002=signed_in"
        cfg = parse("ini", signed_in.text)
        assert (cfg["AuthUserName"], cfg["PhoneNumber"]) == (f"dev-{MAC}-001", "+14255550191")
        assert (cfg["AuthUserName_2"], cfg["PhoneNumber_2"]) == (f"dev-{MAC}-002", "+14255550192")
        for p in onb:
            p.close()
        onb = []
        phones = port_phones(gw, cfg)
        assert [p.register().status for p in phones] == [200, 200]
        assert api.registration("lobby")["contacts"] and api.registration("gate")["contacts"]
        assert caller.register().status == 200
        rows = {d["key"]: d for d in api.devices() if d["key"].startswith(MAC)}
        assert set(rows) == {P1, P2}  # each port its own row in the control API
        assert (rows[P1]["username"], rows[P2]["username"]) == ("lobby", "gate")
        assert rows[P1]["registered"] and rows[P2]["registered"] and rows[P1]["mac"] == rows[P2]["mac"] == MAC
        admin = httpx.get(f"{gw.endpoints.provisioning_url}/admin/devices", timeout=5).text
        assert f'data-key="{P1}"' in admin and f'data-key="{P2}"' in admin and f"{HW}:002" in admin

        rings(caller, "+14255550191", phones[0], phones[1])
        rings(caller, "+14255550192", phones[1], phones[0])

        api.signin.sign_out(P1)  # the admin signs port 1 out
        assert not api.registration("lobby")["contacts"] and api.registration("gate")["contacts"]
        assert api.device(P1)["pair_state"] == "unpaired" and api.device(P2)["pair_state"] == "paired"
        assert phones[0].register().status == 403  # port 1's device credentials are refused now
        rings(caller, "+14255550192", phones[1], phones[0])
        assert get(state_url).headers["X-Sgw-Lines"] == "001=signed_out,002=signed_in"

        token = state_url.split("/s/")[1].split("/")[0]
        base = gw.endpoints.provisioning_url
        st = httpx.get(f"{base}/s/{token}/status?port=2", timeout=5).json()
        assert (st["key"], st["user"], st["pair_state"]) == (P2, "gate", "paired")
        assert httpx.get(f"{base}/s/{token}/status?port=3", timeout=5).status_code == 404
        assert httpx.get(f"{base}/s/{token}/status?port=x", timeout=5).status_code == 400
        out = httpx.post(f"{base}/s/{token}/signout?port=2", timeout=5).json()  # the Sign-out key of port 2
        assert out["key"] == P2 and out["message"] == "Signed Out Successfully"
        assert not api.registration("gate")["contacts"]
    finally:
        for p in [*onb, *phones, caller]:
            p.close()


def test_enrolment_csv_with_an_ata_whose_port_is_signed_in_is_refused_whole(gw, api):
    from gateway.control_api.client import ControlApiError

    get(f"{gw.endpoints.provisioning_url}/{MAC}.ini")  # (re)onboarded: both ports signed out
    api.signin.remote_sign_in(P2, "gate")
    fresh = "02005e0a0b0c"
    with pytest.raises(ControlApiError) as e:
        api.signin.enrol_csv(f"{fresh}\n{HW}\n")
    assert e.value.status == 409 and P2 in e.value.message and e.value.where == "body"
    assert not [d for d in api.devices() if d["key"] == fresh]  # nothing enrolled, not even the first MAC
    api.signin.sign_out(P2)


def test_a_bare_mac_names_the_ports_and_deleting_a_port_row_forgets_its_sign_in_record(gw, api):
    mac = "00908f0a0b0d"
    get(f"{gw.endpoints.provisioning_url}/{mac}.ini")  # the ATA's first boot onboards both ports
    signin = gw.provisioning.signin
    assert signin.record(f"{mac}:002").get("onb_user") == f"onb-{mac}-002"
    r = httpx.get(f"{gw.endpoints.control_url}/api/v1/devices/{mac}", timeout=5)
    assert r.status_code == 404, r.text
    err = r.json()["error"]
    assert err["where"] == "path.key" and f"{mac}:001, {mac}:002" in err["message"], err

    assert api.delete_device(f"{mac}:002") == {"deleted": f"{mac}:002"}
    assert "onb_user" not in signin.record(f"{mac}:002")  # no account left behind for the deleted line
    assert signin.record(f"{mac}:001").get("onb_user") == f"onb-{mac}-001"
    assert signin.record(f"{mac}:001").get("token")  # the device keeps its state token while a line remains
    assert signin.account_for(f"onb-{mac}-002") is None

    assert api.delete_device(f"{mac}:001") == {"deleted": f"{mac}:001"}
    assert signin.record(f"{mac}:001") == {}  # the last line: the MAC record goes too
    r = httpx.get(f"{gw.endpoints.control_url}/api/v1/devices/{mac}", timeout=5)
    assert r.status_code == 404 and "multi-port" not in r.json()["error"]["message"]
