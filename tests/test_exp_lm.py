"""LM2 (P* ratios of transformer and LCN to the CNN) and LM3 (masked-token excess cross-entropy vs P): records,
run lists (held-out grammar seeds only), and each analysis on a small synthetic store, where the verdict can go
either way."""

import numpy as np
import pytest
from _fakes import FakeStore

from rhm.experiments import exp_lm as el
from rhm.experiments.registry import EXPERIMENTS
from rhm.experiments.sweep import Sweep


@pytest.mark.parametrize("mode", ["quick", "full"])
def test_records_and_runs(mode):
    for rid, learners in (("LM2", {"cnn", "lcn", "transformer"}), ("LM3", {"transformer"})):
        exp = EXPERIMENTS[rid]
        if rid == "LM2" and mode == "quick":  # LM2 runs only in --full
            assert exp.runs(mode) == [] and exp.missing(mode).startswith("runs only with --full")
            continue
        assert exp.sweep_names(mode) and all(n.startswith(mode) for n in exp.sweep_names(mode))
        for job in exp.runs(mode):
            cfgs = job.validate().expand() if isinstance(job, Sweep) else job
            seeds = {c.grammar["seed"] for c in cfgs}
            held = el.LM2_HELD_OUT[mode] if rid == "LM2" else el.LM_HELD_OUT[mode]
            assert seeds == set(held) and len(seeds) >= 2 and not seeds & set(el.LM_DESIGN_SEEDS)
            assert {c.learner for c in cfgs} == learners
            assert {c.objective for c in cfgs} == ({"classify"} if rid == "LM2" else {"masked"})
            if rid == "LM3":  # online, as the anchors train: the sizes are samples seen
                assert all(c.extras["online"] is True for c in cfgs)
    if mode == "full":
        assert len(el.LM_HELD_OUT[mode]) >= 10


def _lm2_rows(mode, shift, seed, shift_transformer=None):
    """Error curves err = 1/(1 + (P/P0)^2) + noise, P0 = n_c m^L for the CNN and shift x that for the others."""
    rng = np.random.default_rng(seed)
    rows = []
    for L in el.LM2_LS[mode]:
        base = el.LM_V * el.LM_M ** L
        st = shift if shift_transformer is None else shift_transformer
        for lab, p0 in (("cnn", base), ("lcn", shift * base), ("transformer", st * base)):
            for P in np.geomspace(base / 8, base * 64, 10).astype(int):
                for s in range(3):
                    err = 0.875 / (1 + (P / p0) ** 2) + 0.01 * rng.standard_normal()
                    rows.append(dict(sweep=f"{mode}-LM2-L{L}", label=lab, L=L, n_classes=el.LM_V, train_size=int(P),
                                     test_error=float(np.clip(err, 0, 1))))
    return rows


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lm2_verdict_follows_the_ratio(seed):
    exp = EXPERIMENTS["LM2"]
    assert exp.analyze(exp, FakeStore(_lm2_rows("full", 4.0, seed)), "full", None).verdict == "held"
    assert exp.analyze(exp, FakeStore(_lm2_rows("full", 0.25, seed)), "full", None).verdict == "not held"
    sec = exp.analyze(exp, FakeStore(_lm2_rows("full", 4.0, seed)), "full", None)
    assert "d log ratio / dL" in sec.numbers
    # a transformer that never reaches the threshold on the grid: its ratio is bounded below (P* > the top size)
    sec = exp.analyze(exp, FakeStore(_lm2_rows("full", 4.0, seed, shift_transformer=1e4)), "full", None)
    assert sec.verdict == "held" and "(one-sided)" in str(sec.blocks)


def test_pstar_ratio_bounds():
    from rhm.experiments.complexity import PStar

    def ps(value, lo, hi, cens=None):
        return PStar(value, lo, hi, cens, 0.1, 2, sizes=[100, 200, 400], mean_errors=[])

    assert el.pstar_ratio(ps(300, 250, 350), ps(100, 50, 125)) == (3.0, 2.0, 7.0)
    r, lo, hi = el.pstar_ratio(ps(np.inf, np.inf, np.inf, "above"), ps(100, 50, 125))
    assert np.isnan(r) and lo == 400 / 125 and hi == np.inf
    r, lo, hi = el.pstar_ratio(ps(100, 100, 150, "below"), ps(200, 150, 300))
    assert np.isnan(r) and lo == 0 and hi == 1.0
    r, lo, hi = el.pstar_ratio(ps(300, 250, 350), ps(np.inf, np.inf, np.inf, "above"))
    assert np.isnan(r) and lo == 0 and hi == 350 / 400


def _lm3_rows(mode, exponent, seed):
    rng = np.random.default_rng(seed)
    rows = []
    for P in el.LM3_SIZES[mode]:
        for s in range(3):
            ex = 0.5 * (P / 64) ** exponent * np.exp(0.1 * rng.standard_normal())
            rows.append(dict(sweep=f"{mode}-LM3-masked", train_size=P, metrics=dict(
                cross_entropy=1.0 + ex, bayes_cross_entropy=1.0, excess_cross_entropy=ex)))
    return rows


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lm3_verdict_follows_the_slope(seed):
    exp = EXPERIMENTS["LM3"]
    assert exp.analyze(exp, FakeStore(_lm3_rows("quick", -0.5, seed)), "quick", None).verdict == "held"
    assert exp.analyze(exp, FakeStore(_lm3_rows("quick", 0.3, seed)), "quick", None).verdict == "not held"
    est, lo, hi = el.excess_slope([64, 128, 256, 512] * 3, 0.5 * (np.array([64, 128, 256, 512] * 3) / 64) ** -0.5)
    assert max(abs(est + 0.5), abs(lo + 0.5), abs(hi + 0.5)) < 1e-9  # noiseless: a zero-width interval


