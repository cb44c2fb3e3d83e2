"""Fit time at P* of chaining+ vs the CNN on the held-out grammars, timed one after the other in the same process.

    OMP_NUM_THREADS=1 python benchmarks/time_to_pstar.py [--grammars 100-109] [--points m2_L3,m4_L3]

For each point and held-out grammar (seeds 100-109, never used while tuning), each learner is fitted once at the
size of its held-out P* grid just above its P* (benchmarks/sweeps/chaining_plus_pstar_*.toml and
cnn_pstar_heldout_*.toml; docs/chaining_plus.md), on the same draw (``g.sample(P, seed=0, replace=False)``),
with one thread. Prints the per-point median seconds and the ratio chaining+/CNN with its range over grammars.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from rhm import RHM, learners  # noqa: E402

# point: ((v, m, s, L), P for chaining+ (grid size above its held-out P*), P for the CNN (likewise; None where the
# CNN's held-out P* was not measured: chaining+ alone is timed))
POINTS = {"m2_L3": ((8, 2, 2, 3), 64, 128),      # P* 61 and 118
          "m4_L3": ((8, 4, 2, 3), 130, 724),     # P* 109 and 672
          "s3_m4_L3": ((8, 4, 3, 3), 82, 640),   # P* 76 and 590
          "m4_L4": ((8, 4, 2, 4), 130, None),    # P* 115
          "m8_L2": ((8, 8, 2, 2), 250, None),    # P* 199
          "m8_L3": ((8, 8, 2, 3), 735, None)}    # P* 710


def fit_seconds(name, g, P) -> float:
    x, y = g.sample(P, seed=0, replace=False)
    model = learners.get(name)(seed=0)
    t = time.perf_counter()
    model.fit(x, y, grammar=g)
    return time.perf_counter() - t


def seeds(spec: str) -> list[int]:
    lo, _, hi = spec.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grammars", default="100-109", help="grammar seeds, e.g. 100-109")
    ap.add_argument("--points", default="m2_L3,m4_L3", help=f"comma-separated, of {', '.join(POINTS)}")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print("| point | chaining+ P | median fit s | CNN P | median fit s | time ratio, median [min, max] over grammars |")
    print("|---|---|---|---|---|---|")
    for name in args.points.split(","):
        if name not in POINTS:
            raise SystemExit(f"--points: {name!r} is not one of {list(POINTS)}")
        (v, m, s, L), p_plus, p_cnn = POINTS[name]
        a, b = [], []
        for seed in seeds(args.grammars):
            g = RHM(v, m, s, L, seed=seed)
            a.append(fit_seconds("chaining+", g, p_plus))
            if p_cnn is not None:
                b.append(fit_seconds("cnn", g, p_cnn))
        if not b:
            print(f"| {name} | {p_plus} | {statistics.median(a):.2f} (max {max(a):.1f}) | — | — | — |", flush=True)
            continue
        r = [x / y for x, y in zip(a, b)]
        print(f"| {name} | {p_plus} | {statistics.median(a):.2f} | {p_cnn} | {statistics.median(b):.1f} | "
              f"{statistics.median(r):.3f} [{min(r):.3f}, {max(r):.3f}] |", flush=True)


if __name__ == "__main__":
    main()
