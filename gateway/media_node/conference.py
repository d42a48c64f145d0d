"""Conference mixers on the media node: meeting legs bridged in pjsua's conference bridge, across processes.

A worker process holds at most :attr:`sipua.UAPool.calls_per_process` calls (one kept for a chain), so a mixer is
made of **hubs**: whole workers reserved for meetings (every slot, so the pool never gives one of their slots to a
party). Every leg of a meeting ends on a hub: calls to the meeting access number (routed straight to a hub with a
free slot, answered there by the media node with the audio-conferencing IVR's tone), and the calls a meeting places
(dial-out, Request to Join, guests, Teams participants joining), which a hub places itself through the gateway.

Joining a leg to its meeting stops the IVR tone on it and bridges it with every other leg of the meeting on the same
hub (``conference`` pairs: each leg hears the mix of all the others, never itself). When a meeting has legs on
two hubs, the hubs are chained by a call between them (the second hub calls ``chain-<meeting>`` on the first,
directly, not through the gateway): the chain leg is bridged like any participant on both sides, so each side
hears the other side's mix. Leaving is a call that ends; its bridges go with it.

Worker commands run on one thread of the mixer's own (never on a worker's reader thread).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from gateway.services.model import Flow

log = logging.getLogger("sipgw.media.conference")


@dataclass
class Leg:
    hub: int
    handle: int
    meeting: str | None  # None while the caller is still in the IVR
    kind: str  # dial_in | dial_out | request_to_join | guest | teams | chain
    label: str
    media_call: str | None = None  # the media node's call id (legs the node answered)
    sip_call_id: str = ""
    state: str = "calling"
    joined: float | None = None
    left: float | None = None
    status_code: int | None = None
    account: str | None = None  # the hub's account a call the mixer placed went out on

    def to_json(self) -> dict[str, Any]:
        return {"hub": self.hub, "meeting": self.meeting, "kind": self.kind, "label": self.label,
                "media_call": self.media_call, "sip_call_id": self.sip_call_id, "state": self.state,
                "joined": self.joined, "left": self.left, "status_code": self.status_code}


@dataclass
class _Hub:
    index: int
    worker: Any
    capacity: int
    accounts: dict[tuple[str, str | None], str] = field(default_factory=dict)  # (From, display) → account


class ConferenceMixer:
    """Hubs and legs; ``on_change(leg)`` is called (on the mixer's thread) whenever a leg joins or leaves."""

    def __init__(self, node: Any, *, hubs: int = 2, on_change: Callable[[Leg], None] | None = None) -> None:
        self.node = node
        self.want_hubs = hubs
        self.on_change = on_change
        self.hubs: list[_Hub] = []
        self.legs: dict[tuple[int, int], Leg] = {}
        self._lock = threading.RLock()
        self._exec = ThreadPoolExecutor(1, thread_name_prefix="sipgw-mixer")
        self._accounts = itertools.count(1)
        self._chains: dict[tuple[str, int], Future] = {}
        self._by_media: dict[str, Leg] = {}  # the node's call id → leg, for legs the node answered

    # --- hubs -----------------------------------------------------------------------------------------------
    def start(self) -> Future:
        return self._exec.submit(self._start)

    def _start(self) -> None:
        pool = getattr(self.node, "_pool", None)
        if pool is None:
            return
        while len(self.hubs) < self.want_hubs:
            n = pool.calls_per_process
            worker = pool.acquire(n)  # every slot: the pool gives none of them to parties
            hub = _Hub(len(self.hubs), worker, n)
            worker.add_listener(lambda ev, h=hub: self._exec.submit(self._on_event, h, ev))
            self.hubs.append(hub)
            log.info("conference hub %d on media worker %s (%d calls)", hub.index, worker.name, n)
        pool.ensure_free(max(2, getattr(self.node, "spare_slots", 2)))  # the parties keep their spare slots

    def close(self) -> None:
        self._exec.shutdown(wait=False, cancel_futures=True)

    def _live(self, hub: int) -> int:
        with self._lock:
            return sum(1 for leg in list(self.legs.values()) if leg.hub == hub and leg.state != "disconnected")

    def _has_room(self, hub: _Hub) -> bool:
        """A participant fits: one slot of every hub stays free for a chain call (from or to another hub)."""
        return self._live(hub.index) < hub.capacity - 1 and getattr(hub.worker, "alive", True)

    def hub_flow(self) -> Flow | None:
        """Where a call to the access number goes: a hub with a free slot (None: the mixers are full)."""
        with self._lock:
            for hub in self.hubs:
                if self._has_room(hub):
                    return Flow("UDP", self.node.host, hub.worker.sip_port("udp"))
        return None

    def hub_of_port(self, port: int) -> _Hub | None:
        return next((h for h in self.hubs if h.worker.sip_port("udp") == port), None)

    def hub_of_worker(self, name: str | None) -> _Hub | None:
        return next((h for h in self.hubs if h.worker.name == name), None)

    # --- legs the node answered (dial-in, chain) ------------------------------------------------------------
    def note_answered(self, media_call: dict[str, Any]) -> Leg | None:
        """A call the node answered on a hub (from the node's notifications): tracked as an IVR leg."""
        hub = self.hub_of_worker(media_call.get("worker"))
        if hub is None:
            return None
        with self._lock:
            leg = self._by_media.get(media_call["id"])
            if leg is None:
                try:  # the node forgets its calls on a reset; their last notifications still come
                    c = self.node.call(media_call["id"])
                except Exception:
                    return None
                key = (hub.index, c.handle)
                leg = Leg(hub.index, c.handle, None, "dial_in", media_call.get("remote") or "caller",
                          media_call=media_call["id"], sip_call_id=media_call.get("sip_call_id", ""))
                self.legs[key] = leg
                self._by_media[media_call["id"]] = leg
            leg.state = media_call["state"]
            if leg.state == "disconnected" and leg.left is None:
                leg.left = time.time()
                if self.on_change:
                    self._exec.submit(self.on_change, leg)
        return leg

    def join(self, leg: Leg, meeting: str, kind: str | None = None, label: str | None = None) -> Future:
        leg.meeting = meeting
        if kind:
            leg.kind = kind
        if label:
            leg.label = label
        return self._exec.submit(self._join, leg)

    def _join(self, leg: Leg) -> None:
        hub = self.hubs[leg.hub]
        w = hub.worker
        with contextlib.suppress(Exception):
            w.stop_tone(call=leg.handle)
        with self._lock:
            snapshot = list(self.legs.values())
        others = [o for o in snapshot if o is not leg and o.meeting == leg.meeting and o.hub == leg.hub
                  and o.state == "confirmed" and o.joined is not None]
        for o in others:
            try:
                w.conference(leg.handle, o.handle)
            except Exception as exc:
                log.warning("mixer: bridging %s with %s failed: %s", leg.label, o.label, exc)
        leg.joined = time.time()
        if leg.kind != "chain":
            self._ensure_chains(leg.meeting)
        if self.on_change:
            self.on_change(leg)

    def _ensure_chains(self, meeting: str | None) -> None:
        """Hubs holding legs of one meeting are chained to its first hub."""
        with self._lock:
            snapshot = list(self.legs.values())
        hubs = sorted({leg.hub for leg in snapshot if leg.meeting == meeting and leg.state != "disconnected"
                       and leg.kind != "chain"})
        if len(hubs) < 2 or meeting is None:
            return
        first = self.hubs[hubs[0]]
        for idx in hubs[1:]:
            key = (meeting, idx)
            if key in self._chains:
                continue
            target = first.worker.uri(f"chain-{meeting}")
            self._chains[key] = Future()
            self._dial_now(self.hubs[idx], meeting, "chain", f"chain to hub {first.index}", target,
                           f"sip:chain-{meeting}@{self.node.domain}", None)

    # --- legs the mixer places ------------------------------------------------------------------------------
    def dial(self, meeting: str, kind: str, label: str, target: str | Callable[[], str], from_uri: str,
             display: str | None, headers: tuple[tuple[str, str], ...] = ()) -> Future:
        """Place a call from the meeting (through the gateway unless ``target`` is a full URI to a worker; a
        callable target is resolved on the mixer's thread)."""
        def work() -> Leg:
            nonlocal target
            pool = getattr(self.node, "_pool", None)
            if pool is not None:  # the callee may be a party of this node: a slot is free (spawned) before the call
                free = pool.acquire(1)
                pool.release(free)
                pool.ensure_free(max(2, getattr(self.node, "spare_slots", 2)))
            if callable(target):
                target = target()
            with self._lock:
                hub = next((h for h in self.hubs if self._has_room(h)), None)
            if hub is None:
                raise RuntimeError("every conference hub is full")
            host, port = self.node.gateway_addr
            uri = target if target.startswith("sip:") else f"sip:{target}@{host}:{port}"
            return self._dial_now(hub, meeting, kind, label, uri, from_uri, display, headers)

        return self._exec.submit(work)

    def _dial_now(self, hub: _Hub, meeting: str, kind: str, label: str, uri: str, from_uri: str,
                  display: str | None, headers: tuple[tuple[str, str], ...] = ()) -> Leg:
        account = hub.accounts.get((from_uri, display))
        if account is None:
            if len(hub.accounts) >= 4:  # pjsua holds few accounts: drop those no live leg uses
                used = {leg.account for leg in list(self.legs.values()) if leg.hub == hub.index
                        and leg.state != "disconnected"}
                for key, acc in list(hub.accounts.items()):
                    if acc not in used:
                        with contextlib.suppress(Exception):
                            hub.worker.remove_account(acc)
                        del hub.accounts[key]
            account = f"mx{next(self._accounts)}"
            hub.worker.add_account(account, from_uri, display_name=display)
            hub.accounts[(from_uri, display)] = account
        handle = hub.worker.make_call(account, uri, headers=headers) if headers else hub.worker.make_call(account,
                                                                                                          uri)
        leg = Leg(hub.index, handle, meeting, kind, label, account=account)
        with contextlib.suppress(Exception):
            leg.sip_call_id = str(hub.worker.call_info(handle).get("call_id", ""))
        with self._lock:
            self.legs[(hub.index, handle)] = leg
        return leg

    def hangup(self, leg: Leg) -> Future:
        return self._exec.submit(lambda: self.hubs[leg.hub].worker.hangup(leg.handle))

    def _on_event(self, hub: _Hub, ev: Any) -> None:
        if ev.type != "call_state":
            return
        leg = self.legs.get((hub.index, ev.data.get("call")))
        if leg is None or leg.media_call is not None:  # unknown, or the node's own call (it notifies us)
            return
        state = {"CONFIRMED": "confirmed", "DISCONNECTED": "disconnected", "EARLY": "early"}.get(
            str(ev.data.get("state")), leg.state)
        if ev.data.get("code"):
            leg.status_code = int(ev.data["code"])
        if state == leg.state:
            return
        leg.state = state
        if state == "confirmed" and leg.joined is None:
            self._join(leg)
        elif state == "disconnected":
            leg.left = time.time()
            if self.on_change:
                self.on_change(leg)

    # --- reads ----------------------------------------------------------------------------------------------
    def meeting_legs(self, meeting: str) -> list[Leg]:
        with self._lock:
            return [leg for leg in self.legs.values() if leg.meeting == meeting]

    def forget_ended(self) -> None:
        with self._lock:
            for key in [k for k, v in self.legs.items() if v.state == "disconnected"]:
                del self.legs[key]
            self._by_media = {k: v for k, v in self._by_media.items() if v.state != "disconnected"}
            self._chains = {k: v for k, v in self._chains.items()
                            if any(leg.meeting == k[0] and leg.kind == "chain" for leg in self.legs.values())}
