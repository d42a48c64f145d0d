"""Helpers of the call-feature suites: listening on several legs at once, and reading the gateway's trace.

Every verdict these helpers feed comes from observed events: recordings analysed with ``harness.media``
(each leg hears what it hears, from the moment the check starts), SIP messages from the gateway's trace
(``GET /api/v1/trace?call=<B2BUA call>``), call states read back from the devices and the media node.
"""

from __future__ import annotations

import io
import re
import tempfile
import time
import wave
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.media import AudioReport, DetectorConfig, MediaOutcome, MediaVerdict, ToneDetector, read_wav
from harness.media.rtp_path import rtp_path
from harness.protocols import AudioProbe, CallControl, CallState, InfrastructureError, OperationTimeout

CONFIRMED = CallState.CONFIRMED
ENDED = CallState.DISCONNECTED
#: Seconds each leg listens for one audio check, and the least analysed audio a verdict needs.
LISTEN_S = 0.8
MIN_ANALYSED_S = 0.5
#: Audio skipped at the start of every check (jitter buffer filling, a re-INVITE's media switch settling).
SETTLE_S = 0.15
#: Audio skipped after a media change (hold, resume, a new call, a conference joined): the detector's own
#: ``change_settle_s``, time for the re-INVITE's media switch and the jitter buffer to settle.
AFTER_CHANGE_S = 0.5
_DIRECTION = re.compile(r"^a=(sendrecv|sendonly|recvonly|inactive)\s*$", re.M)


def wait_until(predicate: Callable[[], Any], *, timeout: float, what: str | Callable[[], str],
               poll_s: float = 0.03) -> Any:
    """Poll ``predicate`` until it returns something truthy; ``TimeoutError`` naming ``what`` at the deadline
    (``what`` may be a function, to name what was seen last)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what() if callable(what) else what}: not observed within {timeout:.1f} s")
        time.sleep(poll_s)


# --- listening --------------------------------------------------------------------------------------------


@dataclass
class Ear:
    """One leg that records what it hears: a device's call, or a media-node party's call."""

    name: str
    tone_hz: float
    device: Any = None
    call_id: str | None = None
    party: Any = None
    call: dict | None = None


def device_ear(device, call_id: str) -> Ear:
    return Ear(device.id, device[AudioProbe].tone_hz, device=device, call_id=call_id)


def party_ear(party, call: dict) -> Ear:
    return Ear(f"{party.kind} {party.identity}", party.tone_hz, party=party, call=call)


def _wav_seconds(data: bytes) -> float:
    try:
        with wave.open(io.BytesIO(data)) as w:
            return w.getnframes() / float(w.getframerate())
    except (wave.Error, EOFError):
        return 0.0


def listen(ears: Iterable[Ear], evidence, label: str, *, seconds: float = LISTEN_S, deadline: float = 5.0,
           tones: Iterable[float] = (), settle_s: float = SETTLE_S) -> dict[str, AudioReport]:
    """Every ear listens for the same ``seconds``; the report of what each heard from now on, by name.

    Devices record for ``settle_s`` + ``seconds``; a media-node party's continuous recording is cut from its
    length now plus ``settle_s`` to that plus ``seconds`` (waited for, never slept). The recordings go into the
    test's evidence.
    """
    ears = list(ears)
    detector = ToneDetector(DetectorConfig(settle_s=settle_s))
    targets = sorted({*(e.tone_hz for e in ears), *tones})
    marks = {e.name: _wav_seconds(e.party.wait_recording(e.call)) for e in ears if e.party is not None}
    devices = [e for e in ears if e.device is not None]
    paths: dict[str, Path] = {}
    if devices:
        with ThreadPoolExecutor(len(devices)) as pool:
            futures = {e.name: pool.submit(e.device[AudioProbe].record, e.call_id, seconds + settle_s)
                       for e in devices}
            paths = {name: f.result() for name, f in futures.items()}
    reports: dict[str, AudioReport] = {}
    for e in ears:
        if e.device is not None:
            evidence.add_file(f"{label}-{e.name}-heard", paths[e.name])
            reports[e.name] = detector.analyse_wav(paths[e.name], targets)
            continue
        want = marks[e.name] + seconds + settle_s
        data = wait_until(lambda e=e, want=want: (d := e.party.recording(e.call)) and _wav_seconds(d) >= want - 0.02
                          and d, timeout=deadline, what=f"{e.name}: {seconds:.1f} s more of recording")
        evidence.add_bytes(f"{label}-{e.name}-heard", f"{label}-{e.name.replace(' ', '_')}.wav", data)
        with tempfile.TemporaryDirectory(prefix="sipgw-ear-") as tmp:
            path = Path(tmp) / "heard.wav"
            path.write_bytes(data)
            audio = read_wav(path)
        end = len(audio.samples) / audio.sample_rate
        reports[e.name] = detector.analyse_audio(audio, targets,
                                                 window=(min(marks[e.name] + settle_s, end), end))
    return reports


def conclusive(verdict: MediaVerdict, evidence, label: str, ears: Iterable[Ear] = ()) -> MediaVerdict:
    """Record the verdict; too little audio to judge says nothing about the device: a lab error (retried).

    With ``ears``, a one-way or no-audio verdict also gets each unheard path's RTP counters read back from both
    ends (:func:`account_for_silence`)."""
    if ears and verdict.outcome in (MediaOutcome.ONE_WAY, MediaOutcome.NO_AUDIO):
        verdict = account_for_silence(verdict, {e.name: ear_rtp_stats(e) for e in ears}, evidence, label)
    evidence.add_media(label, verdict)
    if verdict.outcome == MediaOutcome.INCONCLUSIVE:
        raise InfrastructureError(f"audio check {label} was inconclusive: {verdict.reason}")
    return verdict


def two_way(ears: list[Ear], evidence, label: str, *, settle_s: float = SETTLE_S) -> MediaVerdict:
    """Both ears listen at once and each must hear the other's tone (``judge_two_way``); conclusive, with the RTP
    counters of a path not heard."""
    from harness.media import judge_two_way

    a, b = ears
    rep = listen(ears, evidence, label, settle_s=settle_s)
    verdict = judge_two_way(rep[a.name], rep[b.name], a.tone_hz, b.tone_hz, a_name=a.name, b_name=b.name,
                            min_analysed_s=MIN_ANALYSED_S)
    return conclusive(verdict, evidence, label, ears)


def ear_rtp_stats(ear: Ear) -> Mapping[str, Any] | None:
    """The RTP counters of an ear's call as its end reports them; None when it cannot say."""
    try:
        if ear.device is not None:
            return ear.device[AudioProbe].rtp_stats(ear.call_id)
        return ear.party.rtp_stats(ear.call)
    except Exception:  # counters are an explanation, never a reason for a check to fail
        return None


