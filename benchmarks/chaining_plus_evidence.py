"""chaining+ evidence from the experiment engine's store: switch ablations and P* on held-out grammars.

    rhm sweep benchmarks/sweeps/chaining_plus_ablation_m4_L3.toml --store results/cp.sqlite --workers 1
    python benchmarks/chaining_plus_evidence.py ablation --store results/cp.sqlite --sweep chaining-plus-ablation-m4_L3
    rhm sweep benchmarks/sweeps/chaining_plus_pstar_m4_L3.toml --store results/cp.sqlite --workers 1
    python benchmarks/chaining_plus_evidence.py pstar --store results/cp.sqlite --sweep chaining-plus-pstar-m4_L3

Every run is the engine's (grammar seed, data + learner seed) point: g.sample(P + test, seed) without
replacement, the first P to fit, the rest to test. Ablation: per switch, the test error with it off minus with
it on (defaults), averaged over the data seeds of each grammar, then over grammars, with a 95% bootstrap
interval over grammars; "keeps" when the interval lies above 0, "hurts" when below, else "no consistent gain".
P*: the mean test error over grammars (each averaged over its seeds) against P, P* where it crosses 10% of
chance error (interpolated in log P between the bracketing sizes), its 95% interval from resampling grammars;
P_floor = n_c m ln 10 (an oracle that knows every rule below the top still errs on unseen top rules).
"unseen top": on the engine's own draws, the fraction of test inputs whose top rule (label, level-1 patch) no
training input uses, averaged over the grammars (that oracle's error is (1 - 1/n_c) x it when it guesses the
class of those inputs; a learner that always misses them errs on all of them). Draws without replacement pick the
same input indices for every grammar of one shape, so with one data seed this fraction is shared by all the
grammars: it can rise with P, and the interval over grammars does not include the draw's own variance.
"""

from __future__ import annotations

import argparse
import math
import sqlite3

import numpy as np

BOOT = 2000


def load(store: str, sweep: str) -> list[dict]:
    con = sqlite3.connect(store)
    con.row_factory = sqlite3.Row
    rows = con.execute("SELECT r.* FROM runs r JOIN sweep_keys k ON r.key = k.key WHERE k.sweep = ? "
                       "AND r.test_error IS NOT NULL", (sweep,)).fetchall()
    if not rows:
        raise SystemExit(f"no finished runs of sweep {sweep!r} in {store}")
    return [dict(r) for r in rows]


def per_grammar(rows, label, P=None) -> dict:
    """grammar seed -> mean test error over its data seeds, for one learner label (and size)."""
    out: dict = {}
    for r in rows:
        if r["label"] == label and (P is None or r["train_size"] == P):
            out.setdefault(r["grammar_seed"], []).append(r["test_error"])
    return {g: float(np.mean(v)) for g, v in out.items()}


def boot_ci(values, rng, stat=np.mean):
    values = np.asarray(values, float)
    idx = rng.integers(0, len(values), (BOOT, len(values)))
    reps = np.array([stat(values[i]) for i in idx])
    return float(np.percentile(reps, 2.5)), float(np.percentile(reps, 97.5))


def ablation(rows):
    rng = np.random.default_rng(0)
    base = per_grammar(rows, "defaults")
    labels = sorted({r["label"] for r in rows} - {"defaults"})
    secs = {lab: np.mean([r["fit_seconds"] for r in rows if r["label"] == lab]) for lab in labels + ["defaults"]}
    g0 = rows[0]
    print(f"v={g0['v']} m={g0['m']} L={g0['L']} P={sorted({r['train_size'] for r in rows})}, grammars "
          f"{sorted(base)}, seeds {sorted({r['seed'] for r in rows})}")
    print("| variant | mean test error | error(variant) - error(defaults) [95% CI over grammars] | grammars "
          "worse / better | fit s | verdict |")
    print("|---|---|---|---|---|---|")
    print(f"| defaults | {np.mean(list(base.values())):.4f} | - | - | {secs['defaults']:.2f} | - |")
    for lab in labels:
        off = per_grammar(rows, lab)
        common = sorted(set(off) & set(base))
        d = np.array([off[g] - base[g] for g in common])
        lo, hi = boot_ci(d, rng)
        verdict = "keeps" if lo > 0 else "hurts" if hi < 0 else "no consistent gain"
        print(f"| {lab} | {np.mean([off[g] for g in common]):.4f} | {d.mean():+.4f} [{lo:+.4f}, {hi:+.4f}] | "
              f"{int((d > 1e-12).sum())} / {int((d < -1e-12).sum())} of {len(d)} | {secs[lab]:.2f} | {verdict} |")


