"""Exact posterior sampling throughput (rhm.inference.sample_posterior) against a per-sample reference.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/posterior_sampling.py

Target (issue 25): >= 1e5 posterior samples per second per core at v=32, m=8, s=2, L=3. Observations: clean strings
of the grammar noised by the forward processes of rhm.diffusion (uniform noise 0.2; 30% masked), n posterior samples
per observation. The reference is the textbook sampler, one observation and one sample at a time: an upward pass
with one numpy operation per tree node, then a top-down draw per node with Generator.choice. Its samples are
checked to be strings of the grammar, and its class-change rate against rhm's (both estimate the same
probability). The rate of one exact inside pass (class_posterior: the work sample_posterior shares with it) is
printed alongside. Timings are best of 3.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from generation import best_of  # noqa: E402  (benchmarks/ is on the path when this script runs)

import rhm  # noqa: E402
from rhm import diffusion, inference  # noqa: E402


def reference_sample(g, x, mask, noise, n, rng):
    """Per-observation, per-sample posterior sampling with Python loops over nodes (the straightforward code)."""
    emission = (1 - noise) * np.eye(g.v) + noise / g.v
    out = np.empty((len(x), n, g.d), dtype=np.int64)
    for i, row in enumerate(x):
        leaf = [np.ones(g.v) if mask[i, j] else emission[:, t] for j, t in enumerate(row)]
        betas = [leaf]
        for lv in range(g.L - 1, -1, -1):  # upward pass, one vector per node
            table, p = g.rules[lv], g.rule_probs[lv]
            below, nxt = betas[0], []
            for j in range(len(below) // g.s):
                prod = np.array(p)
                for c in range(g.s):
                    prod = prod * below[j * g.s + c][table[:, :, c]]
                b = prod.sum(axis=1)
                nxt.append(b / b.max())
            betas.insert(0, nxt)
        for k in range(n):  # top-down, one draw per node
            root = betas[0][0] / betas[0][0].sum()
            sym = [rng.choice(len(root), p=root)]
            for lv in range(g.L):
                table, p = g.rules[lv], g.rule_probs[lv]
                kids = []
                for j, a in enumerate(sym):
                    w = np.array(p[a])
                    for c in range(g.s):
                        w = w * betas[lv + 1][j * g.s + c][table[a, :, c]]
                    kids.extend(table[a, rng.choice(len(w), p=w / w.sum())])
                sym = kids
            out[i, k] = sym
    return out


def main():
    g = rhm.RHM(32, 8, 2, 3, seed=0)
    N, n_ref = 40_000, 300
    x, y = g.sample(N, seed=1)
    rows = []
    for label, process, t in [("uniform noise 0.2", "uniform", 0.2), ("30% masked", "mask", 0.3)]:
        xt, mask = diffusion.forward(g, x, t, process, seed=2)
        noise = t if process == "uniform" else 0.0
        m = mask if process == "mask" else None
        inference.sample_posterior(g, xt[:10], mask=None if m is None else m[:10], noise=noise, seed=0)
        obs = np.where(mask, 0, xt)
        inside_rate = float("nan")
        if process == "uniform":  # the inside pass alone, on the same observations (class_posterior at this noise)
            g_noise = rhm.RHM.from_rules(list(g.rules), v=g.v, n_classes=g.n_classes, noise=noise)
            t_in, _ = best_of(lambda: inference.class_posterior(g_noise, obs))
            inside_rate = N / t_in
        for n in (1, 16):
            t_new, (new, tree) = best_of(lambda: inference.sample_posterior(g, xt, n=n, mask=m, noise=noise, seed=3,
                                                                           return_tree=True))
            t_ref, ref = best_of(lambda: reference_sample(g, obs[:n_ref], mask, noise, n, np.random.default_rng(4)),
                                 repeat=1)
            assert (g.parse(new.reshape(-1, g.d)) >= 0).all() and (g.parse(ref.reshape(-1, g.d)) >= 0).all()
            ours = (tree[0][:n_ref, :, 0] != y[:n_ref, None]).mean()
            theirs = (g.parse(ref.reshape(-1, g.d)).reshape(n_ref, n) != y[:n_ref, None]).mean()
            se = np.sqrt(max(ours * (1 - ours), 1e-4) / (n_ref * n))
            assert abs(ours - theirs) < 6 * se + 0.01, (ours, theirs)
            rate, rate_ref = N * n / t_new, n_ref * n / t_ref
            rows.append((label, n, rate, rate_ref, inside_rate))
    print("v=32, m=8, s=2, L=3, one core; posterior samples per second")
    print("| observation | samples per observation | rhm samples/s | reference samples/s | speed-up | "
          "inside pass alone (observations/s) | >= 1e5/s |")
    print("|---|---|---|---|---|---|---|")
    for label, n, rate, rate_ref, inside_rate in rows:
        inside = "-" if np.isnan(inside_rate) else f"{inside_rate:,.0f}"
        print(f"| {label} | {n} | {rate:,.0f} | {rate_ref:,.0f} | {rate / rate_ref:.0f}x | {inside} | "
              f"{'yes' if rate >= 1e5 else 'NO'} |")


if __name__ == "__main__":
    main()
