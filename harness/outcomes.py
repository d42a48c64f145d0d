"""The outcome of a test, a matrix cell or a device feature — one closed set used everywhere."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Outcome(StrEnum):
    """What was observed for one test (or one device × feature cell).

    - ``pass``: every check held on observed events;
    - ``fail``: an observed event contradicted the expectation;
    - ``not_applicable``: the catalogue says the feature does not apply to the device (with a reason);
    - ``blocked``: the device could not be brought to the state the test needs (firmware verdict, broken
      device state machine), so nothing about the feature was observed;
    - ``error``: the lab itself failed (worker died, gateway down, bad fixture) — says nothing about the device;
    - ``flaky``: failed at least once and passed on a retry.
    """

    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "not_applicable"
    BLOCKED = "blocked"
    ERROR = "error"
    FLAKY = "flaky"

    @property
    def is_success(self) -> bool:
        return self in (Outcome.PASS, Outcome.FLAKY)

    @property
    def observed(self) -> bool:
        """True when the device's behaviour was observed (as opposed to skipped or lab trouble)."""
        return self in (Outcome.PASS, Outcome.FAIL, Outcome.FLAKY)


#: Severity order used to fold several test outcomes into one cell: the first that occurs wins.
SEVERITY: tuple[Outcome, ...] = (
    Outcome.FAIL,
    Outcome.ERROR,
    Outcome.FLAKY,
    Outcome.BLOCKED,
    Outcome.PASS,
    Outcome.NOT_APPLICABLE,
)


def parse_outcome(value: str) -> Outcome:
    """``Outcome`` from its text; a clear error listing the valid values otherwise."""
    try:
        return Outcome(value)
    except ValueError:
        raise ValueError(f"unknown outcome {value!r}; expected one of: {', '.join(o.value for o in Outcome)}") from None


def combine(outcomes: Iterable[Outcome | str]) -> Outcome:
    """Fold the outcomes of a cell's tests: any fail → fail, then error, flaky, blocked, pass; all n/a → n/a.

    An empty cell is ``not_applicable`` only when nothing ran; callers decide what an empty cell means, so an
    empty input raises ``ValueError``.
    """
    seen = {parse_outcome(o) if not isinstance(o, Outcome) else o for o in outcomes}
    if not seen:
        raise ValueError("combine() needs at least one outcome")
    for o in SEVERITY:
        if o in seen:
            return o
    raise AssertionError("unreachable")  # pragma: no cover
