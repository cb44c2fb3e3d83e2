"""VaryingRHM (Parley, Cagnetta, Wyart 2026): rules, the padded sample format, lengths against the exact
distribution, trees against the rules, JSON/spec round trips and bad input."""

import itertools
import json

import numpy as np
import pytest
from _enumerate import chi_square_ok

import rhm
from rhm import inference as I
from rhm.inference import cky
from rhm.varying import VaryingRHM, length_distribution


def test_rules_distinct_per_arity_and_f():
    g = VaryingRHM(8, L=3, f=0.5, seed=4)
    assert (g.m2, g.m3, g.p2, g.n_classes) == (4, 32, 0.5, 8)
    for b, t in zip(g.binary_rules, g.ternary_rules):
        assert b.shape == (8, 4, 2) and t.shape == (8, 32, 3)
        assert len({tuple(r) for r in b.reshape(-1, 2)}) == 32  # fraction f of the 64 pairs, one parent each
        assert len({tuple(r) for r in t.reshape(-1, 3)}) == 256  # fraction f of the 512 triples
        assert b.max() < 8 and t.max() < 8
    assert g == VaryingRHM(8, 4, 32, 0.5, 3, seed=4) and g != VaryingRHM(8, L=3, f=0.5, seed=5)


def test_sample_format():
    g = VaryingRHM(5, 3, 9, 0.3, 3, n_classes=3, seed=1)
    s = g.sample(500, seed=2)
    x, y = s  # two-way unpacking keeps working
    assert x.shape == (500, 27) and x.dtype == g.token_dtype and y.shape == (500,)
    assert g.pad_token == 5 and g.d == 27
    assert np.array_equal(s.lengths, (x != g.pad_token).sum(1))
    assert s.lengths.min() >= 8 and s.lengths.max() <= 27
    cols = np.arange(27)[None, :]
    assert ((x != g.pad_token) == (cols < s.lengths[:, None])).all()  # left-aligned, padding on the right
    assert x[x != g.pad_token].max() < 5 and set(np.unique(y)) <= {0, 1, 2}
    x2, y2 = g.sample(500, seed=2)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert g.sample(0, seed=0).x.shape == (0, 27)
    batches = list(g.stream(7, seed=0, n_batches=2))
    assert len(batches) == 2 and batches[0].x.shape == (7, 27)


# the sampler's code paths: rule cells from the Categorical (1/24 is not dyadic), aligned 2**bits cells (p2 = 1/2,
# m2 = 4, m3 = 32), tokens wider than a byte (300 classes), rows wider than the window table (d = 729)
SAMPLER_PATHS = [((6, 2, 12, 0.5, 3), {}), ((8, 4, 32, 0.5, 3), {}), ((20, 1, 4, 0.5, 2), dict(n_classes=300)),
                 ((3, 1, 2, 0.5, 6), {})]


@pytest.mark.parametrize("args, kwargs", SAMPLER_PATHS)
def test_trees_follow_the_rules(args, kwargs):
    g = VaryingRHM(*args, **kwargs, seed=7)
    n = 300
    x, y, tree = s = g.sample(n, seed=3, return_tree=True)
    assert np.array_equal(tree[0], y) and np.array_equal(tree[-1][:, : x.shape[1]], x)
    plain = g.sample(n, seed=3)  # the tree costs nothing in the draws: the same strings without it
    assert np.array_equal(plain.x, x) and np.array_equal(plain.y, y) and np.array_equal(plain.lengths, s.lengths)
    cols = np.arange(g.d)[None, :]
    assert ((x != g.pad_token) == (cols < s.lengths[:, None])).all() and x.dtype == g.token_dtype
    pad = g.pad_token
    for level in range(g.L):
        bset = {(a, *r) for a in range(g.symbols(level)) for r in map(tuple, g.binary_rules[level][a])}
        tset = {(a, *r) for a in range(g.symbols(level)) for r in map(tuple, g.ternary_rules[level][a])}
        parents = tree[level].reshape(n, -1)
        ar = s.arities[level]
        real = parents != pad if level else np.ones(parents.shape, bool)  # a root class may equal v (n_classes > v)
        assert ((ar > 0) == real).all()
        for i in range(0, n, 37):  # spot-check rows: each node's children are one of its rules
            pos = 0
            kids = tree[level + 1][i]
            for a, k in zip(parents[i].tolist(), ar[i].tolist()):  # Python ints: pos + k must not wrap at 256
                if k == 0:  # padding
                    continue
                assert (a, *map(int, kids[pos: pos + k])) in (bset if k == 2 else tset)
                pos += k
            assert (kids[pos:] == pad).all()


