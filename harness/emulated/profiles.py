"""Per-vendor behaviour of emulated devices: codec preference, DTMF method, tone.

What real devices of each vendor do by default, as far as public configuration guides say. Values a
lab engineer is unsure of can be overridden per device with the inventory's ``options`` (if any) or by
passing ``options`` to the driver context: ``codecs``, ``dtmf_method``, ``tone_hz``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VendorBehaviour:
    codecs: tuple[str, ...]
    dtmf_method: str  # "rfc4733" | "info"
    note: str = ""


G711 = ("PCMU/8000", "PCMA/8000")

#: Defaults per vendor (keys as the catalogue spells vendors); ``kind`` overrides below.
VENDOR_BEHAVIOUR: dict[str, VendorBehaviour] = {
    "Cisco": VendorBehaviour((*G711, "G722/16000"), "rfc4733", "MPP default DTMF Tx Method: Auto (RFC 2833)"),
    "Poly": VendorBehaviour(("G722/16000", *G711), "rfc4733", "UCS: G.722 first, telephone-event"),
    "Yealink": VendorBehaviour((*G711, "G722/16000"), "rfc4733", "DTMF Type: RFC 2833"),
    "AudioCodes": VendorBehaviour((*G711, "G722/16000"), "rfc4733", "phones: RFC 2833"),
    "Spectralink": VendorBehaviour(G711, "info", "IP-DECT server: SIP INFO by default"),
    "Ascom": VendorBehaviour(G711, "info", "IPBL/IPVM: SIP INFO relay"),
    "Gigaset": VendorBehaviour((*G711, "G722/16000"), "info", "N870: SIP INFO selectable, used here"),
    "Algo": VendorBehaviour((*G711, "G722/16000"), "rfc4733"),
    "Alcatel-Lucent Enterprise": VendorBehaviour(G711, "rfc4733"),
    "Tango Extend": VendorBehaviour(G711, "rfc4733"),
}

#: ATAs of these vendors relay digits as SIP INFO (analogue lines detect in-band DTMF and relay it).
KIND_DTMF_OVERRIDES: dict[tuple[str, str], str] = {
    ("AudioCodes", "ata"): "info",
}


def behaviour_for(vendor: str, kind: str) -> VendorBehaviour:
    base = VENDOR_BEHAVIOUR.get(vendor, VendorBehaviour(G711, "rfc4733"))
    dtmf = KIND_DTMF_OVERRIDES.get((vendor, kind))
    return VendorBehaviour(base.codecs, dtmf, base.note) if dtmf else base


def tone_for(index: int) -> float:
    """A distinct tone per emulated device (700, 900, 1100, … Hz), all cleanly detectable."""
    return 700.0 + 200.0 * (index % 8)
