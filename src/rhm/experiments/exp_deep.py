"""R4-R7 and R9: the deep learners on one grid of grammars: the CNN's P* (R4), k-means against n_c (R5), shallow vs
deep (R6), the synonymic sensitivities (R7), chaining+ against the baselines (R9)."""

from __future__ import annotations

import math

import numpy as np

from . import plots
from .analysis import fmt, grammar_key, grammar_name, no_runs, pstar_points, pstar_section, scaling_fits, train_frame
from .complexity import fit_power_law
from .experiment import Experiment, check_mode
from .sweep import Adaptive, GrammarGrid, LearnerSpec, Sizes, Sweep
from .verdicts import HELD, INCONCLUSIVE, NOT_HELD, Section, combine, exact_verdict, interval_verdict


CNN_WD0 = "cnn (wd=0)"  # R9's second CNN: no weight decay (the default collapses at m = 8, L = 3)


# ------------------------------------------------------------------- the deep-learner grid (R4, R5, R6, R7, R9)
DEEP = {
    # On grammar seed 0 of v = 4, 5, 6, 8 (the design grammars) P* lay between 1 and 2.5 n_c·m^L: the sizes
    # bracket it more finely and stop at 2.5 instead of 4 n_c·m^L (the costliest CNN runs); five held-out grammars
    # (seed 1) and two seeds for the slope's CI (three until R4, R5 and LM2 were cut to bring `make demo` under
    # 10 min; chosen on cost, before the cut grid was run)
    "quick": dict(grammars=[GrammarGrid(v=[4, 5, 6, 7, 8], m="v", s=2, L=2, seed=1)], values=[0.5, 1, 1.5, 2.5],
                  seeds=[0, 1], test_size="auto", sens_n=256),
    "full": dict(grammars=[GrammarGrid(v=[4, 6, 8, 12, 16], m="v", s=2, L=2),
                           GrammarGrid(v=[4, 6, 8], m="v", s=2, L=3)],
                 values=[0.125, 0.25, 0.5, 1, 2, 4, 8, 16], seeds=[0, 1, 2, 3], test_size="auto", sens_n=1024),
}


def deep_sweep(mode, name, learners, grammars=None) -> Sweep:
    """A grid sweep of `learners` on the deep grid of `mode`, with every level's sensitivities."""
    p = DEEP[check_mode(mode)]
    return Sweep(name=name, grammars=grammars or p["grammars"], learners=[LearnerSpec(n) for n in learners],
                 sizes=Sizes(unit="ncmL", values=p["values"]), seeds=p["seeds"], test_size=p["test_size"],
                 extras={"sensitivity_levels": "all", "sensitivity_n": p["sens_n"]})


# ============================================================================================ R4
def runs_R4(mode):
    return [deep_sweep(mode, f"{mode}-R4-cnn", ["cnn"])]


def analyze_R4(exp, store, mode, out_dir) -> Section:
    s = exp.section()
    df = train_frame(store, f"{mode}-R4-cnn")
    if df is None:
        return no_runs(s)
    pts, fits = pstar_section(s, df, out_dir, "R4")
    f = plots.collapse(df, out_dir / "R4-collapse.png", "R4: CNN test error vs P/(n_c·m^L)")
    s.blocks.append(("fig", f.name, "CNN learning curves against P/(n_c·m^L), error relative to chance: the curves "
                     "of different grammars collapse when P* ∝ n_c·m^L."))
    fit = fits.get("cnn")
    if fit is None:
        s.numbers = f"P* found for {sum(p['censored'] is None for p in pts)}/{len(pts)} grammars: no fit"
        return s
    s.numbers = f"slope {fit.slope:.2f} [{fit.slope_lo:.2f}, {fit.slope_hi:.2f}], C = {fit.c_at_slope1:.2f}"
    tol = exp.thresholds["slope_tol"]
    s.verdict = interval_verdict(fit.slope_lo, fit.slope_hi, 1 - tol, 1 + tol)
    return s


R4 = Experiment(
    id="R4", title="End-to-end CNN: P* ≈ C·n_c·m^L",
    law="P*(CNN) ≈ C·n_c·m^L: the 95% CI of the slope of log P* vs log(n_c·m^L) lies within 1 ± 0.25, C = O(1)",
    runs=runs_R4, analyze=analyze_R4, requires=("cnn",), thresholds={"slope_tol": 0.25})