def crossing(sizes, errs, thr):
    """P where the error curve first falls to thr (log-linear between the bracketing sizes); inf if never."""
    for i, (p, e) in enumerate(zip(sizes, errs)):
        if e <= thr:
            if i == 0:
                return float(p)  # at or below the smallest size: an upper bound
            p0, e0 = sizes[i - 1], errs[i - 1]
            t = (e0 - thr) / (e0 - e)
            return float(math.exp(math.log(p0) + t * (math.log(p) - math.log(p0))))
    return math.inf


def curves(rows, lab):
    """(sizes, grammars, errors (grammars, sizes)) of one learner label."""
    sizes = sorted({r["train_size"] for r in rows if r["label"] == lab})
    table = {P: per_grammar(rows, lab, P) for P in sizes}
    grammars = sorted(set.intersection(*(set(t) for t in table.values())))
    return sizes, grammars, np.array([[table[P][g] for P in sizes] for g in grammars])


def unseen_top(r) -> float:
    """Fraction of the run's test inputs whose top rule (label, level-1 patch) no training input uses."""
    import rhm
    from rhm.experiments.tasks import train_test_split

    g = rhm.RHM(v=r["v"], m=r["m"], s=r["s"], L=r["L"], n_classes=r["n_classes"], seed=r["grammar_seed"])
    xtr, ytr, xte, yte = train_test_split(g, r["train_size"], r["test_size"], r["seed"])

    def top(x, y):
        _, tree = g.parse(x, return_tree=True)
        return np.column_stack([y, tree[1]])

    seen = np.unique(top(xtr, ytr), axis=0)
    te = top(xte, yte)
    unseen = ~(te[:, None, :] == seen[None, :, :]).all(2).any(1)
    return float(unseen.mean())


def pstar(rows):
    g0 = rows[0]
    n_c, m = g0["n_classes"], g0["m"]
    thr = 0.1 * (1 - 1 / n_c)
    floor = n_c * m * math.log(10)
    labels = sorted({r["label"] for r in rows}, key=lambda lab: (lab != "defaults", lab))
    base = curves(rows, "defaults") if "defaults" in labels else None
    for lab in labels:
        rng = np.random.default_rng(0)
        sizes, grammars, E = curves(rows, lab)
        value = crossing(sizes, E.mean(0), thr)
        boot = rng.integers(0, len(E), (BOOT, len(E)))
        reps = np.array([crossing(sizes, E[i].mean(0), thr) for i in boot])
        lo, hi = np.percentile(reps, 2.5), np.percentile(reps, 97.5)
        secs = {P: np.mean([r["fit_seconds"] for r in rows if r["label"] == lab and r["train_size"] == P])
                for P in sizes}
        print(f"{lab}: v={g0['v']} m={m} L={g0['L']} s={g0['s']}, grammars {grammars}, "
              f"seeds {sorted({r['seed'] for r in rows})}, threshold {thr:.3f}, P_floor = {floor:.1f}")
        print("  P:          " + " ".join(f"{P:7d}" for P in sizes))
        print("  mean error: " + " ".join(f"{e:7.4f}" for e in E.mean(0)))
        print("  fit s:      " + " ".join(f"{secs[P]:7.2f}" for P in sizes))
        unseen = {P: np.mean([unseen_top(r) for r in rows if r["label"] == lab and r["train_size"] == P])
                  for P in sizes}
        print("  unseen top: " + " ".join(f"{unseen[P]:7.4f}" for P in sizes))
        print(f"  P* = {value:.0f} [95% CI {lo:.0f}, {hi:.0f}], P*/P_floor = {value / floor:.2f} "
              f"[{lo / floor:.2f}, {hi / floor:.2f}]")
        if lab != "defaults" and base is not None and base[0] == sizes and base[1] == grammars:
            # paired: the same resampled grammars for both curves
            d = reps - np.array([crossing(sizes, base[2][i].mean(0), thr) for i in boot])
            d = d[np.isfinite(d)]
            print(f"  P*({lab}) - P*(defaults) = {value - crossing(sizes, base[2].mean(0), thr):+.0f} "
                  f"[95% CI {np.percentile(d, 2.5):+.0f}, {np.percentile(d, 97.5):+.0f}] "
                  f"({len(d)} of {BOOT} resamples finite)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["ablation", "pstar"])
    ap.add_argument("--store", required=True)
    ap.add_argument("--sweep", required=True)
    args = ap.parse_args()
    rows = load(args.store, args.sweep)
    (ablation if args.what == "ablation" else pstar)(rows)


if __name__ == "__main__":
    main()
