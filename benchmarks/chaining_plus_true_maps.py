"""Search failure or objective limit? The restart criterion of chaining+ (the joint log-likelihood of the hard-decoded
grammar) of the grammar's own level maps against that of the fit, on the same training set.

    OMP_NUM_THREADS=1 python benchmarks/chaining_plus_true_maps.py --m 8 --L 3 --P 700 1000 --seeds 0 1 2

If the true maps score above the fit's best state wherever the fit errs, the fit is a search failure (more or
better search can help); if the fit scores at least as high while erring, the objective is the limit. Use
development grammar seeds only (0-9); held-out grammars (100-109) are for the sweeps.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from rhm import RHM, learners, oracle  # noqa: E402
from rhm.patches import patch_ids  # noqa: E402


def true_state(est, g, x, y):
    """The `FitState` whose maps are the grammar's rules (true symbols at every level), its top model fitted."""
    _, tree = oracle.parse(g, x, return_tree=True)
    state, s, n = est._empty_state(), g.s, len(x)
    state.vocab = {g.L: g.vocab_size}
    for level in range(g.L, 1, -1):
        uniq, inv = patch_ids(tree[level].reshape(n, -1, s).astype(np.int64), state.vocab[level])
        maps = np.zeros(len(uniq), dtype=np.int64)
        maps[inv.ravel()] = tree[level - 1].ravel()
        state.codes[level], state.maps[level], state.vocab[level - 1] = uniq, maps, g.v
    state.fit_top(tree[1].astype(np.int64), y, np.arange(n))
    return state


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--m", type=int, default=8)
    ap.add_argument("--L", type=int, default=3)
    ap.add_argument("--P", type=int, nargs="+", default=[700, 1000])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="grammar seeds (development)")
    ap.add_argument("--params", default="", help="chaining+ parameters, e.g. restarts=30,class_structure=false")
    args = ap.parse_args()
    params = {k: _value(v) for k, v in (kv.split("=") for kv in args.params.split(",") if kv)}
    print(f"v=8 m={args.m} s=2 L={args.L}; data seed 0; chaining+ {params or 'defaults'}")
    print("| grammar | P | test error | score(fit) | score(true maps) | true - fit | restarts confirmed |")
    print("|---|---|---|---|---|---|---|")
    for gs in args.seeds:
        g = RHM(8, args.m, 2, args.L, seed=gs)
        for P in args.P:
            x, y = g.sample(P + 2000, seed=0, replace=False)
            est = learners.get("chaining+")(seed=0, **params).fit(x[:P], y[:P], grammar=g)
            err = float(np.mean(est.predict(x[P:]) != y[P:]))
            fit = est.info_["restart_score"]
            true = true_state(est, g, x[:P].astype(np.int64), y[:P].astype(np.int64)).hard_joint_loglik(
                x[:P].astype(np.int64), y[:P].astype(np.int64))
            print(f"| {gs} | {P} | {err:.3f} | {fit:.1f} | {true:.1f} | {true - fit:+.1f} | "
                  f"{est.info_['restarts_confirmed']} |", flush=True)


def _value(text: str):
    return {"true": True, "false": False}.get(text.lower(), int(text) if text.lstrip("-").isdigit() else text)


if __name__ == "__main__":
    main()
