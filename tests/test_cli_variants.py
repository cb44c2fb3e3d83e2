"""CLI flags of the variants: --zipf, --noise, --s0, --beta, --filter-level, --grammar FILE on `rhm info` and
`rhm sample`."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import rhm
from rhm.cli import app
from rhm.sparse import SparseRHM

runner = CliRunner()


def test_info_reports_the_variant():
    res = runner.invoke(app, ["info", "--v", "8", "--m", "4", "--L", "2", "--s0", "1", "--noise", "0.1", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    g = SparseRHM(8, 4, 2, 2, s0=1, noise=0.1)
    assert (out["s0"], out["noise"], out["d"], int(out["num_inputs"])) == (1, 0.1, 16, g.num_inputs)


def test_info_on_soft_filtered_and_saved_grammars(tmp_path):
    """`rhm info` answers for every grammar kind: a saved RHM gets the RHM's report (its own seed's gaps), the soft
    grammar its rule entropy (below ln m for beta > 0, ln m at beta = 0), a filtered model its support's size."""
    rhm.RHM(4, 2, 2, 3, seed=5).save(tmp_path / "g.json")
    res = runner.invoke(app, ["info", "--grammar", str(tmp_path / "g.json"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["seed"] == 5 and set(out["rho"]) == {"1", "2", "3"}
    for beta, below in ((2.0, True), (0.0, False)):
        res = runner.invoke(app, ["info", "--v", "4", "--L", "3", "--beta", str(beta), "--json"])
        assert res.exit_code == 0, res.output
        out = json.loads(res.stdout)
        assert out["grammar"]["beta"] == beta and out["rho"] is None
        h = np.array(list(out["rule_entropy"].values()))
        assert (h < out["ln_m"] - 0.05).all() if below else np.allclose(h, out["ln_m"])
    res = runner.invoke(app, ["info", "--v", "4", "--L", "3", "--beta", "1", "--rules", "overlap", "--json"])
    assert res.exit_code == 0, res.output  # the ambiguous grammar's default m: every tuple under every parent
    assert json.loads(res.stdout)["grammar"]["m"] == rhm.SoftGrammar(4, 2, 3, beta=1.0, overlap=True).m == 16
    g = rhm.RHM(4, 2, 2, 3, seed=5).filtered(1)
    g.save(tmp_path / "f.json")
    res = runner.invoke(app, ["info", "--grammar", str(tmp_path / "f.json")])
    assert res.exit_code == 0, res.output
    assert f"num_inputs = {g.spec.num_inputs} (the support of the filtered model)" in res.stdout
    res = runner.invoke(app, ["info", "--grammar", str(tmp_path / "f.json"), "--v", "4"])
    assert res.exit_code == 1 and "replaces --v" in res.output


def test_info_on_the_varying_grammar():
    res = runner.invoke(app, ["info", "--v", "8", "--m", "4", "--m3", "8", "--L", "2", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    probs = rhm.VaryingRHM(8, m2=4, m3=8, L=2).length_distribution()
    assert (out["min_length"], out["max_length"]) == (4, 9)
    assert out["mean_length"] == pytest.approx(float((np.arange(len(probs)) * probs).sum()))
    assert sum(out["length_distribution"].values()) == pytest.approx(1.0)


def test_sample_writes_each_variant(tmp_path):
    path = tmp_path / "z.npz"
    res = runner.invoke(app, ["sample", "--v", "8", "--m", "4", "--L", "2", "--zipf", "1", "--noise", "0.2",
                              "--n", "50", "--out", str(path), "--tree"])
    assert res.exit_code == 0, res.output
    data = np.load(path)
    g = rhm.RHM.from_dict(json.loads(str(data["grammar"])))
    assert (g.zipf, g.noise) == (1.0, 0.2)
    assert np.array_equal(g.parse(data["tree_2"]), data["y"])  # the clean tokens are stored
    x, y = g.sample(50, seed=1)
    assert np.array_equal(x, data["x"]) and np.array_equal(y, data["y"])
    path = tmp_path / "s.npz"
    res = runner.invoke(app, ["sample", "--v", "8", "--m", "4", "--L", "2", "--s0", "2", "--n", "30",
                              "--out", str(path), "--no-replace"])
    assert res.exit_code == 0, res.output
    data = np.load(path)
    assert data["x"].shape == (30, 36) and len(np.unique(data["x"], axis=0)) == 30


def test_bad_variant_flags_fail_cleanly(tmp_path):
    for args, msg in ((["--noise", "2"], "noise=2.0 must be a probability"), (["--s0", "-1"], "s0=-1 must be >= 0"),
                      (["--zipf", "-1"], "zipf=-1.0 must be >= 0")):
        res = runner.invoke(app, ["sample", "--v", "8", "--m", "4", "--L", "2", "--n", "5",
                                  "--out", str(tmp_path / "bad.npz"), *args])
        assert res.exit_code == 1 and msg in res.output
        assert not (tmp_path / "bad.npz").exists()
