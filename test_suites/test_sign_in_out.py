"""Sign in and sign out.

Seed: "SIP devices users can sign in and sign out of Teams on the device." SIP Gateway's ways in: local sign-in
(the device shows a 9-character pairing code and a URL; the user signs in on that web page and enters the code),
admin enrolment (the admin adds the MAC, the device dials ``*55*<code>``), remote sign-in of common-area accounts
and bulk sign-in from a ``Username,HardwareId`` CSV; ways out: the device's Sign-out, and the admin's.

Verdicts come from what was observed: the device's sign-in status as the service answers it, the REGISTER of the
account the device was re-provisioned with, the pair state the gateway reports, a call to the user ringing the
device (and no longer ringing it once signed out), the pages as the browser shows them, HTTP answers.
"""

from __future__ import annotations

import secrets

import pytest

from gateway.media_node.confirmation import CONFIRM_TONE_HZ
from harness.protocols import CallControl, CallState, NotApplicable, SignInState
from test_suites._feature_helpers import AFTER_CHANGE_S, device_ear, listen
from test_suites.signin_support import (  # noqa: F401  (fixtures)
    HOUR,
    browser,
    page,
    provisioned,
    records_http,
    representative,
    representative_local,
    require_local_sign_in,
    screenshot,
    web_sign_in,
)

PROV_LINE = 99  # the line the provisioned account's calls are reported on


def rings(p, caller, number: str, settings, evidence, *, line: int = PROV_LINE, not_line: int | None = None) -> None:
    """A PSTN party calls ``number``; the device rings on the provisioned account of ``line`` (and, when given,
    not on ``not_line``); it declines (486)."""
    dut = p.device[CallControl]
    before = {c.id for c in dut.calls()}
    call = caller.call(number)
    incoming = dut.wait_for_incoming(line=line, timeout=settings.deadline(5))
    evidence.add_call(incoming)
    dut.reject(incoming.id, code=486)
    ended = caller.wait_state(call, "disconnected", timeout=5)
    evidence.add_call(ended)
    assert ended["status_code"] == 486, f"the call to {number} ended {ended['status_code']}"
    if not_line is not None:
        other = [c for c in dut.calls() if c.id not in before and c.line == not_line]
        assert not other, f"the call to {number} also rang line {not_line}: {other}"


def does_not_ring(caller, number: str, settings, evidence) -> None:
    call = caller.call(number)
    ended = caller.wait_state(call, "disconnected", timeout=10)
    evidence.add_call(ended)
    assert ended["status_code"] == 480, (f"a call to {number} after sign-out ended {ended['status_code']}; "
                                         "expected 480 (no device)")


@pytest.mark.feature("sign_in_out")
@records_http
def test_local_sign_in_on_the_web_page_then_sign_out_from_the_device(provisioned, pstn_party, page,  # noqa: F811
                                                                     evidence, sipgw_settings):
    """Sign-in shows a code and URL; the user signs in on that page in a browser; the device is re-provisioned
    with the user's account and rings for the user's number; Sign-out on the device ends that."""
    require_local_sign_in(provisioned.device)
    p = provisioned
    user, password, number = p.user()
    st = p.signin.start_sign_in()
    assert st.state is SignInState.PAIRING and st.pairing_code and len(st.pairing_code) == 9, st
    assert p.api.status(p.key)["pairing_code"] == st.pairing_code  # what the display shows, read back
    msg = web_sign_in(page, evidence, st.auth_url, user, password, st.pairing_code, "signin-page")
    assert "signed in as" in msg, f"the sign-in page said: {msg}"
    now = p.signin.wait_signed_in(timeout=sipgw_settings.deadline(10))
    assert now.user == user and now.number == number, now
    assert p.prov.provisioned_registration().ok, p.prov.provisioned_registration()
    assert p.state() == "paired"
    rings(p, pstn_party, number, sipgw_settings, evidence)

    out = p.signin.sign_out()
    assert out.state is not SignInState.SIGNED_IN, out
    assert p.state() == "unpaired"
    does_not_ring(pstn_party, number, sipgw_settings, evidence)


