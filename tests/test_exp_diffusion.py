"""DM1-DM3 (rhm.experiments.exp_diffusion): the diffusion task's rows, the analysis helpers, the records."""

import math

import numpy as np
import pytest
from _fakes import FakeStore

from rhm.experiments import exp_diffusion as E
from rhm.experiments import registry
from rhm.experiments.config import RunConfig
from rhm.experiments.tasks import execute
from rhm.spec import GrammarSpec


def _fb(L, seed=1000, n=200, process="mask"):  # a development seed: never one of the held-out grammars
    cfg = RunConfig(task="diffusion", grammar=GrammarSpec(v=16, m=3, s=2, L=L, seed=seed).to_dict(), seed=0,
                    extras={"what": "forward_backward", "ts": [0.0, 0.5, 1.0], "process": process, "n_strings": n})
    return execute(cfg.to_dict())["metrics"]


def test_forward_backward_rows_at_the_ends():
    m = _fb(3)
    assert m["t"] == [0.0, 0.5, 1.0]
    # t = 0: nothing masked, nothing changes; t = 1: the class is redrawn (changes w.p. 1 - 1/16 = 0.94; 200
    # strings: 5 binomial sd ~ 0.085)
    assert m["class_change"][0] == 0.0 and m["rate"][0] == 0.0 and m["chunk"][0] is None
    assert abs(m["class_change"][2] - 15 / 16) < 0.085
    assert len(m["fraction"][1]) == 4 and m["fraction"][1][0] == m["class_change"][1]
    # changes of a hierarchical chain come in chunks: more variance than independent changes at the same rate
    assert m["chunk"][1] > 1.2


def test_uniform_process_rows():
    m = _fb(3, process="uniform")
    assert m["class_change"][0] == 0.0 and 0 < m["rate"][1] < 1


def test_crossing_and_peak():
    t = np.array([0.1, 0.2, 0.3, 0.4])
    assert E.crossing(t, [0.0, 0.2, 0.6, 1.0], 0.4) == pytest.approx(0.25)
    assert E.crossing(t, [0.0, 0.3, 0.2, 1.0], 0.5) == pytest.approx(0.3 + 0.1 * 0.2 / 0.7)  # non-decreasing envelope
    assert math.isnan(E.crossing(t, [0.0, 0.1, 0.1, 0.2], 0.5))
    loc, h = E.peak(t, -(t - 0.23) ** 2)  # a parabola is located exactly
    assert loc == pytest.approx(0.23) and h == pytest.approx(0.0, abs=1e-12)


def test_fb_table_widths_shrink_with_depth():
    """The DM1 quantities on two development grammars: the transition is narrower at L = 6 than at L = 2."""
    rows = [{"metrics": _fb_full(L, s), "n_classes": 16, "L": L, "grammar_seed": s} for L in (2, 6) for s in (0, 1000)]
    tab = E.fb_table(rows)
    for s in (0, 1000):
        assert tab[6][s]["width"] < 0.8 * tab[2][s]["width"]
        assert 0.3 < tab[6][s]["mid"] < 0.9


def _fb_full(L, seed):
    cfg = RunConfig(task="diffusion", grammar=GrammarSpec(v=16, m=3, s=2, L=L, seed=seed).to_dict(), seed=0,
                    extras={"what": "forward_backward", "ts": E.TS, "process": "mask", "n_strings": 200})
    return execute(cfg.to_dict())["metrics"]


def test_learn_rows():
    cfg = RunConfig(task="diffusion", grammar=GrammarSpec(v=4, m=2, s=2, L=2, seed=0).to_dict(),
                    learner="diffusion", params={"width": 16, "depth": 1, "max_steps": 20, "device": "cpu"},
                    train_size=50, seed=0, extras={"what": "learn", "n_gen": 100})
    m = execute(cfg.to_dict())["metrics"]
    assert set(m["validity"]) == {"1", "2"} and set(m["patch_validity"]) == {"1", "2"}
    assert 0 <= m["memorised"] <= 1 and m["n_gen"] == 100
    assert m["n_novel"] == round((1 - m["memorised"]) * 100)
    if m["n_novel"]:  # the validity of the samples that are not training strings, per level
        assert set(m["novel_patch_validity"]) == {"1", "2"} and set(m["novel_validity"]) == {"1", "2"}
    else:
        assert m["novel_patch_validity"] is None and m["novel_validity"] is None
    assert m["excess_nll"] > -0.2  # an ELBO bound is above the exact NLL up to its Monte Carlo noise


