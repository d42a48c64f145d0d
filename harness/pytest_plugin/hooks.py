"""The plugin's hooks: configuration, parametrization over the inventory, outcomes, reruns, reports.

State lives in ``config.stash`` (:mod:`harness.pytest_plugin.state`). Under pytest-xdist every worker runs its
own lab (its own embedded gateway on ephemeral loopback ports, and only the devices whose tests it receives —
``--dist loadgroup`` keeps one device's tests on one worker); the controller alone merges the results and writes
the matrix and its renderings.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from _pytest.runner import runtestprotocol

from harness.outcomes import Outcome
from harness.protocols import DeviceBroken, NotApplicable
from harness.pytest_plugin import hookspecs, markers
from harness.pytest_plugin.options import settings_from_config
from harness.pytest_plugin.outcomes import STATUS, Blocked, RerunBudget, classify, is_infrastructure
from harness.pytest_plugin.state import STATE, PluginState, budget_path_for, new_run_id

PHASES = pytest.StashKey[dict]()
ATTEMPTS = pytest.StashKey[list]()
EVIDENCE = pytest.StashKey[dict]()
ATTEMPT = pytest.StashKey[int]()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def state_of(config: pytest.Config) -> PluginState:
    return config.stash[STATE]


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    markers.register(config)
    settings = settings_from_config(config)
    worker = is_worker(config)
    if worker:
        wi = config.workerinput  # type: ignore[attr-defined]
        run_id = wi.get("sipgw_run_id") or new_run_id()
        started = datetime.fromisoformat(wi["sipgw_started_at"]) if "sipgw_started_at" in wi else datetime.now(UTC)
        budget = RerunBudget(settings.rerun_budget, wi.get("sipgw_budget_path"))
        command_line = wi.get("sipgw_command_line", "")
    else:
        run_id = config.option.sipgw_run_id or new_run_id()
        started = datetime.now(UTC)
        budget = RerunBudget(settings.rerun_budget, budget_path_for(run_id))
        command_line = " ".join(shlex.quote(a) for a in [sys.argv[0], *config.invocation_params.args])
    state = PluginState(settings=settings, run_id=run_id, started_at=started, budget=budget, is_worker=worker,
                        command_line=config.getoption("sipgw_command_line", None) or command_line)
    config.stash[STATE] = state
    if worker:
        folder = config.workerinput.get("sipgw_worker_dir")  # type: ignore[attr-defined]
        if folder:
            from harness.pytest_plugin.crash import WorkerFiles

            state.worker_files = WorkerFiles(Path(folder), config.workerinput["workerid"])  # type: ignore[attr-defined]
            state.worker_files.enable_faulthandler()
    elif getattr(config.option, "numprocesses", None):
        _register_crash_handler(config, state)
    if not worker:
        from harness.pytest_plugin.collect import MatrixCollector

        config.pluginmanager.register(MatrixCollector(config, state), "sipgw-matrix")
        if settings.live:
            from harness.pytest_plugin.progress import LiveProgress

            stream = next((p.sipgw_live_stream for p in config.pluginmanager.get_plugins()
                           if getattr(p, "sipgw_live_stream", None) is not None), None)
            config.pluginmanager.register(LiveProgress(config, state, stream), "sipgw-progress")


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None:
        return
    if not state.is_worker and state.budget.path is not None:
        state.budget.path.unlink(missing_ok=True)
    if state.worker_files is not None:
        state.worker_files.close()
    crash = config.pluginmanager.get_plugin("sipgw-crash")
    if crash is not None:
        crash.close()
    for name in ("sipgw-progress", "sipgw-matrix", "sipgw-crash"):
        plugin = config.pluginmanager.get_plugin(name)
        if plugin is not None:
            config.pluginmanager.unregister(plugin)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: hand the run id, start time and shared rerun budget to each worker."""
    state = state_of(node.config)
    node.workerinput["sipgw_run_id"] = state.run_id
    node.workerinput["sipgw_started_at"] = state.started_at.isoformat()
    node.workerinput["sipgw_command_line"] = state.command_line
    if state.budget.path is not None:
        node.workerinput["sipgw_budget_path"] = str(state.budget.path)
    crash = node.config.pluginmanager.get_plugin("sipgw-crash")
    if crash is not None:
        node.workerinput["sipgw_worker_dir"] = str(crash.folder)


