"""The one verdict rule every experiment uses, and the Section an analysis returns.

A law names an *acceptance band* [accept_lo, accept_hi] for a measured quantity (a slope, a ratio, a fraction
of P_max). With the quantity's 95% confidence interval [lo, hi]:

- **held** when the whole interval lies inside the band;
- **not held** when the whole interval lies outside it;
- **inconclusive** otherwise: the interval is too wide to decide (e.g. a slope CI [-0.31, 2.18] against the band
  [0.7, 1.3]). A point estimate inside the band is never enough.

Quantities without sampling noise (exact counts, exact oracle values) have a zero-width interval, so the rule
reduces to "inside the band". Several checks combine with :func:`combine`: not held if any is, held if all are,
inconclusive otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

HELD, NOT_HELD, INCONCLUSIVE = "held", "not held", "inconclusive"


def interval_verdict(lo: float, hi: float, accept_lo: float = -math.inf, accept_hi: float = math.inf) -> str:
    """The verdict of a quantity with confidence interval [lo, hi] against the band [accept_lo, accept_hi]."""
    if math.isnan(lo) or math.isnan(hi):
        return INCONCLUSIVE
    if accept_lo <= lo and hi <= accept_hi:
        return HELD
    if hi < accept_lo or lo > accept_hi:
        return NOT_HELD
    return INCONCLUSIVE


def exact_verdict(ok: bool) -> str:
    """A check without sampling noise (zero-width interval)."""
    return HELD if ok else NOT_HELD


def combine(verdicts) -> str:
    """not held if any check is not held, held if every check held (and there is one), inconclusive otherwise."""
    verdicts = list(verdicts)
    if NOT_HELD in verdicts:
        return NOT_HELD
    if verdicts and all(v == HELD for v in verdicts):
        return HELD
    return INCONCLUSIVE


@dataclass
class Section:
    """What an experiment's analysis returns: the verdict, one line of numbers, and report blocks."""

    rid: str
    title: str
    law: str
    verdict: str = INCONCLUSIVE     # held | not held | inconclusive | skipped | error
    numbers: str = ""
    blocks: list = field(default_factory=list)
