"""Drive two emulated devices through the embedded gateway with the Lab facade — no pytest.

    .venv/bin/python examples/two_emulated_devices.py [INVENTORY] [CALLER_ID] [CALLEE_ID]

Starts the embedded gateway on loopback, registers the two devices (from ``lab_inventory.yaml`` by default),
calls from one to the other, checks that each side hears the other's tone, holds and resumes, sends DTMF,
hangs up, and prints what was observed at each step. Exit status 0 when every check held, 1 otherwise.
"""

from __future__ import annotations

import sys
import tempfile


def tone_share(path, hz: float, skip_s: float = 0.6) -> float:
    """Share of the recording's power at ``hz``, judged after ``skip_s`` (jitter buffer fill)."""
    import numpy as np

    from harness.media.goertzel import hann, tone_power
    from harness.media.wav import read_wav

    audio = read_wav(path)
    x = audio.samples[int(skip_s * audio.sample_rate):]
    n = 256
    frames = x[: len(x) // n * n].reshape(-1, n)
    if not len(frames):
        return 0.0
    total = float(np.mean(frames ** 2))
    return float(np.mean(tone_power(frames, [hz], audio.sample_rate, hann(n)))) / total if total > 1e-9 else 0.0


def main(argv: list[str]) -> int:
    from harness import steps
    from harness.lab import Lab
    from harness.protocols import AudioProbe, CallControl, CallState, EventKind

    inventory = argv[1] if len(argv) > 1 else "lab_inventory.yaml"
    caller_id = argv[2] if len(argv) > 2 else "poly-vvx450"
    callee_id = argv[3] if len(argv) > 3 else "yealink-t46s"
    steps.subscribe(lambda ev: print(f"      {ev.device_id or '-':<14} {ev.name:<24} "
                                     f"{'ok' if ev.ok else 'FAILED ' + str(ev.error)} ({ev.duration_s * 1000:.0f} ms)"))
    failures = 0

    def check(what: str, ok: bool) -> None:
        nonlocal failures
        failures += not ok
        print(f"{'PASS' if ok else 'FAIL'}  {what}")

    with tempfile.TemporaryDirectory(prefix="sipgw-example-") as data_dir, \
            Lab.from_inventory(inventory, gateway="embedded", data_dir=data_dir, devices=[caller_id, callee_id],
                               media=None, lazy=False, control_api=False) as lab:
        caller, callee = lab.device(caller_id), lab.device(callee_id)
        for dev in (caller, callee):
            ua = dev.identity.user_agent if dev.identity else None
            check(f"{dev.id} registered ({[r.status_code for r in dev.registrations]}), User-Agent {ua!r}",
                  dev.state == "registered")
        if failures:
            return 1
        a, b = caller[CallControl], callee[CallControl]
        out = a.dial(callee.number)
        inc = b.wait_for_incoming(timeout=5)
        check(f"{callee.id} rings; the caller is shown as {inc.remote}", inc.remote == caller.number)
        b.answer(inc.id)
        up = a.wait_for_state(out.id, CallState.CONFIRMED, timeout=5)
        check(f"call confirmed, SIP Call-ID {up.sip_call_id}", up.state is CallState.CONFIRMED)
        pa, pb = caller[AudioProbe], callee[AudioProbe]
        pa.play_tone(out.id)
        pb.play_tone(inc.id)
        heard_b = tone_share(pb.record(inc.id, 1.2), pa.tone_hz)
        heard_a = tone_share(pa.record(out.id, 1.2), pb.tone_hz)
        check(f"{callee.id} hears {pa.tone_hz:.0f} Hz (share {heard_b:.2f})", heard_b > 0.5)
        check(f"{caller.id} hears {pb.tone_hz:.0f} Hz (share {heard_a:.2f})", heard_a > 0.5)
        held = a.hold(out.id)
        check(f"hold: caller media {held.media_direction}", held.local_hold)
        resumed = a.resume(out.id)
        check(f"resume: caller media {resumed.media_direction}", not resumed.local_hold)
        mark = b.last_seq()
        a.send_dtmf(out.id, "42#")
        got = ""
        while len(got) < 3:  # each received digit is an event; walk them in order
            ev = b.wait_for_event(EventKind.DTMF, call_id=inc.id, after_seq=mark, timeout=5)
            mark, got = ev.seq, got + ev.detail["digit"]
        check(f"DTMF received by {callee.id}: {got}", got == "42#")
        a.hangup(out.id)
        ended = b.wait_for_state(inc.id, CallState.DISCONNECTED, timeout=5)
        check(f"{callee.id} sees the hang-up ({ended.status_code} {ended.reason})", not ended.active)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