def _register_crash_handler(config: pytest.Config, state: PluginState) -> None:
    """xdist controller: the plugin that turns a crashed worker's test into a cell (``crash.py``). With a report
    directory the workers' own output goes to ``<run dir>/workers/gwN.log``."""
    import tempfile

    from harness.pytest_plugin.crash import OUTPUT_DIR_ENV, CrashHandler

    if state.run_dir is not None:
        folder, temporary = state.run_dir / "workers", False
        folder.mkdir(parents=True, exist_ok=True)
    else:
        folder, temporary = Path(tempfile.mkdtemp(prefix="sipgw-xdist-")), True
    handler = CrashHandler(config, state, folder, temporary=temporary)
    if state.run_dir is not None:  # read by each worker before pytest's capture starts (pytest_load_initial_conftests)
        handler.set_env(OUTPUT_DIR_ENV, str(folder))
    config.pluginmanager.register(handler, "sipgw-crash")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]):
    """On an xdist worker of a sipgw run: its stdout/stderr to ``<run dir>/workers/gwN.log`` before pytest's
    capture saves them, so what a worker prints outside a test's capture survives a crash."""
    from harness.pytest_plugin.crash import redirect_worker_output

    redirect_worker_output()
    return (yield)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: merge what a worker read back from its devices and gateway."""
    crash = node.config.pluginmanager.get_plugin("sipgw-crash")
    if crash is not None:
        crash.on_node_down(node, error)
    out = getattr(node, "workeroutput", None) or {}
    state = state_of(node.config)
    try:
        for dev_id, ident in json.loads(out.get("sipgw_identities", "{}")).items():
            state.identities.setdefault(dev_id, ident)
    except ValueError:
        pass
    if out.get("sipgw_gateway_build") and not state.gateway_build:
        state.gateway_build = out["sipgw_gateway_build"]


def pytest_collection_finish(session: pytest.Session) -> None:
    """xdist worker: every test it collected (device, feature, name; no device for a lab test), for the
    controller's handling of a crashed worker."""
    state = session.config.stash.get(STATE, None)
    if state is None or state.worker_files is None:
        return
    items = {}
    for item in session.items:
        spec = device_spec_of(item)
        items[item.nodeid] = {"device_id": spec.id if spec is not None else None,
                              "feature": markers.feature_of(item) if spec is not None else None,
                              "nodeid": _clean_nodeid(item.nodeid, spec.id) if spec is not None else item.nodeid,
                              "name": item.name}
    state.worker_files.write_items(items)


def _note_phase(item: pytest.Item, phase: str) -> None:
    files = state_of(item.config).worker_files
    if files is not None:
        files.running(item.nodeid, phase, item.stash.get(ATTEMPT, 1))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    _note_phase(item, "call")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    _note_phase(item, "teardown")


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    state = config.stash.get(STATE, None)
    if state is not None and state.is_worker:
        config.workeroutput["sipgw_identities"] = json.dumps(state.identities)  # type: ignore[attr-defined]
        if state.gateway_build:
            config.workeroutput["sipgw_gateway_build"] = state.gateway_build  # type: ignore[attr-defined]


# --- collection -----------------------------------------------------------------------------------------------

def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    try:
        markers.feature_of(metafunc.definition)
    except markers.FeatureMarkerError as exc:
        raise pytest.Collector.CollectError(str(exc)) from None
    if "device" not in metafunc.fixturenames or not _ours(metafunc, "device"):
        return
    state = state_of(metafunc.config)
    try:
        specs = state.selected_devices()
    except LookupError as exc:
        raise pytest.Collector.CollectError(str(exc)) from None
    except Exception as exc:  # an inventory that cannot be loaded: every problem, located
        problems = getattr(exc, "problems", None)
        detail = "\n  ".join(str(p) for p in problems) if problems else str(exc)
        raise pytest.Collector.CollectError(f"inventory {state.settings.inventory}: {detail}") from None
    params = [pytest.param(spec, id=spec.test_id, marks=pytest.mark.xdist_group(spec.id)) for spec in specs]
    metafunc.parametrize("device", params, indirect=True)
    if state.settings.repeat > 1:
        metafunc.fixturenames.append("sipgw_repeat")
        metafunc.parametrize("sipgw_repeat", range(1, state.settings.repeat + 1),
                             ids=[f"r{i}" for i in range(1, state.settings.repeat + 1)])


