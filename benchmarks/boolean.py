"""Samples needed to reach a fixed relative test MSE vs d: layerwise learner (App. C) vs shallow baseline.

Target: random deep quadratic boolean function (Definition 31), full tree, Rademacher coefficients. For each d,
`rhm.boolean.samples_needed` scans n on a geometric grid (ratio 2^(1/4)) and returns the first n whose median
relative test MSE (MSE / Var f) over `--repeats` independent instances and draws is ≤ `--threshold`.
Learners: "layerwise" (LayerwiseQuadratic, one layer per level, one pass as in the paper) and "shallow"
(ridge-less regression on all monomials of degree ≤ 2^levels of the raw input, via the exact hypercube
kernel). The growth exponent is the least-squares slope of log(samples) vs log(d). A second table runs the
layerwise learner alone on 3-level targets (the shallow baseline would need all ~d^8/8! monomials of degree ≤ 8).

Run (about 3 minutes on one core):
    OMP_NUM_THREADS=1 python benchmarks/boolean.py [--quick] [--threshold 1e-3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import math
import time

from rhm.boolean import fit_growth, n_monomials, samples_needed


def table(ds_by_learner: dict, levels: int, threshold: float, repeats: int, seed: int) -> list[str]:
    results = {}
    for learner, ds in ds_by_learner.items():
        for d in ds:
            results[learner, d] = samples_needed(learner, d, levels=levels, threshold=threshold, seed=seed,
                                                 repeats=repeats)
    ds_all = sorted({d for ds in ds_by_learner.values() for d in ds})
    names = list(ds_by_learner)
    head = "| d | " + " | ".join(f"{n}: samples | {n}: features | ratio | {n}: s" for n in names) + " |"
    lines = [head, "|" + "---|" * (1 + 4 * len(names))]
    for d in ds_all:
        cells = []
        for n in names:
            r = results.get((n, d))
            if r is None:
                cells += ["–", "–", "–", "–"]
            else:
                ok = r["samples"] is not None
                cells += [str(r["samples"]) if ok else "> n_max", str(r["n_features"]),
                          f"{r['samples'] / r['n_features']:.2f}" if ok else "–", f"{r['seconds']:.1f}"]
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    lines.append("")
    for n in names:
        pts = [(d, results[n, d]["samples"]) for d in ds_by_learner[n] if results[n, d]["samples"] is not None]
        feats = [(d, results[n, d]["n_features"]) for d in ds_by_learner[n]]
        if len(pts) >= 2:
            slope = fit_growth(*zip(*pts))
            fslope = fit_growth(*zip(*feats))
            tail = fit_growth(*zip(*pts[-3:])) if len(pts) >= 3 else math.nan
            lines.append(f"- {n}: samples ∝ d^{slope:.2f} over d = {pts[0][0]}..{pts[-1][0]} "
                         f"(last three points: d^{tail:.2f}); its feature count grows as d^{fslope:.2f}")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threshold", type=float, default=1e-3, help="relative test MSE to reach")
    ap.add_argument("--repeats", type=int, default=3, help="instances per (learner, d, n); the median counts")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="small d only (seconds)")
    args = ap.parse_args()
    if args.quick:
        two = {"layerwise": (8, 12, 16, 24), "shallow": (8, 12, 16)}
        three = {"layerwise": (8, 16, 24)}
    else:
        two = {"layerwise": (8, 12, 16, 24, 32, 48, 64), "shallow": (8, 10, 12, 14, 16, 18, 20)}
        three = {"layerwise": (8, 16, 24, 32, 48, 64)}
    t0 = time.perf_counter()
    print(f"## Samples to reach relative test MSE ≤ {args.threshold:g} (median of {args.repeats} instances)\n")
    print("### 2 levels (degrees 2 and 4): layerwise vs degree-≤4 polynomial regression\n")
    print("\n".join(table(two, 2, args.threshold, args.repeats, args.seed)))
    print(f"\nratio = samples / features; features: layerwise D_1 = d(d-1)/2 (its first layer), shallow N = "
          f"number of monomials of degree ≤ 4 (e.g. N(20) = {n_monomials(20, 4)})\n")
    print("### 3 levels (degrees 2, 4, 8): layerwise only\n")
    print("\n".join(table(three, 3, args.threshold, args.repeats, args.seed)))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
