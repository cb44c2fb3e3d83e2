"""Deep quadratic boolean functions and their layerwise learner (Appendix C of Ren, Dandi, Krzakala, Lee 2026).

Inputs are uniform on {±1}^d and χ_S(x) = Π_{i∈S} x_i is the Fourier (Walsh) basis. **Coordinates are 0-based**:
the paper's x1 is column 0, so its example f = x1x2 + x3x4 + (x1x2)(x3x4) + x5x6 has supports (0,1), (2,3),
(0,1,2,3), (4,5) here.

Definition 31 (paper §4.7 / App. C). f is a deep quadratic boolean function if
  (a) its nonzero Fourier terms have degree 2^k only;
  (b) the supports S_q of each degree q are pairwise disjoint;
  (c) every S ∈ S_q with q > 2 is S_1 ∪ S_2 with S_1, S_2 ∈ S_{q/2}.
We read (a) with k ≥ 1 (degrees 2, 4, 8, ...): (c) starts its recursion at q = 2, the paper's example has no
degree-1 term, and the learner's quadratic feature map Φ cannot produce degree 1 (its population minimiser
w^(1) = Σ_{S∈S_2} f̂_S e_S ignores such terms). A constant term (degree 0) is likewise not allowed. The "level"
of a term is k = log2(degree): level 1 = degree 2, level 2 = degree 4, ...

Public API
----------
- :class:`DeepQuadratic` — a function: ``DeepQuadratic(d, terms)``, ``DeepQuadratic.random(d, levels, seed=...)``,
  ``DeepQuadratic.example()``; ``f(x)`` exact vectorised evaluation, ``f.fourier()``, ``f.sample(n, seed=...)``.
- :class:`LayerwiseQuadratic` — the App. C learner (layerwise least squares on Φ(x^(l)) = (x^(l)_i x^(l)_j)_{i<j}).
- :class:`PolynomialRidge` — shallow baseline: ridge(less) regression on all monomials of degree ≤ q of the raw
  input, computed exactly through the hypercube (Krawtchouk) kernel.
- :class:`TwoLayerNet` — shallow baseline: a seeded two-layer ReLU network trained with Adam (torch).
- :func:`sample_complexity` — test MSE vs training samples as d grows (rows for `rhm reproduce`, entry R8).
- :func:`samples_needed` — the smallest training size (on a geometric grid) reaching a relative test MSE.
- :func:`all_inputs` — the 2^d points of the cube, for exact population computations at small d.
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from .validation import check_float, check_int

COEFFICIENTS = ("rademacher", "gaussian", "uniform")
LEARNERS = ("layerwise", "shallow", "mlp")


# ------------------------------------------------------------------------------------------------ helpers
def _rng(seed) -> np.random.Generator:
    """A numpy Generator from an int seed, a SeedSequence or a Generator (used as is). No unseeded draws."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer or a numpy Generator (no unseeded draws)")
    return np.random.default_rng(int(seed))