def _ours(metafunc: pytest.Metafunc, name: str) -> bool:
    """Whether ``name`` resolves to this plugin's fixture (a project test may have its own ``device``)."""
    defs = getattr(metafunc, "_arg2fixturedefs", {}).get(name) or ()
    func = getattr(defs[-1], "func", None) if defs else None
    return func is not None and getattr(func, "__module__", "") == "harness.pytest_plugin.fixtures"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = state_of(config).settings.features
    if wanted:
        keep, drop = [], []
        for item in items:
            (keep if markers.feature_of(item) in wanted else drop).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
    # One device's tests together, in the order they were written (a stable sort): a device is started once and
    # closed when its tests are done, and --dist loadgroup hands the same groups to the workers.
    order: dict[str, int] = {}
    for item in items:
        spec = device_spec_of(item)
        if spec is not None:
            order.setdefault(spec.id, len(order))
    items.sort(key=lambda it: -1 if device_spec_of(it) is None else order[device_spec_of(it).id])
    _group_node_ids(config, items)


def _group_node_ids(config: pytest.Config, items: list[pytest.Item]) -> None:
    """xdist worker with ``--dist loadgroup``: give each grouped test its ``@<group>`` node-id suffix.

    pytest-xdist 3.8 appends the suffix by assigning ``item._nodeid``, which pytest 9 no longer reads (the node
    id lives in ``item._id``): the suffix never reached the scheduler, so every test was its own group, each
    worker got tests of every device and started every device itself. Here the suffix is set where pytest 9 keeps
    the id (nothing is done when xdist's own suffix is already there, as with older pytest).
    """
    if not getattr(config.option, "loadgroup", False):
        return
    try:
        from _pytest.nodeid import NodeId
    except ImportError:  # older pytest: xdist's own assignment works
        return
    for item in items:
        if "@" in item.nodeid.rpartition("]")[2] or not hasattr(item, "_id"):
            continue
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                        for m in item.iter_markers("xdist_group")})
        if names:
            item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(names)}")  # type: ignore[attr-defined]


def device_spec_of(item: pytest.Item):
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return None
    spec = callspec.params.get("device")
    return spec if hasattr(spec, "verdict") and hasattr(spec, "profile") else None


# --- running ------------------------------------------------------------------------------------------------

