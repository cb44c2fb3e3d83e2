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
    assert math.isclose(closed.lam_, 1 / P)
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
    (dict(sigma=-1.0), "sigma=-1.0 must be one of"),
    (dict(solver="sgd"), "solver='sgd' must be one of"),
    (dict(samples="all"), "samples='all' must be one of"),
    (dict(lam=0), "lam=0 must be 'paper' or a positive number"),
    (dict(guard=0), "guard=0 must be > 0.0"),
    (dict(gd_steps=0), "gd_steps=0 must be >= 1"),
    (dict(val_fraction=1.5), "val_fraction=1.5 must be in"),
    (dict(sigma_grid=[]), "sigma_grid"),
    (dict(seed=-2), "seed=-2"),
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