@pytest.mark.feature("sign_in_out")
@records_http
def test_sign_out_from_the_admin_page(provisioned, page, evidence, sipgw_settings):  # noqa: F811
    """A common-area account signed in remotely; the admin page shows it signed in; its Restart button makes the
    device fetch its configuration and register again; its Sign out button signs the device out."""
    p = provisioned
    user, _, _ = p.user(common_area=True)
    p.api.remote_sign_in(p.key, user)
    assert p.signin.wait_signed_in(timeout=sipgw_settings.deadline(10)).user == user
    token = getattr(p.lab.control, "token", None)
    if token:  # a gateway with a control token: its admin pages need it too (the sign-in page does not)
        page.set_extra_http_headers({"Authorization": f"Bearer {token}"})
    page.goto(f"{p.url}/admin/devices")
    row = page.locator(f'tr[data-key="{p.key}"]')
    assert row.locator(".state").inner_text() == "Signed in" and row.locator(".user").inner_text() == user
    assert row.locator(".verdict").inner_text() in ("supported", "newer_than_approved")
    screenshot(page, evidence, "admin-signed-in")
    row.locator("button.restart").click()
    page.wait_for_selector("#message")
    assert "Restart requested" in page.inner_text("#message")
    before = p.prov.restarts
    assert p.signin.sign_in_status().state is SignInState.SIGNED_IN
    assert p.prov.restarts == before + 1 and p.prov.provisioned_registration().ok, "the device did not restart"
    row = page.locator(f'tr[data-key="{p.key}"]')
    row.locator("button.signout").click()
    page.wait_for_selector("#message")
    assert page.locator(f'tr[data-key="{p.key}"] .state').inner_text() == "Signed out"
    screenshot(page, evidence, "admin-signed-out")
    assert p.signin.wait_signed_in(signed_in=False, timeout=sipgw_settings.deadline(10)).state \
        is not SignInState.SIGNED_IN


@pytest.mark.feature("sign_in_out")
@records_http
def test_admin_enrolment_with_star55_then_remote_sign_in(provisioned, evidence, sipgw_settings):  # noqa: F811
    """The admin enrols the MAC; a wrong code is refused with its reason; the right one is answered with the
    confirmation tone, heard at the device, and the device waits for sign-in; remote sign-in of a personal account
    is refused, of a common-area account accepted."""
    p = provisioned
    enrol = p.api.enrol(p.mac)
    wrong = p.prov.dial_feature_code("*55*" + ("000000" if enrol["verification_code"] != "000000" else "111111"))
    evidence.add_call(wrong)
    assert wrong.status_code == 403, f"a wrong verification code ended {wrong.status_code} {wrong.reason}"
    deadline = sipgw_settings.deadline(10)
    ok = p.prov.dial_feature_code(enrol["dial"], until="answered", timeout=deadline)
    assert ok.state is CallState.CONFIRMED, (f"*55* with the right code ended {ok.status_code} {ok.reason}; "
                                             "expected it answered with the confirmation tone")
    ear = device_ear(p.device, ok.id)
    heard = listen([ear], evidence, "enrol-confirmation", tones=[CONFIRM_TONE_HZ],
                   settle_s=AFTER_CHANGE_S)[ear.name].tone(CONFIRM_TONE_HZ)
    evidence.add_media("enrolment confirmation tone", {"tone_hz": CONFIRM_TONE_HZ, **heard.to_dict()})
    assert heard.present, f"{p.device.id} did not hear the {CONFIRM_TONE_HZ:g} Hz confirmation tone: " \
        f"{heard.describe()}"
    ended = p.device[CallControl].wait_for_state(ok.id, CallState.DISCONNECTED, timeout=deadline)
    evidence.add_call(ended)  # the gateway ends the confirmation call itself once the tone has played
    assert p.state() == "unpaired"
    again = p.prov.dial_feature_code(enrol["dial"])
    evidence.add_call(again)
    assert again.status_code == 403, "a verification code worked twice"

    personal, _, _ = p.user()
    with pytest.raises(Exception) as refused:  # the control API's located error
        p.api.remote_sign_in(p.key, personal)
    assert refused.value.status == 403 and "common area" in refused.value.message
    assert p.state() == "unpaired"
    shared, _, _ = p.user(common_area=True)
    p.api.remote_sign_in(p.key, shared)
    assert p.signin.wait_signed_in(timeout=sipgw_settings.deadline(10)).user == shared


@pytest.mark.feature("sign_in_out")
@records_http
def test_bulk_sign_in_and_each_documented_error(representative, provisioned, sipgw_settings):  # noqa: F811
    """A Username,HardwareId CSV: the device signs in; every other row gets its documented error text; more
    than 100 rows is refused whole; after 168 h the deadline has passed.

    Gateway-side (the service's row checks, limits and deadline): run once, on the run's representative device.
    What a bulk sign-in does at each device (fetching the signed-in configuration, registering as the user) is the
    same as a remote sign-in, which every device goes through in the admin enrolment and admin page tests."""
    p = provisioned
    shared, _, _ = p.user(common_area=True)
    no_number, _, _ = p.user(common_area=True, number=False)
    hw = "-".join(p.mac[i:i + 2] for i in range(0, 12, 2)).upper()
    offline = p.api.enrol("02:00:5e:" + secrets.token_hex(3))["mac"]  # known, never connected
    csv = ("Username,HardwareId\n"
           f"{shared},{hw}\n"
           f"nobody-{shared},{hw[:-2]}FE\n"
           f"{no_number},{hw[:-2]}FD\n"
           f"{shared},02-00-5E-10-99-99\n"
           f"{shared},{'-'.join(offline[i:i + 2] for i in range(0, 12, 2))}\n"
           f"{shared},02-00-5E-10-00-77\n{shared},02-00-5E-10-00-77\n"
           f"{shared},{p.mac}\n")
    batch = p.api.bulk(csv)
    got = [(r["line"], r["error"]) for r in batch["rows"]]
    assert got == [(2, None), (3, "User not found in tenant."), (4, "User missing phone number assignment."),
                   (5, "Device not found in records."), (6, "Device is offline."),
                   (7, "Duplicate devices found for bulk sign-in."), (8, "Duplicate devices found for bulk sign-in."),
                   (9, "Input hardware-ID is of wrong format")], got
    assert p.signin.wait_signed_in(timeout=sipgw_settings.deadline(10)).user == shared

    rows = "".join(f"{shared},02-00-5E-20-{i // 256:02X}-{i % 256:02X}\n" for i in range(101))
    with pytest.raises(Exception) as whole:  # the control API's located error
        p.api.bulk("Username,HardwareId\n" + rows)
    assert whole.value.status == 400 and "100" in whole.value.message

    p.signin.sign_out()
    p.lab.control.advance_clock(168 * HOUR + 60)
    late = p.api.bulk(f"Username,HardwareId\n{shared},{hw}\n")
    assert late["rows"][0]["error"] == "Bulk Sign-in deadline expired.", late


