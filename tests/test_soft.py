"""SoftGrammar (Garnier-Brun et al., ICML 2025): rules, sampler vs exact likelihood, inference vs enumeration,
JSON, spec, seeds and the beta limits."""

import numpy as np
import pytest
from _enumerate import all_inputs, chi_square_ok, codes, derivations, input_table

import rhm
from rhm import inference as I


def _table(g):
    prior = {(a,): 1.0 / g.n_classes for a in range(g.n_classes)}
    return input_table(derivations(g.rules, g.rule_probs, prior), g.v, g.d, g.n_classes)


def test_rules_follow_the_paper():
    g = rhm.SoftGrammar(4, 2, 3, beta=1.5, seed=3)
    assert g.m == 4 and g.n_classes == 4  # m = v**(s-1): the v**s tuples dealt to the v parents, each once
    tuples = g.rules[0].reshape(-1, 2)
    assert len({tuple(t) for t in tuples}) == 16
    assert all(np.array_equal(r, g.rules[0]) for r in g.rules)  # one transition tensor M shared by every level
    p = g.rule_probs[0]
    assert np.allclose(p.sum(1), 1.0) and (p > 0).all()
    # softmax of beta * Gaussian scores: log-ratios of two grammars differing only in beta scale with beta
    q = rhm.SoftGrammar(4, 2, 3, beta=3.0, seed=3).rule_probs[0]
    lp, lq = np.log(p), np.log(q)
    assert np.allclose(lq - lq.mean(1, keepdims=True), 2 * (lp - lp.mean(1, keepdims=True)))


def test_beta_limits():
    flat = rhm.SoftGrammar(8, 2, 2, beta=0.0, seed=0)
    assert np.array_equal(flat.rule_probs[0], np.full((8, 8), 1 / 8))
    assert all(np.array_equal(a, b) for a, b in zip(flat.rules, rhm.RHM(8, 8, 2, 1, seed=0).rules))
    sharp = rhm.SoftGrammar(8, 2, 2, beta=1000.0, seed=0)
    top = sharp.rule_probs[0].max(1)
    assert (top > 0.99).mean() >= 0.9  # nearly one rule per symbol (scores of 8 Gaussians rarely tie)
    x, _ = sharp.sample(2000, seed=1)
    # nearly deterministic: each class yields (almost) one input
    assert len(np.unique(x, axis=0)) <= 8 + 20


@pytest.mark.parametrize("kwargs", [dict(v=2, s=2, L=3, beta=1.0), dict(v=3, s=2, L=2, beta=2.0, n_classes=2)])
def test_sampler_frequencies_match_the_exact_likelihood(kwargs):
    g = rhm.SoftGrammar(**kwargs, seed=1)
    x, y = g.sample(200_000, seed=2)
    p = np.exp(I.log_likelihood(g, all_inputs(g.v, g.d)))
    assert abs(p.sum() - 1) < 1e-12
    ok, stat, df = chi_square_ok(np.bincount(codes(x, g.v), minlength=g.v**g.d), p)
    assert ok, (stat, df)
    assert (np.bincount(y, minlength=g.n_classes) / len(y) - 1 / g.n_classes).__abs__().max() < 0.01


def test_inference_matches_enumeration():
    g = rhm.SoftGrammar(3, 2, 3, beta=1.0, seed=0)
    joint = _table(g)  # (3**8, 3)
    xs = all_inputs(3, 8)
    px = joint.sum(1)
    assert np.allclose(np.exp(I.log_likelihood(g, xs)), px, rtol=1e-9, atol=0)
    pos = px > 0
    assert np.allclose(I.class_posterior(g, xs[pos]), joint[pos] / px[pos, None], atol=1e-10)
    # masked token posterior of position 5 for a few inputs, by summing the joint over its value
    x = xs[pos][::97][:20]
    mask = np.arange(8) == 5
    post = I.token_posterior(g, x, mask)[:, 5]
    for row, got in zip(x, post):
        alt = np.repeat(row[None], 3, 0)
        alt[:, 5] = np.arange(3)
        w = px[codes(alt, 3)]
        assert np.allclose(got, w / w.sum(), atol=1e-10)
    nt = I.next_token(g, x[:5])
    assert np.allclose(nt.sum(-1), 1.0)


def test_parse_recovers_the_class_and_refuses_trees():
    g = rhm.SoftGrammar(4, 2, 3, beta=1.0, seed=0)
    x, y = g.sample(5000, seed=0)
    assert (g.parse(x) == y).all()  # non-overlapping productions: the tree is recoverable
    with pytest.raises(ValueError, match="latent_posterior"):
        g.parse(x, return_tree=True)


def test_seeds_tree_and_resample_below():
    g = rhm.SoftGrammar(4, 2, 3, beta=1.0, seed=0)
    a = g.sample(1000, seed=5, return_tree=True)
    b = g.sample(1000, seed=5, return_tree=True)
    assert all(np.array_equal(u, v) for u, v in zip(a[2], b[2]))
    assert not np.array_equal(a[0], g.sample(1000, seed=6)[0])
    tree = a[2]
    assert [t.shape for t in tree] == [(1000,), (1000, 2), (1000, 4), (1000, 8)]
    for lv in range(g.L):  # every node rewrites by one of its symbol's rules
        pairs = tree[lv + 1].reshape(1000, -1, 2)
        sym = tree[lv].reshape(1000, -1)
        ok = (g.rules[lv][sym] == pairs[:, :, None, :]).all(-1).any(-1)
        assert ok.all()
    x2, t2 = g.resample_below(tree, 2, seed=1, return_tree=True)
    assert np.array_equal(t2[2], tree[2]) and np.array_equal(t2[0], tree[0])
    assert (g.parse(x2) == tree[0]).all()


