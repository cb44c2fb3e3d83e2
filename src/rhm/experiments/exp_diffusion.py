"""DM1-DM3: diffusion on the RHM (docs/diffusion.md).

DM1 — Sclocchi, Favero, Wyart (PNAS 2025, arXiv 2402.16991): in a forward-backward experiment with exact belief
propagation the probability that the class changes jumps at a critical noise level, and the jump sharpens as the
depth L grows (a phase transition in the limit L -> infinity, at a finite noise level). Measured: the class-change
curve c(t) of exact forward-backward (rhm.diffusion), normalised by its t = 1 value 1 - 1/n_c; per grammar and L
its midpoint t_1/2 (c = 1/2) and its width w = t(0.8) - t(0.2). Checked: (i) the width shrinks geometrically with
L (the 95% CI of the slope of log w vs L, grammars resampled, lies below 0); (ii) the midpoint converges to a
finite t* (the CI of the ratio of its successive shifts, (t_1/2(L3) - t_1/2(L2)) / (t_1/2(L2) - t_1/2(L1)), lies
below 1); the extrapolated t* = t_1/2(L3) + shift·r/(1 - r) is reported. The papers' closed-form mean-field value
of t* (a function of v, m, s and the process) is not tested: see docs/diffusion.md.

DM2 — Sclocchi, Favero, Levi, Wyart (ICLR 2025, arXiv 2410.13770): token changes come in correlated chunks whose
size peaks at the transition. Measured on DM1's runs: the chunk size chi / (p (1 - p)) = Var(number of changed
tokens) / (d p (1 - p)) (1 for independent changes at rate p; chi = rhm.diffusion.token_correlations'
susceptibility, whose own (1/d) normalisation peaks at p = 1/2 even without correlations). Checked at the deepest L:
the CI of (t_peak - t_1/2), grammars resampled, lies within ±DM2_TOL; and the peak height grows with L (CI of
height(L3) - height(L1) above 0).

DM3 — Favero, Sclocchi, Cagnetta, Frossard, Wyart (ICML 2025, arXiv 2502.12089): a diffusion model learns the
grammar level by level, low levels (short contexts) with fewer samples than high ones. Measured: the diffusion
learner (rhm.learners.diffusion) trained on P strings; the validity of its samples per level (rhm.oracle.validity:
the fraction of level-l patches that are rules), the excess NLL (its ELBO bound minus the exact -log p / d), the
fraction of memorised samples. Checked, on the generated strings that are not training strings where the language
has at least NOVEL_RATIO times the largest P strings (a model that recalls its training set is not credited with the
grammar), else on all samples (novel ones are then biased towards invalid strings): the size P_l at which the patch
validity of level l first reaches DM3_LEARNT is ordered P_L <= ... <= P_1 (bottom level first). If some level never
reaches it on the grid, or a level is already learnt at the smallest P, the ordering cannot be decided:
inconclusive. On development grammars 0 and 1000 level 1 stayed below 0.9 at every P up to 4096 and every budget
tried up to 10,000 steps (docs/diffusion.md): quick, and --full at its 3000 steps, are expected to be inconclusive.
Validity over all samples rewards recalling this grammar's 1024-string language (42% of the samples were training
strings at P = 128 after 10,000 steps); both are tabled. A deciding grid needs a language much larger than P
(e.g. v = 16, m = 4).

Grammar seeds: development 0 and 1000 (used while building these records, never reported); held-out 2500..2509
(quick DM1/DM2), 2600..2619 (full DM1/DM2), 2700..2702 (quick DM3: 3 grammars only, stated in the section),
2800..2809 (full DM3).
"""

from __future__ import annotations

import math

import numpy as np

from .experiment import Experiment, check_mode
from .plots import _plt, _save
from .sweep import GrammarGrid, Sweep
from .verdicts import INCONCLUSIVE, Section, combine, exact_verdict, interval_verdict

