"""What the two ends' RTP counters say about a path whose audio was not heard.

A recording tells that a tone did not arrive; it cannot tell where it was lost. When both ends are user agents
that report their RTP counters (emulated devices and media-node parties do, as pjsua2 streams), the counters can:

* the listener's stream received packets: RTP arrived, so the loss is in the content (codec, level, what was
  connected to the call), and the device or the gateway is answerable for it;
* the speaker sent (almost) nothing: it never transmitted;
* the speaker sent to an address other than the one the listener's transport listens on: the SDP that reached the
  speaker (gateway rewriting, NAT) sent RTP elsewhere, a real failure;
* the speaker sent to exactly the listener's RTP address, on loopback, and the listener's stream counted none of
  it for the whole call: the kernel delivers loopback datagrams to a bound socket, the gateway does not touch
  such a path, so the emulated endpoint lost them. That is a fault of the lab's emulation, not of the device or
  the gateway, and is reported as an infrastructure error (retried once within the run's budget; a pass on retry
  is flaky, never a plain pass).

Pure functions over the counter dicts of ``sipua``'s ``call_stats`` (``tx.packets``, ``rx.packets``,
``remote_rtp``, ``local_rtp``, ``last_rx_from``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MIN_SENT", "RtpPath", "rtp_path", "same_rtp_address"]

#: Packets a speaker must have sent (20 ms each: 0.4 s) before silence at the listener says anything.
MIN_SENT = 20


@dataclass(frozen=True)
class RtpPath:
    """The counters' account of one path (speaker → listener); ``lab_fault`` when the emulation lost the packets."""

    speaker: str
    listener: str
    text: str
    lab_fault: bool = False
    figures: Mapping[str, Any] = field(default_factory=dict)


def _split(address: str) -> tuple[str, int] | None:
    a = (address or "").strip()
    if not a:
        return None
    host, sep, port = a.rpartition(":")
    if not sep or not port.isdigit():
        return None
    host = host.strip("[]")
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        return None
    return host, int(port)


def same_rtp_address(a: str, b: str) -> bool:
    """``host:port`` (IPv6 in brackets) equal as addresses; False when either does not parse."""
    x, y = _split(a), _split(b)
    return x is not None and x == y


def _loopback(address: str) -> bool:
    x = _split(address)
    return x is not None and ipaddress.ip_address(x[0]).is_loopback


def _count(stats: Mapping[str, Any], direction: str) -> int:
    try:
        return int((stats.get(direction) or {}).get("packets") or 0)
    except (TypeError, ValueError, AttributeError):
        return 0


def rtp_path(speaker: str, sent: Mapping[str, Any] | None, listener: str,
             received: Mapping[str, Any] | None) -> RtpPath | None:
    """The counters' account of audio from ``speaker`` not heard by ``listener``; None when either end has no
    counters (a physical device, a call already gone)."""
    if not sent or not received:
        return None
    tx, rx = _count(sent, "tx"), _count(received, "rx")
    dest, local = str(sent.get("remote_rtp") or ""), str(received.get("local_rtp") or "")
    last = str(received.get("last_rx_from") or "")
    figures = {"speaker": speaker, "listener": listener, "speaker_tx_packets": tx, "speaker_sends_to": dest,
               "listener_rx_packets": rx, "listener_rtp_address": local, "listener_last_rx_from": last}
    if rx > 0:
        return RtpPath(speaker, listener, f"{listener} received {rx} RTP packets (last from {last or '?'}) and "
                                          f"{speaker} sent {tx}: RTP arrived, its audio did not", figures=figures)
    if tx < MIN_SENT:
        return RtpPath(speaker, listener, f"{speaker} sent {tx} RTP packets in the call and {listener} received "
                                          "none", figures=figures)
    if not same_rtp_address(dest, local):
        return RtpPath(speaker, listener, f"{speaker} sent {tx} RTP packets to {dest or '?'} while {listener} "
                                          f"listens on {local or '?'} and received none: RTP went elsewhere",
                       figures=figures)
    if not _loopback(local):
        return RtpPath(speaker, listener, f"{speaker} sent {tx} RTP packets to {listener}'s RTP address {local} "
                                          "and it received none", figures=figures)
    return RtpPath(speaker, listener, f"{speaker} sent {tx} RTP packets to {local}, the loopback RTP address "
                                      f"{listener}'s emulated endpoint listens on, and its stream counted none of "
                                      "them in the whole call: the emulation lost them, not the device or the "
                                      "gateway", lab_fault=True, figures=figures)
