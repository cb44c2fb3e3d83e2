"""Samples for `induce` to recover the grammar from unlabeled strings (issue 27), at v = n_c = 8, m = 4, s = 2.

Run (one thread; the numbers in docs/induce.md were taken this way):

    OMP_NUM_THREADS=1 nice python benchmarks/induce_recovery.py --L 3 4 --P 100 150 200 300 400 500 1000 2000 4000 \
        --seeds 2700-2709

For every (L, P, grammar seed): the grammar rhm.RHM(v=8, m=4, s=2, L, seed), P i.i.d. training strings (no
labels), Induce() with its defaults; then the fraction of rules recovered up to relabelling per level
(rules_recovered) and the masked-token KL(true || learned) in nats per masked position on 1000 fresh strings
with each position hidden with probability 0.15 (masked_kl). Prints one line per run (stderr) and a markdown
table per L: grammars with every rule recovered, the median and max KL, the median fit seconds; and P*, the
smallest P of the grid from which every larger P of the grid too has every rule recovered in >= 9/10 grammars.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

import rhm
from rhm.learners.induce import Induce, masked_kl, rules_recovered

V, M, S = 8, 4, 2


def seeds(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def run(L: int, P: int, seed: int) -> dict:
    g = rhm.RHM(v=V, m=M, s=S, L=L, seed=seed)
    x, _ = g.sample(P, seed=np.random.default_rng([seed, P]))
    t0 = time.perf_counter()
    model = Induce().fit(x, grammar=g)
    fit = time.perf_counter() - t0
    rec = rules_recovered(g, model.grammar_)
    xt, _ = g.sample(1000, seed=np.random.default_rng([seed, 99]))
    mask = np.random.default_rng([seed, 98]).random(xt.shape) < 0.15
    return {"all": rec["all"], "per_level": rec["per_level"], "kl": masked_kl(g, model.grammar_, xt, mask),
            "fit_seconds": fit}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--L", type=int, nargs="+", default=[3, 4])
    ap.add_argument("--P", type=int, nargs="+", default=[500, 1000, 2000, 4000])
    ap.add_argument("--seeds", type=seeds, default=seeds("2700-2709"), help="grammar seeds, e.g. 2700-2709")
    args = ap.parse_args(argv)
    for L in args.L:
        rows = []
        for P in sorted(args.P):
            res = [run(L, P, sd) for sd in args.seeds]
            for sd, r in zip(args.seeds, res):
                print(f"L={L} P={P} seed={sd} all={r['all']} per_level={[round(f, 3) for f in r['per_level']]} "
                      f"kl={r['kl']:.2e} fit={r['fit_seconds']:.2f}s", file=sys.stderr, flush=True)
            rows.append((P, sum(r["all"] for r in res), statistics.median(r["kl"] for r in res),
                         max(r["kl"] for r in res), statistics.median(r["fit_seconds"] for r in res),
                         min(min(r["per_level"]) for r in res)))
        n = len(args.seeds)
        print(f"\nL = {L}, grammar seeds {args.seeds[0]}-{args.seeds[-1]}\n")
        print("| P | all rules recovered | min fraction at a level | median KL (nats) | max KL (nats) | "
              "median fit (s) |")
        print("|---|---|---|---|---|---|")
        for P, ok, kl_med, kl_max, t, low in rows:
            print(f"| {P} | {ok}/{n} | {low:.3f} | {kl_med:.2e} | {kl_max:.2e} | {t:.2f} |")
        good = [P for i, (P, ok, *_) in enumerate(rows) if all(r[1] >= 0.9 * n for r in rows[i:])]
        print(f"\nP* (every rule in >= 9/10 grammars from this P of the grid on): {good[0] if good else 'none'}")


if __name__ == "__main__":
    main()
