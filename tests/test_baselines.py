"""Baseline learners (cnn, kmeans, fcn, kernel) and the synonymic sensitivity.

Fast: tiny grammars, fixed seeds; the margins are stated at each assertion. The whole file runs in well under
90 s on one core.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import rhm
from rhm import learners

torch.set_num_threads(1)

# A tiny grammar with m < v: 512 distinct inputs, d = 8.
TINY = dict(v=4, m=2, s=2, L=3, seed=0)


@pytest.fixture(scope="module")
def tiny():
    g = rhm.RHM(**TINY)
    x, y = g.sample(g.num_inputs, seed=1, replace=False)  # every input once, shuffled
    return g, (x[:400], y[:400]), (x[400:], y[400:])


@pytest.fixture(scope="module")
def literature():
    """v = n_c = 8, m = 4 < v, s = 2, L = 3: the setting where the prior one-step + k-means code saturated."""
    g = rhm.RHM(8, 4, 2, 3, seed=0)
    x, y = g.sample(24000, seed=0, replace=False)
    return g, (x[:20000], y[:20000]), (x[20000:], y[20000:])


def make(name, **kw):
    return learners.get(name)(device="cpu", **kw)


# ------------------------------------------------------------------------------------------------ accuracy
FAST = {"batch_size": 16, "epochs": 40, "loss_threshold": 1e-3}  # tiny data: no need for the P* defaults


@pytest.mark.parametrize("name, kw", [
    ("cnn", FAST),
    pytest.param("cnn", {**FAST, "impl": "matmul", "bias": True}, marks=pytest.mark.slow),
    pytest.param("cnn", {**FAST, "parametrization": "standard", "lr": 0.5}, marks=pytest.mark.slow),
    pytest.param("cnn", {**FAST, "optimizer": "adam", "lr": 1e-2}, marks=pytest.mark.slow),
    ("fcn", {}),
    ("kernel", {"kernel": "laplace"}),
    ("kernel", {"kernel": "rbf"}),
    ("kmeans", {"patches": "all"}),
])
def test_learner_reaches_95_percent_on_tiny_rhm(tiny, name, kw):
    g, (x, y), (xt, yt) = tiny
    model = make(name, **kw).fit(x, y, grammar=g)
    acc = model.score(xt, yt)
    assert acc >= 0.95, f"{name} {kw}: test accuracy {acc:.3f} on {len(xt)} held-out inputs"
    if name in ("cnn", "fcn"):
        assert model.info_["collapsed"] is False
    assert model.predict(xt).shape == (len(xt),)
    assert model.predict(xt).dtype == np.int64


@pytest.mark.slow
def test_a_network_that_collapses_says_so(tiny):
    # a weight decay this strong shrinks every weight to ~0 each step: the output is constant, and the training
    # loss stays at that of predicting the label frequencies (the collapse of the default CNN at m = 8, L = 3)
    g, (x, y), _ = tiny
    with pytest.warns(RuntimeWarning, match=r"after \d+ steps .* collapsed .* try weight_decay=0"):
        model = make("cnn", width=16, batch_size=4, epochs=15, weight_decay=0.5).fit(x, y, grammar=g)
    info = model.info_
    freq = np.bincount(y) / len(y)
    assert info["collapsed"] is True and np.isclose(info["chance_loss"], -(freq * np.log(freq)).sum())
    assert info["final_train_loss"] >= 0.9 * info["chance_loss"]
    short = make("cnn", width=16, batch_size=4, epochs=2, weight_decay=0.5).fit(x, y, grammar=g)
    assert short.info_["collapsed"] is False  # 200 steps: too short a run to call it a collapse
    # with a validation split the network kept is the best epoch's; the hint follows the weight decay
    with pytest.warns(RuntimeWarning, match="try a smaller lr"):
        make("cnn", width=16, batch_size=4, epochs=15, lr=1e-9, weight_decay=0.0, val_fraction=0.1).fit(
            x, y, grammar=g)


def test_kmeans_learns_when_m_below_v(literature):
    """The prior code clustered the v**2 columns including never-seen pairs and saturated at ~87 % here."""
    g, (x, y), (xt, yt) = literature
    for patches in ("first", "all"):
        model = make("kmeans", patches=patches).fit(x, y, grammar=g)
        assert model.score(xt, yt) >= 0.95, patches
        # every level below the top clusters only the patches that occur: v*m of the v**2 at the bottom
        bottom = model.info_["levels"][0]
        assert bottom["occurring_patches"] == g.v * g.m and bottom["clusters"] == g.v
        # and recovers the synonym classes exactly: patches with the same parent share a cluster
        ids = model.levels_[0].lookup(g.rules[-1])  # (v, m): the cluster of each symbol's patches
        assert (ids == ids[:, :1]).all() and len(np.unique(ids[:, 0])) == g.v


def test_fit_records_training_and_validation(tiny):
    g, (x, y), _ = tiny
    model = make("cnn", **{**FAST, "loss_threshold": 0.0, "epochs": 20}, val_fraction=0.25).fit(x, y, grammar=g)
    info = model.info_
    assert info["n_val"] == 100 and info["n_train"] == 300
    assert len(info["val_accuracy_history"]) == info["epochs_run"]
    assert info["best_val_accuracy"] == max(info["val_accuracy_history"]) >= 0.9
    assert info["train_loss_history"][-1] < info["train_loss_history"][0]


def test_loss_threshold_stops_early(tiny):
    g, (x, y), _ = tiny
    model = make("cnn", batch_size=16, loss_threshold=0.05, patience=1, epochs=200).fit(x, y, grammar=g)
    hist = model.info_["train_loss_history"]
    assert model.info_["stopped"] == "loss_threshold"
    assert hist[-1] < 0.05 and all(h >= 0.05 for h in hist[:-1])
    assert model.info_["epochs_run"] == len(hist) < 200


def test_float64_on_request(tiny):
    g, (x, y), (xt, _) = tiny
    model = make("cnn", dtype="float64", epochs=2).fit(x, y, grammar=g)
    assert all(p.dtype == torch.float64 for p in model.net_.parameters())
    assert model.decision_function(xt).shape == (len(xt), g.n_classes)


def test_cnn_is_a_conv_stack_matching_the_tree(tiny):
    g, (x, y), (xt, _) = tiny
    model = make("cnn", width=16, epochs=0).fit(x, y, grammar=g)
    shapes = [tuple(w.shape) for w in model.net_.weights]
    assert shapes == [(16, g.v, g.s), (16, 16, g.s), (16, 16, g.s)]
    feats = model.hidden(xt[:5])
    assert [f.shape for f in feats] == [(5, 16 * 4), (5, 16 * 2), (5, 16)]
    # the first layer only sees its own patch: changing token 7 leaves the first three patches unchanged
    x2 = xt[:5].copy()
    x2[:, 7] = (x2[:, 7] + 1) % g.v
    f2 = model.hidden(x2)
    a, b = feats[0].reshape(5, 16, 4), f2[0].reshape(5, 16, 4)
    np.testing.assert_array_equal(a[..., :3], b[..., :3])


def test_conv1d_and_matmul_impls_compute_the_same_network(tiny):
    g, (x, y), (xt, _) = tiny
    kw = dict(dtype="float64", epochs=2, batch_size=32, seed=5)
    a = make("cnn", impl="conv1d", **kw).fit(x, y, grammar=g)
    b = make("cnn", impl="matmul", **kw).fit(x, y, grammar=g)
    np.testing.assert_allclose(a.decision_function(xt), b.decision_function(xt), rtol=0, atol=1e-10)
    for fa, fb in zip(a.hidden(xt), b.hidden(xt)):
        np.testing.assert_allclose(fa, fb, rtol=0, atol=1e-10)


def test_max_steps_caps_the_schedule(tiny):
    g, (x, y), _ = tiny
    model = make("cnn", batch_size=40, epochs=50, max_steps=25, loss_threshold=0.0).fit(x, y, grammar=g)
    # 400 samples / batch 40 = 10 steps per epoch -> ceil(25 / 10) = 3 epochs
    assert model.info_["epochs_scheduled"] == model.info_["epochs_run"] == 3 and model.info_["steps"] == 30


# --------------------------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("name", ["cnn", "fcn", "kmeans", "kernel"])
def test_same_seed_same_predictions(tiny, name):
    g, (x, y), (xt, _) = tiny
    kw = {"epochs": 3, "batch_size": 32} if name in ("cnn", "fcn") else {}
    a = make(name, seed=3, **kw).fit(x, y, grammar=g)
    b = make(name, seed=3, **kw).fit(x, y, grammar=g)
    np.testing.assert_array_equal(a.predict(xt), b.predict(xt))
    if name in ("cnn", "fcn"):
        np.testing.assert_array_equal(a.decision_function(xt), b.decision_function(xt))
        c = make(name, seed=4, **kw).fit(x, y, grammar=g)
        assert not np.array_equal(a.decision_function(xt), c.decision_function(xt))


def test_fit_does_not_touch_global_rng(tiny):
    g, (x, y), _ = tiny
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    make("cnn", epochs=1).fit(x, y, grammar=g)
    np.testing.assert_array_equal(torch.rand(3), before)


# --------------------------------------------------------------------------------------------- sensitivity
@pytest.mark.slow
def test_sensitivity_untrained_is_about_one_and_falls_after_training(literature):
    g, (x, y), (xt, yt) = literature
    level = g.L - 1  # keep the level-(L-1) symbols, swap every input patch for a random synonym
    untrained = make("cnn", epochs=0, seed=1).fit(x, y, grammar=g)
    s0 = rhm.sensitivity(untrained, g, level=level, n=1000, seed=0)
    assert s0.shape == (g.L,)
    # a random network cannot tell synonyms apart: about 1 at every layer (a patch is redrawn as itself with
    # probability 1/m, so S is a little below 1 at level L-1): within 0.4 of 1
    assert np.all(np.abs(s0 - 1) < 0.4), s0
    assert np.all(np.abs(rhm.sensitivity(untrained, g, level=0, n=1000, seed=0) - 1) < 0.1)
    trained = make("cnn", seed=1, batch_size=16, epochs=5, loss_threshold=1e-3).fit(x[:5000], y[:5000], grammar=g)
    assert trained.score(xt, yt) > 0.9  # P = 5000 ~ 10 n_c m^L: learned
    s1 = rhm.sensitivity(trained, g, level=level, n=1000, seed=0)
    # the layers above the first become invariant to input-level synonyms
    assert s1[-1] < 0.15 and s1[-1] < s0[-1] / 4, (s0, s1)
    assert s1[1] < s0[1] / 2, (s0, s1)
    # nothing resampled (level L) -> exactly 0
    assert np.allclose(rhm.sensitivity(trained, g, level=g.L, n=50, seed=0), 0.0)


def test_sensitivity_fcn_and_protocol(tiny):
    g, (x, y), _ = tiny
    fcn = make("fcn", width=32, epochs=0).fit(x, y, grammar=g)
    feats = fcn.hidden(x[:7])
    assert len(feats) == 1 and feats[0].shape == (7, 32)
    s = rhm.sensitivity(fcn, g, level=0, n=500, seed=0)
    assert s.shape == (1,) and abs(s[0] - 1) < 0.15
    same = rhm.sensitivity(fcn, g, level=0, n=500, seed=0)
    np.testing.assert_array_equal(s, same)
    with pytest.raises(ValueError, match="hidden"):
        rhm.sensitivity(make("kernel").fit(x, y), g, level=1, n=10)
    with pytest.raises(ValueError, match=r"level=4 must be an integer in \[0, L=3\]"):
        rhm.sensitivity(fcn, g, level=4, n=10)
    with pytest.raises(ValueError, match="n=1 must be an integer >= 2"):
        rhm.sensitivity(fcn, g, level=1, n=1)


# ------------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("name", ["cnn", "fcn", "kmeans", "kernel"])
def test_bad_data_raise_clear_errors(tiny, name):
    g, (x, y), (xt, _) = tiny
    model = make(name, **({"epochs": 1} if name in ("cnn", "fcn") else {}))
    with pytest.raises(ValueError, match=r"shape \(n, d\)"):
        model.fit(x[0], y)
    with pytest.raises(ValueError, match=r"y must have shape \(n,\)"):
        model.fit(x, y[:-1])
    with pytest.raises(ValueError, match="integer tokens"):
        model.fit(x.astype(float), y)
    with pytest.raises(ValueError, match="negative tokens"):
        model.fit(x.astype(int) - 1, y)
    with pytest.raises(ValueError, match="negative labels"):
        model.fit(x, y.astype(int) - 1)
    with pytest.raises(ValueError, match="integer labels"):
        model.fit(x, y.astype(float))
    with pytest.raises(RuntimeError, match="not fitted"):
        model.predict(xt)
    model.fit(x, y, grammar=g)
    with pytest.raises(ValueError, match="tokens >= v=4"):
        model.predict(np.full_like(xt, 4))
    with pytest.raises(ValueError, match="d=4 tokens per input, the model was fit on d=8"):
        model.predict(xt[:, :4])


@pytest.mark.parametrize("name, kw, msg", [
    ("cnn", {"width": 0}, r"width=0 must be >= 1"),
    ("cnn", {"lr": -1.0}, r"lr=-1.0 must be > 0"),
    ("cnn", {"batch_size": 0}, r"batch_size=0 must be >= 1"),
    ("cnn", {"momentum": 1.0}, r"momentum=1.0 must be >= 0.0 and < 1.0"),
    ("cnn", {"parametrization": "ntk"}, r"parametrization='ntk' must be one of"),
    ("cnn", {"optimizer": "rmsprop"}, r"optimizer='rmsprop' must be one of"),
    ("cnn", {"val_fraction": 1.5}, r"val_fraction=1.5 must be"),
    ("cnn", {"dtype": "float16"}, r"dtype='float16'"),
    ("cnn", {"seed": -1}, r"seed=-1"),
    ("cnn", {"s": 3}, r"x has d=8 tokens, not a power of s=3"),
    ("cnn", {"device": "tpu"}, r"device='tpu'"),
    ("fcn", {"epochs": -1}, r"epochs=-1 must be >= 0"),
    ("kmeans", {"patches": "middle"}, r"patches='middle' must be one of"),
    ("kmeans", {"n_init": 0}, r"n_init=0 must be in \[1, 1000\]"),
    ("kernel", {"kernel": "poly"}, r"kernel='poly' must be one of"),
    ("kernel", {"bandwidth": 0.0}, r"bandwidth=0.0 must be > 0"),
    ("kernel", {"ridge": -1e-3}, r"ridge=-0.001 must be >= 0"),
])
def test_bad_hyperparameters_raise_clear_errors(tiny, name, kw, msg):
    g, (x, y), _ = tiny
    with pytest.raises(ValueError, match=msg):
        learners.get(name)(**kw).fit(x, y, grammar=g)


def test_kernel_refuses_too_large_p_and_states_memory(tiny):
    g, (x, y), _ = tiny
    model = make("kernel", max_memory_gb=0.001)
    # 400 samples: 2 * 400**2 * 8 bytes = 2.56e6 B = 0.0024 GiB
    with pytest.raises(ValueError, match=r"P=400 training samples need 0\.0 GiB.*max_memory_gb=0\.001"):
        model.fit(x, y, grammar=g)
    assert make("kernel").memory_bytes(64000) == 2 * 64000**2 * 8  # what P = 64k would need (~61 GiB)


# ---------------------------------------------------------------------------------- estimator protocol, s
OWN = ("cnn", "fcn", "kmeans", "kernel")


@pytest.mark.parametrize("name", OWN)
def test_learners_are_scikit_learn_estimators(tiny, name):
    from sklearn.base import clone

    g, (x, y), (xt, _) = tiny
    model = make(name, seed=2)
    twin = clone(model)
    assert twin is not model and twin.get_params() == model.get_params()
    assert set(model.get_params(deep=True)) == set(type(model).defaults())
    key = "width" if "width" in model.get_params() else "ridge"
    assert model.set_params(**{key: 7}) is model and model.get_params()[key] == 7
    with pytest.raises(ValueError, match="Invalid parameter"):
        model.set_params(no_such_parameter=1)
    fitted = make(name, seed=2, **({"epochs": 1} if name in ("cnn", "fcn") else {})).fit(x, y, grammar=g)
    fresh = clone(fitted)  # clone copies hyperparameters, not the fit
    assert not hasattr(fresh, "d_") and fresh.get_params() == fitted.get_params()


@pytest.mark.parametrize("name", ["cnn", "kmeans"])
def test_patch_size_comes_from_s_or_the_grammar_never_from_d(name):
    # s = 4, L = 2: d = 16 = 2**4 too; the learner must use s = 4, not the smallest s that divides
    g = rhm.RHM(4, 4, 4, 2, seed=0)
    x, y = g.sample(600, seed=0, replace=False)
    kw = {"epochs": 1} if name == "cnn" else {}
    model = make(name, **kw).fit(x, y, grammar=g)
    assert (model.s_, model.L_) == (4, 2)
    assert (make(name, s=4, **kw).fit(x, y).s_, make(name, s=2, **kw).fit(x, y).L_) == (4, 4)
    with pytest.raises(ValueError, match=r"s \(the patch size\) is unknown"):
        make(name, **kw).fit(x, y)


# ----------------------------------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("name, extra", [
    ("cnn", ["--width", "32", "--hp", "epochs=30", "--hp", "batch_size=16", "--hp", "loss_threshold=1e-3"]),
    ("fcn", ["--width", "64"]),
    ("kmeans", ["--hp", "patches=all"]),
    ("kernel", ["--hp", "kernel=rbf", "--hp", "bandwidth=2.5"]),
])
def test_cli_train_json(name, extra):
    from typer.testing import CliRunner

    from rhm.cli import app

    args = ["train", "--learner", name, "--v", "4", "--m", "2", "--L", "3", "--train-size", "400",
            "--test-size", "112", "--seed", "1", "--device", "cpu", "--json", *extra]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["learner"] == name and out["train_size"] == 400 and out["test_size"] == 112
    assert out["test_accuracy"] >= 0.9, out["test_accuracy"]
    assert out["params"]["seed"] == 1 and out["params"]["device"] == "cpu"
    if name == "cnn":
        assert out["params"]["width"] == 32 and out["params"]["epochs"] == 30
    if name == "kernel":
        assert out["params"]["bandwidth"] == 2.5


def test_cli_rejects_unknown_hyperparameter():
    from typer.testing import CliRunner

    from rhm.cli import app

    res = CliRunner().invoke(app, ["train", "--learner", "kernel", "--v", "4", "--m", "2", "--L", "3",
                                   "--train-size", "10", "--hp", "width=3"])
    assert res.exit_code == 1 and "has no hyperparameter 'width'" in res.output
