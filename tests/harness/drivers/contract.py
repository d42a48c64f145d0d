"""The contract every driver meets (NAPALM style): one suite, run against each driver.

A subclass provides the module-scoped ``lab`` fixture (a started ``harness.lab.Lab`` whose inventory is
:data:`CONTRACT_INVENTORY` with its driver name) and :meth:`kill`, which makes a device's process die the
way that driver's devices die. Physical drivers will subclass it with their own lab.
"""

from __future__ import annotations

import time

import pytest

from device_profiles.user_agent import parse_user_agent
from harness.protocols import (
    CallControl,
    CallDirection,
    CallState,
    DeviceBroken,
    EventKind,
    Identity,
    InfrastructureError,
    MediaDirection,
    NotApplicable,
)

CONTRACT_INVENTORY = """\
gateway:
  mode: embedded
defaults:
  transport: {transport}
devices:
  - id: caller
    vendor: Poly
    model: VVX 450
    firmware: 5.9.5.0614
    driver: {driver}
    lines:
      - {{number: "+14255550111", name: Blake Rivera}}
  - id: callee
    vendor: Yealink
    model: T46S
    firmware: 66.86.0.15
    driver: {driver}
    transport: udp
    lines:
      - {{number: "+14255550121", name: Drew Patel}}
  - id: pager
    vendor: Algo
    model: "8301"
    firmware: "5.3"
    driver: {driver}
    transport: udp
    lines:
      - {{number: "+14255550172", name: Paging Zone 1}}
  - id: old-cisco
    vendor: Cisco
    model: "7841"
    firmware: 11.0.1MPP
    driver: {driver}
    lines:
      - {{number: "+14255550105", name: Stock Room}}
"""

T = 5.0  # deadline for every awaited event


