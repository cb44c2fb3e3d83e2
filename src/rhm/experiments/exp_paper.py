"""R1-R3: the grammar's exact facts (R1), the signal gaps of Assumption 6 (R2), the paper's learner against
Theorem 7's schedule (R3)."""

from __future__ import annotations

import math

import numpy as np

from . import plots
from .analysis import PARSE_HEADERS, fmt, grammar_name, no_runs, parse_rows, pstar_section, train_frame
from .complexity import fit_power_law
from .experiment import Experiment, check_mode
from .sweep import Adaptive, GrammarGrid, LearnerSpec, Sizes, Sweep
from .verdicts import Section, combine, exact_verdict, interval_verdict


def theorem7_schedule(spec):
    """Theorem 7's sample schedule (rhm.theory.Schedule) for a grammar, with its exact κ and K_ρ (oracle).

    N^(l) carries App. A.3's factor 20 and the grammar's smallest C meeting Lemma 11's chaining condition
    (``schedule.C_min``); None for a grammar without a schedule (ρ^(l) = 0 at some level, κ infinite).
    """
    from .. import oracle, theory
    g = spec.build()
    v, m, s_, L, n_c = g.v, g.m, g.s, g.L, g.n_classes
    gaps = oracle.signal_gaps(g)
    k_rho = gaps.K_rho(m)
    if not (math.isfinite(gaps.kappa) and math.isfinite(k_rho) and k_rho > 0) or m < 2 or n_c != v:
        return None
    return theory.schedule(v, m, s_, L, kappa=gaps.kappa, K_rho=k_rho)


def theorem7_samples(spec) -> float | None:
    """Theorem 7's total Σ_l N^(l) for a grammar at its smallest valid C (see :func:`theorem7_schedule`)."""
    sched = theorem7_schedule(spec)
    return float(sched.total_samples) if sched is not None else None


# ============================================================================================ R1
R1_GRIDS = {
    "quick": dict(grammars=[GrammarGrid(v=[4, 8], m="v", s=2, L=[2, 3, 4]),
                            GrammarGrid(v=[4, 8], m="v", s=3, L=[2, 3])], seeds=[0], parse_n=20000),
    "full": dict(grammars=[GrammarGrid(v=[4, 8], m="v", s=[2, 3], L=[2, 3, 4])], seeds=[0, 1], parse_n=100000),
}


def runs_R1(mode):
    p = R1_GRIDS[check_mode(mode)]
    return [Sweep(name=f"{mode}-R1-parse", task="parse", grammars=p["grammars"], seeds=p["seeds"],
                  extras={"parse_n": p["parse_n"], "enumerate_max": 200000})]


def analyze_R1(exp, store, mode, out_dir) -> Section:
    s = exp.section()
    rows = store.rows(sweep=f"{mode}-R1-parse")
    if not rows:
        s.verdict, s.numbers = "inconclusive", "no finished runs"
        return s
    m = [r["metrics"] for r in rows]
    enumerated = [x for x in m if x.get("count_matches") is not None]
    ok_count = all(x["count_matches"] for x in enumerated)
    rec = min(x["parse_recovery"] for x in m)
    conflicts = sum(x["conflicting_labels"] for x in m)
    s.verdict = exact_verdict(ok_count and rec == 1.0 and conflicts == 0)
    s.numbers = (f"{len(rows)} grammars; exact count matched in {sum(x['count_matches'] for x in enumerated)}/"
                 f"{len(enumerated)} enumerated; parse recovery min {rec:.4f}; inputs with 2 labels: {conflicts}")
    s.blocks = [("table", PARSE_HEADERS, parse_rows(rows))]
    return s


R1 = Experiment(
    id="R1", title="Label determinism and exact parse",
    law="P_max = n_c·m^((s^L−1)/(s−1)) distinct inputs; each input has one label; the bottom-up parse recovers "
        "it (100%)",
    runs=runs_R1, analyze=analyze_R1)


