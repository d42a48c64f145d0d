"""The plugin's fixtures: the session's lab, a cheap reset per test, devices, helper parties, evidence.

``lab`` is session-scoped (one per xdist worker: its own embedded gateway on ephemeral loopback ports);
``sipgw_lab_factory`` builds it and is the one fixture a physical lab or a test overrides in its conftest.
Every deadline a suite waits on goes through ``sipgw_settings.deadline(seconds)`` (the ``--slowness`` factor).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.pytest_plugin.evidence import EvidenceCollector
from harness.pytest_plugin.options import Settings
from harness.pytest_plugin.outcomes import Blocked
from harness.pytest_plugin.state import STATE


@pytest.fixture(scope="session")
def sipgw_settings(pytestconfig: pytest.Config) -> Settings:
    return pytestconfig.stash[STATE].settings


@pytest.fixture(scope="session")
def sipgw_inventory(pytestconfig: pytest.Config):
    return pytestconfig.stash[STATE].inventory()


@pytest.fixture(scope="session")
def sipgw_lab_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Settings], Any]:
    """Builds the (not yet started) lab for the session. Override it to bring your own lab."""

    def make(settings: Settings):
        from harness.lab import Lab

        return Lab.from_inventory(str(settings.inventory), gateway=settings.gateway,
                                  data_dir=tmp_path_factory.mktemp("sipgw-gateway"), slowness=settings.slowness)

    return make


@pytest.fixture(scope="session")
def lab(sipgw_lab_factory, sipgw_settings: Settings, pytestconfig: pytest.Config) -> Iterator[Any]:
    """The lab of this session (or xdist worker): gateway started on loopback, stopped at the end."""
    the_lab = sipgw_lab_factory(sipgw_settings)
    t0, cpu0 = time.monotonic(), time.process_time()
    the_lab.start()
    state = pytestconfig.stash[STATE]
    try:
        from harness.pytest_plugin.hooks import gateway_build_of

        state.gateway_build = state.gateway_build or gateway_build_of(the_lab)
        state.lab = the_lab
        yield the_lab
    finally:
        state.lab = None
        gateway_cpu = _gateway_thread_cpu_s(the_lab)
        the_lab.stop()
        if state.run_dir is not None:
            _write_lab_figures(state.run_dir, {"pid": os.getpid(), "wall_s": round(time.monotonic() - t0, 3),
                                               "process_cpu_s": round(time.process_time() - cpu0, 3),
                                               "gateway_thread_cpu_s": gateway_cpu})


def _gateway_thread_cpu_s(the_lab) -> float | None:
    """CPU seconds used so far by the embedded gateway's thread (from /proc, by its native thread id)."""
    thread = getattr(getattr(the_lab, "gateway", None), "_thread", None)
    tid = getattr(thread, "native_id", None)
    if tid is None:
        return None
    try:
        with open(f"/proc/self/task/{tid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 3)


def _write_lab_figures(run_dir: Path, figures: dict) -> None:
    """Per-process lab figures for bench/lab_run.py (one file per pytest process: no write is shared)."""
    try:
        folder = run_dir / "figures"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"lab-{figures['pid']}.json").write_text(json.dumps(figures), encoding="utf-8")
    except OSError:
        pass


@pytest.fixture
def sipgw_reset(lab) -> None:
    """The cheap per-test reset: ``POST /api/v1/reset`` ends calls, clears traces, restores default policies."""
    control = getattr(lab, "control", None)
    if control is None:
        return
    reset = getattr(control, "reset", None)
    if callable(reset):
        reset()
    else:
        http = getattr(control, "_http", None)
        if http is not None:
            http.post("/api/v1/reset", json={}).raise_for_status()


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> Iterator[EvidenceCollector]:
    """Steps, SIP Call-IDs, media figures and files of this test; finalised by the plugin after the call phase."""
    spec = getattr(getattr(request.node, "callspec", None), "params", {}).get("device")
    collector = EvidenceCollector(request.node.nodeid, device_id=getattr(spec, "id", None))
    collector.start()
    try:
        yield collector
    finally:
        collector.stop()


def release_device(lab, device_id: str) -> None:
    """Close a lazily started device whose tests are done on this process (its worker process exits).

    The lab starts it again on its next ``lab.device(id)``; what was read back (identity) is kept.
    """
    dev = getattr(lab, "devices", {}).get(device_id)
    driver = getattr(dev, "driver", None)
    if dev is None or driver is None or not hasattr(dev, "strategy"):
        return
    with dev.lock:
        try:
            driver.deactivate()
        finally:
            dev.driver = None
            dev.strategy = None


def device_handle(lab, device_id: str):
    """The lab's handle of a device, started on first use when the lab supports that."""
    getter = getattr(lab, "device", None)
    if callable(getter):
        handle = getter(device_id)
        if getattr(handle, "blocked", False) is True:  # e.g. a model the emulator cannot drive
            raise Blocked(str(getattr(handle, "blocked_reason", "") or "the lab cannot drive this device"),
                          device_id=device_id)
        return handle
    try:
        return lab.devices[device_id]
    except KeyError:
        raise Blocked(f"device {device_id} is not part of this lab ({', '.join(lab.devices)})",
                      device_id=device_id) from None


