"""FG3 (rhm.experiments.exp_varying): the 'ambiguity' task's rows, the crossing rule, the analysis on a fake store,
the record's seeds."""

import math

import numpy as np
import pytest
from _fakes import FakeStore

from rhm.experiments import exp_varying as E
from rhm.experiments import registry
from rhm.experiments.config import RunConfig
from rhm.experiments.tasks import execute
from rhm.spec import GrammarSpec


def _row(k, L, seed=1000, n=60):  # a development seed: never one of the held-out grammars
    cfg = RunConfig(task="ambiguity", grammar=GrammarSpec(v=8, m=k, m3=8 * k, p2=0.5, L=L, seed=seed).to_dict(),
                    seed=0, extras={"n_strings": n})
    return execute(cfg.to_dict())["metrics"]


def test_ambiguity_rows():
    low, high = _row(1, 2), _row(6, 3)
    for m in (low, high):
        assert m["n_strings"] == 60 and 0 <= m["p_root_undetermined"] <= m["p_ambiguous"] <= 1
        assert m["mean_log_parses"] >= 0
    assert 4 <= low["mean_length"] <= 9 and 8 <= high["mean_length"] <= 27
    # f = 1/8 at L = 2: nearly unambiguous; f = 3/4 at L = 3: most strings have several parses (dev seeds: 0.92)
    assert low["p_ambiguous"] < 0.1 and high["p_ambiguous"] > 0.6
    assert high["mean_log_parses"] > 10 * low["mean_log_parses"]


def test_ambiguity_task_refuses_a_fixed_tree_grammar():
    cfg = RunConfig(task="ambiguity", grammar=GrammarSpec(v=8, m=2, s=2, L=2).to_dict(), seed=0)
    with pytest.raises(ValueError, match="varying-tree grammar"):
        execute(cfg.to_dict())


def test_crossing_rule():
    fs = [0.25, 0.375, 0.5]
    assert E.crossing(fs, [-1.0, -1.0, 1.0]) == pytest.approx(0.4375)
    assert E.crossing(fs, [1.0, -1.0, 3.0]) == pytest.approx(0.375 + 0.125 / 4)  # the last upward crossing
    assert E.crossing(fs, [1.0, 1.0, 1.0]) == -math.inf
    assert E.crossing(fs, [1.0, 1.0, -1.0]) == math.inf


def _fake_rows(cross, seeds, jitter=0.0):
    """Rows whose densities cross at `cross` exactly: s_3 = f, s_4 = f + (f - cross) (+ per-grammar jitter)."""
    rng = np.random.default_rng(0)
    rows = []
    for gs in seeds:
        for k in E.GRID["quick"]["k"]:
            f = k / 8
            for L, s in ((3, f), (4, 2 * f - cross + jitter * rng.standard_normal())):
                rows.append({"sweep": "quick-FG3-ambiguity", "L": L, "m": k, "grammar_seed": gs,
                             "metrics": {"mean_log_parses": s * 10.0, "mean_length": 10.0, "p_ambiguous": 0.5,
                                         "p_root_undetermined": 0.4}})
    return rows


@pytest.mark.parametrize("cross, verdict", [(0.4, "held"), (0.6, "not held"), (0.2, "not held")])
def test_analysis_verdicts(tmp_path, cross, verdict):
    exp = registry.get("FG3")
    s = E.analyze_FG3(exp, FakeStore(_fake_rows(cross, range(3300, 3310))), "quick", tmp_path)
    assert s.verdict == verdict, s.numbers
    assert (tmp_path / "FG3-parse-entropy.png").exists()


def test_analysis_noisy_is_inconclusive(tmp_path):
    s = E.analyze_FG3(registry.get("FG3"), FakeStore(_fake_rows(0.5, range(3300, 3310), jitter=0.3)), "quick",
                      tmp_path)
    assert s.verdict == "inconclusive", s.numbers


def test_analysis_too_few_runs(tmp_path):
    s = E.analyze_FG3(registry.get("FG3"), FakeStore(_fake_rows(0.4, [3300, 3301])), "quick", tmp_path)
    assert s.verdict == "inconclusive" and "too few" in s.numbers


def test_record_seeds_and_runs():
    assert registry.get("FG3").id == "FG3"
    assert E.FG3_BAND[0] < E.F_C < E.FG3_BAND[1]
    for mode in ("quick", "full"):
        seeds = E.GRID[mode]["seeds"]
        assert len(seeds) >= 10 and not set(seeds) & set(E.DEV_SEEDS)
    jobs = E.runs_FG3("quick")[0]
    p = E.GRID["quick"]
    assert len(jobs) == len(p["seeds"]) * len(p["L"]) * len(p["k"])
    assert {j.spec.kind for j in jobs} == {"varying"} and {j.sweep for j in jobs} == {"quick-FG3-ambiguity"}
