"""VaryingRHM (Parley, Cagnetta, Wyart 2026): rules, the padded sample format, lengths against the exact
distribution, trees against the rules, JSON/spec round trips and bad input."""

import numpy as np
import pytest
from _enumerate import chi_square_ok

import rhm
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


def test_trees_follow_the_rules():
    g = VaryingRHM(6, 2, 12, 0.5, 3, seed=7)
    n = 300
    x, y, tree = s = g.sample(n, seed=3, return_tree=True)
    assert np.array_equal(tree[0], y) and np.array_equal(tree[-1][:, : x.shape[1]], x)
    pad = g.pad_token
    for level in range(g.L):
        bset = {(a, *r) for a in range(g.symbols(level)) for r in map(tuple, g.binary_rules[level][a])}
        tset = {(a, *r) for a in range(g.symbols(level)) for r in map(tuple, g.ternary_rules[level][a])}
        parents = tree[level].reshape(n, -1)
        ar = s.arities[level]
        assert ((ar > 0) == (parents != pad)).all()
        for i in range(0, n, 37):  # spot-check rows: each node's children are one of its rules
            pos = 0
            kids = tree[level + 1][i]
            for a, k in zip(parents[i], ar[i]):
                if k == 0:
                    continue
                assert (int(a), *map(int, kids[pos: pos + k])) in (bset if k == 2 else tset)
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
