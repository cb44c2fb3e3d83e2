"""chaining+ ablation: what each change to the paper's learner buys, as P* on v = n_c = 8, m = 4, s = 2, L = 3.

    OMP_NUM_THREADS=1 python benchmarks/chaining_plus.py [--seeds 3] [--rows 7 8 9] [--no-cases]

P* = smallest training size with mean test error (over seeds; grammar seed = run seed, uniform rules) at or
below 0.1 (1 - 1/n_c), found by the experiment engine's adaptive bracket-and-bisect search. Rows add one change
at a time, from the paper's learner to the full chaining+; "fit s" is the mean fit time at the bracket's upper
end. Also: the deep (L = 6) and wide (s = 4, L = 4) cases of the issue, with accuracy and wall time.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from rhm import RHM  # noqa: E402
from rhm.experiments.complexity import AdaptiveSearch, error_threshold  # noqa: E402
from rhm.learners.chaining import Chaining  # noqa: E402
from rhm.learners.chaining_plus import ChainingPlus  # noqa: E402

# every later switch off (their defaults are on), so that each row adds one change
OFF = dict(quantize=True, all_patches=False, reuse=False, context=False, context_passes=0, label_context=False,
           refine=0, restarts=1, upper_restarts=0, remeasure=0, structure=False, generative=False, denoise=False)
PASS = {**OFF, "reuse": True, "all_patches": True, "context": True, "context_passes": 1}
LADDER = [
    ("paper's learner (chaining defaults)", None),
    ("+ quantise (k-means into v symbols), sufficient statistics", OFF),
    ("+ reuse samples across stages", {**OFF, "reuse": True}),
    ("+ every patch (position-specific statistics)", {**OFF, "reuse": True, "all_patches": True}),
    ("+ sibling context", {**OFF, "reuse": True, "all_patches": True, "context": True}),
    ("+ context re-measured on symbols (1 pass)", PASS),
    ("+ label jointly with the sibling's symbol", {**PASS, "label_context": True}),
    ("+ top-down refinement, restarts and upper restarts", {"structure": False, "generative": False, "denoise": False,
                                                            "remeasure": 0}),
    ("+ context re-measured on the refined symbols", {"structure": False, "generative": False, "denoise": False}),
    ("+ structure search on sparse levels", {"generative": False, "denoise": False}),
    ("+ generative EM and posterior prediction", {"exclusive": False, "denoise": False}),
    ("+ exclusive rules (m per symbol, none shared)", {"denoise": False}),
    ("+ split-half denoising of the statistics = chaining+ defaults", {}),
    ("chaining+ defaults without quantisation", {"quantize": False}),
]


def evaluate(params, P, seeds, m=4, L=3, v=8, s=2, test=5000):
    errs, secs = [], []
    for seed in seeds:
        g = RHM(v, m, s, L, seed=seed)
        x, y = g.sample(P + test, seed=1000 + seed, replace=False)
        model = Chaining(seed=seed, diagnostics=False) if params is None else ChainingPlus(seed=seed, **params)
        t = time.perf_counter()
        model.fit(x[:P], y[:P], grammar=g)
        secs.append(time.perf_counter() - t)
        errs.append(1 - model.score(x[P:], y[P:]))
    return float(np.mean(errs)), float(np.mean(secs))


def pstar(params, seeds, start, p_max):
    search = AdaptiveSearch(error_threshold(8), start=start, p_max=p_max, factor=2.0, rel_tol=0.2, max_steps=12)
    secs = {}
    while (P := search.next_size()) is not None:
        err, sec = evaluate(params, P, seeds)
        secs[P] = sec
        search.update(P, err)
        print(f"    P={P:7d}: mean error {err:.4f} ({sec:.2f} s/fit)", flush=True)
    res = search.result()
    hi = min((p for p, e in search.evals.items() if e <= search.threshold), default=None)
    return res, (secs[hi] if hi else float("nan"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--rows", type=int, nargs="*", default=None,
                    help="ladder rows to run (0-based; default: all, about an hour on one core; none: only the cases)")
    ap.add_argument("--no-cases", action="store_true", help="skip the deep and wide cases")
    args = ap.parse_args()
    if args.rows is not None and not all(0 <= r < len(LADDER) for r in args.rows):
        ap.error(f"--rows must be between 0 and {len(LADDER) - 1}")
    torch.set_num_threads(1)
    seeds = list(range(args.seeds))
    rows = []
    for i, (name, params) in enumerate(LADDER):
        if args.rows is not None and i not in args.rows:
            continue
        print(name, flush=True)
        start = 40_000 if params is None else 400
        res, sec = pstar(params, seeds, start, p_max=300_000 if params is None else 100_000)
        rows.append((name, res, sec))
    print("\n| configuration (v=n_c=8, m=4, s=2, L=3, uniform) | P* | P*/(n_c m^L) | fit s at P* |")
    print("|---|---|---|---|")
    for name, res, sec in rows:
        ratio = f"{res.value / 512:.2f}" if res.found else "-"
        print(f"| {name} | {res.fmt()} | {ratio} | {sec:.2f} |")
    if args.no_cases:
        return

    print("\n| case | P | test accuracy | fit seconds |")
    print("|---|---|---|---|")
    for (v, m, s, L, P) in ((8, 4, 2, 6, 3000), (4, 4, 4, 4, 1000)):
        g = RHM(v, m, s, L, seed=0)
        x, y = g.sample(P + 10_000, seed=1, replace=False)
        t = time.perf_counter()
        model = ChainingPlus(seed=0).fit(x[:P], y[:P], grammar=g)
        sec = time.perf_counter() - t
        print(f"| v=n_c={v}, m={m}, s={s}, L={L} (d={g.d}, {float(g.num_inputs):.2g} inputs) | {P} | "
              f"{model.score(x[P:], y[P:]):.4f} | {sec:.1f} |")


if __name__ == "__main__":
    main()