@pytest.fixture
def sipgw_repeat(request: pytest.FixtureRequest) -> int:
    """Which repetition of ``--repeat N`` this is (1-based); 1 without the option."""
    return getattr(request, "param", 1)


@pytest.fixture
def device(request: pytest.FixtureRequest, lab, sipgw_reset, evidence: EvidenceCollector):
    """The device under test (parametrized over the inventory; test ids ``vendor-model-id``)."""
    spec = getattr(request, "param", None)
    if spec is None:
        raise pytest.UsageError("the device fixture is parametrized by the sipgw-lab plugin over the inventory")
    return device_handle(lab, spec.id)


def dtmf_method_of(spec) -> str | None:
    """A device's default DTMF method (``rfc4733`` | ``info``) from the catalogue (``device_profiles/dtmf.yaml``)."""
    from device_profiles.dtmf import default_dtmf_defaults

    d = default_dtmf_defaults().lookup(spec.profile.vendor, spec.profile.kind)
    return d.method if d is not None else None


def reports_dtmf_received(spec) -> bool:
    """Whether the device's driver reads back the digits the device received (``CallInfo.dtmf_received``): the
    driver class's ``reports_dtmf_received`` (vendor control APIs report none)."""
    from harness.drivers.registry import driver_class

    try:
        return bool(getattr(driver_class(spec.driver), "reports_dtmf_received", True))
    except Exception:  # an unknown driver is reported when the device starts; here it just is not preferred
        return False


def _helper(request: pytest.FixtureRequest, lab, sipgw_inventory, *, same_dtmf: bool, reads_digits: bool = False):
    """Another device that makes and receives calls, preferring one whose DTMF method is (``same_dtmf``) or is not
    the device's; with ``reads_digits``, one whose driver reports received digits before anything else; inventory
    order otherwise."""
    from device_profiles.capabilities import applicability

    me = request.node.callspec.params["device"]
    mine = dtmf_method_of(me)
    candidates = [spec for spec in sipgw_inventory.devices
                  if spec.id != me.id and spec.verdict.acceptable
                  and applicability(spec.profile, "make_calls") and applicability(spec.profile, "receive_calls")]
    if not candidates:
        raise Blocked("the inventory has no second device with usable firmware that makes and receives calls",
                      device_id=me.id)
    spec = min(candidates, key=lambda s: (reads_digits and not reports_dtmf_received(s),
                                          (dtmf_method_of(s) == mine) != same_dtmf))  # stable: first of the best
    request.config.stash[STATE].helpers.add(spec.id)
    return device_handle(lab, spec.id)


def representative_device(config: pytest.Config, feature: str) -> str | None:
    """The run's representative device for ``feature`` (a seed feature id, or a sub-feature such as
    ``teams_meetings.dial_out``): the first selected device, in inventory order, with an acceptable firmware
    verdict to which the feature applies. Every worker computes the same one."""
    from device_profiles.capabilities import applicability

    for spec in config.stash[STATE].selected_devices():
        if spec.verdict.acceptable and applicability(spec.profile, feature.split(".")[0]) and \
                applicability(spec.profile, feature):
            return spec.id
    return None


def gateway_side_only(request: pytest.FixtureRequest, feature: str | None = None) -> str:
    """A gateway-side variation (what is checked does not depend on the device beyond what the device's other
    tests check): it runs once, on the run's representative device; on every other device the test is not
    applicable with that reason. Returns the representative's id."""
    from harness.protocols import NotApplicable

    if feature is None:
        from harness.pytest_plugin.markers import feature_of

        feature = feature_of(request.node)
    spec = getattr(getattr(request.node, "callspec", None), "params", {}).get("device")
    chosen = representative_device(request.config, feature) if feature else None
    if spec is None or chosen != spec.id:
        raise NotApplicable("a gateway-side variation (the device's part is checked by its other tests): it runs "
                            f"once, on the run's representative device {chosen or '(none eligible in this run)'}",
                            feature=(feature or "").split(".")[0] or None, device_id=getattr(spec, "id", None))
    return chosen


@pytest.fixture
def gateway_side(request: pytest.FixtureRequest) -> str:
    """Only on the run's representative device for the test's feature (:func:`gateway_side_only`); ask for it
    first, so that no other fixture sets anything up on the devices where the test does not run."""
    return gateway_side_only(request)


@pytest.fixture
def other_device(request: pytest.FixtureRequest, lab, device, sipgw_inventory):
    """Another device of the inventory to call or be called by: usable firmware, calls apply, not the DUT; one with
    the device's DTMF method when there is one, so the call is not anchored for DTMF interworking."""
    return _helper(request, lab, sipgw_inventory, same_dtmf=True)


@pytest.fixture
def other_dtmf_device(request: pytest.FixtureRequest, lab, device, sipgw_inventory):
    """Like ``other_device``, but preferring a device whose driver reports the digits it receives, then one whose
    DTMF method differs from the device's (the gateway converts between them)."""
    return _helper(request, lab, sipgw_inventory, same_dtmf=False, reads_digits=True)


