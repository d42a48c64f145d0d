"""Static inline SVG charts from the results history: self-contained, no script, no network.

- pass rate per feature over runs (one line per feature),
- per-model stability (passes per attempt, flaky runs noted),
- time per test (mean seconds per test of each feature, latest runs).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from html import escape

from harness.history.db import CellHistory

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd")


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">'
            f'<title>{escape(title)}</title>' + "".join(body) + "</svg>")


def pass_rate_over_runs(histories: Sequence[CellHistory]) -> str:
    """Per feature, the passes per attempt of its tests in each run (runs in time order)."""
    runs: dict[str, str] = {}
    tally: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for h in histories:
        for p in h.points:
            runs[p.run_id] = p.started_at
            if p.outcome == "not_applicable" or not p.attempts:
                continue
            t = tally[h.feature][p.run_id]
            t[0] += p.passes
            t[1] += p.attempts
    order = sorted(runs, key=lambda r: (runs[r], r))
    title = "Pass rate per feature over runs (passes per attempt)"
    w, h_, left, top, right, bottom = 640, 240, 40, 14, 170, 30
    pw, ph = w - left - right, h_ - top - bottom
    body = [f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>']
    for frac in (0, 0.5, 1):
        y = top + ph * (1 - frac)
        body.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{int(frac * 100)}%</text>')
    n = len(order)

    def x(i: int) -> float:
        return left + (pw * i / (n - 1) if n > 1 else pw / 2)

    for i in range(n):
        body.append(f'<text x="{x(i):.1f}" y="{h_ - 14}" text-anchor="middle">{i + 1}</text>')
    body.append(f'<text x="{left + pw / 2}" y="{h_ - 2}" text-anchor="middle">run (oldest first)</text>')
    for k, (feature, per_run) in enumerate(sorted(tally.items())):
        colour = PALETTE[k % len(PALETTE)]
        pts = [(x(i), top + ph * (1 - per_run[r][0] / per_run[r][1])) for i, r in enumerate(order)
               if r in per_run and per_run[r][1]]
        if len(pts) > 1:
            body.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="'
                        + " ".join(f"{a:.1f},{b:.1f}" for a, b in pts) + '"/>')
        body += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{colour}"/>' for a, b in pts]
        ly = top + 12 * k + 8
        body.append(f'<rect x="{w - right + 10}" y="{ly - 8}" width="10" height="10" fill="{colour}"/>'
                    f'<text x="{w - right + 24}" y="{ly + 1}">{escape(feature)}</text>')
    return _svg(w, max(h_, top + 12 * len(tally) + 10), body, title)


def _bars(items: list[tuple[str, float, str]], title: str, scale_max: float, unit: str) -> str:
    left, bar_h, w = 200, 16, 640
    body = []
    for i, (label, value, note) in enumerate(items):
        y = 6 + i * (bar_h + 4)
        length = (w - left - 120) * (value / scale_max if scale_max else 0)
        body.append(f'<text x="{left - 6}" y="{y + 12}" text-anchor="end">{escape(label)}</text>'
                    f'<rect x="{left}" y="{y}" width="{length:.1f}" height="{bar_h}" fill="#1f77b4"/>'
                    f'<text x="{left + length + 4:.1f}" y="{y + 12}">{value:.2f}{unit} {escape(note)}</text>')
    return _svg(w, 12 + len(items) * (bar_h + 4), body, title)


def stability_per_model(histories: Sequence[CellHistory]) -> str:
    """Passes per attempt of each model over every recorded run."""
    agg: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for h in histories:
        a = agg[f"{h.vendor} {h.model}"]
        a[0] += h.passes
        a[1] += h.attempts
        a[2] += h.flaky
    items = [(name, p / n, f"({p}/{n}{f', {f} flaky' if f else ''})") for name, (p, n, f) in sorted(agg.items())
             if n]
    return _bars(items, "Stability per model (passes per attempt)", 1.0, "")


def time_per_test(histories: Sequence[CellHistory]) -> str:
    """Mean seconds per test of each feature, over its latest run."""
    agg: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for h in histories:
        if h.points and h.points[-1].tests:
            agg[h.feature][0] += h.points[-1].duration_s
            agg[h.feature][1] += h.points[-1].tests
    items = [(f, s / n, "") for f, (s, n) in sorted(agg.items()) if n]
    top = max((v for _, v, _ in items), default=0.0)
    return _bars(items, "Time per test (s, latest run)", top, " s")


def trends_section(histories: Sequence[CellHistory], heading: str = "Trends from the results history") -> str:
    """An HTML section with the three charts, for matrix.html and the history page."""
    if not histories:
        return f'<section id="sipgw-trends"><h2>{escape(heading)}</h2><p>No recorded runs yet.</p></section>'
    parts = [f'<section id="sipgw-trends"><h2>{escape(heading)}</h2>']
    for chart, caption in ((pass_rate_over_runs(histories), "Pass rate per feature over runs (passes per attempt)"),
                           (stability_per_model(histories), "Stability per model (passes per attempt)"),
                           (time_per_test(histories), "Time per test (mean seconds, latest run)")):
        parts.append(f"<figure><figcaption><strong>{escape(caption)}</strong></figcaption>{chart}</figure>")
    return "".join(parts) + "</section>"
