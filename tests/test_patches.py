"""rhm.patches: base-k codes and their inverse, distinct patches, lookup of unseen and unknown patches (codes and
rows), the one overflow rule; and the encoder as the oracle, kmeans and chaining+ use it."""

import numpy as np
import pytest

from rhm import RHM, oracle
from rhm.learners import get
from rhm.patches import check_codes, codes, digits, fits_codes, lookup, patch_ids

SEEDS = (0, 1, 2, 3, 4)
HUGE = 2**40  # k**2 >= 2**62: above the overflow rule for s = 2


@pytest.mark.parametrize("seed", SEEDS)
def test_codes_are_base_k_first_token_most_significant_and_digits_invert_them(seed):
    rng = np.random.default_rng(seed)
    for k, s in ((2, 3), (5, 2), (8, 4), (3, 39)):  # 3**39 < 2**62 < 3**40: the largest codes still fit
        p = rng.integers(0, k, (50, s))
        c = codes(p, k)
        assert c.dtype == np.int64
        assert np.array_equal(c, sum(p[:, i].astype(object) * k ** (s - 1 - i) for i in range(s)).astype(np.int64))
        assert np.array_equal(np.sort(c), c[np.lexsort(p.T[::-1])])  # code order = lexicographic order
        assert np.array_equal(digits(c, k, s), p)
        assert np.array_equal(digits(c.reshape(5, 10), k, s), p.reshape(5, 10, s))


