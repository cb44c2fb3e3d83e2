"""The paper's chaining learner: solvers, q-estimation, synonym geometry, accuracy, guard, errors."""

import math

import numpy as np
import pytest
import torch

import rhm
from rhm import RHM, oracle, theory
from rhm.learners.chaining import Chaining, separation_from_data

G_SMALL = RHM(4, 2, 2, 2, rules="balanced", seed=1)


def data(g, n, seed=1, replace=False):
    x, y = g.sample(n, seed=seed, replace=replace)
    return x, y


def test_registered():
    assert rhm.learners.get("chaining") is Chaining and "chaining" in rhm.learners.names()


def test_learns_small_rhm_to_100_percent_with_default_sigma():
    g = RHM(4, 2, 2, 2, seed=0)  # uniform rules; num_inputs = 4 * 2^3 = 32
    x, y = g.sample(3000, seed=1)  # i.i.d.: every input many times
    xt, yt = g.sample(g.num_inputs, seed=2, replace=False)
    clf = Chaining(width=256, seed=0).fit(x, y, grammar=g)
    assert clf.score(xt, yt) == 1.0
    assert clf.info_["stages"]["1"]["sigma_rule"] == "data"  # oracle-free default
    # also without the grammar at all (s given explicitly)
    assert Chaining(s=2, width=256, seed=0).fit(x, y).score(xt, yt) == 1.0


def test_gd_converges_to_closed_form_at_lemma15_rate():
    g = RHM(4, 2, 2, 1, seed=0)  # one stage, |P| = 8
    x, y = data(g, 8)
    closed = Chaining(width=64, solver="closed", samples="reuse", seed=0).fit(x, y, grammar=g)
    W_star = closed.W_[1].double()
    P = 8
    assert math.isclose(closed.lam_[1], 1 / P)
    prev = math.inf
    for T in (8, 32, 96):
        gd = Chaining(width=64, solver="gd", gd_steps=T, samples="reuse", seed=0).fit(x, y, grammar=g)
        err = torch.linalg.norm(gd.W_[1].double() - W_star).item()
        # Lemma 15: ||W_T - W_*||_F <= e^(-T/|P|) ||W_*||_F (W_0 = 0), float32 storage adds ~1e-6
        assert err <= math.exp(-T / P) * torch.linalg.norm(W_star).item() + 1e-5, (T, err)
        assert err < prev
        prev = err


def test_primal_and_dual_solves_agree():
    g = RHM(4, 2, 2, 2, seed=0)
    x, y = data(g, 30)
    # width 8 -> 16 features < 30 distinct rows (primal); width 64 -> 128 > rows (dual) at the top stage
    for width in (8, 64):
        a = Chaining(width=width, samples="reuse", dtype="float64", seed=0).fit(x, y, grammar=g)
        ref = Chaining(width=width, samples="reuse", dtype="float64", solver="gd", gd_steps=4000,
                       seed=0).fit(x, y, grammar=g)
        for lv in (1, 2):
            assert torch.allclose(a.W_[lv], ref.W_[lv], atol=1e-6)
        solvers = {a.info_["stages"][k]["solver"] for k in ("1", "2")}
        assert solvers <= {"closed-primal", "closed-dual"}


def test_outputs_approach_q_and_error_falls_with_n():
    # The error has a floor set by sigma (the RF kernel between patches differing in one token is
    # exp(-rho~^2/2sigma^2), 0.15 with Lemma 10's sigma at eps_o=1e-3): with 0.7x that sigma the floor is
    # ~0.04 here, so the fall of the estimation error with N is visible.
    g = RHM(6, 3, 2, 2, rules="balanced", seed=3)
    errs, maxes = [], []
    for n in (600, 6000, 60000):
        x, y = g.sample(n, seed=5)
        clf = Chaining(width=512, samples="reuse", sigma_scale=0.7, seed=0, n_diag=3000).fit(x, y, grammar=g)
        errs.append(clf.info_["stages"]["2"]["q_error_mean"])
        maxes.append(clf.info_["stages"]["2"]["q_error_max"])
    assert errs[0] > errs[1] > errs[2]
    assert errs[2] < 0.06 and maxes[2] < 0.1
    assert maxes[2] < oracle.signal_gaps(g).rho[2] / 4  # far inside the chaining requirement of Lemma 11


