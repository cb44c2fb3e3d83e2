"""Deep quadratic boolean functions (Definition 31): the target f, random or explicit, exact evaluation and Fourier."""

from __future__ import annotations

import math
import numbers
from typing import Iterable, Sequence

import numpy as np

from .. import limits
from ..validation import check_int

from ._cube import as_rng, check_pm1, grouped_products, uniform_inputs


COEFFICIENTS = ("rademacher", "gaussian", "uniform")


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
        limits.check_boolean_instance(d, levels)  # refuse what cannot fit before drawing
        rng = as_rng(seed)
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
        x = check_pm1(x, self.d)
        return [grouped_products(x, s) for s in self.supports]

    def __call__(self, x) -> np.ndarray:
        """Exact f(x) for x of shape (n, d) with entries ±1: float64 (n,). Vectorised over rows and terms."""
        x = check_pm1(x, self.d)
        y = np.zeros(x.shape[0], dtype=np.float64)
        for sups, cs in zip(self.supports, self.coefficients):
            y += grouped_products(x, sups).astype(np.float64) @ cs
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
