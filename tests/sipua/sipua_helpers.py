"""Small audio checks for the sipua tests: read a recording and tell tone from silence with an FFT.

Deliberately tiny and independent of the harness's own tone detector.
"""

from __future__ import annotations

import wave

import numpy as np

SETTLE_S = 0.5  # audio right after a media change is not judged (jitter buffer, bridge reconnects)


def read_wav(path: str, skip_s: float = SETTLE_S) -> tuple[np.ndarray, int]:
    """Mono float samples in [-1, 1) after ``skip_s`` seconds, and the sample rate."""
    with wave.open(path, "rb") as w:
        assert w.getsampwidth() == 2, f"{path}: expected 16-bit PCM"
        rate = w.getframerate()
        frames = w.readframes(w.getnframes())
        channels = w.getnchannels()
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768.0
    if channels > 1:
        samples = samples.reshape(-1, channels)[:, 0]
    return samples[int(skip_s * rate):], rate


def rms_dbfs(samples: np.ndarray) -> float:
    if samples.size == 0:
        return -200.0
    rms = float(np.sqrt(np.mean(samples**2)))
    return 20 * np.log10(rms) if rms > 0 else -200.0


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    window = np.hanning(samples.size)
    spectrum = np.abs(np.fft.rfft(samples * window))
    freqs = np.fft.rfftfreq(samples.size, 1 / rate)
    spectrum[freqs < 50] = 0
    return float(freqs[int(np.argmax(spectrum))])


def band_fraction(samples: np.ndarray, rate: int, freq: float, width: float = 25.0) -> float:
    """Share of the signal's energy within ``freq`` ± ``width`` Hz."""
    window = np.hanning(samples.size)
    power = np.abs(np.fft.rfft(samples * window)) ** 2
    freqs = np.fft.rfftfreq(samples.size, 1 / rate)
    total = float(power[freqs >= 50].sum())
    if total == 0:
        return 0.0
    return float(power[(freqs >= freq - width) & (freqs <= freq + width)].sum()) / total


def describe(path: str, skip_s: float = SETTLE_S) -> str:
    samples, rate = read_wav(path, skip_s)
    return (f"{path}: {samples.size / rate:.2f} s judged, level {rms_dbfs(samples):.1f} dBFS, "
            f"dominant {dominant_hz(samples, rate):.0f} Hz")


def assert_tone(path: str, freq: float, *, min_fraction: float = 0.6, min_dbfs: float = -40.0,
                skip_s: float = SETTLE_S) -> None:
    samples, rate = read_wav(path, skip_s)
    assert samples.size >= rate * 0.3, f"{path}: only {samples.size / rate:.2f} s of audio to judge"
    level = rms_dbfs(samples)
    fraction = band_fraction(samples, rate, freq)
    assert level > min_dbfs and fraction > min_fraction, (
        f"expected a {freq:.0f} Hz tone; {describe(path, skip_s)}, {fraction:.0%} of the energy near {freq:.0f} Hz")


def assert_silent(path: str, *, max_dbfs: float = -55.0, skip_s: float = SETTLE_S) -> None:
    samples, rate = read_wav(path, skip_s)
    assert samples.size >= rate * 0.3, f"{path}: only {samples.size / rate:.2f} s of audio to judge"
    assert rms_dbfs(samples) < max_dbfs, f"expected silence; {describe(path, skip_s)}"


def connect(caller, callee, *, caller_account: str = "a", transport: str = "udp", user: str = "callee",
            headers=()) -> tuple[int, int]:
    """Call ``callee`` directly from ``caller`` (callee auto-answers) and wait until both sides are
    CONFIRMED with active media; returns (caller's call handle, callee's call handle)."""
    mark = callee.mark()
    call = caller.make_call(caller_account, callee.uri(user, transport), headers=headers)
    incoming = callee.wait_event("incoming_call", since=mark)
    theirs = incoming.data["call"]
    caller.wait_event("call_state", call=call, state="CONFIRMED")
    callee.wait_event("call_state", call=theirs, state="CONFIRMED")
    caller.wait_event("media_state", call=call, status="active")
    callee.wait_event("media_state", call=theirs, status="active")
    return call, theirs


def record_both(a, call_a: int, b, call_b: int, path_a: str, path_b: str, duration_ms: int = 1300) -> None:
    """Record what each side receives for ``duration_ms`` and wait until both files are complete."""
    ma, mb = a.mark(), b.mark()
    a.record(call_a, path_a, duration_ms=duration_ms)
    b.record(call_b, path_b, duration_ms=duration_ms)
    timeout = duration_ms / 1000 + 3
    assert a.wait_event("record_complete", since=ma, call=call_a, timeout=timeout).data["complete"]
    assert b.wait_event("record_complete", since=mb, call=call_b, timeout=timeout).data["complete"]
