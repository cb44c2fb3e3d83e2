"""Synonymic sensitivity of a learner's hidden layers (Cagnetta et al. 2024, §6, ``observables/stability.py``).

    S_{k,l} = < ||f_k(x) - f_k(P_l x)||^2 >_x / < ||f_k(x) - f_k(y)||^2 >_{x != y}

f_k is the activation of hidden layer k (k = 1 bottom .. K top) and P_l x keeps the level-l symbols of x's
tree and redraws every derivation below them (``g.resample_below``; levels: 0 = root, L = input). S ≈ 1 for a
network that does not know which patches are synonyms (e.g. at initialisation) and falls towards 0 once the
layer is invariant to level-l synonyms. Level L (nothing resampled) gives S = 0.

Protocol: a learner with hidden layers implements ``hidden(x) -> list[np.ndarray]``, one (n, features_k)
array per hidden layer, bottom first (the post-ReLU activations for cnn and fcn; the chaining learner exposes
its per-level features the same way).
"""

from __future__ import annotations

import numbers

import numpy as np


def _mean_pair_sqdist(f: np.ndarray) -> float:
    """Mean of ||f_i - f_j||^2 over ordered pairs i != j, in O(n * features): 2n/(n-1) * total variance."""
    n = len(f)
    centred = f - f.mean(axis=0, keepdims=True)
    return float(2.0 * n / (n - 1) * (centred**2).sum(axis=1).mean())


def sensitivity(learner, g, level, n=1000, seed=0) -> np.ndarray:
    """S_{k,level} for every hidden layer k of a fitted `learner`: array of shape (K,), index k-1 = layer k.

    Draws n i.i.d. inputs x of grammar `g` (with their trees) and P_level x from ``g.resample_below``; both
    draws come from `seed` (an int). The denominator averages over all pairs of distinct draws. A layer whose
    activations do not vary at all gets nan.
    """
    if not callable(getattr(learner, "hidden", None)):
        raise ValueError(f"learner {type(learner).__name__} has no hidden layers: sensitivity needs a "
                         "hidden(x) -> list of (n, features) arrays method (cnn, fcn, chaining)")
    if isinstance(level, bool) or not isinstance(level, numbers.Integral) or not 0 <= level <= g.L:
        raise ValueError(f"level={level!r} must be an integer in [0, L={g.L}] (0 = root, L = input)")
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 2:
        raise ValueError(f"n={n!r} must be an integer >= 2 (the denominator needs pairs of inputs)")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer")
    draw, redraw = (np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(2))
    x, _, tree = g.sample(int(n), seed=draw, return_tree=True)
    x2 = g.resample_below(tree, int(level), seed=redraw)
    f1, f2 = learner.hidden(x), learner.hidden(x2)
    if not isinstance(f1, (list, tuple)) or len(f1) == 0 or len(f1) != len(f2):
        raise ValueError("learner.hidden(x) must return a non-empty list of (n, features) arrays")
    out = []
    for a, b in zip(f1, f2):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if a.ndim != 2 or a.shape != b.shape or len(a) != n:
            raise ValueError(f"learner.hidden returned a layer of shape {a.shape}, expected (n={n}, features)")
        num = float(((a - b) ** 2).sum(axis=1).mean())
        den = _mean_pair_sqdist(a)
        out.append(num / den if den > 0 else float("nan"))
    return np.asarray(out)