def test_synonyms_share_embeddings_non_synonyms_apart():
    g = RHM(6, 3, 2, 2, rules="balanced", seed=3)
    x, y = g.sample(40000, seed=5)
    clf = Chaining(width=512, samples="reuse", seed=0).fit(x, y, grammar=g)
    st = clf.info_["stages"]["2"]
    assert st["intra_spread"] < 0.5 * st["inter_separation"]
    assert st["synonym_purity"] == 1.0
    # directly: the bottom layer maps each rule patch to a vector; synonyms (same parent) are close
    patches = g.rules[1].reshape(-1, 2)
    parents = np.repeat(np.arange(6), 3)
    with torch.no_grad():
        out = clf._layer(2, torch.as_tensor(patches.astype(np.int64))[:, None, :])[:, 0].numpy()
    d = np.linalg.norm(out[:, None] - out[None], axis=-1)
    same = parents[:, None] == parents[None]
    assert d[same].max() < d[~same].min()


def test_fresh_split_records_stage_sizes_proportional_to_m_pow_l():
    g = RHM(8, 4, 2, 3, rules="balanced", seed=0)
    x, y = data(g, 21000)
    clf = Chaining(width=128, seed=0, diagnostics=False).fit(x, y, grammar=g)
    sizes = clf.info_["stage_samples"]
    assert sum(sizes.values()) == 21000
    assert abs(sizes["3"] / sizes["2"] - 4) < 0.05 and abs(sizes["2"] / sizes["1"] - 4) < 0.05
    reuse = Chaining(width=128, samples="reuse", seed=0, diagnostics=False).fit(x, y, grammar=g)
    assert set(reuse.info_["stage_samples"].values()) == {21000}


def test_n_classes_different_from_v():
    g = RHM(6, 2, 2, 2, n_classes=3, seed=1)
    x, y = g.sample(4000, seed=0)
    xt, yt = g.sample(g.num_inputs, seed=1, replace=False)
    clf = Chaining(width=256, samples="reuse", seed=0).fit(x, y, grammar=g)
    assert clf.W_[1].shape[0] == 3 and clf.W_[2].shape[0] == 3
    assert clf.omega_[2].shape[0] == 2 * 6 and clf.omega_[1].shape[0] == 2 * 3  # one-hot in R^v, then R^n_c
    assert clf.score(xt, yt) == 1.0


@pytest.mark.parametrize("sigma", ["oracle", "theory", "validate", 0.5])
def test_sigma_modes(sigma):
    g = G_SMALL
    x, y = g.sample(3000, seed=1)
    clf = Chaining(width=256, sigma=sigma, samples="reuse", seed=0).fit(x, y, grammar=g)
    xt, yt = g.sample(g.num_inputs, seed=2, replace=False)
    assert clf.score(xt, yt) >= 0.95
    if sigma == "theory":
        gaps = oracle.signal_gaps(g)
        sched = theory.schedule(4, 2, 2, 2, kappa=gaps.kappa, K_rho=gaps.K_rho(2))
        assert math.isclose(clf.sigma_[2], sched.sigma[2]) and math.isclose(clf.sigma_[1], sched.sigma[1])
    if sigma == "validate":
        assert clf.info_["stages"]["2"]["validation"]["chosen"] in (0.25, 0.5, 1.0, 2.0, 4.0)


def test_separation_estimate_recovers_clusters():
    rng = np.random.default_rng(0)
    centers = np.eye(5) * 0.3
    pts = np.repeat(centers, 40, axis=0) + 0.005 * rng.standard_normal((200, 5))
    rho, k = separation_from_data(pts, 5, rng)
    assert k == 5
    true_min = min(np.linalg.norm(a - b) for i, a in enumerate(centers) for b in centers[i + 1:])
    assert abs(rho - true_min) < 0.05


