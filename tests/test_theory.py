"""Theorem 7's schedule against values computed by hand from the paper's statements (paper.md §3.2, §4.6,
App. A.3), the chaining condition of Lemma 11, the two Lemma-10 sigma rules, validation and `rhm info`."""

import json
import math
import warnings

import pytest
from typer.testing import CliRunner

import rhm
from rhm import theory
from rhm.cli import app

# V = 8, m = 4, s = 2, L = 3, kappa = 1, K_rho = 1, delta = 0.1, C = 1 (explicit):
#   V^2 m^2 s L log m = 64 * 16 * 2 * 3 * 1.3862944 = 8517.3926, sqrt = 92.289721
#   eps_*^(l) = K m^(-l/2) / 92.289721 = 2^-l / 92.289721        (sec. 4.2)
EPS_STAR = {1: 0.0054177215, 2: 0.0027088607, 3: 0.0013544304}
#   N^(l) = 20 C kappa V^2 m^2 s L log^2(V m kappa / delta) K^-2 m^l   (App. A.3, with its factor 20)
#         = 20 * 6144 * log(320)^2 * 4^l = 20 * 6144 * 33.273535 * 4^l
N = {1: 16354604.05, 2: 65418416.18, 3: 261673664.73}
#   eps_O^(3) = eps_*^(3) / (600 |P|^2 kappa sqrt(d_y)) = 0.0013544304 / (600 * 1024 * sqrt 8) = 7.794001e-10
EPS_O3 = 7.794001e-10
#   sigma^(3) (Lemma 10, one-hot rho~ = sqrt 2): paper 2 * 2 / log(2/eps_O) -> sqrt(4 / 21.6660) = 0.429679;
#   corrected 2 / (2 log(2/eps_O)) -> sqrt(1 / 21.6660) = 0.214840
SIGMA3 = {"paper": 0.4296791, "corrected": 0.2148395}
#   sigma^(2): rho~ = rho^(3)/2 = 4^-1.5 / 2 = 0.0625, eps_O^(2) = 2 * EPS_O3 = 1.5588003e-9, log(2/eps_O) = 20.97247;
#   paper 2 * 0.0625^2 / 20.97247 -> 0.0193006; corrected 0.0625^2 / (2 * 20.97247) -> 0.0096503
SIGMA2 = {"paper": 0.0193006, "corrected": 0.0096503}


def test_schedule_matches_hand_computed_values():
    with pytest.warns(RuntimeWarning, match="breaks Lemma 11's chaining condition"):
        sc = theory.schedule(8, 4, 2, 3, kappa=1.0, K_rho=1.0, delta=0.1, C=1.0)
    for lv in (1, 2, 3):
        assert sc.eps_star[lv] == pytest.approx(EPS_STAR[lv], rel=1e-7)
        assert sc.N[lv] == pytest.approx(N[lv], rel=1e-8)
    assert sc.total_samples == pytest.approx(sum(N.values()), rel=1e-8)
    assert sc.eps_O[3] == pytest.approx(EPS_O3, rel=1e-6)
    assert sc.sigma[3] == pytest.approx(SIGMA3[theory.DEFAULT_SIGMA_RULE], rel=1e-6)
    assert sc.sigma[2] == pytest.approx(SIGMA2[theory.DEFAULT_SIGMA_RULE], rel=1e-5)
    # lambda = 1/|P| = 1/32, eta = 2/(1 + 1/32) = 64/33
    assert sc.lam == pytest.approx(1 / 32) and sc.eta == pytest.approx(64 / 33)
    assert sc.chaining_ok == {1: False, 2: False}
    assert sc.to_dict()["N_factor"] == 20


@pytest.mark.parametrize("rule", ["paper", "corrected"])
def test_sigma_rules_hand_values(rule):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        sc = theory.schedule(8, 4, 2, 3, C=1.0, sigma_rule=rule)
    assert sc.sigma[3] == pytest.approx(SIGMA3[rule], rel=1e-6)
    assert sc.sigma[2] == pytest.approx(SIGMA2[rule], rel=1e-5)
    # Lemma 10's claim exp(-rho~^2 / 2 sigma^2) <= eps_O / 2 holds with the corrected rule only:
    # paper rule gives (eps_O/2)^(1/4); eps_O = 1e-3: 0.1495 (paper) vs 5e-4 (corrected)
    k = math.exp(-2 / (2 * theory.bottom_sigma(1e-3, rule=rule) ** 2))
    assert k == pytest.approx({"paper": 0.1495349, "corrected": 5e-4}[rule], rel=1e-6)


