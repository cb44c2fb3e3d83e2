"""App. C: deep quadratic boolean functions (Definition 31), the layerwise learner and the shallow baselines."""

import itertools
import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from rhm.boolean import (DeepQuadratic, LayerwiseQuadratic, PolynomialRidge, TwoLayerNet, all_inputs, fit_growth,
                         krawtchouk_kernel_table, n_monomials, sample_complexity, samples_needed)
from rhm.cli import app


def brute_fourier(f, d):
    """f̂_S = 2^-d Σ_x f(x) χ_S(x) for every S ⊆ [d], from the values on the whole cube."""
    X = all_inputs(d).astype(float)
    y = f(X)
    out = {}
    for k in range(d + 1):
        for S in itertools.combinations(range(d), k):
            out[S] = float(np.mean(y * np.prod(X[:, list(S)], axis=1)))
    return out


# ------------------------------------------------------------------------------------------- the target
def test_paper_example_values_on_whole_cube():
    f = DeepQuadratic.example()
    X = all_inputs(6).astype(int)
    x1, x2, x3, x4, x5, x6 = X.T
    expected = x1 * x2 + x3 * x4 + (x1 * x2) * (x3 * x4) + x5 * x6
    assert f.d == 6 and f.levels == 2
    np.testing.assert_array_equal(f(X), expected.astype(float))
    assert sorted(set(f(X))) == [-2.0, 0.0, 2.0, 4.0]
    assert f.variance == 4.0


def test_paper_example_fourier_coefficients():
    f = DeepQuadratic.example()
    assert f.fourier() == {(0, 1): 1.0, (2, 3): 1.0, (4, 5): 1.0, (0, 1, 2, 3): 1.0}
    brute = brute_fourier(f, 6)
    for S, c in brute.items():  # all 64 subsets, including the zero ones
        assert f.fourier_coefficient(S) == pytest.approx(c, abs=1e-12)
    np.testing.assert_array_equal(f.children[1], [[0, 1]])  # (0,1,2,3) = (0,1) ∪ (2,3)


def test_random_instance_is_definition_31_and_its_fourier_is_exact():
    f = DeepQuadratic.random(8, 3, coefficients="gaussian", seed=5)
    assert [len(c) for c in f.coefficients] == [4, 2, 1]  # full tree
    assert [s.shape for s in f.supports] == [(4, 2), (2, 4), (1, 8)]
    assert DeepQuadratic(8, f.terms) == f  # the terms pass validation unchanged
    brute = brute_fourier(f, 8)
    nonzero = {S: c for S, c in brute.items() if abs(c) > 1e-12}
    assert nonzero.keys() == f.fourier().keys()
    for S, c in nonzero.items():
        assert f.fourier()[S] == pytest.approx(c, abs=1e-12)
    assert float(np.var(f(all_inputs(8)))) == pytest.approx(f.variance, rel=1e-12)


def test_random_terms_per_level_and_coefficient_laws():
    f = DeepQuadratic.random(20, 2, terms_per_level=(7, 2), coefficients="uniform", seed=1)
    assert [len(c) for c in f.coefficients] == [7, 2]
    c = np.concatenate(f.coefficients)
    assert np.all((np.abs(c) >= 0.5) & (np.abs(c) <= 1.5))
    r = DeepQuadratic.random(20, 2, seed=1)
    assert set(np.abs(np.concatenate(r.coefficients))) == {1.0}


def test_same_seed_same_instance_and_data():
    a, b = DeepQuadratic.random(16, 3, seed=7), DeepQuadratic.random(16, 3, seed=7)
    assert a == b and a != DeepQuadratic.random(16, 3, seed=8)
    xa, ya = a.sample(100, seed=3)
    xb, yb = b.sample(100, seed=3)
    assert xa.tobytes() == xb.tobytes() and ya.tobytes() == yb.tobytes()
    assert xa.dtype == np.int8 and set(np.unique(xa)) == {-1, 1}
    assert not np.array_equal(xa, a.sample(100, seed=4)[0])
    assert DeepQuadratic.from_dict(json.loads(json.dumps(a.to_dict()))) == a
    with pytest.raises(ValueError, match="seed=None"):
        a.sample(10, seed=None)


