"""The emulated devices read what the provisioning server serves: for every vendor format, the device-side key
table (harness/emulated/provisioning.py) finds the SIP account, the resync URL, the name, the number and the
pair state in the rendered file, and asks for a file name the server accepts for that vendor."""

from __future__ import annotations

import pytest

from gateway.provisioning import formats as f
from harness.emulated.provisioning import _KEYS, config_file, device_family, read_config

VALUES = dict(sip_host="127.0.0.1", sip_port=5061, transport="tls", sip_user="dev-805ec012dc69",
              sip_password="p&ss<w>rd", display_name="Avery Chen", number="+14255550101",
              state_url="http://127.0.0.1:8081/s/tok/x.cfg", lang="en", signin_url="http://127.0.0.1:8081/signin",
              state="signed_in", lab_mode=True)

CASES = [("Cisco", "desk_phone", "8832"), ("Cisco", "ata", "ATA191-MPP"), ("Poly", "desk_phone", "VVX 450"),
         ("Poly", "ata", "OBi 302"), ("Yealink", "desk_phone", "T46S"), ("AudioCodes", "desk_phone", "445HD"),
         ("AudioCodes", "ata", "MP114-FXS"), ("Gigaset", "dect_base", "N870 IP PRO"),
         ("Spectralink", "ip_dect_server", "IP-DECT Server 400"), ("Ascom", "dect_gateway", "IPBL"),
         ("Algo", "speaker", "8180g2")]


@pytest.mark.parametrize("vendor,kind,model", CASES, ids=[f"{v}-{k}" for v, k, _ in CASES])
def test_device_reads_the_served_configuration(vendor, kind, model):
    fmt = f.format_for(vendor, kind)
    cfg = read_config(f.render(fmt, **VALUES))
    user, password, resync, name, number, state = _KEYS[device_family(vendor, kind)]
    assert (cfg[user], cfg[password], cfg[resync], cfg[name], cfg[number], cfg[state]) == (
        "dev-805ec012dc69", "p&ss<w>rd", VALUES["state_url"], "Avery Chen", "+14255550101", "signed_in")
    assert fmt.match_file(config_file(vendor, kind, model, "805ec012dc69")), config_file(vendor, kind, model, "x")