def test_guard_keeps_outputs_finite():
    clf = Chaining(guard=0.05)
    o = torch.tensor([[1.0, -1.0], [0.0, 0.0], [2.0, -2.0 + 1e-9], [0.3, 0.2]])
    h = clf._normalise(o)
    assert torch.isfinite(h).all()
    assert torch.allclose(h[3], torch.tensor([0.6, 0.4]))
    assert h.abs().max() <= 2.0 / 0.05 + 1e-6
    # far-from-training embeddings through a trained model stay finite too
    g = G_SMALL
    x, y = g.sample(2000, seed=1)
    m = Chaining(width=128, samples="reuse", seed=0).fit(x, y, grammar=g)
    weird = torch.full((50, 1, 2, 4), 37.0)  # not a probability vector at all
    with torch.no_grad():
        assert torch.isfinite(m._layer(1, weird)).all()


def test_same_seed_same_predictions():
    g = RHM(8, 4, 2, 3, seed=0)
    x, y = data(g, 6000)
    a = Chaining(width=128, seed=3, diagnostics=False).fit(x[:5000], y[:5000], grammar=g).predict(x[5000:])
    b = Chaining(width=128, seed=3, diagnostics=False).fit(x[:5000], y[:5000], grammar=g).predict(x[5000:])
    assert np.array_equal(a, b)


def test_hidden_shapes():
    g = RHM(4, 2, 2, 3, seed=0)
    x, y = g.sample(2000, seed=0)
    clf = Chaining(width=64, samples="reuse", seed=0, diagnostics=False).fit(x, y, grammar=g)
    hid = clf.hidden(x[:10])
    assert [h.shape for h in hid] == [(10, 16), (10, 8), (10, 4)]
    assert np.allclose(hid[-1].sum(1), 1, atol=1e-4)


@pytest.mark.parametrize("kwargs, match", [
    (dict(width=0), "width=0 must be >= 1"),
    (dict(sigma="magic"), "sigma='magic' must be one of"),
    (dict(sigma=-1.0), r"sigma=-1.0 must be > 0.0 \(or one of"),
    (dict(sigma_rule="loose"), "sigma_rule='loose' must be one of"),
    (dict(eps_o="tiny"), "eps_o='tiny' must be one of"),
    (dict(eps_o=3.0), r"eps_o=3.0 must be > 0.0 and < 2.0"),
    (dict(solver="sgd"), "solver='sgd' must be one of"),
    (dict(samples="all"), "samples='all' must be one of"),
    (dict(lam=0), r"lam=0 must be > 0.0 \(or one of \('paper',\)\)"),
    (dict(guard=0), "guard=0 must be > 0.0"),
    (dict(gd_steps=0), "gd_steps=0 must be >= 1"),
    (dict(val_fraction=1.5), "val_fraction=1.5 must be > 0.0 and < 1.0"),
    (dict(sigma_grid=[]), "sigma_grid"),
    (dict(sigma_grid=[1.0, -2]), r"sigma_grid\[1\]=-2 must be > 0.0"),
    (dict(seed=-2), "seed=-2 must be >= 0"),
    (dict(device="tpu9"), "device='tpu9'"),
    (dict(dtype="float16"), "dtype='float16'"),
])
def test_bad_hyperparameters(kwargs, match):
    x, y = G_SMALL.sample(100, seed=0)
    with pytest.raises(ValueError, match=match):
        Chaining(**kwargs).fit(x, y, grammar=G_SMALL)


def test_bad_data():
    g = G_SMALL
    x, y = g.sample(200, seed=0)
    clf = Chaining(width=32)
    with pytest.raises(ValueError, match="s \\(the patch size\\) is unknown"):
        clf.fit(x, y)
    with pytest.raises(ValueError, match="integer tokens"):
        clf.fit(x.astype(float), y, grammar=g)
    with pytest.raises(ValueError, match=r"y must have shape \(n,\)=\(200,\)"):
        clf.fit(x, y[:10], grammar=g)
    with pytest.raises(ValueError, match="negative labels"):
        clf.fit(x, y.astype(int) - 5, grammar=g)
    with pytest.raises(ValueError, match="n_classes=4 but the data contain the value 9"):
        clf.fit(x, np.full(200, 9), grammar=g)
    with pytest.raises(ValueError, match="d=3 tokens per input but the grammar has d=4"):
        clf.fit(x[:, :3], y, grammar=g)
    with pytest.raises(ValueError, match="not a power of s=3"):
        Chaining(s=3).fit(x, y)
    with pytest.raises(ValueError, match="uses the exact signal gaps"):
        Chaining(s=2, sigma="oracle").fit(x, y)
    with pytest.raises(RuntimeError, match="not fitted"):
        Chaining().predict(x)
    clf.fit(x, y, grammar=g)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        clf.predict(np.full((3, 4), 7))
    with pytest.raises(ValueError, match="model was fit on d=4"):
        clf.predict(x[:, :2])
    with pytest.raises(ValueError, match="labels >= n_classes=4"):
        clf.score(x, np.full(200, 6))
    with pytest.raises(ValueError, match="at least one sample per stage"):
        Chaining(width=8).fit(x[:1], y[:1], grammar=g)
    degenerate = RHM(4, 2, 2, 2, rules="balanced", seed=0)  # two non-synonyms share q at level 2
    assert oracle.signal_gaps(degenerate).rho[2] == 0
    xd, yd = degenerate.sample(100, seed=0)
    for mode in ("oracle", "theory"):
        with pytest.raises(ValueError, match="Assumption 6b fails"):
            Chaining(sigma=mode).fit(xd, yd, grammar=degenerate)


