"""The RTP counters' account of a path whose audio was not heard (``harness.media.rtp_path``), and the suites'
use of it: a path the emulation lost is an infrastructure error, every other stays a failure with the counters."""

from __future__ import annotations

import pytest

from harness.media import MediaOutcome, MediaVerdict
from harness.media.rtp_path import MIN_SENT, rtp_path, same_rtp_address
from harness.protocols import InfrastructureError
from test_suites._feature_helpers import account_for_silence


def stats(tx=0, rx=0, remote="127.0.0.1:4000", local="127.0.0.1:5000", last=""):
    return {"tx": {"packets": tx}, "rx": {"packets": rx}, "remote_rtp": remote, "local_rtp": local,
            "last_rx_from": last}


SPEAKER = stats(tx=60, remote="127.0.0.1:22280", local="127.0.0.1:22184")
LISTENER = stats(rx=0, remote="127.0.0.1:22184", local="127.0.0.1:22280")


@pytest.mark.parametrize("a, b, same", [
    ("127.0.0.1:22280", "127.0.0.1:22280", True),
    ("[::1]:4000", "[0:0:0:0:0:0:0:1]:4000", True),
    ("127.0.0.1:22280", "127.0.0.1:22282", False),
    ("", "127.0.0.1:1", False),
    ("host:1", "host:1", False),  # names are not addresses: not judged equal
])
def test_same_rtp_address(a, b, same):
    assert same_rtp_address(a, b) is same


def test_sent_to_the_listeners_own_loopback_address_and_none_counted_is_the_labs_fault():
    a = rtp_path("cisco-8832", SPEAKER, "pstn +12065550100", LISTENER)
    assert a is not None and a.lab_fault
    assert "sent 60 RTP packets to 127.0.0.1:22280" in a.text and "emulation lost them" in a.text
    assert a.figures["listener_rx_packets"] == 0 and a.figures["speaker_sends_to"] == "127.0.0.1:22280"


@pytest.mark.parametrize("sent, received, words", [
    (SPEAKER, stats(rx=40, local="127.0.0.1:22280", last="127.0.0.1:22184"), "RTP arrived, its audio did not"),
    (stats(tx=MIN_SENT - 1, remote="127.0.0.1:22280"), LISTENER, "sent 19 RTP packets"),
    (stats(tx=60, remote="127.0.0.1:30000"), LISTENER, "RTP went elsewhere"),
    (stats(tx=60, remote="192.0.2.7:22280"), stats(local="192.0.2.7:22280"), "and it received none"),
])
def test_every_other_account_is_not_the_labs_fault(sent, received, words):
    a = rtp_path("dev", sent, "party", received)
    assert a is not None and not a.lab_fault and words in a.text, a


def test_no_counters_no_account():
    assert rtp_path("dev", None, "party", LISTENER) is None
    assert rtp_path("dev", SPEAKER, "party", {}) is None


class Evidence:
    def __init__(self):
        self.media = []

    def add_media(self, label, verdict):
        self.media.append((label, verdict))


def one_way(speaker="cisco-8832", listener="pstn +12065550100", other_heard=True):
    paths = [{"from": speaker, "to": listener, "present": False},
             {"from": listener, "to": speaker, "present": other_heard}]
    outcome = MediaOutcome.ONE_WAY if other_heard else MediaOutcome.NO_AUDIO
    return MediaVerdict("two_way", outcome, "One-way audio: pstn does not hear cisco.", {"paths": paths})


def test_a_lost_path_becomes_an_infrastructure_error_with_the_verdict_kept_as_evidence():
    ev = Evidence()
    with pytest.raises(InfrastructureError, match="emulation lost them"):
        account_for_silence(one_way(), {"cisco-8832": SPEAKER, "pstn +12065550100": LISTENER}, ev, "two_way")
    (label, kept), = ev.media
    assert label == "two_way" and "RTP counters:" in kept.reason and kept.figures["rtp"][0]["lab_fault"]


def test_a_real_path_failure_stays_a_failure_with_the_counters_in_its_reason():
    ev = Evidence()
    elsewhere = stats(tx=60, remote="127.0.0.1:30000")
    v = account_for_silence(one_way(), {"cisco-8832": elsewhere, "pstn +12065550100": LISTENER}, ev, "two_way")
    assert v.outcome is MediaOutcome.ONE_WAY and "RTP went elsewhere" in v.reason and ev.media == []


def test_no_audio_is_the_labs_fault_only_when_both_paths_are():
    ev = Evidence()
    both = {"cisco-8832": SPEAKER, "pstn +12065550100": LISTENER}  # the PSTN sent nothing back: not the lab's
    v = account_for_silence(one_way(other_heard=False), both, ev, "two_way")
    assert v.outcome is MediaOutcome.NO_AUDIO and v.reason.count("RTP counters:") == 1


def test_without_counters_or_for_other_outcomes_the_verdict_is_unchanged():
    v = one_way()
    assert account_for_silence(v, {"cisco-8832": None, "pstn +12065550100": None}, Evidence(), "x") is v
    ok = MediaVerdict("two_way", MediaOutcome.PASS, "fine", {})
    assert account_for_silence(ok, {}, Evidence(), "x") is ok