# ============================================================================================ R5
# v, m, L fixed, n_c varied (uniform rules: balanced ones need n_c = v); P* by adaptive search (k-means is cheap).
# n_c·m <= v^s caps n_c at 16. Held-out: the grid was designed on grammar seeds 0-3; the verdict uses seeds 4-9
R5_GRIDS = {
    "quick": dict(grammars=[GrammarGrid(v=8, m=4, s=2, L=3, n_classes=[2, 3, 4, 6, 8, 12, 16],
                                        seed=[4, 5, 6, 7, 8, 9])],
                  seeds=[0, 1], adaptive=Adaptive(start=0.5, factor=2.0, rel_tol=0.15, max_steps=10)),
    "full": dict(grammars=[GrammarGrid(v=8, m=4, s=2, L=3, n_classes=[2, 3, 4, 6, 8, 12, 16], seed=list(range(5))),
                           GrammarGrid(v=16, m=4, s=2, L=3, n_classes=[2, 4, 8, 16, 32, 64], seed=[0, 1, 2])],
                 seeds=[0, 1, 2, 3], adaptive=Adaptive(start=0.5, factor=2.0, rel_tol=0.1, max_steps=12)),
}


def runs_R5(mode):
    q = R5_GRIDS[check_mode(mode)]
    return [Sweep(name=f"{mode}-R5-kmeans", grammars=q["grammars"], learners=[LearnerSpec("kmeans")],
                  sizes=Sizes(unit="ncmL", values=[1]), seeds=q["seeds"], test_size="auto", adaptive=q["adaptive"])]


def analyze_R5(exp, store, mode, out_dir) -> Section:
    s = exp.section()
    df = train_frame(store, f"{mode}-R5-kmeans")
    if df is None:
        return no_runs(s)
    pts, _ = pstar_section(s, df, out_dir, "R5", xname="n_c", xfun=lambda p: float(p["grammar"].n_classes))
    s.blocks.insert(0, ("p", "Adaptive bracket-and-bisect P* of the one-step + k-means learner (defaults) at fixed "
                             "v, m, L with the number of classes n_c varied (uniform rules), several grammar seeds "
                             "per n_c. The quantity tested is the growth exponent of its classification P* in n_c "
                             "(literature: ≈ √n_c·m^L, against n_c·m^L for the CNN). The ratio P*(CNN)/P*(k-means) "
                             "on one grammar is not tested: its level contains our CNN's own constant."))
    found = [p for p in pts if p["censored"] is None]
    ncs = {p["grammar"].n_classes for p in found}
    if len(ncs) < 2:
        s.numbers = f"P* found for {len(found)}/{len(pts)} grammars: no fit"
        return s
    fit = fit_power_law([p["grammar"].n_classes for p in found], [p["pstar"] for p in found],
                        y_lo=[p["lo"] for p in found], y_hi=[p["hi"] for p in found])
    t = exp.thresholds
    s.numbers = (f"P*(kmeans) ∝ n_c^{fit.slope:.2f} [{fit.slope_lo:.2f}, {fit.slope_hi:.2f}] over "
                 f"{len(found)}/{len(pts)} grammars (n_c = {sorted(ncs)}; band {t['exponent']} ± {t['exponent_tol']})")
    s.verdict = interval_verdict(fit.slope_lo, fit.slope_hi, t["exponent"] - t["exponent_tol"],
                                 t["exponent"] + t["exponent_tol"])
    return s


R5 = Experiment(
    id="R5", title="One-step GD + k-means: P* ∝ √n_c",
    law="P*(k-means) grows like √n_c at fixed v, m, L (literature: the layerwise one-step + k-means learner needs "
        "≈ √n_c·m^L, the CNN n_c·m^L): the 95% CI of the slope of log P* vs log n_c lies within 0.5 ± 0.25 "
        "(a slope of 1, the CNN's n_c dependence, fails). Tests the growth of the classification P* with n_c, not "
        "the level of P*(CNN)/P*(k-means), which carries our CNN's own constant",
    runs=runs_R5, analyze=analyze_R5, requires=("kmeans",), thresholds={"exponent": 0.5, "exponent_tol": 0.25})


# ============================================================================================ R6
# quick: two of R4's grammars (same seed), so R6's CNN runs are R4's
R6_GRAMMARS = {"quick": [GrammarGrid(v=[4, 6], m="v", s=2, L=2, seed=1)],
               "full": [GrammarGrid(v=[4, 6, 8], m="v", s=2, L=2)]}


def runs_R6(mode):
    return [deep_sweep(mode, f"{mode}-R6-shallow", ["cnn", "fcn", "kernel"], grammars=R6_GRAMMARS[check_mode(mode)])]


