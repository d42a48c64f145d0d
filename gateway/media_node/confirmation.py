"""The in-band confirmation tone of ``*55*<code>`` (admin enrolment), played by the media node.

SIP Gateway confirms a valid admin verification code with an in-band tone (sip-gateway-facts: "the device
dials ``*55*<code>`` (confirmation tone)"). The embedded gateway sends the INVITE of an accepted code to this
service (:mod:`gateway.provisioning.sip_hooks`): a media-node worker answers it (``200``, RFC 3261 §13.3.1.4),
plays :data:`CONFIRM_TONE_HZ` continuously for :data:`CONFIRM_S` seconds and then ends the call itself (BYE,
§15.1.1). The enrolment is already stored when the tone starts: the tone only tells the caller.

*(lab design)* The tone and its cadence are the lab's, as nothing public documents them:

- **accepted code**: 2150 Hz, one continuous tone of 3.5 s from the answer, then BYE. 2150 Hz is at least
  150 Hz from every other tone of the lab: the media node's party tones (500–2000 Hz), the tones the harness
  gives devices (1990, 2330 Hz), the suites' Teams tone (2300 Hz), the IVR's menu and echo tones (440 Hz,
  2450–3330 Hz), DTMF (up to 1633 Hz) and call-progress tones, so a detector at the device tells it apart;
- **refused code** (unknown, used, expired, another device's): no tone and no dialog, a final
  ``403 Invalid Verification Code`` with ``Warning: 399 … "SGW-ENROL-REFUSED: <reason>"``, so the reason is
  in signalling where a test (or a person reading a trace) finds it.

A gateway without a media node answers an accepted code as before, ``603 Enrolment Confirmed`` with
``SGW-ENROL-OK``. Every played confirmation is kept in :attr:`ConfirmationTone.played` (media call id, SIP
Call-ID, answered and ended times) for evidence.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from gateway.media_node.node import MediaNode, MediaNodeError, PartySettings
from gateway.services.model import Flow

log = logging.getLogger("sipgw.media.confirmation")

#: The accepted code's confirmation tone (Hz) and how long it plays before the node hangs up (s).
CONFIRM_TONE_HZ = 2150.0
CONFIRM_S = 3.5
#: The media-node party that answers: the Request-URI user of the INVITE the gateway sends it.
KIND = "confirm"
IDENTITY = "sgw-enrol-confirm"


class ConfirmationTone:
    """Answers the gateway's ``*55*`` confirmation calls on a :class:`MediaNode` with the confirmation tone."""

    def __init__(self, node: MediaNode, *, tone_hz: float = CONFIRM_TONE_HZ, duration_s: float = CONFIRM_S):
        if not 100.0 <= tone_hz <= 3400.0:
            raise ValueError(f"confirmation tone {tone_hz} Hz is outside the telephone band (100-3400 Hz)")
        if not 0.5 <= duration_s <= 60.0:
            raise ValueError(f"confirmation tone duration {duration_s} s is outside 0.5-60 s")
        self.node = node
        self.tone_hz = float(tone_hz)
        self.duration_s = float(duration_s)
        self.played: list[dict[str, Any]] = []
        self._armed: set[str] = set()
        node.add_listener(self._on_call)

    def party(self) -> Flow | None:
        """Where the next confirmation call goes (a reserved call slot of a worker); None when the node has
        none free now."""
        # The party answers at once with the tone; its settings are read when its INVITE arrives, and the
        # node's per-test reset forgets every party's settings, so they are put in place for each call.
        return self.node.reserve(IDENTITY, KIND, IDENTITY,
                                 settings=PartySettings(answer="auto", tone_hz=self.tone_hz))

    def uri(self, flow: Flow) -> str:
        return f"sip:{IDENTITY}@{flow.host}:{flow.port}"

    # --- on the gateway's loop (media node listener) ---------------------------------------------------------
    def _on_call(self, call: dict[str, Any]) -> None:
        if call.get("party", {}).get("kind") != KIND:
            return
        call_id = call["id"]
        if call["state"] == "confirmed" and call_id not in self._armed:
            self._armed.add(call_id)
            self.played.append({"id": call_id, "sip_call_id": call.get("sip_call_id"), "tone_hz": self.tone_hz,
                                "answered": call.get("answered"), "ended": None})
            del self.played[:-200]
            self.node.schedule(lambda: self._hang_up(call_id), delay_s=self.duration_s)
            log.info("event=enrol_confirmation_tone call=%s tone_hz=%g duration_s=%g", call_id, self.tone_hz,
                     self.duration_s)
        elif call["state"] == "disconnected":
            self._armed.discard(call_id)
            for entry in self.played:
                if entry["id"] == call_id and entry["ended"] is None:
                    entry["ended"] = call.get("ended")

    # --- on the media node's control thread ----------------------------------------------------------------
    def _hang_up(self, call_id: str) -> None:
        with contextlib.suppress(MediaNodeError):  # the caller hung up first
            self.node.hangup(call_id)


__all__ = ["CONFIRM_S", "CONFIRM_TONE_HZ", "IDENTITY", "KIND", "ConfirmationTone"]
