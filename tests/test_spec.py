"""rhm.GrammarSpec: one grammar description from the CLI to the store, analysis and figures."""

import dataclasses
import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import rhm
from rhm import Grammar, GrammarSpec
from rhm.cli import app
from rhm.experiments import GrammarGrid, LearnerSpec, LocalExecutor, ResultStore, Sizes, Sweep, run_sweep
from rhm.experiments import plots
from rhm.experiments.analysis import pstar_table, train_frame
from rhm.experiments.config import RunConfig

FIXTURES = Path(__file__).resolve().parent / "fixtures"


# ------------------------------------------------------------------------------------------------- the spec
def test_spec_fields_defaults_key_and_label():
    sp = GrammarSpec(v=8, m=4, L=3)
    assert sp.to_dict() == {"v": 8, "m": 4, "s": 2, "L": 3, "n_classes": 8, "rules": "uniform", "seed": 0}
    assert sp.is_plain and sp.is_classic and sp.kind == "rhm"
    # the key leaves defaults out: giving them explicitly changes nothing; the value is pinned across versions
    assert GrammarSpec(v=8, m=4, L=3, n_classes=8, zipf=None, noise=0.0, s0=0).key == sp.key == "b7864c96e205fbf8"
    var = sp.replace(zipf=1, noise=0.1, zipf_levels=[0])
    assert var.to_dict() == dict(sp.to_dict(), zipf=1.0, noise=0.1, zipf_levels=[0])
    assert var.key != sp.key and not var.is_plain and not var.is_classic
    assert sp.label == "v=8 m=4 s=2 L=3 n_c=8"
    assert var.label == "v=8 m=4 s=2 L=3 n_c=8 zipf=1 zipf_levels=0 noise=0.1"
    sparse = GrammarSpec(v=8, m=4, L=3, rules="balanced", seed=2, s0=1)
    assert sparse.label == "v=8 m=4 s=2 L=3 n_c=8 balanced seed=2 s0=1"
    assert sp.nc_m_L == 8 * 4**3 and sp.num_inputs == 8 * 4**7
    with pytest.raises(dataclasses.FrozenInstanceError):
        sp.v = 4


@pytest.mark.parametrize("bad, match", [(dict(noise=1.5), "noise"), (dict(m=9), "m=9"), (dict(s0=-1), "s0"),
                                        (dict(zipf_levels=[0]), "zipf_levels"), (dict(rules="unifrom"), "rules"),
                                        (dict(seed=-1), "seed"), (dict(s0=1, zipf=1.0, zipf_levels=[0]), "sparse")])
def test_spec_refuses_bad_fields_by_name(bad, match):
    with pytest.raises(ValueError, match=match):
        GrammarSpec(**{**dict(v=8, m=4, L=3), **bad})


def test_spec_builds_the_grammar_and_every_grammar_gives_its_spec_back():
    for sp in (GrammarSpec(v=4, m=2, L=3, seed=5), GrammarSpec(v=4, m=2, L=2, zipf=0.5, noise=0.1),
               GrammarSpec(v=4, m=2, s=3, L=2, rules="balanced"), GrammarSpec(v=4, m=2, L=2, s0=2, noise=0.1)):
        g = sp.build()
        assert isinstance(g, Grammar) and g.spec == sp
        assert type(g) is (rhm.SparseRHM if sp.s0 else rhm.RHM)
        assert sp.num_inputs == g.num_inputs and sp.d == g.d        # exact ints, without building
    assert rhm.RHM(4, 2, 2, 2, seed=3) == GrammarSpec(v=4, m=2, L=2, seed=3).build()
    custom = rhm.RHM.from_rules(list(rhm.RHM(4, 2, 2, 2).rules), v=4)
    assert custom.spec.rules == "custom" and custom.spec.seed is None
    with pytest.raises(ValueError, match="custom"):
        custom.spec.build()


def test_spec_dict_and_toml_round_trip():
    sp = GrammarSpec(v=6, m=3, L=2, n_classes=4, rules="uniform", seed=7, zipf=2.0, zipf_levels=[1], noise=0.05)
    assert GrammarSpec.from_dict(sp.to_dict()) == sp
    assert GrammarSpec.from_toml(sp.to_toml()) == sp
    assert GrammarSpec.from_dict(sp.build().params()) == sp          # RHM.params() (None = default) reads too
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['depth'\]"):
        GrammarSpec.from_dict({"v": 4, "m": 2, "L": 2, "depth": 3})
    with pytest.raises(ValueError, match="invalid TOML"):
        GrammarSpec.from_toml("v = ")


def test_dataset_takes_any_grammar_of_the_protocol_and_refuses_other_objects():
    from rhm.data import RHMStream

    assert RHMStream(GrammarSpec(v=4, m=2, L=2, s0=1).build(), 4, seed=0) is not None
    with pytest.raises(ValueError, match="rhm.Grammar protocol"):
        RHMStream(object(), 4, seed=0)


# ------------------------------------------------------------------- a store written before the spec existed
def _old_store(tmp_path):
    path = tmp_path / "old.sqlite"
    shutil.copy(FIXTURES / "store_v0.sqlite", path)
    return path


