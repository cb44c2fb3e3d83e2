"""Oracle: parse of unproducible strings, exact q^(l) (vs Monte Carlo), signal gaps, Assumption 6."""

import math

import numpy as np
import pytest

from rhm import RHM, oracle


@pytest.mark.parametrize("rules", ["uniform", "balanced"])
def test_q_rows_sum_to_one_synonyms_share_q(rules):
    g = RHM(8, 4, 2, 3, rules=rules, seed=1)
    for level in range(1, 4):
        st = oracle.patch_stats(g, level)
        assert np.allclose(st.q.sum(1), 1) and (st.q >= 0).all()
        assert np.isclose(st.p.sum(), 1)
        for parent in np.unique(st.parents):
            rows = st.q[st.parents == parent]
            assert np.allclose(rows, rows[0])
        patches, q = oracle.q(g, level)
        assert patches.shape == (len(q), 2) and q.shape[1] == 8
    _, q1 = oracle.q(g, 1)
    assert set(np.unique(q1)) == {0.0, 1.0}  # level 1: the patch determines the label


@pytest.mark.parametrize("g", [RHM(6, 3, 2, 3, seed=2), RHM(4, 2, 3, 2, n_classes=5, seed=0),
                               RHM(8, 4, 2, 3, rules="balanced", seed=4)])
def test_q_matches_monte_carlo(g):
    n = 200_000
    x, y, tree = g.sample(n, seed=0, return_tree=True)
    for level in range(1, g.L + 1):
        st = oracle.patch_stats(g, level)
        first = tree[level][:, : g.s].astype(np.int64)
        code = first @ (g.v ** np.arange(g.s - 1, -1, -1))
        pcode = st.patches @ (g.v ** np.arange(g.s - 1, -1, -1))
        assert set(np.unique(code)) <= set(pcode)  # only "producible" patches ever occur first
        for i in np.argsort(-st.p)[:5]:  # the 5 most frequent first patches
            sel = code == pcode[i]
            emp = np.bincount(y[sel], minlength=g.n_classes) / sel.sum()
            # standard error of each entry <= 0.5/sqrt(count); allow 5 standard errors
            assert np.abs(emp - st.q[i]).max() < 5 * 0.5 / math.sqrt(sel.sum())
            assert abs(sel.mean() - st.p[i]) < 5 * math.sqrt(st.p[i] / n)


def test_signal_gaps_balanced_match_paper_check():
    gaps = oracle.signal_gaps(RHM(8, 4, 2, 3, rules="balanced", seed=0))
    assert gaps.kappa == 1.0  # App. B keeps the first-patch marginal uniform
    assert math.isclose(gaps.rho[1], math.sqrt(2))
    assert gaps.rho[2] < gaps.rho[1] and gaps.rho[3] < gaps.rho[2]


def test_signal_gap_is_min_over_non_synonyms():
    g = RHM(6, 2, 2, 3, seed=3)
    gaps = oracle.signal_gaps(g)
    for level in (2, 3):
        st = oracle.patch_stats(g, level)
        d = np.sqrt(((st.q[:, None] - st.q[None]) ** 2).sum(-1))
        diff = st.parents[:, None] != st.parents[None]
        assert math.isclose(gaps.rho[level], d[diff].min())


def test_assumption6_report():
    g = RHM(8, 4, 2, 3, rules="balanced", seed=0)
    ok = oracle.assumption6(g, 0.5)
    assert ok.satisfied and "holds" in str(ok)
    bad = oracle.assumption6(g, 100.0)
    assert not bad.satisfied and "too small" in str(bad)
    assert math.isclose(ok.K_rho_max, min(r * 4 ** (l / 2) for l, r in ok.rho.items()))
    assert not oracle.assumption6(RHM(6, 2, 2, 2, n_classes=3, seed=0), 0.1).vm_uniform
    with pytest.raises(ValueError, match="K_rho"):
        oracle.assumption6(g, -1)


def test_parse_unproducible_strings():
    g = RHM(8, 2, 2, 3, seed=0)  # m=2 < v: most strings are not in the language
    x, y = g.sample(1000, seed=0)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 8, size=(5000, 8))
    lab, tree = g.parse(noise, return_tree=True)
    valid = lab >= 0
    assert (~valid).mean() > 0.9  # random strings are almost never produced
    assert (g.parse(noise[valid]) == lab[valid]).all()
    # an invalid string fails somewhere: a -1 at level 1, or a level-1 pair that no class produces
    t1 = tree[1][~valid]
    top = {tuple(p) for p in g.rules[0].reshape(-1, 2).tolist()}
    assert all(-1 in row or tuple(row) not in top for row in t1.tolist())
    assert (t1 == -1).any(1).mean() > 0.5
    # flipping one token of a valid input to a symbol that breaks its patch gives -1
    x2 = x.copy().astype(np.int64)
    x2[:, 0] = (x2[:, 0] + 1) % 8
    y2 = g.parse(x2)
    assert ((y2 == -1) | (y2 >= 0)).all() and (y2 == -1).mean() > 0.5


def test_parse_validates_input():
    g = RHM(4, 2, 2, 2)
    with pytest.raises(ValueError, match=r"shape \(3,\), expected \(n, d=4\)"):
        g.parse(np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        g.parse(np.full((2, 4), 4))
    with pytest.raises(ValueError, match="integer tokens"):
        g.parse(np.zeros((2, 4)))


def test_parse_large_vocabulary_paths():
    # v**s above the dense-table limit (sorted codes) and beyond int64 (row dictionary)
    for g in (RHM(2100, 3, 2, 2, seed=0), RHM(300, 2, 8, 1, seed=0)):
        x, y = g.sample(500, seed=1)
        assert (g.parse(x) == y).all()
        bad = x.copy()
        bad[:, :2] = bad[:, 1::-1]  # swap the first two tokens: almost surely not a rule
        assert (g.parse(bad) == -1).mean() > 0.9


def test_level_validation():
    with pytest.raises(ValueError, match=r"level=0 must be an integer in \[1, L=2\]"):
        oracle.q(RHM(4, 2, 2, 2), 0)
