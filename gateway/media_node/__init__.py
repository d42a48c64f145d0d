"""The gateway's media node: Teams clients and PSTN parties as pjsua2 user agents (``sipua`` pool).

Enable it with ``EmbeddedGateway(..., media="node")`` or ``media: node`` in the gateway configuration
(``media_workers_max`` bounds its processes, four calls each).  Drive it over the control API
(``/api/v1/media/...``, Python client ``gateway.control_api.client_media.MediaApi``) or directly:

    node = gw.media
    node.set_party("pstn", "+12065550100", answer="auto", answer_delay_ms=500, tone_hz=1240)
    call = node.originate("teams", "terry", "+14255550111")      # through the gateway to a device
    node.send_dtmf(call.id, "123#"); node.hold(call.id); node.resume(call.id); node.hangup(call.id)
    wav = node.recording_bytes(call.id)                            # what the party heard

Worker logs and recordings are under ``<data_dir>/media/``.
"""

from gateway.media_node.node import ANSWER_MODES, PARTY_KINDS, MediaCall, MediaNode, MediaNodeError, PartySettings
from gateway.media_node.tones import PARTY_TONES_HZ, ToneAllocator

__all__ = ["ANSWER_MODES", "PARTY_KINDS", "PARTY_TONES_HZ", "MediaCall", "MediaNode", "MediaNodeError",
           "PartySettings", "ToneAllocator"]
