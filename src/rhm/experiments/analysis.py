"""Analysis of stored runs: P* tables with bootstrap CIs, scaling fits, signal-gap fits, parse checks, as report
blocks (rendered to Markdown/HTML by :mod:`rhm.experiments.render`).

A report is a list of blocks: ("h1"|"h2"|"h3"|"p", text) | ("table", headers, rows) | ("fig", file, caption).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from .complexity import error_threshold, estimate_pstar, fit_power_law
from .config import by_grammar as _by_grammar
from .config import grammar_key


def fmt(x, digits=3) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        if math.isnan(x):
            return "—"
        if math.isinf(x):
            return "∞" if x > 0 else "−∞"
        if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
            return f"{x:.{digits}g}"
        return f"{x:.{digits}g}" if abs(x) < 1000 else f"{x:.0f}"
    return str(x)


def slug(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]+", "-", text).strip("-").lower()[:60] or "x"


# --------------------------------------------------------------------------------------------- analyses
def grammar_name(spec) -> str:
    """The short label of a grammar spec (tables, figures)."""
    return spec.label


def pstar_table(df, n_boot: int = 1000) -> list[dict]:
    """One dict per (learner label, grammar): P* with CI, n_c m^L, P_max, sizes tried, seeds."""
    out = []
    if df is None or len(df) == 0:
        return out
    groups = [(lab, gk, sub) for lab, by_label in df.groupby("label", sort=True) for gk, sub in _by_grammar(by_label)]
    for lab, gk, sub in groups:
        r = sub.iloc[0]
        thr = error_threshold(int(r["n_classes"]))
        ps = estimate_pstar(sub["train_size"].to_numpy(float), sub["test_error"].to_numpy(float), thr,
                            n_boot=n_boot)
        out.append({"label": lab, "learner": r["learner"], "grammar": gk, "x": float(r["nc_m_L"]),
                    "p_max": float(r["p_max"]), "pstar": ps.value, "lo": ps.lo, "hi": ps.hi,
                    "censored": ps.censored, "n_seeds": ps.n_seeds, "sizes": ps.sizes,
                    "min_error": float(min(ps.mean_errors)), "pstar_obj": ps})
    return out


def scaling_fits(points: list[dict], xkey: str = "x") -> dict:
    """label -> ScalingFit of log P* vs log x over the grammars where P* was found (needs 2+ distinct x)."""
    fits = {}
    for lab in sorted({p["label"] for p in points}):
        pts = [p for p in points if p["label"] == lab and p["censored"] is None and math.isfinite(p["pstar"])
               and math.isfinite(p[xkey])]  # a grammar without the x quantity (R3: no schedule) is not fitted
        xs = np.array([p[xkey] for p in pts], float)
        if len(np.unique(xs)) < 2:
            continue
        ys = np.array([p["pstar"] for p in pts], float)
        lo = np.array([p["lo"] for p in pts], float)
        hi = np.array([p["hi"] for p in pts], float)
        fits[lab] = fit_power_law(xs, ys, y_lo=lo, y_hi=hi)
    return fits


def pstar_rows(points):
    return [[p["label"], grammar_name(p["grammar"]), fmt(p["x"]), fmt(p["p_max"]),
             p["pstar_obj"].fmt(), fmt(p["pstar"] / p["x"] if math.isfinite(p["pstar"]) else None),
             fmt(p["min_error"]), f"{len(p['sizes'])}×{p['n_seeds']}"] for p in points]


PSTAR_HEADERS = ["learner", "grammar", "n_c·m^L", "P_max", "P* [95% CI]", "P*/(n_c·m^L)", "min test error",
                 "sizes×seeds"]


def fit_rows(fits: dict):
    return [[lab, fmt(f.slope), f"[{fmt(f.slope_lo)}, {fmt(f.slope_hi)}]", fmt(f.c_at_slope1), fmt(f.r2), f.n]
            for lab, f in fits.items()]


FIT_HEADERS = ["learner", "slope of log P* vs log(n_c·m^L)", "95% CI", "C (P* ≈ C·n_c·m^L)", "R²", "grammars"]


def analyze_train(df, out_dir: Path, name: str) -> list:
    from . import plots

    blocks = [("h2", f"Sweep `{name}` (training)")]
    pts = pstar_table(df)
    blocks.append(("table", PSTAR_HEADERS, pstar_rows(pts)))
    fits = scaling_fits(pts)
    if fits:
        blocks.append(("table", FIT_HEADERS, fit_rows(fits)))
    f1 = plots.learning_curves(df, out_dir / f"{slug(name)}-curves.png", f"Learning curves — sweep {name}")
    blocks.append(("fig", f1.name, "Test error against training-set size P for each learner (panel) and grammar "
                   "(line); shading is ± one standard deviation over seeds, dotted lines the P* threshold."))
    if len(_by_grammar(df)) > 1:
        f2 = plots.collapse(df, out_dir / f"{slug(name)}-collapse.png", f"Collapse — sweep {name}")
        blocks.append(("fig", f2.name, "The same curves against P/(n_c·m^L), error divided by chance error: if "
                       "the sample complexity is ∝ n_c·m^L the curves of different grammars fall on each other."))
    if fits:
        f3 = plots.pstar_scaling(pts, fits, out_dir / f"{slug(name)}-pstar.png", f"P* scaling — sweep {name}")
        blocks.append(("fig", f3.name, "P* (with bootstrap 95% CI) against n_c·m^L, with the fitted power law per "
                       "learner and the line P* = n_c·m^L for reference."))
    return blocks


def analyze_gaps(rows: list[dict], out_dir: Path, name: str) -> tuple[list, dict]:
    from . import plots

    flat = [{"m": r["m"], "v": r["v"], "L": r["L"], "rho": r["metrics"]["rho"]} for r in rows]
    xs, ys, lv_all = [], [], []
    for r in flat:
        for lv, rho in r["rho"].items():
            if rho is not None and rho > 0:
                xs.append(r["m"] ** (-int(lv) / 2))
                ys.append(rho)
                lv_all.append(int(lv))
    blocks = [("h2", f"Sweep `{name}` (signal gaps)")]
    fit = None
    if len(set(xs)) >= 2:
        fit = fit_power_law(xs, ys)
        ratio = np.array(ys) / np.array(xs)
        blocks.append(("p", f"Over {len(rows)} random grammars: log ρ^(l) = a + b·log m^(−l/2) with "
                            f"b = {fmt(fit.slope)} [{fmt(fit.slope_lo)}, {fmt(fit.slope_hi)}] (R² = {fmt(fit.r2)}); "
                            f"ρ^(l)·m^(l/2) ranges over [{fmt(ratio.min())}, {fmt(ratio.max())}]."))
    tab = []
    for r in rows:
        m = r["metrics"]
        tab.append([grammar_name(grammar_key(r))] + [fmt(m["rho"].get(str(lv))) + f" ({fmt(r['m'] ** (-lv / 2))})"
                                                    for lv in range(1, int(r["L"]) + 1)])
    maxL = max((int(r["L"]) for r in rows), default=0)
    for t in tab:
        t.extend(["—"] * (maxL + 1 - len(t)))
    blocks.append(("table", ["grammar"] + [f"ρ^({lv}) (m^(−{lv}/2))" for lv in range(1, maxL + 1)], tab))
    f = plots.signal_gaps(flat, out_dir / f"{slug(name)}-gaps.png", f"Signal gaps vs m^(−l/2) — {name}")
    blocks.append(("fig", f.name, "Exact signal gaps ρ^(l) (minimum distance between the label posteriors of "
                   "non-synonymous first patches, from the oracle) against m^(−l/2) for random grammars; "
                   "points parallel to the dashed line ρ = m^(−l/2) follow the law."))
    return blocks, {"fit": fit, "n": len(rows)}


def parse_rows(rows):
    out = []
    for r in rows:
        m = r["metrics"]
        out.append([grammar_name(grammar_key(r)), m["num_inputs_formula"] if len(m["num_inputs_formula"]) < 16
                    else f"{m['num_inputs_float']:.3e}",
                    fmt(m.get("enumerated_distinct")) if m.get("enumerated_distinct") is not None else "(too many)",
                    fmt(m.get("count_matches")), f"{m['parse_recovery']:.4f} of {m['parse_n']}",
                    f"{m['conflicting_labels']} of {m['iid_distinct']}",
                    (f"{m['random_valid_fraction']:.4f} vs {m['random_valid_expected']:.4f}"
                     if m.get("random_valid_fraction") is not None else "—")])
    return out


PARSE_HEADERS = ["grammar", "P_max = n_c·m^((s^L−1)/(s−1))", "distinct inputs enumerated", "count matches",
                 "parse recovers label", "inputs with 2 labels (i.i.d. sample)",
                 "random strings valid: measured vs P_max/v^d"]


def analyze_sweep(store, name: str, out_dir: Path) -> list:
    import pandas as pd

    rows = store.rows(sweep=name)
    if not rows:
        return [("h2", f"Sweep `{name}`"), ("p", "No finished runs yet.")]
    tasks = {r["task"] for r in rows}
    blocks = []
    if "train" in tasks:
        df = pd.DataFrame([r for r in rows if r["task"] == "train" and r["test_error"] is not None])
        if len(df):
            blocks += analyze_train(df, out_dir, name)
    if "gaps" in tasks:
        blocks += analyze_gaps([r for r in rows if r["task"] == "gaps"], out_dir, name)[0]
    if "parse" in tasks:
        blocks += [("h2", f"Sweep `{name}` (parse checks)"),
                   ("table", PARSE_HEADERS, parse_rows([r for r in rows if r["task"] == "parse"]))]
    return blocks


# ------------------------------------------------------------------ sections shared by the experiments
def train_frame(store, sweep):
    """The finished training runs of one sweep as a DataFrame (None when there are none)."""
    import pandas as pd

    rows = [r for r in store.rows(sweep=sweep) if r["task"] == "train" and r["test_error"] is not None]
    return pd.DataFrame(rows) if rows else None


def pstar_points(df):
    """pstar_table of a train frame; [] for None."""
    return pstar_table(df) if df is not None else []


def no_runs(s):
    """Mark a report section as having no finished runs."""
    s.numbers = "no finished runs"
    return s


def pstar_section(s, df, out_dir, stem, xname="n_c·m^L", xfun=None, identity=None):
    """P* table + fits + figures of a train sweep frame into section `s`; returns (points, fits)."""
    from . import plots

    pts = pstar_points(df)
    if xfun is not None:
        for p in pts:
            p["x"] = xfun(p)
    fits = scaling_fits(pts)
    s.blocks.append(("table", [h.replace("n_c·m^L", xname) if i == 2 else h for i, h in enumerate(PSTAR_HEADERS)],
                     pstar_rows(pts)))
    if fits:
        s.blocks.append(("table", [h.replace("n_c·m^L", xname) for h in FIT_HEADERS], fit_rows(fits)))
    f1 = plots.learning_curves(df, out_dir / f"{stem}-curves.png", f"{s.rid}: learning curves")
    s.blocks.append(("fig", f1.name, "Test error (mean ± sd over seeds) against the training-set size for each "
                     "learner and grammar; dotted: the P* threshold 0.1·(1−1/n_c)."))
    if fits:
        identity = xfun is None if identity is None else identity  # P* = x only where x is a sample count
        f2 = plots.pstar_scaling(pts, fits, out_dir / f"{stem}-pstar.png", f"{s.rid}: P* vs {xname}", xlabel=xname,
                                 identity=identity)
        s.blocks.append(("fig", f2.name, f"P* (bootstrap 95% CI over seeds) against {xname} with the fitted power "
                         "law per learner" + (f"; dashed: P* = {xname}." if identity else ".")))
    return pts, fits