# ------------------------------------------------------------------------------- the paper's formulas, checked
def _phi(h: np.ndarray, omega: np.ndarray) -> np.ndarray:
    """Eq. (6) written out per sample: M^(-1/2) [cos(h Omega), sin(h Omega)]."""
    z = h @ omega
    return np.concatenate([np.cos(z), np.sin(z)], axis=1) / math.sqrt(omega.shape[1])


def _ridge_per_sample(X: np.ndarray, y: np.ndarray, n_c: int, lam: float) -> np.ndarray:
    """Eq. (3) solved independently: min_W 1/2 mean_i ||e_yi - W x_i||^2 + lam/2 ||W||_F^2 as one least-squares
    problem on the stacked rows [X / sqrt(N); sqrt(lam) I] -> [E / sqrt(N); 0] (no normal equations, no dual)."""
    N, D = X.shape
    A = np.vstack([X / math.sqrt(N), math.sqrt(lam) * np.eye(D)])
    B = np.vstack([np.eye(n_c)[y] / math.sqrt(N), np.zeros((D, n_c))])
    return np.linalg.lstsq(A, B, rcond=None)[0].T


# Tiny grammar with n_c != v, built by hand: v = 4, n_c = 3, m = 2, s = 2, L = 2. The root's rules give
# |P_1| = n_c m = 6 distinct level-1 patches, level 1's rules |P_2| = v m = 8: lambda^(1) = 1/6, lambda^(2) = 1/8.
G_NC = RHM.from_rules([np.array([[[0, 0], [1, 1]], [[2, 2], [3, 3]], [[0, 1], [2, 3]]]),
                       np.array([[[0, 0], [0, 1]], [[1, 0], [1, 1]], [[2, 2], [3, 2]], [[2, 3], [3, 3]]])],
                      v=4, n_classes=3)


@pytest.mark.parametrize("solver, width", [("closed", 2), ("closed", 64), ("gd", 16)])
def test_W_equals_an_independent_per_sample_solve_of_eq3(solver, width):
    # width 2 -> 4 features < distinct rows: primal; width 64 -> 128 features: dual; GD run to convergence
    g = G_NC
    x, y = g.sample(400, seed=3)
    clf = Chaining(width=width, solver=solver, gd_steps=20000, samples="reuse", dtype="float64",
                   diagnostics=False, seed=1).fit(x, y, grammar=g)
    assert clf.lam_ == pytest.approx({1: 1 / 6, 2: 1 / 8})  # lambda = 1/|P_l| per level, by hand above
    # level 2 (bottom): first input patch, one-hot concatenated
    h2 = np.concatenate([np.eye(4)[x[:, 0]], np.eye(4)[x[:, 1]]], axis=1)
    X2 = _phi(h2, clf.omega_[2].numpy())
    W2 = _ridge_per_sample(X2, y, 3, 1 / 8)
    tol = 1e-6 if solver == "closed" else 1e-5
    assert np.abs(clf.W_[2].numpy() - W2).max() < tol
    # level 1: the first s level-1 embeddings are the bottom layer's normalised outputs (public `hidden`)
    h1 = clf.hidden(x)[0][:, : 2 * 3]
    X1 = _phi(h1, clf.omega_[1].numpy())
    W1 = _ridge_per_sample(X1, y, 3, 1 / 6)
    assert np.abs(clf.W_[1].numpy() - W1).max() < tol


