"""The media node: Teams clients and PSTN parties as real SIP user agents on a pool of pjsua2 processes.

Calls that end at the gateway terminate here.  Every party answers per its settings, sends its own
tone, records what it hears (a WAV per call) and logs the DTMF it receives; it can also originate a call
through the gateway, hold, resume, send digits and change its tone.

Threads: ``sipua`` calls are blocking RPCs to worker processes, so none runs on the gateway's asyncio
loop.  One control thread owns every sipua call (commands from the API and handling of worker events,
in order); the loop only reads the node's state (under a lock) and awaits futures of the control thread
(``await node.run(fn)``).  Listeners registered with ``add_listener`` get each change of a call on the
loop through ``loop.call_soon_threadsafe``.

Routing (``teams_client``/``pstn_party``) is synchronous on the loop: it reserves a call slot on a
worker that has one (the pool keeps a spare worker ready, spawned in the control thread) and returns
that worker's SIP address; the INVITE that follows is matched to the reservation by worker and
Request-URI user.  The gateway trusts exactly these addresses (``SipCore.trusted``), so the media node's
INVITEs need no digest.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import heapq
import itertools
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.media_node.ivr import Ivr
from gateway.media_node.relay import RELAY_SLOTS
from gateway.media_node.tones import ToneAllocator
from gateway.media_node.wavfile import WavError, snapshot_wav
from gateway.services.directory import number_key
from gateway.services.model import Flow, User

log = logging.getLogger("sipgw.media")

ANSWER_MODES = ("auto", "busy", "no_answer", "manual")
PARTY_KINDS = ("teams", "pstn", "ivr")
RESERVATION_TTL_S = 10.0  # a routed branch whose INVITE never arrives gives its slot back
TONE_LEVEL_DBFS = -12.0
_DIGITS = re.compile(r"^[0-9*#A-Da-d]{1,64}$")
_NUMBER = re.compile(r"^\+?[0-9]{2,15}$")

_STATES = {"NULL": "calling", "CALLING": "calling", "INCOMING": "early", "EARLY": "early",
           "CONNECTING": "early", "CONFIRMED": "confirmed", "DISCONNECTED": "disconnected"}


class MediaNodeError(Exception):
    """A request the media node cannot carry out; ``code`` and ``where`` go into the API's error document."""

    def __init__(self, code: str, message: str, where: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.where = where
        self.status = status


@dataclass
class PartySettings:
    """How a party treats inbound calls (RFC 3261 §13.3.1: a UAS may ring, answer or reject)."""

    answer: str = "auto"  # auto | busy | no_answer | manual
    answer_delay_ms: int = 0
    tone_hz: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"answer": self.answer, "answer_delay_ms": self.answer_delay_ms, "tone_hz": self.tone_hz}


@dataclass
class MediaCall:
    """One call leg of the media node, as the API reports it."""

    id: str
    kind: str  # teams | pstn
    identity: str  # username or +number
    direction: str  # in | out
    remote: str
    worker: Any = field(repr=False)
    handle: int
    sip_call_id: str = ""
    state: str = "calling"
    status_code: int | None = None
    started: float = field(default_factory=time.time)
    answered: float | None = None
    ended: float | None = None
    tone_hz: float = 0.0
    dtmf: list[dict[str, Any]] = field(default_factory=list)
    recording_path: str = ""
    recording_started: bool = False
    media: dict[str, Any] = field(default_factory=dict)
    held: bool = False
    account: str | None = None  # temporary account of an outgoing call
    error: str | None = None
    wav: str | None = None  # a WAV played instead of the tone
    slot_released: bool = False

    def to_json(self, base_url: str = "/api/v1/media") -> dict[str, Any]:
        return {
            "id": self.id, "party": {"kind": self.kind, "identity": self.identity},
            "direction": self.direction, "remote": self.remote, "sip_call_id": self.sip_call_id,
            "state": self.state, "status_code": self.status_code, "started": self.started,
            "answered": self.answered, "ended": self.ended, "tone_hz": self.tone_hz, "held": self.held,
            "dtmf": list(self.dtmf), "recording": f"{base_url}/calls/{self.id}/recording.wav",
            "media": dict(self.media), "worker": getattr(self.worker, "name", None), "error": self.error,
            "wav": self.wav,
        }


@dataclass
class _Reservation:
    worker: Any
    uri_user: str
    kind: str
    identity: str
    expires: float


class _ControlThread:
    """One thread running submitted functions in order, and delayed ones when due."""

    def __init__(self, name: str) -> None:
        self._cond = threading.Condition()
        self._queue: list[tuple[float, int, Callable[[], Any], concurrent.futures.Future]] = []
        self._seq = itertools.count()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], Any], delay_s: float = 0.0) -> concurrent.futures.Future:
        fut: concurrent.futures.Future = concurrent.futures.Future()
        with self._cond:
            if self._stopped:
                fut.set_exception(MediaNodeError("closed", "the media node is closed", status=409))
                return fut
            heapq.heappush(self._queue, (time.monotonic() + delay_s, next(self._seq), fn, fut))
            self._cond.notify()
        return fut

    @property
    def in_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopped and not self._queue:
                        return
                    now = time.monotonic()
                    if self._queue and self._queue[0][0] <= now:
                        _, _, fn, fut = heapq.heappop(self._queue)
                        break
                    timeout = (self._queue[0][0] - now) if self._queue else None
                    if self._stopped:
                        # on stop, drop delayed work that is not due
                        for *_, f in self._queue:
                            f.cancel()
                        self._queue.clear()
                        return
                    self._cond.wait(timeout)
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn())
            except BaseException as exc:  # handed to whoever waits on the future
                fut.set_exception(exc)

    def stop(self, timeout: float = 30.0) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if not self.in_thread:
            self._thread.join(timeout)


