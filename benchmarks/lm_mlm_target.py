"""Issue 24's MLM target from a store: every grammar's excess cross-entropy over the Bayes predictor, against 0.10.

    OMP_NUM_THREADS=1 nice -n 5 rhm sweep benchmarks/sweeps/lm_mlm_target_heldout2.toml --store S --workers 2
    python benchmarks/lm_mlm_target.py --store S --sweep lm-mlm-target-heldout2

(lm_mlm_target_heldout.toml, sweep lm-mlm-target-heldout, is the earlier setting: one mask per string.)

The target (docs/lm_tasks.md, "Issue 24's targets"): transformer MLM on v = 8, m = 2, L = 3, online, excess CE
<= 0.10 nats within 256k samples, on every held-out grammar.
"""

from __future__ import annotations

import argparse

from rhm.experiments import ResultStore

TARGET = 0.10  # nats per hidden token


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True)
    ap.add_argument("--sweep", default="lm-mlm-target-heldout")
    args = ap.parse_args()
    with ResultStore(args.store) as st:
        rows = sorted(st.rows(sweep=args.sweep), key=lambda r: (r["grammar_seed"], r["train_size"], r["seed"]))
    if not rows:
        raise SystemExit(f"no rows of sweep {args.sweep!r} in {args.store}")
    print("| grammar seed | samples seen | excess CE (nats) | Bayes CE | test targets | run wall (s) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        m = r["metrics"]
        print(f"| {r['grammar_seed']} | {r['info'].get('samples_seen', r['train_size']):,} | "
              f"{m['excess_cross_entropy']:.3f} | {m['bayes_cross_entropy']:.3f} | {m['n_targets']} | "
              f"{r['wall_seconds']:.0f} |")
    met = sum(r["metrics"]["excess_cross_entropy"] <= TARGET for r in rows)
    worst = max(r["metrics"]["excess_cross_entropy"] for r in rows)
    print(f"\nexcess <= {TARGET} on {met} of {len(rows)} runs (largest {worst:.3f}): "
          f"{'met' if met == len(rows) else 'not met'}")


if __name__ == "__main__":
    main()
