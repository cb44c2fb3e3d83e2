"""CLI: info / sample / train outputs and one-line errors that write nothing."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from rhm import RHM
from rhm.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_info_json():
    r = run("info", "--v", 8, "--m", 4, "--L", 3, "--rules", "balanced", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["d"] == 8 and out["num_inputs"] == str(8 * 4**7) and out["nc_m_L"] == 8 * 4**3
    assert abs(out["rho"]["1"] - 2**0.5) < 1e-12 and out["kappa"] == 1.0
    assert out["assumption6"]["satisfied"] is True


def test_info_human():
    r = run("info", "--v", 6, "--m", 2, "--L", 2, "--n-classes", 4)
    assert r.exit_code == 0 and "rho^(l)" in r.stdout and "Assumption 6" in r.stdout


@pytest.mark.parametrize("args, msg", [
    (("info", "--v", 8, "--m", 9, "--L", 3), "m=9 exceeds v**(s-1)=8"),
    (("info", "--v", 8, "--m", 4, "--L", 3, "--rules", "zipf"), "rules='zipf' is not a rule sampler"),
    (("info", "--v", 8, "--m", 4, "--L", 0), "L=0 must be >= 1"),
])
def test_info_errors_are_one_line(args, msg):
    r = run(*args)
    assert r.exit_code == 1
    assert r.stderr.strip().splitlines() == [f"error: {msg}"] or msg in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_sample_writes_npz(tmp_path):
    out = tmp_path / "d.npz"
    r = run("sample", "--v", 8, "--m", 4, "--L", 3, "--n", 500, "--out", out, "--no-replace", "--tree")
    assert r.exit_code == 0, r.output
    f = np.load(out)
    g = RHM.from_dict(json.loads(str(f["grammar"])))
    assert f["x"].shape == (500, 8) and f["x"].dtype == np.uint8
    assert len(np.unique(f["x"], axis=0)) == 500 and (g.parse(f["x"]) == f["y"]).all()
    assert f["tree_1"].shape == (500, 2) and f["tree_2"].shape == (500, 4)


@pytest.mark.parametrize("extra, msg", [
    (("--n", 40, "--no-replace"), "n=40 exceeds num_inputs=32"),
    (("--n", -5), "n=-5 must be >= 1"),
])
def test_sample_errors_write_nothing(tmp_path, extra, msg):
    out = tmp_path / "d.npz"
    r = run("sample", "--v", 4, "--m", 2, "--L", 2, "--out", out, *extra)
    assert r.exit_code == 1 and msg in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_sample_bad_out_path(tmp_path):
    r = run("sample", "--v", 4, "--m", 2, "--L", 2, "--n", 5, "--out", tmp_path / "d.txt")
    assert r.exit_code == 1 and "must end with .npz" in r.stderr
    r = run("sample", "--v", 4, "--m", 2, "--L", 2, "--n", 5, "--out", tmp_path / "no" / "d.npz")
    assert r.exit_code == 1 and "does not exist" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_train_unknown_learner():
    r = run("train", "--learner", "nope", "--v", 4, "--m", 2, "--L", 2, "--train-size", 10)
    assert r.exit_code == 1 and "unknown learner 'nope'" in r.stderr


def test_saved_grammar_drives_sample_and_train(tmp_path):
    g = RHM(6, 3, 2, 2, rules="balanced", seed=4)
    path = tmp_path / "g.json"
    g.save(path)
    r = run("sample", "--grammar", path, "--n", 50, "--out", tmp_path / "d.npz")
    assert r.exit_code == 0, r.output
    f = np.load(tmp_path / "d.npz")
    assert RHM.from_dict(json.loads(str(f["grammar"]))).to_dict() == g.to_dict()
    assert (g.parse(f["x"]) == f["y"]).all()
    r = run("train", "--learner", "kmeans", "--grammar", path, "--train-size", 100, "--test-size", 50, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["grammar"] == g.spec.to_dict() and out["sampling"] == "distinct"
    # --grammar replaces the grammar options; without either, the error names what is missing
    r = run("train", "--grammar", path, "--v", 6, "--train-size", 10)
    assert r.exit_code == 1 and "--grammar" in r.stderr and "--v" in r.stderr
    r = run("sample", "--n", 5, "--out", tmp_path / "e.npz")
    assert r.exit_code == 1 and "--v, --m, --L required (or --grammar FILE)" in r.stderr
    r = run("sample", "--grammar", tmp_path / "none.json", "--n", 5, "--out", tmp_path / "e.npz")
    assert r.exit_code == 1 and "does not exist" in r.stderr
    assert not (tmp_path / "e.npz").exists()


def test_train_iid_sampling_allows_more_draws_than_inputs():
    # v = 4, m = 2, L = 2: 4 * 2**3 = 32 distinct inputs; 40 i.i.d. draws repeat some, the test set is the rest
    args = ("train", "--learner", "kmeans", "--v", 4, "--m", 2, "--L", 2, "--train-size", 40, "--test-size", 2)
    r = run(*args, "--sampling", "iid", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["sampling"] == "iid" and out["n_distinct_train"] <= 30
    r = run(*args)  # distinct sampling cannot draw 42 distinct inputs out of 32
    assert r.exit_code == 1 and "exceeds the 32 distinct inputs" in r.stderr
    r = run(*args, "--sampling", "both")
    assert r.exit_code == 1 and "sampling='both' must be one of" in r.stderr
