"""Theorem 7's hyperparameter schedule (Ren, Dandi, Krzakala, Lee 2026, §4.2 / App. A.3).

All logarithms are natural. C is the paper's unspecified "large universal constant". By default the schedule
uses the smallest C for which Lemma 11's chaining condition holds at every level (see `smallest_C`); a C that
breaks it gets a warning. |P_l| = Vm (non-ambiguity + (V,m)-uniformity) and d_y = V (the learned embeddings are
label-probability vectors, n_c = V in the theorem).

**The slip in Lemma 10.** The lemma sets sigma^2 <= 2 rho~^2 / log(2/eps_O) and its proof needs
exp(-rho~^2 / (2 sigma^2)) <= eps_O / 2 (the kernel of two patches at distance >= rho~, minus the random-feature
error eps_O/2). With the stated sigma the value is (eps_O/2)^(1/4) (0.15 at eps_O = 1e-3), not eps_O/2. The
condition that delivers the claim is sigma^2 <= rho~^2 / (2 log(2/eps_O)), 4x smaller. The proof of Lemma 11
repeats the slip above the bottom: sigma^(l)^2 = rho^(l+1)^2 / (2 log(2/eps_O^(l))) is the stated Lemma 10 with
rho~ = rho^(l+1)/2 (2/eps_O^(l) = 1200 |P_l|^2 kappa sqrt(d_y) / eps_*^(l)); the corrected value is
rho^(l+1)^2 / (8 log(2/eps_O^(l))). `sigma_rule="paper"` is the formula as printed, "corrected" the one that
proves the lemma. The learner's default (`DEFAULT_SIGMA_RULE`) was chosen by measurement:
docs/paper_fidelity.md.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

from .validation import check_choice, check_float, check_int

SIGMA_RULES = ("paper", "corrected")
DEFAULT_SIGMA_RULE = "paper"
# Appendix A.3: N^(l) <= 20 C kappa V^2 m^2 s L log^2(Vm kappa / delta) K_rho^-2 m^l (the 20 is Lemma 11's).
N_FACTOR = 20
# Lemma 11's chaining condition: eps_*^(l+1) <= rho^(l+1) / sqrt(CHAIN_FACTOR V^2 m^2 s log(V m kappa / eps_*^(l))).
CHAIN_FACTOR = 2000


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
    C_min: float  # smallest C meeting Lemma 11's chaining condition at every level (0: any C, i.e. L = 1)
    sigma_rule: str  # "paper" (Lemma 10 as printed) or "corrected" (the condition its proof needs)
    eps_star: dict  # target accuracy eps_*^(l) of the layer-l outputs (sec. 4.2)
    rho: dict  # assumed signal gap K_rho m^(-l/2) (Assumption 6b)
    N: dict  # samples at stage l (App. A.3): 20 C kappa V^2 m^2 s L log^2(Vm kappa/delta) K_rho^-2 m^l
    sigma: dict  # RF bandwidth (Lemma 10 at l = L, proof of Lemma 11 above)
    eps_O: dict  # near-orthogonality target eps_*/(600 |P|^2 kappa sqrt(V))
    eps_S: float  # intra-cluster target 1/(4|P|)
    M_min: dict  # Lemma 10 lower bound on the number of RF pairs (up to its unspecified constant)
    T_min: dict  # Lemma 17 lower bound on the number of GD steps
    chaining_ok: dict  # l in 1..L-1: Lemma 11's condition linking eps_*^(l+1) to eps_*^(l) holds at this C
    lam: float  # ridge 1/|P_l| = 1/(Vm)
    eta: float  # GD step 2/(1 + lam)

    @property
    def total_samples(self) -> float:
        return float(sum(self.N.values()))

    def to_dict(self) -> dict:
        out = asdict(self)
        for key in ("eps_star", "rho", "N", "sigma", "eps_O", "M_min", "T_min", "chaining_ok"):
            out[key] = {str(k): v for k, v in out[key].items()}
        out["total_samples"] = self.total_samples
        out["N_factor"] = N_FACTOR
        return out


def lemma10_sigma(rho_tilde: float, eps_O: float, rule: str = DEFAULT_SIGMA_RULE) -> float:
    """Lemma 10's RF bandwidth for clusters rho~ apart: "paper" sigma^2 = 2 rho~^2 / log(2/eps_O) (as printed),
    "corrected" sigma^2 = rho~^2 / (2 log(2/eps_O)) (what makes exp(-rho~^2/2sigma^2) = eps_O/2)."""
    check_choice("sigma_rule", rule, SIGMA_RULES)
    check_float("eps_O", eps_O, 0.0, strict=True, maximum=2.0)
    log = math.log(2 / eps_O)
    return math.sqrt((2 * rho_tilde**2 / log) if rule == "paper" else (rho_tilde**2 / (2 * log)))


def bottom_sigma(eps_O: float, rho_tilde: float = math.sqrt(2), rule: str = DEFAULT_SIGMA_RULE) -> float:
    """Lemma 10 at the bottom: one-hot tokens are rho~ = sqrt(2) apart."""
    return lemma10_sigma(rho_tilde, eps_O, rule)


def upper_sigma(rho_below: float, V: int, m: int, kappa: float, eps_star: float,
                rule: str = DEFAULT_SIGMA_RULE) -> float:
    """Proof of Lemma 11: Lemma 10 with rho~ = rho^(l+1)/2 and eps_O = eps_O^(l); "paper" gives the printed
    sigma^(l)^2 = rho^(l+1)^2 / (2 log(1200 |P_l|^2 kappa sqrt(d_y) / eps_*^(l)))."""
    return lemma10_sigma(rho_below / 2, eps_O(eps_star, V * m, kappa, V), rule)


def eps_O(eps_star: float, P: float, kappa: float, d_y: float) -> float:
    """Lemma 17's near-orthogonality target eps_O = eps_* / (600 |P_l|^2 kappa sqrt(d_y))."""
    return eps_star / (600 * P**2 * kappa * math.sqrt(d_y))


