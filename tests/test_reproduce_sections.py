"""`rhm reproduce` / `rhm report`: progress lines in logs, sections that stand alone, incomplete verdicts.

The reproduce tests run the real registry's quick grids through a fake executor that answers every run at once
with a synthetic test error (P* = n_c·m^L exactly), so they check which runs are made and how the report reads
them, in seconds, without training anything.
"""

from __future__ import annotations

import io
import time

import pytest

from rhm.experiments import ResultStore
from rhm.experiments.complexity import error_threshold
from rhm.experiments.config import RunConfig


class FakeExecutor:
    """Answers each run at once: error 0.9 below P = n_c·m^L, a quarter of the P* threshold from there on."""

    name, workers = "fake", 1

    def __init__(self):
        self.seen = []

    def run(self, configs, imports=()):
        from rhm.experiments.tasks import execute

        for c in configs:
            cfg = RunConfig.from_dict(c)
            self.seen.append(cfg)
            if cfg.task != "train":  # parse, gaps: cheap, run for real
                yield c, execute(c)
                continue
            g = cfg.grammar
            ncml = g["n_classes"] * g["m"] ** g["L"]
            err = 0.9 if cfg.train_size < ncml else error_threshold(g["n_classes"]) / 4
            yield c, {"test_error": err, "test_accuracy": 1 - err, "wall_seconds": 0.01, "metrics": {}}


def _reproduce(tmp_path, sections, executor=None, log=None):
    from rhm.experiments.reproduce import reproduce

    return reproduce(tmp_path / "out", mode="quick", executor=executor or FakeExecutor(), sections=sections,
                     progress=False, log=log or (lambda *a: None))


# ------------------------------------------------------------------------------------------------ progress
def test_plain_progress_lines_come_every_interval_when_not_a_terminal():
    from rhm.experiments.progress import progress_bar

    out = io.StringIO()  # not a terminal, like a log file
    with progress_bar("R4 sweep", total=3, interval=0.05, stream=out, estimate_s=600) as advance:
        time.sleep(0.4)  # no run finishes: the timer alone must print
        advance()
        time.sleep(0.2)
        advance(2)
    lines = out.getvalue().splitlines()
    assert lines[0] == "R4 sweep: 3 runs to do, estimate 10.0 min"
    waiting = [x for x in lines if x.startswith("R4 sweep: 0/3 runs")]
    assert len(waiting) >= 3, lines  # ~8 ticks in 0.4 s; 3 leaves room for a loaded machine
    assert "estimate" in waiting[0] and "left" in waiting[0]
    assert any(x.startswith("R4 sweep: 1/3 runs") and "about" in x for x in lines), lines
    assert lines[-1].startswith("R4 sweep: 3/3 runs") and lines[-1].endswith("finished")


def test_runner_prints_plain_progress_to_a_non_terminal_stderr(tmp_path, capsys, monkeypatch):
    from rhm.experiments import progress
    from rhm.experiments.runner import run_configs

    class Slow(FakeExecutor):
        def run(self, configs, imports=()):
            for item in super().run(configs, imports):
                time.sleep(0.15)
                yield item

    monkeypatch.setattr(progress, "PLAIN_INTERVAL_S", 0.05)
    g = dict(v=4, m=4, s=2, L=2, n_classes=4, rules="uniform", seed=0)
    cfgs = [RunConfig(task="train", grammar=g, learner="kmeans", train_size=100, test_size=50, seed=s, sweep="t")
            for s in range(3)]
    with ResultStore(tmp_path / "r.sqlite") as st:
        run_configs(cfgs, st, executor=Slow(), description="toy sweep")
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "toy sweep: 3 runs to do" and err[-1].startswith("toy sweep: 3/3 runs")
    assert len([x for x in err if "elapsed" in x]) >= 4, err  # 0.45 s of runs at a 0.05 s interval


def test_progress_bar_refuses_a_non_positive_interval():
    from rhm.experiments.progress import progress_bar

    with pytest.raises(ValueError, match="interval"):
        with progress_bar("x", 1, interval=0, stream=io.StringIO()):
            pass


