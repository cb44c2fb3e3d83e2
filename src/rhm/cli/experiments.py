"""Command line for the experiment engine: ``rhm sweep``, ``rhm report``, ``rhm reproduce``.

Registered on the main typer app when ``rhm.cli`` imports this module. Progress bars and human output go to stderr.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import List, Optional

import typer

from ._common import CliError, _run, app, check_optional, check_out_dir, check_out_file, check_store_path

EXECUTOR_OPT = typer.Option("local", "--executor", help="local (process pool over the available cores) | ray")
ADDRESS_OPT = typer.Option(None, "--address", help="Ray cluster: auto | HOST:PORT (default: start a local Ray)")
GPUS_OPT = typer.Option(0.0, "--gpus-per-run", help="ray: GPUs each run reserves (torch learners use it; "
                        "0.5 = two runs per GPU; default 0 = CPU only)")
WORKERS_OPT = typer.Option(None, "--workers", help="local: worker processes (default: available cores; "
                           "0 = in this process); ray: CPUs of a local instance")


def _executor(executor: str, address: Optional[str], workers: Optional[int], gpus_per_run: float = 0.0):
    from ..experiments import make_executor

    ex = make_executor(executor, address=address, workers=workers, gpus_per_run=gpus_per_run)
    if hasattr(ex, "connect"):  # Ray: fail within seconds, naming --address, before any store file is created
        ex.connect()
    return ex


def _err(msg: str):
    typer.echo(msg, err=True)


@app.command()
def sweep(config: Path = typer.Argument(..., help="sweep definition (TOML; schema in rhm.experiments.sweep)"),
          store: Path = typer.Option(Path("results.sqlite"), "--store", help="SQLite results store (created)"),
          executor: str = EXECUTOR_OPT, address: Optional[str] = ADDRESS_OPT, workers: Optional[int] = WORKERS_OPT,
          gpus_per_run: float = GPUS_OPT,
          dry_run: bool = typer.Option(False, "--dry-run", help="list the runs (less those --store holds), estimate "
                                                                 "CPU-hours, run nothing"),
          time_budget: float = typer.Option(60.0, "--time-budget", help="--dry-run: seconds spent timing one run "
                                            "per learner and size (0: count only)"),
          csv: Optional[Path] = typer.Option(None, "--csv", help="also export the sweep's rows to this CSV"),
          parquet: Optional[Path] = typer.Option(None, "--parquet", help="also export to Parquet (needs pyarrow)"),
          no_progress: bool = typer.Option(False, "--no-progress", help="no progress bar")):
    """Run a sweep into a results store; finished runs (same key) are skipped, so a killed sweep resumes."""
    from ..experiments import ResultStore, Sweep, run_sweep

    def go():
        sw = Sweep.from_toml(config)
        if not dry_run:  # every output checked before the first run: a sweep never ends in an unwritable path
            check_store_path(store)
            for path, opt, suffixes in ((csv, "--csv", ()), (parquet, "--parquet", ())):
                if path is not None:
                    check_out_file(path, opt, suffixes)
            if parquet is not None:
                check_optional("pyarrow", "--parquet", "parquet")
            if executor == "ray":
                check_optional("ray", "--executor ray", "ray")
        if dry_run:
            from ..experiments.estimate import estimate, planned_configs

            with _dry_run_store(store) as held:
                runs, n_done = _not_in_store(planned_configs(sw), held)
            if n_done:
                _err(f"{n_done} of the sweep's runs are already in {store} (left out below)")
            for r in runs:
                typer.echo(f"{r.key} {r.label} {r.grammar} P={r.train_size} test={r.test_size} seed={r.seed}")
            if sw.adaptive is not None:
                _err("adaptive sweep: the runs and cost below are its upper bound (every search takes max_steps)")
            for line in estimate(runs, budget_s=time_budget, imports=sw.imports).lines():
                _err(line)
            return
        ex = _executor(executor, address, workers, gpus_per_run)
        with ResultStore(store) as st:
            if not no_progress:  # up front: runs left and their CPU time (cost model, nothing timed)
                from ..experiments.estimate import planned_configs, quick_estimate
                from ..experiments.progress import fmt_seconds

                est = quick_estimate(planned_configs(sw), store=st)
                n = ex.workers if isinstance(getattr(ex, "workers", None), int) and ex.workers > 0 else 1
                _err(f"sweep {sw.name}: {est.runs} runs to do{' at most (adaptive)' if sw.adaptive else ''}, about "
                     f"{fmt_seconds(est.cpu_hours * 3600)} of CPU time (≈ {fmt_seconds(est.cpu_hours * 3600 / n)} "
                     f"wall on {n} worker{'s' * (n > 1)}; a rough cost model, no run timed)")
            out = run_sweep(sw, st, executor=ex, progress=not no_progress)
            _err(f"sweep {sw.name}: {out.done} runs done, {out.skipped} already in {store}, {len(out.failed)} failed")
            for key, err in out.failed[:5]:
                _err(f"  failed {key}: {err.splitlines()[0]}")
            if csv:
                _err(f"wrote {st.to_csv(csv, sweep=sw.name)} rows to {csv}")
            if parquet:
                try:
                    _err(f"wrote {st.to_parquet(parquet, sweep=sw.name)} rows to {parquet}")
                except RuntimeError as err:
                    raise CliError(str(err)) from None
        if out.failed:
            raise typer.Exit(code=2)

    _run(go)


@app.command()
def report(store: Path = typer.Option(..., "--store", help="SQLite results store to report on"),
           out: Path = typer.Option(Path("report"), "--out", help="output directory (index.md, index.html, PNGs)"),
           title: str = typer.Option("rhm results", "--title", help="report title")):
    """Write index.md and index.html with tables, P* fits and figures from a results store."""
    from ..experiments.report import write_report

    from ..experiments.store import ResultStore

    def go():
        check_out_dir(out, "--out")  # first: opening a WAL store, even read-only, may add its -shm/-wal files
        check_store_path(store, readonly=True)
        with ResultStore(store, readonly=True) as st:  # a report never changes a byte of its store
            res = write_report(st, out, title=title)
        _err(f"wrote {res['paths'][0]} and {res['paths'][1]}")

    _run(go)


@app.command()
def reproduce(quick: bool = typer.Option(False, "--quick", help="small grids: make demo, <10 min on 2 cores (default)"),
              full: bool = typer.Option(False, "--full", help="the larger grid, meant for a cluster or GPU"),
              out: Path = typer.Option(Path("report"), "--out", help="output directory (report + results.sqlite)"),
              store: Optional[Path] = typer.Option(None, "--store", help="results store (default OUT/results.sqlite)"),
              executor: str = EXECUTOR_OPT, address: Optional[str] = ADDRESS_OPT, workers: Optional[int] = WORKERS_OPT,
              gpus_per_run: float = GPUS_OPT,
              section: List[str] = typer.Option([], "--section",
                                                help="run only these experiments (R1..R9, V1, V2, LM1..LM3, "
                                                     "DM1..DM3, SS1, FG1..FG3; repeat)"),
              as_json: bool = typer.Option(False, "--json", help="print the summary as one JSON object on stdout"),
              dry_run: bool = typer.Option(False, "--dry-run", help="count the runs (less those the store holds), "
                                                                     "estimate CPU-hours, run nothing"),
              time_budget: float = typer.Option(60.0, "--time-budget", help="--dry-run: seconds spent timing one "
                                                "run per learner and size (0: count only)"),
              no_progress: bool = typer.Option(False, "--no-progress", help="no progress bars")):
    """Run the headline experiments (R1-R9, V1-V2, LM1-LM3: rhm.experiments.registry) and write the report to OUT."""
    from ..experiments import reproduce as rep

    def go():
        if quick and full:
            raise CliError("--quick and --full exclude each other")
        mode = "full" if full else "quick"
        if dry_run:
            st = store if store is not None else out / "results.sqlite"
            return _reproduce_dry_run(mode, section or None, time_budget, as_json, st)
        check_out_dir(out, "--out")
        st = store if store is not None else out / "results.sqlite"
        if st.parent.exists():  # else it is created under --out (checked above) or refused by ResultStore
            check_store_path(st)
        if executor == "ray":
            check_optional("ray", "--executor ray", "ray")
        ex = _executor(executor, address, workers, gpus_per_run)
        res = rep.reproduce(out, mode=mode, executor=ex, store_path=store, sections=section or None,
                            progress=not no_progress, log=_err)
        if as_json:
            typer.echo(json.dumps(res, default=str))
        else:
            from rich.console import Console
            from rich.table import Table

            t = Table(title=f"rhm reproduce --{mode}: {res['wall_seconds'] / 60:.1f} min")
            for c in ("R", "experiment", "verdict", "numbers"):
                t.add_column(c, overflow="fold")
            for row in res["summary"]:
                t.add_row(row["R"], row["experiment"], row["verdict"], row["numbers"])
            Console(file=sys.stderr, width=160).print(t)
            _err(f"report: {res['report']}  store: {res['store']}")

    _run(go)


def _dry_run_store(store: Path | None):
    """The store a dry run subtracts, opened read-only (a dry run never writes a byte); a null context (None)
    where there is no store yet."""
    if store is None or not Path(store).exists():
        return contextlib.nullcontext()
    from ..experiments.store import ResultStore

    check_store_path(store, readonly=True)
    return ResultStore(store, readonly=True)


def _not_in_store(configs, store):
    """(the configs whose run the open `store` lacks, how many it holds): what a real run into it would still do
    (rhm.experiments.runner.missing_runs, the runner's own rule); every config when `store` is None."""
    if store is None:
        return list(configs), 0
    from ..experiments.runner import missing_runs

    left, needed = missing_runs(list(configs), store)
    return left, needed - len(left)


def _reproduce_dry_run(mode: str, sections, time_budget: float, as_json: bool, store: Path | None = None):
    """Runs and CPU-hours per section of `rhm reproduce --<mode>` (adaptive sections at their upper bound), less
    the runs `store` already holds."""
    from ..experiments.estimate import estimate, reproduce_configs
    from ..experiments.registry import EXPERIMENTS

    plan = reproduce_configs(mode, sections)
    with _dry_run_store(store) as held:  # opened once for every section
        plan = {rid: _not_in_store(cfgs, held) for rid, cfgs in plan.items()}
    out, t_end = {}, time.perf_counter() + max(0.0, time_budget)
    for i, (rid, (cfgs, n_done)) in enumerate(plan.items()):
        why = EXPERIMENTS[rid].missing(mode)
        per = max(0.0, t_end - time.perf_counter()) / (len(plan) - i)  # what a section leaves goes to the next
        est = estimate(cfgs, budget_s=0 if why else per)
        out[rid] = {"runs": est.runs, "cpu_hours": est.cpu_hours, "untimed_runs": est.untimed_runs,
                    "already_stored": n_done, "skipped": why}
        _err(f"{rid} {EXPERIMENTS[rid].title}" + (f" (cannot run here: {why})" if why else "")
             + (f" ({n_done} runs already in {store}, left out)" if n_done else ""))
        for line in est.lines(top=5):
            _err("  " + line)
    total = {"runs": sum(v["runs"] for v in out.values()), "cpu_hours": sum(v["cpu_hours"] for v in out.values()),
             "untimed_runs": sum(v["untimed_runs"] for v in out.values()),
             "already_stored": sum(v["already_stored"] for v in out.values())}
    bound = f" (a lower bound: {total['untimed_runs']} runs not timed)" if total["untimed_runs"] else ""
    stored = f", {total['already_stored']} more already in {store}" if total["already_stored"] else ""
    _err(f"rhm reproduce --{mode}: {total['runs']} runs to do{stored}, about {total['cpu_hours']:.3g} CPU-hours"
         f"{bound}; adaptive sections (R3, R9) counted at their upper bound")
    if as_json:
        typer.echo(json.dumps({"mode": mode, "sections": out, **total}))