def test_smallest_C_meets_lemma_11_and_is_the_default():
    # Lemma 11: eps_*^(l+1) <= rho^(l+1) / sqrt(2000 V^2 m^2 s log(V m kappa / eps_*^(l))). With sec. 4.2's eps_*,
    # eps_*^(l+1)/rho^(l+1) = (C * 8517.3926)^(-1/2), so the condition is C * 3 * log 4 >= 2000 log(32 / eps_*^(l)),
    # binding at l = 2 (the smallest eps_*): at C = 6625, eps_*^(2) = 0.25 / sqrt(6625 * 8517.39) = 3.3281e-5,
    # 2000 log(32 / 3.3281e-5) = 27552.6 <= 6625 * 4.158883 = 27552.6 -- the boundary is C ~ 6625.0.
    c_min = theory.smallest_C(8, 4, 2, 3)
    assert c_min == pytest.approx(6625.0, abs=0.5)
    assert theory.chaining_slack(8, 4, 2, 3, 1.0, 1.0, c_min * 1.001, 2) >= 0
    assert theory.chaining_slack(8, 4, 2, 3, 1.0, 1.0, c_min * 0.999, 2) < 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the default C must not warn
        sc = theory.schedule(8, 4, 2, 3)
    assert sc.C == c_min == sc.C_min and all(sc.chaining_ok.values())
    assert sc.N[1] == pytest.approx(N[1] * c_min, rel=1e-8)  # N is linear in C
    # one level: no chaining condition, C = 1
    assert theory.smallest_C(8, 4, 2, 1) == 0 and theory.schedule(8, 4, 2, 1).C == 1.0