def account_for_silence(verdict: MediaVerdict, stats: Mapping[str, Mapping[str, Any] | None], evidence,
                        label: str) -> MediaVerdict:
    """A one-way or no-audio verdict with each unheard path's RTP counters (``harness.media.rtp_path``) in its
    reason and figures. When every unheard path is one the emulation lost (RTP sent to the listener's own
    loopback RTP address, none of it counted), the verdict goes to the evidence and the check raises
    ``InfrastructureError``: the run retries it and a pass on retry is reported as flaky."""
    if verdict.outcome not in (MediaOutcome.ONE_WAY, MediaOutcome.NO_AUDIO):
        return verdict
    unheard = [(p["from"], p["to"]) for p in verdict.figures.get("paths", ())
               if isinstance(p, Mapping) and {"from", "to"} <= p.keys() and not p.get("present")]
    accounts = [a for s, li in unheard if (a := rtp_path(s, stats.get(s), li, stats.get(li))) is not None]
    if not accounts:
        return verdict
    figures = {**verdict.figures,
               "rtp": [{**a.figures, "account": a.text, "lab_fault": a.lab_fault} for a in accounts]}
    told = MediaVerdict(verdict.check, verdict.outcome,
                        f"{verdict.reason} RTP counters: {'; '.join(a.text for a in accounts)}.", figures)
    if len(accounts) == len(unheard) and all(a.lab_fault for a in accounts):
        evidence.add_media(label, told)
        raise InfrastructureError(f"audio check {label}: {'; '.join(a.text for a in accounts)}")
    return told


# --- devices and parties ------------------------------------------------------------------------------------


def line_for(device) -> int:
    """The line a suite uses: an ATA's last usable port (a line other than the first), else line 0."""
    return len(device.lines) - 1 if device.profile.kind == "ata" else 0


def connect_to_party(device, party, t: float, *, line: int = 0, evidence=None):
    """The device calls ``party`` (auto-answering); both legs confirmed. Returns (device call, party call), both
    added to ``evidence`` when given."""
    calls = device[CallControl]
    out = calls.dial(party.number, line=line)
    far = party.wait_incoming(state="confirmed", timeout=t)
    out = calls.wait_for_state(out.id, CONFIRMED, timeout=t)
    return _in_evidence(evidence, out, far)


