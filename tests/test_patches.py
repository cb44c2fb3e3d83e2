"""rhm.patches: base-k codes, distinct patches, lookup of unseen and unknown patches, the overflow rule."""

import numpy as np
import pytest

from rhm.patches import codes, find, fits_codes, lookup, patch_ids


def test_codes_are_base_k_first_token_most_significant_and_sort_lexicographically():
    rng = np.random.default_rng(0)
    for k, s in ((2, 3), (5, 2), (8, 4)):
        p = rng.integers(0, k, (50, s))
        c = codes(p, k)
        assert np.array_equal(c, sum(p[:, i] * k ** (s - 1 - i) for i in range(s)))
        order = np.lexsort(p.T[::-1])
        assert np.array_equal(np.sort(c), c[order])


def test_patch_ids_are_the_distinct_rows_and_their_inverse():
    rng = np.random.default_rng(1)
    p = rng.integers(0, 3, (4, 6, 2))
    uniq, inv = patch_ids(p, 3)
    assert inv.shape == (4, 6) and len(uniq) == len(np.unique(p.reshape(-1, 2), axis=0))
    assert np.array_equal(uniq[inv], codes(p, 3))


def test_overflow_rule_switches_to_row_comparison():
    assert fits_codes(2, 61) and not fits_codes(2, 62)
    p = np.array([[[1, 2], [1, 2], [3, 4]]], dtype=np.int64)
    uniq, inv = patch_ids(p, 2**40)
    assert uniq.shape == (2, 2) and inv.tolist() == [[0, 0, 1]]
    with pytest.raises(ValueError, match="too large for patch codes"):
        lookup(uniq, np.arange(2), p, 2**40)


def test_lookup_marks_unseen_and_unknown_patches():
    table = codes(np.array([[0, 1], [2, 2], [3, 0]]), 4)
    values = np.array([7, 8, 9])
    q = np.array([[2, 2], [0, 1], [1, 1], [-1, 1], [3, 0]])
    assert lookup(table, values, q, 4).tolist() == [8, 7, -1, -1, 9]
    found, _ = find(np.zeros(0, np.int64), np.array([3, 4]))
    assert not found.any()
    assert lookup(np.zeros(0, np.int64), np.zeros(0, np.int64), q, 4).tolist() == [-1] * 5