def analyze_R6(exp, store, mode, out_dir) -> Section:
    s = exp.section()
    df = train_frame(store, f"{mode}-R6-shallow")
    if df is None:
        return no_runs(s)
    pts, fits = pstar_section(s, df, out_dir, "R6")
    rows, parts, shallow_ratio, checks = [], [], {}, []
    frac_min = exp.thresholds["shallow_fraction_min"]
    by_g = {}
    for p in pts:
        by_g.setdefault(p["grammar"], {})[p["label"]] = p
    for gk, d in sorted(by_g.items(), key=lambda kv: kv[0].sort_key()):
        row = [f"v={gk.v} m={gk.m} L={gk.L} (P_max={gk.num_inputs})"]
        for lab in ("cnn", "fcn", "kernel"):
            p = d.get(lab)
            if p is None:
                row.append("—")
                continue
            pm = p["p_max"]
            if p["censored"] == "above":
                row.append(f"> {max(p['sizes']) / pm:.2f}·P_max")
                if lab != "cnn":  # P* > the largest size tried
                    shallow_ratio.setdefault(lab, []).append(max(p["sizes"]) / pm)
                    checks.append(interval_verdict(max(p["sizes"]) / pm, math.inf, accept_lo=frac_min))
            else:
                row.append(f"{p['pstar'] / pm:.2f}·P_max")
                if lab != "cnn":
                    shallow_ratio.setdefault(lab, []).append(p["pstar"] / pm)
                    checks.append(interval_verdict(p["lo"] / pm, p["hi"] / pm, accept_lo=frac_min))
        cnn = d.get("cnn")
        if cnn is None or cnn["censored"] == "above":
            checks.append(NOT_HELD)
        else:  # the deep P* below every shallow one: compare their intervals
            c_lo, c_hi = (0.0, cnn["pstar"]) if cnn["censored"] == "below" else (cnn["lo"], cnn["hi"])
            for lab in ("fcn", "kernel"):
                q = d.get(lab)
                if q is not None:
                    q_lo, q_hi = (max(q["sizes"]), math.inf) if q["censored"] == "above" else (q["lo"], q["hi"])
                    checks.append(HELD if c_hi < q_lo else NOT_HELD if c_lo >= q_hi else INCONCLUSIVE)
        rows.append(row)
    s.blocks.append(("table", ["grammar", "P*(cnn)/P_max", "P*(fcn)/P_max", "P*(kernel)/P_max"], rows))
    for lab, rs in shallow_ratio.items():
        parts.append(f"{lab}: P*/P_max ≥ {min(rs):.2f}")
    s.numbers = "; ".join(parts)
    # shallow needs a constant fraction of all inputs (>= frac_min P_max) in every grammar, and more than the CNN
    s.verdict = combine(checks) if shallow_ratio else INCONCLUSIVE
    cnn_r = [f"{d['cnn']['pstar'] / d['cnn']['p_max']:.2f}" for d in by_g.values()
             if d.get("cnn") and d["cnn"]["censored"] is None]
    if cnn_r:
        s.numbers += "; cnn: P*/P_max = " + ", ".join(cnn_r)
    return s


R6 = Experiment(
    id="R6", title="Shallow (fcn, kernel) vs deep (CNN)",
    law="shallow P* ∝ P_max = n_c·m^((s^L−1)/(s−1)) (P*/P_max ≥ 0.3 in every grammar), deep P* ∝ n_c·m^L ≪ P_max "
        "(below every shallow P*)",
    runs=runs_R6, analyze=analyze_R6, requires=("cnn", "fcn", "kernel"), thresholds={"shallow_fraction_min": 0.3})


