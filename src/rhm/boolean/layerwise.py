"""The layerwise learner of App. C: least squares on Φ(x^(l)) = (x^(l)_i x^(l)_j)_{i<j}, layer by layer."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ..validation import check_float, check_int

from ._cube import check_pm1, check_y, relative_mse


@dataclass
class Layer:
    """One fitted layer l of :class:`LayerwiseQuadratic`.

    ``pairs`` (D_l, 2): the index pairs (i < j) of Φ(x^(l)) in row-major upper-triangle order, indexing the
    m_l = ``n_inputs`` inputs of the layer; ``weights_full`` (D_l,): the least-squares w^(l) on all of Φ (what the
    paper's population minimiser describes); ``t_stat``: |w_j| / its standard error; ``kept`` (k_l,): indices
    of the pairs kept (significant); ``weights`` (k_l,): the weights of the kept pairs used for prediction
    (re-estimated jointly when the learner refits); ``supports``: the kept features as supports in the original
    coordinates (x^(l+1)_j = χ_{supports[j]}(x)); ``sigma2``: residual variance estimate of the layer's fit.
    """

    n_inputs: int
    pairs: np.ndarray
    weights_full: np.ndarray
    t_stat: np.ndarray
    kept: np.ndarray
    weights: np.ndarray
    supports: tuple
    sigma2: float
    threshold: float
    seconds: float = 0.0


class LayerwiseQuadratic:
    """The layerwise learner of App. C: f̂(x) = Σ_l ⟨w^(l), Φ(x^(l))⟩ with Φ(z) = (z_i z_j)_{i<j}.

    Layer l minimises L^(l)(w) = Ê(f*(x) − Σ_{l'<l} f^(l')(x) − ⟨w, Φ(x^(l))⟩)² (+ ridge·‖w‖²) — the residual
    after the lower layers (the paper writes the sum to L−1; we read l−1). Layer 1 takes x^(1) = x.

    **Layer outputs** (design choice). Layer l outputs the unweighted quadratic features it keeps,
    x^(l+1) = (x^(l)_i x^(l)_j)_{(i,j) kept}, where a pair is kept when its weight is significant
    (|w_j| > z·se_j and |w_j| > tol·rms(residual)). On ±1 inputs these are characters: x^(l+1)_j = χ_{S_1∪S_2}(x).
    Why this matches the paper: the population minimiser of layer 1 is w^(1) = Σ_{S∈S_2} f̂_S e_S, so its support
    is exactly S_2 and the outputs are (χ_S)_{S∈S_2} — independent Rademacher variables because the supports
    are disjoint (condition (ii), "orthogonality"). Layer 2's Φ then contains χ_{S_1}χ_{S_2} = χ_{S_1∪S_2} for
    every pair S_1, S_2 ∈ S_2, and the residual's projection on these orthonormal features is
    w^(2) = Σ_{S=S_1∪S_2∈S_4} f̂_S e_{S_1S_2} — the paper's formula, coefficient f̂_S itself. Weighting the
    outputs by w (x^(l+1)_j = w_j χ_S) would instead give coefficients f̂_S/(f̂_{S_1} f̂_{S_2}); passing all
    of Φ(x) on would make the next layer's Φ contain degree-2 duplicates (x_i x_j)(x_i x_k) = x_j x_k and
    need ~d^4/8 features. Each layer's own prediction uses the kept weights only (its population minimiser is
    supported on them, so this changes nothing in population and removes the noise of the D_l − k_l others).

    Least squares is solved by chunked normal equations: G = ΦᵀΦ and b = Φᵀr are accumulated over blocks of
    rows, so memory is O(D_l² + chunk·D_l), never O(n·D_l); D_1 = d(d−1)/2. With ``ridge`` = 0 a layer needs
    n > D_l samples. ``refit=False`` (default) is the paper's procedure: one layerwise pass, each layer fit once
    on the residual of the layers below. ``refit=True`` (an option, not in the paper) then re-estimates the kept
    weights of all layers jointly by least squares (≤ d columns). In population this is a no-op (the kept
    features are orthonormal, the same orthogonality that gives condition (ii)); in a finite sample it removes
    the O(1/n) in-sample cross-talk between levels that makes a single pass's test MSE decay only like 1/n.
    Both are measured in docs/paper_fidelity.md (benchmarks/boolean_refit.py).

    Parameters: ``n_layers`` (None: up to floor(log2 d), stopping when a layer keeps nothing), ``ridge`` (λ in
    mean squared error + λ‖w‖²), ``z`` (significance threshold on |w|/se; None: the Bonferroni threshold
    t_{n−df}^{-1}(1 − ``alpha``/(2 D_l)), the Student-t quantile with the fit's residual degrees of freedom n − df,
    so that with probability ≥ 1 − alpha no zero-weight pair of the layer is kept — and nothing is kept when
    n − df is too small to estimate the noise), ``alpha`` (default 1e-3), ``tol`` (relative floor on kept weights),
    ``refit``, ``chunk_elems`` (elements of one Φ block), ``max_features`` (memory guard: a layer with D_l
    quadratic features holds two D_l × D_l float64 matrices, 16·D_l² bytes; 20000 ≈ 6.4 GB, i.e. d ≤ 200).
    """

    name = "layerwise"

    def __init__(self, n_layers: int | None = None, ridge: float = 0.0, z: float | None = None,
                 alpha: float = 1e-3, tol: float = 1e-6, refit: bool = False, chunk_elems: int = 1 << 22,
                 max_features: int = 20_000):
        self.n_layers = None if n_layers is None else check_int("n_layers", n_layers, minimum=1)
        self.ridge = check_float("ridge", ridge)
        self.z = None if z is None else check_float("z", z)
        self.alpha = check_float("alpha", alpha)
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha={alpha} must be in (0, 1): the family-wise false-keep probability of a layer")
        self.tol = check_float("tol", tol)
        if not isinstance(refit, bool):
            raise ValueError(f"refit={refit!r} must be a bool")
        self.refit = refit
        self.chunk_elems = check_int("chunk_elems", chunk_elems, minimum=1)
        self.max_features = check_int("max_features", max_features, minimum=1)
        self.layers_: list[Layer] = []

    # ------------------------------------------------------------------ internals
    def _blocks(self, n: int, width: int):
        rows = max(1, self.chunk_elems // max(width, 1))
        for s in range(0, n, rows):
            yield slice(s, min(n, s + rows))

    def _fit_layer(self, feats: np.ndarray, r: np.ndarray, in_supports: list[tuple[int, ...]]) -> Layer:
        t0 = time.perf_counter()
        n, m = feats.shape
        I, J = np.triu_indices(m, 1)
        D = len(I)
        if self.ridge == 0.0 and n <= D:
            raise ValueError(f"train size n={n} must exceed the D={D} quadratic features of a layer with {m} "
                             f"inputs for unregularised least squares; pass ridge > 0 or more samples")
        if D > self.max_features:
            raise ValueError(f"a layer with {m} inputs has D={D} quadratic features, over max_features="
                             f"{self.max_features} (memory: 16·D² bytes = {16 * D * D / 1e9:.1f} GB); "
                             f"raise max_features if the machine has the memory")
        G = np.zeros((D, D))
        b = np.zeros(D)
        for blk in self._blocks(n, D):
            phi = feats[blk][:, I] * feats[blk][:, J]
            G += phi.T @ phi
            b += phi.T @ r[blk]
        lam = self.ridge * n
        evals, U = np.linalg.eigh(G)
        evals = np.clip(evals, 0.0, None)
        cut = evals.max() * D * np.finfo(float).eps if evals.size else 0.0
        inv = np.where(evals + lam > cut, 1.0 / np.maximum(evals + lam, cut if cut > 0 else 1.0), 0.0)
        w = U @ (inv * (U.T @ b))
        shrink = evals * inv  # eigenvalues of the hat matrix
        df = float(np.sum(shrink))
        var_diag = (U**2) @ (evals * inv**2)
        rss = 0.0
        for blk in self._blocks(n, D):
            phi = feats[blk][:, I] * feats[blk][:, J]
            rss += float(np.sum((r[blk] - phi @ w) ** 2))
        sigma2 = rss / max(n - df, 1.0)
        se = np.sqrt(sigma2 * var_diag)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(se > 0, np.abs(w) / se, np.where(w != 0, np.inf, 0.0))
        z = self.z if self.z is not None else _bonferroni_t(self.alpha, D, n - df)
        rms = math.sqrt(float(np.mean(r**2))) if n else 0.0
        kept = np.flatnonzero((t > z) & (np.abs(w) > self.tol * rms))
        supports = tuple(tuple(sorted(in_supports[I[j]] + in_supports[J[j]])) for j in kept)
        return Layer(n_inputs=m, pairs=np.stack([I, J], axis=1), weights_full=w, t_stat=t, kept=kept,
                     weights=w[kept].copy(), supports=supports, sigma2=sigma2, threshold=z,
                     seconds=time.perf_counter() - t0)

    @staticmethod
    def _next(feats: np.ndarray, layer: Layer) -> np.ndarray:
        p = layer.pairs[layer.kept]
        return feats[:, p[:, 0]] * feats[:, p[:, 1]]

    # ------------------------------------------------------------------ API
    def fit(self, x, y) -> "LayerwiseQuadratic":
        """Fit the layers on x (n, d) ±1 and real targets y (n,). Returns self; ``layers_`` holds the layers."""
        x = check_pm1(x)
        y = check_y(y, x.shape[0])
        n, d = x.shape
        max_layers = self.n_layers if self.n_layers is not None else max(1, int(math.log2(d)))
        feats = x.astype(np.float64)
        supports = [(i,) for i in range(d)]
        r = y.copy()
        self.layers_ = []
        outputs = []
        for _ in range(max_layers):
            if feats.shape[1] < 2:
                break
            layer = self._fit_layer(feats, r, supports)
            self.layers_.append(layer)
            if layer.kept.size == 0:
                break
            feats = self._next(feats, layer)
            outputs.append(feats)
            r = r - feats @ layer.weights
            supports = list(layer.supports)
        if self.refit and outputs:
            Z = np.concatenate(outputs, axis=1)
            A = Z.T @ Z + self.ridge * n * np.eye(Z.shape[1])
            coef = np.linalg.lstsq(A, Z.T @ y, rcond=None)[0]
            s = 0
            for layer in self.layers_:
                k = layer.kept.size
                layer.weights = coef[s: s + k].copy()
                s += k
        self.d_ = d
        return self

    def predict(self, x) -> np.ndarray:
        """Σ_l f^(l)(x) for x (n, d) ±1: float64 (n,)."""
        if not self.layers_:
            raise ValueError("this LayerwiseQuadratic is not fitted yet: call fit(x, y) first")
        x = check_pm1(x, self.d_)
        feats = x.astype(np.float64)
        out = np.zeros(x.shape[0])
        for layer in self.layers_:
            if layer.kept.size == 0:
                break
            feats = self._next(feats, layer)
            out += feats @ layer.weights
        return out

    def relative_mse(self, x, y) -> float:
        """Test MSE divided by the empirical variance of y."""
        return relative_mse(self.predict(x), check_y(y, np.asarray(x).shape[0]))

    def learned_terms(self) -> dict[tuple[int, ...], float]:
        """{support: weight} of every kept feature: the learner's estimate of the Fourier terms f̂_S."""
        return {s: float(w) for layer in self.layers_ for s, w in zip(layer.supports, layer.weights)}

    def weights_by_support_pair(self, level: int) -> dict[tuple[tuple[int, ...], tuple[int, ...]], float]:
        """Layer ``level``'s full least-squares w^(l) indexed by (S_1, S_2): the supports of the two inputs of
        each pair (for level 1, S_1 = (i,), S_2 = (j,)). Compare with the paper's Σ f̂_S e_{S_1S_2}."""
        level = check_int("level", level, minimum=1)
        if level > len(self.layers_):
            raise ValueError(f"level={level} exceeds the {len(self.layers_)} fitted layers")
        ins = [(i,) for i in range(self.d_)] if level == 1 else list(self.layers_[level - 2].supports)
        layer = self.layers_[level - 1]
        return {(ins[i], ins[j]): float(w) for (i, j), w in zip(layer.pairs, layer.weights_full)}


def _bonferroni_t(alpha: float, D: int, dof: float) -> float:
    """Two-sided Bonferroni threshold on |t| for D coefficients with dof residual degrees of freedom."""
    from scipy import stats

    if dof < 1:
        return math.inf
    return float(stats.t.isf(alpha / (2 * D), dof))
