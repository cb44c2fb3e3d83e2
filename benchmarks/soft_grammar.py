"""Sampling speed of the soft grammar and of filtered draws, as a ratio to the plain RHM sampler (one process).

    OMP_NUM_THREADS=1 python benchmarks/soft_grammar.py [--n 200000]

Target (issue 26): rhm.SoftGrammar(v, s, L, beta) samples at >= 0.3x the tokens per second of rhm.RHM(v, m, s, L)
with the same v, s, L and the soft grammar's m = v**(s-1), both timed here (best of 5). The filtered rows
(g.sample(..., filter_level=k)) are printed for information, against the same reference.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import rhm  # noqa: E402

TARGET = 0.3
CASES = [(32, 2, 3), (16, 2, 4), (8, 2, 6), (4, 2, 8), (8, 3, 3)]


def best_of(fn, repeat=5):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main(n: int) -> bool:
    print(f"{'v':>3} {'s':>2} {'L':>2} {'what':<14} {'Mtok/s':>8} {'RHM Mtok/s':>10} {'ratio':>6}")
    ok = True
    for v, s, L in CASES:
        soft = rhm.SoftGrammar(v, s, L, beta=1.0, seed=0)
        plain = rhm.RHM(v, soft.m, s, L, seed=0)
        rows = max(1000, n // soft.d * 8)  # about n * 8 tokens per draw
        soft.sample(10, seed=0)  # build the sampler tables once (cached on the grammar)
        ref = rows * plain.d / best_of(lambda: plain.sample(rows, seed=1)) / 1e6
        tok = rows * soft.d / best_of(lambda: soft.sample(rows, seed=1)) / 1e6
        ok &= tok / ref >= TARGET
        print(f"{v:>3} {s:>2} {L:>2} {'soft':<14} {tok:>8.1f} {ref:>10.1f} {tok / ref:>6.2f}")
        for k in (1, L - 1):
            soft.sample(10, seed=0, filter_level=k)
            tk = rows * soft.d / best_of(lambda: soft.sample(rows, seed=1, filter_level=k)) / 1e6
            print(f"{v:>3} {s:>2} {L:>2} {f'soft k={k}':<14} {tk:>8.1f} {ref:>10.1f} {tk / ref:>6.2f}")
    print(f"soft sampler >= {TARGET}x the RHM sampler in every case: {'yes' if ok else 'NO'}")
    return ok


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="about n*8 tokens per timed draw")
    raise SystemExit(0 if main(parser.parse_args().n) else 1)
