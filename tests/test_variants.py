"""The RHM variants: Zipf rule probabilities, token noise and the sparse RHM (sampling, parse, save/load)."""

import json

import numpy as np
import pytest

import rhm
from rhm.data import RHMDataset, RHMStream
from rhm.grammar import zipf_probs
from rhm.sparse import SparseRHM


@pytest.mark.parametrize("kwargs, match", [
    (dict(zipf=-0.5), "zipf=-0.5 must be >= 0"),
    (dict(zipf="1"), "zipf='1' must be a finite real"),
    (dict(zipf=float("inf")), "zipf=inf must be a finite real"),
    (dict(noise=1.5), "noise=1.5 must be a probability"),
    (dict(noise=-0.1), "noise=-0.1 must be >= 0"),
    (dict(noise=True), "noise=True must be a finite real"),
])
def test_variant_parameters_are_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rhm.RHM(8, 4, 2, 3, **kwargs)


def test_sparse_parameters_are_validated():
    with pytest.raises(ValueError, match="s0=-1 must be >= 0"):
        SparseRHM(8, 4, 2, 2, s0=-1)
    with pytest.raises(ValueError, match="s0=1.5 must be an integer"):
        SparseRHM(8, 4, 2, 2, s0=1.5)
    with pytest.raises(ValueError, match="m=9 exceeds"):
        SparseRHM(8, 9, 2, 2, s0=1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_variants_keep_the_rules_of_the_seed(seed):
    plain = rhm.RHM(8, 4, 2, 3, seed=seed)
    for g in (rhm.RHM(8, 4, 2, 3, seed=seed, zipf=1.0, noise=0.1), SparseRHM(8, 4, 2, 3, s0=2, seed=seed).base):
        assert all(np.array_equal(a, b) for a, b in zip(plain.rules, g.rules))
    # a plain grammar given the default variant arguments draws the same bytes
    same = rhm.RHM(8, 4, 2, 3, seed=seed, zipf=None, noise=0.0)
    for a, b in zip(plain.sample(500, seed=3), same.sample(500, seed=3)):
        assert np.array_equal(a, b)


def test_rule_probs():
    g = rhm.RHM(8, 4, 2, 3, n_classes=3)
    assert [p.shape for p in g.rule_probs] == [(3, 4), (8, 4), (8, 4)]
    assert all(np.allclose(p, 0.25) for p in g.rule_probs)
    z = rhm.RHM(8, 4, 2, 3, zipf=0.0)
    assert np.allclose(z.rule_probs[1][5], (1 / np.arange(1, 5)) / (1 / np.arange(1, 5)).sum())
    assert np.allclose(rhm.RHM(8, 4, 2, 3, zipf=1.5).rule_probs[0].sum(axis=1), 1)


def _rule_index(g, parent, patch):
    """Index k of the rule of `parent` that produces `patch`, by brute comparison."""
    table = g.rules[0][parent]  # (n, m, s)
    return (table == patch[:, None, :]).all(axis=2).argmax(axis=1)


@pytest.mark.parametrize("seed, a", [(0, 0.0), (1, 1.0), (2, 2.5)])
def test_zipf_rule_frequencies(seed, a):
    g = rhm.RHM(8, 6, 2, 2, seed=seed, zipf=a)
    n = 200_000
    x, y, tree = g.sample(n, seed=seed + 10, return_tree=True)
    k = _rule_index(g, y.astype(int), tree[1])
    freq = np.bincount(k, minlength=g.m) / n
    f = zipf_probs(g.m, a)
    assert np.all(np.abs(freq - f) < 5 * np.sqrt(f * (1 - f) / n))  # 5 standard errors per rule
    assert np.array_equal(g.parse(x), y)  # Zipf keeps the label a function of x
    x2, tree2 = g.resample_below(tree, 1, seed=seed, return_tree=True)
    assert np.array_equal(tree2[1], tree[1]) and np.array_equal(g.parse(x2), y)
    k2 = (g.rules[1][tree2[1][:, 0].astype(int)] == x2[:, None, :2]).all(axis=2).argmax(axis=1)
    freq2 = np.bincount(k2, minlength=g.m) / n  # the redrawn level-1 rules follow the law too
    assert np.all(np.abs(freq2 - f) < 5 * np.sqrt(f * (1 - f) / n))


def test_zipf_levels_restrict_the_law():
    g = rhm.RHM(8, 6, 2, 2, seed=3, zipf=1.0, zipf_levels=[1])
    assert np.allclose(g.rule_probs[0], 1 / 6) and np.allclose(g.rule_probs[1][0], zipf_probs(6, 1.0))
    n = 200_000
    x, y, tree = g.sample(n, seed=4, return_tree=True)
    k0 = _rule_index(g, y.astype(int), tree[1])
    freq = np.bincount(k0, minlength=g.m) / n
    assert np.all(np.abs(freq - 1 / 6) < 5 * np.sqrt((1 / 6) * (5 / 6) / n))
    with pytest.raises(ValueError, match="zipf_levels=\\[1\\] needs zipf"):
        rhm.RHM(8, 6, 2, 2, zipf_levels=[1])
    with pytest.raises(ValueError, match="zipf_levels=2 must be in"):
        rhm.RHM(8, 6, 2, 2, zipf=1.0, zipf_levels=[2])
    assert rhm.RHM(8, 6, 2, 2, zipf=1.0, zipf_levels=[0, 1]).zipf_levels is None  # every level = the default
    h = rhm.RHM.from_dict(json.loads(json.dumps(g.to_dict())))
    assert h == g and h.zipf_levels == (1,)


@pytest.mark.parametrize("seed, eps", [(0, 0.05), (1, 0.3), (2, 1.0)])
def test_noise_rate_and_clean_tree(seed, eps):
    g = rhm.RHM(8, 4, 2, 3, seed=seed, noise=eps)
    n = 50_000
    x, y, tree = g.sample(n, seed=seed, return_tree=True)
    assert np.array_equal(g.parse(tree[-1]), y)  # tree[L] holds the clean tokens
    changed = (x != tree[-1]).mean()
    p = eps * (g.v - 1) / g.v  # a replacement may draw the original token
    assert abs(changed - p) < 5 * np.sqrt(p * (1 - p) / x.size) + 1e-12
    x2, tree2 = g.resample_below(tree, 1, seed=4, return_tree=True)
    assert np.array_equal(tree2[1], tree[1]) and np.array_equal(g.parse(tree2[-1]), y)
    assert abs((x2 != tree2[-1]).mean() - p) < 5 * np.sqrt(p * (1 - p) / x.size) + 1e-12  # fresh noise


def test_replace_false_is_refused_where_undefined():
    with pytest.raises(ValueError, match="replace=False is not defined for zipf"):
        rhm.RHM(8, 4, 2, 2, zipf=1.0).sample(10, seed=0, replace=False)
    with pytest.raises(ValueError, match="replace=False is not defined for noise"):
        SparseRHM(8, 4, 2, 2, s0=1, noise=0.1).sample(10, seed=0, replace=False)


def test_variant_json_round_trip_and_old_files(tmp_path):
    g = rhm.RHM(8, 4, 2, 3, seed=5, zipf=0.5, noise=0.2)
    g.save(tmp_path / "g.json")
    h = rhm.RHM.load(tmp_path / "g.json")
    assert h == g and (h.zipf, h.noise) == (0.5, 0.2)
    assert h != rhm.RHM(8, 4, 2, 3, seed=5)
    plain = rhm.RHM(8, 4, 2, 3, seed=5).to_dict()
    assert plain["version"] == 1 and "zipf" not in plain  # plain files are unchanged
    old = dict(plain)
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert rhm.RHM.load(tmp_path / "old.json").is_plain
    bad = dict(g.to_dict(), noise=2.0)
    with pytest.raises(ValueError, match="noise=2.0 must be a probability"):
        rhm.RHM.from_dict(bad)


def test_sparse_sizes_parse_and_resample():
    g = SparseRHM(8, 4, 2, 3, s0=2, seed=1)
    assert g.d == (2 * 3) ** 3 and g.vocab_size == 9
    assert g.num_inputs == 8 * 4**7 * 3 ** (2 + 4 + 8)
    x, y, tree = g.sample(3000, seed=2, return_tree=True)
    assert x.shape == (3000, g.d) and [t.shape[1] for t in tree[1:]] == [6, 36, 216]
    assert ((x != g.blank).sum(axis=1) == g.s**g.L).all()  # s**L informative tokens per input
    assert np.array_equal(g.parse(x), y)
    _, ptree = g.parse(x, return_tree=True)
    assert all(np.array_equal(a, b) for a, b in zip(ptree[1:], tree[1:]))
    # two informative tokens in one block, or an informative token moved out of its block: no derivation
    bad = x.copy()
    row = np.arange(len(x))
    first = (bad != g.blank).argmax(axis=1)
    block_start = first - first % (g.s0 + 1)
    other = block_start + (first - block_start + 1) % (g.s0 + 1)
    bad[row, other] = bad[row, first]
    assert (g.parse(bad) == -1).all()
    # resampling below level 1 keeps the level-1 layout (symbols and positions) and the label
    x2, tree2 = g.resample_below(tree, 1, seed=3, return_tree=True)
    assert np.array_equal(tree2[1], tree[1]) and np.array_equal(g.parse(x2), y)
    assert not np.array_equal(x2, x)


def test_sparse_with_s0_zero_is_the_rhm():
    g = SparseRHM(8, 4, 2, 3, s0=0, seed=4)
    x, y = g.sample(1000, seed=1)
    assert g.d == 8 and g.num_inputs == g.base.num_inputs
    assert np.array_equal(g.base.parse(x), y) and np.array_equal(g.parse(x), y)


@pytest.mark.parametrize("seed", [0, 1])
def test_sparse_without_replacement_is_distinct_and_seeded(seed):
    g = SparseRHM(4, 2, 2, 2, s0=1, seed=seed)
    x, y = g.sample(1500, seed=seed, replace=False)
    assert len(np.unique(x, axis=0)) == 1500 and np.array_equal(g.parse(x), y)
    assert np.array_equal(x, g.sample(1500, seed=seed, replace=False)[0])
    with pytest.raises(ValueError, match="exceeds num_inputs"):
        g.sample(g.num_inputs + 1, seed=0, replace=False)
    big = SparseRHM(8, 4, 2, 4, s0=3, seed=seed)  # num_inputs > 2**62: dedup path
    xb, yb = big.sample(200, seed=seed, replace=False)
    assert len(np.unique(xb, axis=0)) == 200 and np.array_equal(big.parse(xb), yb)


def test_sparse_json_round_trip(tmp_path):
    g = SparseRHM(8, 4, 2, 2, s0=2, seed=3, zipf=1.0, noise=0.05)
    g.save(tmp_path / "s.json")
    h = SparseRHM.load(tmp_path / "s.json")
    assert h == g and h.s0 == 2 and h.noise == 0.05 and h.zipf == 1.0
    for a, b in zip(g.sample(100, seed=1), h.sample(100, seed=1)):
        assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="not an rhm grammar file"):
        rhm.RHM.load(tmp_path / "s.json")
    (tmp_path / "bad.json").write_text(json.dumps(dict(g.to_dict(), s0=-2)))
    with pytest.raises(ValueError, match="s0=-2 must be >= 0"):
        SparseRHM.load(tmp_path / "bad.json")


