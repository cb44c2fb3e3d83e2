"""The structure search: a level's patch -> symbol map polished by annealed Gibbs sampling on the likelihood of
its sibling groups (true synonyms explain the groups with the fewest distinct symbol tuples).

Vectorised over chains, over the patches of a block and over their candidate symbols: a sweep is `blocks` steps.
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
    N_t becomes N_(parent, t). On a dense level (m = v: every tuple is a rule, their counts carry nothing) the
    parent of a group can be (class, group position): the tuple given it is sparse again (the level-1 symbol at
    that position is one of the class's rules' slots).
    """

    def __init__(self, inv: np.ndarray, s: int, k: int, U: int, parent: np.ndarray | None = None):
        n, P = inv.shape  # inv: distinct-patch id (< U) of every patch occurrence (n, P), P a multiple of s
        self.s, self.k, self.U = s, k, U
        rows = inv.reshape(n * (P // s), s)
        if parent is not None:  # one parent per group (n * P // s,): prepend it as an extra column
            rows = np.concatenate([np.asarray(parent, dtype=np.int64).reshape(-1, 1), rows], 1)
        groups, self.weight = np.unique(rows, axis=0, return_counts=True)
        self.parent = groups[:, 0] if parent is not None else np.zeros(len(groups), dtype=np.int64)
        self.groups = groups[:, 1:] if parent is not None else groups  # (G, s) distinct sibling groups
        self.n_parents = int(self.parent.max()) + 1 if len(groups) else 1
        self.occ = np.bincount(inv.ravel(), minlength=self.U).astype(np.float64)

    def _codes(self, sig: np.ndarray) -> np.ndarray:
        """Tuple codes (B, G) of every group under maps sig (B, U): parent * k^s + the symbols' patch code."""
        return self.parent * self.k**self.s + codes(sig[:, self.groups], self.k)

    def score(self, sig: np.ndarray) -> np.ndarray:
        """Scores (B,) of maps sig (B, U) (or one map (U,) -> shape (1,))."""
        _, table, sym = self._state(np.atleast_2d(sig))
        return _objective(table, sym)

    def _incidences(self):
        """(patch, group, code weight) of every (group, patch) incidence, sorted by patch: code(g) changes by
        (new - old) * weight when the patch changes symbol (a patch in several slots of g: summed weights)."""
        G, s, k = len(self.groups), self.s, self.k
        g_idx = np.repeat(np.arange(G), s)
        mult = np.tile(k ** np.arange(s - 1, -1, -1), G)
        key, inv = np.unique(self.groups.ravel() * G + g_idx, return_inverse=True)
        return key // G, key % G, np.bincount(inv, weights=mult).astype(np.int64)

    def _state(self, sig):
        """Codes (C, G), tuple table (C * width,) and symbol counts (C, k) of maps sig (C, U)."""
        C, width = len(sig), self.n_parents * self.k**self.s
        code = self._codes(sig)
        table = np.bincount((code + np.arange(C)[:, None] * width).ravel(), weights=np.tile(self.weight, C),
                            minlength=C * width)
        return code, table, self._symbol_counts(sig)

    def _symbol_counts(self, sig):
        """Patch occurrences per symbol (C, k) under maps sig (C, U)."""
        C, k = len(sig), self.k
        return np.bincount((sig + np.arange(C)[:, None] * k).ravel(), weights=np.tile(self.occ, C),
                           minlength=C * k).reshape(C, k)

    def search(self, sig0: np.ndarray, rng: np.random.Generator, chains: int = 32, sweeps: int = 6,
               blocks: int | None = 4, t_hot: float = 3.0, t_cold: float = 0.05) -> np.ndarray:
        """Annealed Gibbs sampling over maps from sig0 (U,), `chains` chains at once; the best map seen.

        A sweep visits the seen patches in random order, split into `blocks` blocks (None: one patch per block,
        plain Gibbs); one step resamples every patch of a block at once, each from softmax(score / T) over all k
        symbols given the others' current symbols. With several patches per block, patches that share groups
        or symbols move on slightly stale counts (a parallel, approximate Gibbs step); the exact score of every
        visited map is what is kept. T decays geometrically from t_hot to t_cold (nats) over the sweeps. The
        candidate scores of a patch are score differences over the groups that contain it, so a step costs
        O(chains * k * #incidences of its block) (one sort of those entries).
        """
        k, C = self.k, chains
        width = self.n_parents * k**self.s
        inc_patch, inc_group, inc_mult = self._incidences()
        sig = np.tile(np.asarray(sig0, dtype=np.int64), (C, 1))
        code, table, sym = self._state(sig)
        current = _objective(table, sym)
        best_sig, best = sig[0].copy(), current[0]
        active = np.flatnonzero(self.occ > 0)
        n_blocks = len(active) if blocks is None else max(1, min(blocks, len(active)))
        rows, cand, slot = np.arange(C), np.arange(k), np.full(self.U, -1)
        for sweep in range(sweeps):
            T = t_hot * (t_cold / t_hot) ** (sweep / max(sweeps - 1, 1))
            for block in np.array_split(rng.permutation(active), n_blocks):
                B = len(block)
                slot[block] = np.arange(B)
                sel = np.flatnonzero(slot[inc_patch] >= 0)
                slot_i, grp, mul = slot[inc_patch[sel]], inc_group[sel], inc_mult[sel]
                slot[block] = -1
                w, old = self.weight[grp], code[:, grp]  # (a,), (C, a)
                a_i = sig[:, block][:, slot_i]  # (C, a): current symbol of each incidence's patch
                new = old[:, None, :] + (cand[None, :, None] - a_i[:, None, :]) * mul  # (C, k, a)
                # a move = remove the patch (table R = table - its groups' counts), then add it back with symbol j:
                # the gain of j is the sum over its new cells of xlogx(R + added) - xlogx(R); several groups of a
                # patch can share a cell, so the entries are summed per (chain, patch, j, cell)
                cb = rows[:, None] * B + slot_i  # (C, a): (chain, patch of the block)
                pair = cb[:, None, :] * k + cand[None, :, None]  # (C, k, a)
                ukey, uinv = np.unique((pair * width + new).ravel(), return_inverse=True)
                added = np.bincount(uinv, weights=np.broadcast_to(w, new.shape).ravel())
                upair, ucell = ukey // width, ukey % width
                c_of = upair // (B * k)
                rest = table[c_of * width + ucell] - _lookup(cb * width + old, w, (upair // k) * width + ucell)
                after = rest + added
                gain = np.bincount(upair, weights=xlogy(after, after) - xlogy(rest, rest),
                                   minlength=C * B * k).reshape(C, B, k)
                o, a = self.occ[block], sig[:, block]  # (B,), (C, B)
                n_old = np.take_along_axis(sym, a, 1)
                grow = sym[:, None, :] + o[:, None]
                sym_gain = (xlogy(grow, grow) - xlogy(sym, sym)[:, None]
                            + (xlogy(n_old - o, n_old - o) - xlogy(n_old, n_old))[:, :, None])
                np.put_along_axis(sym_gain, a[:, :, None], 0.0, 2)
                score = gain - sym_gain  # (C, B, k), relative to the current map
                prob = np.exp((score - score.max(2, keepdims=True)) / T)
                pick = (prob.cumsum(2) > rng.random((C, B, 1)) * prob.sum(2, keepdims=True)).argmax(2)
                code, table = self._move(code, table, grp, mul, pick[:, slot_i] - a_i)
                sig[:, block] = pick
                sym = self._symbol_counts(sig)
                current = _objective(table, sym)
                if current.max() > best + 1e-9:
                    best, best_sig = float(current.max()), sig[current.argmax()].copy()
        return best_sig

    def _move(self, code, table, grp, mul, step):
        """Codes and table after the incidences (grp, mul) changed symbol by step (C, a) (a group can occur in
        several incidences when several of its patches move)."""
        C, G = code.shape
        width = len(table) // C
        touched = np.unique(grp)
        delta = np.bincount((np.arange(C)[:, None] * G + grp).ravel(), weights=(step * mul).ravel(),
                            minlength=C * G).reshape(C, G)[:, touched].astype(np.int64)
        lin, w = np.arange(C)[:, None] * width, np.tile(self.weight[touched], C)
        table = (table - np.bincount((code[:, touched] + lin).ravel(), weights=w, minlength=C * width)
                 + np.bincount((code[:, touched] + delta + lin).ravel(), weights=w, minlength=C * width))
        code[:, touched] += delta
        return code, table


def _objective(table: np.ndarray, sym: np.ndarray) -> np.ndarray:
    """Scores (C,) from the tuple tables (C * width,) and symbol counts (C, k) of C maps (see SiblingStructure)."""
    return _xlogx(table.reshape(len(sym), -1)) - _xlogx(sym)


def _lookup(keys: np.ndarray, weights: np.ndarray, query: np.ndarray) -> np.ndarray:
    """The summed weights (broadcast to keys) of the entries with each query key (0 where none)."""
    uniq, inv = np.unique(keys.ravel(), return_inverse=True)
    total = np.bincount(inv, weights=np.broadcast_to(weights, keys.shape).ravel())
    pos = np.minimum(np.searchsorted(uniq, query), len(uniq) - 1)
    return np.where(uniq[pos] == query, total[pos], 0.0)
