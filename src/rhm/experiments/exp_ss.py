"""SS1: samples to recover the grammar from unlabeled strings, vs the depth L and m (issue 27; docs/induce.md).

Korchinski, Favero, Wyart ("Learn from your own latents and not from tokens", arXiv 2605.27734, 2026): latent
prediction (their iterative latent clustering) recovers the RHM's latent tree from about m^3 samples up to
logarithms, **constant in L**, where token-level self-supervision (MLM) needs samples exponential in L.

Measured: the learner ``induce`` (rhm.learners.induce) fitted on P i.i.d. unlabeled strings through the engine's
train task (objective "masked"; the run's metrics carry ``all_rules_recovered`` and ``rules_recovered`` per
level, rhm.experiments.tasks.learned_grammar_metrics, and the masked excess cross-entropy over Bayes). Per
grammar, P*_g is the smallest P of the grid from which every rule is recovered (at that P and every larger one;
above the grid: censored). Per L, P*_1/2 is where the fraction of grammars with P*_g <= P crosses 1/2, linear in
log P between grid points (the median grammar's P*, without the grid's steps); its 95% interval and that of the
ratio P*_1/2(L) / P*_1/2(L=3) come from a bootstrap over grammars (resampled independently per L: the depths use
disjoint seeds, see HELD_OUT). Verdict, per L > 3 run: the ratio's interval within [1/1.3, 1.3] -> held, entirely
outside -> not held, else inconclusive; combined over the L run. A resample whose curve does not cross 1/2 on the
grid only bounds its P* (> the top size, or < the smallest): its ratio is then an interval and the CI is widened
to it (bootstrap_ratio), so a grid that does not bracket P* cannot make the verdict hold.

The m dependence (--full: m in 2, 3, 4, 6 at L = 3) is reported as the slope of log P*_1/2 vs log m with a
bootstrap interval, next to the paper's m^3, which is an upper bound up to logarithms: not a verdict. --full also
runs the transformer's masked-token (MLM) training at a few sizes on L = 3 and 4, reporting its excess
cross-entropy over Bayes against induce's at the same grammar: a comparison, not a verdict.

Grammar seeds: design (induce was built and tuned on them) 0-3; induce's benchmark (docs/induce.md) 2700-2709;
held-out for SS1, never run with induce before this record: 2800-2819 (quick: 2800-2809 at L = 3, 2810-2819 at
L = 4), 2800-2859 (full: 20 per L), disjoint across L (HELD_OUT). (DM3 --full also uses 2800-2809, on v=8, m=2
grammars: other grammars, since the seed draws the rules of a given shape.)
"""

from __future__ import annotations

import math

import numpy as np

from .. import learners
from .experiment import Experiment, check_mode
from .sweep import GrammarGrid, LearnerSpec, Sizes, Sweep
from .verdicts import INCONCLUSIVE, Section, combine, interval_verdict

DESIGN_SEEDS = (0, 1, 2, 3)
BENCHMARK_SEEDS = tuple(range(2700, 2710))
#: held-out grammar seeds per (mode, L), disjoint across L: an RHM draws its rules from the root down, so the same
#: seed at L = 3 and L = 4 gives the same top three levels (where induce's failures are: docs/induce.md), and the
#: two depths would not be independent samples of grammars. The m sweeps (L = 3) reuse L = 3's seeds: another m
#: is another grammar.
HELD_OUT = {"quick": {3: list(range(2800, 2810)), 4: list(range(2810, 2820))},
            "full": {3: list(range(2800, 2820)), 4: list(range(2820, 2840)), 5: list(range(2840, 2860))}}
V, S = 8, 2
L_REF = 3
GRID = {
    # quick: on the benchmark seeds 2700-2709 (docs/induce.md) 3/10 grammars had every rule at P = 200, 8/10 at
    # 300, 9/10 at 400, at L = 3 and 4 alike: this grid brackets P*_1/2 and P*_9/10 in 80 runs of ~0.4-1 s
    "quick": {"Ls": [3, 4], "ms": [4], "sizes": [200, 250, 300, 400]},
    "full": {"Ls": [3, 4, 5], "ms": [2, 3, 4, 6],
             "sizes": [25, 50, 75, 100, 150, 200, 300, 400, 600, 800, 1000, 1500, 2000, 3000, 5000]},
}
TEST_SIZE = 200
MASK_RATE = 0.15
INDUCE = LearnerSpec("induce")
# the transformer's MLM in --full (the defaults of LM3's masked runs, trained offline on the same P strings)
TRANSFORMER = LearnerSpec("transformer", params={"width": 64, "depth": 2, "heads": 4, "batch_size": 32,
                                                 "max_steps": 3000, "epochs": 100})