def _eps_star(V, m, s, L, K_rho, C, level):
    return K_rho * m ** (-level / 2) / math.sqrt(C * V**2 * m**2 * s * L * math.log(m))


def chaining_slack(V, m, s, L, kappa, K_rho, C, level) -> float:
    """rho^(l+1) / sqrt(2000 V^2 m^2 s log(V m kappa / eps_*^(l))) - eps_*^(l+1): >= 0 iff Lemma 11's chaining
    condition holds between levels l+1 and l (l in 1..L-1) with eps_* of sec. 4.2 at this C."""
    eps_l = _eps_star(V, m, s, L, K_rho, C, level)
    log = math.log(V * m * kappa / eps_l)
    if log <= 0:  # eps_*^(l) > V m kappa: outside the lemma's range (eps_* < 0.1), never chosen in practice
        return -math.inf
    rho_next = K_rho * m ** (-(level + 1) / 2)
    return rho_next / math.sqrt(CHAIN_FACTOR * V**2 * m**2 * s * log) - _eps_star(V, m, s, L, K_rho, C, level + 1)


def smallest_C(V, m, s, L, kappa=1.0, K_rho=1.0) -> float:
    """Smallest C such that Lemma 11's chaining condition holds at every level for every C' >= C (0 if L = 1).

    With sec. 4.2's eps_*, eps_*^(l+1)/rho^(l+1) = (C V^2 m^2 s L log m)^(-1/2), so the condition reads
    C L log m >= 2000 log(V m kappa / eps_*^(l)(C)): linear in C on the left, logarithmic on the right; the
    slack is increasing for C > 1000 / (L log m), where the largest root is found by bisection.
    """
    best = 0.0
    for level in range(1, L):
        lo = 1000 / (L * math.log(m))
        if chaining_slack(V, m, s, L, kappa, K_rho, lo, level) >= 0:
            continue
        hi = lo * 2
        while chaining_slack(V, m, s, L, kappa, K_rho, hi, level) < 0:
            hi *= 2
        for _ in range(200):
            mid = math.sqrt(lo * hi)
            lo, hi = (mid, hi) if chaining_slack(V, m, s, L, kappa, K_rho, mid, level) < 0 else (lo, mid)
            if hi / lo < 1 + 1e-12:
                break
        best = max(best, hi)
    return best


