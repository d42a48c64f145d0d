"""An IVR on the media node: a menu that echoes or routes by digit, and keeps every digit it received.

The IVR is a party of the media node (kind ``ivr``) reached at a tenant number (:data:`IVR_NUMBER` unless
the gateway is given another): the router sends calls to that number to a media-node worker like a Teams
client or PSTN party (``Router.services``), the worker answers, plays the menu tone and records the call.

Each digit the worker receives is kept with its method and time (``rfc4733`` events in the RTP stream,
RFC 4733 §2.5, or ``info`` for SIP INFO ``application/dtmf-relay``) both in the media call's ``dtmf`` list
(``GET /api/v1/media/calls/{id}``) and here (:meth:`Ivr.digits`), together with the menu action it caused:

- ``echo`` (the default for every digit): the IVR's tone becomes the digit's own tone
  (:func:`echo_tone_hz`), so the caller hears that its digit arrived;
- ``hangup``: the IVR ends the call (BYE);
- ``tone:<hz>``: the IVR's tone becomes ``hz`` (a submenu prompt).

DTMF through the gateway: the gateway's B2BUA does not anchor media, so RFC 4733 events travel end to end in
RTP between the device and the IVR's worker; SIP INFO digits are relayed by the B2BUA from one leg to the
other unchanged (body and ``Content-Type``). The gateway does not convert one method into the other: it never
sees the RTP, and converting would need an RTP relay of its own. A device that sends INFO reaches an IVR
that accepts INFO (pjsua2 does), and a device that sends RFC 4733 reaches it in the negotiated
``telephone-event`` payload; the IVR records which method each digit came in.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("sipgw.media.ivr")

#: The tenant number of the lab's IVR (a resource number of the tenant, outside the inventory's numbers).
IVR_NUMBER = "+14255559100"
#: The menu's prompt tone (heard until the first digit).
MENU_TONE_HZ = 440.0
DIGITS = "0123456789*#"
_ACTION = re.compile(r"^(echo|hangup|tone:(?P<hz>[0-9]{1,5}(\.[0-9]+)?))$")


def echo_tone_hz(digit: str) -> float:
    """The tone the IVR plays after ``digit`` in ``echo``: 0→2450 Hz, 1→2530 … 9→3170, *→3250, #→3330.

    Above the 700–2100 Hz tones of emulated devices and the suites' party tones (at most 2300 Hz), inside the
    telephone band, so a Goertzel detector tells the echo from the caller's own tone.
    """
    if digit not in DIGITS:
        raise ValueError(f"{digit!r} is not a DTMF digit (one of {DIGITS})")
    return 2450.0 + 80.0 * DIGITS.index(digit)


@dataclass(frozen=True)
class IvrDigit:
    digit: str
    method: str  # "rfc4733" | "info"
    t: float  # wall-clock time the worker received it
    action: str


@dataclass
class IvrMenu:
    """Digit → action. Digits not listed echo."""

    routes: dict[str, str] = field(default_factory=dict)
    prompt_hz: float = MENU_TONE_HZ

    def __post_init__(self) -> None:
        for digit, action in self.routes.items():
            if digit not in DIGITS:
                raise ValueError(f"IVR menu: {digit!r} is not a DTMF digit (one of {DIGITS})")
            m = _ACTION.match(action)
            if m is None:
                raise ValueError(f"IVR menu: action {action!r} for digit {digit} is not echo, hangup or tone:<hz>")
            if m.group("hz") and not 100 <= float(m.group("hz")) <= 3400:
                raise ValueError(f"IVR menu: tone in {action!r} for digit {digit} is outside 100-3400 Hz")

    def action_for(self, digit: str) -> str:
        return self.routes.get(digit, "echo")


class Ivr:
    """The IVR's logic; the media node calls :meth:`on_answer` and :meth:`on_digit` on its control thread."""

    def __init__(self, number: str = IVR_NUMBER, menu: IvrMenu | None = None, *, level_dbfs: float = -12.0) -> None:
        if not re.match(r"^\+[0-9]{2,15}$", number):
            raise ValueError(f"IVR number {number!r} is not an E.164 number (+ and 2-15 digits)")
        self.number = number
        self.menu = menu or IvrMenu()
        self.level_dbfs = level_dbfs
        self._lock = threading.Lock()
        self._digits: dict[str, list[IvrDigit]] = {}

    # --- called by the media node ------------------------------------------------------------------------
    def tone_for_new_call(self) -> float:
        return self.menu.prompt_hz

    def on_answer(self, call: Any) -> None:
        with self._lock:
            self._digits.setdefault(call.id, [])

    def on_digit(self, call: Any, digit: str, method: str, t: float | None = None) -> IvrDigit:
        """Record the digit and carry out its menu action on the call (a ``MediaCall`` of the node)."""
        action = self.menu.action_for(digit)
        rec = IvrDigit(digit, method, round(t if t is not None else time.time(), 3), action)
        with self._lock:
            self._digits.setdefault(call.id, []).append(rec)
        try:
            if action == "echo":
                self._tone(call, echo_tone_hz(digit))
            elif action == "hangup":
                call.worker.hangup(call.handle)
            else:
                self._tone(call, float(action.split(":", 1)[1]))
        except Exception as exc:  # the call may have ended meanwhile; the digit is kept anyway
            log.info("ivr: %s on %s after digit %s failed: %s", action, call.id, digit, exc)
        return rec

    def _tone(self, call: Any, hz: float) -> None:
        call.worker.play_tone(hz, call=call.handle, level_dbfs=self.level_dbfs)
        call.tone_hz = hz

    # --- reads ---------------------------------------------------------------------------------------------
    def digits(self, call_id: str) -> list[IvrDigit]:
        with self._lock:
            return list(self._digits.get(call_id, ()))

    def forget(self, call_ids: set[str] | None = None) -> None:
        """Drop the digits of these calls (all when None), e.g. on the media node's reset."""
        with self._lock:
            if call_ids is None:
                self._digits.clear()
            else:
                for cid in call_ids:
                    self._digits.pop(cid, None)
