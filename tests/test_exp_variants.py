"""V1 (Zipf learning curves) and V2 (noise vs Bayes): records, run lists, and the statistics behind the verdicts."""

import numpy as np
import pytest

from rhm.experiments import exp_variants as ev
from rhm.experiments.registry import EXPERIMENTS
from rhm.experiments.sweep import Sweep
from rhm.experiments.verdicts import interval_verdict


@pytest.mark.parametrize("mode", ["quick", "full"])
def test_records_and_runs(mode):
    for rid in ("V1", "V2"):
        exp = EXPERIMENTS[rid]
        names = exp.sweep_names(mode)
        assert names and all(n.startswith(mode) for n in names)
        for job in exp.runs(mode):
            cfgs = job.validate().expand() if isinstance(job, Sweep) else job
            seeds = {c.grammar["seed"] for c in cfgs}
            assert seeds == set(ev.HELD_OUT[mode]) and not seeds & set(ev.DEV_SEEDS)
            assert all(c.sampling == "iid" for c in cfgs)
    # V1 replicas differ in their data draw (a grammar seed alone only relabels the rules at L = 1)
    cfgs = EXPERIMENTS["V1"].runs(mode)[0]
    assert all(c.seed == c.grammar["seed"] for c in cfgs)


def test_memoriser_exponent_approaches_the_law():
    """The exact memoriser's slope on the V1 window tends to a/(1+a) as m grows (within 0.05 at m = 1024)."""
    for a in (1.0, 2.0):
        P = np.array(ev.v1_sizes(1024, 4, a, 6))
        slope = -np.polyfit(np.log(P), np.log(ev.memoriser_error(P, 1024, 4, a)), 1)[0]
        assert abs(slope - a / (1 + a)) < 0.05


def test_bootstrap_slope_covers_the_truth_and_can_reject():
    """On synthetic curves err = c P^-b x lognormal noise (10 grammars), the CI covers b in most of 20 draws, and a
    band around a wrong exponent gives 'not held'."""
    P = np.geomspace(30, 3000, 5)
    covered, rejected = 0, 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        err = 0.5 * P[None] ** -0.5 * np.exp(0.15 * rng.standard_normal((10, len(P))))
        est, lo, hi = ev.bootstrap_slope(P, err, n_boot=500, seed=seed)
        covered += lo <= -0.5 <= hi
        rejected += interval_verdict(-hi, -lo, 0.8 - 0.15, 0.8 + 0.15) == "not held"
    assert covered >= 16 and rejected == 20
