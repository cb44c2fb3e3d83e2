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

Modules: ``target`` (the function), ``layerwise`` (the App. C learner), ``shallow`` (the baselines), ``complexity``
(runs and sample counts), ``_cube`` (points, checks and products on {±1}^d shared by the others).
"""

from __future__ import annotations

from .complexity import LEARNERS, fit_growth, make_learner, run_once, sample_complexity, samples_needed
from ._cube import all_inputs, uniform_inputs
from .layerwise import Layer, LayerwiseQuadratic
from .shallow import PolynomialRidge, TwoLayerNet, krawtchouk_kernel_table, n_monomials
from .target import COEFFICIENTS, DeepQuadratic

__all__ = ["COEFFICIENTS", "LEARNERS", "DeepQuadratic", "Layer", "LayerwiseQuadratic", "PolynomialRidge", "TwoLayerNet",
           "all_inputs", "fit_growth", "krawtchouk_kernel_table", "make_learner", "n_monomials", "run_once",
           "sample_complexity", "samples_needed", "uniform_inputs"]