@dataclass
class MediaParty:
    """A gateway-side party hosted by the media node: a Teams user's Teams client or a PSTN number.

    Wraps ``ControlClient.media``; calls are the media API's dicts (``id``, ``state``, ``sip_call_id``, ...).
    """

    media: Any
    kind: str  # "teams" | "pstn"
    identity: str  # user name for Teams, E.164 number for PSTN
    tone_hz: float
    number: str | None = None
    settings: Settings | None = None
    calls: list[dict] = field(default_factory=list)

    def _t(self, seconds: float) -> float:
        return self.settings.deadline(seconds) if self.settings else seconds

    def configure(self, answer: str = "auto", *, answer_delay_ms: int = 0) -> dict:
        return self.media.set_party(self.kind, self.identity, answer=answer, answer_delay_ms=answer_delay_ms,
                                    tone_hz=self.tone_hz)

    def call(self, number: str) -> dict:
        """Originate a call from this party to ``number``."""
        origin = {"kind": "teams", "user": self.identity} if self.kind == "teams" else \
            {"kind": "pstn", "number": self.identity}
        c = self.media.originate(origin, number, tone_hz=self.tone_hz)
        self.calls.append(c)
        return c

    def wait_incoming(self, *, state: str = "confirmed", timeout: float = 10.0) -> dict:
        c = self.media.wait_call(self.identity, state=state, timeout=self._t(timeout))
        self.calls.append(c)
        return c

    def wait_state(self, call: dict, state: str, *, timeout: float = 10.0) -> dict:
        return self.media.wait_state(call["id"], state, timeout=self._t(timeout))

    def refresh(self, call: dict) -> dict:
        return self.media.call(call["id"])

    def hangup(self, call: dict) -> dict:
        return self.media.hangup(call["id"])

    def recording(self, call: dict) -> bytes:
        return self.media.recording(call["id"])

    def rtp_stats(self, call: dict) -> dict | None:
        """The media node's RTP counters of the call (read afresh), None when it has none."""
        media = self.media.call(call["id"]).get("media") or {}
        return media if "tx" in media and "rx" in media else None

    def wait_recording(self, call: dict, *, timeout: float = 5.0) -> bytes:
        """What the party heard so far, waiting (until the deadline) for its recorder to have started."""

        def fetch() -> bytes | None:
            try:
                return self.media.recording(call["id"])
            except Exception as exc:  # 404 no_recording until the recorder is attached to the answered call
                if getattr(exc, "code", None) == "no_recording":
                    return None
                raise

        return wait_until(fetch, timeout=self._t(timeout), what=f"{self.kind} {self.identity}: recording of "
                                                                 f"call {call['id']}")


def _media_of(lab) -> Any:
    control = getattr(lab, "control", None)
    media = getattr(control, "media", None)
    if media is None:
        raise Blocked("this lab has no media node (ControlClient.media): Teams and PSTN parties are unavailable")
    return media


# Tones of the helper parties: distinct from each other and from the devices' default plan.
TEAMS_TONE_HZ = 1990.0
PSTN_TONE_HZ = 530.0


def _party_from_lab(lab, getter_name: str) -> Any:
    parties = getattr(lab, "parties", None)
    getter = getattr(parties, getter_name, None)
    return getter() if callable(getter) else None


@pytest.fixture
def teams_user(lab, sipgw_settings: Settings, sipgw_reset) -> MediaParty:
    """A Teams user with a phone number, whose Teams client is hosted by the media node."""
    media = _media_of(lab)
    found = _party_from_lab(lab, "teams_user")
    if found is None:
        raise Blocked("the lab has no Teams user without a SIP device (lab.parties.teams_user())")
    username = _field(found, "username", "user", "identity")
    number = _field(found, "number")
    party = MediaParty(media, "teams", username, TEAMS_TONE_HZ, number=number, settings=sipgw_settings)
    party.configure("auto")
    return party


@pytest.fixture
def pstn_party(lab, sipgw_settings: Settings, sipgw_reset) -> MediaParty:
    """A PSTN number outside the tenant, hosted by the media node."""
    media = _media_of(lab)
    found = _party_from_lab(lab, "pstn_party")
    number = _field(found, "number", "identity") if found is not None else "+12065550199"
    party = MediaParty(media, "pstn", number, PSTN_TONE_HZ, number=number, settings=sipgw_settings)
    party.configure("auto")
    return party


def _field(obj: Any, *names: str) -> Any:
    for n in names:
        if isinstance(obj, dict) and obj.get(n):
            return obj[n]
        if getattr(obj, n, None):
            return getattr(obj, n)
    if isinstance(obj, str):
        return obj
    raise Blocked(f"lab party {obj!r} has none of {', '.join(names)}")


def wait_until(predicate: Callable[[], Any], *, timeout: float, what: str, poll_s: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns a truthy value; ``TimeoutError`` naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not observed within {timeout:.1f} s")
        time.sleep(poll_s)