# ============================================================================================ R7
def analyze_R7(exp, store, mode, out_dir) -> Section:
    s = exp.section()
    rows = [r for r in store.rows(sweep=f"{mode}-R4-cnn") if r["task"] == "train"]
    rows = [r for r in rows if isinstance(r["metrics"].get("sensitivity"), dict)
            and "missing" not in r["metrics"]["sensitivity"]]
    if not rows:
        s.numbers = "no runs with sensitivities"
        return s
    series, table, verdicts = [], [], []
    t = exp.thresholds
    groups = {}
    for r in rows:
        groups.setdefault(grammar_key(r), []).append(r)
    for gk, rs in sorted(groups.items(), key=lambda kv: kv[0].sort_key()):
        L = gk.L
        sizes = sorted({r["train_size"] for r in rs})
        ncml = rs[0]["nc_m_L"]
        chance = 1 - 1 / gk.n_classes
        err = [np.mean([r["test_error"] for r in rs if r["train_size"] == P]) / chance for P in sizes]
        for lv in sorted({int(k) for r in rs for k in r["metrics"]["sensitivity"]}):
            n_layers = len(next(iter(rs))["metrics"]["sensitivity"][str(lv)])
            for k in range(n_layers):
                ys = [float(np.nanmean([r["metrics"]["sensitivity"][str(lv)][k] for r in rs if r["train_size"] == P]))
                      for P in sizes]
                series.append({"grammar": grammar_name(gk).replace(" s=2", ""), "level": lv, "layer": k + 1,
                               "x": [P / ncml for P in sizes], "y": ys, "err_x": [P / ncml for P in sizes],
                               "err_y": err})
                if lv == L - 1 and k == n_layers - 1:
                    cross = next((P / ncml for P, y in zip(sizes, ys) if y <= t["crossing_S"]), None)
                    table.append([grammar_name(gk), lv, k + 1, fmt(ys[0]), fmt(ys[-1]), fmt(cross)])
                    verdicts.append((ys[0], ys[-1], cross))
    s.blocks.append(("table", ["grammar", "synonym level", "layer", "S at smallest P", "S at largest P",
                               "P/(n_c·m^L) where S ≤ 0.5"], table))
    f = plots.sensitivity_curves(series, out_dir / "R7-sensitivity.png", "R7: CNN synonymic sensitivity")
    s.blocks.append(("fig", f.name, "Sensitivity S_{k,l} of each hidden layer k of the CNN to resampling the "
                     "derivations below level l (1 = as sensitive as to a random input, 0 = invariant), against "
                     "P/(n_c·m^L); dotted: test error / chance error. Invariance and learning arrive together."))
    crosses = [c for _, _, c in verdicts if c is not None]
    drop = all(a - b >= t["drop_min"] for a, b, _ in verdicts)
    spread = max(crosses) / min(crosses) if len(crosses) == len(verdicts) and crosses else math.inf
    s.numbers = (f"top layer, level L−1: S falls from {fmt(np.mean([a for a, _, _ in verdicts]))} to "
                 f"{fmt(np.mean([b for _, b, _ in verdicts]))}; crossing S = 0.5 at P/(n_c·m^L) = "
                 + ", ".join(fmt(c) for c in crosses) + f" (spread ×{fmt(spread)})")
    # sensitivities are means over seeds without an interval: the checks are on the measured values
    s.verdict = combine([exact_verdict(drop), exact_verdict(spread <= t["spread_max"])])
    return s


R7 = Experiment(
    id="R7", title="Synonymic sensitivity collapse",
    law="the CNN's top hidden layer becomes insensitive to synonym exchange at level L−1 (S drops by ≥ 0.3) as P "
        "passes ≈ n_c·m^L, collapsing in P/(n_c·m^L) (the crossings S = 0.5 within a factor 4)",
    runs=runs_R4, analyze=analyze_R7, requires=("cnn",),  # the R4 runs carry the sensitivities
    thresholds={"crossing_S": 0.5, "drop_min": 0.3, "spread_max": 4.0})


# ============================================================================================ R9
R9_GRIDS = {
    # chaining+ and k-means on the R4 grammars (the CNN P* comes from R4's runs)
    "quick": dict(grammars=None, learners=[LearnerSpec("chaining+"), LearnerSpec("kmeans")], seeds=[0, 1],
                  adaptive=Adaptive(start=1.0, factor=2.0, rel_tol=0.25, max_steps=8)),
    # v = n_c = 8, s = 2, (m, L) in {(2,3), (4,3), (8,2), (8,3), (4,4)}; two CNNs, since the default weight decay
    # collapses it at m = 8, L = 3 (the ratio uses the better one)
    "full": dict(grammars=[GrammarGrid(v=8, m=[2, 4], s=2, L=3), GrammarGrid(v=8, m=8, s=2, L=[2, 3]),
                           GrammarGrid(v=8, m=4, s=2, L=4)],
                 learners=[LearnerSpec("chaining+"), LearnerSpec("chaining", params={"diagnostics": False}),
                           LearnerSpec("cnn"), LearnerSpec("cnn", label=CNN_WD0,
                                                           params={"weight_decay": 0.0, "impl": "matmul"}),
                           LearnerSpec("kmeans")], seeds=[0, 1, 2],
                 adaptive=Adaptive(start=1.0, factor=2.0, rel_tol=0.25, max_steps=11)),
}


