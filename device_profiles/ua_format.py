"""Format the SIP ``User-Agent`` a real device of a catalogue model sends, for a firmware and MAC.

The inverse of :mod:`device_profiles.user_agent`: every string made here is read back by
:func:`device_profiles.user_agent.parse_user_agent` as the same vendor, catalogue model, firmware and MAC
(``tests/device_profiles/test_ua_format.py`` checks that for every catalogue model). Formats follow the
rule table (:mod:`device_profiles.ua_rules`) and the traces of real devices in its ``examples``:

==============  =============================================================  ==========
vendor          format                                                         confidence
==============  =============================================================  ==========
Cisco MPP       ``Cisco-CP-8865-3PCC/12.0.1MPP (00562b043615)``                observed
Cisco ATA       ``Cisco-ATA191-MPP/11-2-2MPP0101-013 (00562b043615)``          observed
Poly VVX/Trio   ``PolycomVVX-VVX_450-UA/5.9.5.0614_0004f28e5a79``              observed
Poly Edge       ``PolyEdge-Edge_E450-UA/8.0.3.1032_0004f28e5a79``              observed
Poly Rove       ``PolyRove-Rove_B4-UA/8.0.2.0020_0004f28e5a79``                inferred
Poly OBi        ``OBIHAI/OBi302-3.2.2.5921``                                   observed
Yealink         ``Yealink SIP-T46S 66.86.0.15 80:5e:c0:12:dc:69``              observed
Yealink DECT    ``Yealink W75DM 108.83.0.40 80:5e:c0:12:dc:69``                observed
AudioCodes 2.x  ``AUDC-IPPhone/2.2.8.61 (445HD-Rev0; 00908F602AAC)``           observed
AudioCodes 3.x  ``AUDC/3.4.6.604 AUDC-IPPhone-445HD_UC_3.4.6.604/1``           observed
MediaPack       ``Audiocodes-Sip-Gateway-MP-114 FXS/v.6.60A.367.001``          inferred
Spectralink     ``Spectralink IP-DECT Server 400 PCS22Ab 00:13:d1:..``         inferred
Ascom           ``Ascom IPBL/11.9.11 00:01:3e:..``                             inferred
Gigaset         ``Gigaset N870 IP PRO/2.52.0;7C2F80E0D605``                    observed
Algo            ``Algo-8180G2/5.3``                                            observed
ALE             ``ALE 8028s-GE 1.51.52.2204 487a55023075``                     observed
Tango Extend    ``Tango Extend eSIM/2.1.0``                                    inferred
==============  =============================================================  ==========

The firmware is written as given (the form the device reports, e.g. ``12.0.1MPP``), so the gateway's
firmware gating sees exactly what it would see from that device. Products without a SIP stack of their own
(the Ascom TDM base station, a radio behind an IPBL) raise :class:`NoUserAgent`.
"""

from __future__ import annotations

import hashlib
import re

from device_profiles.catalogue import Catalogue, ModelProfile, default_catalogue

#: An OUI (first three octets) of each vendor, used for generated MACs of emulated devices.
VENDOR_OUI: dict[str, str] = {
    "Cisco": "00562b",
    "Poly": "0004f2",
    "Yealink": "805ec0",
    "AudioCodes": "00908f",
    "Spectralink": "00907a",
    "Ascom": "00013e",
    "Gigaset": "7c2f80",
    "Algo": "0022ee",
    "Alcatel-Lucent Enterprise": "487a55",
    "Tango Extend": "02a0e5",  # locally administered: an eSIM endpoint has no hardware MAC
}


class UserAgentFormatError(ValueError):
    """The arguments cannot make a User-Agent (unknown model, missing firmware, malformed MAC)."""


class NoUserAgent(UserAgentFormatError):
    """The product has no SIP stack of its own, so it sends no User-Agent; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def default_mac(vendor: str, seed: str) -> str:
    """A stable MAC (12 lower-case hex digits) for an emulated device: the vendor's OUI + a hash of ``seed``."""
    oui = VENDOR_OUI.get(vendor, "02a0e5")
    tail = hashlib.sha256(seed.encode()).hexdigest()[:6]
    return oui + tail


def _mac12(mac: str | None) -> str | None:
    if mac is None:
        return None
    digits = re.sub(r"[:\-.]", "", mac.strip())
    if not re.fullmatch(r"[0-9A-Fa-f]{12}", digits):
        raise UserAgentFormatError(f"MAC {mac!r} is not 12 hex digits (aa:bb:cc:dd:ee:ff, aa-bb-… or aabbcc…)")
    return digits.lower()


def _colon(mac: str) -> str:
    return ":".join(mac[i:i + 2] for i in range(0, 12, 2))


def _resolve(model: ModelProfile | str, vendor: str | None, catalogue: Catalogue | None) -> ModelProfile:
    if isinstance(model, ModelProfile):
        return model
    cat = catalogue or default_catalogue()
    profile = cat.find(model, vendor)
    if profile is None:
        close = ", ".join(cat.closest(model, vendor)) or "none"
        raise UserAgentFormatError(f"model {model!r} is not in the catalogue; closest catalogue names: {close}")
    return profile


