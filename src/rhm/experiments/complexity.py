"""Sample complexity: P* (smallest training size with test error <= 0.1 (1 - 1/n_c)), its bootstrap CI, an
adaptive bracket-and-bisect search, power-law fits of P* against n_c m^L, and the step locator of
language-model curves (``locate_steps``: P_l where the curve crosses halfway between two exact plateaus).

P* from a learning curve: average the test error over seeds at each P, take the first P where the mean error is
at or below the threshold, and interpolate linearly in log P between it and the previous size. If the first size
already meets the threshold P* is censored from above (``censored="below"``: P* <= P_min); if no size does, it is
censored from below (``censored="above"``: P* > P_max, value inf).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


def error_threshold(n_classes: int) -> float:
    """The literature's success criterion: test error <= 0.1 (1 - 1/n_c) (a tenth of chance error)."""
    return 0.1 * (1.0 - 1.0 / n_classes)


@dataclass
class PStar:
    """P* with a bootstrap confidence interval [lo, hi]; censored is None, "below" or "above"."""

    value: float
    lo: float
    hi: float
    censored: str | None
    threshold: float
    n_seeds: int
    sizes: list = field(default_factory=list)
    mean_errors: list = field(default_factory=list)

    @property
    def found(self) -> bool:
        return math.isfinite(self.value)

    def fmt(self) -> str:
        if self.censored == "above":
            return f"> {self.sizes[-1]:.4g}" if self.sizes else "not reached"
        if self.censored == "below":
            return f"<= {self.value:.4g}"
        return f"{self.value:.4g} [{self.lo:.4g}, {self.hi:.4g}]"


def crossing(sizes, errors, threshold: float) -> tuple[float, str | None]:
    """First crossing of `threshold` by a curve (sizes ascending), interpolated in log P."""
    sizes = np.asarray(sizes, dtype=float)
    errors = np.asarray(errors, dtype=float)
    below = np.nonzero(errors <= threshold)[0]
    if len(below) == 0:
        return math.inf, "above"
    i = int(below[0])
    if i == 0:
        return float(sizes[0]), "below"
    e0, e1 = errors[i - 1], errors[i]
    l0, l1 = math.log(sizes[i - 1]), math.log(sizes[i])
    t = (e0 - threshold) / (e0 - e1) if e0 != e1 else 1.0
    return float(math.exp(l0 + t * (l1 - l0))), None


def estimate_pstar(sizes, errors, threshold: float, n_boot: int = 1000, ci: float = 0.95, seed: int = 0) -> PStar:
    """P* from runs (sizes[i], errors[i]) with several seeds per size; bootstrap over seeds within each size.

    sizes, errors: flat arrays, one entry per run. The CI is the percentile interval of P* over `n_boot`
    resamples (each size's seed errors drawn with replacement); an infinite bound means that in more than
    (1 - ci)/2 of the resamples the threshold was not reached.
    """
    sizes = np.asarray(sizes, dtype=float)
    errors = np.asarray(errors, dtype=float)
    if sizes.shape != errors.shape or sizes.ndim != 1 or len(sizes) == 0:
        raise ValueError("sizes and errors must be equal-length 1-D arrays with at least one run")
    ok = np.isfinite(errors)
    sizes, errors = sizes[ok], errors[ok]
    grid = np.unique(sizes)
    groups = [errors[sizes == p] for p in grid]
    mean = np.array([g.mean() for g in groups])
    value, cens = crossing(grid, mean, threshold)
    rng = np.random.default_rng(seed)
    boots = np.empty(n_boot)
    for b in range(n_boot):
        m = np.array([g[rng.integers(0, len(g), len(g))].mean() for g in groups])
        boots[b] = crossing(grid, m, threshold)[0]
    a = (1 - ci) / 2
    if n_boot:  # order statistics (no interpolation: bounds may be infinite)
        lo, hi = np.quantile(boots, a, method="lower"), np.quantile(boots, 1 - a, method="higher")
    else:
        lo = hi = value
    n_seeds = int(max(len(g) for g in groups))
    return PStar(value=value, lo=float(lo), hi=float(hi), censored=cens, threshold=threshold, n_seeds=n_seeds,
                 sizes=grid.tolist(), mean_errors=mean.tolist())


