"""Theorem 7's schedule: the formulas of paper.md §3.2 / §4.2, geometric growth in m, validation."""

import math

import pytest

from rhm import theory


def test_schedule_matches_the_formulas():
    V, m, s, L, kappa, K, delta, C = 8, 4, 2, 3, 1.5, 0.8, 0.1, 2.0
    sc = theory.schedule(V, m, s, L, kappa=kappa, K_rho=K, delta=delta, C=C)
    P = V * m
    for lv in range(1, L + 1):
        eps = K * m ** (-lv / 2) / math.sqrt(C * V**2 * m**2 * s * L * math.log(m))
        assert math.isclose(sc.eps_star[lv], eps)
        N = C * kappa * V**2 * m**2 * s * L * math.log(V * m * kappa / delta) ** 2 / K**2 * m**lv
        assert math.isclose(sc.N[lv], N)
        assert math.isclose(sc.T_min[lv], P * math.log(100 * P * kappa * math.sqrt(V) / eps))
        assert math.isclose(sc.eps_O[lv], eps / (600 * P**2 * kappa * math.sqrt(V)))
    # sigma: Lemma 10 at the bottom (one-hot, rho~ = sqrt 2), proof of Lemma 11 above
    assert math.isclose(sc.sigma[L] ** 2, 4 / math.log(2 / sc.eps_O[L]))
    rho_below = K * m ** (-(L - 1 + 1) / 2)
    assert math.isclose(sc.sigma[L - 1] ** 2,
                        rho_below**2 / (2 * math.log(1200 * P**2 * kappa * math.sqrt(V) / sc.eps_star[L - 1])))
    assert math.isclose(sc.lam, 1 / P) and math.isclose(sc.eta, 2 / (1 + 1 / P))
    assert math.isclose(sc.N[2] / sc.N[1], m) and sc.total_samples == pytest.approx(sum(sc.N.values()))
    d = sc.to_dict()
    assert d["total_samples"] == sc.total_samples and set(d["N"]) == {"1", "2", "3"}


@pytest.mark.parametrize("kwargs, match", [
    (dict(m=1), "m=1 must be an integer >= 2"),
    (dict(V=1), "V=1 must be an integer >= 2"),
    (dict(kappa=0), "kappa=0 must be a finite positive number"),
    (dict(K_rho=float("inf")), "K_rho=inf must be a finite positive number"),
    (dict(delta=1.5), "delta=1.5 must be in"),
])
def test_schedule_validation(kwargs, match):
    args = dict(V=8, m=4, s=2, L=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        theory.schedule(**args)


def test_info_shows_the_schedule():
    import json

    from typer.testing import CliRunner

    from rhm.cli import app

    r = CliRunner().invoke(app, ["info", "--v", "8", "--m", "4", "--L", "3", "--rules", "balanced", "--json"])
    out = json.loads(r.stdout)
    assert out["theorem7"]["total_samples"] > 1e6 and set(out["theorem7"]["sigma"]) == {"1", "2", "3"}
