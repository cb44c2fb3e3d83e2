"""Synonym-invariant statistics of a level's distinct patches, and their clustering.

Every block is a conditional distribution given the patch (and its slot / position), equal for synonyms under
the RHM, in the Hellinger embedding: sqrt of the Dirichlet-smoothed conditional, whose sampling noise has
variance ~1/(4 n) whatever the probabilities. Blocks: P(label | patch at position p), P(sibling in slot b |
patch in slot a) (pooled over parent positions), and (labelled) P(sibling's symbol in slot b, label | patch in
slot a of parent j) per parent position j.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans

from ..linkage import mst_edges


@dataclass(frozen=True)
class Blocks:
    """What `statistics` measures: label blocks at every position (else the first), context blocks, their prior."""

    s: int
    n_classes: int
    prior: float
    all_patches: bool
    context: bool


def hellinger(counts: np.ndarray, prior: np.ndarray, alpha: float) -> np.ndarray:
    """sqrt of Dirichlet-smoothed conditionals: rows of `counts` (..., K) shrunk toward `prior` (K,)."""
    n = counts.sum(-1, keepdims=True)
    return np.sqrt((counts + alpha * prior) / (n + alpha))


def statistics(cfg: Blocks, inv, sib, K, y, rows, U, labelled=False) -> list[np.ndarray]:
    """The blocks (each (U, K_block)) of the level's U distinct patches from samples `rows`.

    inv (n, P): distinct-patch id of every patch; sib (n, P): the sibling as seen by the context blocks (its
    patch id, K = U, or its previous-pass symbol, K symbols, -1 = unknown and not counted)."""
    s, n_c = cfg.s, cfg.n_classes
    P = inv.shape[1]
    positions = np.arange(P) if cfg.all_patches else np.arange(1)
    sub = inv[rows][:, positions]  # (N_l, P')
    idx = ((np.arange(len(positions))[None, :] * U + sub) * n_c + y[rows][:, None]).ravel()
    lab = np.bincount(idx, minlength=len(positions) * U * n_c).reshape(len(positions), U, n_c)
    prior = np.bincount(y[rows], minlength=n_c) / len(rows)
    feats = list(hellinger(lab, prior, cfg.prior))  # each (U, n_c)
    if not (cfg.context and P >= s):
        return feats
    # patch in slot a, sibling in slot b of the same parent patch (pooled over parent positions)
    g_inv = inv[rows].reshape(len(rows), P // s, s)
    g_sib = sib[rows].reshape(len(rows), P // s, s)
    pairs = [(a, b) for a in range(s) for b in range(s) if a != b]
    for a, b in pairs:
        ok = g_sib[:, :, b] >= 0
        cnt = np.bincount((g_inv[:, :, a] * K + g_sib[:, :, b])[ok], minlength=U * K).reshape(U, K).astype(float)
        feats.append(hellinger(cnt, cnt.sum(0) / max(cnt.sum(), 1), cfg.prior))
    if labelled:
        # the label given the patch *and* its sibling's symbol: the pair fixes the parent symbol, so the signal
        # is that of the level above (~m^(1/2) stronger than P(label | patch) alone), spread over K times more
        # cells; position-specific, like the label blocks
        for j in range(P // s):
            for a, b in pairs:
                ok = g_sib[:, j, b] >= 0
                idx = ((g_inv[:, j, a] * K + g_sib[:, j, b]) * n_c + y[rows])[ok]
                cnt = np.bincount(idx, minlength=U * K * n_c).reshape(U, K * n_c).astype(np.float64)
                feats.append(hellinger(cnt, cnt.sum(0) / max(cnt.sum(), 1), cfg.prior))
    return feats


def estimate_clusters(points: np.ndarray, max_clusters: int) -> int:
    """Number of clusters at the largest ratio gap of the single-linkage (MST) edge lengths."""
    n_pts, edges = mst_edges(points)
    if n_pts <= 2:
        return n_pts
    kmax = min(max_clusters - 1, len(edges) - 1)
    if kmax < 1:
        return 1
    ratios = edges[:kmax] / np.maximum(edges[1:kmax + 1], 1e-12)
    return int(np.argmax(ratios)) + 2


def n_clusters(F, U, n_symbols, v) -> int:
    """Symbols for the level: n_symbols ("v", "auto" or an int), at most the distinct rows of F (seen patches)."""
    if n_symbols == "v":
        k = v
    elif n_symbols == "auto":
        k = estimate_clusters(F, max_clusters=max(2, U // 2))
    else:
        k = int(n_symbols)
    distinct = len(np.unique(np.round(F, 9), axis=0))  # k-means cannot split (numerically) identical rows
    return max(1, min(k, distinct))


def cluster(F, weight, k, n_init, rng) -> np.ndarray:
    """Weighted k-means of the distinct patches' statistics; unseen (weight 0) rows get the nearest centre."""
    seen = weight > 0
    km = KMeans(n_clusters=k, n_init=n_init, random_state=int(rng.integers(2**31 - 1)))
    km.fit(F[seen], sample_weight=weight[seen])
    return km.predict(F)
