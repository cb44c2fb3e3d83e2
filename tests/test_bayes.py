"""Bayes references of rhm.oracle: exact enumeration against Monte Carlo, and known closed forms."""

import math

import pytest

import rhm
from rhm import oracle
from rhm.sparse import SparseRHM


def test_clean_classification_has_zero_bayes_risk():
    for g in (rhm.RHM(8, 4, 2, 3, zipf=1.0), SparseRHM(8, 4, 2, 2, s0=1)):
        ref = oracle.bayes_reference(g, "classify")
        assert (ref.error, ref.cross_entropy, ref.method) == (0.0, 0.0, "exact")


@pytest.mark.parametrize("n_classes", [2, 3])
def test_pure_noise_gives_chance(n_classes):
    g = rhm.RHM(3, 2, 2, 2, n_classes=n_classes, noise=1.0, seed=1)
    ref = oracle.bayes_reference(g, "classify")
    assert ref.method == "exact"
    assert abs(ref.error - (1 - 1 / n_classes)) < 1e-12
    assert abs(ref.cross_entropy - math.log(n_classes)) < 1e-12


def test_bayes_error_grows_with_noise():
    errs = [oracle.bayes_reference(rhm.RHM(3, 2, 2, 2, seed=2, noise=e), "classify").error
            for e in (0.05, 0.2, 0.5, 0.9)]
    assert all(a < b for a, b in zip(errs, errs[1:]))


CASES = [
    (dict(v=3, m=2, s=2, L=2, seed=0, noise=0.2), "classify"),
    (dict(v=3, m=2, s=2, L=2, seed=1, zipf=1.0), "masked"),
    (dict(v=3, m=2, s=2, L=2, seed=2), "next-token-all"),
    (dict(v=3, m=2, s=2, L=2, seed=5, noise=0.1), "next-token"),
    (dict(v=2, m=2, s=2, L=2, seed=3, noise=0.1, zipf=0.5), "masked"),
    (dict(sparse=True, v=2, m=2, s=2, L=1, s0=1, seed=4, noise=0.2), "next-token-all"),
    (dict(sparse=True, v=2, m=2, s=2, L=1, s0=1, seed=6, noise=0.2), "next-token"),
]


@pytest.mark.parametrize("params, task", CASES)
def test_monte_carlo_agrees_with_exact(params, task):
    params = dict(params)
    g = SparseRHM(**params) if params.pop("sparse", False) else rhm.RHM(**params)
    exact = oracle.bayes_reference(g, task, rate=0.4)
    mc = oracle.bayes_reference(g, task, rate=0.4, n=20_000, seed=7, exact_limit=0)
    assert exact.method == "exact" and mc.method == "monte_carlo" and mc.n == 20_000
    for value, ci, truth in ((mc.error, mc.error_ci, exact.error), (mc.cross_entropy, mc.cross_entropy_ci,
                                                                     exact.cross_entropy)):
        half = (ci[1] - ci[0]) / 2
        assert ci[0] < value < ci[1] and half < 0.02
        assert abs(value - truth) < 2 * half  # 2 half-widths of a 95% interval: ~4 standard errors


def test_bad_arguments():
    g = rhm.RHM(3, 2, 2, 2)
    with pytest.raises(ValueError, match="task='foo'"):
        oracle.bayes_reference(g, "foo")
    with pytest.raises(ValueError, match="rate=0"):
        oracle.bayes_reference(g, "masked", rate=0)
    with pytest.raises(ValueError, match="rate=1.5"):
        oracle.bayes_reference(g, "masked", rate=1.5)
    with pytest.raises(ValueError, match="n=1"):
        oracle.bayes_reference(g, "next-token-all", n=1)