def test_one_gd_step_is_eta_times_the_correlation():
    # W_1 = W_0 - eta grad L(W_0) with W_0 = 0: grad = -(1/N) sum_i e_yi x_i^T, eta = 2/(1 + lambda), lambda = 1/8
    g = G_NC
    x, y = g.sample(300, seed=4)
    clf = Chaining(width=16, solver="gd", gd_steps=1, samples="reuse", dtype="float64", diagnostics=False,
                   seed=0).fit(x, y, grammar=g)
    h2 = np.concatenate([np.eye(4)[x[:, 0]], np.eye(4)[x[:, 1]]], axis=1)
    X2 = _phi(h2, clf.omega_[2].numpy())
    expected = (2 / (1 + 1 / 8)) * (np.eye(3)[y].T @ X2) / len(x)
    assert np.abs(clf.W_[2].numpy() - expected).max() < 1e-10


def test_random_feature_kernel_approaches_the_rbf_kernel():
    # <Phi(h), Phi(h')> -> exp(-||h - h'||^2 / (2 sigma^2)) as M grows (Rahimi-Recht); patches of one-hot
    # tokens are 0, sqrt 2 or 2 apart: with sigma = 0.8 the kernel is 1, e^-1.5625 = 0.210 or e^-3.125 = 0.044
    g = RHM(4, 2, 2, 1, seed=0)
    x, y = g.sample(50, seed=0)
    pairs = np.array([[a, b] for a in range(4) for b in range(4)])
    H = np.concatenate([np.eye(4)[pairs[:, 0]], np.eye(4)[pairs[:, 1]]], axis=1)
    exact = np.exp(-((H[:, None] - H[None]) ** 2).sum(-1) / (2 * 0.8**2))
    errs = []
    for M in (64, 1024, 16384):
        errs.append(np.mean([
            np.abs((F := _phi(H, Chaining(width=M, sigma=0.8, samples="reuse", dtype="float64", diagnostics=False,
                                          seed=seed).fit(x, y, grammar=g).omega_[1].numpy())) @ F.T - exact).max()
            for seed in range(3)]))
    assert errs[0] > errs[1] > errs[2] and errs[2] < 0.04, errs  # error ~ 1/sqrt(M): ~0.3, ~0.08, ~0.02


# Hand-built grammar whose signal gaps are known: v = n_c = 3, m = 2, s = 2, L = 2. The classes' first tokens are
# {0,1}, {1,2}, {2,0}: P_0 = [[.5,.5,0],[0,.5,.5],[.5,0,.5]], so q^(2) of a level-2 patch with parent nu is column nu
# of P_0 normalised: (.5,0,.5), (.5,.5,0), (0,.5,.5); every two are sqrt(.25 + .25) = 1/sqrt 2 apart: rho^(2) = 0.7071,
# rho^(1) = sqrt 2 (q^(1) = e_label), kappa = 1 (every patch has probability 1/6 as first patch).
G_KNOWN = RHM.from_rules([np.array([[[0, 0], [1, 0]], [[1, 1], [2, 0]], [[2, 1], [0, 1]]]),
                          np.array([[[0, 0], [0, 1]], [[1, 0], [1, 1]], [[2, 0], [2, 1]]])], v=3)
# Lemma 10 with eps_O = 1e-3 (log(2/eps_O) = 7.6009025):
#   bottom, rho~ = sqrt 2: paper sigma^2 = 2 * 2 / 7.6009 -> 0.7254332; corrected 2 / (2 * 7.6009) -> 0.3627166
#   level 1, oracle rho~ = rho^(2)/2 = 0.3535534: paper 2 * 0.125 / 7.6009 -> 0.1813583; corrected -> 0.0906791
SIGMA_KNOWN = {"paper": (0.7254332, 0.1813583), "corrected": (0.3627166, 0.0906791)}