@pytest.mark.parametrize("p2", [0.5, 0.2])
def test_lengths_match_the_exact_distribution(p2):
    exact = length_distribution(p2, 3)
    assert exact.sum() == pytest.approx(1.0) and exact[:8].sum() == 0 and exact[8] == pytest.approx(p2**7)
    for seed in range(3):
        g = VaryingRHM(4, 2, 4, p2, 3, seed=seed)
        lengths = g.sample(20000, seed=10 + seed).lengths
        ok, stat, df = chi_square_ok(np.bincount(lengths, minlength=28), exact)
        assert ok, (seed, stat, df)


def test_extreme_p2_gives_fixed_lengths():
    assert set(VaryingRHM(4, 2, 4, 1.0, 3).sample(200, seed=0).lengths) == {8}
    assert set(VaryingRHM(4, 2, 4, 0.0, 3).sample(200, seed=0).lengths) == {27}


def test_json_and_spec_round_trip(tmp_path):
    g = VaryingRHM(6, L=2, f=0.5, p2=0.4, n_classes=4, seed=9)
    path = tmp_path / "g.json"
    g.save(path)
    assert rhm.load_grammar(path) == g
    spec = g.spec
    assert spec.kind == "varying" and spec.m3 == g.m3 and spec.p2 == 0.4 and spec.d == 9
    assert spec.build() == g
    assert rhm.GrammarSpec.from_dict(spec.to_dict()) == spec
    data = g.to_dict()
    data["binary_rules"][0][0][0] = [9, 9]
    with pytest.raises(ValueError, match="binary_rules"):
        VaryingRHM.from_dict(data)


def test_old_spec_keys_unchanged():
    spec = rhm.GrammarSpec(v=8, m=4, s=2, L=3)
    assert "m3" not in spec.to_dict() and "p2" not in spec.to_dict() and spec.kind == "rhm"


