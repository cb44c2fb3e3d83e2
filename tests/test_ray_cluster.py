"""Sweeps on a real two-node Ray cluster: a node lost mid-sweep, a driver SIGKILLed, a dead address; store reads
while a sweep writes.

The cluster is Ray's own test helper (``ray.cluster_utils.Cluster``): a head node and a worker node on this
machine, each with its own raylet, worker processes and temp directory, one CPU each. Sweeps run through the
public command ``rhm sweep CONFIG --executor ray --address ADDR`` in a subprocess, like a user's driver.
A small learner ("toy_slow", registered here) gives deterministic results that do not depend on where or how
often it runs; it sleeps RHM_TEST_SLEEP seconds in fit (RHM_TEST_HOLD seconds where that is set: on the worker
node that the test kills, so the run there is surely in flight when its node dies) and drops a marker file
(run identity, Ray node, pid) in RHM_TEST_MARKERS when set, so the test knows which node runs what. These
variables reach the cluster's workers through the environment their node is started with; the reference rows
are computed in-process without them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import rhm
from rhm.experiments import GrammarGrid, LocalExecutor, ResultStore, Sweep, run_sweep
from rhm.learners import register
from test_experiments import ToyOracle, canon  # tests/ is on the path (pytest's rootdir; the workers get sys.path)

HERE = Path(__file__).resolve().parent
MODULE = Path(__file__).stem
SRC = Path(rhm.__file__).resolve().parent.parent


@register
class ToySlow(ToyOracle):
    """test_experiments' toy learner (right on a hashed fraction min(1, 2P/P_max) of inputs) that sleeps and leaves
    a marker when told to by its environment."""

    name = "toy_slow"

    def _fit(self, x, y):
        marks = os.environ.get("RHM_TEST_MARKERS")
        if marks:
            node = "local"
            if "ray" in sys.modules and sys.modules["ray"].is_initialized():
                node = sys.modules["ray"].get_runtime_context().get_node_id()
            Path(marks, f"{self.seed}_{len(x)}.{node}.{os.getpid()}").touch()
        time.sleep(float(os.environ.get("RHM_TEST_HOLD") or os.environ.get("RHM_TEST_SLEEP", "0")))
        super()._fit(x, y)


SWEEP_TOML = f"""
name = "cluster"
imports = ["{MODULE}"]
seeds = [0, 1]
test_size = 64
[[grammars]]
v = 4
m = "v"
L = 2
[[learners]]
name = "toy_slow"
[sizes]
unit = "pmax"
values = [0.05, 0.15, 0.3, 0.45]
"""
N_RUNS = 8
SLEEP = 0.7  # seconds per run on the cluster: the driver-kill test surely kills the sweep mid-way


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sweep") / "sweep.toml"
    path.write_text(SWEEP_TOML)
    return path


@pytest.fixture(scope="module")
def reference_rows(sweep_file, tmp_path_factory):
    """The local executor's rows for the same sweep (in-process, no sleep, no markers)."""
    with pytest.MonkeyPatch.context() as mp, ResultStore(tmp_path_factory.mktemp("ref") / "ref.sqlite") as st:
        for k in ("RHM_TEST_MARKERS", "RHM_TEST_SLEEP", "RHM_TEST_HOLD"):
            mp.delenv(k, raising=False)
        out = run_sweep(Sweep.from_toml(sweep_file), st, executor=LocalExecutor(0), progress=False)
        assert (out.done, out.failed) == (N_RUNS, [])
        return st.rows()