class DriverContract:
    """Subclasses set the ``lab`` fixture and implement :meth:`kill`."""

    def kill(self, device) -> None:  # pragma: no cover - provided by subclasses
        raise NotImplementedError

    # --- helpers -------------------------------------------------------------------------------------------
    @staticmethod
    def connect(lab):
        a = lab.device("caller")[CallControl]
        b = lab.device("callee")[CallControl]
        out = a.dial(lab.device("callee").number)
        inc = b.wait_for_incoming(timeout=T)
        assert inc.direction is CallDirection.INCOMING
        assert inc.remote == lab.device("caller").number
        b.answer(inc.id)
        a.wait_for_state(out.id, CallState.CONFIRMED, timeout=T)
        b.wait_for_state(inc.id, CallState.CONFIRMED, timeout=T)
        return a, b, out, inc

    # --- the contract --------------------------------------------------------------------------------------
    def test_registered(self, lab):
        for dev_id in ("caller", "callee"):
            dev = lab.device(dev_id)
            assert dev.state == "registered"
            reg = dev[CallControl].registration(0)
            assert reg.ok and reg.status_code == 200

    def test_identity_read_back(self, lab):
        dev = lab.device("caller")
        ident = dev[Identity].identity()
        assert (ident.vendor, ident.model, ident.firmware) == ("Poly", "VVX 450", "5.9.5.0614")
        parsed = parse_user_agent(ident.user_agent)
        assert parsed is not None and parsed.model == "VVX 450"
        assert dev.identity == ident

    def test_call_answer_and_caller_hangs_up(self, lab):
        a, b, out, inc = self.connect(lab)
        assert a.call(out.id).sip_call_id
        a.hangup(out.id)
        assert b.wait_for_state(inc.id, CallState.DISCONNECTED, timeout=T).state is CallState.DISCONNECTED
        assert a.call(out.id).state is CallState.DISCONNECTED

    def test_callee_hangs_up(self, lab):
        a, b, out, inc = self.connect(lab)
        b.hangup(inc.id)
        assert a.wait_for_state(out.id, CallState.DISCONNECTED, timeout=T).state is CallState.DISCONNECTED

    def test_reject_busy(self, lab):
        a = lab.device("caller")[CallControl]
        b = lab.device("callee")[CallControl]
        out = a.dial(lab.device("callee").number)
        inc = b.wait_for_incoming(timeout=T)
        b.reject(inc.id, code=486)
        ended = a.wait_for_state(out.id, CallState.DISCONNECTED, timeout=T)
        assert ended.status_code == 486

    def test_hold_and_resume(self, lab):
        a, b, out, inc = self.connect(lab)
        try:
            before = b.last_seq()  # the call's first MEDIA events (answer) are not the hold's
            held = a.hold(out.id)
            assert held.local_hold and held.media_direction in (MediaDirection.SENDONLY, MediaDirection.INACTIVE)
            seen = b.wait_for_event(EventKind.MEDIA, call_id=inc.id, after_seq=before, timeout=T)
            assert seen is not None
            assert b.call(inc.id).remote_hold
            resumed = a.resume(out.id)
            assert not resumed.local_hold and resumed.media_direction is MediaDirection.SENDRECV
        finally:
            a.hangup(out.id)

    def test_mute_and_unmute(self, lab):
        a, _b, out, _inc = self.connect(lab)
        try:
            assert a.mute(out.id).muted
            assert not a.unmute(out.id).muted
        finally:
            a.hangup(out.id)

    def test_dtmf_reaches_the_other_side(self, lab):
        a, b, out, inc = self.connect(lab)
        try:
            a.send_dtmf(out.id, "1*9#")
            digits, seq = "", 0
            deadline = time.monotonic() + 3 * T  # RFC 4733 digits ride the RTP clock, slower on a loaded host
            while len(digits) < 4:  # each received digit is an event; walk them in order
                ev = b.wait_for_event(EventKind.DTMF, call_id=inc.id, after_seq=seq,
                                      timeout=max(0.1, deadline - time.monotonic()))
                seq, digits = ev.seq, digits + ev.detail["digit"]
            assert digits == "1*9#"
            assert "".join(d.digit for d in b.call(inc.id).dtmf_received) == "1*9#"
        finally:
            a.hangup(out.id)

    def test_unknown_number_is_refused(self, lab):
        a = lab.device("caller")[CallControl]
        out = a.dial("+19995550000")
        ended = a.wait_for_state(out.id, CallState.DISCONNECTED, timeout=T)
        assert ended.status_code == 404

    def test_unsupported_operation_is_not_applicable(self, lab):
        pager = lab.device("pager")[CallControl]
        with pytest.raises(NotApplicable) as exc:
            pager.hold("1")
        assert "paging adapter" in exc.value.reason

    def test_below_minimum_device_is_blocked(self, lab):
        old = lab.device("old-cisco")
        assert old.state == "blocked" and "below_minimum" in old.blocked_reason
        with pytest.raises(DeviceBroken, match="below the minimum"):
            old[CallControl]

    def test_dead_worker_is_an_infrastructure_error_within_5s(self, lab):
        pager = lab.device("pager")
        cc = pager[CallControl]
        self.kill(pager)
        t0 = time.monotonic()
        with pytest.raises(InfrastructureError) as exc:
            cc.wait_for_incoming(timeout=30)
        assert time.monotonic() - t0 < 5.0
        assert exc.value.device_id == "pager"
        # The device stays broken with that first cause (never retried).
        assert pager.state == "broken"
        with pytest.raises(DeviceBroken, match="InfrastructureError"):
            pager[CallControl]


def tone_level(path, hz: float, skip_s: float = 0.6) -> float:
    """Share of the recording's power at ``hz`` (0..1), judged after ``skip_s`` (a media change takes about
    0.5 s to reach the far end's recorder: jitter buffer and conference bridge)."""
    import numpy as np

    from harness.media.goertzel import hann, tone_power
    from harness.media.wav import read_wav

    audio = read_wav(path)
    x = audio.samples[int(skip_s * audio.sample_rate):]
    if len(x) < 256:
        return 0.0
    n = 256
    frames = x[: len(x) // n * n].reshape(-1, n)
    total = float(np.mean(frames ** 2)) or 1e-12
    return float(np.mean(tone_power(frames, [hz], audio.sample_rate, hann(n)))) / total if total > 1e-9 else 0.0


class AudioContract:
    """For drivers with an :class:`~harness.protocols.AudioProbe`: the far end hears the tone, not when muted."""

    def test_tone_heard_and_mute_silences_it(self, lab):
        from harness.protocols import AudioProbe

        a, _b, out, inc = DriverContract.connect(lab)
        pa = lab.device("caller")[AudioProbe]
        pb = lab.device("callee")[AudioProbe]
        try:
            pa.play_tone(out.id)
            heard = pb.record(inc.id, 1.2)
            assert tone_level(heard, pa.tone_hz) > 0.5
            a.mute(out.id)
            muted = pb.record(inc.id, 1.2)
            assert tone_level(muted, pa.tone_hz) < 0.1
        finally:
            a.hangup(out.id)
