"""Which conference-bridge connections a worker wants, computed from what it was told to do.

pjsua mixes audio through a conference bridge whose ports ("slots") are the calls' streams, tone
generators, WAV players and recorders.  A call's slot changes whenever its media is re-created (every
re-INVITE may do it), and the bridge forgets that call's connections when that happens.  So the
worker never edits connections incrementally: it keeps the *intent* (which tone goes where, which calls
are held, muted, bridged or recorded) and after every media change derives the full set of wanted
connections from it with ``plan``, then applies the difference.

Rules:
- a tone or WAV player aimed at one call feeds that call; one aimed at ``None`` feeds every call;
- a call that this side put on hold, or muted, gets no audio at all: pjsua keeps sending RTP to a held
  party (RFC 3264 §8.4 allows music on hold), so the silence has to be made here;
- two bridged calls hear each other (a local three-way conference: the local tones feed both);
- a recorder of a call listens to that call whatever its hold or mute state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

Edge = tuple[int, int]  # (source slot, sink slot)


@dataclass(frozen=True)
class CallPorts:
    """The wiring-relevant state of one call."""

    call: int
    slot: int | None  # None while the call has no active audio stream
    held: bool = False
    muted: bool = False


def plan(
    calls: Iterable[CallPorts],
    tones: Mapping[int | None, int],
    players: Mapping[int | None, int],
    recorders: Mapping[int, int],
    bridges: Iterable[frozenset[int]],
) -> set[Edge]:
    """Return every (source slot, sink slot) connection the bridge should have.

    ``tones`` and ``players`` map a call handle (or None for "all calls") to the slot of the source;
    ``recorders`` maps a call handle to its recorder's slot; ``bridges`` holds pairs of call handles.
    """
    by_call = {c.call: c for c in calls}
    edges: set[Edge] = set()
    for c in by_call.values():
        if c.slot is None:
            continue
        if not (c.held or c.muted):
            for sources in (tones, players):
                for target in (None, c.call):
                    src = sources.get(target)
                    if src is not None:
                        edges.add((src, c.slot))
        rec = recorders.get(c.call)
        if rec is not None:
            edges.add((c.slot, rec))
    for pair in bridges:
        if len(pair) != 2:
            continue
        a, b = (by_call.get(h) for h in sorted(pair))
        if a is None or b is None or a.slot is None or b.slot is None:
            continue
        for src, dst in ((a, b), (b, a)):
            if not (dst.held or dst.muted):
                edges.add((src.slot, dst.slot))  # type: ignore[arg-type]
    return edges


def diff(current: set[Edge], wanted: set[Edge]) -> tuple[set[Edge], set[Edge]]:
    """(connections to remove, connections to add)."""
    return current - wanted, wanted - current
