"""The Tango Extend eSIM endpoint, emulated: exactly the seed's supported features and its documented limitations.

Seed (notes below the vendor table, ``device_profiles/catalogue/tango_extend.yaml``): supported are sign-in/out
through the Tango Extend Teams app with Teams policy sync, calls with hold/resume and DTMF, meeting dial-in,
Request to Join, voicemail and MWI, Teams DND and call forwarding. The SIP side is an emulated SIP device like
any other (its registrations and calls reach the gateway); this module adds what the eSIM does off the SIP
path, modelled as the real service shows it:

- **sign-out / sign-in through the app** registers a new endpoint: the admin list keeps the old entry, signed
  out (a redundant entry), next to the new signed-in one (:meth:`TangoEsim.app_sign_out_sign_in`);
- **no remote sign-in** from the admin centre (``sign_in_out.remote`` is not applicable, with the seed's text);
- **the Teams mobile client wins inbound calls** when the user has both: the eSIM lets the call ring while the
  mobile client answers (:data:`PREFERS_TEAMS_MOBILE`; the gateway forks to both, the Teams client answers);
- **no transfer from the mobile dialler menu** (``call_transfer`` not applicable, with the seed's text);
- **emergency calls** go over the mobile network with the Teams number, so the gateway sees none
  (:meth:`TangoEsim.dial_emergency` places nothing on SIP), while a returned call to the Teams number reaches the
  eSIM like any inbound call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from device_profiles.catalogue import default_catalogue

EMERGENCY = frozenset({"911", "112", "999", "000", "110", "119", "933"})
#: Inbound calls prefer the Teams mobile client: the eSIM never answers before it (seed, unsupported features).
PREFERS_TEAMS_MOBILE = True


def vendor_file():
    cat = default_catalogue()
    profile = cat.find("eSIM", "Tango Extend")
    if profile is None:  # pragma: no cover - the catalogue always has it
        raise LookupError("the catalogue has no Tango Extend eSIM")
    return profile.vendor_file


def supported_features() -> tuple[str, ...]:
    """The seed's supported list, word for word."""
    return tuple(vendor_file().esim.supported_features)


def limitations() -> tuple[str, ...]:
    """The seed's unsupported list, word for word, and its emergency-calling note."""
    esim = vendor_file().esim
    return (*esim.unsupported_features, esim.emergency_calling)


def is_tango(device) -> bool:
    return device.profile.kind == "esim_endpoint"


@dataclass(frozen=True)
class MobileCall:
    """A call the eSIM placed on the mobile network (not SIP): what the phone shows, with the caller id used."""

    number: str
    caller_id: str
    network: str
    t: float


class TangoEsim:
    """The eSIM endpoint's behaviour off the SIP path, around the lab device handle and the control API."""

    def __init__(self, device, control) -> None:
        if not is_tango(device):
            raise ValueError(f"{device.id} is a {device.profile.kind}, not a Tango Extend eSIM endpoint")
        self.device = device
        self.control = control
        self.mobile_calls: list[MobileCall] = []
        self._instances = 0

    @property
    def teams_number(self) -> str:
        return self.device.lines[0].number

    def dial_emergency(self, number: str) -> MobileCall:
        """An emergency number goes over the mobile network with the Teams number; nothing reaches SIP."""
        if number.lstrip("+") not in EMERGENCY:
            raise ValueError(f"{number} is not an emergency number ({', '.join(sorted(EMERGENCY))})")
        call = MobileCall(number, self.teams_number, "mobile", time.time())
        self.mobile_calls.append(call)
        return call

    def app_sign_out_sign_in(self) -> tuple[dict, dict]:
        """Sign out and in again through the Tango Extend Teams app: the old endpoint entry stays, signed out,
        and a new one is signed in (the redundant entry the seed describes). Returns (old entry, new entry)."""
        username = self.device.lines[0].username
        mine = [d for d in self.control.devices(username=username) if d.get("pair_state") != "unpaired"]
        if not mine:
            raise LookupError(f"the gateway lists no signed-in endpoint of {username}")
        old = self.control.update_device(mine[0]["key"], pair_state="unpaired")
        self._instances += 1
        new_mac = _next_mac(old["key"] if ":" in str(old.get("mac") or old["key"]) else "02:00:00:00:00:00",
                            self._instances)
        new = self.control.create_device(new_mac, vendor="Tango Extend", model="eSIM", username=username)
        return old, new


def _next_mac(key: str, n: int) -> str:
    """A locally administered MAC for the app's new endpoint instance."""
    digits = "".join(c for c in key.lower() if c in "0123456789abcdef")[-10:].rjust(10, "0")
    value = (int(digits, 16) + n) & 0xFFFFFFFFFF
    raw = f"02{value:010x}"
    return ":".join(raw[i:i + 2] for i in range(0, 12, 2))
