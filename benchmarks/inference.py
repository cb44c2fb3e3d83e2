"""Exact-inference throughput against a straightforward per-sample belief propagation in the same process.

    OMP_NUM_THREADS=1 python benchmarks/inference.py

Target (issue 16): >= 1e5 root posteriors per second on one core at v=32, m=8, s=2, L=3. The reference is the
textbook upward pass, one sample at a time, one numpy vector operation per tree node (rescaled per node like
rhm's); its result is checked equal to rhm's to 1e-9 on the rows it scores. Timings are best of 3.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from generation import best_of  # noqa: E402  (benchmarks/ is on the path when this script runs)

import rhm  # noqa: E402
from rhm import inference  # noqa: E402


def reference_root_posterior(g, x):
    """Per-sample upward BP with a Python loop over samples and nodes (the straightforward implementation)."""
    emission = (1 - g.noise) * np.eye(g.v) + g.noise / g.v
    out = np.empty((len(x), g.n_classes))
    for i, row in enumerate(x):
        beta = [emission[:, t] for t in row]
        for lv in range(g.L - 1, -1, -1):
            table, p = g.rules[lv], g.rule_probs[lv]
            nxt = []
            for j in range(len(beta) // g.s):
                prod = np.array(p)
                for c in range(g.s):
                    prod = prod * beta[j * g.s + c][table[:, :, c]]
                b = prod.sum(axis=1)
                nxt.append(b / b.max())
            beta = nxt
        post = beta[0] / g.n_classes
        out[i] = post / post.sum()
    return out


def main():
    rows = []
    n, n_ref = 200_000, 2_000
    for label, g in [("clean (fast path)", rhm.RHM(32, 8, 2, 3, seed=0)),
                     ("noise 0.1 (inside pass)", rhm.RHM(32, 8, 2, 3, seed=0, noise=0.1)),
                     ("zipf 1.0 + noise 0.1", rhm.RHM(32, 8, 2, 3, seed=0, zipf=1.0, noise=0.1))]:
        x, _ = g.sample(n, seed=1)
        inference.class_posterior(g, x[:10])  # build the tables once
        t_new, post = best_of(lambda: inference.class_posterior(g, x))
        t_ref, ref = best_of(lambda: reference_root_posterior(g, x[:n_ref]), repeat=1)
        assert np.abs(post[:n_ref] - ref).max() < 1e-9
        rate, rate_ref = n / t_new, n_ref / t_ref
        rows.append((f"class_posterior, {label}", rate, rate_ref, rate / rate_ref,
                     f">= 1e5/s: {'yes' if rate >= 1e5 else 'NO'}"))

    g = rhm.RHM(32, 8, 2, 3, seed=0, noise=0.1)
    x, _ = g.sample(20_000, seed=2)
    mask = np.random.default_rng(3).random(x.shape) < 0.15
    t, _ = best_of(lambda: inference.token_posterior(g, x, mask))
    rows.append(("token_posterior (15% masked), noise 0.1", len(x) / t, float("nan"), float("nan"), "-"))
    t, _ = best_of(lambda: inference.next_token(g, x[:5000]))
    rows.append(("next_token (all d prefixes), noise 0.1", 5000 / t, float("nan"), float("nan"), "-"))
    t, _ = best_of(lambda: inference.latent_posterior(g, x, 1))
    rows.append(("latent_posterior level 1, noise 0.1", len(x) / t, float("nan"), float("nan"), "-"))

    print("v=32, m=8, s=2, L=3, one core")
    print("| task | rhm samples/s | per-sample reference samples/s | speed-up | target |")
    print("|---|---|---|---|---|")
    for r in rows:
        ref = "-" if np.isnan(r[2]) else f"{r[2]:,.0f}"
        ratio = "-" if np.isnan(r[3]) else f"{r[3]:.0f}x"
        print(f"| {r[0]} | {r[1]:,.0f} | {ref} | {ratio} | {r[4]} |")


if __name__ == "__main__":
    main()
