"""The gateway's media node: Teams clients and PSTN parties as pjsua2 user agents (``sipua`` pool)."""

from gateway.media_node.node import ANSWER_MODES, PARTY_KINDS, MediaCall, MediaNode, MediaNodeError, PartySettings
from gateway.media_node.tones import PARTY_TONES_HZ, ToneAllocator

__all__ = ["ANSWER_MODES", "PARTY_KINDS", "PARTY_TONES_HZ", "MediaCall", "MediaNode", "MediaNodeError",
           "PartySettings", "ToneAllocator"]