# ============================================================================================ R2
R2_GRIDS = {
    "quick": dict(grammars=[GrammarGrid(v=32, m=[2, 3, 4, 6, 8], s=2, L=3, rules="balanced", seed=[0, 1, 2, 3])]),
    "full": dict(grammars=[GrammarGrid(v=[32, 64], m=[2, 3, 4, 6, 8, 12, 16], s=2, L=4, rules="balanced",
                                       seed=list(range(8)))]),
}


def runs_R2(mode):
    return [Sweep(name=f"{mode}-R2-gaps", task="gaps", grammars=R2_GRIDS[check_mode(mode)]["grammars"],
                  seeds=[0])]


def analyze_R2(exp, store, mode, out_dir) -> Section:
    s = exp.section()
    rows = store.rows(sweep=f"{mode}-R2-gaps")
    if not rows:
        s.numbers = "no finished runs"
        return s
    levels = sorted({int(lv) for r in rows for lv in r["metrics"]["rho"]})
    tab, checks, parts = [], [], []
    t = exp.thresholds
    rho1 = [r["metrics"]["rho"].get("1") for r in rows]
    rho1_exact = all(x is not None and abs(x - math.sqrt(2)) < 1e-9 for x in rho1)
    ks = [r["metrics"]["K_rho"] or 0.0 for r in rows]
    k_med, degenerate = float(np.median(ks)), sum(1 for k in ks if k <= 1e-12)
    for lv in levels:
        pts = [(r["m"], r["metrics"]["rho"][str(lv)]) for r in rows if r["metrics"]["rho"].get(str(lv))]
        if len({p[0] for p in pts}) < 2:
            continue
        fit = fit_power_law([p[0] for p in pts], [p[1] for p in pts])
        target = -lv / 2
        ratio = np.array([p[1] * p[0] ** (lv / 2) for p in pts])
        if lv >= 2:
            checks.append(interval_verdict(fit.slope_lo, fit.slope_hi, accept_lo=target - t["slope_margin"]))
            parts.append(f"l={lv}: ρ ∝ m^{fit.slope:.2f} (bound m^{target:g})")
        tab.append([lv, fmt(fit.slope), f"[{fmt(fit.slope_lo)}, {fmt(fit.slope_hi)}]", fmt(target),
                    f"{fmt(ratio.min())} – {fmt(ratio.max())}", len(pts)])
    checks += [exact_verdict(k_med >= t["K_rho_median_min"]), exact_verdict(rho1_exact)]
    s.verdict = combine(checks)
    s.numbers = ("; ".join(parts) + f"; K_ρ = min_l ρ^(l)·m^(l/2): median {k_med:.2f} over {len(ks)} grammars "
                 f"({degenerate} degenerate, ρ = 0); "
                 f"ρ^(1) = √2 in "
                 f"{sum(1 for x in rho1 if x and abs(x - 2**0.5) < 1e-9)}/{len(rho1)}")
    s.blocks.append(("p", f"{len(rows)} random grammars ({rows[0]['rules']} rules, v = "
                          f"{sorted({r['v'] for r in rows})}, L = {sorted({r['L'] for r in rows})}, "
                          f"m = {sorted({r['m'] for r in rows})}). Fits of log ρ^(l) against log m per level. The law "
                          "(the paper's lower bound) holds when no level decays faster than m^(−l/2) (slope ≥ "
                          f"−l/2 − {t['slope_margin']}) and the median over grammars of K_ρ = min_l ρ^(l)·m^(l/2) is ≥ "
                          f"{t['K_rho_median_min']} (a grammar with two "
                          "non-synonymous patches of identical posterior, ρ = 0, is counted as degenerate). On this "
                          "range "
                          "the measured decay is slower than the bound: the bound is not tight."))
    s.blocks.append(("table", ["level l", "slope of log ρ^(l) vs log m", "95% CI", "law −l/2",
                               "ρ^(l)·m^(l/2) range", "grammars"], tab))
    flat = [{"m": r["m"], "rho": r["metrics"]["rho"]} for r in rows]
    f = plots.signal_gaps(flat, out_dir / "R2-gaps.png", "R2: exact signal gaps ρ^(l) vs m^(−l/2)")
    s.blocks.append(("fig", f.name, "Each point is one level of one random grammar: the exact signal gap ρ^(l) "
                     "against m^(−l/2). Levels l ≥ 2 run parallel to the dashed line ρ = m^(−l/2) (the law); "
                     "level 1 sits at √2 because first-patch posteriors at level 1 are one-hot."))
    return s