# ------------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize("terms, msg", [
    ([((0, 1, 2), 1.0)], r"term 0: support \(0, 1, 2\) has degree 3, breaking Definition 31 \(a\)"),
    ([((0, 1), 1.0), ((2,), 1.0)], r"term 1: support \(2,\) has degree 1, breaking Definition 31 \(a\)"),
    ([((0, 1), 1.0), ((1, 2), 1.0)], r"term 1: support \(1, 2\) overlaps the degree-2 support of term 0 at index 1"
                                     r", breaking Definition 31 \(b\)"),
    ([((0, 1), 1.0), ((2, 3), 1.0), ((0, 1, 2, 4), 1.0)],
     r"term 2: support \(0, 1, 2, 4\) \(degree 4\) is not the union of two degree-2 supports.*Definition 31 \(c\)"),
    ([((0, 1), 1.0), ((2, 3), 1.0), ((4, 5), 1.0), ((0, 1, 2, 3), 1.0), ((2, 3, 4, 5), 1.0)],
     r"term 4: support \(2, 3, 4, 5\) overlaps .* term 3 at index 2, breaking Definition 31 \(b\)"),
    ([((0, 1, 2, 3), 1.0)], r"term 0: .* has degree 4 but the function has no degree-2 term.*Definition 31 \(c\)"),
    ([((0, 1), 1.0), ((2, 3), 1.0), ((0, 1, 2, 3, 4, 5, 6, 7), 1.0)],
     r"term 2: .* has degree 8 but the function has no degree-4 term"),
    ([((0, 1), 1.0), ((0, 1, 2, 3), 1.0)], r"term 1: .* not the union of two degree-2 supports"),
    ([((0, 1), 0.0)], r"term 0: coefficient 0 for support \(0, 1\)"),
    ([((0, 1), float("nan"))], r"term 0: coefficient nan must be a finite real number"),
    ([((0, 9), 1.0)], r"term 0: support \(0, 9\) has index 9 outside 0..7"),
    ([((0, 0), 1.0)], r"term 0: support \(0, 0\) repeats an index"),
    ([((0, 1), 1.0), ((1, 0), 2.0)], r"term 1: support \(0, 1\) already given by term 0"),
    ([((0, 1.5), 1.0)], r"term 0: support .* must contain integers only"),
    ([], r"terms is empty"),
])
def test_invalid_terms_are_refused_with_rule(terms, msg):
    with pytest.raises(ValueError, match=msg):
        DeepQuadratic(8, terms)


