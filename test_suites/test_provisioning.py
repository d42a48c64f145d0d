"""Provisioning and onboarding.

Seed: "SIP devices users can sign in and sign out of Teams on the device" — which starts with the device being
provisioned by SIP Gateway: factory-reset, pointed at the provisioning URL (DHCP option 66 or 160), it fetches its
vendor's configuration file, identified by its MAC and its HTTP User-Agent, and is onboarded in the signed-out
state with onboarding credentials that reach only the sign-in service, ``*55*`` and emergency numbers.

Every verdict is observed: the HTTP statuses and configurations the device fetched, the REGISTER response to the
provisioned account, the pair state the gateway reports, the final response to a call the device places.
"""

from __future__ import annotations

import pytest

from harness.protocols import CallState, Provisioning
from test_suites.signin_support import provisioned, records_http  # noqa: F401  (fixture)

TENANT = "7f1b9c52-5d2e-4a8e-9b1c-2f0e6a1d3c4b"
PSTN_NUMBER = "+12065550100"


@pytest.mark.feature("sign_in_out")
@records_http
def test_provisioned_from_the_dhcp_url_and_onboarded_signed_out(provisioned, evidence, sipgw_settings):  # noqa: F811
    """The device fetches its vendor's file, then its state URL; it registers the onboarding account, the gateway
    holds it as signed out, and a call with onboarding credentials to a tenant number is refused."""
    p = provisioned
    info = p.prov.provisioning()
    assert info.status == "applied" and info.config_version == "signed_out", info
    assert "/s/" in (info.detail or ""), f"no state URL in the configuration: {info}"
    reg = p.prov.provisioned_registration()
    assert reg.ok, f"{p.device.id}: the onboarding account's REGISTER was answered {reg.status_code} {reg.reason}"
    dev = p.lab.control.device(p.key)
    assert dev["pair_state"] == "unpaired" and dev["registered"], dev
    assert dev["firmware_verdict"] in ("supported", "newer_than_approved"), dev
    fetched = [e for e in p.api.exchanges(p.first_seq) if e["user_agent"] == p.prov.user_agent]
    assert [e["status"] for e in fetched][-2:] == [200, 200], fetched

    call = p.prov.dial_feature_code(PSTN_NUMBER)  # onboarding credentials reach only *55* and emergency numbers
    evidence.add_call(call)
    assert call.state is CallState.DISCONNECTED and call.status_code == 403, (
        f"a call with onboarding credentials to {PSTN_NUMBER} ended {call.status_code} {call.reason}; expected 403")


@pytest.mark.feature("sign_in_out")
@records_http
def test_language_and_tenant_tagged_urls(provisioned, sipgw_settings):  # noqa: F811
    """/lang_de and /tenantid/<guid> in the DHCP-given URL reach the configuration and its state URL."""
    p = provisioned
    prov = p.device[Provisioning]
    prov.factory_reset()
    info = prov.provision(f"{p.url}/lang_de/tenantid/{TENANT}")
    assert info.status == "applied", info
    assert f"/lang_de/tenantid/{TENANT}/s/" in (info.detail or ""), info
    assert p.state() == "unpaired"