DEV_SEEDS = (0, 1000)
TS = [round(0.05 * k, 2) for k in range(1, 20)]
FB_GRID = {
    "quick": dict(v=16, m=3, L=[3, 5, 7], process=["mask"], seeds=list(range(2500, 2510)), n_strings=300),
    "full": dict(v=16, m=3, L=[3, 5, 7, 9], process=["mask", "uniform"], seeds=list(range(2600, 2620)),
                 n_strings=2000),
}
DM3_GRID = {
    "quick": dict(v=8, m=2, L=3, sizes=[64, 1024], seeds=[2700, 2701, 2702], n_gen=500,
                  params={"width": 32, "max_steps": 120, "batch_size": 64, "sample_steps": 32}),
    "full": dict(v=8, m=2, L=3, sizes=[32, 64, 128, 256, 512, 1024, 2048, 4096], seeds=list(range(2800, 2810)),
                 n_gen=2000, params={"width": 64, "max_steps": 3000, "batch_size": 128, "sample_steps": 32}),
}
# sample_steps = 4d: on development grammar 1000 (d = 8) 8 -> 32 -> 128 unmasking steps raised the valid fraction of
# strings from 0.22 to 0.30 to 0.34 (fewer tokens unmasked together, each drawn independently of the others)
DM2_TOL = 0.1
DM3_LEARNT = 0.9
NOVEL_RATIO = 10  # DM3 reads its novel samples only where the language has >= this many times the largest P strings
N_BOOT = 2000


# ------------------------------------------------------------------------------------------------ runs
def _fb_name(mode, process):
    return f"{mode}-DM-fb-{process}"


def runs_fb(mode):
    p = FB_GRID[check_mode(mode)]
    return [Sweep(name=_fb_name(mode, proc), task="diffusion", seeds=[0],
                  grammars=[GrammarGrid(v=p["v"], m=p["m"], s=2, L=p["L"], seed=p["seeds"])],
                  extras={"what": "forward_backward", "ts": TS, "process": proc, "n_strings": p["n_strings"]})
            for proc in p["process"]]


def runs_DM3(mode):
    from ..spec import GrammarSpec
    from .config import RunConfig

    p = DM3_GRID[check_mode(mode)]
    learner = "diffusion"
    out = []
    for gs in p["seeds"]:
        spec = GrammarSpec(v=p["v"], m=p["m"], s=2, L=p["L"], seed=gs).to_dict()
        for P in p["sizes"]:
            params = dict(p["params"], seed=0)
            out.append(RunConfig(task="diffusion", grammar=spec, learner=learner, params=params, resolved=params,
                                 train_size=int(P), seed=0, extras={"what": "learn", "n_gen": p["n_gen"]},
                                 sweep=f"{mode}-DM3-learn", label=learner))
    return [out]


# ------------------------------------------------------------------------------------------------ DM1 / DM2
def crossing(t, c, level):
    """The first t at which the non-decreasing envelope of c(t) reaches `level` (linear interpolation); nan if
    never."""
    t, c = np.asarray(t, float), np.maximum.accumulate(np.asarray(c, float))
    k = int(np.argmax(c >= level)) if (c >= level).any() else -1
    if k < 0:
        return math.nan
    if k == 0:
        return float(t[0])
    return float(t[k - 1] + (level - c[k - 1]) * (t[k] - t[k - 1]) / max(c[k] - c[k - 1], 1e-12))


def peak(t, y):
    """Location and height of the maximum of y(t): a parabola through the grid's top point and its neighbours."""
    t, y = np.asarray(t, float), np.asarray(y, float)
    k = int(np.nanargmax(y))
    if 0 < k < len(t) - 1:
        a, b, c = y[k - 1], y[k], y[k + 1]
        den = a - 2 * b + c
        if den < 0:
            off = 0.5 * (a - c) / den
            return float(t[k] + off * (t[1] - t[0])), float(b - 0.25 * (a - c) * off)
    return float(t[k]), float(y[k])


def fb_table(rows):
    """{L: {grammar_seed: dict(t, c (normalised class change), chunk, mid, width, t_peak, h_peak)}}."""
    out = {}
    for r in rows:
        m = r["metrics"]
        t = np.asarray(m["t"], float)
        c = np.asarray(m["class_change"], float) / (1 - 1 / r["n_classes"])
        chunk = np.array([np.nan if v is None else v for v in m["chunk"]], float)
        tp, hp = peak(t, chunk)
        out.setdefault(int(r["L"]), {})[int(r["grammar_seed"])] = dict(
            t=t, c=c, chunk=chunk, mid=crossing(t, c, 0.5), width=crossing(t, c, 0.8) - crossing(t, c, 0.2),
            t_peak=tp, h_peak=hp)
    return out