def _lm1_rows(mode, exponent, seed):
    """Last-token CE curves stepping from log v to each grammar's plateau at P0 = 2.5 P_1 (P_1 / P_1(m=4))^(e - 1)."""
    rng = np.random.default_rng(seed)
    rows = []
    for m in el.MS[mode]:
        p1, p1_ref = el.p1_formula(el.V, m, el.S), el.p1_formula(el.V, el.MS[mode][0], el.S)
        p0 = 2.5 * p1 * (p1 / p1_ref) ** (exponent - 1)
        for gseed in el.GRAMMAR_SEEDS[mode]:
            grammar = dict(v=el.V, m=m, s=el.S, L=2, n_classes=el.V, rules="uniform", seed=gseed)
            top = np.log(el.V)
            plateau = el.sibling_entropy(grammar, n=20_000)
            for f in el.FACTORS[mode]:
                P = max(8, int(f * p1))
                for s in el.SEEDS[mode]:
                    ce = plateau + (top - plateau) / (1 + (P / p0 / np.exp(0.05 * rng.standard_normal())) ** 2)
                    rows.append(dict(sweep=f"{mode}-LM1-m{m}", train_size=P, config=dict(grammar=grammar, label="cnn"),
                                     metrics=dict(cross_entropy=ce, excess_cross_entropy=ce - 0.1)))
    return rows


@pytest.mark.parametrize("seed", [0, 1])
def test_lm1_verdict_follows_the_slope(seed):
    exp = EXPERIMENTS["LM1"]
    held = exp.analyze(exp, FakeStore(_lm1_rows("quick", 1.0, seed)), "quick", None)
    assert held.verdict == "held" and "(one seed)" in str(held.blocks)
    assert exp.analyze(exp, FakeStore(_lm1_rows("quick", 2.0, seed)), "quick", None).verdict == "not held"


def test_lm1_figure_carries_the_exact_plateaus(tmp_path):
    """LM1 reads each grammar against its exact plateaus (rhm.inference.plateaus) and draws them on its curves."""
    from rhm.experiments.verdicts import INCONCLUSIVE

    exp = EXPERIMENTS["LM1"]
    sec = exp.analyze(exp, FakeStore(_lm1_rows("quick", 1.0, 0)), "quick", tmp_path)
    assert (tmp_path / "LM1-curves.png").stat().st_size > 10_000
    assert any(b[0] == "fig" and b[1] == "LM1-curves.png" and "plateaus" in b[2] for b in sec.blocks)
    table = next(b for b in sec.blocks if b[0] == "table")
    grammar = dict(v=el.V, m=4, s=el.S, L=2, n_classes=el.V, rules="uniform", seed=201)
    pl = el.lm_plateaus(grammar)
    assert len(pl) == 3 and pl[0] > pl[1] > pl[2] and pl[0] <= np.log(el.V) + 1e-12
    assert abs(pl[1] - el.sibling_entropy(grammar, n=100_000)) < 0.02  # plateau 1 = the sibling's entropy (MC)
    assert " → ".join(f"{v:.3f}" for v in pl) in str(table)
    # one m only: no slope, and the section says what --full would run
    rows = [r for r in _lm1_rows("quick", 1.0, 0) if r["sweep"].endswith("m4")]
    sec = exp.analyze(exp, FakeStore(rows), "quick", None)
    assert sec.verdict == INCONCLUSIVE and "--full runs" in sec.numbers and "--dry-run --section LM1" in sec.numbers


def test_lm3_figure_and_online_sizes(tmp_path):
    exp = EXPERIMENTS["LM3"]
    rows = _lm3_rows("quick", -0.5, 0)
    grammar = dict(v=el.LM_V, m=el.LM_M, s=el.S, L=el.LM3_L, n_classes=el.LM_V, rules="uniform", seed=301)
    for r in rows:
        r["config"] = {"grammar": grammar}
    sec = exp.analyze(exp, FakeStore(rows), "quick", tmp_path)
    assert sec.verdict == "held" and (tmp_path / "LM3-curves.png").exists()
    assert "samples seen" in sec.numbers


def test_lm2_convergence_check_blocks_a_held_verdict():
    exp = EXPERIMENTS["LM2"]
    rows = _lm2_rows("full", 4.0, 0)
    for r in rows:
        r["info"] = {"final_train_loss": 0.01}
    sec = exp.analyze(exp, FakeStore(rows), "full", None)
    assert sec.verdict == "held" and "convergence check failed" not in sec.numbers
    for r in rows:
        if r["label"] == "lcn":
            r["info"] = {"final_train_loss": 0.4}  # under-trained: no verdict can rest on it
    sec = exp.analyze(exp, FakeStore(rows), "full", None)
    assert sec.verdict == "inconclusive" and "convergence check failed for lcn L=3, lcn L=4, lcn L=5" in sec.numbers
