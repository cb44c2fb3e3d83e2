"""Top-down refinement (hard EM, "backward feature correction"): the upper levels correct the lower clustering.

Level by level from the top down, every distinct patch is reassigned to the symbol that maximises the training
label log-likelihood of the samples containing it, the rest of the network held fixed (coordinate ascent).
"""

from __future__ import annotations

import numpy as np

from ...patches import patch_ids
from .network import FitState


def refine_level(state: FitState, level: int, x: np.ndarray, y: np.ndarray, rows: np.ndarray):
    """Reassign every distinct level-`level` patch of the training set to its best symbol, then refit the top.

    For each occurrence (sample i, patch position p) and candidate symbol c, the level-(l-1) token at p is set
    to c and propagated up through the current maps to the top model; scores are summed per patch. `rows`: the
    samples of the top model's stage."""
    s, n = state.s, len(x)
    sym = state.symbols(x)
    patches = sym[level].reshape(n, -1, s)
    valid = (patches >= 0).all(-1)
    uniq, inv = patch_ids(patches[valid], state.vocab[level])
    occ_i, occ_p = np.nonzero(valid)
    current = state.lookup(level, patches[occ_i, occ_p])
    scores = np.zeros((len(uniq), state.vocab[level - 1]))
    for c in range(state.vocab[level - 1]):  # one vectorised pass per candidate symbol
        tok, pos = np.full(len(occ_i), c), occ_p
        for up in range(level - 1, 1, -1):  # level-`up` token at `pos` -> level-(up-1) token at pos // s
            group = sym[up][occ_i[:, None], (pos // s * s)[:, None] + np.arange(s)]
            group[np.arange(len(occ_i)), pos % s] = tok
            tok, pos = state.lookup(up, group), pos // s
        top = sym[1][occ_i].copy()
        top[np.arange(len(occ_i)), pos] = tok
        scores[:, c] = np.bincount(inv, weights=state.top_logprob(top, y[occ_i]), minlength=len(uniq))
    keep = current >= 0  # ties keep the current symbol
    scores[inv[keep], current[keep]] += 1e-9
    state.codes[level], state.maps[level] = uniq, scores.argmax(1)
    state.fit_top(state.symbols(x)[1], y, rows)


def refine(state: FitState, x: np.ndarray, y: np.ndarray, rows: np.ndarray, max_sweeps: int) -> int:
    """Top-down sweeps over levels 2..L until no patch changes its symbol or `max_sweeps`; the sweeps run."""
    sweeps = 0
    for sweeps in range(1, max_sweeps + 1):
        before = [m.copy() for m in state.maps.values()]
        for level in range(2, state.L + 1):
            refine_level(state, level, x, y, rows)
        if all(len(a) == len(b) and (a == b).all() for a, b in zip(before, state.maps.values())):
            break  # converged: no patch changed its symbol
    return sweeps