# ------------------------------------------------------------------------------------------ LM steps
def locate_steps(sizes, cross_entropies, plateaus, levels=None, n_boot: int = 1000, ci: float = 0.95,
                 seed: int = 0) -> dict:
    """P_l of a language-model learning curve: the size where the test cross-entropy first falls to halfway
    between plateaus l-1 and l (log-interpolated in P), with a bootstrap CI; {l: PStar} for l in `levels`
    (default 1..L).

    sizes, cross_entropies: one entry per run (several seeds or grammars per size). plateaus: the L+1 plateau
    values of l = 0..L (a ``rhm.inference.Plateaus`` or an array), or one row per run (n_runs, L+1) when the
    runs come from different grammars: each run is then read against its own midpoint (its cross-entropy minus
    the midpoint crosses 0), so that grammars with different plateaus pool. The CI resamples the runs within
    each size (``estimate_pstar``); a curve already below the midpoint at the first size is censored "below"
    (P_l <= P_min), one that never reaches it "above" (P_l > P_max, value inf). PStar.threshold is the
    midpoint (the mean of the runs' midpoints with per-run plateaus).
    """
    sizes = np.asarray(sizes, dtype=float)
    ce = np.asarray(cross_entropies, dtype=float)
    if sizes.shape != ce.shape or sizes.ndim != 1 or len(sizes) == 0:
        raise ValueError(f"sizes and cross_entropies must be equal-length 1-D arrays with at least one run, got "
                         f"shapes {sizes.shape} and {ce.shape}")
    pl = np.asarray(getattr(plateaus, "values", plateaus), dtype=float)
    if pl.ndim not in (1, 2) or pl.shape[-1] < 2 or (pl.ndim == 2 and pl.shape[0] != len(sizes)):
        raise ValueError(f"plateaus must hold the L+1 >= 2 values of l = 0..L, as one row (L+1,) or one row per "
                         f"run ({len(sizes)}, L+1); got shape {pl.shape}")
    L = pl.shape[-1] - 1
    levels = list(range(1, L + 1)) if levels is None else [int(lv) for lv in levels]
    for lv in levels:
        if not 1 <= lv <= L:
            raise ValueError(f"levels: {lv} must be in [1, L={L}]")
    out = {}
    for lv in levels:
        mid = (pl[..., lv - 1] + pl[..., lv]) / 2
        if pl.ndim == 1:
            out[lv] = estimate_pstar(sizes, ce, float(mid), n_boot=n_boot, ci=ci, seed=seed)
            continue
        res = estimate_pstar(sizes, ce - mid, 0.0, n_boot=n_boot, ci=ci, seed=seed)
        res.threshold = float(mid.mean())
        out[lv] = res
    return out


# ------------------------------------------------------------------------------------------ scaling fits
@dataclass
class ScalingFit:
    """log y = intercept + slope log x, with a `ci` interval on the slope; prefactor = exp(intercept).

    c_at_slope1: geometric mean of y/x (the C in y ~ C x when the slope is fixed to 1).
    """

    slope: float
    slope_lo: float
    slope_hi: float
    intercept: float
    r2: float
    n: int
    c_at_slope1: float
    ci: float = 0.95

    @property
    def prefactor(self) -> float:
        return math.exp(self.intercept)

    def fmt(self) -> str:
        return (f"slope {self.slope:.3f} [{self.slope_lo:.3f}, {self.slope_hi:.3f}] ({self.n} points), "
                f"C = {self.c_at_slope1:.3g} at slope 1")

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["prefactor"] = self.prefactor
        return {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in d.items()}


def fit_power_law(x, y, ci: float = 0.95, y_lo=None, y_hi=None) -> ScalingFit:
    """Least-squares fit of log y against log x (all values > 0 and finite; at least 2 distinct x).

    With 3+ points the slope CI is Student-t on the residuals. With 2 points it is the range of slopes through
    the corners of the y intervals (y_lo, y_hi) when given, else (-inf, inf).
    """
    from scipy import stats

    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(x) != len(y) or len(x) < 2 or len(np.unique(x)) < 2:
        raise ValueError("fit_power_law needs at least 2 points with distinct x")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and np.all(x > 0) and np.all(y > 0)):
        raise ValueError("fit_power_law needs finite positive x and y")
    lx, ly = np.log(x), np.log(y)
    A = np.vstack([lx, np.ones_like(lx)]).T
    (slope, intercept), *_ = np.linalg.lstsq(A, ly, rcond=None)
    resid = ly - (slope * lx + intercept)
    ss_tot = float(((ly - ly.mean()) ** 2).sum())
    r2 = 1 - float((resid**2).sum()) / ss_tot if ss_tot > 0 else 1.0
    n = len(x)
    if n >= 3:
        se = math.sqrt(float((resid**2).sum()) / (n - 2) / float(((lx - lx.mean()) ** 2).sum()))
        t = stats.t.ppf(0.5 + ci / 2, n - 2)
        lo, hi = slope - t * se, slope + t * se
    elif y_lo is not None and y_hi is not None and np.all(np.isfinite(y_hi)) and np.all(np.asarray(y_lo) > 0):
        (i0, i1) = np.argsort(x)
        dx = lx[i1] - lx[i0]
        lo = (math.log(y_lo[i1]) - math.log(y_hi[i0])) / dx
        hi = (math.log(y_hi[i1]) - math.log(y_lo[i0])) / dx
    else:
        lo, hi = -math.inf, math.inf
    c1 = float(np.exp(np.mean(ly - lx)))
    return ScalingFit(slope=float(slope), slope_lo=float(lo), slope_hi=float(hi), intercept=float(intercept),
                      r2=r2, n=n, c_at_slope1=c1, ci=ci)


