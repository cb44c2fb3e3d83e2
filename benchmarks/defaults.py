"""The neural learners' defaults (issue 22): fit time at P = 2,000 and test error at each threshold size.

    OMP_NUM_THREADS=1 python benchmarks/defaults.py                     # fit times at P = 2,000
    OMP_NUM_THREADS=1 python benchmarks/defaults.py --reference old-cnn # + the CNN's pre-issue-22 defaults
    OMP_NUM_THREADS=1 python benchmarks/defaults.py --pstar --grammar-seeds 0,1,2   # development seeds

Grammar: v = n_c = 8, m = 4, s = 2, L = 3, uniform rules; data: P + T distinct inputs drawn with seed 0 (the
`rhm train --sampling distinct` protocol, learner seed 0), T = 2,000 test inputs.

Fit times: one fit per learner with its defaults at P = 2,000 on grammar seed 0, in one process, each printed
with its ratio to the reference, measured first in the same process (``--reference cnn``: the CNN's current
defaults; ``old-cnn``: the CNN's defaults before issue 22: conv1d, max_steps = 20,000, i.e. 12,500 SGD steps
at P = 2,000).

--pstar: each learner at its threshold size (cnn 800, lcn 4,000, transformer 16,000) on the given grammar seeds:
test error per seed, mean and sd, against the P* threshold 0.1 (1 - 1/n_c) = 0.0875. The held-out confirmation
(grammar seeds 100-109) is the sweeps benchmarks/sweeps/defaults_*.toml.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings

import rhm
from rhm.experiments.tasks import train_test_split

V, M, S, L = 8, 4, 2, 3
THRESHOLD = 0.1 * (1 - 1 / V)
NEURAL = ("cnn", "lcn", "transformer", "fcn")
PSTAR_SIZE = {"cnn": 800, "lcn": 4000, "transformer": 16000}
REFERENCES = {"cnn": ("cnn", {}), "old-cnn": ("cnn", {"max_steps": 20000, "impl": "conv1d"})}


def fit(name, params, g, P, n_test, seed=0):
    """(test error, fit wall seconds, fit CPU seconds of this process, steps) of one fit with `params` over the
    defaults (CPU seconds: what an idle machine's wall time would be on one thread)."""
    xtr, ytr, xte, yte = train_test_split(g, P, n_test, seed, "distinct")
    model = rhm.learners.get(name)(device="cpu", seed=seed, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a collapse warning is reported by the error itself
        t0, c0 = time.perf_counter(), time.process_time()
        model.fit(xtr, ytr, grammar=g)
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    return 1 - model.score(xte, yte), secs, cpu, model.info_.get("steps")


def fit_times(names, reference, P, n_test):
    g = rhm.RHM(V, M, S, L, seed=0)
    ref_name, ref_params = REFERENCES[reference]
    err, ref_s, ref_cpu, steps = fit(ref_name, ref_params, g, P, n_test)
    print(f"| learner | fit wall s at P = {P:,} | fit CPU s | CPU ratio to {reference} | steps | test error |")
    print("|---|---|---|---|---|---|")
    print(f"| {reference} (reference) | {ref_s:.1f} | {ref_cpu:.1f} | 1.00 | {steps} | {err:.3f} |", flush=True)
    for name in names:
        err, secs, cpu, steps = fit(name, {}, g, P, n_test)
        print(f"| {name} | {secs:.1f} | {cpu:.1f} | {cpu / ref_cpu:.2f} | {steps} | {err:.3f} |", flush=True)


def pstar(names, seeds, n_test):
    print(f"| learner | P | test error per grammar seed ({', '.join(map(str, seeds))}) | mean ± sd | "
          f"<= {THRESHOLD:.4f} |")
    print("|---|---|---|---|---|")
    for name in names:
        P = PSTAR_SIZE[name]
        errs = []
        for gs in seeds:
            errs.append(fit(name, {}, rhm.RHM(V, M, S, L, seed=gs), P, n_test)[0])
            print(f"  {name} P={P} grammar {gs}: {errs[-1]:.4f}", file=sys.stderr, flush=True)
        sd = statistics.stdev(errs) if len(errs) > 1 else 0.0
        ok = sum(e <= THRESHOLD for e in errs)
        print(f"| {name} | {P:,} | {', '.join(f'{e:.3f}' for e in errs)} | {statistics.mean(errs):.4f} ± {sd:.4f} "
              f"| {ok}/{len(errs)} |", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--learners", default=None, help="comma-separated (default: all neural learners; --pstar: "
                    "cnn, lcn, transformer)")
    ap.add_argument("--reference", choices=sorted(REFERENCES), default="cnn")
    ap.add_argument("--train-size", type=int, default=2000)
    ap.add_argument("--test-size", type=int, default=2000)
    ap.add_argument("--pstar", action="store_true", help="test error at each learner's threshold size instead")
    ap.add_argument("--grammar-seeds", default="0,1,2", help="--pstar: grammar seeds (development: 0,1,2)")
    a = ap.parse_args()
    if a.pstar:
        names = a.learners.split(",") if a.learners else list(PSTAR_SIZE)
        pstar(names, [int(s) for s in a.grammar_seeds.split(",")], a.test_size)
    else:
        fit_times(a.learners.split(",") if a.learners else list(NEURAL), a.reference, a.train_size, a.test_size)


if __name__ == "__main__":
    main()
