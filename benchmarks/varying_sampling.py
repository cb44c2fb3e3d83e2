"""VaryingRHM.sample throughput against rhm.RHM.sample at the same v, m, L, timed in the same process (one core).

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/varying_sampling.py [--n 200000]

Issue 26 target: the varying-tree sampler runs at >= 0.3x the plain RHM sampler's tokens per second. Tokens are
the real tokens of the strings (padding not counted). The RHM is compared at s = 2 with m = m2 (its binary rules)
and at s = 3 with m = m3 (its ternary rules); the varying grammar has p2 = 1/2, f = m2 / v.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from generation import best_of  # noqa: E402  (benchmarks/, on the path when run as a script)

from rhm import RHM, VaryingRHM  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000, help="strings per draw")
    args = ap.parse_args()
    n = args.n
    print(f"{'v':>3} {'L':>2} {'m2':>3} {'m3':>4}  {'varying Mtok/s':>14} {'RHM s=2 Mtok/s':>14} {'ratio':>6}"
          f"  {'RHM s=3 Mtok/s':>14} {'ratio':>6}")
    for v, L in ((8, 3), (8, 4), (16, 3), (16, 4)):
        g = VaryingRHM(v, L=L, f=0.5, seed=0)
        t_var, s = best_of(lambda: g.sample(n, seed=1))
        tok_var = s.lengths.sum() / t_var
        r2 = RHM(v, g.m2, 2, L, seed=0)
        t2, (x2, _) = best_of(lambda: r2.sample(n, seed=1))
        tok2 = x2.size / t2
        r3 = RHM(v, g.m3, 3, L, seed=0)
        t3, (x3, _) = best_of(lambda: r3.sample(n, seed=1))
        tok3 = x3.size / t3
        print(f"{v:>3} {L:>2} {g.m2:>3} {g.m3:>4}  {tok_var / 1e6:>14.1f} {tok2 / 1e6:>14.1f} {tok_var / tok2:>6.2f}"
              f"  {tok3 / 1e6:>14.1f} {tok_var / tok3:>6.2f}", flush=True)


if __name__ == "__main__":
    main()
