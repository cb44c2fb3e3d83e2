"""Patch codes: integer patches (..., s) over an alphabet of size k as base-k int64 codes, and their lookup.

A patch (t_1, ..., t_s) has the code sum_i t_i k^(s-i) (first token most significant), so sorting codes sorts
patches lexicographically; `digits` inverts `codes`. One overflow rule: codes exist while k^s < 2^62
(`fits_codes`); `codes` and `digits` refuse larger alphabets with one ValueError (`check_codes`), and above the
rule `patch_ids` and `lookup` compare rows instead. A table of distinct patches is what `patch_ids` returns:
sorted codes (U,), or sorted rows (U, s) above the rule; `lookup` finds patches in it and marks unseen patches
(or patches holding a token outside [0, k)) as missing.

This module imports only numpy and rhm.validation: it sits below rhm.grammar, which draws its rule tuples as codes.
"""

from __future__ import annotations

import numpy as np

from .validation import check_int

CODE_LIMIT = 2**62


def fits_codes(k: int, s: int) -> bool:
    """Whether patches of s tokens over k symbols have int64 codes (k^s < 2^62); k and s must be integers >= 1."""
    return check_int("k", k, 1) ** check_int("s", s, 1) < CODE_LIMIT


def check_codes(k: int, s: int, name: str = "k") -> None:
    """The overflow rule as an error: ValueError naming `name` (the caller's parameter for k) unless k^s < 2^62."""
    check_int(name, k, 1)
    if not fits_codes(k, s):
        raise ValueError(f"{name}={k} is too large for patch codes of s={s} tokens: {name}**s must be < 2**62 "
                         "(int64 codes)")


def codes(patches: np.ndarray, k: int) -> np.ndarray:
    """Codes (...) int64 of patches (..., s) with tokens in [0, k)."""
    check_codes(k, patches.shape[-1])
    code = np.zeros(patches.shape[:-1], dtype=np.int64)
    for i in range(patches.shape[-1]):  # s steps, vectorised over every patch, in place
        code *= k
        code += patches[..., i]
    return code


def digits(code: np.ndarray, k: int, s: int) -> np.ndarray:
    """The patches (..., s) int64 of codes (...): base-k digits, most significant first (inverse of `codes`)."""
    check_codes(k, s)
    powers = k ** np.arange(s - 1, -1, -1, dtype=np.int64)
    return (np.asarray(code)[..., None] // powers) % k


def patch_ids(patches: np.ndarray, k: int, rows: bool = False):
    """Distinct patches of integer patches (..., s) over an alphabet of size k: (table, inverse (...)).

    The table is the sorted codes (U,), or the distinct rows (U, s) in lexicographic order above the overflow
    rule or when `rows` is set (the same order and inverse either way)."""
    s = patches.shape[-1]
    flat = patches.reshape(-1, s)
    if not fits_codes(k, s):  # alphabet too large for an int64 code: compare rows
        uniq, inv = np.unique(flat, axis=0, return_inverse=True)
    elif rows:
        _, first, inv = np.unique(codes(flat, k), return_index=True, return_inverse=True)
        uniq = flat[first]
    else:
        uniq, inv = np.unique(codes(flat, k), return_inverse=True)
    return uniq, inv.reshape(patches.shape[:-1])


def _positions(table: np.ndarray, patches: np.ndarray, k: int) -> np.ndarray:
    """Row of every patch (..., s) in the table of distinct patches (codes (U,) sorted, or rows (U, s)); -1 if
    absent. Tokens must be >= 0."""
    if table.ndim == 2:  # rows: number table and queries together, then map the numbers back to table rows
        flat = patches.reshape(-1, patches.shape[-1])
        _, inv = np.unique(np.concatenate([table, flat]), axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        row = np.full(inv.max() + 1 if len(inv) else 0, -1, dtype=np.int64)
        row[inv[: len(table)]] = np.arange(len(table))
        return row[inv[len(table):]].reshape(patches.shape[:-1])
    code = codes(patches, k)
    if len(table) == 0:
        return np.full(code.shape, -1, dtype=np.int64)
    pos = np.clip(np.searchsorted(table, code), 0, len(table) - 1)
    return np.where(table[pos] == code, pos, -1)


def lookup(table: np.ndarray, values: np.ndarray, patches: np.ndarray, k: int, missing=-1) -> np.ndarray:
    """values[i] (..., *values.shape[1:]) of every patch (..., s) equal to the table's entry i (a table from
    `patch_ids`); `missing` for patches not in the table or holding a token outside [0, k) (a token >= k would
    otherwise alias another patch's code)."""
    unknown = ((patches < 0) | (patches >= k)).any(-1)
    pos = _positions(table, np.clip(patches, 0, k - 1), k)
    pos[unknown] = -1
    if len(table) == 0:
        return np.full(pos.shape + np.shape(values)[1:], missing)
    hit = (pos >= 0).reshape(pos.shape + (1,) * (np.ndim(values) - 1))  # one flag per patch, over value rows
    return np.where(hit, values[np.maximum(pos, 0)], missing)