@pytest.mark.parametrize("rule", ["paper", "corrected"])
def test_sigma_of_every_mode_equals_its_formula(rule):
    g = G_KNOWN
    gaps = oracle.signal_gaps(g)
    assert gaps.rho[2] == pytest.approx(1 / math.sqrt(2)) and gaps.kappa == pytest.approx(1.0)
    x, y = g.sample(4000, seed=0)
    kw = dict(width=512, sigma_rule=rule, samples="reuse", diagnostics=False, seed=0)
    oracle_fit = Chaining(sigma="oracle", **kw).fit(x, y, grammar=g)
    assert oracle_fit.sigma_[2] == pytest.approx(SIGMA_KNOWN[rule][0], rel=1e-6)
    assert oracle_fit.sigma_[1] == pytest.approx(SIGMA_KNOWN[rule][1], rel=1e-6)
    # data: the same formula with the measured (realised) separation, which lies between Lemma 11's bound
    # rho^(2)/2 (the oracle's rho~) and rho^(2) (the bottom layer's ridge bias pulls the clusters together)
    data_fit = Chaining(sigma="data", **kw).fit(x, y, grammar=g)
    rho_t = data_fit.info_["stages"]["1"]["rho_tilde"]
    assert 0.5 / math.sqrt(2) < rho_t <= 1.05 / math.sqrt(2)
    assert data_fit.sigma_[2] == pytest.approx(SIGMA_KNOWN[rule][0], rel=1e-6)
    assert data_fit.sigma_[1] == pytest.approx(SIGMA_KNOWN[rule][1] * rho_t / (1 / math.sqrt(8)), rel=1e-6)
    # theory: Theorem 7's sigma at the smallest valid C (hand values of the schedule are in test_theory)
    th = Chaining(sigma="theory", **kw).fit(x, y, grammar=g)
    sched = theory.schedule(3, 2, 2, 2, kappa=1.0, K_rho=math.sqrt(2), sigma_rule=rule)
    assert th.sigma_ == pytest.approx({2: sched.sigma[2], 1: sched.sigma[1]}, rel=1e-9)
    # fixed float and sigma_scale
    assert Chaining(sigma=0.3, sigma_scale=2.0, **kw).fit(x, y, grammar=g).sigma_ == pytest.approx({2: .6, 1: .6})


def test_eps_o_paper_is_lemma_17_on_the_schedule():
    g = G_KNOWN
    x, y = g.sample(4000, seed=0)
    clf = Chaining(width=256, sigma="oracle", eps_o="paper", samples="reuse", diagnostics=False,
                   seed=0).fit(x, y, grammar=g)
    sched = theory.schedule(3, 2, 2, 2, kappa=1.0, K_rho=math.sqrt(2))
    for lv in (1, 2):
        assert clf.info_["stages"][str(lv)]["eps_o"] == pytest.approx(sched.eps_O[lv], rel=1e-9)
        assert clf.sigma_[lv] == pytest.approx(sched.sigma[lv], rel=1e-9)


def test_row_order_of_x_does_not_change_the_fit():
    g = RHM(8, 4, 2, 3, seed=0)
    x, y = g.sample(6000, seed=5)
    xt, _ = g.sample(2000, seed=6)
    for samples in ("fresh", "reuse"):
        kw = dict(width=128, samples=samples, diagnostics=False, seed=2)
        a = Chaining(**kw).fit(x, y, grammar=g)
        perm = np.random.default_rng(1).permutation(len(x))
        b = Chaining(**kw).fit(x[perm], y[perm], grammar=g)
        assert np.array_equal(a.predict(xt), b.predict(xt))
        assert a.info_["stage_samples"] == b.info_["stage_samples"]


def test_sklearn_clone_round_trip():
    from sklearn.base import clone

    est = Chaining(width=64, sigma="oracle", sigma_rule="corrected", eps_o="paper", seed=4)
    twin = clone(est)
    assert twin is not est and twin.get_params() == est.get_params()
    assert twin.set_params(width=32, seed=5) is twin and twin.width == 32 and est.width == 64
    with pytest.raises(ValueError, match="Invalid parameter 'depth' for estimator Chaining"):  # BaseEstimator's
        twin.set_params(depth=3)
    x, y = G_SMALL.sample(500, seed=0)
    assert clone(est.set_params(samples="reuse")).fit(x, y, grammar=G_SMALL).score(x, y) > 0.5
