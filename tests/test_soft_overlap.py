"""SoftGrammar(overlap=True), the ambiguous variant (a tuple under several parents): rules, sampler frequencies
against the exact likelihood, inference against brute-force enumeration (unfiltered and filtered), JSON and spec
round trips, and the disjoint grammar's keys left unchanged."""

import numpy as np
import pytest
from _enumerate import all_inputs, chi_square_ok, codes, derivations, input_table

import rhm
from rhm import inference as I


def _table(g):
    prior = {(a,): 1.0 / g.n_classes for a in range(g.n_classes)}
    return input_table(derivations(g.rules, g.rule_probs, prior), g.v, g.d, g.n_classes)


def test_rules_overlap_and_default_to_every_tuple():
    dense = rhm.SoftGrammar(3, 2, 3, beta=1.0, seed=0, overlap=True)
    assert dense.m == 9  # default m = v**s: every parent has every tuple
    assert all(np.array_equal(r, all_inputs(3, 2)[None].repeat(3, 0)) for r in dense.rules)
    assert np.allclose(dense.rule_probs[0].sum(1), 1) and (dense.rule_probs[0] > 0).all()
    g = rhm.SoftGrammar(4, 2, 3, beta=1.0, seed=2, overlap=True, m=6)
    flat = codes(g.rules[0].reshape(-1, 2), 4)
    per_parent = flat.reshape(4, 6)
    assert all(len(set(row)) == 6 for row in per_parent)  # distinct within a parent
    assert len(set(flat)) < len(flat)  # some tuple has several parents (m * v = 24 > 16 tuples)
    roots = rhm.SoftGrammar(3, 2, 2, beta=1.0, seed=1, overlap=True, m=4, n_classes=5)
    assert roots.rules[0].shape == (5, 4, 2) and roots.rules[1].shape == (3, 4, 2)


@pytest.mark.parametrize("kwargs", [dict(v=2, s=2, L=3, beta=1.0), dict(v=3, s=2, L=2, beta=2.0, m=5)])
def test_sampler_frequencies_match_the_exact_likelihood(kwargs):
    g = rhm.SoftGrammar(**kwargs, seed=1, overlap=True)
    x, y = g.sample(200_000, seed=2)
    p = np.exp(I.log_likelihood(g, all_inputs(g.v, g.d)))
    assert abs(p.sum() - 1) < 1e-12
    ok, stat, df = chi_square_ok(np.bincount(codes(x, g.v), minlength=g.v**g.d), p)
    assert ok, (stat, df)
    assert np.abs(np.bincount(y, minlength=g.n_classes) / len(y) - 1 / g.n_classes).max() < 0.01


@pytest.mark.parametrize("m", [None, 5])
def test_inference_matches_enumeration(m):
    g = rhm.SoftGrammar(3, 2, 2, beta=1.0, seed=0, overlap=True, m=m)
    joint = _table(g)  # (3**4, 3), summed over every derivation of each input
    xs = all_inputs(3, 4)
    px = joint.sum(1)
    assert np.allclose(np.exp(I.log_likelihood(g, xs)), px, rtol=1e-9, atol=0)
    pos = px > 0
    post = I.class_posterior(g, xs[pos])
    assert np.allclose(post, joint[pos] / px[pos, None], atol=1e-10)
    assert (post.max(1) < 1 - 1e-6).mean() > 0.5  # ambiguous: most inputs leave the class uncertain
    mask = np.arange(4) == 1
    tok = I.token_posterior(g, xs[pos][:10], mask)[:, 1]
    for row, got in zip(xs[pos][:10], tok):
        alt = np.repeat(row[None], 3, 0)
        alt[:, 1] = np.arange(3)
        w = px[codes(alt, 3)]
        assert np.allclose(got, w / w.sum(), atol=1e-10)


def test_filtered_overlapping_model_matches_its_sampler():
    g = rhm.SoftGrammar(2, 2, 3, beta=1.0, seed=4, overlap=True, m=3)
    f = g.filtered(2)
    x, _ = g.sample(200_000, seed=5, filter_level=2)
    p = np.exp(I.log_likelihood(f, all_inputs(2, 8)))
    assert abs(p.sum() - 1) < 1e-12
    ok, stat, df = chi_square_ok(np.bincount(codes(x, 2), minlength=2**8), p)
    assert ok, (stat, df)


def test_json_spec_round_trip_and_unchanged_keys(tmp_path):
    g = rhm.SoftGrammar(3, 2, 3, beta=0.5, seed=7, overlap=True, m=4)
    g.save(tmp_path / "g.json")
    h = rhm.SoftGrammar.load(tmp_path / "g.json")
    assert h == g and h.overlap and all(np.array_equal(a, b) for a, b in zip(h.rules, g.rules))
    assert g.spec.rules == "overlap" and g.spec.build() == g
    assert rhm.GrammarSpec(v=3, m=4, L=3, beta=0.5, seed=7, rules="overlap").build() == g
    assert "overlap=True" in repr(g)
    plain = rhm.SoftGrammar(3, 2, 3, beta=0.5, seed=7)
    assert "overlap" not in plain.to_dict() and plain.spec.rules == "uniform"
    assert plain.spec.to_dict() == rhm.GrammarSpec(v=3, m=3, L=3, beta=0.5, seed=7).to_dict()


@pytest.mark.parametrize("kwargs, match", [
    (dict(overlap=True, m=10), r"m=10 must be in \[1, 9\]"),
    (dict(overlap="yes"), "overlap='yes' must be True or False"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rhm.SoftGrammar(3, 2, 2, beta=1.0, **kwargs)


def test_refusals():
    with pytest.raises(ValueError, match="rules='overlap'.*set beta"):
        rhm.GrammarSpec(v=3, m=4, L=2, rules="overlap")
    g = rhm.SoftGrammar(3, 2, 2, beta=1.0, overlap=True)
    x, _ = g.sample(5, seed=0)
    with pytest.raises(ValueError, match="parse is not defined for overlap=True"):
        g.parse(x)


def test_sweep_grid_and_cli_sample_take_rules_overlap(tmp_path):
    from typer.testing import CliRunner

    from rhm.cli import app
    from rhm.experiments.sweep import GrammarGrid

    (spec,) = GrammarGrid(v=3, m=9, s=2, L=2, beta=1.0, rules="overlap", seed=[3]).points("grammars[0]")
    assert spec.to_dict()["rules"] == "overlap" and spec.build().overlap
    out = tmp_path / "s.npz"
    res = CliRunner().invoke(app, ["sample", "--v", "3", "--m", "9", "--L", "2", "--beta", "1.0", "--rules",
                                   "overlap", "--n", "20", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert np.load(out)["x"].shape == (20, 4)
    bad = CliRunner().invoke(app, ["sample", "--v", "3", "--m", "9", "--L", "2", "--rules", "overlap", "--n", "5",
                                   "--out", str(tmp_path / "b.npz")])
    assert bad.exit_code == 1 and "set beta" in bad.output and not (tmp_path / "b.npz").exists()