def test_old_store_migrates_in_place_with_the_same_keys(tmp_path):
    path = _old_store(tmp_path)
    cols = {r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(runs)")}
    assert "zipf" not in cols and "s0" not in cols                  # written by the code before GrammarSpec
    with ResultStore(path) as store:
        rows = store.rows()
        assert len(rows) == 28
        for r in rows:                                              # the stored key is the key of its config
            assert RunConfig.from_dict(r["config"]).key == r["key"]
            sp = GrammarSpec.from_dict(r["config"]["grammar"])
            assert (r["zipf"], r["noise"], r["s0"]) == (sp.zipf, sp.noise, sp.s0)   # columns filled from JSON
        # the same sweep definitions expand to exactly the stored keys: a rerun would run nothing
        expanded = set()
        for name in ("store_v0_iid.toml", "store_v0_distinct.toml"):
            expanded |= {c.key for c in Sweep.from_toml(FIXTURES / name).expand()}
        assert expanded == {r["key"] for r in rows}
        # reopening does not migrate twice
    with ResultStore(path) as store:
        assert len(store.rows()) == 28


def test_old_store_groups_by_the_full_spec(tmp_path):
    with ResultStore(_old_store(tmp_path)) as store:
        df = train_frame(store, "old-store")                       # zipf {0.5, 2} x noise {0, 0.1} on one grammar
        plain = train_frame(store, "old-store-distinct")           # plain, balanced seed 3, sparse s0 = 1
    pts = pstar_table(df, n_boot=50)
    assert len(pts) == 4 and len({p["grammar"].key for p in pts}) == 4
    assert sorted(p["grammar"].label for p in pts) == [
        "v=4 m=2 s=2 L=2 n_c=4 zipf=0.5", "v=4 m=2 s=2 L=2 n_c=4 zipf=0.5 noise=0.1",
        "v=4 m=2 s=2 L=2 n_c=4 zipf=2", "v=4 m=2 s=2 L=2 n_c=4 zipf=2 noise=0.1"]
    assert sorted(p["grammar"].label for p in pstar_table(plain, n_boot=50)) == [
        "v=4 m=2 s=2 L=2 n_c=4", "v=4 m=2 s=2 L=2 n_c=4 balanced seed=3", "v=4 m=2 s=2 L=2 n_c=4 s0=1"]


def test_old_store_reads_read_only_without_changing_a_byte(tmp_path):
    """`rhm report` opens stores read-only: an old store's spec columns come from a temp view, the file is untouched."""
    import hashlib

    path = _old_store(tmp_path)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with ResultStore(path, readonly=True) as store:
        pts = pstar_table(train_frame(store, "old-store"), n_boot=50)
    assert len(pts) == 4 and len({p["grammar"].key for p in pts}) == 4   # grouped by the full spec, as migrated
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


# ---------------------------------------------------------------------- the four-variant sweep
def test_zipf_by_noise_sweep_gives_four_pstar_rows_and_four_labelled_curves(tmp_path):
    sweep = Sweep(name="zn", grammars=[GrammarGrid(v=4, m=2, L=2, zipf=[0.5, 2.0], noise=[0.0, 0.1])],
                  learners=[LearnerSpec("kmeans")], sizes=Sizes(values=[20, 80]), seeds=[0, 1], test_size=40,
                  sampling="iid").validate()
    with ResultStore(tmp_path / "r.sqlite") as store:
        out = run_sweep(sweep, store, executor=LocalExecutor(workers=0), progress=False)
        df = train_frame(store, "zn")
    assert out.done == 16
    pts = pstar_table(df, n_boot=50)
    assert len(pts) == 4                                           # one P* row per grammar, none pooled
    assert {(p["grammar"].zipf, p["grammar"].noise) for p in pts} == {(0.5, 0.0), (0.5, 0.1), (2.0, 0.0), (2.0, 0.1)}
    fig, panels, styles = plots._learner_panels(df)
    ((ax, _, curves),) = panels
    assert len(curves) == 4 and len(styles) == 4                   # four curves, four legend styles
    plots.learning_curves(df, tmp_path / "c.png", "zipf x noise")
    labels = [plots._grammar_label(r) for r, *_ in curves]
    assert sorted(labels) == sorted(p["grammar"].label for p in pts)   # each curve labelled with its spec


# ------------------------------------------------------------------------------------- one seed vocabulary
def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_info_takes_grammar_seed_and_warns_on_the_old_seed():
    new = _cli("info", "--v", 4, "--m", 2, "--L", 2, "--grammar-seed", 3, "--json")
    assert new.exit_code == 0 and json.loads(new.stdout)["seed"] == 3 and "deprecated" not in new.stderr
    old = _cli("info", "--v", 4, "--m", 2, "--L", 2, "--seed", 3, "--json")
    assert old.exit_code == 0 and json.loads(old.stdout) == json.loads(new.stdout)
    assert "--seed is deprecated" in old.stderr and "--grammar-seed" in old.stderr
    both = _cli("info", "--v", 4, "--m", 2, "--L", 2, "--seed", 3, "--grammar-seed", 3)
    assert both.exit_code == 1 and both.stderr.startswith("error: ")


def test_sample_seeds_grammar_and_draw_separately(tmp_path):
    base = ("sample", "--v", 4, "--m", 2, "--L", 2, "--n", 50)
    r = _cli(*base, "--grammar-seed", 3, "--seed", 5, "--out", tmp_path / "a.npz")
    assert r.exit_code == 0, r.output
    x_ref, _ = rhm.RHM(4, 2, 2, 2, seed=3).sample(50, seed=5)
    assert np.array_equal(np.load(tmp_path / "a.npz")["x"], x_ref)
    # the old spelling of the draw's seed still works, with a warning
    r = _cli(*base, "--grammar-seed", 3, "--data-seed", 5, "--out", tmp_path / "b.npz")
    assert r.exit_code == 0 and "--data-seed is deprecated" in r.stderr
    assert np.array_equal(np.load(tmp_path / "b.npz")["x"], x_ref)
    # --seed alone meant the grammar before: refused this release rather than silently reinterpreted
    r = _cli(*base, "--seed", 3, "--out", tmp_path / "c.npz")
    assert r.exit_code == 1 and "--grammar-seed" in r.stderr and not (tmp_path / "c.npz").exists()