TRANSFORMER_GRID = {"seeds": {3: [2800, 2801, 2802], 4: [2820, 2821, 2822]}, "sizes": [500, 2000, 8000, 32000]}
RATIO_BAND = 1.3
LEVEL = 0.5  # P*_1/2: the median grammar's P*
N_BOOT = 2000


def _name(mode, what):
    return f"{mode}-SS1-{what}"


def runs_SS1(mode):
    p = GRID[check_mode(mode)]
    common = dict(learners=[INDUCE], sizes=Sizes(unit="samples", values=p["sizes"]), seeds=[0], test_size=TEST_SIZE,
                  sampling="iid", objective="masked", extras={"mask_rate": MASK_RATE})
    out = [Sweep(name=_name(mode, f"L{L}"), grammars=[GrammarGrid(v=V, m=4, s=S, L=L, seed=HELD_OUT[mode][L])],
                 **common) for L in p["Ls"]]
    out += [Sweep(name=_name(mode, f"m{m}"), grammars=[GrammarGrid(v=V, m=m, s=S, L=L_REF,
                                                                  seed=HELD_OUT[mode][L_REF])], **common)
            for m in p["ms"] if m != 4]
    if mode == "full" and learners.available("transformer"):  # torch is optional: the comparison is left out without it
        t = TRANSFORMER_GRID
        out.append(Sweep(name=_name(mode, "mlm"), grammars=[GrammarGrid(v=V, m=4, s=S, L=L, seed=sd)
                                                               for L, sd in t["seeds"].items()],
                         learners=[TRANSFORMER], sizes=Sizes(unit="samples", values=t["sizes"]), seeds=[0],
                         test_size=TEST_SIZE, sampling="iid", objective="masked", extras={"mask_rate": MASK_RATE}))
    return out


# ------------------------------------------------------------------------------------------------ analysis
def grammar_pstar(sizes, recovered) -> float:
    """P*_g of one grammar: the smallest size from which every run (this size and every larger one) recovered
    every rule; inf when the largest size did not."""
    sizes = np.asarray(sizes, float)
    ok = np.asarray(recovered, bool)
    order = np.argsort(sizes)
    sizes, ok = sizes[order], ok[order]
    bad = np.flatnonzero(~ok)
    if not len(bad):
        return float(sizes[0])
    return math.inf if bad[-1] == len(sizes) - 1 else float(sizes[bad[-1] + 1])


def crossing(pstars, grid, level: float = LEVEL) -> float:
    """Where the fraction of grammars with P*_g <= P first reaches `level`, linear in log P between grid points;
    inf when it never does on the grid, 0 when it already does at the smallest size (P* below the grid)."""
    pstars, grid = np.asarray(pstars, float), np.sort(np.asarray(grid, float))
    frac = (pstars[None, :] <= grid[:, None]).mean(1)
    hit = np.flatnonzero(frac >= level)
    if not len(hit):
        return math.inf
    k = hit[0]
    if k == 0:
        return 0.0
    f0, f1 = frac[k - 1], frac[k]
    t = (level - f0) / (f1 - f0)
    return float(np.exp(np.log(grid[k - 1]) + t * (np.log(grid[k]) - np.log(grid[k - 1]))))


def _bounds(value: float, grid) -> tuple[float, float]:
    """What a crossing says about P*_1/2: itself, or (top, inf) above the grid, or (0, bottom) below it."""
    if math.isinf(value):
        return float(grid[-1]), math.inf
    if value == 0:
        return 0.0, float(grid[0])
    return value, value


def _ratio_bounds(num: float, den: float, grid) -> tuple[float, float]:
    (a_lo, a_hi), (b_lo, b_hi) = _bounds(num, grid), _bounds(den, grid)
    lo = 0.0 if a_lo == 0 or math.isinf(b_hi) else a_lo / b_hi
    hi = math.inf if math.isinf(a_hi) or b_lo == 0 else a_hi / b_lo
    return lo, hi


