"""LM2 (P* ratios of transformer and LCN to the CNN) and LM3 (masked-token excess cross-entropy vs P): records,
run lists (held-out grammar seeds only), and each analysis on a small synthetic store, where the verdict can go
either way."""

import numpy as np
import pytest

from rhm.experiments import exp_lm as el
from rhm.experiments.registry import EXPERIMENTS
from rhm.experiments.sweep import Sweep


class FakeStore:
    """What the analyses read: store.rows(sweep=...)."""

    def __init__(self, rows):
        self._rows = rows

    def rows(self, sweep=None):
        return [r for r in self._rows if r["sweep"] == sweep]


@pytest.mark.parametrize("mode", ["quick", "full"])
def test_records_and_runs(mode):
    for rid, learners in (("LM2", {"cnn", "lcn", "transformer"}), ("LM3", {"transformer"})):
        exp = EXPERIMENTS[rid]
        assert exp.sweep_names(mode) and all(n.startswith(mode) for n in exp.sweep_names(mode))
        for job in exp.runs(mode):
            cfgs = job.validate().expand() if isinstance(job, Sweep) else job
            seeds = {c.grammar["seed"] for c in cfgs}
            assert seeds == set(el.LM_HELD_OUT[mode]) and not seeds & set(el.LM_DESIGN_SEEDS)
            assert {c.learner for c in cfgs} == learners
            assert {c.objective for c in cfgs} == ({"classify"} if rid == "LM2" else {"masked"})
    if mode == "full":
        assert len(el.LM_HELD_OUT[mode]) >= 10


def _lm2_rows(mode, shift, seed):
    """Error curves err = 1/(1 + (P/P0)^2) + noise, P0 = n_c m^L for the CNN and shift x that for the others."""
    rng = np.random.default_rng(seed)
    rows = []
    for L in el.LM2_LS[mode]:
        base = el.LM_V * el.LM_M ** L
        for lab, p0 in (("cnn", base), ("lcn", shift * base), ("transformer", shift * base)):
            for P in np.geomspace(base / 8, base * 64, 10).astype(int):
                for s in range(3):
                    err = 0.875 / (1 + (P / p0) ** 2) + 0.01 * rng.standard_normal()
                    rows.append(dict(sweep=f"{mode}-LM2-L{L}", label=lab, L=L, n_classes=el.LM_V, train_size=int(P),
                                     test_error=float(np.clip(err, 0, 1))))
    return rows


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lm2_verdict_follows_the_ratio(seed):
    exp = EXPERIMENTS["LM2"]
    assert exp.analyze(exp, FakeStore(_lm2_rows("quick", 4.0, seed)), "quick", None).verdict == "held"
    assert exp.analyze(exp, FakeStore(_lm2_rows("quick", 0.25, seed)), "quick", None).verdict == "not held"
    sec = exp.analyze(exp, FakeStore(_lm2_rows("quick", 4.0, seed)), "quick", None)
    assert "d log ratio / dL" in sec.numbers


def _lm3_rows(mode, exponent, seed):
    rng = np.random.default_rng(seed)
    rows = []
    for P in el.LM3_SIZES[mode]:
        for s in range(3):
            ex = 0.5 * (P / 64) ** exponent * np.exp(0.1 * rng.standard_normal())
            rows.append(dict(sweep=f"{mode}-LM3-masked", train_size=P, metrics=dict(
                cross_entropy=1.0 + ex, bayes_cross_entropy=1.0, excess_cross_entropy=ex)))
    return rows


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lm3_verdict_follows_the_slope(seed):
    exp = EXPERIMENTS["LM3"]
    assert exp.analyze(exp, FakeStore(_lm3_rows("quick", -0.5, seed)), "quick", None).verdict == "held"
    assert exp.analyze(exp, FakeStore(_lm3_rows("quick", 0.3, seed)), "quick", None).verdict == "not held"
    est, lo, hi = el.excess_slope([64, 128, 256, 512] * 3, 0.5 * (np.array([64, 128, 256, 512] * 3) / 64) ** -0.5)
    assert max(abs(est + 0.5), abs(lo + 0.5), abs(hi + 0.5)) < 1e-9  # noiseless: a zero-width interval