@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before any fixture runs: not applicable, blocked by the firmware verdict, or blocked by an earlier break."""
    spec = device_spec_of(item)
    if spec is None:
        return
    feature = markers.feature_of(item)
    if feature is not None:
        from device_profiles.capabilities import applicability

        app = applicability(spec.profile, feature)
        if not app:
            raise NotApplicable(app.reason or "not applicable to this device kind", feature=feature,
                                device_id=spec.id)
    if not spec.verdict.acceptable:
        raise Blocked(f"firmware verdict {spec.verdict.verdict.value}: {spec.verdict.reason}", device_id=spec.id)
    broke = state_of(item.config).broken.get(spec.id)
    if broke is not None:
        raise Blocked(f"device broke earlier in {broke[0]}: {broke[1]}", device_id=spec.id)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    spec = device_spec_of(item)
    if spec is None:
        return report
    phases = item.stash.setdefault(PHASES, {})
    if call.excinfo is not None and not isinstance(call.excinfo.value, pytest.skip.Exception):
        exc = call.excinfo.value
        outcome, reason = classify(exc, call.when)
        if isinstance(exc, DeviceBroken):
            if exc.device_id in (None, spec.id):
                state_of(item.config).broken.setdefault(spec.id, (_clean_nodeid(item.nodeid, spec.id), str(exc)))
            else:  # a helper device (the other party) is broken: nothing was observed about this device
                outcome, reason = Outcome.BLOCKED, f"helper device {exc.device_id} is unusable: {exc}"
        phases[call.when] = (outcome, reason, is_infrastructure(exc))
        if outcome in (Outcome.NOT_APPLICABLE, Outcome.BLOCKED):
            _path, lineno, _ = item.location
            report.outcome = "skipped"
            report.longrepr = (str(item.path), (lineno or 0) + 1, f"{STATUS[outcome][2]}: {reason}")
        report.sipgw_outcome = outcome.value
        report.sipgw_reason = reason
    elif call.excinfo is not None:
        phases[call.when] = (Outcome.NOT_APPLICABLE, str(call.excinfo.value.msg), False)
        report.sipgw_outcome = Outcome.NOT_APPLICABLE.value
        report.sipgw_reason = str(call.excinfo.value.msg)
    else:
        phases.setdefault(call.when, (Outcome.PASS, "", False))
    if call.when == "call" or (call.when == "setup" and call.excinfo is not None):
        _record_identity(item, spec, state_of(item.config))
        _finalise_evidence(item)
    return report


def _finalise_evidence(item: pytest.Item) -> None:
    collector = (getattr(item, "funcargs", None) or {}).get("evidence")
    if collector is None:
        return
    state = state_of(item.config)
    lab = getattr(item, "funcargs", {}).get("lab")
    control = getattr(lab, "control", None) if lab is not None else None
    device = item.funcargs.get("device")
    log_text = None
    try:
        from harness.protocols import Console

        if device is not None:
            log_text = device[Console].read_log(200)
    except Exception:  # no console, or the device is gone: the log is optional evidence
        log_text = None
    if device is not None and getattr(lab, "labgrid", None) is not None:  # labgrid serial console log
        lab.labgrid.add_evidence(device.id, collector)
    add_own = getattr(getattr(device, "driver", None), "add_evidence", None)
    if callable(add_own):  # a driver's own session logs (the AudioCodes CLI over SSH: ssh.log)
        add_own(collector)
    item.stash[EVIDENCE] = collector.finalise(state.run_dir, control, feature=markers.feature_of(item),
                                              device_log=log_text)
    item.config.hook.pytest_sipgw_evidence(item=item, evidence=item.stash[EVIDENCE])
    _attach_to_allure(item, item.stash[EVIDENCE], state)


def _attach_to_allure(item: pytest.Item, evidence: dict, state: PluginState) -> None:
    if state.run_dir is None or not item.config.pluginmanager.hasplugin("allure_listener"):
        return
    try:
        import allure

        for key, kind in (("ladder_txt", allure.attachment_type.TEXT), ("ladder_html", allure.attachment_type.HTML),
                          ("device_log", allure.attachment_type.TEXT)):
            if evidence.get(key):
                allure.attach.file(str(state.run_dir / evidence[key]), name=key, attachment_type=kind)
        if evidence.get("pcap"):
            allure.attach.file(str(state.run_dir / evidence["pcap"]), name="pcap",
                               extension="pcap")
        if evidence.get("media"):
            allure.attach(json.dumps(evidence["media"], indent=1, default=str), name="media",
                          attachment_type=allure.attachment_type.JSON)
    except Exception:  # allure is a rendering; it must never change an outcome
        pass


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """Run a device test; retry it only after an infrastructure error, within the run's one budget."""
    spec = device_spec_of(item)
    if spec is None:
        return None
    state = state_of(item.config)
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    attempts: list[dict] = []
    while True:
        item.stash[ATTEMPT] = len(attempts) + 1
        _note_phase(item, "setup")
        item.stash[PHASES] = {}
        if EVIDENCE in item.stash:
            del item.stash[EVIDENCE]
        t0 = time.monotonic()
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
        duration = time.monotonic() - t0
        outcome, reason, infra = _fold_phases(item.stash.get(PHASES, {}))
        attempts.append({"outcome": outcome.value, "duration_s": round(duration, 3),
                         "error": reason or None})
        if outcome == Outcome.ERROR and infra and state.budget.take():
            _forget_failed_fixtures(item)
            item._initrequest()  # type: ignore[attr-defined]
            continue
        break
    if outcome == Outcome.PASS and len(attempts) > 1:
        outcome = Outcome.FLAKY
        reason = f"passed on attempt {len(attempts)} after: " + "; ".join(
            a["error"] or a["outcome"] for a in attempts[:-1])
    record = {
        "device_id": spec.id,
        "feature": markers.feature_of(item),
        "nodeid": _clean_nodeid(item.nodeid, spec.id),
        "name": item.name,
        "outcome": outcome.value,
        "duration_s": round(sum(a["duration_s"] for a in attempts), 3),
        "reason": reason,
        "attempts": attempts,
        "evidence": item.stash.get(EVIDENCE, None) or {},
    }
    for rep in reports:
        if rep.when == "call" and outcome == Outcome.FLAKY:
            rep.sipgw_outcome = Outcome.FLAKY.value
            rep.sipgw_reason = reason
    reports[-1].sipgw = json.loads(json.dumps(record, default=str))
    for rep in reports:
        item.ihook.pytest_runtest_logreport(report=rep)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    _release_if_done(state, spec, nextitem)
    return True