@pytest.mark.parametrize("kwargs, match", [
    (dict(m=1), "m=1 must be >= 2"),
    (dict(V=1), "V=1 must be >= 2"),
    (dict(kappa=0), "kappa=0 must be > 0.0"),
    (dict(K_rho=float("inf")), "K_rho=inf must be a finite real number"),
    (dict(delta=1.5), "delta=1.5 must be > 0.0 and < 1.0"),
    (dict(C=-1), "C=-1 must be > 0.0"),
    (dict(sigma_rule="loose"), "sigma_rule='loose' must be one of"),
])
def test_schedule_validation(kwargs, match):
    args = dict(V=8, m=4, s=2, L=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        theory.schedule(**args)


def test_info_shows_the_schedule_with_factor_20_and_smallest_C():
    r = CliRunner().invoke(app, ["info", "--v", "8", "--m", "4", "--L", "3", "--rules", "balanced", "--json"])
    assert r.exit_code == 0, r.output
    th = json.loads(r.stdout)["theorem7"]
    assert th["N_factor"] == 20 and th["C"] == th["C_min"] > 1000 and all(th["chaining_ok"].values())
    assert set(th["sigma"]) == {"1", "2", "3"} and th["total_samples"] > 1e10
    human = CliRunner().invoke(app, ["info", "--v", "8", "--m", "4", "--L", "3", "--rules", "balanced"])
    assert "smallest C" in human.stdout and "20 C" in human.stdout


def test_info_on_a_degenerate_grammar_reports_instead_of_crashing():
    args = ["info", "--v", "4", "--m", "2", "--s", "2", "--L", "2", "--rules", "balanced", "--grammar-seed", "0"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "Assumption 6 fails at level 2 (rho = 0)" in r.stdout
    out = json.loads(CliRunner().invoke(app, args + ["--json"]).stdout)
    assert out["assumption6"]["satisfied"] is False and out["assumption6"]["degenerate_levels"] == [2]
    assert out["rho"]["2"] == 0 and out["theorem7"] is None and out["kappa"] == 1.0


@pytest.mark.parametrize("args", [
    ("--v", 2, "--m", 1, "--L", 1, "--n-classes", 2),            # m = 1, L = 1: finite kappa, no schedule (m >= 2)
    ("--v", 3, "--m", 1, "--s", 3, "--L", 1),
    ("--v", 4, "--m", 1, "--L", 3),                               # one parent per symbol: kappa = inf
    ("--v", 4, "--m", 2, "--L", 1),                               # L = 1: no chaining condition
    ("--v", 8, "--m", 4, "--L", 3, "--n-classes", 3),             # n_classes != v
    ("--v", 8, "--m", 4, "--L", 3, "--n-classes", 16),
    ("--v", 3, "--m", 3, "--s", 3, "--L", 2),
    ("--v", 4, "--m", 8, "--s", 3, "--L", 2, "--rules", "balanced"),
    ("--v", 8, "--m", 2, "--L", 5, "--rules", "balanced"),        # degenerate at some level
    ("--v", 8, "--m", 8, "--L", 2, "--rules", "balanced"),        # m = v
])
def test_info_never_crashes_on_a_valid_grammar(args):
    for extra in ((), ("--json",)):
        r = CliRunner().invoke(app, ["info", *map(str, args), *extra])
        assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    sched = out["theorem7"]
    if sched is not None:  # the schedule carries App. A.3's factor 20 and C >= the smallest valid C
        assert sched["N_factor"] == 20 and sched["C"] >= sched["C_min"]
    else:
        assert out["m"] == 1 or out["n_classes"] != out["v"] or out["assumption6"]["degenerate_levels"] or \
            out["kappa"] == float("inf") or out["kappa"] is None or not math.isfinite(float(out["kappa"]))


# Lemma 17 / paper.md §3.2, recomputed here from the statements (not through rhm.theory):
#   eps_*^(l) = K_rho m^(-l/2) / sqrt(C V^2 m^2 s L log m)             (sec. 4.2)
#   T^(l) >= |P_l| log(100 |P_l| kappa sqrt(d_y) / eps_*^(l)),  |P_l| = V m,  d_y = V
#   eps_S = 1 / (4 |P_l|)
# V = 8, m = 4, s = 2, L = 3, kappa = K_rho = 1, C = 1: eps_*^(3) = 1/8 / 92.289721, T_min^(3) = 502.8800.
@pytest.mark.parametrize("V, m, s, L, kappa, K_rho, C", [
    (8, 4, 2, 3, 1.0, 1.0, 1.0),
    (8, 4, 2, 3, 2.5, 0.7, 7000.0),
    (5, 3, 3, 2, 1.5, 1.3, 50.0),
    (16, 2, 2, 4, 4.0, 0.5, 1e4),
    (3, 2, 4, 1, 1.0, 2.0, 1.0),
])
def test_T_min_and_eps_S_are_lemma_17s(V, m, s, L, kappa, K_rho, C):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an explicit C may break the chaining condition
        sc = theory.schedule(V, m, s, L, kappa=kappa, K_rho=K_rho, C=C)
    P = V * m
    assert sc.eps_S == pytest.approx(1 / (4 * P), rel=1e-12)
    assert set(sc.T_min) == set(range(1, L + 1))
    for lv in range(1, L + 1):
        eps_star = K_rho * m ** (-lv / 2) / math.sqrt(C * V**2 * m**2 * s * L * math.log(m))
        assert sc.eps_star[lv] == pytest.approx(eps_star, rel=1e-12)
        assert sc.T_min[lv] == pytest.approx(P * math.log(100 * P * kappa * math.sqrt(V) / eps_star), rel=1e-12)
    if (V, m, s, L, kappa, K_rho, C) == (8, 4, 2, 3, 1.0, 1.0, 1.0):
        assert sc.T_min[3] == pytest.approx(502.8800, abs=1e-3)  # the hand value above


@pytest.mark.parametrize("args", [
    dict(v=8, m=4, s=2, L=2, rules="balanced", seed=0),   # |P_l| = 32 at both levels: T = 513
    dict(v=4, m=2, s=2, L=2, n_classes=3, seed=0),        # |P_1| = n_c m = 6, |P_2| = v m = 8
    dict(v=4, m=2, s=3, L=2, n_classes=5, seed=0),        # |P_1| = 10, |P_2| = 8
])
def test_chaining_default_gd_steps_are_lemma_17s_T(args):
    # Chaining(solver="gd", gd_steps=None) runs T = ceil(|P_l| log(100 |P_l| kappa sqrt(d_y) / eps_*)) steps with
    # kappa = 1, eps_* = 1e-3, d_y = n_c and |P_l| = n_c m at level 1 (the root's n_c symbols, m rules each), v m
    # below (docs/paper_fidelity.md, row T); every input once, so every rule patch is seen and m_hat = m.
    from rhm.learners.chaining import Chaining

    g = rhm.RHM(**args)
    x, y = g.sample(g.num_inputs, seed=1, replace=False)
    clf = Chaining(width=8, solver="gd", samples="reuse", diagnostics=False, seed=0).fit(x, y, grammar=g)
    assert clf.info_["m_hat"] == g.m
    for lv in range(1, g.L + 1):
        P = (g.n_classes if lv == 1 else g.v) * g.m
        T = math.ceil(P * math.log(100 * P * 1.0 * math.sqrt(g.n_classes) / 1e-3))
        assert clf.info_["stages"][str(lv)]["gd_steps"] == T
    if args["v"] == 8:
        assert {clf.info_["stages"][k]["gd_steps"] for k in ("1", "2")} == {513}  # docs/paper_learner.md