R2 = Experiment(
    id="R2", title="Signal gaps ρ^(l) vs m^(−l/2)",
    law="Assumption 6(b): ρ^(l) ≥ K_ρ·m^(−l/2) with K_ρ bounded away from 0 as m grows, i.e. ρ^(l) decays no "
        "faster than m^(−l/2) (fitted exponent of log ρ^(l) vs log m ≥ −l/2); ρ^(1) = √2 exactly",
    runs=runs_R2, analyze=analyze_R2,
    # the CI of each level's exponent must lie above −l/2 − slope_margin; median K_ρ over grammars
    thresholds={"slope_margin": 0.1, "K_rho_median_min": 0.25})


# ============================================================================================ R3
R3_GRIDS = {
    # Theorem 7's Σ N^(l) spans 4.7e11..8e12 over the grammars where P* is found (m = 2, L = 3 has P_max = 1024,
    # too few inputs beside 2,000 test inputs: censored, kept as run). Grammar seeds with ρ^(l) = 0 at some level
    # (no schedule; most m = 2 ones) are skipped, chosen on ρ, not on any P*. Held-out: the grid was designed on
    # seeds m = 2, L = 3: 1, 6; m = 3..5, L = 3: 0, 1; m = 2, L = 4: 7, 13; m = 3, L = 4: 0 (and m = 6: 2, 3,
    # P* > 2.5e5, too costly); the seeds below were not run before the verdict was read
    "quick": dict(grammars=[GrammarGrid(v=8, m=2, s=2, L=3, rules="balanced", seed=[7, 11]),
                            GrammarGrid(v=8, m=[3, 4, 5], s=2, L=3, rules="balanced", seed=[2, 3, 4]),
                            GrammarGrid(v=8, m=2, s=2, L=4, rules="balanced", seed=[11, 16]),
                            GrammarGrid(v=8, m=3, s=2, L=4, rules="balanced", seed=[1, 2])],
                  params={"width": 1024, "diagnostics": False}, seeds=[0, 1],
                  adaptive=Adaptive(start=24.0, factor=2.5, rel_tol=0.25, max_steps=7)),
    "full": dict(grammars=[GrammarGrid(v=8, m=[3, 4, 6, 8], s=2, L=3, rules="balanced"),
                           GrammarGrid(v=8, m=[3, 4], s=2, L=4, rules="balanced")],
                 params={}, seeds=[0, 1, 2], adaptive=Adaptive(start=24.0, factor=2.5, rel_tol=0.2, max_steps=10)),
}


def runs_R3(mode):
    q = R3_GRIDS[check_mode(mode)]
    return [Sweep(name=f"{mode}-R3-chaining", grammars=q["grammars"],
                  learners=[LearnerSpec("chaining", params=dict(q["params"]))], sizes=Sizes(unit="ncmL", values=[1]),
                  seeds=q["seeds"], test_size=2000, adaptive=q["adaptive"])]


