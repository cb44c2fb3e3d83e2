"""Generation / parse throughput against naive numpy references timed in the same process (one core).

    OMP_NUM_THREADS=1 python benchmarks/generation.py

Targets (issue 2): i.i.d. sampling >= 3x the naive reference (v=32, m=8, s=2, L=5, 1e6 samples) with peak
memory <= 2x the output; without replacement >= 20 M tokens/s (v=32, m=8, s=2, L=4); parse of 1e6 samples
(v=32, m=8, s=2, L=3) <= 0.5 s. Peak memory is measured with tracemalloc (numpy reports its buffers there).
Issue 16: every variant (Zipf rules, token noise, the sparse RHM) samples at >= 0.5x the plain sampler's
tokens per second, same v, m, s, L, measured in the same process (`--variants` runs only that table).
"""

from __future__ import annotations

import os
import time
import tracemalloc

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from rhm import RHM  # noqa: E402
from rhm.sparse import SparseRHM  # noqa: E402


def best_of(fn, repeat=3):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def naive_iid(g, n, seed):
    """The reference of the issue: per level, draw rule indices and fancy-index the rule table."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, g.n_classes, size=n)
    sym = y[:, None]
    for table in g.rules:
        choice = rng.integers(0, g.m, size=sym.shape)
        sym = table[sym, choice].reshape(n, -1)
    return sym, y


def naive_parse(g, x):
    """Reference parse: a dict from patch tuple to parent, applied with np.vectorize per level."""
    sym = x.astype(np.int64)
    for level in range(g.L - 1, -1, -1):
        table = g.rules[level]
        lookup = {}
        for parent in range(table.shape[0]):
            for rule in table[parent]:
                lookup[int(rule[0]) * g.v + int(rule[1])] = parent
        code = sym.reshape(len(x), -1, 2) @ np.array([g.v, 1])
        sym = np.vectorize(lambda c: lookup.get(c, -1), otypes=[np.int64])(code)
    return sym[:, 0]


def peak_bytes(fn):
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main():
    rows = []
    n = 10**6

    g = RHM(32, 8, 2, 5, seed=0)
    t_ref, (xr, _) = best_of(lambda: naive_iid(g, n, 0))
    t_new, (x, y) = best_of(lambda: g.sample(n, seed=0))
    out_bytes = x.nbytes + y.nbytes
    peak = peak_bytes(lambda: g.sample(n, seed=0))
    rows.append(("iid sample, v=32 m=8 s=2 L=5, 1e6", n * g.d / t_new / 1e6, n * g.d / t_ref / 1e6,
                 t_ref / t_new, ">= 3x", f"{peak / out_bytes:.2f}x output ({peak / 2**20:.0f} MiB)"))

    g = RHM(32, 8, 2, 4, seed=0)
    t_nr, (x, y) = best_of(lambda: g.sample(n, seed=0, replace=False))
    assert len(np.unique(x, axis=0)) == n
    t_ref, _ = best_of(lambda: naive_iid(g, n, 0))
    rows.append((f"without replacement, v=32 m=8 s=2 L=4 (num_inputs={float(g.num_inputs):.2g}), 1e6",
                 n * g.d / t_nr / 1e6, n * g.d / t_ref / 1e6, t_ref / t_nr, ">= 20 M tok/s", "-"))

    g = RHM(32, 8, 2, 3, seed=0)
    x, y = g.sample(n, seed=0)
    t_parse, lab = best_of(lambda: g.parse(x))
    assert (lab == y).all()
    sub = x[:100_000]
    t_ref, lab_ref = best_of(lambda: naive_parse(g, sub), repeat=1)
    assert (lab_ref == y[:100_000]).all()
    t_ref *= n / len(sub)  # extrapolated from 1e5 rows
    rows.append(("parse, v=32 m=8 s=2 L=3, 1e6", n * g.d / t_parse / 1e6, n * g.d / t_ref / 1e6,
                 t_ref / t_parse, f"<= 0.5 s (got {t_parse:.3f} s)", "-"))

    print("| benchmark | rhm M tok/s | naive M tok/s | speed-up | target | peak memory |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]:.1f} | {r[2]:.1f} | {r[3]:.1f}x | {r[4]} | {r[5]} |")


def variants(rounds=3):
    """Tokens/s of each variant against the plain sampler (same v, m, s, L; ~3.2e7 tokens each).

    The plain sampler and the variant run alternately, `rounds` times each, and the best of each is kept, so
    a change of machine load during the run hits both sides of a ratio alike.
    """
    print("| variant (v=32 m=8 s=2) | L | M tok/s | plain M tok/s | ratio | target >= 0.5x |")
    print("|---|---|---|---|---|---|")
    for L in (3, 5):
        plain = RHM(32, 8, 2, L, seed=0)
        n = 32 * 10**6 // plain.d
        for name, g in [("zipf=1.0", RHM(32, 8, 2, L, seed=0, zipf=1.0)),
                        ("zipf=0.0", RHM(32, 8, 2, L, seed=0, zipf=0.0)),
                        ("noise=0.1", RHM(32, 8, 2, L, seed=0, noise=0.1)),
                        ("noise=0.5", RHM(32, 8, 2, L, seed=0, noise=0.5)),
                        ("zipf=1.0, noise=0.1", RHM(32, 8, 2, L, seed=0, zipf=1.0, noise=0.1)),
                        ("sparse s0=1", SparseRHM(32, 8, 2, L, s0=1, seed=0)),
                        ("sparse s0=2", SparseRHM(32, 8, 2, L, s0=2, seed=0)),
                        ("sparse s0=1, noise=0.1", SparseRHM(32, 8, 2, L, s0=1, seed=0, noise=0.1))]:
            k = max(1, 32 * 10**6 // g.d)
            t_plain = t = float("inf")
            for _ in range(rounds):
                t_plain = min(t_plain, best_of(lambda: plain.sample(n, seed=0), repeat=1)[0])
                t = min(t, best_of(lambda: g.sample(k, seed=0), repeat=1)[0])
            rate, rate_plain = k * g.d / t / 1e6, n * plain.d / t_plain / 1e6
            ratio = rate / rate_plain
            ok = "yes" if ratio >= 0.5 else "NO"
            print(f"| {name} | {L} | {rate:.1f} | {rate_plain:.1f} | {ratio:.2f}x | {ok} |")


if __name__ == "__main__":
    import sys

    if "--variants" in sys.argv:
        variants()
    else:
        main()
        variants()
