"""Hierarchical filtering (Garnier-Brun et al., ICML 2025) for every grammar: the filtered sampler against the exact
likelihood, the filtered tree PCFG against a brute-force construction of the filtered model, the spec field."""

import itertools

import numpy as np
import pytest
from _enumerate import all_inputs, chi_square_ok, codes, derivations, input_table

import rhm
from rhm import inference as I
from rhm.filtering import level_marginals


def _filtered_table(g, k):
    """P(x, class) of the level-k filtered model, built from its definition by enumeration: the level-k marginals
    given the root from the full derivations, then independent level-k symbols and the rules below them."""
    prior = {(a,): 1.0 / g.n_classes for a in range(g.n_classes)}
    full = derivations(g.rules, g.rule_probs, prior)
    nodes = g.s**k
    marg = np.zeros((g.n_classes, nodes, g.v))
    for levels, p in full:
        for i, b in enumerate(levels[k]):
            marg[levels[0][0], i, b] += p * g.n_classes  # P(x^(k)_i = b | root)
    table = np.zeros((g.v**g.d, g.n_classes))
    for a in range(g.n_classes):
        # every level-k configuration (co-occurring in the full model or not), by the independent marginals
        tops = {tuple(top): float(np.prod([marg[a, i, b] for i, b in enumerate(top)]))
                for top in itertools.product(range(g.v), repeat=nodes)}
        below = input_table(derivations(g.rules, g.rule_probs, tops, start=k), g.v, g.d, g.v)
        table[:, a] = below.sum(1) / g.n_classes
    return table, marg


# seeds where filtering at every level changes the input distribution (total variation > 0.1 from the unfiltered
# one: with v = 2 or 3 many tiny grammars have children independent given their parent, where it changes nothing)
GRAMMARS = {
    "rhm": lambda: rhm.RHM(3, 2, 2, 2, seed=1),
    "rhm-zipf": lambda: rhm.RHM(3, 2, 2, 2, seed=1, zipf=1.0),
    "soft": lambda: rhm.SoftGrammar(2, 2, 3, beta=1.5, seed=1),
}


@pytest.mark.parametrize("name", GRAMMARS)
def test_filtered_inference_matches_enumeration(name):
    g = GRAMMARS[name]()
    xs = all_inputs(g.v, g.d)
    for k in range(1, g.L + 1):
        f = g.filtered(k)
        joint, marg = _filtered_table(g, k)
        assert np.allclose(level_marginals(g, k), marg, atol=1e-12)
        px = joint.sum(1)
        assert abs(px.sum() - 1) < 1e-12
        assert np.allclose(np.exp(I.log_likelihood(f, xs)), px, rtol=1e-9, atol=1e-300)
        pos = px > 0
        assert np.allclose(I.class_posterior(f, xs[pos]), joint[pos] / px[pos, None], atol=1e-10)
        x = xs[pos][::7][:10]
        post = I.token_posterior(f, x, np.arange(g.d) == 1)[:, 1]
        for row, got in zip(x, post):
            alt = np.repeat(row[None], g.v, 0)
            alt[:, 1] = np.arange(g.v)
            w = px[codes(alt, g.v)]
            assert np.allclose(got, w / w.sum(), atol=1e-10)


@pytest.mark.parametrize("name", GRAMMARS)
def test_filtered_sampler_matches_the_exact_likelihood(name):
    g = GRAMMARS[name]()
    xs = all_inputs(g.v, g.d)
    for k in range(1, g.L + 1):
        x, y = g.sample(100_000, seed=k, filter_level=k)
        p = np.exp(I.log_likelihood(g.filtered(k), xs))
        assert 0.5 * np.abs(p - np.exp(I.log_likelihood(g, xs))).sum() > 0.1  # the test can tell them apart
        ok, stat, df = chi_square_ok(np.bincount(codes(x, g.v), minlength=len(xs)), p)
        assert ok, (k, stat, df)
        # the class is kept (the root is drawn from its prior, the level-k symbols given it)
        joint = np.exp(I.joint_log_likelihood(g.filtered(k), x[:2000]))
        assert np.isfinite(joint).all() and (joint[np.arange(2000), y[:2000]] > 0).all()


