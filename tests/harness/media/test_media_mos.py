"""E-model MOS estimates."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.media.mos import CODEC_IMPAIRMENTS, delay_impairment, estimate_mos, r_to_mos


def test_default_connection_rates_93_2() -> None:
    # G.107: with every parameter at its default value, R = 93.2.
    assert estimate_mos("PCMU", ptime_ms=0).r_factor == pytest.approx(93.2, abs=0.05)


def test_clean_pcmu_is_about_4_4() -> None:
    est = estimate_mos("PCMU")
    assert 4.35 <= est.mos <= 4.45
    assert est.mouth_to_ear_ms == 20.0


def test_loss_lowers_the_mos_noticeably() -> None:
    clean = estimate_mos("PCMU").mos
    five = estimate_mos("PCMU", packet_loss_pct=5).mos
    ten = estimate_mos("PCMU", packet_loss_pct=10).mos
    assert 3.7 <= five <= 4.05
    assert five <= clean - 0.4
    assert 3.2 <= ten <= 3.55  # an estimate that stays near 4.5 under 10 % loss would be useless


def test_pcma_equals_pcmu_and_plc_matters() -> None:
    assert estimate_mos("PCMA", packet_loss_pct=3).mos == estimate_mos("PCMU", packet_loss_pct=3).mos
    no_plc = estimate_mos("PCMU", packet_loss_pct=3, plc=False)
    assert no_plc.bpl == 4.3
    assert no_plc.mos < estimate_mos("PCMU", packet_loss_pct=3).mos - 0.8


def test_g722_on_the_wideband_scale() -> None:
    est = estimate_mos("G722")
    assert est.r_scale_max == 129.0
    assert 4.25 <= est.mos <= 4.4
    assert est.r_factor == pytest.approx(129 - 13 - est.delay_impairment, abs=1e-9)
    assert estimate_mos("G722", packet_loss_pct=5).mos < est.mos - 0.3
    assert estimate_mos("g722/8000").codec == "G722"


def test_delay_and_jitter_cost() -> None:
    base = estimate_mos("PCMU")
    slow = estimate_mos("PCMU", one_way_delay_ms=150, jitter_ms=20)
    assert slow.mouth_to_ear_ms == 150 + 20 + 2 * 20
    assert slow.mos < base.mos - 0.15
    assert estimate_mos("PCMU", one_way_delay_ms=400).mos < 3.7
    assert delay_impairment(0) == pytest.approx(0.15, abs=0.01)  # listener echo term at T = 0


def test_r_to_mos_curve() -> None:
    assert r_to_mos(-5) == 1.0
    assert r_to_mos(0) == 1.0
    assert r_to_mos(100) == 4.5
    assert r_to_mos(150) == 4.5
    assert r_to_mos(93.2) == pytest.approx(4.41, abs=0.005)
    values = [r_to_mos(r / 10) for r in range(0, 1001)]
    assert all(b >= a for a, b in itertools.pairwise(values))


@settings(max_examples=100, deadline=None)
@given(
    codec=st.sampled_from(sorted(CODEC_IMPAIRMENTS)),
    loss=st.floats(min_value=0, max_value=100),
    more_loss=st.floats(min_value=0, max_value=20),
    jitter=st.floats(min_value=0, max_value=200),
    delay=st.floats(min_value=0, max_value=1000),
)
def test_mos_is_bounded_and_never_improves_with_impairment(
    codec: str, loss: float, more_loss: float, jitter: float, delay: float
) -> None:
    est = estimate_mos(codec, packet_loss_pct=loss, jitter_ms=jitter, one_way_delay_ms=delay)
    assert 1.0 <= est.mos <= 4.5
    worse_loss = estimate_mos(
        codec, packet_loss_pct=min(100, loss + more_loss), jitter_ms=jitter, one_way_delay_ms=delay
    )
    worse_delay = estimate_mos(codec, packet_loss_pct=loss, jitter_ms=jitter, one_way_delay_ms=delay + 50)
    assert worse_loss.mos <= est.mos + 1e-12
    assert worse_delay.mos <= est.mos + 1e-12


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"codec": "G729"}, "known codecs: PCMU, PCMA, G722"),
        ({"packet_loss_pct": -1}, "packet_loss_pct"),
        ({"packet_loss_pct": 101}, "<= 100"),
        ({"jitter_ms": float("nan")}, "jitter_ms"),
        ({"one_way_delay_ms": -5}, "one_way_delay_ms"),
        ({"burst_ratio": 0.5}, "burst_ratio"),
        ({"codec": "G722", "plc": False}, "without concealment"),
    ],
)
def test_argument_errors(kwargs: dict, match: str) -> None:
    codec = kwargs.pop("codec", "PCMU")
    with pytest.raises(ValueError, match=match):
        estimate_mos(codec, **kwargs)


def test_bursty_loss_hurts_more() -> None:
    assert estimate_mos("PCMU", packet_loss_pct=5, burst_ratio=2).mos < estimate_mos("PCMU", packet_loss_pct=5).mos


def test_to_dict_is_json() -> None:
    data = json.loads(json.dumps(estimate_mos("PCMU", packet_loss_pct=1.5).to_dict(), allow_nan=False))
    assert data["model"] == "ITU-T G.107" and data["codec"] == "PCMU"