def format_user_agent(
    model: ModelProfile | str,
    firmware: str | None,
    mac: str | None = None,
    *,
    vendor: str | None = None,
    catalogue: Catalogue | None = None,
) -> str:
    """The ``User-Agent`` a device of ``model`` running ``firmware`` (with ``mac``) sends in SIP requests.

    ``mac`` is optional; formats that carry one include it when given. Raises :class:`UserAgentFormatError`
    (or :class:`NoUserAgent`) saying what is wrong.
    """
    p = _resolve(model, vendor, catalogue)
    m = _mac12(mac)
    fw = firmware.strip() if isinstance(firmware, str) else None
    if fw is not None and (not fw or any(c in fw for c in " \t\r\n;()")):
        raise UserAgentFormatError(f"firmware {firmware!r} for {p.vendor} {p.model} must be one token "
                                   "without spaces, ';' or parentheses")
    fn = _FORMATTERS.get(p.vendor)
    if fn is None:
        raise UserAgentFormatError(f"no User-Agent format is known for vendor {p.vendor!r}")
    if fw is None and p.vendor != "Tango Extend":
        raise UserAgentFormatError(f"{p.vendor} {p.model}: a firmware version is needed to format its "
                                   "User-Agent (every request it sends carries one)")
    return fn(p, fw, m)


def _need(fw: str | None) -> str:
    assert fw is not None
    return fw


# ---------------------------------------------------------------------------------------------- vendors


def _cisco(p: ModelProfile, fw: str | None, mac: str | None) -> str:
    mac_part = f" ({mac})" if mac else ""
    if p.model.startswith("ATA"):
        # "Cisco-ATA191-MPP/11-1-0MSR3-9": the catalogue model already ends in -MPP.
        return f"Cisco-{p.model}/{_need(fw)}{mac_part}"
    return f"Cisco-CP-{p.model}-3PCC/{_need(fw)}{mac_part}"


def _poly(p: ModelProfile, fw: str | None, mac: str | None) -> str:
    fw = _need(fw)
    mac_part = f"_{mac}" if mac else ""
    name = p.model
    if name.startswith("VVX "):
        return f"PolycomVVX-VVX_{name[4:]}-UA/{fw}{mac_part}"
    if name.startswith("Trio "):
        return f"PolycomRealPresenceTrio-Trio_{name[5:]}-UA/{fw}{mac_part}"
    if name.startswith("Edge "):
        return f"PolyEdge-Edge_{name[5:]}-UA/{fw}{mac_part}"
    if name.startswith("Rove "):
        return f"PolyRove-Rove_{name[5:]}-UA/{fw}{mac_part}"
    if name.startswith("OBi "):
        return f"OBIHAI/OBi{name[4:]}-{fw}"
    raise UserAgentFormatError(f"no User-Agent format is known for Poly {name!r}")


def _yealink(p: ModelProfile, fw: str | None, mac: str | None) -> str:
    mac_part = f" {_colon(mac)}" if mac else ""
    if re.match(r"W\d", p.model):  # DECT bases and handsets: "Yealink W75DM 108.83.0.40"
        return f"Yealink {p.model} {_need(fw)}{mac_part}"
    return f"Yealink SIP-{p.model} {_need(fw)}{mac_part}"


def _audiocodes(p: ModelProfile, fw: str | None, mac: str | None) -> str:
    fw = _need(fw)
    if p.model.startswith("MP"):
        m = re.fullmatch(r"MP(\d+)((?:-FX[SO])*)", p.model)
        if not m:
            raise UserAgentFormatError(f"no User-Agent format is known for AudioCodes {p.model!r}")
        ports = m.group(2).strip("-").replace("-", "_")
        product = f"MP-{m.group(1)}" + (f" {ports}" if ports else "")
        return f"Audiocodes-Sip-Gateway-{product}/v.{fw}"
    if fw.split(".", 1)[0] == "3":  # the 3.x Skype for Business line
        return f"AUDC/{fw} AUDC-IPPhone-{p.model}_UC_{fw}/1"
    mac_part = f"; {mac.upper()}" if mac else ""
    return f"AUDC-IPPhone/{fw} ({p.model}-Rev0{mac_part})"


def _spectralink(p: ModelProfile, fw: str | None, mac: str | None) -> str:
    if p.kind == "dect_handset":  # only if the server names the handset (unconfirmed)
        return f"Spectralink {p.model} {_need(fw)}"
    mac_part = f" {_colon(mac)}" if mac else ""
    return f"Spectralink {p.model} {_need(fw)}{mac_part}"


def _ascom(p: ModelProfile, fw: str | None, mac: str | None) -> str:
    if p.model == "TDM Base Station":
        raise NoUserAgent("the Ascom TDM base station is a DECT radio behind an IPBL with no IP stack of its own; "
                          "its handsets register through the IPBL, which sends the User-Agent")
    mac_part = f" {_colon(mac)}" if mac and p.kind != "dect_handset" and not p.model.startswith("Myco") else ""
    return f"Ascom {p.model}/{_need(fw)}{mac_part}"


def _gigaset(p: ModelProfile, fw: str | None, mac: str | None) -> str:
    mac_part = f";{mac.upper()}" if mac else ""
    return f"Gigaset {p.model}/{_need(fw)}{mac_part}"


def _algo(p: ModelProfile, fw: str | None, mac: str | None) -> str:
    return f"Algo-{p.model.upper()}/{_need(fw)}"


def _ale(p: ModelProfile, fw: str | None, mac: str | None) -> str:
    mac_part = f" {mac}" if mac else ""
    return f"ALE {p.model} {_need(fw)}{mac_part}"


def _tango(p: ModelProfile, fw: str | None, mac: str | None) -> str:
    return f"Tango Extend {p.model}/{fw}" if fw else f"Tango Extend {p.model}"


_FORMATTERS = {
    "Cisco": _cisco,
    "Poly": _poly,
    "Yealink": _yealink,
    "AudioCodes": _audiocodes,
    "Spectralink": _spectralink,
    "Ascom": _ascom,
    "Gigaset": _gigaset,
    "Algo": _algo,
    "Alcatel-Lucent Enterprise": _ale,
    "Tango Extend": _tango,
}