def test_datasets_use_the_vocabulary_of_each_variant():
    g = SparseRHM(4, 2, 2, 2, s0=1, seed=0)
    ds = RHMDataset.from_grammar(g, 64, seed=0)
    xb, yb = ds[np.arange(8)]
    assert xb.shape == (8, 5, g.d)
    stream = RHMStream(rhm.RHM(4, 2, 2, 2, noise=0.3), batch_size=16, seed=0, n_batches=2)
    assert [b[0].shape for b in stream] == [(16, 4, 4)] * 2


@pytest.mark.parametrize("m, a", [(8, 1.0), (5, 0.0), (64, 2.5), (3, 0.3)])
def test_zipf_sampler_tables_are_exact(m, a):
    """The probability each rule gets from the byte tables (plus the exact float refinement) is f_k."""
    from rhm.sampling import _ZipfChoices

    f = zipf_probs(m, a)
    z = _ZipfChoices(f)
    mass = np.bincount(z.table[z.table != z.sentinel], minlength=m) / 256
    mass += np.bincount(z.table2[z.table2 != z.sentinel], minlength=m) / 65536
    lo = np.concatenate([[0.0], z.cdf[:-1]])
    for r, cell in enumerate(np.flatnonzero(z.table == z.sentinel)):
        for j in np.flatnonzero(z.table2[r] == z.sentinel):  # refined by a float: the exact overlaps
            left, right = (cell * 256 + j) / 65536, (cell * 256 + j + 1) / 65536
            mass += np.clip(np.minimum(right, z.cdf) - np.maximum(left, lo), 0, None)
    assert np.abs(mass - f).max() < 1e-12
