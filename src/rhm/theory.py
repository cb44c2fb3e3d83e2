"""Theorem 7's hyperparameter schedule (Ren, Dandi, Krzakala, Lee 2026, §4.2 / App. A).

All logarithms are natural. C is the paper's unspecified "large universal constant"; the schedule is a
function of it (C=1 by default, so N^(l) is the bare polynomial). |P_l| = Vm (non-ambiguity + (V,m)-uniformity)
and d_y = V (the learned embeddings are label-probability vectors, n_c = V in the theorem).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass


@dataclass
class Schedule:
    """Per-level quantities, dicts keyed by level l in 1..L (l = L is the bottom, trained first)."""

    V: int
    m: int
    s: int
    L: int
    kappa: float
    K_rho: float
    delta: float
    C: float
    eps_star: dict  # target accuracy eps_*^(l) of the layer-l outputs (sec. 4.2)
    rho: dict  # assumed signal gap K_rho m^(-l/2) (Assumption 6b)
    N: dict  # samples at stage l (Theorem 7 proof): C kappa V^2 m^2 s L log^2(Vm kappa/delta) K_rho^-2 m^l
    sigma: dict  # RF bandwidth (Lemma 10 at l = L, proof of Lemma 11 above)
    eps_O: dict  # near-orthogonality target eps_*/(600 |P|^2 kappa sqrt(V))
    eps_S: float  # intra-cluster target 1/(4|P|)
    M_min: dict  # Lemma 10 lower bound on the number of RF pairs (up to its unspecified constant)
    T_min: dict  # Lemma 17 lower bound on the number of GD steps
    lam: float  # ridge 1/|P_l| = 1/(Vm)
    eta: float  # GD step 2/(1 + lam)

    @property
    def total_samples(self) -> float:
        return float(sum(self.N.values()))

    def to_dict(self) -> dict:
        out = asdict(self)
        for key in ("eps_star", "rho", "N", "sigma", "eps_O", "M_min", "T_min"):
            out[key] = {str(k): v for k, v in out[key].items()}
        out["total_samples"] = self.total_samples
        return out


def _positive(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0 or not math.isfinite(value):
        raise ValueError(f"{name}={value!r} must be a finite positive number")
    return float(value)


def bottom_sigma(eps_O: float, rho_tilde: float = math.sqrt(2)) -> float:
    """Lemma 10: sigma^2 = 2 rho~^2 / log(2/eps_O); one-hot tokens have rho~ = sqrt(2)."""
    return math.sqrt(2 * rho_tilde**2 / math.log(2 / eps_O))


def upper_sigma(rho_below: float, V: int, m: int, kappa: float, eps_star: float) -> float:
    """Proof of Lemma 11: sigma^(l)^2 = rho^(l+1)^2 / (2 log(1200 |P_l|^2 kappa sqrt(d_y) / eps_*^(l)))."""
    P = V * m
    return math.sqrt(rho_below**2 / (2 * math.log(1200 * P**2 * kappa * math.sqrt(V) / eps_star)))


def schedule(V, m, s, L, kappa=1.0, K_rho=1.0, delta=0.1, C=1.0) -> Schedule:
    """Theorem 7's schedule for an RHM with vocabulary V (= n_c), m rules, patch size s and depth L."""
    for name, val, lo in (("V", V, 2), ("m", m, 2), ("s", s, 2), ("L", L, 1)):
        if isinstance(val, bool) or not isinstance(val, numbers.Integral) or val < lo:
            raise ValueError(f"{name}={val!r} must be an integer >= {lo}"
                             + (" (the schedule has log m in a denominator)" if name == "m" else ""))
    kappa, K_rho, C = _positive("kappa", kappa), _positive("K_rho", K_rho), _positive("C", C)
    delta = _positive("delta", delta)
    if delta >= 1:
        raise ValueError(f"delta={delta} must be in (0, 1)")
    P = V * m
    lam = 1.0 / P
    eps_S = 1.0 / (4 * P)
    levels = range(1, L + 1)
    eps_star = {lv: K_rho * m ** (-lv / 2) / math.sqrt(C * V**2 * m**2 * s * L * math.log(m)) for lv in levels}
    rho = {lv: K_rho * m ** (-lv / 2) for lv in levels}
    N = {lv: C * kappa * V**2 * m**2 * s * L * math.log(V * m * kappa / delta) ** 2 * K_rho**-2 * m**lv
         for lv in levels}
    eps_O = {lv: eps_star[lv] / (600 * P**2 * kappa * math.sqrt(V)) for lv in levels}
    sigma, M_min, T_min = {}, {}, {}
    for lv in levels:
        if lv == L:
            sigma[lv], rho_t = bottom_sigma(eps_O[lv]), math.sqrt(2)
        else:
            sigma[lv], rho_t = upper_sigma(rho[lv + 1], V, m, kappa, eps_star[lv]), rho[lv + 1] / 2
        d_in = s * V
        e = min(eps_O[lv] ** 2, eps_S**4)
        M_min[lv] = d_in / e * math.log(d_in * math.log(2 / eps_O[lv]) / (rho_t**2 * e * delta))
        T_min[lv] = P * math.log(100 * P * kappa * math.sqrt(V) / eps_star[lv])
    return Schedule(V=V, m=m, s=s, L=L, kappa=kappa, K_rho=K_rho, delta=delta, C=C, eps_star=eps_star, rho=rho,
                    N=N, sigma=sigma, eps_O=eps_O, eps_S=eps_S, M_min=M_min, T_min=T_min, lam=lam,
                    eta=2 / (1 + lam))
