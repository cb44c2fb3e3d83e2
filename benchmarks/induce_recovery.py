"""Samples for `induce` to recover the grammar from unlabeled strings (issue 27), at v = n_c = 8, s = 2, m = 4.

Run (one thread; the numbers in docs/induce.md were taken this way):

    OMP_NUM_THREADS=1 nice python benchmarks/induce_recovery.py --L 3 4 --P 100 150 200 300 400 500 1000 2000 4000 \
        --seeds 2700-2709

For every (L, P, grammar seed): the grammar rhm.RHM(v=8, m=4, s=2, L, seed), P i.i.d. training strings (no
labels), Induce() with its defaults; then the fraction of rules recovered up to relabelling per level
(rules_recovered) and the masked-token KL(true || learned) in nats per masked position on 1000 fresh strings
with each position hidden with probability 0.15 (masked_kl). Prints one line per run (stderr) and a markdown
table per L: grammars with every rule recovered, the median and max KL, the median fit seconds; and P*, the
smallest P of the grid from which every larger P of the grid too has every rule recovered in >= 9/10 grammars.

With --classify (few labels): the grammar learned from --unlabeled strings (10,000), then its top-level tuples
labelled from each --labels count of fresh labelled strings; the test error on 2000 fresh strings; per grammar
P*_labels, the smallest count from which the error stays <= 0.1 (1 - 1/n_c), against P_floor = n_c m ln 10:

    OMP_NUM_THREADS=1 nice python benchmarks/induce_recovery.py --classify --L 3 --seeds 2700-2709
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

import rhm
from rhm.learners.induce import Induce, masked_kl, rules_recovered

V, S = 8, 2
M = 4  # --m sets it


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


def classify(L: int, P_unlabeled: int, P_labels: list[int], seed: int) -> dict:
    """Few-label classification: fit on P_unlabeled strings, label the top-level tuples from each P of P_labels
    fresh labelled strings; {P: test error on 2000 fresh strings}."""
    g = rhm.RHM(v=V, m=M, s=S, L=L, seed=seed)
    x, _ = g.sample(P_unlabeled, seed=np.random.default_rng([seed, P_unlabeled]))
    model = Induce().fit(x, grammar=g)
    xt, yt = g.sample(2000, seed=np.random.default_rng([seed, 97]))
    out = {}
    for P in P_labels:
        xl, yl = g.sample(P, seed=np.random.default_rng([seed, 96, P]))
        out[P] = 1.0 - model.fit_labels(xl, yl, n_classes=g.n_classes).score(xt, yt)
    return out


def main_classify(args):
    threshold = 0.1 * (1 - 1 / V)
    floor = V * M * np.log(10)
    for L in args.L:
        errs = {sd: classify(L, args.unlabeled, sorted(args.labels), sd) for sd in args.seeds}
        stars = []
        for sd, e in errs.items():
            ps = sorted(e)
            good = [P for i, P in enumerate(ps) if all(e[q] <= threshold for q in ps[i:])]
            stars.append(good[0] if good else float("inf"))
            print(f"L={L} seed={sd} errors={ {P: round(v, 4) for P, v in e.items()} } P*={stars[-1]}",
                  file=sys.stderr, flush=True)
        print(f"\nL = {L}, {args.unlabeled} unlabeled strings, grammar seeds {args.seeds[0]}-{args.seeds[-1]}\n")
        print("| labelled P | median test error | max test error |\n|---|---|---|")
        for P in sorted(args.labels):
            vals = [e[P] for e in errs.values()]
            print(f"| {P} | {statistics.median(vals):.4f} | {max(vals):.4f} |")
        med = statistics.median(stars)
        print(f"\nP*_labels (test error <= {threshold:.4f}) per grammar: {stars}; median {med}; "
              f"P_floor = n_c m ln 10 = {floor:.1f}; ratio {med / floor:.2f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--L", type=int, nargs="+", default=[3, 4])
    ap.add_argument("--P", type=int, nargs="+", default=[500, 1000, 2000, 4000])
    ap.add_argument("--seeds", type=seeds, default=seeds("2700-2709"), help="grammar seeds, e.g. 2700-2709")
    ap.add_argument("--m", type=int, default=4, help="rules per symbol (v = n_c = 8, s = 2)")
    ap.add_argument("--classify", action="store_true", help="few-label classification instead (P* in labels)")
    ap.add_argument("--unlabeled", type=int, default=10_000, help="unlabeled strings of --classify")
    ap.add_argument("--labels", type=int, nargs="+", default=[40, 60, 80, 100, 120, 160, 240],
                    help="labelled strings of --classify")
    args = ap.parse_args(argv)
    global M
    M = args.m
    if args.classify:
        return main_classify(args)
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
        print(f"\nm = {M}, L = {L}, grammar seeds {args.seeds[0]}-{args.seeds[-1]}\n")
        print("| P | all rules recovered | min fraction at a level | median KL (nats) | max KL (nats) | "
              "median fit (s) |")
        print("|---|---|---|---|---|---|")
        for P, ok, kl_med, kl_max, t, low in rows:
            print(f"| {P} | {ok}/{n} | {low:.3f} | {kl_med:.2e} | {kl_max:.2e} | {t:.2f} |")
        good = [P for i, (P, ok, *_) in enumerate(rows) if all(r[1] >= 0.9 * n for r in rows[i:])]
        print(f"\nP* (every rule in >= 9/10 grammars from this P of the grid on): {good[0] if good else 'none'}")


if __name__ == "__main__":
    main()