def test_json_round_trip_and_tampering(tmp_path):
    g = rhm.SoftGrammar(4, 2, 3, beta=0.7, seed=2, noise=0.05)
    path = tmp_path / "soft.json"
    g.save(path)
    h = rhm.SoftGrammar.load(path)
    assert h == g and all(np.array_equal(a, b) for a, b in zip(h.rule_probs, g.rule_probs))
    data = g.to_dict()
    data["probs"][0][0][0] += 0.1
    with pytest.raises(ValueError, match="field probs does not match"):
        rhm.SoftGrammar.from_dict(data)
    with pytest.raises(ValueError, match="not a soft grammar file"):
        rhm.SoftGrammar.from_dict({"format": "rhm-grammar"})


def test_spec_builds_and_names_it():
    spec = rhm.GrammarSpec.from_toml('v = 4\nm = 4\nL = 3\nbeta = 1.5\nseed = 3\n')
    g = spec.build()
    assert isinstance(g, rhm.SoftGrammar) and g == rhm.SoftGrammar(4, 2, 3, 1.5, seed=3)
    assert g.spec == spec and spec.kind == "soft" and not spec.is_plain
    assert "beta=1.5" in spec.label and spec.to_dict()["beta"] == 1.5
    assert isinstance(g, rhm.Grammar)
    plain = rhm.GrammarSpec(v=4, m=4, L=3)
    assert "beta" not in plain.to_dict() and plain.kind == "rhm"


@pytest.mark.parametrize("kwargs, match", [
    (dict(beta=-1.0), "beta=-1.0 must be >= 0"),
    (dict(beta=float("inf")), "beta=inf must be a finite"),
    (dict(beta=1.0, m=5), "m=5 exceeds"),
])
def test_bad_parameters(kwargs, match):
    args = dict(v=4, s=2, L=3, seed=0) | kwargs
    with pytest.raises(ValueError, match=match):
        rhm.SoftGrammar(**args)


def test_spec_refuses_soft_with_other_variants():
    with pytest.raises(ValueError, match="beta=1.0 .*cannot be combined"):
        rhm.GrammarSpec(v=4, m=4, L=3, beta=1.0, zipf=1.0)


def test_replace_false_is_refused():
    with pytest.raises(ValueError, match="replace=False is not defined for beta"):
        rhm.SoftGrammar(4, 2, 2, 1.0).sample(10, seed=0, replace=False)


def test_noise_is_the_token_channel():
    g = rhm.SoftGrammar(4, 2, 2, beta=1.0, seed=0, noise=0.3)
    x, y, tree = g.sample(20000, seed=1, return_tree=True)
    changed = (x != tree[-1]).mean()
    assert abs(changed - 0.3 * 3 / 4) < 0.02  # replaced w.p. 0.3, by a different token w.p. 3/4
    assert np.isfinite(I.log_likelihood(g, x)).all()


def test_sweep_runs_soft_and_filtered_grammars(tmp_path):
    from rhm.experiments import LocalExecutor, ResultStore, Sweep, run_sweep

    sweep = Sweep.from_toml_string("""
name = "soft"
sampling = "iid"
seeds = [0]
test_size = 200
[[grammars]]
v = 4
m = 4
L = 2
beta = [0.5, 2.0]
filter_level = [0, 1]
[[learners]]
name = "kmeans"
[sizes]
values = [12]
""")
    points = sweep.grammar_points()
    assert [(p.beta, p.filter_level) for p in points] == [(0.5, 0), (0.5, 1), (2.0, 0), (2.0, 1)]
    with ResultStore(tmp_path / "r.sqlite") as store:
        out = run_sweep(sweep, store, executor=LocalExecutor(workers=0), progress=False)
        rows = store.rows(sweep="soft")
    assert out.done == 4 and len(rows) == 4
    assert all(0 <= r["test_error"] <= 1 for r in rows)


def test_cli_sample_soft_and_filtered(tmp_path):
    from typer.testing import CliRunner

    from rhm.cli import app

    out = tmp_path / "s.npz"
    res = CliRunner().invoke(app, ["sample", "--v", "4", "--L", "3", "--beta", "1.0", "--filter-level", "2",
                                   "--n", "50", "--out", str(out), "--tree"])
    assert res.exit_code == 0, res.output
    data = np.load(out)
    assert data["x"].shape == (50, 8) and "tree_2" in data and "tree_1" not in data
    assert np.array_equal(data["x"], rhm.SoftGrammar(4, 2, 3, 1.0).sample(50, seed=1, filter_level=2)[0])
    bad = CliRunner().invoke(app, ["sample", "--v", "4", "--L", "3", "--beta", "-1", "--n", "5",
                                   "--out", str(tmp_path / "b.npz")])
    assert bad.exit_code == 1 and "beta=-1.0 must be >= 0" in bad.output and not (tmp_path / "b.npz").exists()
