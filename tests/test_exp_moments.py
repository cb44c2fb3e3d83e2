"""FG2 (the moment learner's P* on the varying-tree RHM vs the paper's formula): the record's runs in both modes
(held-out seeds only, disjoint per shape), the verdict both ways and inconclusive on fabricated store rows, the
figure."""

import math

import numpy as np
import pytest
from _fakes import FakeStore

from rhm.experiments import exp_moments as fg
from rhm.experiments.registry import EXPERIMENTS
from rhm.experiments.sweep import Sweep


@pytest.mark.parametrize("mode", ["quick", "full"])
def test_records_expand_on_held_out_seeds(mode):
    exp = EXPERIMENTS["FG2"]
    assert exp.requires == ("moments",) and exp.missing(mode) is None
    seeds, n = {}, 0
    for job in exp.runs(mode):
        assert isinstance(job, Sweep) and job.name.startswith(f"{mode}-FG2-")
        for c in job.validate().expand():
            n += 1
            assert c.sampling == "iid" and c.task == "train" and c.objective == "classify"
            g = c.grammar
            assert (g["v"], g["p2"], g["n_classes"]) == (8, 0.5, 8) and g["m3"] >= 1
            if c.learner == "transformer":  # --full's comparison, on shape A's held-out grammars
                assert mode == "full"
                continue
            assert c.learner == "moments"
            seeds.setdefault(job.name, set()).add(g["seed"])
    used = set().union(*seeds.values())
    assert not used & set(fg.DESIGN_SEEDS)
    assert sum(len(v) for v in seeds.values()) == len(used)  # disjoint across shapes
    assert all(len(v) >= 10 for v in seeds.values())
    if mode == "quick":
        assert n <= 120
    else:
        assert f"{mode}-FG2-A3" in seeds


def test_formula_values():
    assert fg.formula("A") == pytest.approx(256) and fg.formula("B") == pytest.approx(576)
    assert fg.formula("A3") / fg.formula("A") == pytest.approx(16)  # 2 m2 / p2**2 per level


def _rows(mode, pstar, seed=0):
    """Store rows: grammar k of shape `shape` reaches test error 0.05 from its P*_g (log-normal around
    pstar[shape], or inf: never) and stays at 0.6 below it."""
    rng = np.random.default_rng(seed)
    rows = []
    for shape, center in pstar.items():
        for gseed in fg.HELD_OUT[mode][shape]:
            p = center * math.exp(0.1 * rng.standard_normal()) if math.isfinite(center) else math.inf
            for P in fg.GRID[mode][shape]:
                rows.append(dict(sweep=f"{mode}-FG2-{shape}", train_size=P, test_error=0.05 if P >= p else 0.6,
                                 config={"grammar": {"v": 8, "m": fg.SHAPES[shape][0], "seed": gseed}}))
    return rows


@pytest.mark.parametrize("seed", [0, 1])
def test_verdict_held_not_held_inconclusive(seed):
    exp = EXPERIMENTS["FG2"]
    # B's P* 2.25 x A's, as the formula says
    held = exp.analyze(exp, FakeStore(_rows("quick", {"A": 300, "B": 675}, seed)), "quick", None)
    assert held.verdict == "held" and "formula ratio 2.25" in held.numbers
    # the same P* for both shapes: measured/formula = 1/2.25 < 1/2
    same = exp.analyze(exp, FakeStore(_rows("quick", {"A": 300, "B": 300}, seed)), "quick", None)
    assert same.verdict == "not held"
    # B never reaches the threshold on the grid: its ratio is only bounded below, by about 1140/300/2.25 < 2
    censored = exp.analyze(exp, FakeStore(_rows("quick", {"A": 300, "B": math.inf}, seed)), "quick", None)
    assert censored.verdict == "inconclusive"


def test_verdict_needs_runs_of_both_shapes():
    exp = EXPERIMENTS["FG2"]
    assert exp.analyze(exp, FakeStore([]), "quick", None).numbers == "no finished runs"
    only_a = exp.analyze(exp, FakeStore(_rows("quick", {"A": 300})), "quick", None)
    assert only_a.verdict == "inconclusive" and "no ratio" in only_a.numbers


def test_full_has_the_depth_ratio():
    exp = EXPERIMENTS["FG2"]
    sec = exp.analyze(exp, FakeStore(_rows("full", {"A": 300, "B": 675, "A3": 300 * 16})), "full", None)
    assert sec.verdict == "held" and "P*_1/2(A3) / P*_1/2(A)" in sec.numbers
    grows = exp.analyze(exp, FakeStore(_rows("full", {"A": 300, "B": 675, "A3": 300 * 60})), "full", None)
    assert grows.verdict == "not held"


def test_figure_written(tmp_path):
    exp = EXPERIMENTS["FG2"]
    sec = exp.analyze(exp, FakeStore(_rows("quick", {"A": 300, "B": 675})), "quick", tmp_path)
    figs = [b for b in sec.blocks if b[0] == "fig"]
    assert figs and (tmp_path / figs[0][1]).stat().st_size > 5000