def test_filtering_changes_the_distribution_but_not_the_level_marginals():
    g = rhm.SoftGrammar(3, 2, 3, beta=1.0, seed=0)
    _, _, full = g.sample(100_000, seed=1, return_tree=True)
    _, _, filt = g.sample(100_000, seed=2, return_tree=True, filter_level=2)
    assert filt[1] is None and filt[2].shape == (100_000, 4)
    for tree in (full, filt):  # P(x^(2)_i = b | root) is the same with and without filtering (3 sigma margin)
        for a in range(3):
            rows = tree[2][tree[0] == a]
            for i in range(4):
                freq = np.bincount(rows[:, i], minlength=3) / len(rows)
                assert np.abs(freq - level_marginals(g, 2)[a, i]).max() < 3 * np.sqrt(0.25 / len(rows)) + 1e-3
    # ... but the pairs of level-2 symbols under one level-1 node decorrelate given the root
    def mi(t):
        a, b = t[2][:, 0].astype(int), t[2][:, 1].astype(int)
        out = 0.0
        for c in range(3):
            sel = t[0] == c
            j = np.bincount(a[sel] * 3 + b[sel], minlength=9).reshape(3, 3) / sel.sum()
            pa, pb = j.sum(1), j.sum(0)
            nz = j > 0
            out += sel.mean() * (j[nz] * np.log(j[nz] / np.outer(pa, pb)[nz])).sum()
        return out
    assert mi(filt) < 0.002 < mi(full)


def test_filter_level_L_makes_tokens_independent_given_the_class():
    g = rhm.RHM(3, 3, 2, 2, seed=0)
    f = g.filtered(2)
    x = all_inputs(3, 4)
    marg = level_marginals(g, 2)  # (class, position, token)
    expect = np.mean([np.prod(marg[a, np.arange(4), x], axis=1) for a in range(3)], axis=0)
    assert np.allclose(np.exp(I.log_likelihood(f, x)), expect, rtol=1e-10)


def test_sparse_and_noisy_grammars_filter_through_their_tree_pcfg():
    sp = rhm.SparseRHM(2, 2, 2, 2, s0=1, seed=0)
    x, y = sp.sample(3000, seed=0, filter_level=1)
    assert x.shape == (3000, sp.d) and x.max() <= sp.blank
    post = I.class_posterior(sp.filtered(1), x)
    assert np.allclose(post.sum(1), 1.0) and (post[np.arange(3000), y] > 0).all()
    noisy = rhm.RHM(2, 2, 2, 2, seed=0, noise=0.2)
    xs = all_inputs(2, 4)
    x, _ = noisy.sample(100_000, seed=3, filter_level=1)
    p = np.exp(I.log_likelihood(noisy.filtered(1), xs))
    assert chi_square_ok(np.bincount(codes(x, 2), minlength=16), p)[0]


def test_spec_field_and_errors():
    spec = rhm.GrammarSpec(v=4, m=2, L=3, filter_level=2)
    f = spec.build()
    assert f.filter_level == 2 and f.spec == spec and "filter_level=2" in spec.label
    assert not spec.is_plain and spec.to_dict()["filter_level"] == 2
    assert "filter_level" not in rhm.GrammarSpec(v=4, m=2, L=3).to_dict()
    assert rhm.GrammarSpec.from_toml(spec.to_toml()) == spec
    soft = rhm.GrammarSpec(v=4, m=4, L=3, beta=1.0, filter_level=1).build()
    assert isinstance(soft.base, rhm.SoftGrammar)
    x, y = f.sample(10, seed=0)
    assert np.array_equal(x, f.base.sample(10, seed=0, filter_level=2)[0])
    g = rhm.RHM(4, 2, 2, 3)
    with pytest.raises(ValueError, match="filter_level=4 must be in \\[0, 3\\]"):
        g.sample(5, seed=0, filter_level=4)
    with pytest.raises(ValueError, match="filter_level=0 must be in \\[1, 3\\]"):
        g.filtered(0)
    with pytest.raises(ValueError, match="replace=False is not defined for filter_level=1"):
        g.sample(5, seed=0, replace=False, filter_level=1)
    with pytest.raises(ValueError, match="parse is not defined"):
        g.filtered(1).parse(x)
    with pytest.raises(ValueError, match="filter_level=5 must be in \\[0, 3\\]"):
        rhm.GrammarSpec(v=4, m=2, L=3, filter_level=5)


def test_torch_backend_agrees_on_the_filtered_model():
    torch = pytest.importorskip("torch")
    g = rhm.SoftGrammar(4, 2, 3, 1.0, seed=0, noise=0.1)
    f = g.filtered(2)
    x, _ = g.sample(300, seed=0, filter_level=2)
    xt = torch.as_tensor(x.astype(np.int64))
    mask = np.arange(8) == 3
    assert np.allclose(I.class_posterior(f, x), I.class_posterior(f, xt).numpy(), atol=1e-12)
    assert np.allclose(I.token_posterior(f, x, mask), I.token_posterior(f, xt, torch.as_tensor(mask)).numpy(),
                       atol=1e-12)
    assert np.allclose(I.next_token(f, x[:20]), I.next_token(f, xt[:20]).numpy(), atol=1e-12)