def runs_R9(mode):
    """R9's own sweep; in quick mode also R4's CNN sweep, whose P* it compares with (skipped when R4 ran)."""
    q = R9_GRIDS[check_mode(mode)]
    own = Sweep(name=f"{mode}-R9-compare", grammars=q["grammars"] or DEEP[mode]["grammars"],
                learners=q["learners"], sizes=Sizes(unit="ncmL", values=[1]), seeds=q["seeds"], test_size="auto",
                adaptive=q["adaptive"])
    return runs_R4(mode) * (mode == "quick") + [own]


def analyze_R9(exp, store, mode, out_dir) -> Section:
    import pandas as pd


    s = exp.section()
    frames = [train_frame(store, f"{mode}-R9-compare")]
    if mode == "quick":  # the CNN runs of R4 are on the same grammars
        frames += [train_frame(store, f"{mode}-R4-cnn")]
    frames = [f for f in frames if f is not None]
    if not frames:
        s.numbers = "no finished runs"
        return s
    df = pd.concat(frames).drop_duplicates("key")
    pts = pstar_points(df)
    fits = scaling_fits(pts)
    by = {}
    for p in pts:
        by.setdefault(p["grammar"], {})[p["label"]] = p
    labels = [lab for lab in ("chaining+", "cnn", CNN_WD0, "kmeans", "chaining") if any(lab in d for d in by.values())]
    rows, ratios = [], []
    for gk, d in sorted(by.items(), key=lambda kv: kv[0].sort_key()):
        row = [grammar_name(gk)] + [d[lab]["pstar_obj"].fmt() if lab in d else "—" for lab in labels]
        cp = d.get("chaining+")
        # the better CNN: the smallest P* that was found (not censored) among the CNN variants
        cnn = min((d[lab] for lab in ("cnn", CNN_WD0) if lab in d and d[lab]["censored"] is None),
                  key=lambda q: q["pstar"], default=None)
        r = None
        if cp is not None and cnn is not None and cp["censored"] != "above":
            r = cp["pstar"] / cnn["pstar"]  # a "below"-censored chaining+ P* is an upper bound: ratio <= r
            cp_lo, cp_hi = (0.0, cp["pstar"]) if cp["censored"] == "below" else (cp["lo"], cp["hi"])
            ratios.append((gk, r, cp_lo / cnn["hi"] if cnn["hi"] > 0 else 0.0,
                           cp_hi / cnn["lo"] if cnn["lo"] > 0 else math.inf))
        rows.append(row + [fmt(r)])
    s.blocks.append(("p", "Adaptive bracket-and-bisect P* of chaining+ (defaults)"
                     + (", and of k-means, on the grammars of R4, next to the CNN P* from R4's runs (same "
                        "grammars; interpolated on R4's size grid)" if mode == "quick" else
                        ", the paper's learner, the CNN and k-means, all adaptive, on the same grammars and seeds")
                     + ". A P* written ≤ x was met at the smallest size tried."))
    s.blocks.append(("table", ["grammar"] + [f"P* {lab}" for lab in labels] + ["P*(chaining+)/P*(best cnn)"],
                     rows))
    if fits:
        f = plots.pstar_scaling(pts, fits, out_dir / "R9-pstar.png", "R9: P* per learner vs n_c·m^L")
        s.blocks.append(("fig", f.name, "P* (bootstrap 95% CI over seeds) of every learner against n_c·m^L, with "
                         "the fitted power law per learner; dashed: P* = n_c·m^L. chaining+ sits below the CNN "
                         "wherever the law held."))
    if not ratios:
        s.numbers = "no grammar where both chaining+ and the CNN reached the threshold"
        return s
    s.numbers = ", ".join(f"{grammar_name(gk)}: {r:.2f}" for gk, r, _, _ in ratios) + " (P*(chaining+)/P*(best cnn))"
    s.verdict = combine(interval_verdict(lo, hi, accept_hi=exp.thresholds["ratio_max"]) for _, _, lo, hi in ratios)
    return s


R9 = Experiment(
    id="R9", title="chaining+ (beyond the paper) vs the baselines: P* per learner",
    law="chaining+ needs at most half the CNN's samples: the interval of P*(chaining+)/P*(CNN) lies below 0.5 on "
        "every grammar where the CNN's P* was found",
    runs=runs_R9, analyze=analyze_R9, requires=("chaining+", "cnn"), thresholds={"ratio_max": 0.5},
    reads=lambda mode: [f"{mode}-R9-compare"] + ([f"{mode}-R4-cnn"] if mode == "quick" else []))
