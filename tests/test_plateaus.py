"""Exact LM plateaus (rhm.inference.plateaus) against brute-force enumeration, and the step locator.

The reference here enumerates every derivation of a tiny grammar recursively (plain Python), puts the strings
through the noise channel, and computes the window-restricted Bayes cross-entropy by counting: the joint law of
the window's tokens is the full law summed over the other positions, the predictor is that joint divided by the
law of the visible tokens. Nothing of it goes through rhm.inference.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

import numpy as np
import pytest

import rhm
from rhm.experiments.complexity import locate_steps
from rhm.inference import plateaus
from rhm.treepcfg import tree_pcfg

TOL = 1e-10  # exact vs exact: only floating-point rounding separates them


def _derivations(P, level, sym):
    """{leaf string (tuple): probability} of the subtree below a level-`level` symbol `sym` (recursive)."""
    if level == P.L:
        return {(sym,): 1.0}
    out = defaultdict(float)
    for rule, prob in zip(P.children[level][sym], P.probs[level][sym]):
        if prob == 0:
            continue
        parts = [_derivations(P, level + 1, int(c)) for c in rule]
        for combo in itertools.product(*[list(p.items()) for p in parts]):
            string = sum((k for k, _ in combo), ())
            out[string] += prob * math.prod(v for _, v in combo)
    return out


def _law(g):
    """{observed string: probability} of g, the noise channel applied token by token."""
    P = tree_pcfg(g)
    clean = defaultdict(float)
    for root, pr in enumerate(P.prior):
        for k, v in _derivations(P, 0, root).items():
            clean[k] += pr * v
    if P.noise == 0:
        return dict(clean)
    E = (1 - P.noise) * np.eye(P.V) + P.noise / P.V
    obs = defaultdict(float)
    for k, v in clean.items():
        for o in itertools.product(range(P.V), repeat=len(k)):
            obs[o] += v * math.prod(E[a, b] for a, b in zip(k, o))
    return dict(obs)


def _cond_entropy(law, target, context):
    """H(x_target | x_context) by counting over the full law (context: a tuple of positions, maybe empty)."""
    joint, ctx = defaultdict(float), defaultdict(float)
    for k, v in law.items():
        c = tuple(k[i] for i in context)
        joint[(c, k[target])] += v
        ctx[c] += v
    return -sum(v * math.log(v / ctx[c]) for (c, _), v in joint.items() if v > 0)


def _brute(g, task, mask_rate=None):
    """Plateau l = 0..L by counting: per target the window of its level-(L-l) ancestor, averaged per target."""
    law = _law(g)
    P = tree_pcfg(g)
    d, S, L = P.d, P.S, P.L
    out = []
    for level in range(L + 1):
        w = S**level
        if task == "next-token":
            t = d - 1
            out.append(_cond_entropy(law, t, tuple(range(t - t % w, t))))
        elif task == "next-token-all":
            out.append(np.mean([_cond_entropy(law, t, tuple(range(t - t % w, t))) for t in range(d)]))
        elif mask_rate is None:  # one hidden token at a uniform position, the rest of its window visible
            out.append(np.mean([_cond_entropy(law, t, tuple(i for i in range(t - t % w, t - t % w + w) if i != t))
                                for t in range(d)]))
        else:  # each other window token visible with probability 1 - rate
            tot = 0.0
            for t in range(d):
                others = [i for i in range(t - t % w, t - t % w + w) if i != t]
                for vis in itertools.product([0, 1], repeat=len(others)):
                    k = sum(vis)
                    weight = (1 - mask_rate) ** k * mask_rate ** (len(others) - k)
                    tot += weight * _cond_entropy(law, t, tuple(i for i, v in zip(others, vis) if v))
            out.append(tot / d)
    return np.array(out)


GRAMMARS = {
    "v3m2s2L2": lambda: rhm.RHM(3, 2, 2, 2, seed=0),
    "v4m2s2L2-seed3": lambda: rhm.RHM(4, 2, 2, 2, seed=3),
    "v2m2s2L3": lambda: rhm.RHM(2, 2, 2, 3, seed=1),
    "v3m3s3L2-balanced": lambda: rhm.RHM(3, 3, 3, 2, rules="balanced", seed=2),
    "zipf": lambda: rhm.RHM(3, 2, 2, 2, seed=4, zipf=1.0),
    "noise": lambda: rhm.RHM(3, 2, 2, 2, seed=5, noise=0.2),
    "nc2": lambda: rhm.RHM(3, 2, 2, 2, n_classes=2, seed=6),
    "sparse": lambda: rhm.SparseRHM(3, 2, 2, 1, s0=1, seed=7),
}
TASKS = [("next-token", None), ("next-token-all", None), ("masked", None), ("masked", 0.3)]


@pytest.mark.parametrize("name", sorted(GRAMMARS))
@pytest.mark.parametrize("task,rate", TASKS)
def test_exact_plateaus_match_enumeration(name, task, rate):
    g = GRAMMARS[name]()
    got = plateaus(g, task, mask_rate=rate, exact=True)
    want = _brute(g, task, rate)
    assert got.method == ("exact",) * len(want)
    np.testing.assert_allclose(got.values, want, rtol=0, atol=TOL)
    np.testing.assert_array_equal(got.lo, got.values)
    # more context never hurts the Bayes predictor: non-increasing in l
    assert (np.diff(got.values) <= TOL).all(), got.values


@pytest.mark.parametrize("name", ["v3m2s2L2", "zipf", "noise", "sparse"])
def test_top_plateau_is_bayes_and_bottom_is_unigram(name):
    g = GRAMMARS[name]()
    big = 10**9
    assert plateaus(g, "next-token-all").values[-1] == pytest.approx(
        rhm.oracle.bayes_reference(g, "next-token-all", exact_limit=big).cross_entropy, abs=TOL)
    assert plateaus(g, "masked", mask_rate=0.2).values[-1] == pytest.approx(
        rhm.oracle.bayes_reference(g, "masked", rate=0.2, exact_limit=big).cross_entropy, abs=TOL)
    # l = 0: the entropy of the last token's marginal, estimated here from the law's last column
    law = _law(g)
    marg = defaultdict(float)
    for k, v in law.items():
        marg[k[-1]] += v
    h = -sum(v * math.log(v) for v in marg.values() if v > 0)
    assert plateaus(g, "next-token").values[0] == pytest.approx(h, abs=TOL)


def test_issue_numbers_last_token_v8_m4_L3():
    """Issue 24 quotes 2.03 -> 1.47 -> 0.97 -> Bayes 0.61 for the last token of v=8, m=4, s=2, L=3, seed 0."""
    g = rhm.RHM(8, 4, 2, 3, seed=0)
    r = plateaus(g, "next-token")
    np.testing.assert_allclose(r.values, [2.03, 1.47, 0.97, 0.61], atol=0.005)
    assert r.window == (1, 2, 4, 8)
    # the top plateau is the Bayes cross-entropy the LM metrics use on the same task (lm_tasks.bayes_proba):
    # the mean over a large sample agrees within 5 standard errors
    data = rhm.lm_tasks.sample(g, "next-token", 20_000, seed=3)
    nll = -np.log(rhm.lm_tasks.bayes_proba(g, data)[np.arange(20_000), data.y])
    assert abs(nll.mean() - r.values[-1]) < 5 * nll.std() / math.sqrt(len(nll))


@pytest.mark.parametrize("task,rate", TASKS)
def test_monte_carlo_interval_covers_exact(task, rate):
    g = rhm.RHM(4, 2, 2, 3, seed=0)
    ex = plateaus(g, task, mask_rate=rate, exact=True)
    mc = plateaus(g, task, mask_rate=rate, exact=False, n=4000, seed=1)
    assert mc.method == ("exact",) + ("monte_carlo",) * 3
    for lv in range(1, 4):
        half = (mc.hi[lv] - mc.lo[lv]) / 2
        assert 0 <= half < 0.05
        # 95% intervals at a fixed seed: the margin is two half-widths (plus rounding for zero-width cases)
        assert abs(mc.values[lv] - ex.values[lv]) <= 2 * half + 1e-9, (lv, mc.values, ex.values)


def test_auto_rule_switches_to_monte_carlo_and_same_seed_same_numbers():
    g = rhm.RHM(8, 4, 2, 3, seed=0)
    a = plateaus(g, "next-token", exact_limit=1000, n=500, seed=2)
    assert a.method == ("exact", "exact", "exact", "monte_carlo") and a.n[-1] == 500
    b = plateaus(g, "next-token", exact_limit=1000, n=500, seed=2)
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.per_position[:, :-1], np.nan)  # next-token scores the last position only


@pytest.mark.parametrize("kwargs,match", [
    ({"task": "classify"}, "task="),
    ({"task": "next-token", "mask_rate": 0.1}, "mask_rate=0.1 applies to task='masked'"),
    ({"task": "masked", "mask_rate": 1.5}, "mask_rate=1.5 must be a probability"),
    ({"task": "masked", "mask_rate": 0.0}, "mask_rate=0.0 must be > 0"),
    ({"exact": "yes"}, "exact='yes'"),
    ({"n": 1}, "n=1 must be >= 2"),
])
def test_bad_arguments_name_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        plateaus(rhm.RHM(3, 2, 2, 2, seed=0), **kwargs)


def test_forced_exact_refuses_huge_enumeration():
    g = rhm.RHM(16, 8, 2, 3, seed=0)
    with pytest.raises(ValueError, match="exact: enumerating level 3"):
        plateaus(g, "masked", mask_rate=0.1, exact=True)


# ---------------------------------------------------------------------------------------- step locator
def _curve(P, steps, plateau):
    """A smooth step curve: plateau l-1 -> l around log P = log steps[l-1] (logistic in log P)."""
    ce = np.full_like(P, plateau[0], dtype=float)
    for lv, p_l in enumerate(steps, start=1):
        ce -= (plateau[lv - 1] - plateau[lv]) / (1 + np.exp(-4 * (np.log(P) - np.log(p_l))))
    return ce


def test_locate_steps_recovers_synthetic_steps():
    plateau = np.array([2.0, 1.5, 1.0, 0.6])
    sizes = np.geomspace(10, 1e6, 41)
    steps = [100.0, 3000.0, 80000.0]
    rng = np.random.default_rng(0)
    P = np.repeat(sizes, 4)
    ce = _curve(P, steps, plateau) + rng.normal(0, 0.01, len(P))  # four seeds per size
    res = locate_steps(P, ce, plateau, n_boot=300, seed=0)
    assert sorted(res) == [1, 2, 3]
    for lv, true in zip((1, 2, 3), steps):
        r = res[lv]
        assert r.censored is None
        assert abs(math.log(r.value / true)) < 0.1  # within 10% (grid spacing 1.33x, noise 0.01 nats)
        assert r.lo <= r.value <= r.hi and r.lo <= true * 1.1 and r.hi >= true / 1.1


def test_locate_steps_censoring_and_per_run_plateaus():
    plateau = np.array([2.0, 1.5, 1.0])
    sizes = np.geomspace(10, 1000, 9)
    ce = _curve(sizes, [5.0, 1e5], plateau)  # step 1 before the first size, step 2 beyond the last
    res = locate_steps(sizes, ce, plateau, n_boot=50)
    assert res[1].censored == "below" and res[1].value == 10
    assert res[2].censored == "above" and math.isinf(res[2].value)
    # two grammars with their own plateaus: each run is read against its own midpoint
    pa, pb = np.array([2.0, 1.0]), np.array([3.0, 2.0])
    P = np.concatenate([sizes, sizes])
    ce = np.concatenate([_curve(sizes, [100.0], pa), _curve(sizes, [100.0], pb)])
    per_run = np.vstack([np.tile(pa, (9, 1)), np.tile(pb, (9, 1))])
    r = locate_steps(P, ce, per_run, n_boot=50)[1]
    assert abs(math.log(r.value / 100.0)) < 0.05


def test_locate_steps_bad_input():
    with pytest.raises(ValueError, match="plateaus"):
        locate_steps([1, 2], [1.0, 0.5], [2.0])
    with pytest.raises(ValueError, match="plateaus"):
        locate_steps([1, 2], [1.0, 0.5], np.ones((3, 2)))
    with pytest.raises(ValueError, match="sizes and cross_entropies"):
        locate_steps([1, 2, 3], [1.0, 0.5], [2.0, 1.0])
