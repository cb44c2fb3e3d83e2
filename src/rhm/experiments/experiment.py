"""The record of one experiment of ``rhm reproduce``: what it tests, what it needs, what it runs per mode, how
its stored runs are analysed, and the named thresholds of its verdict (rhm.experiments.verdicts).

``quick``: the grids of ``make demo`` (measured wall time in the README, target <= 10 min with the install on 2
idle CPU cores); ``full``: the larger grids for a cluster or GPU. An experiment whose quick grid cannot decide at
that cost runs only in ``full`` (``modes``; reproduce lists it as skipped in quick, with why). Sweep names carry
the mode, so quick and full rows never mix in one store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .sweep import Sweep
from .verdicts import Section

MODES = ("quick", "full")


@dataclass(frozen=True)
class Experiment:
    """One experiment: what it tests, what it needs, what it runs per mode, how it is analysed."""

    id: str
    title: str
    law: str
    runs: Callable[[str], list]                 # mode -> [Sweep | list[RunConfig]]
    analyze: Callable[..., Section]             # (exp, store, mode, out_dir) -> Section
    requires: tuple = ()                        # learner names that must be registered
    check: Callable[[], str | None] | None = None  # further requirement: None when met, else why not
    thresholds: dict = field(default_factory=dict)
    reads: Callable[[str], list] | None = None  # mode -> sweep names the analysis reads (default: its runs')
    modes: tuple = MODES                        # the modes it runs in
    modes_why: str = ""                         # why not in the others (said where it is skipped)

    def section(self) -> Section:
        return Section(self.id, self.title, self.law)

    def sweep_names(self, mode: str) -> list[str]:
        if self.reads is not None:
            return self.reads(mode)
        names = []
        for job in self.runs(mode):
            names.append(job.name if isinstance(job, Sweep) else job[0].sweep if job else "")
        return [n for n in names if n]

    def missing(self, mode: str | None = None) -> str | None:
        """None when the experiment can run (in `mode`, when given); else a sentence saying what is missing."""
        from .. import learners

        if mode is not None and mode not in self.modes:
            return f"runs only with --{' / --'.join(self.modes)}" + (f": {self.modes_why}" if self.modes_why else "")
        missing = []
        for name in self.requires:
            try:
                learners.get(name)
            except ValueError:
                missing.append(f"learner {name!r} is not registered")
            except Exception as err:  # a module being written may fail to import
                missing.append(f"learner {name!r} failed to import ({type(err).__name__}: {err})")
        if self.check is not None and (why := self.check()):
            missing.append(why)
        return "; ".join(missing) or None


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} must be one of {MODES}")
    return mode
