"""Experiment engine: sweeps, store, executors (local, Ray), SIGKILL resume, P* estimation, errors, report.

A tiny deterministic learner ("toy_oracle", registered here) stands in for the real ones so the tests stay
fast: it predicts the true label (via the grammar) on a hashed fraction min(1, k·P/P_max) of inputs and a wrong
label elsewhere, so its test error is a known decreasing function of P.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rhm.learners import Learner, register
from rhm.experiments import (AdaptiveSearch, GrammarGrid, LearnerSpec, LocalExecutor, ResultStore, Sizes, Sweep,
                             SweepError, adaptive_pstar, error_threshold, estimate_pstar, execute, fit_power_law,
                             run_sweep)

HERE = Path(__file__).resolve().parent
MODULE = Path(__file__).stem  # workers import this module to register the toy learner


@register
class ToyOracle(Learner):
    """Right on a hashed fraction min(1, k·P/P_max) of inputs (needs fit(..., grammar=g)), wrong elsewhere."""

    name = "toy_oracle"

    def __init__(self, k=2.0, sleep=0.0, seed=0):
        self.k, self.sleep, self.seed = k, sleep, seed

    def _fit(self, x, y):
        time.sleep(self.sleep)
        self.frac_ = min(1.0, self.k * len(x) / self.grammar_.num_inputs)
        self.info_ = {"frac": self.frac_, "n_train": int(len(x))}

    def _predict(self, x):
        y = self.grammar_.parse(x)
        u = np.array([int.from_bytes(hashlib.sha256(bytes([self.seed]) + r.tobytes()).digest()[:4], "little") / 2**32
                      for r in np.ascontiguousarray(x)])
        return np.where(u < self.frac_, y, (y + 1) % self.n_classes_)


def tiny_sweep(name="tiny", sleep=0.0, seeds=(0, 1)) -> Sweep:
    return Sweep(name=name, imports=[MODULE], grammars=[GrammarGrid(v=4, m=4, L=2)],
                 learners=[LearnerSpec("toy_oracle", params={"sleep": sleep})],
                 sizes=Sizes(unit="pmax", values=[0.05, 0.15, 0.3, 0.45]), seeds=list(seeds), test_size=64)


RESULT_FIELDS = ("key", "task", "sweep", "learner", "label", "v", "m", "s", "L", "n_classes", "train_size",
                 "test_size", "seed", "test_accuracy", "test_error", "config", "metrics", "info", "version")


def canon(rows):
    return sorted(tuple(str(r[f]) for f in RESULT_FIELDS) for r in rows)


# ----------------------------------------------------------------------------------------- sweeps + store
def test_local_sweep_fills_store_with_expected_keys(tmp_path):
    sw = tiny_sweep()
    runs = sw.expand()
    # P_max = 4 * 4**3 = 256; test 64; sizes round(0.05, 0.15, 0.3, 0.45 * 256) = 13, 38, 77, 115; 2 seeds
    assert sorted({r.train_size for r in runs}) == [13, 38, 77, 115]
    assert len(runs) == 8 and len({r.key for r in runs}) == 8
    assert all(r.test_size == 64 and r.params["seed"] == r.seed for r in runs)
    # the key is a function of the configuration only
    assert [r.key for r in tiny_sweep().expand()] == [r.key for r in runs]
    assert tiny_sweep(name="other").expand()[0].key == runs[0].key  # the sweep name is not part of the key
    with ResultStore(tmp_path / "r.sqlite") as st:
        out = run_sweep(sw, st, executor=LocalExecutor(2), progress=False)
        assert (out.done, out.skipped, out.failed) == (8, 0, [])
        assert st.finished_keys() == {r.key for r in runs}
        rows = st.rows(sweep="tiny")
        for r in rows:  # toy error = (1 - min(1, 2 P / 256)) up to hashing noise on 64 test inputs
            expected = 1 - min(1.0, 2 * r["train_size"] / 256)
            assert abs(r["test_error"] - expected) < 0.2, r
            assert r["test_accuracy"] == pytest.approx(1 - r["test_error"])
            assert r["info"]["n_train"] == r["train_size"]
            assert r["version"] and r["git_rev"] and r["config"]["learner"] == "toy_oracle"
        # same key => same result: rerunning one config in-process reproduces the stored numbers exactly
        one = execute(runs[3].to_dict())
        stored = next(r for r in rows if r["key"] == runs[3].key)
        assert one["test_error"] == stored["test_error"] and one["info"] == stored["info"]
        again = run_sweep(sw, st, executor=LocalExecutor(2), progress=False)
        assert (again.done, again.skipped) == (0, 8)
        assert st.count() == 8
        # exports
        df = st.to_pandas(sweep="tiny")
        assert len(df) == 8 and set(df["key"]) == {r.key for r in runs}
        assert st.to_csv(tmp_path / "r.csv") == 8
        import pandas as pd

        assert len(pd.read_csv(tmp_path / "r.csv")) == 8


@pytest.mark.slow
def test_sigkill_midway_then_rerun_has_exactly_the_expected_rows(tmp_path):
    cfg = tmp_path / "sweep.toml"
    cfg.write_text(f"""
