"""Sample complexity of the App. C learners: a learner by name, one run, test MSE vs samples, samples to a target."""

from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np

from ..validation import check_float, check_int
from .layerwise import LayerwiseQuadratic
from .shallow import PolynomialRidge, TwoLayerNet, n_monomials
from .target import DeepQuadratic


LEARNERS = ("layerwise", "shallow", "mlp")


def make_learner(learner: str, *, levels: int = 2, seed: int = 0, **kwargs):
    """A learner by name: "layerwise" (:class:`LayerwiseQuadratic`, n_layers = ``levels``), "shallow"
    (:class:`PolynomialRidge` of degree 2^``levels``, the target's maximal degree) or "mlp" (:class:`TwoLayerNet`)."""
    if learner == "layerwise":
        return LayerwiseQuadratic(n_layers=levels, **kwargs)
    if learner == "shallow":
        return PolynomialRidge(degree=2**levels, **kwargs)
    if learner == "mlp":
        return TwoLayerNet(seed=seed, **kwargs)
    raise ValueError(f"learner={learner!r} must be one of {', '.join(LEARNERS)}")


def _seeds(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))


def _features(learner: str, d: int, levels: int) -> int:
    return d * (d - 1) // 2 if learner == "layerwise" else n_monomials(d, 2**levels)


def run_once(learner: str, f: DeepQuadratic, train_size: int, test_x: np.ndarray, test_y: np.ndarray, *,
             seed: int, **kwargs) -> dict:
    """Fit one learner on ``train_size`` fresh samples of f (drawn from ``seed``) and score it on (test_x, test_y).

    Returns {"learner", "d", "levels", "train_size", "n_features", "test_mse", "rel_mse", "fit_seconds",
    "status"}; status is "ok", "underdetermined" (layerwise with n ≤ D_l and no ridge) or "error: <message>"
    (another ValueError of the fit, e.g. a memory guard); the mse fields are nan unless status is "ok".
    """
    x, y = f.sample(train_size, seed=seed)
    model = make_learner(learner, levels=f.levels, seed=seed, **kwargs)
    row = {"learner": learner, "d": f.d, "levels": f.levels, "train_size": int(train_size),
           "n_features": _features(learner, f.d, f.levels)}
    t0 = time.perf_counter()
    try:
        model.fit(x, y)
    except ValueError as err:  # data-dependent: too few samples for the layer, or a memory guard
        status = "underdetermined" if "must exceed" in str(err) else f"error: {err}"
        return {**row, "test_mse": math.nan, "rel_mse": math.nan, "fit_seconds": time.perf_counter() - t0,
                "status": status}
    fit_s = time.perf_counter() - t0
    pred = model.predict(test_x)
    mse = float(np.mean((pred - test_y) ** 2))
    return {**row, "test_mse": mse, "rel_mse": mse / f.variance, "fit_seconds": fit_s, "status": "ok"}