def bootstrap_ratio(num, den, grid, n_boot: int = N_BOOT, seed: int = 0, level: float = LEVEL):
    """crossing(num) / crossing(den) and its 95% interval, the grammars resampled independently in each group.

    A resample whose curve does not cross `level` on the grid bounds its P* (above the grid: > top; below:
    < bottom), so its ratio is an interval; the CI is conservative: its lower end the 2.5% quantile of the
    resamples' lower bounds, its upper end the 97.5% quantile of their upper bounds. The estimate is nan when
    either point estimate is off the grid."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    grid = np.sort(np.asarray(grid, float))
    rng = np.random.default_rng(seed)
    a, b = crossing(num, grid, level), crossing(den, grid, level)
    est = a / b if 0 < a < math.inf and 0 < b < math.inf else math.nan
    boots = np.array([_ratio_bounds(crossing(num[rng.integers(0, len(num), len(num))], grid, level),
                                    crossing(den[rng.integers(0, len(den), len(den))], grid, level), grid)
                      for _ in range(n_boot)])
    # order statistics ("lower" / "higher", no interpolation, which inf bounds would turn into nan)
    return (est, float(np.quantile(boots[:, 0], 0.025, method="lower")),
            float(np.quantile(boots[:, 1], 0.975, method="higher")))


def bootstrap_crossing(pstars, grid, n_boot: int = N_BOOT, seed: int = 0, level: float = LEVEL):
    pstars = np.asarray(pstars, float)
    rng = np.random.default_rng(seed)
    boots = np.array([crossing(pstars[rng.integers(0, len(pstars), len(pstars))], grid, level)
                      for _ in range(n_boot)])
    return (crossing(pstars, grid, level), float(np.quantile(boots, 0.025, method="lower")),
            float(np.quantile(boots, 0.975, method="higher")))


def _per_grammar(rows) -> tuple[dict, list]:
    """{grammar seed: P*_g} and the grid (sorted sizes) from one sweep's rows."""
    by, grid = {}, set()
    for r in rows:
        by.setdefault(r["config"]["grammar"]["seed"], []).append(r)
        grid.add(r["train_size"])
    return ({k: grammar_pstar([r["train_size"] for r in rs], [r["metrics"]["all_rules_recovered"] for r in rs])
             for k, rs in sorted(by.items())}, sorted(grid))


def _fmt_p(x: float, grid) -> str:
    if math.isinf(x):
        return f"> {grid[-1]:g}"
    if x == 0:
        return f"< {grid[0]:g}"
    return f"{x:.0f}"


def _rows(store, name):
    return [r for r in store.rows(sweep=name)
            if (r.get("metrics") or {}).get("all_rules_recovered") is not None]