# ------------------------------------------------------------------------------------------ sections, report
def test_section_r9_alone_runs_the_r4_cnn_runs_it_compares_with(tmp_path):
    from rhm.experiments.registry import EXPERIMENTS

    ex, lines = FakeExecutor(), []
    res = _reproduce(tmp_path, ["R9"], executor=ex, log=lines.append)
    r4_keys = {c.key for c in EXPERIMENTS["R4"].runs("quick")[0].expand()}
    assert len(r4_keys) == 40 and r4_keys <= {c.key for c in ex.seen}  # 5 grammars x 4 sizes x 2 seeds
    with ResultStore(tmp_path / "out" / "results.sqlite") as st:
        assert r4_keys <= st.finished_keys()
    r9 = {r["R"]: r for r in res["summary"]}["R9"]
    assert r9["verdict"] in ("held", "not held", "inconclusive") and "P*(chaining+)/P*(best cnn)" in r9["numbers"]
    assert "R9" in lines[0] or any(x.lstrip().startswith("R9") and "runs" in x for x in lines), lines
    assert lines[0].startswith("rhm reproduce --quick: 1 sections, ") and "CPU time" in lines[0]


def test_missing_runs_give_incomplete_and_no_verdict(tmp_path):
    from rhm.experiments.report import write_report

    res = _reproduce(tmp_path, ["R4"])
    assert {r["R"]: r for r in res["summary"]}["R4"]["verdict"] == "held"  # complete: P* = n_c·m^L exactly
    path = tmp_path / "out" / "results.sqlite"
    with ResultStore(path) as st:
        gone = [r["key"] for r in st.rows(sweep="quick-R4-cnn") if r["v"] == 8][:7]
        st.conn.execute(f"DELETE FROM runs WHERE key IN ({','.join('?' * len(gone))})", gone)
        st.conn.commit()
    rep = write_report(path, tmp_path / "rep")
    r4 = {r["R"]: r for r in rep["summary"]}["R4"]
    assert r4["verdict"] == "incomplete: 7 of 40 runs missing", r4
    assert "no verdict on partial data" in r4["numbers"]
    md = (tmp_path / "rep" / "index.md").read_text()
    assert "| quick-R4-cnn | cnn | v=8 m=8 s=2 L=2 n_classes=8 seed=1 | 7 |" in md
    assert "**held**" not in md.split("## R4.")[0].split("| R4 |")[1].split("\n")[0]


def test_interrupted_reproduce_still_lists_its_sections_in_the_report(tmp_path):
    # R1 and R4 ran; the meta was lost (as when a reproduce is killed before it writes it at the end)
    from rhm.experiments.report import write_report

    _reproduce(tmp_path, ["R1", "R4"])
    path = tmp_path / "out" / "results.sqlite"
    with ResultStore(path) as st:
        meta = st.get_meta("reproduce")
        assert set(meta["sections"]) == {"R1", "R4"} and meta["sections"]["R4"]["status"] == "ran"
        st.conn.execute("DELETE FROM meta WHERE name = 'reproduce'")
        st.conn.commit()
    rep = write_report(path, tmp_path / "rep")
    verdicts = {r["R"]: r["verdict"] for r in rep["summary"]}
    # R7 and R9 (quick) read R4's sweep: shown, R9 incomplete (its own runs never ran); R6 has its own sweep
    assert verdicts["R1"] == "held" and verdicts["R4"] == "held", verdicts
    assert verdicts["R9"] == "incomplete: 20 of 60 runs missing" and "R7" in verdicts
    assert not {"R2", "R3", "R5", "R6"} & set(verdicts)


def test_a_section_that_starts_is_in_the_meta_before_it_ends(tmp_path):
    class Boom(FakeExecutor):
        def run(self, configs, imports=()):
            with ResultStore(tmp_path / "out" / "results.sqlite") as st:
                self.meta = st.get_meta("reproduce")
            raise KeyboardInterrupt  # the user stops it midway

    ex = Boom()
    with pytest.raises(KeyboardInterrupt):
        _reproduce(tmp_path, ["R4"], executor=ex)
    assert ex.meta["sections"]["R4"]["status"] == "running"
    from rhm.experiments.report import write_report

    rep = write_report(tmp_path / "out" / "results.sqlite", tmp_path / "rep")
    r4 = {r["R"]: r for r in rep["summary"]}["R4"]
    assert r4["verdict"] == "incomplete: 40 of 40 runs missing"