@pytest.mark.parametrize("kwargs, match", [
    (dict(v=4, m2=2, m3=4, p2=1.5, L=2), "p2=1.5 must be a probability"),
    (dict(v=4, m2=2, m3=4, p2=-0.1, L=2), "p2"),
    (dict(v=4, m2=5, m3=4, p2=0.5, L=2), "m2=5 is too large"),
    (dict(v=4, m2=2, m3=17, p2=0.5, L=2), "m3=17 is too large"),
    (dict(v=4, m2=0, m3=4, p2=0.5, L=2), "m2"),
    (dict(v=4, f=1.5, L=2), "f=1.5 must be in"),
    (dict(v=4, f=0.5, m2=2, L=2), "either f"),
    (dict(v=4, m2=2, L=2), "give m2 and m3"),
    (dict(v=4, m2=2, m3=4, L=0), "L"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VaryingRHM(**kwargs)


def test_bad_spec_and_sample_arguments():
    with pytest.raises(ValueError, match="p2=0.3 needs m3"):
        rhm.GrammarSpec(v=4, m=2, L=2, p2=0.3)
    with pytest.raises(ValueError, match="m3=4 .*varying"):
        rhm.GrammarSpec(v=4, m=2, L=2, m3=4, noise=0.1)
    g = VaryingRHM(4, 2, 4, 0.5, 2)
    with pytest.raises(ValueError, match="replace=False"):
        g.sample(5, seed=0, replace=False)
    with pytest.raises(ValueError, match="seed"):
        g.sample(5)


# ------------------------------------------------------------------------------ exact inference (CKY)
def _derivations(g):
    """[(root, string, probability)] of every derivation, by brute force over all rule choices."""
    def expand(a, level):  # [(tokens, prob)] of the derivations from symbol a of `level`
        if level == g.L:
            return [((a,), 1.0)]
        out = []
        for rules, w in ((g.binary_rules[level][a], g.p2 / g.m2), (g.ternary_rules[level][a], (1 - g.p2) / g.m3)):
            for rhs in rules:
                for combo in itertools.product(*[expand(int(b), level + 1) for b in rhs]):
                    out.append((sum((t for t, _ in combo), ()), w * np.prod([q for _, q in combo])))
        return out

    return [(a, s, p / g.n_classes) for a in range(g.n_classes) for s, p in expand(a, 0)]


def test_spec_without_p2_is_the_built_grammars_spec_and_counts_derivations():
    """p2 left out means 1/2 and is written, so one grammar has one store key; num_inputs counts derivations (an
    upper bound on distinct strings), checked by brute force."""
    spec = rhm.GrammarSpec(v=3, m=2, L=2, m3=3, seed=4)
    g = spec.build()
    assert spec.p2 == 0.5 and g.spec == spec and g.spec.key == spec.key
    derivs = _derivations(g)
    assert spec.num_inputs == len(derivs)
    assert len({s for _, s, _ in derivs}) <= spec.num_inputs


def _pad(g, strings):
    x = np.full((len(strings), g.d), g.pad_token, dtype=np.int64)
    for i, s in enumerate(strings):
        x[i, : len(s)] = s
    return x


@pytest.mark.parametrize("args", [(3, 2, 3, 0.5, 2, 3, 0), (3, 3, 9, 0.3, 2, 2, 1), (3, 1, 2, 0.7, 1, 3, 2),
                                  (4, 2, 6, 0.5, 2, 4, 3)])
def test_inference_matches_enumeration(args):
    v, m2, m3, p2, L, n_c, seed = args
    g = VaryingRHM(v, m2, m3, p2, L, n_classes=n_c, seed=seed)
    ders = _derivations(g)
    strings = sorted({s for _, s, _ in ders})
    where = {s: i for i, s in enumerate(strings)}
    joint = np.zeros((len(strings), n_c))
    n_der = np.zeros(len(strings))
    for a, s, p in ders:
        joint[where[s], a] += p
        n_der[where[s]] += 1
    x = _pad(g, strings)
    px = joint.sum(1)
    assert px.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(I.log_likelihood(g, x), np.log(px), rtol=0, atol=1e-10)
    np.testing.assert_allclose(I.class_posterior(g, x), joint / px[:, None], rtol=0, atol=1e-10)
    np.testing.assert_allclose(np.exp(I.joint_log_likelihood(g, x)), joint, rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(cky.num_parses(g, x), n_der, rtol=1e-10)
    assert (n_der > 1).any() or L == 1  # the grammars above do have ambiguous strings
    # strings no derivation gives: probability 0, NaN posterior, 0 parses
    others = [s for s in itertools.product(range(v), repeat=2**L) if s not in where][:5]
    if others:
        xo = _pad(g, others)
        assert (I.log_likelihood(g, xo) == -np.inf).all() and np.isnan(I.class_posterior(g, xo)).all()
        assert (cky.num_parses(g, xo) == 0).all()


@pytest.mark.parametrize("seed, m3, p2", [(0, 3, 0.4), (1, 3, 0.4), (2, 3, 0.4), (3, 4, 0.5), (4, 4, 0.5)])
def test_sampler_frequencies_match_exact_likelihood(seed, m3, p2):
    """p2 = 0.4: rule cells from the Categorical (straddling cells refined); p2 = 1/2 with m2 = 2, m3 = 4: the rule
    probabilities 1/4, 1/8 are dyadic and drawn from aligned cells."""
    g = VaryingRHM(3, 2, m3, p2, 2, n_classes=2, seed=seed)
    x, y = g.sample(60000, seed=100 + seed)
    strings, counts = np.unique(x, axis=0, return_counts=True)
    p = np.exp(I.log_likelihood(g, strings))
    assert (p > 0).all()  # every sampled string has positive exact probability
    # every string of positive probability is a cell (those never drawn count 0)
    ders = _derivations(g)
    allx = _pad(g, sorted({s for _, s, _ in ders}))
    keys = {tuple(r) for r in strings.astype(np.int64)}
    missing = np.array([tuple(r) not in keys for r in allx])
    probs = np.concatenate([p, np.exp(I.log_likelihood(g, allx[missing]))])
    assert probs.sum() == pytest.approx(1.0, abs=1e-9)
    ok, stat, df = chi_square_ok(np.concatenate([counts, np.zeros(missing.sum(), int)]), probs)
    assert ok, (stat, df)
    # labels: joint (string, class) frequencies against exact P(x, y)
    post = I.class_posterior(g, x[:5000])
    assert np.mean(np.log(post[np.arange(5000), y[:5000]])) > np.log(0.5)  # the class is mostly recoverable


def test_deep_strings_do_not_underflow():
    g = VaryingRHM(8, L=4, f=0.5, seed=0)
    x, y = g.sample(40, seed=1)
    lp = I.log_likelihood(g, x)
    assert np.isfinite(lp).all() and (lp < 0).all()
    post = I.class_posterior(g, x)
    assert np.allclose(post.sum(1), 1.0) and (post[np.arange(40), y] > 0).all()
    # the chart at L = 4 agrees with a plain (unscaled) product bound: log P(x) >= log of its own derivation
    assert (lp > -40 * np.log(2 * 32) - np.log(8)).all()


def test_cky_bad_input():
    g = VaryingRHM(4, 2, 4, 0.5, 2, seed=0)
    with pytest.raises(ValueError, match="width 10 > 3\\*\\*L = 9"):
        I.log_likelihood(g, np.zeros((2, 10), dtype=int))
    with pytest.raises(ValueError, match="pad only on the right"):
        I.class_posterior(g, np.array([[0, 4, 1, 1, 4, 4, 4, 4, 4]]))
    with pytest.raises(ValueError, match="outside \\[0, 4\\]"):
        I.log_likelihood(g, np.array([[0, 5, 1, 1]]))
    with pytest.raises(ValueError, match="integer"):
        I.log_likelihood(g, np.zeros((2, 9)))
    with pytest.raises(ValueError, match="varying tree topology"):
        I.token_posterior(g, g.sample(2, seed=0).x, np.zeros(9, bool))


def test_cky_memory_is_checked_before_allocating(monkeypatch):
    g = VaryingRHM(8, L=4, f=0.5, seed=0)
    x = g.sample(2, seed=0).x
    monkeypatch.setenv("RHM_MEMORY_LIMIT", "1K")
    with pytest.raises(ValueError, match="CKY chart .* would need"):
        I.log_likelihood(g, x)


@pytest.mark.parametrize("name", ["cnn", "lcn", "chaining", "kmeans"])
def test_fixed_topology_learners_refuse(name):
    from rhm import learners

    g = VaryingRHM(4, 2, 4, 0.5, 2, seed=0)
    x, y = g.sample(40, seed=0)
    with pytest.raises(ValueError, match="needs a fixed tree topology.*VaryingRHM.*varying topology"):
        learners.get(name)().fit(x, y, grammar=g)


def test_vocab_includes_padding():
    g = VaryingRHM(4, 2, 4, 0.5, 2, seed=0)
    assert g.vocab_size == 5 and g.pad_token == 4


def test_cli_sample_varying(tmp_path):
    from typer.testing import CliRunner

    from rhm.cli import app

    out = tmp_path / "s.npz"
    res = CliRunner().invoke(app, ["sample", "--v", "6", "--m", "3", "--m3", "18", "--p2", "0.4", "--L", "2",
                                   "--n", "50", "--out", str(out)])
    assert res.exit_code == 0, res.output
    d = np.load(out)
    g = VaryingRHM.from_dict(json.loads(str(d["grammar"])))
    assert g == VaryingRHM(6, 3, 18, 0.4, 2) and d["x"].shape == (50, 9)
    assert np.array_equal(d["lengths"], (d["x"] != 6).sum(1))
    assert np.isfinite(I.log_likelihood(g, d["x"])).all()
    bad = CliRunner().invoke(app, ["sample", "--v", "6", "--m", "3", "--m3", "18", "--p2", "2", "--L", "2",
                                   "--n", "5", "--out", str(out)])
    assert bad.exit_code == 1 and "p2=2" in bad.output
