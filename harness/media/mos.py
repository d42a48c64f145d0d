"""Listening-quality estimate (MOS) from RTP/RTCP stream statistics with the E-model.

Narrowband codecs (PCMU, PCMA) follow ITU-T G.107 (06/2015): ``R = Ro - Is - Id - Ie,eff + A``,
then Annex B maps R to MOS. G.722 follows the wideband E-model of G.107.1: ``Rwb = 129 - Id -
Ie,eff,wb`` (Is,wb = 0 and A = 0 there), mapped to MOS through ``R = Rwb / 1.29`` and the same
Annex B curve, so both scales end on the familiar 1..4.5.

Simplifications, all deliberate and all visible in :class:`MosEstimate`:

* Terminal and room parameters stay at the G.107 default values (SLR 8 dB, RLR 2 dB, STMR 15 dB,
  LSTR 18 dB, Ds = Dr = 3, TELR 65 dB, WEPL 110 dB, Nc -70 dBm0p, Nfor -64 dBmp, Ps = Pr = 35 dB(A),
  qdu 1, A 0). Ro and Is are computed from them below (Ro = 94.77, Is = 1.41, so an undisturbed
  G.711 connection rates R = 93.2, MOS 4.41).
* Ta, the mouth-to-ear delay, is built from the statistics: network one-way delay (e.g. RTCP
  round-trip time / 2) + packetisation (ptime) + the codec's look-ahead + a jitter buffer of
  ``jitter_buffer_factor`` x interarrival jitter (RFC 3550 section 6.4.1). The echo path delays
  are then T = Ta and Tr = 2 T (no separate echo path information).
* The E-model has no jitter term: jitter only adds buffer delay here. Packets the jitter buffer
  discards as late are loss the network counters do not see; add them to ``packet_loss_pct`` if
  known, otherwise the estimate is optimistic under heavy jitter.
* Packet loss is taken as random (BurstR = 1) unless ``burst_ratio`` is given.
* On the wideband scale, the delay impairment of the narrowband model is multiplied by 1.29
  so that delay costs the same MOS on both scales.
* G.722: Ie,wb = 13 (G.113 Appendix IV, 64 kbit/s). G.113 gives no Bpl for G.722 with pjmedia's
  generic packet-loss concealment; the G.711-with-PLC value (25.1) is used as a stand-in.

An estimate is not a measurement: it cannot see codec mismatch, clipping, wrong levels or silent
media. Tone verdicts check the audio itself; the MOS is reported beside them as a number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = [
    "CODEC_IMPAIRMENTS",
    "CodecImpairment",
    "MosEstimate",
    "delay_impairment",
    "estimate_mos",
    "r_to_mos",
]


@dataclass(frozen=True, slots=True)
class CodecImpairment:
    """E-model codec figures: equipment impairment Ie and packet-loss robustness Bpl (G.113)."""

    name: str
    ie: float
    bpl: float  # with packet-loss concealment
    bpl_without_plc: float | None
    wideband: bool
    lookahead_ms: float
    source: str


CODEC_IMPAIRMENTS: Mapping[str, CodecImpairment] = MappingProxyType(
    {
        "PCMU": CodecImpairment(
            "PCMU", 0.0, 25.1, 4.3, False, 0.0, "G.113 Appendix I: G.711, PLC per G.711 Appendix I"
        ),
        "PCMA": CodecImpairment(
            "PCMA", 0.0, 25.1, 4.3, False, 0.0, "G.113 Appendix I: G.711, PLC per G.711 Appendix I"
        ),
        "G722": CodecImpairment(
            "G722",
            13.0,
            25.1,
            None,
            True,
            1.5,
            "G.113 Appendix IV: Ie,wb 13 at 64 kbit/s; Bpl assumed as G.711 with PLC",
        ),
    }
)

# --- G.107 default parameters and the quantities derived from them (G.107 section 7) -----------
_SLR, _RLR, _STMR, _LSTR, _DS = 8.0, 2.0, 15.0, 18.0, 3.0
_TELR, _WEPL = 65.0, 110.0
_NC, _NFOR, _PS, _PR, _QDU = -70.0, -64.0, 35.0, 35.0, 1.0
_OLR = _SLR + _RLR
_WIDEBAND_SCALE = 1.29  # G.107.1: Ro,wb = 129 against Ro = 100-ish; Rwb / 1.29 maps to the G.107 curve


def _noise_floor() -> float:
    """No, the total noise at the 0 dBr point in dBm0p (G.107 eqs 7-3 to 7-7)."""
    nos = _PS - _SLR - _DS - 100 + 0.004 * (_PS - _OLR - _DS - 14) ** 2
    pre = _PR + 10 * math.log10(1 + 10 ** ((10 - _LSTR) / 10))
    nor = _RLR - 121 + pre + 0.008 * (pre - 35) ** 2
    nfo = _NFOR + _RLR
    return 10 * math.log10(sum(10 ** (v / 10) for v in (_NC, nos, nor, nfo)))


def _simultaneous_impairment(ro: float, no: float) -> float:
    """Is = Iolr + Ist + Iq (G.107 eqs 7-8 to 7-17) with the default STMR, T = 0 and qdu."""
    xolr = _OLR + 0.2 * (64 + no - _RLR)
    iolr = 20 * ((1 + (xolr / 8) ** 8) ** (1 / 8) - xolr / 8)
    stmr_o = -10 * math.log10(10 ** (-_STMR / 10) + 10 ** (-_TELR / 10))
    ist = (
        12 * (1 + ((stmr_o - 13) / 6) ** 8) ** (1 / 8)
        - 28 * (1 + ((stmr_o + 1) / 19.4) ** 35) ** (1 / 35)
        - 13 * (1 + ((stmr_o - 3) / 33) ** 13) ** (1 / 13)
        + 29
    )
    q = 37 - 15 * math.log10(_QDU)
    g = 1.07 + 0.258 * q + 0.0602 * q**2
    y = (ro - 100) / 15 + 46 / 8.4 - g / 9
    z = 46 / 30 - g / 40
    iq = 15 * math.log10(1 + 10**y + 10**z)
    return iolr + ist + iq


_NO = _noise_floor()
_RO = 15 - 1.5 * (_SLR + _NO)
_IS = _simultaneous_impairment(_RO, _NO)


def delay_impairment(ta_ms: float, t_ms: float | None = None, tr_ms: float | None = None) -> float:
    """Id = Idte + Idle + Idd (G.107 eqs 7-18 to 7-27) at the default terminal parameters.

    ``ta_ms`` is the absolute mouth-to-ear delay; ``t_ms`` (talker echo path) defaults to it and
    ``tr_ms`` (listener echo round trip) to twice ``t_ms``.
    """
    ta = float(ta_ms)
    t = ta if t_ms is None else float(t_ms)
    tr = 2 * t if tr_ms is None else float(tr_ms)
    if min(ta, t, tr) < 0 or not all(map(math.isfinite, (ta, t, tr))):
        raise ValueError(f"delays must be finite and >= 0 ms, got Ta={ta_ms!r}, T={t_ms!r}, Tr={tr_ms!r}")
    # Talker echo.
    terv = _TELR - 40 * math.log10((1 + t / 10) / (1 + t / 150)) + 6 * math.exp(-0.3 * t**2)
    roe = -1.5 * (_NO - _RLR)
    re = 80 + 2.5 * (terv - 14)
    idte = ((roe - re) / 2 + math.sqrt((roe - re) ** 2 / 4 + 100) - 1) * (1 - math.exp(-t))
    # Listener echo.
    rle = 10.5 * (_WEPL + 7) * (tr + 1) ** -0.25
    idle = (_RO - rle) / 2 + math.sqrt((_RO - rle) ** 2 / 4 + 169)
    # Pure delay (sT = 1, mT = 100 ms).
    if ta <= 100:
        idd = 0.0
    else:
        x = math.log10(ta / 100) / math.log10(2)
        idd = 25 * ((1 + x**6) ** (1 / 6) - 3 * (1 + (x / 3) ** 6) ** (1 / 6) + 2)
    return idte + idle + idd


def r_to_mos(r: float) -> float:
    """G.107 Annex B: MOS (conversational quality estimate) for a narrowband rating R."""
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return min(4.5, max(1.0, 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6))


@dataclass(frozen=True, slots=True)
class MosEstimate:
    """The E-model result with every intermediate figure, for evidence."""

    codec: str
    mos: float
    r_factor: float
    r_scale_max: float  # 100 for G.107 (narrowband), 129 for G.107.1 (wideband)
    ie_eff: float
    delay_impairment: float
    mouth_to_ear_ms: float
    packet_loss_pct: float
    jitter_ms: float
    one_way_delay_ms: float
    ptime_ms: float
    burst_ratio: float
    bpl: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "codec": self.codec,
            "mos": round(self.mos, 2),
            "r_factor": round(self.r_factor, 1),
            "r_scale_max": self.r_scale_max,
            "model": "ITU-T G.107.1 (wideband)" if self.r_scale_max > 100 else "ITU-T G.107",
            "ie_eff": round(self.ie_eff, 2),
            "id": round(self.delay_impairment, 2),
            "mouth_to_ear_ms": round(self.mouth_to_ear_ms, 1),
            "packet_loss_pct": self.packet_loss_pct,
            "jitter_ms": self.jitter_ms,
            "one_way_delay_ms": self.one_way_delay_ms,
            "ptime_ms": self.ptime_ms,
            "burst_ratio": self.burst_ratio,
            "bpl": self.bpl,
        }


def _codec(name: str) -> CodecImpairment:
    key = name.split("/", 1)[0].strip().upper()  # accepts SDP rtpmap spelling, e.g. "PCMU/8000"
    if key not in CODEC_IMPAIRMENTS:
        raise ValueError(f"no E-model figures for codec {name!r}; known codecs: {', '.join(CODEC_IMPAIRMENTS)}")
    return CODEC_IMPAIRMENTS[key]


def _non_negative(value: float, what: str, upper: float = math.inf) -> float:
    v = float(value)
    if not math.isfinite(v) or not 0 <= v <= upper:
        limit = "" if upper == math.inf else f" and <= {upper:g}"
        raise ValueError(f"{what} must be a finite number >= 0{limit}, got {value!r}")
    return v


def estimate_mos(
    codec: str,
    *,
    packet_loss_pct: float = 0.0,
    jitter_ms: float = 0.0,
    one_way_delay_ms: float = 0.0,
    ptime_ms: float = 20.0,
    burst_ratio: float = 1.0,
    plc: bool = True,
    jitter_buffer_factor: float = 2.0,
) -> MosEstimate:
    """E-model MOS for one RTP stream (see the module docstring for what is simplified)."""
    c = _codec(codec)
    loss = _non_negative(packet_loss_pct, "packet_loss_pct", 100.0)
    jitter = _non_negative(jitter_ms, "jitter_ms")
    delay = _non_negative(one_way_delay_ms, "one_way_delay_ms")
    ptime = _non_negative(ptime_ms, "ptime_ms")
    factor = _non_negative(jitter_buffer_factor, "jitter_buffer_factor")
    burst = float(burst_ratio)
    if not math.isfinite(burst) or burst < 1:
        raise ValueError(f"burst_ratio must be >= 1 (1 = random loss), got {burst_ratio!r}")
    if plc:
        bpl = c.bpl
    elif c.bpl_without_plc is not None:
        bpl = c.bpl_without_plc
    else:
        raise ValueError(f"no packet-loss robustness (Bpl) is known for {c.name} without concealment")

    ta = delay + ptime + c.lookahead_ms + factor * jitter
    id_nb = delay_impairment(ta)
    # G.107 eq 7-29 (and G.107.1, which keeps the constant 95).
    ie_eff = c.ie + (95 - c.ie) * loss / (loss / burst + bpl)
    if c.wideband:
        r = 129.0 - _WIDEBAND_SCALE * id_nb - ie_eff
        mos = r_to_mos(r / _WIDEBAND_SCALE)
        scale = 129.0
    else:
        r = _RO - _IS - id_nb - ie_eff
        mos = r_to_mos(r)
        scale = 100.0
    return MosEstimate(
        codec=c.name,
        mos=mos,
        r_factor=r,
        r_scale_max=scale,
        ie_eff=ie_eff,
        delay_impairment=id_nb * (_WIDEBAND_SCALE if c.wideband else 1.0),
        mouth_to_ear_ms=ta,
        packet_loss_pct=loss,
        jitter_ms=jitter,
        one_way_delay_ms=delay,
        ptime_ms=ptime,
        burst_ratio=burst,
        bpl=bpl,
    )