def sample_complexity(ds: Sequence[int] = (8, 12, 16), train_sizes: Sequence[int] | None = None, *,
                      levels: int = 2, learners: Sequence[str] = ("layerwise", "shallow"), test_size: int = 2000,
                      coefficients: str = "rademacher", seed: int = 0, n_grid: int = 8,
                      max_train: int = 4096) -> list[dict]:
    """Test MSE vs training samples for each learner as d grows (App. C; entry R8 of `rhm reproduce`).

    sample_complexity(ds=(8, 12, 16), train_sizes=None, *, levels=2, learners=("layerwise", "shallow"),
                      test_size=2000, coefficients="rademacher", seed=0, n_grid=8, max_train=4096) -> list[dict]

    For each d: one instance ``DeepQuadratic.random(d, levels, coefficients=..., seed=...)`` (full tree) and one
    test set of ``test_size`` uniform inputs; for each training size n, fresh training data and one fit per
    learner ("layerwise", "shallow" = degree-2^levels polynomial ridge, "mlp" = two-layer net). ``train_sizes``
    None: ``n_grid`` geometric sizes from d to min(max_train, 1.25·max(D_1, N)) where D_1 = d(d−1)/2 is the
    layerwise learner's first-layer width and N the number of monomials of degree ≤ 2^levels.
    Each row: {"learner", "d", "levels", "train_size", "n_features", "test_mse", "rel_mse" (MSE / Var f),
    "fit_seconds", "status", "seed"}; rel_mse is nan when status == "underdetermined" (layerwise, n ≤ D_1).
    The quick default runs in a few seconds on 2 cores. Everything is a function of ``seed``.
    """
    ds = [check_int("ds[]", d, minimum=2) for d in ds]
    levels = check_int("levels", levels, minimum=1)
    test_size = check_int("test_size", test_size, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    for name in learners:
        if name not in LEARNERS:
            raise ValueError(f"learners contains {name!r}: each must be one of {', '.join(LEARNERS)}")
    if train_sizes is not None:
        train_sizes = [check_int("train_sizes[]", n, minimum=1) for n in train_sizes]
    rows = []
    for d in ds:
        f = DeepQuadratic.random(d, levels, coefficients=coefficients, seed=_seeds(seed, d, 0))
        tx, ty = f.sample(test_size, seed=_seeds(seed, d, 1))
        if train_sizes is None:
            top = min(max_train, int(1.25 * max(_features("layerwise", d, levels), _features("shallow", d, levels))))
            grid = sorted({int(round(v)) for v in np.geomspace(d, max(top, d + 1), n_grid)})
        else:
            grid = train_sizes
        for n in grid:
            for name in learners:
                row = run_once(name, f, n, tx, ty, seed=int(_seeds(seed, d, 2, n).integers(2**31)))
                rows.append({**row, "seed": seed})
    return rows


def samples_needed(learner: str, d: int, *, levels: int = 2, threshold: float = 1e-3, seed: int = 0,
                   ratio: float = 2**0.25, n_min: int | None = None, n_max: int = 50_000, repeats: int = 1,
                   test_size: int = 2000, coefficients: str = "rademacher", **kwargs) -> dict:
    """Smallest n on the geometric grid n_min·ratio^i whose median relative test MSE (over ``repeats`` instances
    and draws) is ≤ ``threshold``. n_min default: D_1 + 1 for "layerwise" (unregularised least squares needs
    n > D_1 = d(d−1)/2), d otherwise. Returns {"learner", "d", "levels", "threshold", "samples" (None if not
    reached by n_max), "n_features", "rel_mse" (at that n), "grid_points", "seconds"}.
    """
    if learner not in LEARNERS:
        raise ValueError(f"learner={learner!r} must be one of {', '.join(LEARNERS)}")
    d = check_int("d", d, minimum=2)
    threshold = check_float("threshold", threshold)
    repeats = check_int("repeats", repeats, minimum=1)
    if not ratio > 1:
        raise ValueError(f"ratio={ratio} must be > 1")
    if n_min is None:
        n_min = _features("layerwise", d, levels) + 1 if learner == "layerwise" else d
    inst = []
    for rep in range(repeats):
        f = DeepQuadratic.random(d, levels, coefficients=coefficients, seed=_seeds(seed, d, rep, 0))
        inst.append((f, *f.sample(test_size, seed=_seeds(seed, d, rep, 1))))
    t0 = time.perf_counter()
    n, points, found, rel = float(n_min), 0, None, math.nan
    while n <= n_max:
        ni = int(round(n))
        rels = [run_once(learner, f, ni, tx, ty, seed=int(_seeds(seed, d, rep, 2, ni).integers(2**31)),
                         **kwargs)["rel_mse"] for rep, (f, tx, ty) in enumerate(inst)]
        points += 1
        rel = float(np.median(np.nan_to_num(rels, nan=math.inf)))
        if rel <= threshold:
            found = ni
            break
        n *= ratio
    return {"learner": learner, "d": d, "levels": levels, "threshold": threshold, "samples": found,
            "n_features": _features(learner, d, levels), "rel_mse": rel, "grid_points": points,
            "seconds": time.perf_counter() - t0}


def fit_growth(ds: Sequence[float], samples: Sequence[float]) -> float:
    """Least-squares slope of log(samples) vs log(d): the fitted exponent a in samples ∝ d^a."""
    ds, samples = np.asarray(ds, float), np.asarray(samples, float)
    if ds.size < 2:
        raise ValueError(f"need at least 2 points to fit a growth exponent, got {ds.size}")
    return float(np.polyfit(np.log(ds), np.log(samples), 1)[0])