@pytest.mark.parametrize("kwargs, msg", [
    (dict(d=6, levels=3), r"levels=3 needs d >= 2\*\*levels = 8 \(one degree-8 support\), got d=6"),
    (dict(d=8, levels=2, coefficients="cauchy"), r"coefficients='cauchy' must be one of"),
    (dict(d=8, levels=2, terms_per_level=(5, 1)), r"terms_per_level\[0\]=5 exceeds d // 2 = 4"),
    (dict(d=16, levels=2, terms_per_level=(4, 3)), r"terms_per_level\[1\]=3 exceeds terms_per_level\[0\] // 2 = 2"),
    (dict(d=16, levels=2, terms_per_level=(4,)), r"terms_per_level has 1 entries: expected levels=2"),
    (dict(d=1, levels=1), r"d=1 must be >= 2"),
])
def test_random_bad_parameters(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        DeepQuadratic.random(seed=0, **kwargs)


def test_evaluate_rejects_non_pm1_inputs():
    f = DeepQuadratic.example()
    with pytest.raises(ValueError, match=r"entries in \{-1, \+1\}"):
        f(np.zeros((2, 6)))
    with pytest.raises(ValueError, match="expected d=6"):
        f(np.ones((2, 5)))


# ------------------------------------------------------------------------------------------- the learner
def formula_weights(f, level, in_supports):
    """The paper's population minimiser w^(l) = Σ_{S=S_1∪S_2∈S_{2^l}} f̂_S e_{S_1S_2}, indexed by (S_1, S_2)."""
    target = {tuple(s): c for s, c in zip(f.supports[level - 1].tolist(), f.coefficients[level - 1])}
    return {(a, b): target.get(tuple(sorted(a + b)), 0.0) for a, b in itertools.combinations(in_supports, 2)}


def test_population_minimiser_exact_on_whole_cube():
    # Training on all 2^8 inputs once = the population expectation: characters are exactly orthonormal, so
    # every layer's least-squares w^(l) equals the formula to rounding (1e-12). z=0: in population there is no
    # sampling noise to guard against, so a pair is kept iff its weight is nonzero (above tol = 1e-6).
    f = DeepQuadratic.random(8, 3, coefficients="gaussian", seed=2)
    X = all_inputs(8)
    model = LayerwiseQuadratic(refit=False, z=0.0).fit(X, f(X))
    assert len(model.layers_) == 3
    ins = [(i,) for i in range(8)]
    for level in (1, 2, 3):
        got = model.weights_by_support_pair(level)
        want = formula_weights(f, level, ins)
        assert got.keys() == want.keys()
        for key in want:
            assert got[key] == pytest.approx(want[key], abs=1e-12), (level, key)
        ins = list(model.layers_[level - 1].supports)
        assert sorted(ins) == sorted(map(tuple, f.supports[level - 1].tolist()))  # kept = S_{2^l}
    assert model.learned_terms() == pytest.approx(f.fourier(), abs=1e-12)


def test_population_minimiser_on_large_sample():
    # n = 40000 i.i.d. samples, d = 12, 2 levels. Each coordinate of the least-squares w^(l) is the formula plus
    # noise of standard deviation sigma_l / sqrt(n), where sigma_l^2 = Σ_{k>l} level_variance(k) is the part of
    # the residual orthogonal to layer l's features (the degree-4 level for layer 1) plus what layer 1 left
    # behind (≈ k_1·sigma_1²/n for layer 2). Tolerance: 6 standard deviations, uniformly over the ≤ 66 pairs
    # (a Gaussian exceeds 6 sd with probability 2e-9); the seed is fixed anyway.
    f = DeepQuadratic.random(12, 2, seed=4)
    n = 40_000
    x, y = f.sample(n, seed=11)
    model = LayerwiseQuadratic(refit=False).fit(x, y)
    s1 = f.level_variance(2)
    sigmas = {1: math.sqrt(s1), 2: math.sqrt(6 * s1 / n)}
    ins = [(i,) for i in range(12)]
    for level in (1, 2):
        got, want = model.weights_by_support_pair(level), formula_weights(f, level, ins)
        err = max(abs(got[k] - want[k]) for k in want)
        assert err <= 6 * sigmas[level] / math.sqrt(n), (level, err)
        assert err > 0  # a finite sample, not the population: the test is not vacuous
        ins = list(model.layers_[level - 1].supports)
    assert set(model.learned_terms()) == set(f.fourier())


def test_layerwise_reaches_1e_minus_6_of_variance():
    f = DeepQuadratic.random(16, 3, coefficients="uniform", seed=3)
    # D_1 = 120 quadratic features at layer 1; the degree-4 and -8 levels (variance ≈ 5.3) act as noise for it,
    # so the smallest level-1 coefficient (≈ 0.5) needs n ≈ 2000 to clear the significance threshold z ≈ 5.1
    x, y = f.sample(2000, seed=1)
    tx, ty = f.sample(4000, seed=2)
    model = LayerwiseQuadratic(refit=True).fit(x, y)
    rel = float(np.mean((model.predict(tx) - ty) ** 2)) / f.variance
    assert rel <= 1e-6
    assert [layer.kept.size for layer in model.layers_][:3] == [8, 4, 2]
    assert model.learned_terms() == pytest.approx(f.fourier(), abs=1e-9)
    # the paper's one-pass procedure (the default, no joint refit) has the O(1/n) cross-talk error but the
    # same features
    one_pass = LayerwiseQuadratic().fit(x, y)
    assert one_pass.refit is False
    rel1 = one_pass.relative_mse(tx, ty)
    assert 1e-6 < rel1 < 0.05
    assert set(one_pass.learned_terms()) == set(f.fourier())


def test_layerwise_chunking_does_not_change_the_fit():
    f = DeepQuadratic.random(10, 2, seed=0)
    x, y = f.sample(500, seed=1)
    a = LayerwiseQuadratic(refit=False).fit(x, y)
    b = LayerwiseQuadratic(refit=False, chunk_elems=100).fit(x, y)  # 2 rows per block
    np.testing.assert_allclose(a.layers_[0].weights_full, b.layers_[0].weights_full, rtol=0, atol=1e-12)


def test_layerwise_errors():
    f = DeepQuadratic.random(16, 2, seed=0)
    x, y = f.sample(100, seed=1)
    with pytest.raises(ValueError, match=r"train size n=100 must exceed the D=120 quadratic features"):
        LayerwiseQuadratic().fit(x, y)
    with pytest.raises(ValueError, match="ridge=-1"):
        LayerwiseQuadratic(ridge=-1)
    with pytest.raises(ValueError, match="not fitted"):
        LayerwiseQuadratic().predict(x)
    # ridge λ shrinks the (near-orthonormal) weights by 1/(1 + λ): mean squared error + λ‖w‖² (joint refit: the
    # one pass adds the O(1/sqrt n) in-sample cross-talk of the other level to each weight)
    m = LayerwiseQuadratic(ridge=0.1, refit=True).fit(*f.sample(4000, seed=1))
    assert set(m.learned_terms()) == set(f.fourier())
    for S, w in m.learned_terms().items():
        assert w == pytest.approx(f.fourier()[S] / 1.1, rel=0.05)


# ------------------------------------------------------------------------------------------- shallow baselines
def test_krawtchouk_kernel_is_the_monomial_kernel():
    d, q = 6, 3
    X = all_inputs(d).astype(float)
    table = krawtchouk_kernel_table(d, q)
    mons = np.stack([np.prod(X[:, list(S)], axis=1) for k in range(q + 1)
                     for S in itertools.combinations(range(d), k)], axis=1)
    assert mons.shape[1] == n_monomials(d, q) == table[0]
    h = ((d - X @ X.T) / 2).astype(int)
    np.testing.assert_array_equal(table[h], mons @ mons.T)


@pytest.mark.slow
def test_polynomial_ridge_needs_about_n_monomials():
    f = DeepQuadratic.random(10, 2, seed=0)
    N = n_monomials(10, 4)  # 386
    tx, ty = f.sample(2000, seed=9)
    full = PolynomialRidge(degree=4).fit(*f.sample(3 * N, seed=1))
    assert full.relative_mse(tx, ty) < 1e-10
    # minimum-norm interpolation with equal weights on all monomials: error ≈ 1 − n/N at n < N
    half = PolynomialRidge(degree=4).fit(*f.sample(N // 2, seed=1))
    assert 0.3 < half.relative_mse(tx, ty) < 0.7
    # degree 2 cannot express the degree-4 level: relative error = its share of the variance (5/2 / 7.5 = 1/3)
    low = PolynomialRidge(degree=2).fit(*f.sample(3000, seed=1))
    assert low.relative_mse(tx, ty) == pytest.approx(f.level_variance(2) / f.variance, rel=0.1)


def test_two_layer_net_is_seeded_and_learns_a_small_instance():
    f = DeepQuadratic.random(8, 2, seed=0)
    x, y = f.sample(512, seed=1)
    a = TwoLayerNet(width=128, epochs=300, seed=3).fit(x, y)
    b = TwoLayerNet(width=128, epochs=300, seed=3).fit(x, y)
    np.testing.assert_array_equal(a.predict(x), b.predict(x))
    assert a.train_mse_ < 0.05 * f.variance


# ------------------------------------------------------------------------------------------- experiments
@pytest.mark.slow
def test_sample_complexity_rows_and_separation():
    rows = sample_complexity(ds=(8, 12), train_sizes=(100, 400, 1000), test_size=500, seed=1)
    assert len(rows) == 2 * 3 * 2
    assert set(rows[0]) >= {"learner", "d", "levels", "train_size", "n_features", "test_mse", "rel_mse",
                            "fit_seconds", "status", "seed"}
    by = {(r["learner"], r["d"], r["train_size"]): r for r in rows}
    # at n = 400 the one-pass layerwise learner (D_1 = 66 at d = 12) has only its O(1/n) cross-talk error
    # (measured 0.006); degree-4 regression (N = 794 monomials) is still far off
    assert by["layerwise", 12, 400]["rel_mse"] < 0.02
    assert by["layerwise", 12, 1000]["rel_mse"] < by["layerwise", 12, 400]["rel_mse"]
    assert by["shallow", 12, 400]["rel_mse"] > 0.3
    assert by["shallow", 12, 1000]["rel_mse"] < 1e-6
    again = sample_complexity(ds=(8, 12), train_sizes=(100, 400, 1000), test_size=500, seed=1)
    assert [r["rel_mse"] for r in again] == [r["rel_mse"] for r in rows]


@pytest.mark.slow
def test_samples_needed_and_growth():
    lay = samples_needed("layerwise", 12, threshold=1e-3)  # the paper's one pass: test MSE ~ 1/n
    joint = samples_needed("layerwise", 12, threshold=1e-3, refit=True)
    sh = samples_needed("shallow", 12, threshold=1e-3)
    # measured over seeds 0-2: one pass 1072-2144 samples, joint refit < 300 (it is exact once all terms are kept)
    assert 800 < lay["samples"] < 3000 and lay["rel_mse"] <= 1e-3
    assert 66 < joint["samples"] < 300 and joint["rel_mse"] <= 1e-3
    assert 600 < sh["samples"] < 1200 and sh["rel_mse"] <= 1e-3  # N(12, 4) = 794 monomials
    assert fit_growth([8, 16, 32], [64, 256, 1024]) == pytest.approx(2.0)


# ------------------------------------------------------------------------------------------- CLI
runner = CliRunner()


def test_cli_boolean_json():
    r = runner.invoke(app, ["boolean", "--d", "16", "--levels", "2", "--train-size", "500", "--test-size", "500",
                            "--seed", "3", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    # the default is the paper's one pass: every term found, test MSE at its O(1/n) cross-talk level (0.02)
    assert out["relative_mse"] < 0.05 and out["terms_recovered"] is True and out["kept_per_layer"] == [8, 4]
    assert out["target_variance"] == 12.0 and out["n_terms"] == 12 and out["seconds"] >= out["fit_seconds"] > 0
    r2 = runner.invoke(app, ["boolean", "--d", "16", "--train-size", "500", "--learner", "shallow", "--json"])
    assert r2.exit_code == 0 and json.loads(r2.stdout)["relative_mse"] > 0.3


@pytest.mark.parametrize("args, msg", [
    (["--learner", "deep"], "error: --learner='deep' must be one of layerwise, shallow, mlp"),
    (["--d", "4", "--levels", "3"], "error: --levels=3 needs --d >= 2**levels = 8, got --d=4"),
    (["--train-size", "0"], "error: --train-size=0 must be >= 1"),
    (["--coefficients", "cauchy"], "error: --coefficients='cauchy' must be one of"),
    (["--d", "16", "--train-size", "50"], "error: train size n=50 must exceed the D=120 quadratic features"),
])
def test_cli_boolean_errors_are_one_line(args, msg):
    r = runner.invoke(app, ["boolean", *args])
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(msg)


def test_memory_guards_name_the_limit():
    f = DeepQuadratic.random(16, 2, seed=0)
    x, y = f.sample(200, seed=1)
    with pytest.raises(ValueError, match=r"D=120 quadratic features, over max_features=100"):
        LayerwiseQuadratic(max_features=100).fit(x, y)
    with pytest.raises(ValueError, match=r"train size n=200 exceeds max_samples=100"):
        PolynomialRidge(max_samples=100).fit(x, y)


@pytest.mark.parametrize("n", [277, 280, 300, 400])
def test_no_noise_pair_kept_when_residual_dof_is_small(n):
    # n just above D_1 = 276 (d = 24): the residual variance rests on n − D_1 degrees of freedom, so the default
    # threshold is a Student-t quantile (≈ 1.8e5 at 1 dof, ≈ 6 at 24). A normal quantile here would keep
    # hundreds of noise pairs and hand the next layer a ~230-input feature map.
    f = DeepQuadratic.random(24, 2, seed=0)
    model = LayerwiseQuadratic(n_layers=2).fit(*f.sample(n, seed=1))
    assert set(model.learned_terms()) <= set(f.fourier())
    assert model.layers_[0].kept.size <= 12
