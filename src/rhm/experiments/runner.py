"""The runner: put configurations through an executor into a store, skipping the keys already there.

:func:`run_configs` (any list of RunConfig), :func:`run_sweep` (a sweep's grid) and :func:`run_adaptive`
(bracket-and-bisect P* per grammar and learner variant, in rounds). Statistics live in
:mod:`~rhm.experiments.complexity`, the executors in :mod:`~rhm.experiments.executors`.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from .complexity import AdaptiveSearch, error_threshold
from .config import RunConfig
from .executors import LocalExecutor
from .progress import progress_bar
from .sweep import Sweep


class SweepOutcome:
    """What a call of run_configs did: counts of runs done now, skipped (already stored), failed."""

    def __init__(self, total, skipped):
        self.total, self.skipped, self.done, self.failed = total, skipped, 0, []

    def add(self, other: "SweepOutcome") -> None:
        self.total += other.total
        self.skipped += other.skipped
        self.done += other.done
        self.failed += other.failed

    def __repr__(self):
        return f"SweepOutcome(total={self.total}, skipped={self.skipped}, done={self.done}, failed={len(self.failed)})"


def run_configs(configs: Iterable[RunConfig], store, executor=None, imports=(), progress: bool = True,
                description: str = "runs") -> SweepOutcome:
    """Run every configuration whose key is not yet in `store`, writing each result as it arrives."""
    executor = executor or LocalExecutor()
    uniq = {}
    for c in configs:
        uniq.setdefault(c.key, c)
    by_sweep = {}
    for c in uniq.values():
        if c.sweep:
            by_sweep.setdefault(c.sweep, []).append(c.key)
    for sweep, keys in by_sweep.items():
        store.register(sweep, keys)
    finished = store.finished_keys(list(uniq))
    todo = [c for k, c in uniq.items() if k not in finished]
    out = SweepOutcome(len(uniq), len(uniq) - len(todo))
    if not todo:
        return out
    with progress_bar(description, total=len(todo), enabled=progress) as advance:
        for cdict, res in executor.run([c.to_dict() for c in todo], imports=imports):
            cfg = RunConfig.from_dict(cdict)
            if isinstance(res, Exception):
                store.put_failure(cfg, str(res))
                out.failed.append((cfg.key, str(res)))
            else:
                store.put(cfg, res)
                out.done += 1
            advance()
    return out


def run_sweep(sweep: Sweep, store, executor=None, progress: bool = True) -> SweepOutcome:
    """Run a sweep into `store` (grid, or bracket-and-bisect when ``sweep.adaptive`` is set)."""
    if sweep.adaptive is not None:
        return run_adaptive(sweep, store, executor=executor, progress=progress)
    return run_configs(sweep.expand(), store, executor=executor, imports=sweep.imports, progress=progress,
                       description=sweep.name)


def _searches(sweep: Sweep) -> list:
    """One fresh AdaptiveSearch per (grammar point, learner variant) of an adaptive sweep: [(grammar, var, search)]."""
    searches = []
    for g in sweep.grammar_points():
        unit = sweep.sizes.unit_size(g)
        cap = sweep.size_cap(g)
        for var in sweep.variants():
            s = AdaptiveSearch(error_threshold(g.n_classes), start=max(1, round(sweep.adaptive.start * unit)),
                               p_min=1, p_max=cap, factor=sweep.adaptive.factor, rel_tol=sweep.adaptive.rel_tol,
                               max_steps=sweep.adaptive.max_steps)
            searches.append((g, var, s))
    return searches


def _update(searches_at: list, errors: dict) -> None:
    """Feed one round's stored test errors to its searches: [(search, size, keys)]; a search whose seeds all
    failed stops where it is."""
    for s, p, keys in searches_at:
        errs = [errors[k] for k in keys if errors.get(k) is not None]
        if not errs:
            s.max_steps = len(s.evals)
            s.evals.setdefault(p, math.inf)
            continue
        s.update(p, float(np.mean(errs)))


def run_adaptive(sweep: Sweep, store, executor=None, progress: bool = True) -> SweepOutcome:
    """Run an adaptive sweep: one AdaptiveSearch per (grammar, learner variant), all advanced in rounds; each
    round runs every active search's next size for all seeds in parallel and stores the rows as usual (so a
    rerun replays the same decisions from the store and only runs what is missing)."""
    searches = _searches(sweep)
    total = SweepOutcome(0, 0)
    rnd = 0
    while True:
        batch, owners = [], []
        for g, var, s in searches:
            p = s.next_size()
            if p is None:
                continue
            cfgs = [sweep.run_for(g, var, p, seed) for seed in sweep.seeds]
            batch.extend(cfgs)
            owners.append((s, p, [c.key for c in cfgs]))
        if not batch:
            break
        rnd += 1
        total.add(run_configs(batch, store, executor=executor, imports=sweep.imports, progress=progress,
                              description=f"{sweep.name} (adaptive round {rnd})"))
        _update(owners, store.test_errors([k for _, _, keys in owners for k in keys]))  # one SQL query per round
    return total


def missing_runs(job, store) -> tuple[list[RunConfig], int]:
    """(runs missing from `store`, runs needed so far) for one job of an experiment (a Sweep or a list of
    RunConfig). A failed run counts as missing. An adaptive sweep is replayed from the store, as a rerun would:
    a search stops at its first round with a missing run (what comes after depends on it), so its count of runs
    needed is a lower bound until nothing is missing."""
    if not isinstance(job, Sweep) or job.adaptive is None:
        cfgs = list({c.key: c for c in (job.expand() if isinstance(job, Sweep) else job)}.values())
        done = store.finished_keys([c.key for c in cfgs])
        return [c for c in cfgs if c.key not in done], len(cfgs)
    missing, needed = [], 0
    active = _searches(job)
    while active:
        owners = []
        for g, var, s in active:
            p = s.next_size()
            if p is not None:
                owners.append((s, p, list({c.key: c for c in (job.run_for(g, var, p, seed)
                                                                for seed in job.seeds)}.values())))
        if not owners:
            break
        errors = store.test_errors([c.key for _, _, cfgs in owners for c in cfgs])
        complete, stopped = [], set()
        for s, p, cfgs in owners:
            needed += len(cfgs)
            lost = [c for c in cfgs if errors.get(c.key) is None]
            missing += lost
            if lost:
                stopped.add(id(s))
            else:
                complete.append((s, p, [c.key for c in cfgs]))
        _update(complete, errors)
        active = [(g, var, s) for g, var, s in active if id(s) not in stopped and s.next_size() is not None]
    return missing, needed
