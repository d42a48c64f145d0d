#!/usr/bin/env python3
"""Render the SIP transaction tables as Graphviz DOT, one graph per machine.

The graphs are built from ``gateway.sip.transaction.TRANSITIONS`` and nothing else, so the drawings are
the tables: a transition missing from a figure is missing from the code. Usage::

    python tools/draw_state_diagrams.py            # all four graphs on stdout
    python tools/draw_state_diagrams.py docs/fsm   # one <machine>.dot file per machine in docs/fsm/
    dot -Tsvg docs/fsm/invite_client.dot -o invite_client.svg
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

from gateway.sip.transaction import START_EVENTS, TRANSITIONS, TransactionKind, TransactionState

_SECTIONS = {
    TransactionKind.INVITE_CLIENT: "RFC 3261 §17.1.1, RFC 6026 §8.4",
    TransactionKind.NON_INVITE_CLIENT: "RFC 3261 §17.1.2",
    TransactionKind.INVITE_SERVER: "RFC 3261 §17.2.1, RFC 6026 §8.7",
    TransactionKind.NON_INVITE_SERVER: "RFC 3261 §17.2.2",
}


def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def file_stem(kind: TransactionKind) -> str:
    return kind.name.lower()


def render(kind: TransactionKind) -> str:
    """The DOT text of one machine. Parallel edges with the same effects are merged into one label."""
    table = TRANSITIONS[kind]
    lines = [
        f"digraph {file_stem(kind)} {{",
        f"    label={_dot_string(f'{kind.value} transaction ({_SECTIONS[kind]})')};",
        "    labelloc=t;",
        "    rankdir=TB;",
        '    node [shape=box, style=rounded, fontname="Helvetica"];',
        '    edge [fontname="Helvetica", fontsize=10];',
        f"    {TransactionState.IDLE.name} [shape=point, width=0.15, xlabel={_dot_string(START_EVENTS[kind].value)}];",
        f"    {TransactionState.TERMINATED.name} [peripheries=2];",
    ]
    for state in table:
        if state not in (TransactionState.IDLE, TransactionState.TERMINATED):
            lines.append(f"    {state.name} [label={_dot_string(state.value)}];")
    edges: dict[tuple[TransactionState, TransactionState, str], list[str]] = defaultdict(list)
    for state, events in table.items():
        for event, (next_state, effects) in events.items():
            action = ", ".join(str(effect) for effect in effects) or "-"
            edges[(state, next_state, action)].append(event.value)
    for (state, next_state, action), events in edges.items():
        label = " | ".join(events) + "\n" + action
        lines.append(f"    {state.name} -> {next_state.name} [label={_dot_string(label)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "folder", nargs="?", type=Path, help="write one <machine>.dot file per machine here instead of stdout"
    )
    args = parser.parse_args(argv)
    if args.folder is None:
        sys.stdout.write("\n".join(render(kind) for kind in TransactionKind))
        return 0
    args.folder.mkdir(parents=True, exist_ok=True)
    for kind in TransactionKind:
        path = args.folder / f"{file_stem(kind)}.dot"
        path.write_text(render(kind), encoding="utf-8")
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