def _release_if_done(state: PluginState, spec: Any, nextitem: pytest.Item | None) -> None:
    """The next test is another device's (``--dist loadgroup`` keeps one device's tests together): close this one
    unless other tests use it as a helper, so a run over every catalogue model holds few worker processes."""
    if nextitem is None or state.lab is None or spec.id in state.helpers:
        return
    following = device_spec_of(nextitem)
    if following is not None and following.id == spec.id:
        return
    from harness.pytest_plugin.fixtures import release_device

    try:
        release_device(state.lab, spec.id)
    except Exception:  # closing is housekeeping; the lab's stop() closes whatever is left
        pass


def _fold_phases(phases: dict) -> tuple[Outcome, str, bool]:
    """The test's outcome from its phases: setup decides first, then the call; a teardown crash is an error."""
    for when in ("setup", "call"):
        if when in phases and phases[when][0] != Outcome.PASS:
            return phases[when]
    if "teardown" in phases and phases["teardown"][0] != Outcome.PASS:
        o, reason, infra = phases["teardown"]
        return (Outcome.ERROR if o == Outcome.FAIL else o), f"teardown: {reason}", infra
    return Outcome.PASS, "", False


def _forget_failed_fixtures(item: pytest.Item) -> None:
    """A fixture whose set-up failed caches its exception; drop it so the retry sets it up again."""
    for defs in item._fixtureinfo.name2fixturedefs.values():  # type: ignore[attr-defined]
        for fixturedef in defs:
            cached = getattr(fixturedef, "cached_result", None)
            if cached is not None and cached[2] is not None:
                fixturedef.cached_result = None
    setupstate = item.session._setupstate  # type: ignore[attr-defined]
    for col in list(setupstate.stack):
        fins, exc = setupstate.stack[col]
        if exc is not None:
            setupstate.stack[col] = (fins, None)


def _record_identity(item: pytest.Item, spec: Any, state: PluginState) -> None:
    if spec.id in state.identities:
        return
    funcargs = getattr(item, "funcargs", None) or {}
    lab = funcargs.get("lab")
    if lab is not None and not state.gateway_build:
        state.gateway_build = gateway_build_of(lab)
    handle = funcargs.get("device")
    ident = getattr(handle, "identity", None) if handle is not None else None
    if callable(ident):
        ident = None  # only a value the handle already read back; never a new operation after the test
    if ident is not None:
        state.identities[spec.id] = {
            "firmware": getattr(ident, "firmware", None),
            "mac": getattr(ident, "mac", None),
            "user_agent": getattr(ident, "user_agent", None),
        }


def gateway_build_of(lab: Any) -> str | None:
    gw = getattr(lab, "gateway", None)
    if gw is None:
        return f"external {state_gateway(lab)}"
    build = getattr(gw, "build", None) or getattr(gw, "version", None)
    if build:
        return str(build)
    from harness.pytest_plugin.collect import sipgw_lab_version

    return f"embedded sipgw-lab {sipgw_lab_version()}"


def state_gateway(lab: Any) -> str:
    return str(getattr(lab, "gateway_address", None) or getattr(getattr(lab, "control", None), "base_url", "?"))


def _clean_nodeid(nodeid: str, device_id: str) -> str:
    """Node id without xdist's ``@group`` suffix."""
    suffix = f"@{device_id}"
    return nodeid[: -len(suffix)] if nodeid.endswith(suffix) else nodeid


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config):
    crash = getattr(report, "sipgw_crash", None)
    if crash == "rerun":
        return "rerun", "R", "RERUN"
    if crash == "error":
        return STATUS[Outcome.ERROR]
    value = getattr(report, "sipgw_outcome", None)
    if value is None:
        return None
    outcome = Outcome(value)
    if outcome in (Outcome.NOT_APPLICABLE, Outcome.BLOCKED) and report.skipped:
        return STATUS[outcome]
    if outcome == Outcome.FLAKY and report.when == "call":
        return STATUS[outcome]
    if outcome == Outcome.ERROR and report.when == "call":
        return STATUS[outcome]
    return None


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None or state.is_worker:
        return
    plugin = config.pluginmanager.get_plugin("sipgw-matrix")
    if plugin is not None and plugin.written:
        terminalreporter.write_line(f"sipgw-lab: matrix written to {plugin.written}")