def analyze_SS1(exp, store, mode, out_dir) -> Section:
    s = exp.section()
    p = GRID[mode]
    band = exp.thresholds["ratio_band"]
    depth = {L: _rows(store, _name(mode, f"L{L}")) for L in p["Ls"]}
    depth = {L: rs for L, rs in depth.items() if rs}
    if not depth:
        s.numbers = "no finished runs"
        return s
    table, numbers, verdicts, curves = [], [], [], {}
    pst = {}
    for key, rs in [(f"L={L}, m=4", depth[L]) for L in depth] + [
            (f"L={L_REF}, m={m}", _rows(store, _name(mode, f"m{m}"))) for m in p["ms"] if m != 4]:
        if not rs:
            continue
        per, grid = _per_grammar(rs)
        est, lo, hi = bootstrap_crossing(list(per.values()), grid)
        pst[key] = (per, grid, est, lo, hi)
        recovered = {P: [r["metrics"]["all_rules_recovered"] for r in rs if r["train_size"] == P] for P in grid}
        excess = {P: [(r["metrics"].get("excess_cross_entropy") or 0.0) for r in rs if r["train_size"] == P]
                  for P in grid}
        curves[key] = (grid, [float(np.mean(recovered[P])) for P in grid])
        counts = " ".join(f"{P}:{sum(recovered[P])}/{len(recovered[P])}" for P in grid)
        table.append([key, f"{len(per)} ({min(per)}-{max(per)})", counts,
                      f"{_fmt_p(est, grid)} [{_fmt_p(lo, grid)}, {_fmt_p(hi, grid)}]",
                      f"{_fmt_p(crossing(list(per.values()), grid, 0.9), grid)}",
                      f"{np.median(excess[grid[-1]]):.3g} at P={grid[-1]}"])
    s.blocks.append(("table", ["grammars (v=8, s=2)", "held-out grammars (seeds)",
                               "P: grammars with every rule recovered", "P*_1/2 [95% CI]", "P*_9/10",
                               "median masked excess CE (nats)"], table))
    ref = pst.get(f"L={L_REF}, m=4")
    for L in sorted(depth):
        if L == L_REF or ref is None or f"L={L}, m=4" not in pst:
            continue
        per, grid = pst[f"L={L}, m=4"][:2]
        r, lo, hi = bootstrap_ratio(list(per.values()), list(ref[0].values()), sorted(set(grid) | set(ref[1])))
        numbers.append(f"P*_1/2(L={L}) / P*_1/2(L={L_REF}) = {r:.2f} [{lo:.2f}, {hi:.2f}] (band [{1 / band:.2f}, "
                       f"{band:.2f}])")
        verdicts.append(interval_verdict(lo, hi, 1 / band, band))
    if not verdicts:
        numbers.append(f"no ratio: runs at L={L_REF} and a deeper L are both needed")
    ms = [(m, pst[f"L={L_REF}, m={m}"]) for m in sorted(p["ms"]) if f"L={L_REF}, m={m}" in pst]
    ms = [(m, q) for m, q in ms if 0 < q[2] < math.inf]
    if len(ms) >= 2:
        x = np.log([m for m, _ in ms])
        rng = np.random.default_rng(1)
        slope = float(np.polyfit(x, np.log([q[2] for _, q in ms]), 1)[0])
        boots = []
        for _ in range(500):
            ys = [crossing(np.asarray(list(q[0].values()))[rng.integers(0, len(q[0]), len(q[0]))], q[1]) for _, q in ms]
            if all(0 < y < math.inf for y in ys):
                boots.append(np.polyfit(x, np.log(ys), 1)[0])
        ci = (f" [{np.quantile(boots, 0.025):.2f}, {np.quantile(boots, 0.975):.2f}]" if len(boots) >= 400
              else " (interval: too many resamples outside the grid)")
        numbers.append(f"slope of log P*_1/2 vs log m at L={L_REF}: {slope:.2f}{ci} (the paper's m^3 is an upper "
                       "bound up to logs)")
    mlm = [r for r in store.rows(sweep=_name(mode, "mlm"))
           if (r.get("metrics") or {}).get("excess_cross_entropy") is not None]
    if mlm:
        by = {}
        for r in mlm:
            key = (r["config"]["grammar"]["L"], r["train_size"])
            by.setdefault(key, []).append(r["metrics"]["excess_cross_entropy"])
        s.blocks.append(("table", ["transformer MLM", "P", "median masked excess CE (nats)", "grammars"],
                         [[f"L={L}", str(P), f"{np.median(v):.3f}", str(len(v))] for (L, P), v in sorted(by.items())]))
    s.verdict = combine(verdicts) if verdicts else INCONCLUSIVE
    s.numbers = "; ".join(numbers)
    if out_dir is not None and curves:
        f = recovery_figure(curves, out_dir / "SS1-recovery.png")
        s.blocks.append(("fig", f.name, "Fraction of held-out grammars (v = 8, s = 2) whose every rule `induce` "
                         "recovers from P unlabeled strings, per depth L and m: constant in L means the curves of "
                         "the same m lie on each other. Dotted: 1/2, where P*_1/2 is read."))
    return s


def recovery_figure(curves: dict, path):
    """Fraction of grammars with every rule recovered vs P (log), one line per (L, m)."""
    from .plots import fraction_figure

    return fraction_figure(curves, path, "unlabeled training strings P", "fraction of grammars,\nevery rule recovered",
                           "SS1: induce recovers the grammar (held-out grammars)", legend_title="v=8, s=2")


SS1 = Experiment(
    id="SS1", title="Samples to recover the grammar from unlabeled strings (induce): constant in L",
    law="the strings `induce` needs to recover every rule do not grow with the depth (Korchinski, Favero, Wyart "
        "2026: latent prediction needs ~m^3 samples up to logs, constant in L): the 95% CI (bootstrap over "
        "held-out grammars) of P*_1/2(L) / P*_1/2(L=3) lies within [1/1.3, 1.3] for every deeper L run "
        "(P*_1/2: the P at which half the grammars have every rule recovered)",
    runs=runs_SS1, analyze=analyze_SS1, requires=("induce",), thresholds={"ratio_band": RATIO_BAND})