@pytest.mark.feature("sign_in_out")
@records_http
def test_pairing_code_expiry_and_reuse_refused(representative_local, provisioned, page, evidence,  # noqa: F811
                                               sipgw_settings):
    """A code 15 minutes old is refused; a fresh one signs in; the same code again is refused.

    Gateway-side (the sign-in service judges the code's age and use): run once, on the run's representative device
    with a local sign-in. Every such device shows its code and signs in with it in the local sign-in test."""
    require_local_sign_in(provisioned.device)
    p = provisioned
    user, password, _ = p.user()
    old = p.signin.start_sign_in()
    p.lab.control.advance_clock(15 * 60)
    msg = web_sign_in(page, evidence, old.auth_url, user, password, old.pairing_code, "code-expired")
    assert "expired" in msg, f"an expired code got: {msg}"
    assert p.state() == "unpaired"
    p.lab.control.advance_clock(-15 * 60)
    fresh = p.signin.start_sign_in()
    assert fresh.pairing_code != old.pairing_code
    assert "signed in as" in web_sign_in(page, evidence, fresh.auth_url, user, password, fresh.pairing_code,
                                         "code-ok")
    p.signin.wait_signed_in(timeout=sipgw_settings.deadline(10))
    msg = web_sign_in(page, evidence, fresh.auth_url, user, password, fresh.pairing_code, "code-reused")
    assert "already used" in msg, f"a used code got: {msg}"


@pytest.mark.feature("sign_in_out")
@records_http
def test_ata_ports_signed_in_to_two_users_in_one_batch(provisioned, pstn_party, evidence,  # noqa: F811
                                                       sipgw_settings):
    """Each port of a multi-port ATA is its own line: a bulk batch signs port 1 in to one user and port 2 to
    another; each port registers as its user and rings for that user's number only; signing port 1 out from the
    device leaves port 2 signed in and ringing."""
    p = provisioned
    profile = p.device.profile
    if profile.kind != "ata" or (profile.ports_usable or 1) < 2 or len(p.prov.prov_ports()) < 2:
        raise NotApplicable(f"{profile.vendor} {profile.model} has a single line (not a multi-port ATA)",
                            feature="sign_in_out", device_id=p.device.id)
    first, _, number1 = p.user(common_area=True)
    second, _, number2 = p.user(common_area=True)
    hw = "-".join(p.mac[i:i + 2] for i in range(0, 12, 2))
    batch = p.api.bulk(f"Username,HardwareId\n{first},{hw}:001\n{second},{hw}:002\n")
    assert [(r["ok"], r["device_key"]) for r in batch["rows"]] == [(True, p.line_key(1)), (True, p.line_key(2))], \
        batch["rows"]
    deadline = sipgw_settings.deadline(10)
    assert p.signin.wait_signed_in(timeout=deadline, port=1).user == first
    assert p.signin.wait_signed_in(timeout=deadline, port=2).user == second
    line1, line2 = PROV_LINE, PROV_LINE - 1
    for port in (1, 2):
        reg = p.prov.provisioned_registration(port)
        assert reg.ok, f"port {port}'s REGISTER as the signed-in user was answered {reg.status_code} {reg.reason}"
    assert (p.state(1), p.state(2)) == ("paired", "paired")
    rings(p, pstn_party, number1, sipgw_settings, evidence, line=line1, not_line=line2)
    rings(p, pstn_party, number2, sipgw_settings, evidence, line=line2, not_line=line1)

    out = p.signin.sign_out(port=1)
    assert out.state is not SignInState.SIGNED_IN, out
    assert (p.state(1), p.state(2)) == ("unpaired", "paired")
    assert p.signin.sign_in_status(port=2).user == second
    does_not_ring(pstn_party, number1, sipgw_settings, evidence)
    rings(p, pstn_party, number2, sipgw_settings, evidence, line=line2, not_line=line1)