name = "killme"
imports = ["{MODULE}"]
seeds = [0, 1, 2]
test_size = 64
[[grammars]]
v = 4
m = "v"
L = 2
[[learners]]
name = "toy_oracle"
params = {{ sleep = 0.25 }}
[sizes]
unit = "pmax"
values = [0.05, 0.15, 0.3, 0.45]
""")
    expected = {r.key for r in Sweep.from_toml(cfg).expand()}
    assert len(expected) == 12
    store = tmp_path / "s.sqlite"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", "from rhm.cli import app; app()", "sweep", str(cfg), "--store", str(store),
           "--workers", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    n_before = 0
    try:
        deadline = time.time() + 40
        while time.time() < deadline and n_before < 3:
            time.sleep(0.1)
            if store.exists():
                try:
                    with sqlite3.connect(store, timeout=5) as c:
                        n_before = c.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
                except sqlite3.OperationalError:
                    pass
        os.kill(proc.pid, signal.SIGKILL)  # the sweep's parent process, mid-way
        proc.wait(10)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its orphaned worker, if still alive
        except ProcessLookupError:
            pass
    assert 3 <= n_before < 12, "the sweep should have been killed mid-way"
    with ResultStore(store) as st:
        kept = {r["key"]: r["finished_at"] for r in st.rows()}
        assert 3 <= len(kept) < 12 and set(kept) <= expected
    rerun = cmd[:-3] + ["--workers", "0", "--no-progress"]  # resume in-process
    done = subprocess.run(rerun, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    with ResultStore(store) as st:
        rows = st.rows()
        assert len(rows) == 12 and {r["key"] for r in rows} == expected  # no duplicate, none lost
        assert all(r["finished_at"] == kept[r["key"]] for r in rows if r["key"] in kept)  # old rows untouched
    assert f"{12 - len(kept)} runs done, {len(kept)} already in" in done.stderr


# --------------------------------------------------------------------------------------------- P* etc.
def synthetic_runs(pstar_true, n_c=8, seeds=5, noise=0.01, k=3.0, sizes=None, seed=0):
    """Errors e(P) = chance / (1 + (P/P0)^k) + noise, with P0 chosen so that e(P*) = threshold."""
    chance, thr = 1 - 1 / n_c, error_threshold(n_c)
    p0 = pstar_true / (chance / thr - 1) ** (1 / k)
    sizes = np.geomspace(pstar_true / 10, pstar_true * 10, 17) if sizes is None else sizes
    rng = np.random.default_rng(seed)
    P = np.repeat(sizes, seeds)
    err = chance / (1 + (P / p0) ** k) + rng.normal(0, noise, len(P))
    return P, err, thr, (lambda p: chance / (1 + (p / p0) ** k))


@pytest.mark.parametrize("pstar_true", [300.0, 12345.0])
def test_pstar_estimator_recovers_known_threshold(pstar_true):
    P, err, thr, _ = synthetic_runs(pstar_true)
    est = estimate_pstar(P, err, thr, n_boot=400)
    assert est.censored is None
    assert abs(math.log(est.value / pstar_true)) < 0.08  # within 8%
    assert est.lo <= pstar_true <= est.hi and est.hi / est.lo < 1.6
    # noiseless: interpolation error only (grid step 10^(1/8) ~ 1.33)
    P0, err0, _, _ = synthetic_runs(pstar_true, noise=0.0)
    assert abs(estimate_pstar(P0, err0, thr, n_boot=10).value / pstar_true - 1) < 0.05
    # censoring
    assert estimate_pstar([10, 20], [0.8, 0.7], thr, n_boot=10).censored == "above"
    below = estimate_pstar([10, 20], [0.0, 0.0], thr, n_boot=10)
    assert below.censored == "below" and below.value == 10


def test_adaptive_search_brackets_and_bisects_with_few_runs():
    _, _, thr, curve = synthetic_runs(5000.0)
    calls = []

    def evaluate(p):
        calls.append(p)
        return float(curve(p))

    est = adaptive_pstar(evaluate, thr, start=100, factor=4.0, rel_tol=0.1, max_steps=12, p_max=10**6)
    assert abs(est.value / 5000 - 1) < 0.05 and est.lo <= 5000 <= est.hi
    assert len(calls) <= 10 and calls[:4] == [100, 400, 1600, 6400]
    # censored when the threshold is never reached below p_max
    s = AdaptiveSearch(thr, start=10, p_max=200, factor=4)
    while (p := s.next_size()) is not None:
        s.update(p, 0.5)
    assert s.result().censored == "above" and max(s.evals) == 200


def test_power_law_fit_slope_and_ci():
    x = np.array([64, 216, 512, 1000, 4096], float)
    rng = np.random.default_rng(1)
    y = 3.0 * x**1.2 * np.exp(rng.normal(0, 0.05, len(x)))
    fit = fit_power_law(x, y)
    assert abs(fit.slope - 1.2) < 0.1 and fit.slope_lo < 1.2 < fit.slope_hi
    assert fit.r2 > 0.99
    two = fit_power_law([10, 100], [20, 200], y_lo=[15, 150], y_hi=[30, 300])
    assert two.slope == pytest.approx(1.0) and two.slope_lo < 1 < two.slope_hi and two.c_at_slope1 == pytest.approx(2)


# --------------------------------------------------------------------------------------------- errors
def test_invalid_toml_and_unknown_learner_name_the_field(tmp_path):
    with pytest.raises(SweepError, match="invalid TOML"):
        Sweep.from_toml_string("name = 'x'\n[[grammars]\nv = 4")
    base = "name = 'x'\n[[grammars]]\nv = 4\nm = 4\nL = 2\n[sizes]\nvalues = [10]\n"
    with pytest.raises(SweepError, match=r"learners\[0\]\.name: unknown learner 'nope'"):
        Sweep.from_toml_string(base + "[[learners]]\nname = 'nope'\n")
    with pytest.raises(SweepError, match=r"learners\[0\]\.params\.wdth: .*no hyperparameter 'wdth'"):
        Sweep.from_toml_string(base + "[[learners]]\nname = 'toy_oracle'\nparams = {wdth = 3}\n")
    with pytest.raises(SweepError, match=r"sizes\.unit='bits'"):
        Sweep.from_toml_string(base.replace("[sizes]\n", "[sizes]\nunit = 'bits'\n")
                               + "[[learners]]\nname='toy_oracle'\n")
    with pytest.raises(SweepError, match=r"grammars\[0\]: m=9 exceeds"):
        Sweep.from_toml_string(base.replace("m = 4", "m = 9") + "[[learners]]\nname='toy_oracle'\n")
    with pytest.raises(SweepError, match=r"unknown field\(s\) \['seeeds'\]"):
        Sweep.from_toml_string("seeeds = [1]\n" + base)
    with pytest.raises(SweepError, match=r"seeds=\[-1\]"):
        Sweep.from_dict({"name": "x", "seeds": [-1], "grammars": [{"v": 4, "m": 4, "L": 2}],
                         "learners": ["toy_oracle"], "sizes": {"values": [10]}})
    # the CLI prints one clean line naming the field and exits 1
    from typer.testing import CliRunner

    from rhm.cli import app

    bad = tmp_path / "bad.toml"
    bad.write_text(base + "[[learners]]\nname = 'nope'\n")
    res = CliRunner().invoke(app, ["sweep", str(bad), "--store", str(tmp_path / "x.sqlite")])
    assert res.exit_code == 1
    assert "learners[0].name: unknown learner 'nope'" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "x.sqlite").exists()


# --------------------------------------------------------------------------------------------- report
def test_report_renders_from_small_store(tmp_path):
    from rhm.experiments.report import write_report

    sw = Sweep(name="curves", imports=[MODULE], grammars=[GrammarGrid(v=[4, 6], m="v", L=2)],
               learners=[LearnerSpec("toy_oracle")], sizes=Sizes(unit="pmax", values=[0.02, 0.1, 0.3, 0.5]),
               seeds=[0, 1], test_size=200)
    gaps = Sweep(name="gaps", task="gaps",
                 grammars=[GrammarGrid(v=16, m=[2, 4], L=3, rules="balanced", seed=[0, 1])])
    with ResultStore(tmp_path / "r.sqlite") as st:
        run_sweep(sw, st, executor=LocalExecutor(0), progress=False)
        run_sweep(gaps, st, executor=LocalExecutor(0), progress=False)
        assert st.count() == 16 + 4
    out = tmp_path / "rep"
    write_report(tmp_path / "r.sqlite", out)
    md = (out / "index.md").read_text()
    html = (out / "index.html").read_text()
    assert "## Sweep `curves` (training)" in md and "## Sweep `gaps` (signal gaps)" in md
    assert "<table>" in html and "<img src='curves-curves.png'" in html
    # toy error = 1 - 2P/P_max crosses 0.1*(1 - 1/n_c) at P ~ 0.46 P_max: P* ~ 118 (v=4) and ~ 597 (v=6)
    for grammar, p_max in (("v=4 m=4 s=2 L=2 n_c=4", 256), ("v=6 m=6 s=2 L=2 n_c=6", 1296)):
        line = next(x for x in md.splitlines() if x.startswith(f"| toy_oracle | {grammar} |"))
        pstar = float(line.split("|")[5].split()[0])
        assert 0.3 * p_max < pstar < 0.55 * p_max, line
    for png in ("curves-curves.png", "curves-collapse.png", "curves-pstar.png", "gaps-gaps.png"):
        assert (out / png).stat().st_size > 5000, png
        assert f"]({png})" in md
    assert "ρ^(1)" in md


# --------------------------------------------------------------------------------------------- reproduce
def test_reproduce_grids_expand_and_missing_learners_are_reported_as_skipped(tmp_path, monkeypatch):
    import dataclasses

    from rhm import learners
    from rhm.experiments import exp_deep, registry
    from rhm.experiments import reproduce as rep

    for mode in registry.MODES:  # every experiment's sweeps validate in both modes
        for exp in registry.EXPERIMENTS.values():
            if exp.missing() is not None:
                continue
            for job in exp.runs(mode):
                if isinstance(job, Sweep):
                    job.validate()
                    if job.adaptive is None:
                        assert len(job.expand()) > 0
                else:
                    assert len(job) > 0
    deep = exp_deep.deep_sweep("quick", "x", ["toy_oracle"])
    assert len(deep.expand()) == 5 * 4 * 2  # v=m=n_c in {4, 5, 6, 7, 8} x 4 sizes x 2 seeds

    real_get = learners.get

    def get(name):
        if name == "kmeans":
            raise ValueError("unknown learner 'kmeans'; known learners: ...")
        return real_get(name)

    monkeypatch.setattr(learners, "get", get)
    tiny_r1 = dataclasses.replace(registry.EXPERIMENTS["R1"], runs=lambda mode: [
        Sweep(name=f"{mode}-R1-parse", task="parse", grammars=[GrammarGrid(v=4, m=4, L=2)], seeds=[0],
              extras={"parse_n": 500})])
    experiments = {**registry.EXPERIMENTS, "R1": tiny_r1}
    res = rep.reproduce(tmp_path / "out", mode="quick", executor=LocalExecutor(0), sections=["R1", "R5", "LM2"],
                        progress=False, log=lambda *a: None, experiments=experiments)
    assert res["status"]["R5"] == {"status": "skipped", "reason": "learner 'kmeans' is not registered"}
    assert res["status"]["R1"]["status"] == "ran"
    # LM2 runs only in --full: skipped in quick with why, whatever its learners
    assert res["status"]["LM2"]["status"] == "skipped"
    assert res["status"]["LM2"]["reason"].startswith("runs only with --full: its quick grid")
    assert registry.EXPERIMENTS["LM2"].missing("full") is None
    summary = {r["R"]: r for r in res["summary"]}
    assert summary["R1"]["verdict"] == "held" and "parse recovery min 1.0000" in summary["R1"]["numbers"]
    assert summary["R5"]["verdict"] == "skipped"
    md = (tmp_path / "out" / "index.md").read_text()
    assert f"| R5 | {registry.EXPERIMENTS['R5'].title} |" in md and "learner 'kmeans' is not registered" in md
    assert "| v=4 m=4 s=2 L=2 n_c=4 | 256 | 256 | yes | 1.0000 of 256 |" in md


def _store_curves(store, curves, sweep, grammar, seeds=(0, 1), noise=None):
    from rhm.experiments.config import RunConfig

    for label, curve in curves.items():
        for P, err in curve.items():
            for seed in seeds:
                e = err if noise is None else min(1.0, max(0.0, err + noise[seed]))
                cfg = RunConfig(task="train", grammar=grammar, learner=label.split()[0],
                                resolved={"label": label}, train_size=P, test_size=1000, seed=seed,
                                sweep=sweep, label=label)
                store.put(cfg, {"test_error": e, "test_accuracy": 1 - e})


def test_r9_compares_chaining_plus_against_the_better_cnn(tmp_path):
    # the default CNN never reaches the threshold (as at m = 8, L = 3), the one without weight decay does
    from rhm.experiments import exp_deep, registry
    from rhm.experiments.analysis import pstar_table, train_frame

    grammar = dict(v=8, m=4, s=2, L=3, n_classes=8, rules="uniform", seed=0)
    curves = {"chaining+": {100: 0.5, 200: 0.0}, "cnn": {400: 0.8, 800: 0.8, 1600: 0.7},
              exp_deep.CNN_WD0: {400: 0.5, 800: 0.0}}
    with ResultStore(tmp_path / "r.sqlite") as store:
        _store_curves(store, curves, "full-R9-compare", grammar)
        section = registry.EXPERIMENTS["R9"].analyze(registry.EXPERIMENTS["R9"], store, "full", tmp_path)
        pts = {p["label"]: p for p in pstar_table(train_frame(store, "full-R9-compare"))}
    assert pts["cnn"]["censored"] == "above" and pts[exp_deep.CNN_WD0]["censored"] is None
    ratio = pts["chaining+"]["pstar"] / pts[exp_deep.CNN_WD0]["pstar"]
    assert section.verdict == "held" and f"{ratio:.2f} (P*(chaining+)/P*(best cnn))" in section.numbers
    assert section.blocks[1][1] == ["grammar", "P* chaining+", "P* cnn", f"P* {exp_deep.CNN_WD0}",
                                    "P*(chaining+)/P*(best cnn)"]


def test_verdict_rule_gives_inconclusive_when_the_interval_straddles_the_band():
    from rhm.experiments.verdicts import combine, interval_verdict

    assert interval_verdict(0.8, 1.2, 0.7, 1.3) == "held"
    assert interval_verdict(-0.31, 2.18, 0.7, 1.3) == "inconclusive"  # R3's old "held"
    assert interval_verdict(1.5, 2.0, 0.7, 1.3) == "not held"
    assert interval_verdict(0.1, 0.4, accept_hi=0.5) == "held"
    assert interval_verdict(0.6, 0.9, accept_hi=0.5) == "not held"
    assert combine(["held", "inconclusive"]) == "inconclusive" and combine(["held", "not held"]) == "not held"
    assert combine([]) == "inconclusive" and combine(["held", "held"]) == "held"


def test_r4_verdict_follows_the_slope_interval(tmp_path):
    # P* = C n_c m^L exactly (held), and a wide, noisy version whose slope CI straddles the band (inconclusive)
    from rhm.experiments import registry

    sizes = [0.25, 0.5, 1, 2, 4]
    with ResultStore(tmp_path / "r.sqlite") as store:
        for v in (4, 5, 6, 8):
            g = dict(v=v, m=v, s=2, L=2, n_classes=v, rules="uniform", seed=0)
            ncml = v**3
            thr = error_threshold(v)
            curve = {int(x * ncml): (0.9 if x < 1 else thr / 2) for x in sizes}
            _store_curves(store, {"cnn": curve}, "quick-R4-cnn", g)
        held = registry.EXPERIMENTS["R4"].analyze(registry.EXPERIMENTS["R4"], store, "quick", tmp_path)
    assert held.verdict == "held", held.numbers
    with ResultStore(tmp_path / "w.sqlite") as store:
        for v, shift in ((4, 1), (5, 4), (6, 1), (8, 4)):  # P* jumps by 4x between neighbours: a poor fit
            g = dict(v=v, m=v, s=2, L=2, n_classes=v, rules="uniform", seed=0)
            ncml = v**3
            thr = error_threshold(v)
            curve = {int(x * ncml): (0.9 if x < shift else thr / 2) for x in sizes}
            _store_curves(store, {"cnn": curve}, "quick-R4-cnn", g)
        wide = registry.EXPERIMENTS["R4"].analyze(registry.EXPERIMENTS["R4"], store, "quick", tmp_path)
    assert wide.verdict == "inconclusive", wide.numbers


def test_the_benchmark_sweep_files_are_valid():
    from pathlib import Path

    files = sorted((Path(__file__).parent.parent / "benchmarks" / "sweeps").glob("*.toml"))
    assert len(files) >= 8
    names = [Sweep.from_toml(f).validate().name for f in files]
    assert len(set(names)) == len(names)  # one store, so every sweep needs its own name


# --------------------------------------------------------------------------------------------- sampling
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_iid_split_is_disjoint_and_deterministic(seed):
    from rhm import RHM
    from rhm.experiments import train_test_split

    g = RHM(3, 3, 2, 2, seed=seed)  # 3 * 3**3 = 81 distinct inputs
    xtr, ytr, xte, yte = train_test_split(g, 100, 10, seed, "iid")
    assert xtr.shape == (100, 4) and xte.shape == (10, 4)
    train_rows = {r.tobytes() for r in xtr.astype(np.int64)}
    test_rows = [r.tobytes() for r in xte.astype(np.int64)]
    assert len(train_rows) < 100 and len(set(test_rows)) == 10 and not train_rows & set(test_rows)
    assert (g.parse(xtr) == ytr).all() and (g.parse(xte) == yte).all()
    again = train_test_split(g, 100, 10, seed, "iid")
    assert all(np.array_equal(a, b) for a, b in zip((xtr, ytr, xte, yte), again))
    # distinct: the first P of P + T distinct inputs, as before the option existed
    x, y = g.sample(60 + 20, seed=seed, replace=False)
    d = train_test_split(g, 60, 20, seed, "distinct")
    assert np.array_equal(d[0], x[:60]) and np.array_equal(d[2], x[60:])
    with pytest.raises(ValueError, match="sampling='x' must be one of"):
        train_test_split(g, 10, 10, seed, "x")


def test_sampling_field_keeps_default_keys_and_reaches_the_runs():
    base = tiny_sweep()
    iid = tiny_sweep()
    iid.sampling = "iid"
    iid.validate()
    keys, iid_keys = [r.key for r in base.expand()], [r.key for r in iid.expand()]
    assert all(r.sampling == "distinct" and "sampling" not in r.identity() for r in base.expand())
    assert not set(keys) & set(iid_keys) and all(r.sampling == "iid" for r in iid.expand())
    toml = ("name = 'x'\nsampling = 'iid'\ntest_size = 16\n[[grammars]]\nv = 4\nm = 4\nL = 2\n[sizes]\nunit = 'pmax'\n"
            "values = [2.0]\n[[learners]]\nname = 'toy_oracle'\n")
    sw = Sweep.from_toml_string(toml)
    assert [r.train_size for r in sw.expand()] == [512]  # 2 P_max: only i.i.d. sampling allows it
    assert execute(sw.expand()[0].to_dict())["metrics"]["n_distinct_train"] <= 256 - 16
    with pytest.raises(SweepError, match="sampling='often' must be one of"):
        Sweep.from_toml_string(toml.replace("'iid'", "'often'"))


# --------------------------------------------------------------------------------------------- R8
@pytest.mark.parametrize("one_pass_exponent, verdict", [(2.0, "held"), (4.0, "not held")])
def test_r8_reports_both_refit_variants_and_judges_the_one_pass_learner(tmp_path, one_pass_exponent, verdict):
    from rhm.experiments import registry

    (configs,) = registry.EXPERIMENTS["R8"].runs("quick")
    variants = {(c.extras["learner"], c.extras.get("params", {}).get("refit")) for c in configs}
    assert variants == {("layerwise", False), ("layerwise", True), ("shallow", None)}  # refit always explicit
    exponent = {False: one_pass_exponent, True: 2.0, None: 4.0}
    with ResultStore(tmp_path / "r.sqlite") as store:
        for c in configs:
            refit, d = c.extras.get("params", {}).get("refit"), c.extras["d"]
            samples = int(3 * d ** exponent[refit])
            store.put(c, {"metrics": {"learner": c.extras["learner"], "d": d, "samples": samples,
                                      "n_features": d * (d - 1) // 2, "rel_mse": 9e-4}})
        section = registry.EXPERIMENTS["R8"].analyze(registry.EXPERIMENTS["R8"], store, "quick", tmp_path)
    assert section.verdict == verdict, section.numbers
    assert "layerwise, refit=False: d^" in section.numbers and "layerwise, refit=True: d^2.00" in section.numbers
    assert "refit=True: held" in section.numbers


def test_every_experiment_refuses_an_unknown_mode_by_name():
    from rhm.experiments import registry

    for rid, exp in registry.EXPERIMENTS.items():
        with pytest.raises(ValueError, match=r"mode='fast' must be one of \('quick', 'full'\)"):
            exp.runs("fast")


@pytest.mark.parametrize("follows_schedule, verdict", [(True, "held"), (False, "not held")])
def test_r3_verdict_follows_theorem7_schedule(tmp_path, follows_schedule, verdict):
    # P* placed at 1e-4 of each grammar's Σ N^(l)/C (12k-89k samples: slope 1, held) or at one size for every grammar
    # (slope 0: not held); four grammars of R3's quick grid with a schedule
    from rhm import GrammarSpec
    from rhm.experiments import registry
    from rhm.experiments.exp_paper import theorem7_schedule

    grammars = [dict(v=8, m=m, s=2, L=L, n_classes=8, rules="balanced", seed=seed)
                for m, L, seed in ((3, 3, 2), (4, 3, 3), (5, 3, 2), (3, 4, 1))]
    with ResultStore(tmp_path / "r.sqlite") as store:
        for g in grammars:
            sc = theorem7_schedule(GrammarSpec(**g))
            pstar = 1e-4 * sc.total_samples / sc.C if follows_schedule else 40_000.0
            curve = {int(pstar * f): (0.9 if f < 1 else 0.0) for f in (0.25, 0.5, 2, 4)}
            _store_curves(store, {"chaining": curve}, "quick-R3-chaining", g)
        section = registry.EXPERIMENTS["R3"].analyze(registry.EXPERIMENTS["R3"], store, "quick", tmp_path)
    assert section.verdict == verdict, section.numbers
    assert "P* found for 4/4 grammars" in section.numbers


def test_dry_runs_leave_out_what_the_store_already_holds(tmp_path):
    """`rhm reproduce --dry-run` and `rhm sweep --dry-run` price only what a real run into the store would still do
    (its finished keys are skipped), and never write to that store."""
    from typer.testing import CliRunner

    from rhm.cli import app
    from rhm.experiments import reproduce_configs

    cfgs = reproduce_configs("quick", ["R4"])["R4"]
    store = tmp_path / "out" / "results.sqlite"
    store.parent.mkdir()
    with ResultStore(store) as st:
        for c in cfgs[:3]:
            st.put(c, {"test_error": 0.5, "test_accuracy": 0.5})
    before = store.read_bytes()
    args = ["reproduce", "--dry-run", "--time-budget", "0", "--json", "--section", "R4"]
    out = CliRunner().invoke(app, args + ["--out", str(tmp_path / "out")])
    assert out.exit_code == 0, out.output
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["sections"]["R4"]["runs"] == len(cfgs) - 3 and got["already_stored"] == 3
    out = CliRunner().invoke(app, args + ["--out", str(tmp_path / "elsewhere")])  # no store there: every run
    assert json.loads(out.stdout.strip().splitlines()[-1])["runs"] == len(cfgs)
    assert store.read_bytes() == before and not (tmp_path / "elsewhere").exists()
    toml = tmp_path / "s.toml"  # a sweep's dry run lists only the keys its --store lacks
    toml.write_text('name = "d"\n[[grammars]]\nv = 4\nm = 2\nL = 2\n[[learners]]\nname = "kmeans"\n'
                    '[sizes]\nunit = "samples"\nvalues = [8, 12, 16]\n')
    planned = Sweep.from_toml(toml).expand()
    with ResultStore(tmp_path / "d.sqlite") as st:
        st.put(planned[1], {"test_error": 0.5, "test_accuracy": 0.5})
    out = CliRunner().invoke(app, ["sweep", str(toml), "--dry-run", "--time-budget", "0", "--store",
                                   str(tmp_path / "d.sqlite")])
    assert out.exit_code == 0, out.output
    listed = [ln.split()[0] for ln in out.stdout.splitlines() if ln.strip()]
    assert listed == [planned[0].key, planned[2].key]
