"""Patch codes: integer patches (..., s) over an alphabet of size k as base-k int64 codes, and their lookup.

A patch (t_1, ..., t_s) has the code sum_i t_i k^(s-i) (first token most significant), so sorting codes sorts
patches lexicographically. One overflow rule (`fits_codes`): codes are used while k^s < 2^62; above it, distinct
patches are found by comparing rows. A table of distinct patches is a sorted code array; `lookup` finds patches
in it with a binary search, and marks unseen patches (or patches holding an unknown token, < 0) with -1.
"""

from __future__ import annotations

import numpy as np

CODE_LIMIT = 2**62


def fits_codes(k: int, s: int) -> bool:
    """Whether patches of s tokens over k symbols have int64 codes (k^s < 2^62)."""
    return int(k) ** int(s) < CODE_LIMIT


def codes(patches: np.ndarray, k: int) -> np.ndarray:
    """Codes (...) of patches (..., s) with tokens in [0, k); the caller checks `fits_codes(k, s)`."""
    code = np.zeros(patches.shape[:-1], dtype=np.int64)
    for i in range(patches.shape[-1]):  # s steps, vectorised over every patch
        code = code * k + patches[..., i]
    return code


def patch_ids(patches: np.ndarray, k: int):
    """Distinct rows of integer patches (..., s) over an alphabet of size k: (codes (U,), inverse (...)).

    Above the overflow rule the returned "codes" are the distinct rows themselves (U, s)."""
    s = patches.shape[-1]
    flat = patches.reshape(-1, s)
    if fits_codes(k, s):
        uniq, inv = np.unique(codes(flat, k), return_inverse=True)
    else:  # alphabet too large for an int64 code: compare rows
        uniq, inv = np.unique(flat, axis=0, return_inverse=True)
    return uniq, inv.reshape(patches.shape[:-1])


def find(table: np.ndarray, code: np.ndarray):
    """Where codes (...) sit in the sorted code table (U,): (found (...) bool, position (...) clipped to [0, U))."""
    if len(table) == 0:
        return np.zeros(code.shape, bool), np.zeros(code.shape, np.int64)
    pos = np.clip(np.searchsorted(table, code), 0, len(table) - 1)
    return table[pos] == code, pos


def lookup(table: np.ndarray, values: np.ndarray, patches: np.ndarray, k: int) -> np.ndarray:
    """values[i] of every patch (..., s) whose code is table[i] (sorted codes (U,)); -1 for patches not in the
    table or holding an unknown token (< 0)."""
    if not fits_codes(k, patches.shape[-1]):
        raise ValueError(f"alphabet k={k} too large for patch codes of s={patches.shape[-1]} tokens (k^s >= 2^62)")
    unknown = (patches < 0).any(-1)
    found, pos = find(table, codes(np.maximum(patches, 0), k))
    found &= ~unknown
    return np.where(found, values[pos] if len(table) else -1, -1)
