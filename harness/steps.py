"""Every driver operation is a traced step.

A step records its name, arguments, result (or error), duration, outcome and the device it ran on.
Subscribers — the evidence log, allure steps, the live progress view — register once with :func:`subscribe`
and receive a :class:`StepEvent` for every finished step (and, if they ask for it, for every started step).

Usage::

    class Phone:
        device_id = "poly-vvx450"

        @step()
        def dial(self, number: str) -> CallInfo: ...

    @step("gateway.reset")
    def reset_gateway(client): ...

    steps.record("observe.tone", args={"hz": 700}, result={"level_db": -12.0}, device_id="poly-vvx450")

Thread-safe: steps run on any thread; subscribers are called on the thread that ran the step, in order of
subscription, and a subscriber that raises is logged and never breaks the step it was told about.
Arguments whose name suggests a secret (``password``, ``secret``, ``token``) are recorded as ``"***"``.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

_SECRET_WORDS = ("password", "passwd", "secret", "token", "credential")
_MAX_REPR = 400


@dataclass(frozen=True)
class StepEvent:
    """One step, as subscribers see it.

    ``phase`` is ``"end"`` for a finished step (``ok`` and ``duration_s`` set) and ``"start"`` for one that has
    just begun (only delivered to subscribers that asked for starts; ``ok`` is None). ``t`` is the wall-clock
    time (``time.time()``) at which the step started. ``step_id`` is unique in the process; ``parent_id`` is the
    step this one ran inside (on the same thread / task), or None.
    """

    name: str
    args: Mapping[str, Any]
    result: Any
    duration_s: float
    ok: bool | None
    error: str | None
    device_id: str | None
    t: float
    phase: str = "end"
    step_id: int = 0
    parent_id: int | None = None
    error_type: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (arguments and result already rendered to JSON-safe values)."""
        return {
            "name": self.name,
            "args": {k: _jsonable(v) for k, v in self.args.items()},
            "result": _jsonable(self.result),
            "duration_s": round(self.duration_s, 6),
            "ok": self.ok,
            "error": self.error,
            "error_type": self.error_type,
            "device_id": self.device_id,
            "t": self.t,
            "phase": self.phase,
            "step_id": self.step_id,
            "parent_id": self.parent_id,
        }


Subscriber = Callable[[StepEvent], None]

_lock = threading.RLock()
_subscribers: list[tuple[Subscriber, bool]] = []
_ids = itertools.count(1)
_current: contextvars.ContextVar[int | None] = contextvars.ContextVar("sipgw_lab_step", default=None)


def subscribe(fn: Subscriber, *, starts: bool = False) -> Callable[[], None]:
    """Register ``fn`` for every finished step (and started steps when ``starts``). Returns an unsubscriber.

    Registering the same callable twice is a no-op (it stays registered once).
    """
    if not callable(fn):
        raise TypeError(f"subscriber must be callable, got {type(fn).__name__}")
    with _lock:
        if not any(s is fn for s, _ in _subscribers):
            _subscribers.append((fn, starts))

    def _unsubscribe() -> None:
        unsubscribe(fn)

    return _unsubscribe


def unsubscribe(fn: Subscriber) -> None:
    with _lock:
        _subscribers[:] = [(s, st) for s, st in _subscribers if s is not fn]


def subscribers() -> list[Subscriber]:
    with _lock:
        return [s for s, _ in _subscribers]


@contextmanager
def collecting(*, device_id: str | None = None) -> Iterator[list[StepEvent]]:
    """Collect finished steps (optionally of one device) into a list while the block runs."""
    got: list[StepEvent] = []
    lock = threading.Lock()

    def sink(ev: StepEvent) -> None:
        if device_id is None or ev.device_id == device_id:
            with lock:
                got.append(ev)

    subscribe(sink)
    try:
        yield got
    finally:
        unsubscribe(sink)


