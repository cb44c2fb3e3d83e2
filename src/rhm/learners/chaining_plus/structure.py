"""The structure search: a level's patch -> symbol map polished by annealed Gibbs sampling on the likelihood of
its sibling groups (true synonyms explain the groups with the fewest distinct symbol tuples).

Vectorised over chains and over the candidate symbols of a patch; one step per (patch, sweep).
"""

from __future__ import annotations

import numpy as np
from scipy.special import xlogy

from ...patches import codes


def _xlogx(c: np.ndarray) -> np.ndarray:
    """sum over the last axis of c log c (0 log 0 = 0)."""
    return xlogy(c, c).sum(-1)


def is_sparse(inv, sym, k_next, U, k, s, n_classes, parent) -> bool:
    """Whether the structure search has a signal at this level: at most half of the possible tuples occur.

    Without parents: the level's U distinct patches among the k^s possible (m < v at the level below). At
    level 2 the groups' parents are the class labels and the tuples are modelled given the class, so what
    counts is the (class, symbol tuple) pairs under the initial map among the n_c k_next^s possible: sparse
    even for a dense grammar (m = v), where every tuple is some class's rule but each class has only m.
    """
    if parent is None:
        return U <= k**s / 2
    first = sym[inv].reshape(len(inv), -1, s)[:, 0]  # (n, s): level 2 has one group per sample
    code = parent.astype(np.int64) * k_next**s + codes(first, k_next)
    return len(np.unique(code)) <= n_classes * k_next**s / 2