def _boot(values_by_seed, stat, seed=0):
    """(estimate, lo, hi): `stat` of the per-grammar records, 95% percentile CI resampling grammars."""
    seeds = sorted(values_by_seed)
    est = stat(seeds)
    rng = np.random.default_rng(seed)
    boots = np.array([stat(list(rng.choice(seeds, len(seeds)))) for _ in range(N_BOOT)])
    boots = boots[np.isfinite(boots)]
    if not math.isfinite(est) or len(boots) < N_BOOT // 2:
        return est, math.nan, math.nan
    return float(est), float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))


def _fb_rows(store, mode, process):
    return [r for r in store.rows(sweep=_fb_name(mode, process)) if (r.get("metrics") or {}).get("t")]


def analyze_DM1(exp, store, mode, out_dir) -> Section:
    s = exp.section()
    p = FB_GRID[mode]
    checks, nums = [], []
    for proc in p["process"]:
        tab = fb_table(_fb_rows(store, mode, proc))
        Ls = sorted(tab)
        common = sorted(set.intersection(*(set(tab[L]) for L in Ls))) if Ls else []
        if len(Ls) < 3 or len(common) < 3:
            nums.append(f"{proc}: too few finished runs ({len(common)} grammars, L = {Ls})")
            checks.append(INCONCLUSIVE)
            continue
        per = {gs: {L: tab[L][gs] for L in Ls} for gs in common}

        def width_slope(seeds):
            w = np.array([np.mean([per[g][L]["width"] for g in seeds]) for L in Ls])
            return float(np.polyfit(Ls, np.log(w), 1)[0]) if (w > 0).all() else math.nan

        L1, L2, L3 = Ls[-3:]

        def shift_ratio(seeds):
            mid = {L: np.mean([per[g][L]["mid"] for g in seeds]) for L in (L1, L2, L3)}
            d1, d2 = mid[L2] - mid[L1], mid[L3] - mid[L2]
            return d2 / d1 if abs(d1) > 1e-9 else math.nan

        ws, ws_lo, ws_hi = _boot(per, width_slope)
        sr, sr_lo, sr_hi = _boot(per, shift_ratio, seed=1)
        checks.append(interval_verdict(ws_lo, ws_hi, accept_hi=0.0))
        checks.append(interval_verdict(sr_lo, sr_hi, accept_lo=0.0, accept_hi=1.0))
        mids = {L: float(np.mean([per[g][L]["mid"] for g in common])) for L in Ls}
        t_star = mids[L3] + (mids[L3] - mids[L2]) * sr / (1 - sr) if 0 < sr < 1 else math.nan
        nums.append(f"{proc}: width ∝ e^({ws:.3f}·L) [{ws_lo:.3f}, {ws_hi:.3f}], midpoint shift ratio {sr:.2f} "
                    f"[{sr_lo:.2f}, {sr_hi:.2f}], t½ = " + ", ".join(f"{mids[L]:.3f} (L={L})" for L in Ls)
                    + f", extrapolated t* ≈ {t_star:.3f}")
        s.blocks.append(("table", [f"{proc}: L", "t½ mean", "t½ sd", "width t(0.8) − t(0.2) mean", "width sd",
                                   "grammars"],
                         [[L, f"{mids[L]:.3f}", f"{np.std([per[g][L]['mid'] for g in common]):.3f}",
                           f"{np.mean([per[g][L]['width'] for g in common]):.3f}",
                           f"{np.std([per[g][L]['width'] for g in common]):.3f}", len(common)] for L in Ls]))
        fig = _plot_dm1(per, Ls, proc, out_dir / f"DM1-class-change-{proc}.png", mode)
        s.blocks.append(("fig", fig.name, f"Left: the class-change probability of exact forward–backward ({proc} "
                         "process), normalised by its value at t = 1, against the noise level t, mean over the "
                         "held-out grammars, one curve per depth L. Right: the width t(0.8) − t(0.2) per grammar "
                         "(points) and its mean (line) against L on a log scale: a straight falling line is the "
                         "geometric sharpening checked."))
    s.verdict = combine(checks)
    s.numbers = "; ".join(nums)
    s.blocks.insert(0, ("p", f"Held-out grammars v = {p['v']}, m = {p['m']}, s = 2 (seeds {p['seeds'][0]}.."
                              f"{p['seeds'][-1]}), {p['n_strings']} strings per grammar and noise level, t = 0.05 .. "
                              "0.95; CIs resample grammars (2000 bootstraps)."))
    return s