def _dispatch(ev: StepEvent) -> None:
    with _lock:
        targets = [s for s, starts in _subscribers if ev.phase == "end" or starts]
    for fn in targets:
        try:
            fn(ev)
        except Exception:  # a broken subscriber must not change what the step did
            log.exception("step subscriber %r failed on step %s", fn, ev.name)


def record(
    name: str,
    *,
    args: Mapping[str, Any] | None = None,
    result: Any = None,
    ok: bool = True,
    error: str | BaseException | None = None,
    device_id: str | None = None,
    duration_s: float = 0.0,
    t: float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> StepEvent:
    """Record a step that was not a decorated call (an observation, a check) and tell the subscribers."""
    err_type = type(error).__name__ if isinstance(error, BaseException) else None
    ev = StepEvent(
        name=name,
        args=_clean_args(dict(args or {})),
        result=result,
        duration_s=float(duration_s),
        ok=ok if error is None else False,
        error=None if error is None else _describe(error),
        device_id=device_id,
        t=time.time() if t is None else t,
        step_id=next(_ids),
        parent_id=_current.get(),
        error_type=err_type,
        extra=dict(extra or {}),
    )
    _dispatch(ev)
    return ev


def step(name: str | Callable[..., Any] | None = None, *, device_id: str | None = None,
         result: bool = True) -> Any:
    """Decorator: trace each call of the function as a step.

    ``name`` defaults to ``<Class>.<method>`` (or the function's name). The device id is ``device_id`` if
    given, else the ``device_id`` attribute of ``self`` for methods. ``result=False`` records no result (for
    large return values). Usable bare (``@step``) or with arguments (``@step("dial")``).
    """
    if callable(name):
        return step()(name)

    def deco(fn: F) -> F:
        sig = inspect.signature(fn)
        qual = fn.__qualname__.split("<locals>.")[-1]
        step_name = name or qual
        params = list(sig.parameters)
        is_method = bool(params) and params[0] in ("self", "cls")

        @functools.wraps(fn)
        def wrapper(*a: Any, **kw: Any) -> Any:
            try:
                bound = sig.bind(*a, **kw)
            except TypeError:
                return fn(*a, **kw)  # let Python raise its own, clearer argument error
            call_args = dict(bound.arguments)
            dev = device_id
            if is_method:
                owner = call_args.pop(params[0], None)
                if dev is None:
                    dev = getattr(owner, "device_id", None)
            sid = next(_ids)
            parent = _current.get()
            started_wall = time.time()
            args_clean = _clean_args(call_args)
            if _has_start_subscribers():
                _dispatch(StepEvent(step_name, args_clean, None, 0.0, None, None, dev, started_wall, "start",
                                    sid, parent))
            token = _current.set(sid)
            t0 = time.monotonic()
            try:
                value = fn(*a, **kw)
            except BaseException as exc:
                _current.reset(token)
                _dispatch(StepEvent(step_name, args_clean, None, time.monotonic() - t0, False, _describe(exc), dev,
                                    started_wall, "end", sid, parent, type(exc).__name__))
                raise
            _current.reset(token)
            _dispatch(StepEvent(step_name, args_clean, value if result else None, time.monotonic() - t0, True,
                                None, dev, started_wall, "end", sid, parent))
            return value

        wrapper.__sipgw_step__ = step_name  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return deco


def _has_start_subscribers() -> bool:
    with _lock:
        return any(starts for _, starts in _subscribers)


def _describe(error: str | BaseException) -> str:
    if isinstance(error, BaseException):
        text = str(error)
        return f"{type(error).__name__}: {text}" if text else type(error).__name__
    return str(error)


def _clean_args(args: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in args.items():
        if any(w in k.lower() for w in _SECRET_WORDS) and v is not None:
            out[k] = "***"
        else:
            out[k] = v
    return out


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    to_dict = getattr(v, "to_dict", None)
    if callable(to_dict):
        try:
            return _jsonable(to_dict())
        except Exception:  # fall back to repr below
            pass
    import dataclasses

    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: _jsonable(getattr(v, f.name)) for f in dataclasses.fields(v)}
    text = repr(v)
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 3] + "..."