def _check_pm1(x, d: int | None = None, name: str = "x") -> np.ndarray:
    """x as a 2-D array with entries in {-1, +1} (any numeric dtype); d checked when given."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{name} has shape {x.shape}: expected 2 dimensions (n, d)")
    if d is not None and x.shape[1] != d:
        raise ValueError(f"{name} has {x.shape[1]} columns: expected d={d}")
    if x.size and not np.all(np.abs(x) == 1):
        raise ValueError(f"{name} must have entries in {{-1, +1}} only")
    return x


def _check_y(y, n: int) -> np.ndarray:
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
    rng = _rng(seed)
    return (2 * rng.integers(0, 2, size=(n, d), dtype=np.int8) - 1).astype(np.int8)


def _grouped_products(x: np.ndarray, supports: np.ndarray) -> np.ndarray:
    """χ_S(x) for equal-size supports (rows of `supports`, shape (k, q)): int8 (n, k), no Python loop over rows."""
    n = x.shape[0]
    k, q = supports.shape
    if k == 0:
        return np.zeros((n, 0), dtype=np.int8)
    cols = x[:, supports.ravel()].astype(np.int8, copy=False).reshape(n, k, q)
    return np.prod(cols, axis=2, dtype=np.int8)


# ------------------------------------------------------------------------------------------------ the target
class DeepQuadratic:
    """A deep quadratic boolean function on {±1}^d (Definition 31, App. C): f = Σ_k Σ_{S∈S_{2^k}} f̂_S χ_S.

    ``terms`` is an iterable of ``(support, coefficient)`` with 0-based coordinate indices; they are validated
    against Definition 31 (see :meth:`validate_terms`) and stored in a canonical order (by degree, then support).

    Attributes: ``d``; ``levels`` (the largest k with a degree-2^k term); ``supports[k-1]`` an int array
    (n_k, 2^k) of the sorted level-k supports; ``coefficients[k-1]`` their f̂_S (n_k,); ``children[k-1]`` for
    k ≥ 2 an int array (n_k, 2) with the indices of S_1, S_2 among the level-(k-1) supports (S = S_1 ∪ S_2).
    """

    def __init__(self, d: int, terms: Iterable[tuple[Sequence[int], float]]):
        self.d = check_int("d", d, minimum=2)
        self.supports, self.coefficients, self.children = self.validate_terms(self.d, terms)
        self.levels = len(self.supports)

    # ------------------------------------------------------------------ construction
    @staticmethod
    def validate_terms(d: int, terms) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        """Check Definition 31 and return (supports, coefficients, children) per level; ValueError otherwise.

        Every message names the offending term by its position in ``terms`` and the rule it breaks:
        bad support (not integers, out of range, repeated index), zero or non-finite coefficient, repeated
        support, degree not 2^k with k ≥ 1 (rule (a)), two supports of one degree overlapping (rule (b)), a
        degree-q > 2 support that is not the union of two degree-q/2 supports of the function (rule (c)).
        """
        try:
            terms = list(terms)
        except TypeError:
            raise ValueError(f"terms={terms!r} must be an iterable of (support, coefficient) pairs") from None
        if not terms:
            raise ValueError("terms is empty: a deep quadratic function needs at least one degree-2 term")
        by_degree: dict[int, list[tuple[tuple[int, ...], float, int]]] = {}
        seen: dict[tuple[int, ...], int] = {}
        for t, term in enumerate(terms):
            try:
                support, coef = term
            except (TypeError, ValueError):
                raise ValueError(f"term {t} = {term!r} must be a (support, coefficient) pair") from None
            try:
                sup = tuple(support)
            except TypeError:
                raise ValueError(f"term {t}: support {support!r} must be a sequence of coordinate indices") from None
            if not all(isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in sup):
                raise ValueError(f"term {t}: support {support!r} must contain integers only")
            sup = tuple(sorted(int(i) for i in sup))
            bad = [i for i in sup if not 0 <= i < d]
            if bad:
                raise ValueError(f"term {t}: support {sup} has index {bad[0]} outside 0..{d - 1} "
                                 f"(coordinates are 0-based, d={d})")
            if len(set(sup)) != len(sup):
                raise ValueError(f"term {t}: support {tuple(support)} repeats an index (x_i^2 = 1 on {{±1}}^d: "
                                 f"write the reduced monomial)")
            if isinstance(coef, bool) or not isinstance(coef, numbers.Real) or not math.isfinite(float(coef)):
                raise ValueError(f"term {t}: coefficient {coef!r} must be a finite real number")
            if float(coef) == 0.0:
                raise ValueError(f"term {t}: coefficient 0 for support {sup}: Definition 31 lists the nonzero "
                                 f"Fourier terms only; drop the term")
            q = len(sup)
            if q < 2 or q & (q - 1):
                raise ValueError(f"term {t}: support {sup} has degree {q}, breaking Definition 31 (a): degrees "
                                 f"must be 2^k with k >= 1 (2, 4, 8, ...)")
            if sup in seen:
                raise ValueError(f"term {t}: support {sup} already given by term {seen[sup]}; merge the "
                                 f"coefficients into one term")
            seen[sup] = t
            by_degree.setdefault(q, []).append((sup, float(coef), t))

        top = max(by_degree)
        supports, coefficients, children = [], [], []
        owner: dict[int, int] = {}  # coordinate -> index (in canonical order) of the level-(k-1) support owning it
        prev_terms: list[tuple[tuple[int, ...], float, int]] = []
        q, k = 2, 1
        while q <= top:
            level = sorted(by_degree.get(q, []))
            if not level:
                higher = min(p for p in by_degree if p > q)
                sup, _, t = by_degree[higher][0]
                raise ValueError(f"term {t}: support {sup} has degree {higher} but the function has no degree-{q} "
                                 f"term, breaking Definition 31 (c): a degree-{2 * q} support must be the union "
                                 f"of two degree-{q} supports")
            used: dict[int, int] = {}
            for sup, _, t in level:
                for i in sup:
                    if i in used:
                        raise ValueError(f"term {t}: support {sup} overlaps the degree-{q} support of term "
                                         f"{used[i]} at index {i}, breaking Definition 31 (b): supports of the "
                                         f"same degree must be disjoint")
                    used[i] = t
            kids = np.zeros((len(level), 2), dtype=np.int64)
            if q > 2:
                for j, (sup, _, t) in enumerate(level):
                    parts = sorted({owner.get(i, -1) for i in sup})
                    ok = (len(parts) == 2 and -1 not in parts
                          and sorted(prev_terms[parts[0]][0] + prev_terms[parts[1]][0]) == list(sup))
                    if not ok:
                        halves = [prev_terms[p][0] for p in parts if p >= 0]
                        raise ValueError(f"term {t}: support {sup} (degree {q}) is not the union of two degree-{q // 2}"
                                         f" supports of the function, breaking Definition 31 (c); the degree-{q // 2}"
                                         f" supports it meets are {halves}")
                    kids[j] = parts
            supports.append(np.array([s for s, _, _ in level], dtype=np.int64).reshape(len(level), q))
            coefficients.append(np.array([c for _, c, _ in level], dtype=np.float64))
            children.append(kids)
            owner = {i: j for j, (sup, _, _) in enumerate(level) for i in sup}
            prev_terms = level
            q, k = 2 * q, k + 1
        return supports, coefficients, children

    @classmethod
    def example(cls) -> "DeepQuadratic":
        """The paper's example (§4.7, Fig. 3): f = x1x2 + x3x4 + (x1x2)(x3x4) + x5x6 on d = 6 (0-based here)."""
        return cls(6, [((0, 1), 1.0), ((2, 3), 1.0), ((0, 1, 2, 3), 1.0), ((4, 5), 1.0)])

    @classmethod
    def random(cls, d: int, levels: int, *, terms_per_level: Sequence[int] | None = None,
               coefficients: str = "rademacher", seed) -> "DeepQuadratic":
        """A random instance: disjoint random pairs at level 1, random pairings of level-(k-1) terms at level k.

        ``terms_per_level`` (n_1, ..., n_levels) gives the number of degree-2^k terms; it must satisfy
        1 ≤ n_1 ≤ d // 2 and 1 ≤ n_k ≤ n_{k-1} // 2 (rule (b) forces distinct halves). Default: the full tree,
        n_1 = d // 2 and n_k = n_{k-1} // 2 (so the support size is O(d), as the paper notes). Coefficients are
        i.i.d.: "rademacher" ±1, "gaussian" N(0, 1), "uniform" ±U[0.5, 1.5] (bounded away from 0).
        The draw is a function of ``seed`` only (int or numpy Generator).
        """
        d = check_int("d", d, minimum=2)
        levels = check_int("levels", levels, minimum=1)
        if 2**levels > d:
            raise ValueError(f"levels={levels} needs d >= 2**levels = {2**levels} (one degree-{2**levels} "
                             f"support), got d={d}")
        if coefficients not in COEFFICIENTS:
            raise ValueError(f"coefficients={coefficients!r} must be one of {', '.join(COEFFICIENTS)}")
        if terms_per_level is None:
            counts = [d // 2]
            for _ in range(levels - 1):
                counts.append(counts[-1] // 2)
        else:
            counts = [check_int(f"terms_per_level[{i}]", c, minimum=1) for i, c in enumerate(terms_per_level)]
            if len(counts) != levels:
                raise ValueError(f"terms_per_level has {len(counts)} entries: expected levels={levels}")
            if counts[0] > d // 2:
                raise ValueError(f"terms_per_level[0]={counts[0]} exceeds d // 2 = {d // 2} disjoint pairs")
            for i in range(1, levels):
                if counts[i] > counts[i - 1] // 2:
                    raise ValueError(f"terms_per_level[{i}]={counts[i]} exceeds terms_per_level[{i - 1}] // 2 = "
                                     f"{counts[i - 1] // 2}: each degree-{2 ** (i + 1)} term needs two unused "
                                     f"degree-{2 ** i} terms (Definition 31 (b), (c))")
        rng = _rng(seed)
        perm = rng.permutation(d)
        level_sups = [perm[: 2 * counts[0]].reshape(counts[0], 2)]
        for k in range(1, levels):
            prev = level_sups[-1]
            pick = rng.permutation(len(prev))[: 2 * counts[k]].reshape(counts[k], 2)
            level_sups.append(np.concatenate([prev[pick[:, 0]], prev[pick[:, 1]]], axis=1))
        terms = []
        for sups in level_sups:
            if coefficients == "rademacher":
                c = rng.choice(np.array([-1.0, 1.0]), size=len(sups))
            elif coefficients == "gaussian":
                c = rng.standard_normal(len(sups))
            else:
                c = rng.choice(np.array([-1.0, 1.0]), size=len(sups)) * rng.uniform(0.5, 1.5, size=len(sups))
            terms += [(tuple(int(i) for i in s), float(v)) for s, v in zip(sups, c)]
        return cls(d, terms)

    # ------------------------------------------------------------------ accessors
    @property
    def terms(self) -> tuple[tuple[tuple[int, ...], float], ...]:
        """All (support, f̂_S) in canonical order (degree, then support)."""
        return tuple((tuple(int(i) for i in s), float(c))
                     for sups, cs in zip(self.supports, self.coefficients) for s, c in zip(sups, cs))

    def fourier(self) -> dict[tuple[int, ...], float]:
        """The nonzero Fourier coefficients {S: f̂_S} (every other f̂_S, including f̂_∅, is 0)."""
        return dict(self.terms)

    def fourier_coefficient(self, support: Sequence[int]) -> float:
        """f̂_S = E[f(x) χ_S(x)] for any S ⊆ {0, ..., d-1} (0.0 when S is not a term)."""
        return self.fourier().get(tuple(sorted(int(i) for i in support)), 0.0)

    @property
    def variance(self) -> float:
        """Var f(x) = Σ_S f̂_S² under uniform x (Parseval; the mean f̂_∅ is 0)."""
        return float(sum(np.sum(c**2) for c in self.coefficients))

    def level_variance(self, level: int) -> float:
        """Σ_{S∈S_{2^level}} f̂_S²: the part of the variance carried by degree 2^level."""
        level = check_int("level", level, minimum=1)
        return float(np.sum(self.coefficients[level - 1] ** 2)) if level <= self.levels else 0.0

    def characters(self, x) -> list[np.ndarray]:
        """χ_S(x) for the supports of each level: list of int8 arrays (n, n_k), level 1 first."""
        x = _check_pm1(x, self.d)
        return [_grouped_products(x, s) for s in self.supports]

    def __call__(self, x) -> np.ndarray:
        """Exact f(x) for x of shape (n, d) with entries ±1: float64 (n,). Vectorised over rows and terms."""
        x = _check_pm1(x, self.d)
        y = np.zeros(x.shape[0], dtype=np.float64)
        for sups, cs in zip(self.supports, self.coefficients):
            y += _grouped_products(x, sups).astype(np.float64) @ cs
        return y

    evaluate = __call__

    def sample(self, n: int, seed) -> tuple[np.ndarray, np.ndarray]:
        """n i.i.d. uniform inputs and their values: x int8 (n, d), y = f(x) float64 (n,)."""
        x = uniform_inputs(n, self.d, seed)
        return x, self(x)

    def to_dict(self) -> dict:
        return {"d": self.d, "terms": [[list(s), c] for s, c in self.terms]}

    @classmethod
    def from_dict(cls, obj: dict) -> "DeepQuadratic":
        if not isinstance(obj, dict) or "d" not in obj or "terms" not in obj:
            raise ValueError("a DeepQuadratic dict needs keys 'd' and 'terms'")
        return cls(obj["d"], [(tuple(s), c) for s, c in obj["terms"]])

    def __eq__(self, other) -> bool:
        return isinstance(other, DeepQuadratic) and self.d == other.d and self.terms == other.terms

    def __repr__(self) -> str:
        counts = ", ".join(str(len(c)) for c in self.coefficients)
        return f"DeepQuadratic(d={self.d}, levels={self.levels}, terms per level=({counts}))"


# ------------------------------------------------------------------------------------------------ learners
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
        x = _check_pm1(x)
        y = _check_y(y, x.shape[0])
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
        x = _check_pm1(x, self.d_)
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
        return _relative_mse(self.predict(x), _check_y(y, np.asarray(x).shape[0]))

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


def _relative_mse(pred: np.ndarray, y: np.ndarray) -> float:
    var = float(np.var(y))
    mse = float(np.mean((pred - y) ** 2))
    return mse / var if var > 0 else (0.0 if mse == 0 else math.inf)


def krawtchouk_kernel_table(d: int, degree: int) -> np.ndarray:
    """k[h] = Σ_{|S|≤degree} χ_S(x)χ_S(x') for two points at Hamming distance h = 0..d: (d+1,) float64.

    Σ_{|S|=k} χ_S(x)χ_S(x') = K_k(h) = Σ_j (−1)^j C(h, j) C(d−h, k−j), the Krawtchouk polynomial, so this kernel
    is exactly the Gram kernel of all monomials of degree ≤ ``degree`` (k[0] is their number).
    """
    table = np.zeros(d + 1)
    for h in range(d + 1):
        table[h] = sum((-1) ** j * math.comb(h, j) * math.comb(d - h, k - j)
                       for k in range(degree + 1) for j in range(k + 1))
    return table


def n_monomials(d: int, degree: int) -> int:
    """Σ_{k≤degree} C(d, k): the number of monomials of degree ≤ ``degree`` on {±1}^d."""
    return sum(math.comb(d, k) for k in range(min(degree, d) + 1))


class PolynomialRidge:
    """Shallow baseline: ridge regression on all monomials χ_S(x), |S| ≤ ``degree``, of the raw input.

    Computed exactly in the dual with the hypercube kernel k(x, x') = Σ_{|S|≤q} χ_S(x)χ_S(x') (Krawtchouk, see
    :func:`krawtchouk_kernel_table`): α = (K/N + ridge·I)^{-1} y with N = number of monomials, so the cost is
    O(n³) whatever the number of monomials (~d^q/q!). ``ridge`` → 0 is the minimum-norm least-squares fit.
    ``max_samples`` guards memory (the n × n kernel matrix, a few copies of 8·n² bytes).
    It uses no knowledge of the target beyond its maximal degree; it needs n ≈ N samples for a small error.
    """

    name = "shallow"

    def __init__(self, degree: int = 4, ridge: float = 1e-10, chunk_rows: int = 4096, max_samples: int = 30_000):
        self.degree = check_int("degree", degree, minimum=0)
        self.ridge = check_float("ridge", ridge)
        self.chunk_rows = check_int("chunk_rows", chunk_rows, minimum=1)
        self.max_samples = check_int("max_samples", max_samples, minimum=1)

    def _kernel(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        h = np.rint((self.d_ - a @ b.T) / 2).astype(np.intp)
        return self.table_[h]

    def fit(self, x, y) -> "PolynomialRidge":
        import scipy.linalg

        x = _check_pm1(x)
        y = _check_y(y, x.shape[0])
        if x.shape[0] > self.max_samples:
            raise ValueError(f"train size n={x.shape[0]} exceeds max_samples={self.max_samples}: the n × n kernel "
                             f"matrix needs {8 * x.shape[0] ** 2 / 1e9:.1f} GB per copy; raise max_samples if the "
                             f"machine has the memory")
        self.d_ = x.shape[1]
        self.n_features_ = n_monomials(self.d_, self.degree)
        self.table_ = krawtchouk_kernel_table(self.d_, self.degree) / self.n_features_
        self.x_ = x.astype(np.float64)
        K = self._kernel(self.x_, self.x_)
        ridge = max(self.ridge, 1e-14)
        while True:
            try:
                K.flat[:: K.shape[0] + 1] += ridge
                self.alpha_ = scipy.linalg.cho_solve(scipy.linalg.cho_factor(K, lower=True, overwrite_a=True,
                                                                             check_finite=False), y)
                break
            except np.linalg.LinAlgError:  # numerically singular (n ≫ N): raise the jitter
                K = self._kernel(self.x_, self.x_)
                ridge *= 100
        self.ridge_used_ = ridge
        return self

    def predict(self, x) -> np.ndarray:
        if not hasattr(self, "alpha_"):
            raise ValueError("this PolynomialRidge is not fitted yet: call fit(x, y) first")
        x = _check_pm1(x, self.d_).astype(np.float64)
        out = np.empty(x.shape[0])
        for s in range(0, x.shape[0], self.chunk_rows):
            out[s: s + self.chunk_rows] = self._kernel(x[s: s + self.chunk_rows], self.x_) @ self.alpha_
        return out

    def relative_mse(self, x, y) -> float:
        return _relative_mse(self.predict(x), _check_y(y, np.asarray(x).shape[0]))


class TwoLayerNet:
    """Shallow baseline: f(x) = aᵀ relu(W x / sqrt(d) + c) + b0, trained end to end with full-batch Adam on the MSE.

    Seeded (torch.Generator for the initialisation; full-batch, so no data-order randomness); CPU float32.
    ``width`` hidden units, ``epochs`` Adam steps at learning rate ``lr``, ``weight_decay`` (AdamW).
    """

    name = "mlp"

    def __init__(self, width: int = 512, epochs: int = 2000, lr: float = 3e-3, weight_decay: float = 0.0,
                 seed: int = 0):
        self.width = check_int("width", width, minimum=1)
        self.epochs = check_int("epochs", epochs, minimum=1)
        self.lr = check_float("lr", lr)
        self.weight_decay = check_float("weight_decay", weight_decay)
        self.seed = check_int("seed", seed, minimum=0)

    def fit(self, x, y) -> "TwoLayerNet":
        import torch

        x = _check_pm1(x)
        y = _check_y(y, x.shape[0])
        self.d_ = x.shape[1]
        gen = torch.Generator().manual_seed(self.seed)
        d, w = self.d_, self.width
        self.W_ = (torch.randn(w, d, generator=gen)).requires_grad_()
        self.c_ = torch.zeros(w).requires_grad_()
        self.a_ = (torch.randn(w, generator=gen) / math.sqrt(w)).requires_grad_()
        self.b_ = torch.zeros(()).requires_grad_()
        X = torch.as_tensor(x, dtype=torch.float32)
        Y = torch.as_tensor(y, dtype=torch.float32)
        opt = torch.optim.AdamW([self.W_, self.c_, self.a_, self.b_], lr=self.lr, weight_decay=self.weight_decay)
        for _ in range(self.epochs):
            opt.zero_grad(set_to_none=True)
            loss = torch.mean((self._forward(X) - Y) ** 2)
            loss.backward()
            opt.step()
        self.train_mse_ = float(loss.detach())
        return self

    def _forward(self, X):
        import torch

        return torch.relu(X @ self.W_.T / math.sqrt(self.d_) + self.c_) @ self.a_ + self.b_

    def predict(self, x) -> np.ndarray:
        import torch

        if not hasattr(self, "W_"):
            raise ValueError("this TwoLayerNet is not fitted yet: call fit(x, y) first")
        x = _check_pm1(x, self.d_)
        with torch.no_grad():
            return self._forward(torch.as_tensor(x, dtype=torch.float32)).double().numpy()

    def relative_mse(self, x, y) -> float:
        return _relative_mse(self.predict(x), _check_y(y, np.asarray(x).shape[0]))


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


# ------------------------------------------------------------------------------------------------ experiments
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