def analyze_DM2(exp, store, mode, out_dir) -> Section:
    s = exp.section()
    p = FB_GRID[mode]
    checks, nums = [], []
    for proc in p["process"]:
        tab = fb_table(_fb_rows(store, mode, proc))
        Ls = sorted(tab)
        common = sorted(set.intersection(*(set(tab[L]) for L in Ls))) if Ls else []
        if len(Ls) < 2 or len(common) < 3:
            nums.append(f"{proc}: too few finished runs")
            checks.append(INCONCLUSIVE)
            continue
        per = {gs: {L: tab[L][gs] for L in Ls} for gs in common}
        Lmax, Lmin = Ls[-1], Ls[0]
        gap, g_lo, g_hi = _boot(per, lambda sd: float(np.mean([per[g][Lmax]["t_peak"] - per[g][Lmax]["mid"]
                                                                for g in sd])))
        grow, gr_lo, gr_hi = _boot(per, lambda sd: float(np.mean([per[g][Lmax]["h_peak"] - per[g][Lmin]["h_peak"]
                                                                  for g in sd])), seed=1)
        checks.append(interval_verdict(g_lo, g_hi, -DM2_TOL, DM2_TOL))
        checks.append(interval_verdict(gr_lo, gr_hi, accept_lo=0.0))
        nums.append(f"{proc}: at L = {Lmax} t_peak − t½ = {gap:+.3f} [{g_lo:+.3f}, {g_hi:+.3f}] (band ±{DM2_TOL}); "
                    f"peak chunk size {np.mean([per[g][Lmin]['h_peak'] for g in common]):.2f} (L={Lmin}) → "
                    f"{np.mean([per[g][Lmax]['h_peak'] for g in common]):.2f} (L={Lmax}), growth CI "
                    f"[{gr_lo:.2f}, {gr_hi:.2f}]")
        s.blocks.append(("table", [f"{proc}: L", "t_peak mean", "t½ mean", "peak chunk size", "grammars"],
                         [[L, f"{np.mean([per[g][L]['t_peak'] for g in common]):.3f}",
                           f"{np.mean([per[g][L]['mid'] for g in common]):.3f}",
                           f"{np.mean([per[g][L]['h_peak'] for g in common]):.2f}", len(common)] for L in Ls]))
        fig = _plot_dm2(per, Ls, proc, out_dir / f"DM2-chunks-{proc}.png", mode)
        s.blocks.append(("fig", fig.name, "The mean size of a correlated chunk of token changes, Var(number "
                         "changed)/(d p(1 − p)), against the noise level t (mean over held-out grammars, one curve "
                         "per depth); dotted vertical lines: DM1's class-change midpoints t½ of the same runs."))
    s.verdict = combine(checks)
    s.numbers = "; ".join(nums)
    return s


# ------------------------------------------------------------------------------------------------ DM3
def _f(v) -> float:
    """A stored metric as a float (the store writes non-finite floats as strings, e.g. "nan")."""
    return math.nan if v is None else float(v)


def _nanmean(values) -> float:
    """Mean of the finite values; nan (no warning) when there is none."""
    a = np.asarray(values, float)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else math.nan