def _media_log_level() -> int:
    """pjlib's log level for the media workers: 3 (warnings and call summaries with RTP counts) unless
    ``SIPGW_MEDIA_LOG_LEVEL`` says otherwise; 4 adds every SIP message, RTP socket and conference-bridge change,
    which costs the workers CPU but shows where a call's audio went."""
    raw = os.environ.get("SIPGW_MEDIA_LOG_LEVEL", "3")
    try:
        level = int(raw)
    except ValueError:
        raise MediaNodeError("bad_setting", f"SIPGW_MEDIA_LOG_LEVEL={raw!r} is not a number 0-6",
                             "env.SIPGW_MEDIA_LOG_LEVEL") from None
    if not 0 <= level <= 6:
        raise MediaNodeError("bad_setting", f"SIPGW_MEDIA_LOG_LEVEL={level} is outside 0-6",
                             "env.SIPGW_MEDIA_LOG_LEVEL")
    return level


class MediaNode:
    """Implements the router's ``MediaDirectory`` over a ``sipua.UAPool``.

    ``start(gw)`` (awaited by the gateway once its SIP transports are bound) records the gateway's UDP
    address and its loop and spawns the first worker; ``close()`` ends every call and worker.
    """

    def __init__(self, work_dir: str | Path, *, max_processes: int = 16, host: str = "127.0.0.1",
                 spare_slots: int = 2, user_agent: str = "sipgw-lab-media/0.1") -> None:
        self.work_dir = Path(work_dir)
        (self.work_dir / "recordings").mkdir(parents=True, exist_ok=True)
        (self.work_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.host = host
        self.max_processes = max_processes
        self.spare_slots = spare_slots
        self.user_agent = user_agent
        self.gateway_addr: tuple[str, int] | None = None
        self.domain = "sipgw.lab"
        self.tones = ToneAllocator()
        self._lock = threading.RLock()
        self._calls: dict[str, MediaCall] = {}
        self._by_handle: dict[tuple[int, int], MediaCall] = {}
        self._settings: dict[tuple[str, str], PartySettings] = {}
        self._reservations: list[_Reservation] = []
        self._ids = itertools.count(1)
        self._accounts = itertools.count(1)
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        self._loop = None
        self._core = None
        self._directory = None
        self._pool = None
        self._ctl = _ControlThread("sipgw-media")
        self._spawner = _ControlThread("sipgw-media-spawn")  # spawning never delays call handling
        self._closed = False
        #: The IVR party (kind ``ivr``) at its tenant number (:mod:`gateway.media_node.ivr`).
        self.ivr = Ivr()
        #: Calls anchored for DTMF interworking (:mod:`gateway.media_node.relay`), set by ``start``.
        self.relay = None

    # ------------------------------------------------------------------ life cycle

    async def start(self, gw: Any) -> None:
        """Bind to a started gateway (its loop, UDP address, domain, directory and SIP core)."""
        import asyncio

        self._loop = asyncio.get_running_loop()
        self._core = gw.core
        self._directory = gw.directory
        self.domain = gw.config.domain
        assert gw.endpoints is not None
        self.gateway_addr = tuple(gw.endpoints.udp)
        services = getattr(getattr(gw, "router", None), "services", None)
        if services is not None:  # calls to the IVR's number reach the IVR party
            services[number_key(self.ivr.number)] = self.ivr_party
        await asyncio.wrap_future(self._ctl.submit(self._start_pool))
        from gateway.media_node.relay import install

        install(self, gw)

    def start_sync(self, gateway_addr: tuple[str, int], *, core: Any = None, directory: Any = None,
                   domain: str = "sipgw.lab") -> None:
        """Bind without an asyncio loop (scripts, tests of the node alone)."""
        self._core, self._directory, self.domain = core, directory, domain
        self.gateway_addr = gateway_addr
        self._ctl.submit(self._start_pool).result(30)

    def _start_pool(self) -> None:
        from sipua import TransportKind, TransportSpec, UAPool, WorkerConfig

        template = WorkerConfig(name="media", user_agent=self.user_agent,
                                log_path=str(self.work_dir / "logs" / "media.log"),
                                transports=(TransportSpec(kind=TransportKind.UDP, host=self.host),),
                                log_level=_media_log_level())
        # A worker is declared hung only after 10 s of silence: under load a healthy one can be starved for
        # seconds, and a false alarm would end its calls.  A worker that exits is noticed at once.
        self._pool = UAPool(template, max_processes=self.max_processes, on_spawn=self._on_spawn,
                            spawn_kwargs={"hang_timeout": 10.0})
        self._ensure_spare()

    def _on_spawn(self, worker: Any) -> None:
        """Runs in the thread that made the pool spawn: the spawner, or the control thread at start-up and
        when a spare slot was raced away."""
        worker.add_account("a", worker.uri("media"))
        worker.auto_answer("never")  # the node decides per call, from the party's settings
        addr = (self.host, worker.sip_port("udp"))
        if self._core is not None:
            self._core.trusted.add(addr)
        worker.add_listener(lambda ev, w=worker: self._ctl.submit(lambda: self._on_event(w, ev)))
        log.info("media worker %s up on %s:%d (pid %s)", worker.name, *addr, worker.pid)

    def close(self) -> None:
        """End every call and worker (the pool's workers hang up their calls on shutdown)."""
        if self._closed:
            return
        self._closed = True
        self._spawner.stop()
        fut = self._ctl.submit(self._close_pool)
        with contextlib.suppress(Exception):
            fut.result(60)
        self._ctl.stop()

    def _close_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            for w in pool.workers:
                if self._core is not None:
                    with contextlib.suppress(Exception):
                        self._core.trusted.discard((self.host, w.sip_port("udp")))
            try:
                pool.close()
            except Exception as exc:
                log.warning("media pool close: %s", exc)
        now = time.time()
        with self._lock:
            for c in self._calls.values():
                if c.state != "disconnected":
                    c.state, c.ended = "disconnected", now

    def reset(self) -> None:
        """Restore default party settings and forget every call; live calls are hung up in the background
        (safe to call on the gateway's loop: nothing here waits for a worker)."""
        with self._lock:
            self._settings.clear()
            self.tones.reset()
            live = [c for c in self._calls.values() if c.state != "disconnected"]
            ended = [c for c in self._calls.values() if c.state == "disconnected"]
            self._calls.clear()
        self.ivr.forget()
        if self.relay is not None:
            self.relay.reset()
        for c in live:
            self._ctl.submit(lambda c=c: _quietly(c.worker.hangup, c.handle))
        for c in ended:  # nobody can ask for these recordings any more
            with contextlib.suppress(OSError):
                os.unlink(c.recording_path)

    # ------------------------------------------------------------------ helpers for the loop

    async def run(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the control thread and await its result (from the gateway's loop)."""
        import asyncio

        return await asyncio.wrap_future(self._ctl.submit(fn))

    def call_sync(self, fn: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Run ``fn`` on the control thread and wait (from any thread but the loop)."""
        if self._ctl.in_thread:
            return fn()
        return self._ctl.submit(fn).result(timeout)

    def add_listener(self, fn: Callable[[dict[str, Any]], None]) -> None:
        """``fn(call_json)`` on the gateway's loop after every change of a call."""
        self._listeners.append(fn)

    def _notify(self, call: MediaCall) -> None:
        if not self._listeners:
            return
        snapshot = call.to_json()
        for fn in list(self._listeners):
            if self._loop is not None and not self._loop.is_closed():
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    self._loop.call_soon_threadsafe(fn, snapshot)
            else:
                with contextlib.suppress(Exception):
                    fn(snapshot)

    # ------------------------------------------------------------------ MediaDirectory (on the loop)

    def teams_client(self, user: User) -> Flow | None:
        uri_user = number_key(user.number or user.username)
        return self.reserve(uri_user, "teams", user.username)

    def pstn_party(self, number: str) -> Flow | None:
        identity = number if number.startswith("+") else "+" + number
        return self.reserve(identity, "pstn", identity)

    def ivr_party(self) -> Flow | None:
        """Where the IVR answers (a reserved call slot), for the router's service number."""
        return self.reserve(self.ivr.number, "ivr", self.ivr.number)

    # ------------------------------------------------------------------ for the node's services
    # The relay (:mod:`gateway.media_node.relay`), voicemail and the ``*55*`` confirmation tone build on these.

    @property
    def pool(self) -> Any:
        """The ``sipua.UAPool`` of the node's workers; None before ``start`` has made it and once ``close`` has
        ended it.  Read it once into a local: the control thread sets it.  Safe to read from any thread; its
        ``try_acquire``/``release`` never block, ``acquire``/``ensure_free`` may spawn a worker (not on the loop)."""
        return self._pool

    @property
    def closed(self) -> bool:
        """True once ``close`` has begun (any thread); nothing new should be reserved or scheduled then."""
        return self._closed

    def schedule(self, fn: Callable[[], Any], delay_s: float = 0.0) -> concurrent.futures.Future:
        """Run ``fn`` on the control thread (where every ``sipua`` call and worker event is handled), in order
        of due time, ``delay_s`` from now; callable from any thread, never waits.  The future has ``fn``'s result
        or exception; once the node is closed it fails at once with ``MediaNodeError("closed")``, and delayed
        work not yet due when the node closes is cancelled."""
        return self._ctl.submit(fn, delay_s=delay_s)

    def in_background(self, fn: Callable[[], Any]) -> concurrent.futures.Future:
        """Run ``fn`` on the spawner thread, which may block on starting a worker process without delaying
        call handling; callable from any thread (the loop too), never waits.  Functions run one at a time, in
        order; once the node is closed the future fails with ``MediaNodeError("closed")``."""
        return self._spawner.submit(fn)

    def reserve(self, uri_user: str, kind: str, identity: str, *,
                settings: PartySettings | None = None) -> Flow | None:
        """A call slot for the party ``kind``/``identity``: the worker's SIP address, to which the INVITE with
        Request-URI user ``uri_user`` is to be sent, or None when the node is not started, closed, or has no
        free slot now (a spare worker is then started in the background).  The INVITE is matched to the
        reservation on that worker within ``RESERVATION_TTL_S``; after that the slot is given back.

        ``settings`` first replaces the party's settings, unchecked (for service parties that ``set_party``
        does not know, e.g. the confirmation tone; ``reset`` forgets them, so pass them for each call);
        otherwise the party gets its default settings and tone on first contact.

        Runs on the gateway's loop (or any thread) and never spawns a worker or waits for one."""
        if settings is not None:
            with self._lock:
                self._settings[(kind, identity)] = settings
        if self._pool is None or self._closed:
            return None
        self.settings(kind, identity)  # gives the party its tone on first contact
        # Never spawn here: this runs on the gateway's loop.  The spawner keeps spare slots ready; when
        # demand outran it, this branch is unreachable for now (the router answers 480).
        worker = self._pool.try_acquire()
        if worker is None:
            self._spawner.submit(self._ensure_spare)
            log.warning("media node: no free call slot for %s %s (pool %s)", kind, identity, self.metrics())
            return None
        self.reserve_worker(worker, uri_user, kind, identity)
        self._spawner.submit(self._ensure_spare)
        return Flow("UDP", self.host, worker.sip_port("udp"))

    def reserve_worker(self, worker: Any, uri_user: str, kind: str, identity: str, *, expire: bool = True) -> None:
        """Expect an INVITE with Request-URI user ``uri_user`` on ``worker``, whose slots the caller already
        holds (e.g. ``pool.try_acquire(RELAY_SLOTS)``): for the next ``RESERVATION_TTL_S`` the first such INVITE
        is taken as the party ``kind``/``identity``'s (kind ``relay``: handed to ``relay.on_incoming`` with
        ``identity``).  With ``expire``, a sweep on the control thread then drops it unused and releases its
        slots (``RELAY_SLOTS`` for kind ``relay``, else one); without, the caller drops it itself
        (``drop_reservation``) before then.  Any thread; never waits."""
        with self._lock:
            self._reservations.append(_Reservation(worker, uri_user, kind, identity,
                                                   time.monotonic() + RESERVATION_TTL_S))
        if expire:
            self._ctl.submit(self._expire_reservations, delay_s=RESERVATION_TTL_S + 0.1)

    def drop_reservation(self, worker: Any, uri_user: str) -> None:
        """Forget every reservation for ``uri_user`` on ``worker`` (no slot is released).  Any thread."""
        with self._lock:
            self._reservations = [x for x in self._reservations if not (x.worker is worker and x.uri_user == uri_user)]

    def _ensure_spare(self) -> None:
        pool = self._pool
        if pool is not None and not self._closed:
            try:
                pool.ensure_free(self.spare_slots)
            except Exception as exc:
                log.warning("media node: could not start a spare worker: %s", exc)

    def _expire_reservations(self) -> None:
        now = time.monotonic()
        with self._lock:
            stale = [r for r in self._reservations if r.expires <= now]
            self._reservations = [r for r in self._reservations if r.expires > now]
        for r in stale:
            log.info("media node: no INVITE for %s %s arrived; slot released", r.kind, r.identity)
            if self._pool is not None:
                self._pool.release(r.worker, RELAY_SLOTS if r.kind == "relay" else 1)

    # ------------------------------------------------------------------ settings

    def settings(self, kind: str, identity: str) -> PartySettings:
        key = (kind, identity)
        with self._lock:
            s = self._settings.get(key)
            if s is None:
                tone = self.ivr.tone_for_new_call() if kind == "ivr" else self.tones.tone_for(f"{kind}:{identity}")
                s = PartySettings(tone_hz=tone)
                self._settings[key] = s
            return dataclasses.replace(s)

    def set_party(self, kind: str, identity: str, *, answer: str | None = None,
                  answer_delay_ms: int | None = None, tone_hz: float | None = None) -> PartySettings:
        kind, identity = self.check_party(kind, identity)
        if answer is not None and answer not in ANSWER_MODES:
            raise MediaNodeError("invalid_answer", f"answer {answer!r} is not one of {list(ANSWER_MODES)}",
                                 "body.answer")
        if answer_delay_ms is not None and (isinstance(answer_delay_ms, bool) or not isinstance(answer_delay_ms, int)
                                            or not 0 <= answer_delay_ms <= 600_000):
            raise MediaNodeError("invalid_delay", f"answer_delay_ms must be an integer from 0 to 600000, got "
                                 f"{answer_delay_ms!r}", "body.answer_delay_ms")
        if tone_hz is not None:
            check_tone(tone_hz, "body.tone_hz")
        current = self.settings(kind, identity)
        new = PartySettings(answer=answer if answer is not None else current.answer,
                            answer_delay_ms=answer_delay_ms if answer_delay_ms is not None
                            else current.answer_delay_ms,
                            tone_hz=float(tone_hz) if tone_hz is not None else current.tone_hz)
        with self._lock:
            self._settings[(kind, identity)] = new
            if tone_hz is not None:
                self.tones.set(f"{kind}:{identity}", float(tone_hz))
        return new

    def check_party(self, kind: str, identity: str, where: str = "path") -> tuple[str, str]:
        if kind not in PARTY_KINDS:
            raise MediaNodeError("invalid_party", f"party kind {kind!r} is not one of {list(PARTY_KINDS)}",
                                 f"{where}.kind")
        if kind == "ivr":
            if number_key(str(identity)) != number_key(self.ivr.number):
                raise MediaNodeError("unknown_ivr", f"the IVR answers at {self.ivr.number}, not {identity!r}",
                                     f"{where}.identity", status=404)
            return kind, self.ivr.number
        if kind == "pstn":
            if not isinstance(identity, str) or not _NUMBER.match(identity):
                raise MediaNodeError("invalid_number", f"{identity!r} is not a phone number (+ and 2-15 digits)",
                                     f"{where}.number" if where == "body.from" else f"{where}.identity")
            return kind, identity if identity.startswith("+") else "+" + identity
        if not isinstance(identity, str) or not identity:
            raise MediaNodeError("invalid_user", "a Teams party needs a user name",
                                 f"{where}.user" if where == "body.from" else f"{where}.identity")
        if self._directory is not None:
            user = self._directory.user(identity)
            if user is None:
                raise MediaNodeError("unknown_user", f"no tenant user {identity!r}",
                                     f"{where}.user" if where == "body.from" else f"{where}.identity", status=404)
        return kind, identity

    # ------------------------------------------------------------------ reads (any thread)

    def _mark_dead(self, calls: list[MediaCall]) -> None:
        """A call whose worker process died has ended, whatever its last reported state."""
        now = time.time()
        for c in calls:
            if c.state != "disconnected" and not getattr(c.worker, "alive", True):
                c.state, c.ended, c.error = "disconnected", now, f"media worker {c.worker.name} died"
                if self._core is not None:  # its port may be reused by anyone: no longer trusted
                    with contextlib.suppress(Exception):
                        self._core.trusted.discard((self.host, c.worker.sip_port("udp")))

    def calls(self, party: str | None = None) -> list[MediaCall]:
        with self._lock:
            out = list(self._calls.values())
            self._mark_dead(out)
        if party is not None:
            out = [c for c in out if self._is_party(c, party)]
        return out

    def _is_party(self, c: MediaCall, party: str) -> bool:
        """``party`` names the call's party: a Teams user by user name or number, a PSTN party by number
        (with or without '+')."""
        if c.identity == party:
            return True
        if not _NUMBER.match(party):
            return False
        if c.kind == "pstn":
            return number_key(c.identity) == number_key(party)
        user = self._directory.user(c.identity) if self._directory is not None else None
        return bool(user is not None and user.number and number_key(user.number) == number_key(party))

    def call(self, call_id: str) -> MediaCall:
        with self._lock:
            c = self._calls.get(call_id)
            if c is not None:
                self._mark_dead([c])
        if c is None:
            raise MediaNodeError("no_such_call", f"no media call {call_id!r}", "path.id", status=404)
        return c

    def recording_bytes(self, call_id: str) -> bytes:
        """The WAV of what the party heard so far (header sizes fixed up while it is still recorded)."""
        c = self.call(call_id)
        if not c.recording_started or not os.path.exists(c.recording_path):
            raise MediaNodeError("no_recording", f"call {call_id} has no recording yet (state {c.state})",
                                 "path.id", status=404)
        try:
            return snapshot_wav(c.recording_path)
        except WavError as exc:
            raise MediaNodeError("recording_unreadable", str(exc), "path.id", status=409) from None

    def metrics(self) -> dict[str, Any]:
        pool = self._pool
        if pool is None:
            return {"processes": 0}
        m = pool.metrics()
        return {"processes": m.processes, "capacity": m.capacity, "reserved": m.reserved,
                "spawned_total": m.spawned_total, "lost_total": m.lost_total,
                "pids": [w.pid for w in pool.workers]}

    # ------------------------------------------------------------------ commands (control thread)

    def originate(self, kind: str, identity: str, to: str, tone_hz: float | None = None) -> MediaCall:
        """Call ``to`` through the gateway from a Teams user or a PSTN party (blocking; not on the loop)."""
        self._spawner.submit(lambda: self._ensure_free(max(2, self.spare_slots))).result(60)
        return self.call_sync(lambda: self._originate(kind, identity, to, tone_hz))

    async def originate_async(self, kind: str, identity: str, to: str, tone_hz: float | None = None) -> MediaCall:
        """``originate`` for the gateway's loop: a worker is started first unless two slots are free (the
        call's own leg, and the answering leg when the callee is a party of this node too), on the spawner
        thread, so neither the loop nor call handling waits for it."""
        import asyncio

        await asyncio.wrap_future(self._spawner.submit(lambda: self._ensure_free(max(2, self.spare_slots))))
        return await self.run(lambda: self._originate(kind, identity, to, tone_hz))

    def _ensure_free(self, slots: int) -> None:
        if self._pool is not None and not self._closed:
            self._pool.ensure_free(slots)

    def _originate(self, kind: str, identity: str, to: str, tone_hz: float | None) -> MediaCall:
        kind, identity = self.check_party(kind, identity, "body.from")
        if not isinstance(to, str) or not re.match(r"^[A-Za-z0-9+._*#-]{1,64}$", to):
            raise MediaNodeError("invalid_target", f"'to' {to!r} is not a number or user name", "body.to")
        if tone_hz is not None:
            check_tone(tone_hz, "body.tone_hz")
        if self._pool is None or self.gateway_addr is None:
            raise MediaNodeError("not_started", "the media node is not started", status=409)
        settings = self.settings(kind, identity)
        hz = float(tone_hz) if tone_hz is not None else settings.tone_hz
        if kind == "teams":
            user = self._directory.user(identity) if self._directory is not None else None
            from_user = (user.number if user is not None and user.number else identity)
            display = user.name if user is not None else identity
        else:
            from_user, display = identity, None
        worker = self._pool.try_acquire() or self._pool.acquire()  # spawns here only if a spare was raced away
        self._spawner.submit(self._ensure_spare)
        account = f"o{next(self._accounts)}"
        try:
            worker.add_account(account, f"sip:{from_user}@{self.domain}", display_name=display)
            host, port = self.gateway_addr
            hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            handle = worker.make_call(account, f"sip:{to}@{hostport}")
        except Exception:
            self._pool.release(worker)
            with contextlib.suppress(Exception):
                worker.remove_account(account)
            raise
        info = {}
        with contextlib.suppress(Exception):
            info = worker.call_info(handle)
        c = MediaCall(id=f"m{next(self._ids)}", kind=kind, identity=identity, direction="out", remote=to,
                      worker=worker, handle=handle, sip_call_id=str(info.get("call_id", "")), tone_hz=hz,
                      account=account)
        c.recording_path = str(self.work_dir / "recordings" / f"{c.id}.wav")
        with self._lock:
            self._calls[c.id] = c
            self._by_handle[(id(worker), handle)] = c
        from sipua import CommandError

        try:
            worker.play_tone(hz, call=handle, level_dbfs=TONE_LEVEL_DBFS)
        except CommandError as exc:
            if exc.code not in ("no_such_call", "invalid_state"):
                raise
            # Refused at once (e.g. 486 from the gateway): its DISCONNECTED event records how it ended.
            log.info("media node: %s ended before its tone started: %s", c.id, exc)
        self._notify(c)
        return c

    def _live(self, call_id: str) -> MediaCall:
        c = self.call(call_id)
        if c.state == "disconnected":
            raise MediaNodeError("call_ended", f"call {call_id} has ended", "path.id", status=409)
        return c

    def hangup(self, call_id: str) -> MediaCall:
        def work() -> MediaCall:
            c = self._live(call_id)
            if c.state == "confirmed":  # the last RTP/RTCP figures, while the stream still exists
                with contextlib.suppress(Exception):
                    c.media = {**c.media, **c.worker.call_stats(c.handle)}
            c.worker.hangup(c.handle)
            return c
        return self.call_sync(work)

    def answer(self, call_id: str) -> MediaCall:
        def work() -> MediaCall:
            c = self._live(call_id)
            if c.direction != "in" or c.state != "early":
                raise MediaNodeError("invalid_state", f"call {call_id} is {c.direction} and {c.state}; only a "
                                     "ringing inbound call can be answered", "path.id", status=409)
            c.worker.answer(c.handle, 200)
            return c
        return self.call_sync(work)

    def hold(self, call_id: str) -> MediaCall:
        return self.call_sync(lambda: self._hold(call_id, True))

    def resume(self, call_id: str) -> MediaCall:
        return self.call_sync(lambda: self._hold(call_id, False))

    def _hold(self, call_id: str, on: bool) -> MediaCall:
        c = self._live(call_id)
        if c.state != "confirmed":
            raise MediaNodeError("invalid_state", f"call {call_id} is {c.state}; hold and resume need an "
                                 "answered call", "path.id", status=409)
        if on:
            c.worker.hold(c.handle)  # re-INVITE with a=sendonly (RFC 3264 §8.4)
        else:
            c.worker.unhold(c.handle)
        c.held = on
        self._notify(c)
        return c

    def send_dtmf(self, call_id: str, digits: str, method: str | None = None) -> MediaCall:
        if not isinstance(digits, str) or not _DIGITS.match(digits):
            raise MediaNodeError("invalid_digits", f"digits {digits!r} must be 1-64 of 0-9 * # A-D", "body.digits")

        def work() -> MediaCall:
            c = self._live(call_id)
            if c.state != "confirmed":
                raise MediaNodeError("invalid_state", f"call {call_id} is {c.state}; DTMF needs an answered call",
                                     "path.id", status=409)
            c.worker.send_dtmf(c.handle, digits, method=method)
            return c
        return self.call_sync(work)

    def set_tone(self, call_id: str, hz: float) -> MediaCall:
        check_tone(hz, "body.hz")

        def work() -> MediaCall:
            c = self._live(call_id)
            if c.wav is not None:
                c.worker.stop_wav(call=c.handle)
                c.wav = None
            c.worker.play_tone(float(hz), call=c.handle, level_dbfs=TONE_LEVEL_DBFS)
            c.tone_hz = float(hz)
            self._notify(c)
            return c
        return self.call_sync(work)

    def play_wav(self, call_id: str, path: str, loop: bool = True) -> MediaCall:
        """Play a WAV file (16-bit PCM) to the call instead of the party's tone."""
        if not isinstance(path, str) or not os.path.isfile(path):
            raise MediaNodeError("no_such_file", f"WAV file {path!r} does not exist", "body.path")

        def work() -> MediaCall:
            c = self._live(call_id)
            c.worker.stop_tone(call=c.handle)
            c.worker.play_wav(os.path.abspath(path), call=c.handle, loop=loop)
            c.wav = path
            self._notify(c)
            return c
        return self.call_sync(work)

    def refresh_stats(self, call_id: str) -> MediaCall:
        def work() -> MediaCall:
            c = self.call(call_id)
            if c.state == "confirmed":
                with contextlib.suppress(Exception):
                    c.media = {**c.media, **c.worker.call_stats(c.handle)}
            return c
        return self.call_sync(work)

    # ------------------------------------------------------------------ worker events (control thread)

    def _on_event(self, worker: Any, ev: Any) -> None:
        try:
            if ev.type == "incoming_call":
                try:
                    self._on_incoming(worker, ev)
                except Exception:
                    # never leave the caller ringing on a party that cannot take the call
                    _quietly(worker.reject, int(ev.data["call"]), 500)
                    raise
                return
            if self.relay is not None and self.relay.on_event(worker, ev):
                return
            c = self._by_handle.get((id(worker), ev.data.get("call"))) if ev.data.get("call") is not None else None
            if c is None:
                return
            if ev.type in ("transfer_request", "replaced") and ev.data.get("new_call") is not None:
                self._adopt(c, int(ev.data["new_call"]), ev)
            elif ev.type == "call_state":
                self._on_call_state(c, ev)
            elif ev.type == "dtmf":
                wall = time.time() - max(0.0, time.monotonic() - ev.ts)
                with self._lock:
                    c.dtmf.append({"digit": ev.data["digit"], "method": ev.data["method"], "t": round(wall, 3)})
                if c.kind == "ivr":
                    self.ivr.on_digit(c, str(ev.data["digit"]), str(ev.data["method"]), wall)
                self._notify(c)
            elif ev.type == "media_state":
                c.media["status"] = ev.data.get("status")
                c.media["direction"] = ev.data.get("direction")
        except Exception:
            log.exception("media node: handling %s from %s failed", ev, getattr(worker, "name", worker))

    def _on_incoming(self, worker: Any, ev: Any) -> None:
        handle = int(ev.data["call"])
        uri_user = _request_uri_user(ev.data.get("raw", "")) or _uri_user(ev.data.get("to", ""))
        now = time.monotonic()
        with self._lock:
            match = next((r for r in self._reservations if r.worker is worker and r.uri_user == uri_user
                          and r.expires > now), None)
            if match is not None:
                self._reservations.remove(match)
        if match is not None and match.kind == "relay" and self.relay is not None:
            self.relay.on_incoming(worker, ev, match.identity)
            return
        if match is not None:
            kind, identity = match.kind, match.identity
        else:
            # An INVITE that did not come through routing (sent straight to a worker): it holds no
            # reservation, so none is given back when it ends.
            kind, identity = self._identify(uri_user)
        settings = self.settings(kind, identity)
        remote = _uri_user(ev.data.get("from", "")) or ev.data.get("from", "")
        c = MediaCall(id=f"m{next(self._ids)}", kind=kind, identity=identity, direction="in", remote=remote,
                      worker=worker, handle=handle, sip_call_id=str(ev.data.get("call_id", "")),
                      state="early", tone_hz=settings.tone_hz, slot_released=match is None)
        c.recording_path = str(self.work_dir / "recordings" / f"{c.id}.wav")
        with self._lock:
            self._calls[c.id] = c
            self._by_handle[(id(worker), handle)] = c
        self._notify(c)
        from sipua import CommandError

        try:
            if settings.answer == "busy":
                worker.reject(handle, 486, reason="Busy Here")
                return
            worker.play_tone(settings.tone_hz, call=handle, level_dbfs=TONE_LEVEL_DBFS)
            worker.answer(handle, 180)
            if settings.answer == "auto":
                if settings.answer_delay_ms:
                    self._ctl.submit(lambda: self._delayed_answer(c), delay_s=settings.answer_delay_ms / 1000)
                else:
                    worker.answer(handle, 200)
        except CommandError as exc:
            if exc.code not in ("no_such_call", "invalid_state"):
                raise
            # CANCELled before we got to it (another branch of a fork answered first, RFC 3261 §16.7
            # step 10 / §9.2): its call_state DISCONNECTED event records the end.
            log.info("media node: %s ended before it was answered: %s", c.id, exc)

    def _adopt(self, old: MediaCall, handle: int, ev: Any) -> None:
        """A call pjsua made for this party on its own: the INVITE of a transfer it was asked to make (REFER,
        RFC 3515), or one that replaced its call (Replaces, RFC 3891). Same party, same tone, recorded."""
        transfer = ev.type == "transfer_request"
        remote = _uri_user(str(ev.data.get("target", ""))) or old.remote
        c = MediaCall(id=f"m{next(self._ids)}", kind=old.kind, identity=old.identity,
                      direction="out" if transfer else "in", remote=remote, worker=old.worker, handle=handle,
                      state="calling" if transfer else "early", tone_hz=old.tone_hz, slot_released=True)
        c.recording_path = str(self.work_dir / "recordings" / f"{c.id}.wav")
        # The new call runs on the old call's temporary account: it goes when the last call using it ends.
        c.account = old.account
        with self._lock:
            self._calls[c.id] = c
            self._by_handle[(id(old.worker), handle)] = c
        with contextlib.suppress(Exception):
            c.worker.play_tone(c.tone_hz, call=handle, level_dbfs=TONE_LEVEL_DBFS)
        info: dict[str, Any] = {}
        with contextlib.suppress(Exception):
            info = c.worker.call_info(handle)
            c.sip_call_id = str(info.get("call_id", ""))
        self._notify(c)
        if _STATES.get(str(info.get("state", ""))) not in (None, c.state):  # events that came before adoption
            import types

            self._on_call_state(c, types.SimpleNamespace(data={"state": info["state"], "code": info.get("code")}))

    def _delayed_answer(self, c: MediaCall) -> None:
        if c.state == "early":
            with contextlib.suppress(Exception):
                c.worker.answer(c.handle, 200)

    def _identify(self, uri_user: str) -> tuple[str, str]:
        if uri_user and number_key(uri_user) == number_key(self.ivr.number):
            return "ivr", self.ivr.number
        if self._directory is not None:
            user = self._directory.by_number(uri_user) or self._directory.user(uri_user)
            if user is not None:
                return "teams", user.username
        return "pstn", uri_user if uri_user.startswith("+") else "+" + uri_user

    def _on_call_state(self, c: MediaCall, ev: Any) -> None:
        state = _STATES.get(ev.data.get("state", ""), c.state)
        code = ev.data.get("code")
        if c.state == "disconnected":
            return
        if state == "confirmed" and not c.recording_started:
            # Recording starts before the call reads as confirmed, so a confirmed call always has one.
            try:
                c.worker.record(c.handle, c.recording_path)
                c.recording_started = True
            except Exception as exc:
                log.warning("media node: cannot record %s: %s", c.id, exc)
        with self._lock:
            if c.state == "disconnected":
                return
            c.state = state
            if code:
                c.status_code = int(code)
            if state == "confirmed" and c.answered is None:
                c.answered = time.time()
            if state == "disconnected":
                c.ended = time.time()
        if state == "disconnected":
            # the worker closes the recording of an ended call itself and reports record_complete
            if not c.slot_released and self._pool is not None:
                c.slot_released = True
                with contextlib.suppress(Exception):
                    self._pool.release(c.worker)
            if c.account is not None:
                account, c.account = c.account, None
                with self._lock:
                    shared = any(o.account == account and o.worker is c.worker and o.state != "disconnected"
                                 for o in self._calls.values() if o is not c)
                if not shared:  # a transfer's call (``_adopt``) may still use it
                    self._ctl.submit(lambda: _quietly(c.worker.remove_account, account), delay_s=0.5)
            with self._lock:
                self._by_handle.pop((id(c.worker), c.handle), None)
        self._notify(c)


def check_tone(hz: Any, where: str) -> float:
    if isinstance(hz, bool) or not isinstance(hz, int | float) or not 100 <= hz <= 3400:
        raise MediaNodeError("invalid_tone", f"tone {hz!r} must be a number of Hz from 100 to 3400 "
                             "(the telephone band)", where)
    return float(hz)


def _quietly(fn: Callable[..., Any], *args: Any) -> None:
    with contextlib.suppress(Exception):
        fn(*args)


def _request_uri_user(raw: str) -> str:
    """User part of the Request-URI of a raw INVITE (RFC 3261 §7.1 request line)."""
    first = raw.split("\r\n", 1)[0] if raw else ""
    parts = first.split(" ")
    return _uri_user(parts[1]) if len(parts) == 3 else ""


def _uri_user(value: str) -> str:
    m = re.search(r"sips?:([^@;>\s]+)@", value or "")
    return m.group(1) if m else ""
