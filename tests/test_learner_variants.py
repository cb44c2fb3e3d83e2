"""Every learner on every variant (Zipf, noise, sparse RHM), through the public API; refusals are clear."""

import numpy as np
import pytest

import rhm
from rhm import learners, oracle

# chaining+ with 2 restarts and 2 remeasure rounds (defaults 10 and 10) still compares restarts (and remeasures when
# they disagree), at a quarter of the time (3.5 s against 14 s a fit under load; 16 fits here)
FAST = {"cnn": dict(epochs=3, width=32), "fcn": dict(epochs=3, width=32), "chaining": dict(width=64, n_diag=200),
        "chaining+": dict(restarts=2, remeasure_rounds=2)}
NAMES = ["cnn", "fcn", "kernel", "kmeans", "chaining", "chaining+"]


def variants(seed):
    return {"zipf": rhm.RHM(4, 2, 2, 2, seed=seed, zipf=1.0),
            "noise": rhm.RHM(4, 2, 2, 2, seed=seed, noise=0.2),
            "sparse": rhm.SparseRHM(4, 2, 2, 2, s0=1, seed=seed),
            "sparse+noise": rhm.SparseRHM(4, 2, 2, 2, s0=1, seed=seed, noise=0.1)}


@pytest.mark.parametrize("name", NAMES)
def test_every_learner_fits_every_variant(name):
    """fit/predict/score with grammar= and without it: valid labels in [0, n_c) on noisy and sparse inputs."""
    for seed in (0, 1):
        for kind, g in variants(seed).items():
            x, y = g.sample(160, seed=seed + 10)
            xt, yt = g.sample(60, seed=seed + 20)
            for with_grammar in (True, False):
                model = learners.get(name)(**FAST.get(name, {}))
                if with_grammar:
                    model.fit(x, y, grammar=g)
                    assert model.v_ == g.vocab_size
                else:
                    if "s" in type(model).defaults():
                        model.set_params(s=getattr(g, "patch", g.s))
                    model.fit(x, y, v=g.vocab_size)
                pred = model.predict(xt)
                assert pred.shape == (60,) and pred.min() >= 0 and pred.max() < g.n_classes, (name, kind)
                acc = model.score(xt, yt)
                assert 0.0 <= acc <= 1.0


def test_sparse_learner_beats_chance_with_grammar():
    """The kernel on the sparse RHM with grammar= (it used to refuse the blank token v): above chance on 3 seeds."""
    for seed in (0, 1, 2):
        g = rhm.SparseRHM(4, 2, 2, 2, s0=1, seed=seed)
        x, y = g.sample(600, seed=seed)
        xt, yt = g.sample(300, seed=seed + 100)
        acc = learners.get("kernel")().fit(x, y, grammar=g).score(xt, yt)
        assert acc > 1 / g.n_classes + 0.1


@pytest.mark.parametrize("g", [rhm.RHM(4, 2, 2, 2, seed=0, zipf=1.0), rhm.RHM(4, 2, 2, 2, seed=0, noise=0.1),
                               rhm.SparseRHM(4, 2, 2, 2, s0=1, seed=0)], ids=repr)
@pytest.mark.parametrize("sigma", ["oracle", "theory"])
def test_chaining_sigma_oracle_refuses_variants(g, sigma):
    x, y = g.sample(100, seed=0)
    with pytest.raises(ValueError, match=f"sigma='{sigma}'.*plain RHM"):
        learners.get("chaining")(sigma=sigma, width=32).fit(x, y, grammar=g)


def test_chaining_skips_diagnostics_on_sparse():
    g = rhm.SparseRHM(4, 2, 2, 2, s0=1, seed=0)
    x, y = g.sample(200, seed=0)
    model = learners.get("chaining")(width=32).fit(x, y, grammar=g)
    assert model.info_["diagnostics"].startswith("skipped")


def test_oracle_q_is_exact_under_zipf():
    """oracle.q at level L equals the exact posterior of the class given the first s tokens (rhm.inference)."""
    from rhm import inference

    for seed in range(3):
        for kw in (dict(zipf=1.0), dict(zipf=0.5, zipf_levels=[0]), dict(zipf=0.0, zipf_levels=[1])):
            g = rhm.RHM(4, 3, 2, 2, seed=seed, **kw)
            patches, q = oracle.q(g, 2)
            x = np.zeros((len(patches), g.d), dtype=np.int64)
            x[:, :2] = patches
            mask = np.ones(x.shape, bool)
            mask[:, :2] = False
            exact = inference.latent_posterior(g, x, 0, mask=mask)[:, 0]
            assert np.abs(exact - q).max() < 1e-9
            for k in range(g.L):
                P = oracle.first_token_transition(g, k)
                assert np.allclose(P.sum(1), 1.0)
            assert np.isclose(oracle.patch_stats(g, 2).p.sum(), 1.0)


def test_oracle_refuses_sparse():
    g = rhm.SparseRHM(4, 2, 2, 2, s0=1, seed=0)
    for fn in (lambda: oracle.signal_gaps(g), lambda: oracle.q(g, 1), lambda: oracle.first_token_transition(g, 0)):
        with pytest.raises(ValueError, match="SparseRHM"):
            fn()