def test_bad_what_raises():
    cfg = RunConfig(task="diffusion", grammar=GrammarSpec(v=4, m=2, s=2, L=2, seed=0).to_dict(),
                    extras={"what": "nope"})
    with pytest.raises(ValueError, match="what"):
        execute(cfg.to_dict())


def test_records_registered_with_held_out_seeds():
    for rid in ("DM1", "DM2", "DM3"):
        assert registry.get(rid).id == rid
    for grid in (E.FB_GRID, E.DM3_GRID):
        assert len(grid["full"]["seeds"]) >= 10
        for mode in ("quick", "full"):
            assert not set(grid[mode]["seeds"]) & set(E.DEV_SEEDS)
    assert len(E.FB_GRID["quick"]["seeds"]) >= 10
    sweeps = E.runs_fb("quick")
    assert [s.name for s in sweeps] == ["quick-DM-fb-mask"] and len(sweeps[0].expand()) == 30
    jobs = E.runs_DM3("quick")[0]
    assert {j.train_size for j in jobs} == set(E.DM3_GRID["quick"]["sizes"])
    assert registry.get("DM2").sweep_names("full") == ["full-DM-fb-mask", "full-DM-fb-uniform"]


def _dm3_row(P, all_pv, novel_pv):
    lv = lambda vals: {str(k + 1): v for k, v in enumerate(vals)}  # noqa: E731
    m = {"validity": lv([0.5] * 3), "patch_validity": lv(all_pv), "random_patch_validity": lv([0.2] * 3),
         "excess_nll": 0.1, "memorised": 0.5}
    if novel_pv is not None:
        m["novel_patch_validity"] = lv(novel_pv)
    return {"sweep": "full-DM3-learn", "train_size": P, "metrics": m}


def test_dm3_verdict_reads_the_novel_samples_where_the_language_is_large(tmp_path, monkeypatch):
    # every sample valid at every P (a model that recalls its training strings), while the novel samples learn
    # level 3 (the tokens' patches) at P = 64, level 2 at 256, level 1 at 1024: bottom level first
    novel = {64: [0.3, 0.5, 0.95], 256: [0.4, 0.95, 0.97], 1024: [0.95, 0.96, 0.98]}
    rows = [_dm3_row(P, [0.99] * 3, pv) for P, pv in novel.items()]
    old = [_dm3_row(P, [0.99] * 3, None) for P in novel]  # rows stored before the novel samples were recorded
    big = dict(E.DM3_GRID["full"], v=16, m=4)  # 16 * 4**7 = 262,144 strings >= 10 x 1,024
    monkeypatch.setitem(E.DM3_GRID, "full", big)
    sec = E.analyze_DM3(registry.get("DM3"), FakeStore(rows), "full", tmp_path)
    assert sec.verdict == "held", sec.numbers
    assert "novel" in sec.numbers and "l=1: 1024" in sec.numbers
    # older rows fall back to all samples, where these levels cannot be ordered
    assert E.analyze_DM3(registry.get("DM3"), FakeStore(old), "full", tmp_path).verdict == "inconclusive"
    # a language of 8 * 2**7 = 1,024 strings, as large as P: the novel samples are biased, all samples are read
    monkeypatch.setitem(E.DM3_GRID, "full", dict(big, v=8, m=2))
    sec = E.analyze_DM3(registry.get("DM3"), FakeStore(rows), "full", tmp_path)
    assert sec.verdict == "inconclusive" and "all samples" in sec.numbers


@pytest.mark.slow
def test_reproduce_quick_sections(tmp_path):
    from typer.testing import CliRunner

    from rhm.cli import app

    res = CliRunner().invoke(app, ["reproduce", "--quick", "--section", "DM1", "--section", "DM2", "--section", "DM3",
                                   "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    text = (tmp_path / "index.md").read_text()
    for rid in ("DM1", "DM2", "DM3"):
        assert f"{rid}." in text
    assert (tmp_path / "DM1-class-change-mask.png").exists() and (tmp_path / "DM3-validity.png").exists()