def receive_from_party(device, party, t: float, *, evidence=None):
    """``party`` calls the device; the device answers. Returns (device call, party call), both confirmed and
    added to ``evidence`` when given."""
    calls = device[CallControl]
    origin = party.call(device.number)
    incoming = calls.wait_for_incoming(timeout=t)
    calls.answer(incoming.id)
    incoming = calls.wait_for_state(incoming.id, CONFIRMED, timeout=t)
    origin = party.wait_state(origin, "confirmed", timeout=t)
    return _in_evidence(evidence, incoming, origin)


def _in_evidence(evidence, *calls):
    if evidence is not None:
        for call in calls:
            evidence.add_call(call)
    return calls


def party_media(party, call: dict, directions: set[str], t: float, what: str) -> dict:
    """Wait until the media node's leg reports one of ``directions`` as its negotiated SDP direction."""
    return wait_until(lambda: (c := party.refresh(call)).get("media", {}).get("direction") in directions and c,
                      timeout=t, what=f"{party.kind} {party.identity}: {what} (media direction {directions})")


def hang_up_all(device, *calls_of_parties) -> None:
    """End whatever is still up (the gateway reset would too; this keeps the device's own view tidy)."""
    cc = device[CallControl]
    for info in cc.calls():
        if info.active:
            try:
                cc.hangup(info.id)
            except Exception:  # the call may end by itself meanwhile
                pass


# --- the gateway's view ------------------------------------------------------------------------------------


def gateway_call(control, sip_call_id: str, t: float) -> dict:
    """The B2BUA call (live or ended) that has a leg with ``sip_call_id``."""

    def find():
        for ended in (False, True):
            for rec in control.calls(ended=ended):
                if sip_call_id in rec.get("sip_call_ids", ()):
                    return rec
        return None

    return wait_until(find, timeout=t, what=f"the gateway's call with leg {sip_call_id}")


def trace_of(control, sip_call_id: str, t: float) -> list[dict]:
    """Every SIP message of every leg of the gateway call that has ``sip_call_id``, in order."""
    return control.trace(call=gateway_call(control, sip_call_id, t)["id"])


def sdp_direction(message: str) -> str | None:
    """The session's first ``a=`` direction attribute (RFC 3264 §5.1; none means sendrecv), None without SDP."""
    _head, sep, body = message.partition("\r\n\r\n")
    if not sep or "v=0" not in body:
        return None
    m = _DIRECTION.search(body.replace("\r\n", "\n"))
    return m.group(1) if m else "sendrecv"


def _has_to_tag(message: str) -> bool:
    m = re.search(r"^(?:To|t):(.*)$", message, re.M | re.I)
    return bool(m and ";tag=" in m.group(1).replace(" ", ""))


def reinvites(entries: list[dict], after_seq: int = 0, *, direction: str | None = None,
              call_id: str | None = None) -> list[dict]:
    """Re-INVITEs (INVITEs with a To tag, RFC 3261 §14) and their SDP direction, in trace order; only those the
    gateway received (``direction="in"``) or sent (``"out"``), and only of one Call-ID, when asked."""
    out = []
    for e in entries:
        if e["seq"] <= after_seq or not e["first_line"].startswith("INVITE "):
            continue
        if (direction is not None and e["direction"] != direction) or (call_id is not None and e["call_id"] != call_id):
            continue
        if _has_to_tag(e["message"]):
            out.append({**e, "sdp_direction": sdp_direction(e["message"])})
    return out


def responses(entries: list[dict], status: int, method: str = "INVITE", after_seq: int = 0) -> list[dict]:
    out = []
    for e in entries:
        if e["seq"] <= after_seq or not e["first_line"].startswith(f"SIP/2.0 {status} "):
            continue
        if re.search(rf"^CSeq:\s*\d+\s+{method}\s*$", e["message"], re.M | re.I):
            out.append({**e, "sdp_direction": sdp_direction(e["message"])})
    return out


def header(message: str, name: str) -> str | None:
    m = re.search(rf"^{name}:\s*(.*?)\s*$", message, re.M | re.I)
    return m.group(1) if m else None


def last_seq(control) -> int:
    entries = control.trace(limit=1)
    return entries[-1]["seq"] if entries else 0


def drain_stale(*devices) -> None:
    """Calls that rang at these devices before this test (an earlier test's, e.g. one a device redirected) are
    taken off their lists of new calls, so the next incoming call a test waits for is its own."""
    for d in devices:
        calls = d[CallControl]
        for _ in range(100):
            try:
                calls.wait_for_incoming(timeout=0.0)
            except (OperationTimeout, TimeoutError):
                break