@pytest.mark.parametrize("make", [lambda: rhm.RHM(4, 2, 2, 3, seed=1, zipf=0.5),
                                  lambda: rhm.SparseRHM(4, 2, 2, 2, s0=1, seed=0),
                                  lambda: rhm.SoftGrammar(4, 2, 3, 1.0, seed=2)])
def test_filtered_json_round_trip(make, tmp_path):
    f = make().filtered(2)
    f.save(tmp_path / "f.json")
    back = rhm.filtering.FilteredGrammar.load(tmp_path / "f.json")
    assert back == f and back.spec == f.spec
    assert np.array_equal(back.sample(50, seed=3)[0], f.sample(50, seed=3)[0])
    with pytest.raises(ValueError, match="not a filtered grammar file"):
        rhm.filtering.FilteredGrammar.from_dict(f.base.to_dict())


def test_resample_below_keeps_the_level_k_symbols():
    g = rhm.RHM(4, 2, 2, 3, seed=0)
    f = g.filtered(1)
    x, y, tree = f.sample(500, seed=0, return_tree=True)
    x2, t2 = f.resample_below(tree, 2, seed=1, return_tree=True)
    assert np.array_equal(t2[2], tree[2]) and not np.array_equal(x2, x)
    with pytest.raises(ValueError, match="level=0 must be >= filter_level=1"):
        f.resample_below(tree, 0, seed=1)
    with pytest.raises(ValueError, match="filtered sparse RHM"):
        rhm.SparseRHM(4, 2, 2, 2, s0=1).filtered(1).resample_below(tree, 1, seed=0)


@pytest.mark.parametrize("name", GRAMMARS)
def test_num_inputs_counts_the_support(name):
    g = GRAMMARS[name]()
    xs = all_inputs(g.v, g.d)
    for k in range(1, g.L + 1):
        f = g.filtered(k)
        assert f.num_inputs == int((I.log_likelihood(f, xs) > -np.inf).sum())
        assert isinstance(f, rhm.Grammar)
        assert f.spec.num_inputs == f.num_inputs  # the spec's count (sweep size caps, the store's p_max) too


def test_filtered_model_streams_batches():
    from rhm.data import RHMStream

    f = rhm.SoftGrammar(4, 2, 3, 1.0, seed=0).filtered(2)
    xb, yb = next(iter(RHMStream(f, 16, seed=0, n_batches=1)))
    assert tuple(xb.shape[:1]) == (16,) and tuple(yb.shape) == (16,)


@pytest.mark.parametrize("dtype", [None, np.uint8])
def test_categorical_draws_match_their_rows(dtype):
    from rhm.filtering import Categorical

    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.full(50, 0.3), size=3)
    p[:, ::7] = 0.0  # zero-probability columns, the first and last included
    p[:, -1] = 0.0
    p /= p.sum(1, keepdims=True)
    p[2] = np.eye(50)[3]  # a deterministic row
    cat = Categorical(p)
    rows = np.repeat(np.arange(3), 200_000).reshape(3, -1)
    cols = cat.draw(np.random.default_rng(1), rows, dtype=dtype).astype(np.int64)
    for r in range(3):
        ok, stat, df = chi_square_ok(np.bincount(cols[r], minlength=50), p[r])
        assert ok, (r, stat, df)


@pytest.mark.parametrize("learner, params", [("chaining", {"width": 256}), ("chaining+", {}), ("kmeans", {}),
                                             ("cnn", {"max_steps": 20}), ("transformer", {"max_steps": 20})])
def test_learners_fit_filtered_and_soft_data_with_their_grammar(learner, params):
    # the classification learners accept these grammars (chaining crashed in its oracle diagnostics, which are
    # defined on the unfiltered RHM): they fit, predict classes in range, and chaining says what it skipped
    for g in (rhm.RHM(v=8, m=4, s=2, L=3, seed=0).filtered(2), rhm.SoftGrammar(4, 2, 3, beta=2.0, seed=0)):
        x, y = g.sample(600, seed=1)
        clf = rhm.learners.get(learner)(**params).fit(x[:500], y[:500], grammar=g)
        pred = clf.predict(x[500:])
        assert pred.shape == (100,) and pred.min() >= 0 and pred.max() < g.n_classes
        if learner == "chaining":
            assert clf.info_["diagnostics"].startswith("skipped: the oracle diagnostics are not defined")