def schedule(V, m, s, L, kappa=1.0, K_rho=1.0, delta=0.1, C=None, sigma_rule=DEFAULT_SIGMA_RULE) -> Schedule:
    """Theorem 7's schedule for an RHM with vocabulary V (= n_c), m rules, patch size s and depth L.

    C=None uses `smallest_C` (Lemma 11's chaining condition at every level); an explicit C that breaks the
    condition at some level gives a RuntimeWarning and `chaining_ok[l] = False`.
    """
    V, m, s, L = check_int("V", V, 2), check_int("m", m, 2), check_int("s", s, 2), check_int("L", L, 1)
    kappa = check_float("kappa", kappa, 0.0, strict=True)
    K_rho = check_float("K_rho", K_rho, 0.0, strict=True)
    delta = check_float("delta", delta, 0.0, strict=True, maximum=1.0)
    check_choice("sigma_rule", sigma_rule, SIGMA_RULES)
    C_min = smallest_C(V, m, s, L, kappa, K_rho)
    C = (C_min if C_min > 0 else 1.0) if C is None else check_float("C", C, 0.0, strict=True)
    P = V * m
    lam = 1.0 / P
    eps_S = 1.0 / (4 * P)
    levels = range(1, L + 1)
    eps_star = {lv: _eps_star(V, m, s, L, K_rho, C, lv) for lv in levels}
    rho = {lv: K_rho * m ** (-lv / 2) for lv in levels}
    N = {lv: N_FACTOR * C * kappa * V**2 * m**2 * s * L * math.log(V * m * kappa / delta) ** 2 * K_rho**-2 * m**lv
         for lv in levels}
    eps_o = {lv: eps_O(eps_star[lv], P, kappa, V) for lv in levels}
    chaining_ok = {lv: chaining_slack(V, m, s, L, kappa, K_rho, C, lv) >= 0 for lv in range(1, L)}
    broken = [lv for lv, ok in chaining_ok.items() if not ok]
    if broken:
        warnings.warn(f"C={C:g} breaks Lemma 11's chaining condition at level(s) {broken}; the smallest C that "
                      f"meets it at every level is {C_min:.4g}", RuntimeWarning, stacklevel=2)
    sigma, M_min, T_min = {}, {}, {}
    for lv in levels:
        rho_t = math.sqrt(2) if lv == L else rho[lv + 1] / 2  # one-hot tokens; Lemma 11's separation bound
        sigma[lv] = lemma10_sigma(rho_t, eps_o[lv], sigma_rule)
        d_in = s * V
        e = min(eps_o[lv] ** 2, eps_S**4)
        M_min[lv] = d_in / e * math.log(d_in * math.log(2 / eps_o[lv]) / (rho_t**2 * e * delta))
        T_min[lv] = P * math.log(100 * P * kappa * math.sqrt(V) / eps_star[lv])
    return Schedule(V=V, m=m, s=s, L=L, kappa=kappa, K_rho=K_rho, delta=delta, C=C, C_min=C_min,
                    sigma_rule=sigma_rule, eps_star=eps_star, rho=rho, N=N, sigma=sigma, eps_O=eps_o, eps_S=eps_S,
                    M_min=M_min, T_min=T_min, chaining_ok=chaining_ok, lam=lam, eta=2 / (1 + lam))
