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


def reproduce(out_dir, mode: str = "quick", executor=None, store_path=None, sections=None,
              progress: bool = True, log=print, experiments=None) -> dict:
    """Run the experiments of `mode` into the store (default out_dir/results.sqlite) and write the report.

    sections: ids to run (default: all); experiments: the registry to use (default: ``EXPERIMENTS``)."""
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
        for rid in sections:
            exp = experiments[rid]
            why = exp.missing()
            if why:
                status[rid] = {"status": "skipped", "reason": why}
                log(f"{rid} {exp.title}: SKIPPED ({why})")
                continue
            t1 = time.perf_counter()
            log(f"{rid} {exp.title}: running")
            try:
                failed = run_experiment(exp, mode, store, executor, progress)
            except Exception as err:  # an experiment failing must not stop the others
                status[rid] = {"status": "error", "reason": f"{type(err).__name__}: {err}",
                               "seconds": time.perf_counter() - t1}
                log(f"{rid}: ERROR {type(err).__name__}: {err}")
                continue
            status[rid] = {"status": "ran", "seconds": time.perf_counter() - t1, "failed_runs": len(failed)}
            if failed:
                status[rid]["first_failure"] = failed[0][1].splitlines()[0][:300]
                log(f"{rid}: {len(failed)} runs failed, first: {status[rid]['first_failure']}")
        wall = time.perf_counter() - t0
        meta = {"mode": mode, "sections": {**prev.get("sections", {}), **status} if prev.get("mode") == mode
                else status, "wall_seconds": wall, "executor": getattr(executor, "name", "local"),
                "workers": getattr(executor, "workers", None)}
        store.set_meta("reproduce", meta)
        rep = write_report(store, out_dir, title=f"rhm reproduce --{mode}", experiments=experiments)
    return {"wall_seconds": wall, "status": status, "store": str(store_path), "report": str(out_dir / "index.md"),
            "summary": rep.get("summary", [])}
