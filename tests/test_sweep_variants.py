"""Variant grammars (zipf, zipf_levels, noise, s0) in sweeps, the train task and `rhm train`."""

import json

import pytest
from typer.testing import CliRunner

from rhm.cli import app
from rhm.experiments import GrammarGrid, LearnerSpec, LocalExecutor, ResultStore, Sizes, Sweep, run_sweep
from rhm.experiments.sweep import SweepError

TOML = """
name = "variants"
sampling = "iid"
seeds = [0, 1]
test_size = 300
[[grammars]]
v = 4
m = 2
L = 2
noise = [0.0, 0.2]
[[grammars]]
v = 4
m = 2
L = 2
zipf = 1.0
zipf_levels = [0]
[[learners]]
name = "kmeans"
[sizes]
values = [12]
"""


def test_plain_keys_unchanged_by_the_variant_fields():
    """A grid that gives the variant defaults explicitly expands to the same run keys as one that omits them."""
    base = dict(name="k", grammars=[GrammarGrid(v=4, m=2, L=2)], learners=[LearnerSpec("kmeans")],
                sizes=Sizes(values=[10]), seeds=[0])
    explicit = dict(base, grammars=[GrammarGrid(v=4, m=2, L=2, zipf=None, noise=0.0, s0=0)])
    keys = [c.key for c in Sweep(**base).validate().expand()]
    assert keys == [c.key for c in Sweep(**explicit).validate().expand()]
    point = Sweep(**base).validate().grammar_points()[0]
    assert set(point.to_dict()) == {"v", "m", "s", "L", "n_classes", "rules", "seed"} and point.is_classic


def test_variant_sweep_runs_and_records_the_bayes_error(tmp_path):
    sweep = Sweep.from_toml_string(TOML)
    points = sweep.grammar_points()
    assert [p.noise for p in points] == [0.0, 0.2, 0.0]
    assert points[2].zipf == 1.0 and points[2].zipf_levels == (0,) and points[2].to_dict()["zipf_levels"] == [0]
    with ResultStore(tmp_path / "r.sqlite") as store:
        out = run_sweep(sweep, store, executor=LocalExecutor(workers=0), progress=False)
        rows = store.rows(sweep="variants")
    assert out.done == 6
    import pandas as pd

    from rhm.experiments import plots

    df = pd.DataFrame(rows)
    _, panels, _ = plots._learner_panels(df)
    assert len(panels[0][2]) == 3                      # noise 0, noise 0.2 and Zipf are separate curves
    assert plots.learning_curves(df, tmp_path / "c.png", "variants").exists()
    for r in rows:
        metrics = r["metrics"] if isinstance(r["metrics"], dict) else json.loads(r["metrics"])
        g = (r["config"] if isinstance(r["config"], dict) else json.loads(r["config"]))["grammar"]
        assert ("bayes_test_error" in metrics) == (g.get("noise", 0) > 0)
        if "bayes_test_error" in metrics:  # the learner cannot beat the Bayes classifier by more than noise
            assert 0 < metrics["bayes_test_error"] < r["test_error"] + 0.1


def test_variant_sweep_refuses_distinct_sampling_and_bad_fields():
    with pytest.raises(SweepError, match="sampling"):
        Sweep.from_toml_string(TOML.replace('sampling = "iid"', ""))
    with pytest.raises(SweepError, match="noise"):
        Sweep.from_toml_string(TOML.replace("noise = [0.0, 0.2]", "noise = 1.5"))
    with pytest.raises(SweepError, match="s0"):
        Sweep.from_toml_string(TOML.replace("noise = [0.0, 0.2]", "s0 = -1"))
    with pytest.raises(SweepError, match="zipf_levels"):
        Sweep.from_toml_string(TOML.replace("zipf = 1.0\n", ""))