def analyze_DM3(exp, store, mode, out_dir) -> Section:
    s = exp.section()
    p = DM3_GRID[mode]
    rows = [r for r in store.rows(sweep=f"{mode}-DM3-learn") if (r.get("metrics") or {}).get("validity")]
    if not rows:
        s.numbers = "no finished runs"
        return s
    levels = list(range(1, p["L"] + 1))
    sizes = sorted({int(r["train_size"]) for r in rows})
    cell = {}
    for r in rows:
        cell.setdefault(int(r["train_size"]), []).append(r["metrics"])
    # Which samples the verdict reads. Recalled training strings are valid whatever the model learnt, so where the
    # language is much larger than the training set the verdict reads the novel samples (not training strings).
    # Where P covers much of the language, the novel samples are biased towards invalid strings (a valid sample is
    # then likely a training string even for a model that generalises: on development grammar 1000, P = 1,024 of
    # its 1,024 strings, novel level-1 validity 0.21-0.24 against 0.45-0.47 over all samples), so it reads all.
    # The rule is fixed by the grid, not by the rows finished so far: the grid's largest P, and the smallest
    # language among the grammars the rows record (the grid's where a row carries no config).
    from ..spec import GrammarSpec

    specs = [r["config"]["grammar"] for r in rows if (r.get("config") or {}).get("grammar")]
    language = min(GrammarSpec.from_dict(g).num_inputs for g in specs) if specs else \
        GrammarSpec(v=p["v"], m=p["m"], s=2, L=p["L"]).num_inputs
    recorded = all(m.get("novel_patch_validity", "absent") != "absent" for ms in cell.values() for m in ms)
    largest = max(max(p["sizes"]), sizes[-1])
    novel = recorded and language >= NOVEL_RATIO * largest
    key = "novel_patch_validity" if novel else "patch_validity"
    other = "patch_validity" if novel else "novel_patch_validity"
    table, mean_pv = [], {}
    for P in sizes:
        ms = cell[P]
        pv = {lv: _nanmean([_f((m[key] or {}).get(str(lv))) for m in ms]) for lv in levels}
        mean_pv[P] = pv
        table.append([P, *(f"{pv[lv]:.3f}" for lv in levels),
                      *(f"{_nanmean([_f((m.get(other) or {}).get(str(lv))) for m in ms]):.3f}"
                        for lv in levels),
                      *(f"{np.mean([_f(m['validity'][str(lv)]) for m in ms]):.3f}" for lv in levels),
                      f"{np.mean([m['excess_nll'] for m in ms]):.3f}",
                      f"{np.mean([m['memorised'] for m in ms]):.2f}", len(ms)])
    # a uniform random string rarely defines a level-1 patch: its patch validity there is nan (no patch to judge)
    rnd = {lv: _nanmean([_f(r["metrics"]["random_patch_validity"][str(lv)]) for r in rows]) for lv in levels}
    s.blocks.append(("p", f"Held-out grammars v = {p['v']}, m = {p['m']}, s = 2, L = {p['L']} (seeds "
                          f"{p['seeds'][0]}..{p['seeds'][-1]}: {len(p['seeds'])} grammars"
                          + (", fewer than the 10 of --full: quick only shows the pipeline" if mode == "quick" else "")
                          + f"); diffusion learner {p['params']}; {p['n_gen']} generated strings per run. Patch "
                          "validity of uniform random strings: " + ", ".join(f"l={lv}: {rnd[lv]:.3f}" for lv in levels)
                          + "."))
    read = "the novel samples (generated strings that are not training strings)" if novel else "all samples"
    s.blocks.append(("p", f"The verdict reads {read}: the language has {language:,} strings"
                     + (f", at least {NOVEL_RATIO}x the largest P." if novel else
                        f", less than {NOVEL_RATIO}x the largest P ({largest:,}), where "
                        "novel samples are biased "
                        "towards invalid ones" + ("" if recorded else "; these rows predate the novel samples' record")
                        + ". Read the memorised fraction beside it.")))
    which = "novel samples' patch validity" if novel else "patch validity"
    other_name = "patch validity, all samples" if novel else "novel samples' patch validity"
    s.blocks.append(("table", ["P", *(f"{which} l={lv}" for lv in levels),
                               *(f"{other_name} l={lv}" for lv in levels),
                               *(f"string validity l={lv}" for lv in levels), "excess NLL (nats/token)",
                               "memorised", "grammars"], table))
    # P_l: the first size at which level l's mean patch validity reaches DM3_LEARNT
    first = {}
    for lv in levels:
        hit = [P for P in sizes if mean_pv[P][lv] >= DM3_LEARNT]
        first[lv] = hit[0] if hit else None
    decidable = all(first[lv] is not None for lv in levels) and all(first[lv] > sizes[0] for lv in levels[:-1])
    order = [first[lv] for lv in reversed(levels)]  # bottom level first
    if decidable:
        s.verdict = exact_verdict(all(a <= b for a, b in zip(order, order[1:])))
    else:
        s.verdict = INCONCLUSIVE
    s.numbers = (f"first P with {'novel samples' if novel else 'all samples'}' patch validity ≥ {DM3_LEARNT}: "
                 + ", ".join(
        f"l={lv}: {first[lv] if first[lv] is not None else '> ' + str(sizes[-1])}" for lv in levels)
        + ("" if decidable else f" — the grid {sizes} cannot order the levels; --full runs P = "
           f"{DM3_GRID['full']['sizes']} on {len(DM3_GRID['full']['seeds'])} grammars"))
    fig = _plot_dm3(mean_pv, sizes, levels, rnd, out_dir / "DM3-validity.png", mode)
    s.blocks.append(("fig", fig.name, f"Patch validity of the diffusion learner's {'novel ' if novel else ''}"
                     "samples per level (l = L the "
                     "tokens' patches, l = 1 the root's) against the number of training strings P (mean over held-out "
                     "grammars); dotted: uniform random strings; dashed grey: the learnt threshold."))
    return s


