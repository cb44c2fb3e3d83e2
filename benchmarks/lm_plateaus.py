"""Measured next-token test cross-entropy against the exact per-level plateaus (issue 24's target: the CNN's curve
on v = 8, m = 4, L = 3 shows the first two plateaus within 0.05 nats).

    rhm sweep benchmarks/sweeps/lm_plateaus_cnn_m4_L3.toml --store S --workers 1
    python benchmarks/lm_plateaus.py --store S

For every grammar of the sweep it prints the exact plateaus (rhm.inference.plateaus, task "next-token") and, per
training size P, the measured test cross-entropy, the nearest plateau and the distance to it; then, for every
intermediate plateau l = 1..L-1, the curve's closest approach to it (the target: <= 0.05 nats for l = 1 and 2) and
the curve's slope there (nats per doubling of P, from the neighbouring sizes): a curve that rests on a plateau is
flatter there than between plateaus, one that only passes through it is not.
"""

from __future__ import annotations

import argparse

import numpy as np

import rhm
from rhm.experiments import ResultStore


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", required=True)
    ap.add_argument("--sweep", default="lm-plateaus-cnn-m4-L3")
    args = ap.parse_args(argv)
    with ResultStore(args.store, readonly=True) as store:
        rows = [r for r in store.rows(sweep=args.sweep) if (r.get("metrics") or {}).get("cross_entropy") is not None]
    if not rows:
        raise SystemExit(f"no finished runs of sweep {args.sweep!r} in {args.store}")
    by = {}
    for r in rows:
        by.setdefault(r["grammar_seed"], []).append(r)
    for gseed, rs in sorted(by.items()):
        spec = rhm.GrammarSpec.from_dict(rs[0]["config"]["grammar"])
        pl = rhm.inference.plateaus(spec.build(), "next-token").values
        print(f"grammar {spec.label}: plateaus l = 0..L " + ", ".join(f"{p:.3f}" for p in pl))
        for r in sorted(rs, key=lambda r: r["train_size"]):
            ce = r["metrics"]["cross_entropy"]
            j = int(np.argmin(np.abs(pl - ce)))
            print(f"  P = {r['train_size']:>6}  test CE {ce:.3f}  nearest plateau l = {j} ({pl[j]:.3f}), "
                  f"|diff| {abs(ce - pl[j]):.3f}")
        # one run per size is assumed (the sweeps here use one seed); with several, their mean is used
        sizes = np.array(sorted({r["train_size"] for r in rs}), dtype=float)
        curve = np.array([np.mean([r["metrics"]["cross_entropy"] for r in rs if r["train_size"] == p]) for p in sizes])
        for lev in range(1, len(pl) - 1):
            k = int(np.argmin(np.abs(curve - pl[lev])))
            lo, hi = max(k - 1, 0), min(k + 1, len(sizes) - 1)
            slope = (curve[hi] - curve[lo]) / np.log2(sizes[hi] / sizes[lo]) if hi > lo else float("nan")
            print(f"  closest to plateau {lev} ({pl[lev]:.3f}): |diff| {abs(curve[k] - pl[lev]):.3f} at "
                  f"P = {int(sizes[k])}, slope there {slope:+.3f} nats per doubling of P")


if __name__ == "__main__":
    main()
