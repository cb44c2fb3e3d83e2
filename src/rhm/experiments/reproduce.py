"""`rhm reproduce`: run every experiment of the registry (:mod:`rhm.experiments.registry`) into a store, then
write the report.

An experiment whose requirements are missing (a learner not registered or failing to import) is skipped, and the
report says so and why; no number is ever made up. Every run goes through the store, so an interrupted reproduce
resumes where it stopped.
"""

from __future__ import annotations

import time
from pathlib import Path

from .executors import LocalExecutor
from .progress import activity, fmt_seconds
from .registry import EXPERIMENTS, MODES
from .report import write_report
from .runner import run_configs, run_sweep
from .store import ResultStore
from .sweep import Sweep


def run_experiment(exp, mode: str, store, executor, progress: bool = True) -> list:
    """Run one experiment's jobs for `mode` into `store`; returns the failed (key, error) pairs."""
    failed = []
    for job in exp.runs(mode):
        if isinstance(job, Sweep):
            job.validate()
            out = run_sweep(job, store, executor=executor, progress=progress)
        else:
            out = run_configs(job, store, executor=executor, progress=progress, description=exp.id)
        failed += out.failed
    return failed


def plan(mode: str, sections, store=None, experiments=None) -> dict:
    """Runs still to do and their CPU seconds per section, from the cost model (no run is timed: it takes
    seconds). A run shared by two sections (R7 and R6 reuse R4's) counts in the first. Adaptive sections are
    counted at their upper bound. Returns {rid: {"runs", "cpu_seconds", "adaptive"}}."""
    from .estimate import planned_configs, quick_estimate

    experiments = experiments or EXPERIMENTS
    out, seen = {}, set()
    for rid in sections:
        cfgs, adaptive = [], False
        for job in experiments[rid].runs(mode):
            if isinstance(job, Sweep):
                adaptive |= job.adaptive is not None
                cfgs += planned_configs(job.validate())
            else:
                cfgs += list(job)
        cfgs = [c for c in cfgs if not (c.key in seen or seen.add(c.key))]
        est = quick_estimate(cfgs, store=store)
        out[rid] = {"runs": est.runs, "cpu_seconds": est.cpu_hours * 3600, "adaptive": adaptive}
    return out


def _workers(executor) -> int:
    w = getattr(executor, "workers", None)
    return max(1, int(w)) if isinstance(w, int) and w > 0 else 1


def reproduce(out_dir, mode: str = "quick", executor=None, store_path=None, sections=None,
              progress: bool = True, log=print, experiments=None) -> dict:
    """Run the experiments of `mode` into the store (default out_dir/results.sqlite) and write the report.

    sections: ids to run (default: all); experiments: the registry to use (default: ``EXPERIMENTS``).
    Each section runs every run its verdict reads (R9's quick mode includes R4's CNN runs). The store's meta
    'reproduce' is written as each section starts and ends, so an interrupted call still lists its sections."""
    experiments = experiments or EXPERIMENTS
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} must be one of {MODES}")
    sections = list(sections or experiments)
    for rid in sections:
        if rid not in experiments:
            raise ValueError(f"section {rid!r} is not one of {list(experiments)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    store_path = Path(store_path) if store_path else out_dir / "results.sqlite"
    executor = executor or LocalExecutor()
    t0 = time.perf_counter()
    status = {}
    with ResultStore(store_path) as store:
        prev = store.get_meta("reproduce") or {}
        kept = dict(prev.get("sections", {})) if prev.get("mode") == mode else {}

        def save_meta():
            meta = {"mode": mode, "sections": {**kept, **status}, "wall_seconds": time.perf_counter() - t0,
                    "executor": getattr(executor, "name", "local"), "workers": getattr(executor, "workers", None)}
            store.set_meta("reproduce", meta)

        missing = {rid: experiments[rid].missing(mode) for rid in sections}
        runnable = [rid for rid in sections if not missing[rid]]
        with activity("planning the runs (imports the learners)", enabled=progress):
            costs = plan(mode, runnable, store=store, experiments=experiments)
        workers = _workers(executor)
        total_cpu = sum(c["cpu_seconds"] for c in costs.values())
        log(f"rhm reproduce --{mode}: {len(sections)} sections, {sum(c['runs'] for c in costs.values())} runs to "
            f"do, about {fmt_seconds(total_cpu)} of CPU time (≈ {fmt_seconds(total_cpu / workers)} wall on "
            f"{workers} worker{'s' * (workers > 1)}; a cost model, no run timed; adaptive sections at their upper "
            "bound):")
        for rid in sections:
            c = costs.get(rid)
            log(f"  {rid:<4} {experiments[rid].title[:60]:<60} " + (
                f"{c['runs']:>5} runs  {'≤ ' if c['adaptive'] else '≈ '}{fmt_seconds(c['cpu_seconds'])} CPU"
                if c else f"skipped ({missing[rid]})"))
        left_cpu = total_cpu
        for i, rid in enumerate(sections):
            exp = experiments[rid]
            if missing[rid]:
                status[rid] = {"status": "skipped", "reason": missing[rid]}
                log(f"{rid} {exp.title}: SKIPPED ({missing[rid]})")
                save_meta()
                continue
            t1 = time.perf_counter()
            elapsed = t1 - t0
            log(f"{rid} {exp.title}: running (section {i + 1}/{len(sections)}; {fmt_seconds(elapsed)} elapsed, "
                f"about {fmt_seconds(left_cpu / workers)} left)")
            status[rid] = {"status": "running", "started": time.time()}
            save_meta()
            try:
                failed = run_experiment(exp, mode, store, executor, progress)
            except Exception as err:  # an experiment failing must not stop the others
                status[rid] = {"status": "error", "reason": f"{type(err).__name__}: {err}",
                               "seconds": time.perf_counter() - t1}
                log(f"{rid}: ERROR {type(err).__name__}: {err}")
                save_meta()
                continue
            finally:
                left_cpu = max(0.0, left_cpu - costs[rid]["cpu_seconds"])
            status[rid] = {"status": "ran", "seconds": time.perf_counter() - t1, "failed_runs": len(failed)}
            if failed:
                status[rid]["first_failure"] = failed[0][1].splitlines()[0][:300]
                log(f"{rid}: {len(failed)} runs failed, first: {status[rid]['first_failure']}")
            log(f"{rid}: done in {fmt_seconds(status[rid]['seconds'])}")
            save_meta()
        wall = time.perf_counter() - t0
        save_meta()
        with activity(f"writing the report to {out_dir}", enabled=progress):
            rep = write_report(store, out_dir, title=f"rhm reproduce --{mode}", experiments=experiments)
    return {"wall_seconds": wall, "status": status, "store": str(store_path), "report": str(out_dir / "index.md"),
            "summary": rep.get("summary", [])}
