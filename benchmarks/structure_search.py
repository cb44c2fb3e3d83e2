"""Fit time of chaining+ with the block-parallel structure search against the sequential one of a reference
commit, on the same data in one process (one thread), and the test error of both (development grammar seeds).

    OMP_NUM_THREADS=1 python benchmarks/structure_search.py [--ref COMMIT] [--seeds 0 1 2]

The reference `SiblingStructure` is loaded from `git show COMMIT:src/rhm/learners/chaining_plus/structure.py`
and swapped in for the search of the reference fits; everything else is the current code.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
import types

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from rhm import RHM, learners  # noqa: E402
from rhm.learners.chaining_plus import search  # noqa: E402

POINTS = [(2, 3, 64), (4, 3, 130), (8, 2, 250), (8, 3, 1448)]  # (m, L, P) at v = 8, s = 2
PATH = "src/rhm/learners/chaining_plus/structure.py"


def reference_structure(commit: str):
    """The SiblingStructure class of `commit` (its module compiled as a submodule of the package)."""
    src = subprocess.run(["git", "show", f"{commit}:{PATH}"], capture_output=True, text=True, check=True).stdout
    mod = types.ModuleType("rhm.learners.chaining_plus._reference_structure")
    mod.__package__ = "rhm.learners.chaining_plus"
    exec(compile(src, f"{commit}:{PATH}", "exec"), mod.__dict__)

    class Reference(mod.SiblingStructure):
        def search(self, sig0, rng, chains=32, sweeps=6, blocks=None):  # the reference has no blocks
            return super().search(sig0, rng, chains=chains, sweeps=sweeps)

    return Reference


def fit(cls, g, x, y, xt, yt):
    """(fit seconds, test error) of chaining+ (defaults, seed 0) with structure search class `cls`."""
    search.SiblingStructure = cls
    model = learners.get("chaining+")(seed=0)
    t = time.perf_counter()
    model.fit(x, y, grammar=g)
    return time.perf_counter() - t, float(np.mean(model.predict(xt) != yt))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", default="main", help="commit whose structure search is the reference")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="grammar seeds (development: 0-2)")
    args = ap.parse_args()
    current, ref = search.SiblingStructure, reference_structure(args.ref)
    print(f"reference: {args.ref}; grammar seeds {args.seeds}; data seed 0; test: up to 2,000 unseen inputs")
    print("| v=8, s=2: m, L, P | fit s (reference) | fit s (now) | ratio now / reference | error (ref) | error (now) |")
    print("|---|---|---|---|---|---|")
    fit(current, *_data(2, 3, 64, 0))  # warm-up (imports, caches)
    for m, L, P in POINTS:
        t_ref = t_new = e_ref = e_new = 0.0
        for gs in args.seeds:
            data = _data(m, L, P, gs)
            a, ea = fit(ref, *data)
            b, eb = fit(current, *data)
            t_ref, t_new, e_ref, e_new = t_ref + a, t_new + b, e_ref + ea, e_new + eb
        k = len(args.seeds)
        print(f"| {m}, {L}, {P} | {t_ref / k:.3f} | {t_new / k:.3f} | {t_new / t_ref:.2f} | {e_ref / k:.3f} "
              f"| {e_new / k:.3f} |", flush=True)
    search.SiblingStructure = current


def _data(m, L, P, gs):
    g = RHM(8, m, 2, L, seed=gs)
    x, y = g.sample(min(P + 2000, g.num_inputs), seed=0, replace=False)
    return g, x[:P], y[:P], x[P:], y[P:]


if __name__ == "__main__":
    main()
