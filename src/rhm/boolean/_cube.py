"""The cube {±1}^d: its points, uniform draws, input checks, products χ_S over groups of supports, the relative MSE."""

from __future__ import annotations

import math
import numbers

import numpy as np

from .. import limits
from ..validation import check_int


def as_rng(seed) -> np.random.Generator:
    """A numpy Generator from an int seed, a SeedSequence or a Generator (used as is). No unseeded draws."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer or a numpy Generator (no unseeded draws)")
    return np.random.default_rng(int(seed))


def check_pm1(x, d: int | None = None, name: str = "x") -> np.ndarray:
    """x as a 2-D array with entries in {-1, +1} (any numeric dtype); d checked when given."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{name} has shape {x.shape}: expected 2 dimensions (n, d)")
    if d is not None and x.shape[1] != d:
        raise ValueError(f"{name} has {x.shape[1]} columns: expected d={d}")
    if x.size and not np.all(np.abs(x) == 1):
        raise ValueError(f"{name} must have entries in {{-1, +1}} only")
    return x


def check_y(y, n: int) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if y.shape != (n,):
        raise ValueError(f"y has shape {y.shape}: expected ({n},), one target per row of x")
    if not np.all(np.isfinite(y)):
        raise ValueError("y must be finite")
    return y


def all_inputs(d: int) -> np.ndarray:
    """All 2^d points of {±1}^d as an int8 array (2^d, d), in binary order (row i has x_j = -1 iff bit j of i)."""
    d = check_int("d", d, minimum=1)
    if d > 24:
        raise ValueError(f"d={d} exceeds 24: 2^d rows would not fit in memory")
    bits = (np.arange(2**d)[:, None] >> np.arange(d)[None, :]) & 1
    return (1 - 2 * bits).astype(np.int8)


def uniform_inputs(n: int, d: int, seed) -> np.ndarray:
    """n i.i.d. uniform points of {±1}^d, int8 (n, d)."""
    n = check_int("n", n, minimum=0)
    d = check_int("d", d, minimum=1)
    limits.check_boolean_sample(n, d)  # refuse what cannot fit before allocating
    rng = as_rng(seed)
    return (2 * rng.integers(0, 2, size=(n, d), dtype=np.int8) - 1).astype(np.int8)


def grouped_products(x: np.ndarray, supports: np.ndarray) -> np.ndarray:
    """χ_S(x) for equal-size supports (rows of `supports`, shape (k, q)): int8 (n, k), no Python loop over rows."""
    n = x.shape[0]
    k, q = supports.shape
    if k == 0:
        return np.zeros((n, 0), dtype=np.int8)
    cols = x[:, supports.ravel()].astype(np.int8, copy=False).reshape(n, k, q)
    return np.prod(cols, axis=2, dtype=np.int8)


def relative_mse(pred: np.ndarray, y: np.ndarray) -> float:
    var = float(np.var(y))
    mse = float(np.mean((pred - y) ** 2))
    return mse / var if var > 0 else (0.0 if mse == 0 else math.inf)