def test_quick_estimate_counts_runs_left_and_prefers_recorded_times(tmp_path):
    from rhm.experiments.estimate import model_seconds, quick_estimate

    g = dict(v=4, m=4, s=2, L=2, n_classes=4, rules="uniform", seed=0)
    cfgs = [RunConfig(task="train", grammar=g, learner="kmeans", train_size=P, test_size=50, seed=s, sweep="t")
            for P in (100, 200) for s in range(3)]
    t0 = time.perf_counter()
    est = quick_estimate(cfgs)
    assert time.perf_counter() - t0 < 1.0  # nothing is run or timed
    assert est.runs == 6 and est.untimed_runs == 0
    assert est.cpu_hours * 3600 == pytest.approx(sum(model_seconds(c) for c in cfgs))
    with ResultStore(tmp_path / "r.sqlite") as st:
        st.put(cfgs[0], {"test_error": 0.1, "wall_seconds": 5.0})  # P = 100 took 5 s here
        est = quick_estimate(cfgs, store=st)
    # 5 runs left: 2 more at P = 100 (5 s each), 3 at P = 200 (scaled linearly: 10 s each)
    assert est.runs == 5 and est.cpu_hours * 3600 == pytest.approx(2 * 5.0 + 3 * 10.0)
    assert {g["source"] for g in est.groups} == {"recorded"}


def test_step_budgeted_learners_cost_the_same_at_every_size():
    """A fit of a fixed number of gradient steps (the diffusion learner; a torch learner past max_steps) costs
    the same whatever P: the estimates scale by steps x batch, not by P (DM3's dry run said 92 CPU-hours for
    runs measured at 3-6)."""
    from rhm.experiments.estimate import estimate, model_seconds, work

    g = dict(v=8, m=2, s=2, L=3, n_classes=8, rules="uniform", seed=0)
    hp = {"width": 32, "max_steps": 100, "batch_size": 64}
    diff = [RunConfig(task="diffusion", grammar=g, learner="diffusion", params=hp, resolved=hp, train_size=P,
                      seed=0, extras={"what": "learn", "n_gen": 10}, sweep="d") for P in (64, 1024, 4096)]
    assert {work(c) for c in diff} == {6400.0}
    assert len({model_seconds(c) for c in diff}) == 1
    now = [0.0]

    def run(cfg):  # a fake run costing 2 s of a fake clock whatever P
        now[0] += 2.0

    est = estimate(diff, budget_s=3.0, run=run, clock=lambda: now[0])  # warm-up + P = 64 timed, then over
    assert [g["seconds"] for g in sorted(est.groups, key=lambda g: g["train_size"])] == [2.0, 2.0, 2.0]
    cnn = [RunConfig(task="train", grammar=g, learner="cnn", params={"max_steps": 50, "batch_size": 32, "epochs": 10},
                     train_size=P, test_size=10, seed=0, sweep="c") for P in (64, 320, 3200)]
    assert [work(c) for c in cnn] == [640.0, 1600.0, 1600.0]  # 10 epochs of 2 steps, then the 50-step budget
    assert work(RunConfig(task="train", grammar=g, learner="kmeans", train_size=300, test_size=10, seed=0)) == 300
    online = [RunConfig(task="train", grammar=g, learner="transformer", objective="masked", train_size=640,
                        test_size=10, seed=0, extras={"online": True, **extra}) for extra in ({}, {"mask_draws": 2})]
    assert [work(c) for c in online] == [640.0, 1280.0]  # online: the rows processed, K masks per string


def test_a_long_step_without_runs_still_prints_lines():
    from rhm.experiments.progress import activity

    out = io.StringIO()
    with activity("writing the report", interval=0.05, stream=out):
        time.sleep(0.3)
    lines = out.getvalue().splitlines()
    assert lines[0] == "writing the report ..." and lines[-1].startswith("writing the report: done in")
    assert len([x for x in lines if x.endswith("elapsed")]) >= 2, lines