# ------------------------------------------------------------------------------------------------ figures
def _plot_dm1(per, Ls, proc, path, mode):
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for L in Ls:
        t = next(iter(per.values()))[L]["t"]
        a.plot(t, np.mean([per[g][L]["c"] for g in per], 0), marker="o", ms=3, label=f"L = {L}")
        w = [per[g][L]["width"] for g in per]
        b.scatter([L] * len(w), w, s=10, alpha=0.5)
    b.plot(Ls, [np.mean([per[g][L]["width"] for g in per]) for L in Ls], "k-", label="mean")
    a.set(xlabel="noise level t (fraction masked)" if proc == "mask" else "noise level t (1 − ᾱ)",
          ylabel="P(class changes) / (1 − 1/n_c)", title=f"DM1 ({mode}): class change, {proc}")
    b.set(xlabel="depth L (levels)", ylabel="width t(0.8) − t(0.2)", yscale="log", title="transition width")
    a.legend(loc="upper left", bbox_to_anchor=(1.02, 1))
    b.legend(loc="upper left", bbox_to_anchor=(1.02, 1))
    return _save(fig, path)


def _plot_dm2(per, Ls, proc, path, mode):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    for L in Ls:
        t = next(iter(per.values()))[L]["t"]
        line, = ax.plot(t, np.nanmean([per[g][L]["chunk"] for g in per], 0), marker="o", ms=3, label=f"L = {L}")
        ax.axvline(np.mean([per[g][L]["mid"] for g in per]), color=line.get_color(), ls=":")
    ax.set(xlabel="noise level t", ylabel="chunk size Var(#changed)/(d p(1−p))",
           title=f"DM2 ({mode}): correlated token changes, {proc}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1))
    return _save(fig, path)


def _plot_dm3(mean_pv, sizes, levels, rnd, path, mode):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    for lv in levels:
        line, = ax.plot(sizes, [mean_pv[P][lv] for P in sizes], marker="o", label=f"level l = {lv}")
        if math.isfinite(rnd[lv]):
            ax.axhline(rnd[lv], color=line.get_color(), ls=":")
    ax.axhline(DM3_LEARNT, color="grey", ls="--", label="learnt threshold")
    ax.set(xscale="log", xlabel="training strings P", ylabel="fraction of level-l patches that are rules",
           ylim=(0, 1.02), title=f"DM3 ({mode}): validity of generated strings per level")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1))
    return _save(fig, path)


# ------------------------------------------------------------------------------------------------ records
DM1 = Experiment(
    id="DM1", title="Diffusion: the class-change transition of exact forward–backward sharpens with depth",
    law="the class-change probability of exact forward–backward jumps at a noise level t* that converges as L "
        "grows, with a width that shrinks geometrically: the 95% CI of the slope of log(width) vs L lies below 0 "
        "and the CI of the ratio of successive midpoint shifts lies in [0, 1] (Sclocchi, Favero, Wyart, PNAS 2025)",
    runs=runs_fb, analyze=analyze_DM1, thresholds={})
DM2 = Experiment(
    id="DM2", title="Diffusion: correlated chunks of token changes peak at the transition",
    law=f"the mean size of a correlated chunk of token changes peaks at DM1's midpoint: at the deepest L the 95% CI "
        f"of t_peak − t½ lies within ±{DM2_TOL}, and the peak grows with L (Sclocchi, Favero, Levi, Wyart, ICLR 2025)",
    runs=runs_fb, analyze=analyze_DM2, thresholds={"tol": DM2_TOL},
    reads=lambda mode: [_fb_name(mode, proc) for proc in FB_GRID[mode]["process"]])
DM3 = Experiment(
    id="DM3", title="Diffusion learner: its samples respect the grammar level by level as P grows",
    law=f"the number of training strings at which the learner's samples have ≥ {DM3_LEARNT} valid level-l patches "
        "grows from the bottom level (l = L) to the top (l = 1) (Favero et al., ICML 2025)",
    runs=runs_DM3, analyze=analyze_DM3, requires=("diffusion",), thresholds={"learnt": DM3_LEARNT})