def analyze_R3(exp, store, mode, out_dir) -> Section:
    s = exp.section()
    df = train_frame(store, f"{mode}-R3-chaining")
    if df is None:
        return no_runs(s)
    def per_unit_c(p):  # the quantity the verdict is on: Theorem 7's Σ N^(l) per unit C (NaN: no schedule)
        sc = theorem7_schedule(p["grammar"])
        return sc.total_samples / sc.C if sc is not None else math.nan

    pts, fits = pstar_section(s, df, out_dir, "R3", xname="Σ N^(l)/C (Theorem 7, samples)", xfun=per_unit_c)
    s.blocks.insert(0, ("p", "Adaptive bracket-and-bisect search of P* for the chaining learner (defaults but for "
                             "the grid's width and no diagnostics) at fixed v, varying m and L; each size is run "
                             "for every seed, P* is interpolated in log P, CI by bootstrap over seeds."))
    found = [p for p in pts if p["censored"] is None]
    sched = {p["grammar"]: theorem7_schedule(p["grammar"]) for p in found}
    tpts = [p for p in found if sched[p["grammar"]] is not None]
    # the law is a proportionality at one constant C: Σ N^(l) per unit C (the slope does not depend on which C);
    # the table gives Σ N^(l) at each grammar's own smallest valid C, which varies across grammars
    per_c = {gk: sc.total_samples / sc.C for gk, sc in sched.items() if sc is not None}
    m_l = {p["grammar"]: float(p["grammar"].m ** p["grammar"].L) for p in found}
    rows = [[grammar_name(p["grammar"]), fmt(p["pstar"]), fmt(m_l[p["grammar"]]), fmt(p["pstar"] / m_l[p["grammar"]]),
             fmt(sched[p["grammar"]].C) if sched[p["grammar"]] else "— (no schedule: ρ = 0)",
             fmt(sched[p["grammar"]].total_samples) if sched[p["grammar"]] else "—",
             fmt(p["pstar"] / sched[p["grammar"]].total_samples) if sched[p["grammar"]] else "—"] for p in found]
    over = [sched[p["grammar"]].total_samples / p["pstar"] for p in tpts]
    s.blocks.append(("p", "Theorem 7's schedule N^(l) = 20 C κ V² m² s L log²(Vmκ/δ) K_ρ⁻² m^l (App. A.3, with its "
                          "factor 20) at the smallest C meeting Lemma 11's chaining condition for that grammar "
                          "(exact κ, K_ρ from the oracle; δ = 0.1)"
                          + (f": the theorem's sufficient sample size is {min(over):.1e}–{max(over):.1e} times the "
                             "measured P*" if over else "")
                          + ". The slope is fitted against Σ N^(l)/C (one C for all grammars)."))
    s.blocks.append(("table", ["grammar", "P*", "m^L", "P*/m^L", "smallest valid C", "Theorem 7 Σ N^(l) at that C",
                               "P*/Σ N^(l)"], rows))
    if len({per_c[p["grammar"]] for p in tpts}) < 2:
        s.numbers = f"P* found for {len(found)}/{len(pts)} grammars: no fit"
        return s
    tfit = fit_power_law([per_c[p["grammar"]] for p in tpts], [p["pstar"] for p in tpts],
                         y_lo=[p["lo"] for p in tpts], y_hi=[p["hi"] for p in tpts])
    s.numbers = (f"slope of log P* vs log Σ N^(l) (Theorem 7, fixed C) {tfit.slope:.2f} [{tfit.slope_lo:.2f}, "
                 f"{tfit.slope_hi:.2f}] over {len(tpts)} grammars; P*/Σ N^(l) at the smallest valid C: "
                 + ", ".join(f"{p['pstar'] / sched[p['grammar']].total_samples:.1e}" for p in tpts)
                 + f"; P* found for {len(found)}/{len(pts)} grammars")
    tol = exp.thresholds["slope_tol"]
    s.verdict = interval_verdict(tfit.slope_lo, tfit.slope_hi, 1 - tol, 1 + tol)
    return s


R3 = Experiment(
    id="R3", title="The paper's learner (chaining): samples ∝ m^L",
    law="P*(chaining) follows Theorem 7's schedule Σ_l N^(l) ∝ κ V² m² s L log²(Vmκ/δ) K_ρ^(−2) m^L up to a "
        "constant (one C for all grammars): the 95% CI of the slope of log P* vs log Σ N^(l) lies within 1 ± 0.3, "
        "i.e. samples ∝ m^L times the theorem's slowly varying factors",
    runs=runs_R3, analyze=analyze_R3, requires=("chaining",), thresholds={"slope_tol": 0.3})
