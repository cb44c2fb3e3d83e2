"""App. C's layerwise learner: the paper's one pass (refit=False, default) vs the joint refit option.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/boolean_refit.py [--ds 8,16,32,64] [--repeats 3]

Target: random 2-level deep quadratic boolean function (Definition 31), full tree, Rademacher coefficients.
For each d: the median relative test MSE (MSE / Var f, 2000 test inputs) over `--repeats` instances at
n = 2 D_1 and n = 8 D_1 training samples (D_1 = d(d-1)/2, the first layer's features), and the samples
`rhm.boolean.samples_needed` needs to reach relative test MSE <= 1e-3 (geometric grid, ratio 2^(1/4)).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from rhm.boolean import DeepQuadratic, run_once, samples_needed  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ds", default="8,16,32,64")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-max", type=int, default=200_000)
    args = ap.parse_args()
    t0 = time.perf_counter()
    print("| d | D_1 | refit | rel. test MSE at n = 2 D_1 | at n = 8 D_1 | samples to 1e-3 | samples / D_1 |")
    print("|---|---|---|---|---|---|---|")
    for d in (int(v) for v in args.ds.split(",")):
        D1 = d * (d - 1) // 2
        for refit in (False, True):
            rel = {}
            for mult in (2, 8):
                vals = []
                for rep in range(args.repeats):
                    f = DeepQuadratic.random(d, 2, seed=np.random.SeedSequence([args.seed, d, rep, 0]))
                    tx, ty = f.sample(2000, seed=np.random.SeedSequence([args.seed, d, rep, 1]))
                    vals.append(run_once("layerwise", f, mult * D1, tx, ty, seed=args.seed + rep,
                                         refit=refit)["rel_mse"])
                rel[mult] = float(np.median(vals))
            need = samples_needed("layerwise", d, levels=2, threshold=1e-3, seed=args.seed,
                                  repeats=args.repeats, n_max=args.n_max, refit=refit)
            n = need["samples"]
            print(f"| {d} | {D1} | {refit} | {rel[2]:.2e} | {rel[8]:.2e} | {n if n else '> n_max'} | "
                  f"{n / D1 if n else float('nan'):.1f} |", flush=True)
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