@pytest.mark.parametrize("seed", SEEDS)
def test_patch_ids_are_the_distinct_rows_and_their_inverse_in_both_regimes(seed):
    rng = np.random.default_rng(seed)
    p = rng.integers(0, 3, (4, 6, 2))
    rows, inv_rows = np.unique(p.reshape(-1, 2), axis=0, return_inverse=True)
    uniq, inv = patch_ids(p, 3)
    assert inv.shape == (4, 6) and np.array_equal(uniq[inv], codes(p, 3))
    assert np.array_equal(digits(uniq, 3, 2), rows) and np.array_equal(inv.reshape(-1), inv_rows.reshape(-1))
    as_rows, inv2 = patch_ids(p, 3, rows=True)  # same order and inverse, the table as rows
    assert np.array_equal(as_rows, rows) and np.array_equal(inv2, inv)
    big = p * (HUGE // 4)  # the same patches over an alphabet too large for codes: rows, same inverse
    big_rows, big_inv = patch_ids(big, HUGE)
    assert big_rows.shape == (len(rows), 2) and np.array_equal(big_rows, rows * (HUGE // 4))
    assert np.array_equal(big_inv, inv)


@pytest.mark.parametrize("seed", SEEDS)
def test_lookup_finds_seen_patches_and_marks_unseen_and_unknown_ones(seed):
    rng = np.random.default_rng(seed)
    for k, scale in ((6, 1), (HUGE, HUGE // 8)):  # codes, then rows above the overflow rule
        train = rng.integers(0, 6, (30, 2)) * scale
        table, inv = patch_ids(train, k)
        values = rng.permutation(len(table)) + 100
        query = rng.integers(0, 6, (4, 25, 2)) * scale
        query[0, :3, 1] = -1  # unknown tokens
        got = lookup(table, values, query, k)
        seen = {tuple(r): values[i] for r, i in zip(train.tolist(), inv.tolist())}
        want = [[-1 if min(q) < 0 else seen.get(tuple(q), -1) for q in row] for row in query.tolist()]
        assert got.shape == (4, 25) and got.tolist() == want
        assert (got[0, :3] == -1).all()
        assert lookup(table, values, query, k, missing=-7)[0, :3].tolist() == [-7] * 3
        empty = patch_ids(np.zeros((0, 2), np.int64), k)[0]
        assert (lookup(empty, np.zeros(0, np.int64), query, k) == -1).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_lookup_of_value_rows_and_of_tokens_outside_the_alphabet(seed):
    """values may be rows (U, c): each patch gets its row; a token >= k is unknown like a token < 0 (its code
    would alias another patch: (0, k) has the code of (1, 0)), in both regimes."""
    rng = np.random.default_rng(seed)
    for k, scale in ((5, 1), (HUGE, HUGE // 8)):
        train = rng.integers(0, 5, (20, 2)) * scale
        table, inv = patch_ids(train, k)
        rows = rng.normal(size=(len(table), 3))
        query = rng.integers(0, 5, (6, 10, 2)) * scale
        query[0, :2] = [[0, k], [k + 3, 0]]  # outside [0, k)
        got = lookup(table, rows, query, k, missing=np.nan)
        ids = lookup(table, np.arange(len(table)), query, k)
        assert got.shape == (6, 10, 3) and np.isnan(got[ids < 0]).all()
        assert np.array_equal(got[ids >= 0], rows[ids[ids >= 0]]) and (ids[0, :2] == -1).all()
        want = {tuple(r): i for r, i in zip(train.tolist(), inv.tolist())}
        assert ids.tolist() == [[want.get(tuple(q), -1) if max(q) < k else -1 for q in r] for r in query.tolist()]
    assert lookup(table[:0], rows[:0], query, k).shape == (6, 10, 3)


def test_one_overflow_rule_one_error_naming_the_parameter():
    assert fits_codes(2, 61) and not fits_codes(2, 62) and fits_codes(3, 39) and not fits_codes(3, 40)
    check_codes(2, 61)
    with pytest.raises(ValueError, match=r"v=4 is too large for patch codes of s=31 tokens: v\*\*s must be < 2\*\*62"):
        check_codes(4, 31, "v")
    p = np.array([[1, 2], [3, 4]])
    with pytest.raises(ValueError, match=r"k=1099511627776 is too large for patch codes of s=2 tokens"):
        codes(p, HUGE)
    with pytest.raises(ValueError, match="too large for patch codes"):
        digits(np.array([5]), HUGE, 2)
    for bad, rule in (((0, 2), "k=0 must be >= 1"), ((2.0, 2), "k=2.0 must be an integer"),
                      ((3, 0), "s=0 must be >= 1")):
        with pytest.raises(ValueError, match=rule):
            fits_codes(*bad)
    with pytest.raises(ValueError, match="v=0 must be >= 1"):
        check_codes(0, 2, "v")
    with pytest.raises(ValueError, match="k=0 must be >= 1"):
        patch_ids(p, 0)
    table = patch_ids(p, 8)[0]  # a code table cannot be searched with patches over a larger alphabet
    with pytest.raises(ValueError, match="too large for patch codes"):
        lookup(table, np.arange(2), p, HUGE)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_oracle_parses_the_same_above_and_below_its_dense_table(seed):
    """The oracle's parent lookup (dense table for small v**s, the shared encoder above): every sampled input
    parses to its label, and relabelling the input tokens to a huge vocabulary (rows regime) changes nothing
    (L = 1: the input is the only level whose alphabet is v; with s = 3, v = 2**12 takes the sorted codes and
    v = 2**21 is above the overflow rule, rows)."""
    g = RHM(8, 3, 3, 1, seed=seed)
    x, y = g.sample(200, seed=seed)
    noisy = np.random.default_rng(seed).integers(0, 8, (50, g.d))
    want = oracle.parse(g, np.concatenate([x, noisy]))
    assert np.array_equal(want[:200], y) and 0 < (want[200:] == -1).sum() < 50
    for big_v in (2**12, 2**21):
        big = RHM.from_rules([r * (big_v // 8) for r in g.rules], v=big_v, n_classes=g.n_classes)
        got = oracle.parse(big, np.concatenate([x, noisy]).astype(np.int64) * (big_v // 8))
        assert np.array_equal(got, want)


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_learners_refuse_or_handle_alphabets_above_the_overflow_rule(seed):
    """chaining+ codes its patches: a vocabulary above the rule is refused naming v; kmeans's table falls back
    to rows and predicts exactly as on the same data written with a small vocabulary (two classes keep at most 8
    distinct patches per level, so k-means gets min(v, patches) = the same number of clusters for both v)."""
    g = RHM(8, 2, 2, 2, n_classes=2, seed=seed)
    x, y = g.sample(120, seed=seed)
    with pytest.raises(ValueError, match=r"v=1099511627776 is too large for patch codes of s=2 tokens"):
        get("chaining+")(s=2, restarts=1).fit(x, y, v=HUGE)
    small = get("kmeans")(width=32, n_init=2, s=2, seed=seed).fit(x, y, v=8)
    big = get("kmeans")(width=32, n_init=2, s=2, seed=seed).fit(x.astype(np.int64) * (HUGE // 8), y, v=HUGE)
    xt, _ = g.sample(100, seed=seed + 50)
    assert np.array_equal(big.predict(xt.astype(np.int64) * (HUGE // 8)), small.predict(xt))