# ------------------------------------------------------------------------------------------ adaptive P*
class AdaptiveSearch:
    """Bracket and bisect P* for one learning problem with few evaluations.

    Ask ``next_size()`` for the next training size (None when done), report the seed-averaged test error
    with ``update(P, error)``. Bracketing multiplies (or divides) by `factor` from `start` until the error crosses
    the threshold, clipped to [p_min, p_max]; bisection then halves the bracket geometrically until
    hi/lo <= 1 + rel_tol or `max_steps` sizes were tried. ``result()`` interpolates in log P between the bracket's ends.
    """

    def __init__(self, threshold: float, start: int, p_min: int = 1, p_max: int = 10**12, factor: float = 4.0,
                 rel_tol: float = 0.3, max_steps: int = 10):
        if not p_min <= p_max:
            raise ValueError(f"p_min={p_min} must be <= p_max={p_max}")
        self.threshold, self.factor, self.rel_tol, self.max_steps = threshold, factor, rel_tol, max_steps
        self.p_min, self.p_max = int(p_min), int(p_max)
        self.start = int(min(max(round(start), p_min), p_max))
        self.evals: dict[int, float] = {}
        self.censored: str | None = None

    def _bracket(self):
        ok = sorted(p for p, e in self.evals.items() if e <= self.threshold)
        if not ok:
            return None, None
        hi = ok[0]
        bad = [p for p, e in self.evals.items() if e > self.threshold and p < hi]
        return (max(bad) if bad else None), hi

    @property
    def done(self) -> bool:
        return self.next_size() is None

    def next_size(self) -> int | None:
        if not self.evals:
            return self.start
        if len(self.evals) >= self.max_steps:
            return None
        lo, hi = self._bracket()
        if hi is None:  # everything above threshold: go up
            top = max(self.evals)
            if top >= self.p_max:
                return None
            return int(min(self.p_max, max(top + 1, round(top * self.factor))))
        if lo is None:  # the smallest tried size already succeeds: go down
            if hi <= self.p_min:
                return None
            return int(max(self.p_min, min(hi - 1, round(hi / self.factor))))
        if hi / lo <= 1 + self.rel_tol:
            return None
        mid = int(round(math.sqrt(lo * hi)))
        if mid <= lo or mid >= hi or mid in self.evals:
            return None
        return mid

    def update(self, size: int, error: float) -> None:
        self.evals[int(size)] = float(error)

    def result(self) -> PStar:
        sizes = sorted(self.evals)
        errs = [self.evals[p] for p in sizes]
        lo, hi = self._bracket()
        if hi is None:
            return PStar(math.inf, math.inf, math.inf, "above", self.threshold, 0, sizes, errs)
        if lo is None:
            return PStar(float(hi), 0.0, float(hi), "below", self.threshold, 0, sizes, errs)
        value, _ = crossing([lo, hi], [self.evals[lo], self.evals[hi]], self.threshold)
        return PStar(value, float(lo), float(hi), None, self.threshold, 0, sizes, errs)


def adaptive_pstar(evaluate, threshold: float, start: int, **kwargs) -> PStar:
    """Synchronous adaptive search: evaluate(P) -> seed-averaged test error. The CI is the final bracket."""
    search = AdaptiveSearch(threshold, start, **kwargs)
    while (p := search.next_size()) is not None:
        search.update(p, evaluate(p))
    return search.result()