def test_sparse_sweep_counts_its_inputs():
    sweep = Sweep(name="sp", grammars=[GrammarGrid(v=4, m=2, L=2, s0=1)], learners=[LearnerSpec("kmeans")],
                  sizes=Sizes(unit="pmax", values=[0.5]), seeds=[0]).validate()
    (cfg,) = sweep.expand()
    from rhm import SparseRHM
    assert cfg.grammar["s0"] == 1
    assert cfg.train_size == round(0.5 * SparseRHM(4, 2, 2, 2, s0=1).num_inputs)


def test_cli_train_on_each_variant():
    runner = CliRunner()
    common = ["train", "--learner", "kmeans", "--v", "4", "--m", "2", "--L", "2", "--train-size", "200",
              "--test-size", "100", "--json"]
    for flags in (["--zipf", "1"], ["--noise", "0.2"], ["--s0", "1"], ["--s0", "1", "--noise", "0.1"]):
        res = runner.invoke(app, common + flags)
        assert res.exit_code == 0, res.output
        out = json.loads(res.stdout)
        assert ("bayes_test_error" in out) == ("--noise" in flags)
        assert out["sampling"] == ("distinct" if flags == ["--s0", "1"] else "iid")
    res = runner.invoke(app, common + ["--noise", "0.2", "--sampling", "distinct"])
    assert res.exit_code != 0 and "sampling='iid'" in res.output


def test_sweep_sets_a_torch_fit_option_by_name_and_refuses_unknown_ones(tmp_path):
    # remask / lm_val_fraction are class-level fit options of the torch learners, not constructor arguments:
    # `rhm train --hp` accepted them while a sweep refused them; both now go through Learner.settable()
    sweep = Sweep(name="fitopt", grammars=[GrammarGrid(v=8, m=4, L=2)], objective="masked", sampling="iid",
                  learners=[LearnerSpec("transformer", params={"remask": False, "lm_val_fraction": 0.25,
                                                               "max_steps": 5})],
                  sizes=Sizes(unit="samples", values=[64]), seeds=[0], test_size=32)
    with ResultStore(tmp_path / "r.sqlite") as store:
        run_sweep(sweep, store, LocalExecutor(0))
        (row,) = store.rows(sweep="fitopt")
    assert row["info"]["remask"] is False and row["config"]["resolved"]["lm_val_fraction"] == 0.25
    bad = Sweep(name="bad", grammars=[GrammarGrid(v=4, m=2, L=2)], learners=[LearnerSpec("cnn", params={"remsk": 1})],
                sizes=Sizes(unit="samples", values=[64]), seeds=[0])
    with pytest.raises(SweepError, match="has no hyperparameter 'remsk'.*remask"):
        bad.validate()


def test_cli_trains_and_samples_soft_and_filtered_grammars_from_flags_and_files(tmp_path):
    import rhm

    runner = CliRunner()
    common = ["train", "--learner", "kmeans", "--train-size", "200", "--test-size", "100", "--json"]
    for flags, want in ((["--v", "4", "--m", "2", "--L", "3", "--filter-level", "2"], {"filter_level": 2}),
                        (["--v", "4", "--L", "3", "--beta", "2.0"], {"beta": 2.0})):
        res = runner.invoke(app, common + flags)
        assert res.exit_code == 0, res.output
        assert want.items() <= json.loads(res.stdout)["grammar"].items()
    # every kind of saved grammar loads with --grammar FILE (only the RHM's format did)
    for g in (rhm.RHM(v=4, m=2, s=2, L=3, seed=1).filtered(1), rhm.SoftGrammar(4, 2, 3, beta=1.0, seed=2)):
        path = tmp_path / "g.json"
        g.save(path)
        assert rhm.load_grammar(path) == g
        res = runner.invoke(app, common + ["--grammar", str(path)])
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["grammar"] == g.spec.to_dict()
        res = runner.invoke(app, ["sample", "--grammar", str(path), "--n", "7", "--out", str(tmp_path / "x.npz")])
        assert res.exit_code == 0, res.output