class SiblingStructure:
    """Structure log-likelihood of a level's patch -> symbol map, for the `structure` search.

    The level's patches come in sibling groups of s (the children of one node two levels up, pooled over
    positions: the RHM's rules do not depend on position). Under the RHM a group's symbol tuple is one of the
    few rule right-hand sides of the level above, and each patch is a uniform synonym of its symbol, so a map
    that merges true synonyms explains the groups with few distinct symbol tuples. The score of a map sigma is
    the maximised log-likelihood of that two-part model (tuples i.i.d. multinomial over k^s, patch given its
    symbol multinomial), up to a constant:  sum_t N_t log N_t - sum_a N_a log N_a,  N_t the groups whose
    symbols spell t, N_a the patch occurrences mapped to symbol a. Where the groups' parents are known (at
    level 2 they are the class labels, `parent` (n,)), the tuples are modelled given their parent:
    N_t becomes N_(parent, t).
    """

    def __init__(self, inv: np.ndarray, s: int, k: int, U: int, parent: np.ndarray | None = None):
        n, P = inv.shape  # inv: distinct-patch id (< U) of every patch occurrence (n, P), P a multiple of s
        self.s, self.k, self.U = s, k, U
        rows = inv.reshape(n * (P // s), s)
        if parent is not None:  # one group per sample (P == s): prepend its parent as an extra column
            rows = np.concatenate([np.asarray(parent, dtype=np.int64).reshape(-1, 1), rows], 1)
        groups, self.weight = np.unique(rows, axis=0, return_counts=True)
        self.parent = groups[:, 0] if parent is not None else np.zeros(len(groups), dtype=np.int64)
        self.groups = groups[:, 1:] if parent is not None else groups  # (G, s) distinct sibling groups
        self.n_parents = int(self.parent.max()) + 1 if len(groups) else 1
        self.occ = np.bincount(inv.ravel(), minlength=self.U).astype(np.float64)

    def _codes(self, sig: np.ndarray) -> np.ndarray:
        """Tuple codes (B, G) of every group under maps sig (B, U): parent * k^s + symbols, first most significant."""
        code = np.broadcast_to(self.parent, (len(sig), len(self.groups))).astype(np.int64)
        for i in range(self.s):
            code = code * self.k + sig[:, self.groups[:, i]]
        return code

    def score(self, sig: np.ndarray) -> np.ndarray:
        """Scores (B,) of maps sig (B, U) (or one map (U,) -> shape (1,))."""
        sig = np.atleast_2d(sig)
        B, k = len(sig), self.k
        width = self.n_parents * k**self.s
        code = self._codes(sig) + np.arange(B)[:, None] * width
        tup = np.bincount(code.ravel(), weights=np.tile(self.weight, B), minlength=B * width).reshape(B, width)
        sym = np.bincount((sig + np.arange(B)[:, None] * k).ravel(), weights=np.tile(self.occ, B),
                          minlength=B * k).reshape(B, k)
        return _xlogx(tup) - _xlogx(sym)

    def search(self, sig0: np.ndarray, rng: np.random.Generator, chains: int = 32, sweeps: int = 6,
               t_hot: float = 3.0, t_cold: float = 0.05) -> np.ndarray:
        """Annealed Gibbs sampling over maps from sig0 (U,), `chains` chains in parallel; the best map seen.

        One step resamples one patch's symbol from softmax(score / T) over all k symbols; T decays geometrically
        from t_hot to t_cold (nats) over the sweeps. The k candidate scores are score differences computed from
        the groups that contain the patch only, so a step costs O(chains * k * #groups of the patch).
        """
        k, s, C = self.k, self.s, chains
        width = self.n_parents * k**s
        # (group, patch) incidences with the code weight of the patch's slots: code(g) changes by
        # (new - old) * mult when patch p changes symbol; sorted by patch to slice per patch
        g_idx = np.repeat(np.arange(len(self.groups)), s)
        mult = np.tile(k ** np.arange(s - 1, -1, -1), len(self.groups))
        key, inv = np.unique(self.groups.ravel() * len(self.groups) + g_idx, return_inverse=True)
        inc_mult = np.bincount(inv, weights=mult).astype(np.int64)
        inc_patch, inc_group = key // len(self.groups), key % len(self.groups)
        bounds = np.searchsorted(inc_patch, np.arange(self.U + 1))

        sig = np.tile(np.asarray(sig0, dtype=np.int64), (C, 1))
        code = self._codes(sig)  # (C, G)
        lin = np.arange(C)[:, None] * width
        table = np.bincount((code + lin).ravel(), weights=np.tile(self.weight, C), minlength=C * width)
        sym = np.bincount((sig + np.arange(C)[:, None] * k).ravel(), weights=np.tile(self.occ, C),
                          minlength=C * k).reshape(C, k)
        current = np.full(C, float(self.score(sig0)[0]))
        best_sig, best = sig[0].copy(), current[0]
        rows, cand = np.arange(C), np.arange(k)
        for sweep in range(sweeps):
            T = t_hot * (t_cold / t_hot) ** (sweep / max(sweeps - 1, 1))
            for p in rng.permutation(np.flatnonzero(self.occ > 0)):
                grp, mul = inc_group[bounds[p]:bounds[p + 1]], inc_mult[bounds[p]:bounds[p + 1]]
                w, old = self.weight[grp], code[:, grp]  # (a,), (C, a)
                new = old[:, None, :] + (cand[None, :, None] - sig[:, p, None, None]) * mul  # (C, k, a)
                # table cells touched by candidate (c, j): old codes lose w, new codes gain w
                cell = np.concatenate([np.broadcast_to(old[:, None, :], new.shape), new], 2) + lin[:, :, None]
                delta = np.concatenate([np.broadcast_to(-w, new.shape), np.broadcast_to(w, new.shape)], 2)
                pair = np.broadcast_to((rows[:, None] * k + cand)[:, :, None], cell.shape)
                ukey, uinv = np.unique(pair.ravel().astype(np.int64) * (C * width) + cell.ravel(),
                                       return_inverse=True)
                dsum = np.bincount(uinv, weights=delta.ravel())
                ucell, upair = ukey % (C * width), ukey // (C * width)
                before = table[ucell]
                gain = np.bincount(upair, weights=xlogy(before + dsum, before + dsum) - xlogy(before, before),
                                   minlength=C * k).reshape(C, k)
                o, a = self.occ[p], sig[:, p]
                n_old = sym[rows, a]
                sym_gain = xlogy(sym + o, sym + o) - xlogy(sym, sym) + (xlogy(n_old - o, n_old - o)
                                                                       - xlogy(n_old, n_old))[:, None]
                sym_gain[rows, a] = 0.0
                score = current[:, None] + gain - sym_gain  # (C, k)
                prob = np.exp((score - score.max(1, keepdims=True)) / T)
                pick = (prob.cumsum(1) > rng.random((C, 1)) * prob.sum(1, keepdims=True)).argmax(1)
                moved = pick != a
                if moved.any():
                    ch = rows[moved]
                    chosen = new[ch, pick[moved]]  # (moved, a)
                    np.add.at(table, (old[ch] + lin[ch]).ravel(), -np.tile(w, len(ch)))
                    np.add.at(table, (chosen + lin[ch]).ravel(), np.tile(w, len(ch)))
                    code[np.ix_(ch, grp)] = chosen
                    sym[ch, a[moved]] -= o
                    sym[ch, pick[moved]] += o
                    sig[ch, p] = pick[moved]
                    current[ch] = score[ch, pick[moved]]
                if current.max() > best + 1e-9:
                    best, best_sig = float(current.max()), sig[current.argmax()].copy()
        return best_sig
