"""CLI flags of the variants: --zipf, --noise, --s0 on `rhm info` and `rhm sample`."""

import json

import numpy as np
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