def driver_env(**extra):
    path = os.pathsep.join([str(HERE), str(SRC), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", **extra}


def rhm_cmd(*args):
    return [sys.executable, "-c", "from rhm.cli import app; app()", *map(str, args)]


def count_rows(store: Path) -> int:
    """Rows in a store another process is writing (read-only; 0 before the file exists)."""
    if not store.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5) as c:
            return c.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0


def wait_for(cond, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(10)


def processes_with_env(token: str) -> list[int]:
    """Live processes (other than this one) whose environment contains `token`: Ray renames its workers'
    command lines (ray::IDLE), but the environment the nodes were started with stays."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if token.encode() in (d / "environ").read_bytes() and pid_alive(int(d.name)):
                pids.append(int(d.name))
        except OSError:
            pass
    return pids


@pytest.fixture(scope="module")
def cluster():
    """A Ray head node (1 CPU) whose workers sleep SLEEP s per run and drop markers; torn down with every process
    it started (checked through /proc). Tests add their own worker node."""
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'rhm[ray]')")
    cluster_utils = pytest.importorskip("ray.cluster_utils")
    import ray._common.utils as ray_common
    import ray._private.utils as ray_utils

    tmp = tempfile.mkdtemp(prefix="rhm18-", dir="/tmp")  # short: Ray's socket paths live under it
    marks = Path(tmp, "marks")
    marks.mkdir()
    saved = {k: os.environ.get(k) for k in ("RHM_TEST_MARKERS", "RHM_TEST_SLEEP")}
    os.environ.update(RHM_TEST_MARKERS=str(marks), RHM_TEST_SLEEP=str(SLEEP))  # inherited by the nodes' workers
    # Cluster() records its address in /tmp/ray/ray_current_cluster, where any ray.init() on this machine would
    # find it, and its shutdown deletes that file, whoever wrote it: leave it alone (the driver gets --address).
    saved_fns = ray_utils.write_ray_address, ray_common.reset_ray_address
    ray_utils.write_ray_address = ray_common.reset_ray_address = lambda *a, **k: None
    c = None
    try:
        # node death is noticed within ~1.5 s instead of the default ~30 s
        c = cluster_utils.Cluster(initialize_head=True, head_node_args=dict(
            num_cpus=1, temp_dir=f"{tmp}/head", include_dashboard=False,
            _system_config={"health_check_period_ms": 500, "health_check_failure_threshold": 3,
                            "health_check_initial_delay_ms": 0}))
        c.marks, c.tmp = marks, tmp
        yield c
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if c is not None:
            c.shutdown()
        ray_utils.write_ray_address, ray_common.reset_ray_address = saved_fns
        left = wait_for_exit(str(marks), 15)
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
        assert not left, f"Ray processes left running after the cluster's shutdown: {left}"


def wait_for_exit(token, timeout):
    """Wait until no process carries `token` in its environment; SIGKILL and return those that do not exit."""
    deadline = time.time() + timeout
    while time.time() < deadline and processes_with_env(token):
        time.sleep(0.2)
    left = processes_with_env(token)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


def pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def markers(cluster) -> list[tuple[str, str, int]]:
    """(run, node id, pid) of every run started so far on the cluster."""
    out = []
    for p in cluster.marks.iterdir():
        run, node, pid = p.name.split(".")
        out.append((run, node, int(pid)))
    return out


# --------------------------------------------------------------------------------------------- no cluster
def test_unreachable_address_fails_fast_naming_it_and_writes_nothing(sweep_file, tmp_path):
    pytest.importorskip("ray", reason="ray is not installed (pip install 'rhm[ray]')")
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"127.0.0.1:{port}"
    store = tmp_path / "never.sqlite"
    t0 = time.time()
    res = subprocess.run(rhm_cmd("sweep", sweep_file, "--executor", "ray", "--address", address, "--store", store,
                                 "--no-progress"), env=driver_env(), capture_output=True, text=True, timeout=120)
    elapsed = time.time() - t0
    assert res.returncode == 1, res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and address in errors[0] and "no Ray cluster answers" in errors[0], res.stderr
    assert "Traceback" not in res.stderr
    assert elapsed < 30, f"took {elapsed:.1f} s (Ray alone waits minutes)"  # seconds: imports + a 5 s probe
    assert list(tmp_path.iterdir()) == []  # no store file, no WAL, nothing
    res = subprocess.run(rhm_cmd("reproduce", "--full", "--executor", "ray", "--address", address, "--out",
                                 tmp_path / "out"), env=driver_env(), capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and address in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert list(tmp_path.iterdir()) == []  # no report directory, no store


def test_report_while_a_sweep_writes_sees_consistent_rows(sweep_file, tmp_path):
    store, expected = tmp_path / "s.sqlite", {r.key for r in Sweep.from_toml(sweep_file).expand()}
    proc = subprocess.Popen(rhm_cmd("sweep", sweep_file, "--store", store, "--workers", "1", "--no-progress"),
                            env=driver_env(RHM_TEST_SLEEP="0.6"), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen, reports = [], 0
    try:
        wait_for(lambda: count_rows(store) >= 1, 60, "the first row")
        while proc.poll() is None:
            with ResultStore(store) as st, st.snapshot():  # one consistent state while the writer goes on
                n, rows = st.count(), st.rows(sweep="cluster")
            assert len(rows) == n and len({r["key"] for r in rows}) == n and {r["key"] for r in rows} <= expected
            assert all(r["test_error"] is not None and r["config"]["learner"] == "toy_slow" for r in rows)
            seen.append(n)
            if reports == 0 and n < N_RUNS:  # `rhm report` mid-run
                rep = subprocess.run(rhm_cmd("report", "--store", store, "--out", tmp_path / "report"),
                                     env=driver_env(), capture_output=True, text=True, timeout=120)
                assert rep.returncode == 0, rep.stderr
                md = (tmp_path / "report" / "index.md").read_text()
                reported = int(md.split("`: ")[1].split(" finished runs")[0])
                assert n <= reported <= count_rows(store), md[:300]
                reports += 1
            time.sleep(0.1)
        assert proc.wait(60) == 0, proc.stderr.read()
    finally:
        kill_group(proc)
    assert reports == 1 and seen == sorted(seen) and seen[0] < N_RUNS  # read mid-run, never a row lost
    with ResultStore(store) as st:
        assert {r["key"] for r in st.rows()} == expected and st.count() == N_RUNS


# ------------------------------------------------------------------------------------------ dry-run estimate
def test_estimate_times_one_run_per_size_within_budget_and_extrapolates_the_rest(sweep_file):
    from rhm.experiments import estimate, planned_configs

    configs = planned_configs(Sweep.from_toml(sweep_file))
    assert sorted({c.train_size for c in configs}) == [13, 38, 77, 115] and len(configs) == N_RUNS
    now, calls = [0.0], []

    def run(cost):  # a fake run costing cost(P) seconds of a fake clock: no timing in this test
        def go(cfg):
            calls.append(cfg["train_size"])
            now[0] += cost(cfg["train_size"])
        return go

    quadratic = lambda p: 1e-3 * p ** 2  # noqa: E731
    est = estimate(configs, budget_s=1.0, run=run(quadratic), clock=lambda: now[0])
    # warm-up 13, timed 13 (0.34 s spent), timed 38 (1.78 s: over budget, nothing more)
    assert calls == [13, 13, 38]
    by_size = {g["train_size"]: g for g in est.groups}
    assert [by_size[p]["source"] for p in (13, 38)] == ["timed", "timed"]
    assert all(by_size[p]["source"].startswith("extrapolated") for p in (77, 115))
    for p, g in by_size.items():  # the exponent 2 is recovered from the two timed sizes
        assert g["runs"] == 2 and g["seconds"] == pytest.approx(quadratic(p), rel=1e-9)
    assert est.runs == N_RUNS and est.untimed_runs == 0
    assert est.cpu_hours == pytest.approx(2 * sum(map(quadratic, (13, 38, 77, 115))) / 3600)
    # fixed costs only: never extrapolated below linear (conservative); nothing timed: a stated lower bound
    calls.clear()
    flat = estimate(configs, budget_s=1.0, run=run(lambda p: 0.3), clock=lambda: now[0])
    assert calls == [13, 13, 38, 77]  # 1.2 s spent
    assert {g["train_size"]: g["seconds"] for g in flat.groups}[115] == pytest.approx(0.3 * 115 / 77)
    # a grammar with nothing timed: scaled from the same learner on another grammar, and labelled rough
    two = Sweep.from_toml(sweep_file)
    two.grammars = [GrammarGrid(v=4, m="v", L=[2, 3])]
    calls.clear()
    rough = estimate(planned_configs(two.validate()), budget_s=1.5, run=run(lambda p: 1.0), clock=lambda: now[0])
    assert calls == [13, 13]  # warm-up and one timed run (L = 2, P = 13), then the budget is spent
    for g in rough.groups:
        if g["grammar"]["L"] == 3:  # 1 s x (P / 13) x (input length 8 / 4)
            assert g["source"].startswith("rough") and g["seconds"] == pytest.approx(g["train_size"] / 13 * 2)
    assert rough.untimed_runs == 0
    none = estimate(configs, budget_s=0)
    assert none.untimed_runs == N_RUNS and none.cpu_hours == 0 and "lower bound" in none.lines()[-1]
    with pytest.raises(ValueError, match="budget_s"):
        estimate(configs, budget_s=-1)


def test_sweep_dry_run_lists_runs_and_estimates_without_writing(sweep_file, tmp_path):
    res = subprocess.run(rhm_cmd("sweep", sweep_file, "--dry-run", "--time-budget", "30"), cwd=tmp_path,
                         env=driver_env(RHM_TEST_SLEEP="0.2"), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    keys = [ln.split()[0] for ln in res.stdout.splitlines()]
    assert sorted(keys) == sorted(r.key for r in Sweep.from_toml(sweep_file).expand())
    total = res.stderr.strip().splitlines()[-1]
    assert total.startswith(f"{N_RUNS} runs, about ") and "lower bound" not in total, res.stderr
    # every timed run sleeps 0.2 s, so the estimate is at least 8 x 0.2 s (a sleep is never shorter)
    assert float(total.split("about ")[1].split(" CPU-hours")[0]) >= N_RUNS * 0.2 / 3600
    assert list(tmp_path.iterdir()) == []  # no store, nothing


def test_reproduce_full_dry_run_counts_every_section_and_writes_nothing(tmp_path):
    from rhm.experiments import reproduce_configs

    res = subprocess.run(rhm_cmd("reproduce", "--full", "--dry-run", "--time-budget", "0", "--json",
                                 "--out", tmp_path / "out"), env=driver_env(), capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    plan = reproduce_configs("full")
    assert {rid: v["runs"] for rid, v in got["sections"].items()} == {rid: len(c) for rid, c in plan.items()}
    assert got["runs"] == len({c.key for cs in plan.values() for c in cs}) > 1000
    assert got["sections"]["R7"]["runs"] == 0  # R7 reads R4's runs: counted once
    assert got["untimed_runs"] == got["runs"] and "lower bound" in res.stderr  # nothing timed with budget 0
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------ on the cluster
@pytest.mark.slow
def test_node_lost_mid_sweep_runs_are_retried_and_land_exactly_once(cluster, sweep_file, reference_rows, tmp_path):
    # the worker node's runs are held until the node dies: one is surely in flight when it is killed
    worker = cluster.add_node(num_cpus=1, temp_dir=f"{cluster.tmp}/worker", env_vars={"RHM_TEST_HOLD": "120"})
    for p in cluster.marks.iterdir():
        p.unlink()
    store = tmp_path / "s.sqlite"
    proc = subprocess.Popen(rhm_cmd("sweep", sweep_file, "--executor", "ray", "--address", cluster.address,
                                    "--store", store, "--no-progress"), env=driver_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # kill the worker node as soon as a run is going on it
        on_worker = wait_for(lambda: [m for m in markers(cluster) if m[1] == worker.node_id], 120,
                             "a run on the worker node")
        cluster.remove_node(worker, allow_graceful=False)  # SIGKILL: raylet, object store, its workers
        victim, _, victim_pid = on_worker[0]
        wait_for(lambda: not pid_alive(victim_pid), 15, "the victim run's worker process to die")
        with ResultStore(store) as st:  # the driver created it before submitting
            stored_at_kill = {f"{r['seed']}_{r['train_size']}" for r in st.rows()}
        assert victim not in stored_at_kill, "the victim run had finished before its node was killed"
        assert proc.wait(180) == 0, proc.stderr.read()
    finally:
        kill_group(proc)
        if worker in cluster.worker_nodes:
            cluster.remove_node(worker)
    runs = markers(cluster)
    retried = [m for m in runs if m[0] == victim and m[1] != worker.node_id]
    assert retried and all(m[1] == cluster.head_node.node_id for m in retried)  # retried on the surviving node
    with ResultStore(store) as st:
        rows = st.rows()
        assert st.failures() == []
    assert len(rows) == N_RUNS == len({r["key"] for r in rows})  # every run exactly once
    assert canon(rows) == canon(reference_rows)  # the same numbers as the local executor


@pytest.mark.slow
def test_driver_sigkilled_mid_sweep_resumes_without_lost_or_duplicated_rows(cluster, sweep_file, reference_rows,
                                                                           tmp_path):
    worker = cluster.add_node(num_cpus=1, temp_dir=f"{cluster.tmp}/worker2")
    store = tmp_path / "s.sqlite"
    cmd = rhm_cmd("sweep", sweep_file, "--executor", "ray", "--address", cluster.address, "--store", store,
                  "--no-progress")
    try:
        proc = subprocess.Popen(cmd, env=driver_env(), start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: count_rows(store) >= 2, 120, "two rows")
            os.kill(proc.pid, signal.SIGKILL)  # the driver only: the cluster keeps running
            proc.wait(10)
        finally:
            kill_group(proc)
        with ResultStore(store) as st:
            kept = {r["key"]: r["finished_at"] for r in st.rows()}
        assert 2 <= len(kept) < N_RUNS, "the driver should have been killed mid-sweep"
        assert cluster.remaining_processes_alive()
        rerun = subprocess.run(cmd, env=driver_env(), capture_output=True, text=True, timeout=180)
        assert rerun.returncode == 0, rerun.stderr
    finally:
        cluster.remove_node(worker)
    assert f"{N_RUNS - len(kept)} runs done, {len(kept)} already in" in rerun.stderr
    with ResultStore(store) as st:
        rows = st.rows()
    assert len(rows) == N_RUNS == len({r["key"] for r in rows})  # none lost, none twice
    assert all(r["finished_at"] == kept[r["key"]] for r in rows if r["key"] in kept)  # old rows untouched
    assert canon(rows) == canon(reference_rows)


@pytest.mark.slow
def test_more_gpus_per_run_than_the_cluster_has_fails_before_writing(cluster, sweep_file, tmp_path):
    store = tmp_path / "s.sqlite"
    res = subprocess.run(rhm_cmd("sweep", sweep_file, "--executor", "ray", "--address", cluster.address,
                                 "--gpus-per-run", "1", "--store", store), env=driver_env(), capture_output=True,
                         text=True, timeout=120)  # the head node has no GPU: Ray alone would wait forever
    assert res.returncode == 1 and "gpus_per_run=1" in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert not store.exists()

