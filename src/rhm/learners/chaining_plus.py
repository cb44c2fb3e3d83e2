"""chaining+: the paper's layerwise scheme without its waste (issue "beyond the paper").

Like the paper's learner, it works bottom-up, one level at a time, and represents every level-l patch by
statistics that are **equal for synonyms** (so synonyms can be identified up to relabelling, the paper's
"weak identifiability"). Every change to the paper is a switch, so its effect can be measured:

- ``quantize`` (Construction 2 of the paper): the patch statistics are clustered into symbols, so the next level
  starts from exact one-hot tokens. With exact tokens the random features, their bandwidth sigma and their width
  are no longer needed, and the ridge becomes a Dirichlet prior on label histograms. Off: every distinct patch is
  its own symbol (no synonym pooling), which shows what the clustering buys.
- sufficient statistics (always on, it is the representation): a stage costs O(#distinct patches), counts and
  histograms are aggregated once per distinct patch.
- ``all_patches``: label statistics P(label | patch at position k = mu) for **every** position k of the level
  (position-specific: q depends on the position, each position has its own block), not only the first.
- ``reuse``: every stage uses all samples (off: the paper's disjoint stage sets with N^(l) ∝ m^l).
- ``context``: also the distribution of the sibling patch (the other patches under the same level-(l-1) parent
  patch), which is equal for synonyms too (the parent pair is drawn by an upper rule, then each child picks a
  uniform synonym) and carries an O(1) signal, where the label signal is only ~m^(-l/2).
- ``refine``: top-down refinement sweeps after the bottom-up pass (the "backward feature correction"
  direction of the paper's discussion): level by level from the top down, every distinct patch is reassigned to
  the symbol that maximises the training-label likelihood of the samples containing it, the rest of the
  network held fixed (hard EM / coordinate ascent; the upper layers correct the lower layers' clustering).
- ``context_passes``: extra bottom-up passes in which the context of a patch is re-measured with the sibling
  replaced by its symbol from the previous pass, which pools the sibling's synonyms and removes most of the
  noise.

Statistics are compared in the Hellinger embedding (sqrt of Dirichlet-smoothed conditional distributions;
its sampling noise has variance ~1/(4 n) whatever the probabilities) and clustered with weighted k-means
(scikit-learn) into ``n_symbols`` symbols: the vocabulary size v by default, or a number estimated from the
data ("auto": the largest gap of the single-linkage tree).
"""

from __future__ import annotations

import numbers
import time

import numpy as np
from scipy.sparse.csgraph import minimum_spanning_tree
from sklearn.cluster import KMeans

from . import register
from .base import Learner, check_seed, distinct_patches, fresh_stage_sizes


def patch_ids(patches: np.ndarray, k: int):
    """Distinct rows of integer patches (..., s) over an alphabet of size k: (codes (U,), inverse (...))."""
    s = patches.shape[-1]
    flat = patches.reshape(-1, s)
    if k**s < 2**62:
        code = np.zeros(len(flat), dtype=np.int64)
        for i in range(s):
            code = code * k + flat[:, i]
        uniq, inv = np.unique(code, return_inverse=True)
    else:  # alphabet too large for an int64 code: compare rows
        uniq, inv = np.unique(flat, axis=0, return_inverse=True)
    return uniq, inv.reshape(patches.shape[:-1])


def _codes(patches: np.ndarray, k: int) -> np.ndarray:
    code = np.zeros(patches.shape[:-1], dtype=np.int64)
    for i in range(patches.shape[-1]):
        code = code * k + patches[..., i]
    return code


def _hellinger(counts: np.ndarray, prior: np.ndarray, alpha: float) -> np.ndarray:
    """sqrt of Dirichlet-smoothed conditionals: rows of `counts` (..., K) shrunk toward `prior` (K,)."""
    n = counts.sum(-1, keepdims=True)
    return np.sqrt((counts + alpha * prior) / (n + alpha))


def estimate_clusters(points: np.ndarray, max_clusters: int) -> int:
    """Number of clusters at the largest ratio gap of the single-linkage (MST) edge lengths."""
    pts = np.unique(np.round(points, 9), axis=0)
    if len(pts) <= 2:
        return len(pts)
    dist = np.sqrt(np.maximum(((pts[:, None] - pts[None]) ** 2).sum(-1), 0))
    edges = np.sort(minimum_spanning_tree(dist).data)[::-1]
    kmax = min(max_clusters - 1, len(edges) - 1)
    if kmax < 1:
        return 1
    ratios = edges[:kmax] / np.maximum(edges[1:kmax + 1], 1e-12)
    return int(np.argmax(ratios)) + 2


@register
class ChainingPlus(Learner):
    """Layerwise, bottom-up learner with quantised synonym-invariant patch statistics (see module docstring).

    Parameters
    ----------
    s: branching factor (None: the grammar's, from fit(..., grammar=g)).
    n_symbols: symbols per level after clustering: "v" (the vocabulary size, known from the input alphabet),
        "auto" (estimated from the data), or an int.
    quantize, all_patches, reuse, context: the switches of the module docstring.
    context_passes: extra bottom-up passes with the sibling context measured on the previous pass's symbols.
    refine: maximum top-down refinement sweeps (backward feature correction); stops early at a fixed point.
    restarts: independent fits (k-means seeds); the one with the highest training log-likelihood is kept.
    prior: Dirichlet prior strength (pseudo-counts) of every conditional distribution, i.e. the ridge.
    n_init: k-means restarts.
    seed: seed of k-means and of the fresh split.
    """

    name = "chaining+"

    def __init__(self, s=None, n_symbols="v", quantize=True, all_patches=True, reuse=True, context=True,
                 context_passes=1, refine=20, restarts=10, prior=2.0, n_init=10, seed=0):
        self.s = s
        self.n_symbols = n_symbols
        self.quantize = quantize
        self.all_patches = all_patches
        self.reuse = reuse
        self.context = context
        self.context_passes = context_passes
        self.refine = refine
        self.restarts = restarts
        self.prior = prior
        self.n_init = n_init
        self.seed = seed

    def _validate_params(self):
        for name in ("quantize", "all_patches", "reuse", "context"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} must be True or False")
        ns = self.n_symbols
        if ns not in ("v", "auto") and (isinstance(ns, bool) or not isinstance(ns, numbers.Integral) or ns < 2):
            raise ValueError(f"n_symbols={ns!r} must be 'v', 'auto' or an integer >= 2")
        for name in ("context_passes", "refine"):
            val = getattr(self, name)
            if isinstance(val, bool) or not isinstance(val, numbers.Integral) or val < 0:
                raise ValueError(f"{name}={val!r} must be a non-negative integer")
        if isinstance(self.prior, bool) or not isinstance(self.prior, numbers.Real) or not self.prior > 0:
            raise ValueError(f"prior={self.prior!r} must be a positive number")
        for name in ("n_init", "restarts"):
            val = getattr(self, name)
            if isinstance(val, bool) or not isinstance(val, numbers.Integral) or val < 1:
                raise ValueError(f"{name}={val!r} must be a positive integer")
        check_seed(self.seed)

    # -------------------------------------------------------------------------------------------- fit
    def _fit(self, x, y):
        self._validate_params()
        t0 = time.perf_counter()
        s, L = self._tree_shape(self.s, x.shape[1])
        self.s_, self.L_ = s, L
        rng = np.random.default_rng(self.seed)
        n = len(x)
        # stage sets: all samples, or the paper's disjoint split with N^(l) ∝ m^l (m estimated from the data)
        if self.reuse or L == 1:
            self.stage_rows_ = {lv: np.arange(n) for lv in range(1, L + 1)}
        else:
            _, m_hat = distinct_patches(x, s, self.v_)
            sizes = fresh_stage_sizes(n, m_hat, L, "reuse=False")
            perm = rng.permutation(n)
            bounds = np.cumsum([0] + [sizes[lv] for lv in range(L, 0, -1)])  # stage L first
            self.stage_rows_ = {L - i: perm[bounds[i]:bounds[i + 1]] for i in range(L)}
        self.label_prior_ = np.bincount(y, minlength=self.n_classes_) / n

        best = None
        for restart in range(self.restarts):
            prev = None
            for _ in range(1 + (self.context_passes if self.context else 0)):
                tokens = self._bottom_up(x, y, prev, rng)
                prev = tokens
            self._fit_top(tokens[1], y)
            sweeps = 0
            for sweeps in range(1, (self.refine if self.quantize else 0) + 1):
                before = [m.copy() for m in self.maps_.values()]
                for level in range(2, L + 1):  # top-down
                    self._refine_level(level, x, y)
                if all(len(a) == len(b) and (a == b).all() for a, b in zip(before, self.maps_.values())):
                    break  # converged: no patch changed its symbol
            loglik = float(self._top_logprob(self._symbols(x)[1], y).sum())
            state = (loglik, restart, sweeps, dict(self.codes_), dict(self.maps_), dict(self.vocab_),
                     self.top_label_, self.top_logp_, self.nb_log_)
            if best is None or loglik > best[0]:
                best = state
        (loglik, restart, sweeps, self.codes_, self.maps_, self.vocab_, self.top_label_, self.top_logp_,
         self.nb_log_) = best
        self.info_.update({"train_loglik": loglik, "chosen_restart": restart, "refine_sweeps": sweeps})
        self.info_.update({
            "symbols_per_level": {str(lv): int(self.vocab_[lv - 1]) for lv in range(L, 1, -1)},
            "distinct_patches": {str(lv): int(len(self.codes_[lv])) for lv in range(L, 0, -1)},
            "stage_samples": {str(lv): int(len(self.stage_rows_[lv])) for lv in range(L, 0, -1)},
            "fit_seconds": time.perf_counter() - t0})
        if self.grammar_ is not None:
            self.info_["synonym_purity"] = self._purity(self.grammar_)

    def _bottom_up(self, x, y, prev, rng):
        """One bottom-up pass; returns tokens[l] (n, s^l) for l = L..1 (symbols of the training data).

        `prev` holds the previous pass's tokens (for the refined sibling context), or None.
        """
        s, L, n_c = self.s_, self.L_, self.n_classes_
        self.codes_, self.maps_, self.vocab_ = {}, {}, {L: self.v_}
        tokens = {L: x.astype(np.int64)}
        for level in range(L, 1, -1):
            T, k = tokens[level], self.vocab_[level]
            n, width = T.shape
            P = width // s  # patches at this level = tokens at level-1
            patches = T.reshape(n, P, s)
            uniq, inv = patch_ids(patches, k)  # inv (n, P)
            U = len(uniq)
            rows = self.stage_rows_[level]
            feats = []
            # label statistics, one block per position (position-specific q), or the first position only
            positions = np.arange(P) if self.all_patches else np.arange(1)
            sub = inv[rows][:, positions]  # (N_l, P')
            idx = ((np.arange(len(positions))[None, :] * U + sub) * n_c + y[rows][:, None]).ravel()
            lab = np.bincount(idx, minlength=len(positions) * U * n_c).reshape(len(positions), U, n_c)
            prior = np.bincount(y[rows], minlength=n_c) / len(rows)
            feats.extend(_hellinger(lab, prior, self.prior))  # each (U, n_c)
            if self.context and P >= s:
                # sibling statistics: patch in slot a, sibling in slot b of the same parent patch (pooled over
                # parent positions); the sibling is its raw patch id, or its symbol from the previous pass
                sib = inv if prev is None else prev[level - 1]
                K = U if prev is None else self.vocab_prev_[level - 1]
                g_inv = inv[rows].reshape(len(rows), P // s, s)
                g_sib = sib[rows].reshape(len(rows), P // s, s)
                for a in range(s):
                    for b in range(s):
                        if a == b:
                            continue
                        pair = (g_inv[:, :, a] * K + g_sib[:, :, b]).ravel()
                        cnt = np.bincount(pair, minlength=U * K).reshape(U, K).astype(np.float64)
                        marg = cnt.sum(0) / max(cnt.sum(), 1)
                        feats.append(_hellinger(cnt, marg, self.prior))
            F = np.concatenate(feats, axis=1)  # (U, features)
            weight = np.bincount(inv[rows].ravel(), minlength=U).astype(np.float64)
            if self.quantize:
                k_next = self._n_clusters(F[weight > 0], U)
                sym = self._cluster(F, weight, k_next, rng)
            else:
                sym, k_next = np.arange(U), U
            self.codes_[level], self.maps_[level], self.vocab_[level - 1] = uniq, sym, k_next
            tokens[level - 1] = sym[inv]
        self.vocab_prev_ = dict(self.vocab_)
        return tokens

    def _n_clusters(self, F, U):
        if self.n_symbols == "v":
            k = self.v_
        elif self.n_symbols == "auto":
            k = estimate_clusters(F, max_clusters=max(2, U // 2))
        else:
            k = int(self.n_symbols)
        return max(1, min(k, len(F)))

    def _cluster(self, F, weight, k, rng):
        """Weighted k-means of the distinct patches' statistics; unseen (weight 0) rows get the nearest centre."""
        seen = weight > 0
        km = KMeans(n_clusters=k, n_init=self.n_init, random_state=int(rng.integers(2**31 - 1)))
        km.fit(F[seen], sample_weight=weight[seen])
        return km.predict(F)

    def _fit_top(self, T, y):
        """Level 1: the label of each distinct top patch (majority), with naive Bayes for unseen patches."""
        n_c, k = self.n_classes_, self.vocab_[1]
        rows = self.stage_rows_[1]
        uniq, inv = patch_ids(T[rows].reshape(len(rows), 1, self.s_), k)
        inv = inv[:, 0]
        hist = np.zeros((len(uniq), n_c))
        np.add.at(hist, (inv, y[rows]), 1.0)
        self.codes_[1], self.top_label_ = uniq, hist.argmax(1)
        self.top_logp_ = np.log((hist + self.prior * self.label_prior_) / (hist.sum(1, keepdims=True) + self.prior))
        # naive Bayes: log P(label) + sum_slot log P(symbol at slot | label), Dirichlet-smoothed
        slot = np.zeros((self.s_, k, n_c))
        for a in range(self.s_):
            np.add.at(slot[a], (T[rows][:, a], y[rows]), 1.0)
        self.nb_log_ = np.log((slot + 1.0) / (slot.sum(1, keepdims=True) + k))
        self.nb_prior_ = np.log(self.label_prior_ + 1e-12)

    # ------------------------------------------------------------------------------------------ refine
    def _lookup(self, level: int, patches: np.ndarray) -> np.ndarray:
        """Symbols (...) of level-`level` patches (..., s) under the current map; -1 if unknown/unseen."""
        k, uniq = self.vocab_[level], self.codes_[level]
        unknown = (patches < 0).any(-1)
        code = _codes(np.maximum(patches, 0), k)
        pos = np.clip(np.searchsorted(uniq, code), 0, max(len(uniq) - 1, 0))
        found = (uniq[pos] == code) & ~unknown if len(uniq) else np.zeros(code.shape, bool)
        return np.where(found, self.maps_[level][pos] if len(uniq) else -1, -1)

    def _top_logprob(self, top: np.ndarray, y: np.ndarray) -> np.ndarray:
        """log P(y | level-1 symbols `top` (n, s)): smoothed table when the patch was seen, else naive Bayes."""
        found, pos, score = self._top_scores(top)
        score = score - score.max(1, keepdims=True)
        nb = score - np.log(np.exp(score).sum(1, keepdims=True))
        logp = np.where(found[:, None], self.top_logp_[pos], nb)
        return logp[np.arange(len(y)), y]

    def _top_scores(self, top: np.ndarray):
        """For level-1 symbols `top` (n, s): whether the patch was seen in training, its row in the table, and
        the naive-Bayes log scores (n, n_classes) used for unseen patches."""
        k, uniq = self.vocab_[1], self.codes_[1]
        unknown = (top < 0).any(1)
        code = _codes(np.maximum(top, 0), k)
        pos = np.clip(np.searchsorted(uniq, code), 0, len(uniq) - 1)
        found = (uniq[pos] == code) & ~unknown
        score = np.tile(self.nb_prior_, (len(top), 1))
        for a in range(self.s_):
            ok = top[:, a] >= 0
            score[ok] += self.nb_log_[a][top[ok, a]]
        return found, pos, score

    def _refine_level(self, level: int, x: np.ndarray, y: np.ndarray):
        """Reassign every distinct level-`level` patch to the symbol maximising the training log-likelihood.

        For each occurrence (sample i, patch position p) and candidate symbol c, the level-(l-1) token at p is
        set to c and propagated up through the current maps to the top model; scores are summed per patch.
        """
        s, n = self.s_, len(x)
        sym = self._symbols(x)
        T = sym[level]
        patches = T.reshape(n, -1, s)
        valid = (patches >= 0).all(-1)
        code = _codes(np.maximum(patches, 0), self.vocab_[level])
        uniq, inv = np.unique(code[valid], return_inverse=True)
        occ_i, occ_p = np.nonzero(valid)
        current = self._lookup(level, patches[occ_i, occ_p])
        scores = np.zeros((len(uniq), self.vocab_[level - 1]))
        for c in range(self.vocab_[level - 1]):
            tok, pos = np.full(len(occ_i), c), occ_p
            for up in range(level - 1, 1, -1):  # level-`up` token at `pos` -> level-(up-1) token at pos // s
                group = sym[up][occ_i[:, None], (pos // s * s)[:, None] + np.arange(s)]
                group[np.arange(len(occ_i)), pos % s] = tok
                tok, pos = self._lookup(up, group), pos // s
            top = sym[1][occ_i].copy()
            top[np.arange(len(occ_i)), pos] = tok
            scores[:, c] = np.bincount(inv, weights=self._top_logprob(top, y[occ_i]), minlength=len(uniq))
        keep = current >= 0  # ties keep the current symbol
        scores[inv[keep], current[keep]] += 1e-9
        self.codes_[level], self.maps_[level] = uniq, scores.argmax(1)
        self._fit_top(self._symbols(x)[1], y)

    # ---------------------------------------------------------------------------------------- predict
    def _symbols(self, x) -> dict:
        """Symbols of every level for inputs x; -1 marks patches never seen in training."""
        s = self.s_
        T = x.astype(np.int64)
        out = {self.L_: T}
        for level in range(self.L_, 1, -1):
            k = self.vocab_[level]
            patches = T.reshape(len(T), -1, s)
            unknown = (patches < 0).any(-1)
            code = _codes(np.maximum(patches, 0), k) if k**s < 2**62 else None
            if code is None:  # pragma: no cover - huge alphabets
                raise ValueError("alphabet too large for prediction codes")
            uniq = self.codes_[level]
            pos = np.clip(np.searchsorted(uniq, code), 0, len(uniq) - 1)
            found = (uniq[pos] == code) & ~unknown
            T = np.where(found, self.maps_[level][pos], -1)
            out[level - 1] = T
        return out

    def _predict(self, x):
        found, pos, score = self._top_scores(self._symbols(x)[1])  # level-1 symbols (n, s)
        return np.where(found, self.top_label_[pos], score.argmax(1))

    def _purity(self, g) -> dict:
        """Oracle diagnostic at the bottom level: the fraction of distinct input patches that sit in a cluster
        whose patches all share one true parent (1.0 = the clusters are exactly unions of synonym classes)."""
        from .. import oracle

        L, uniq = self.L_, self.codes_[self.L_]
        digits = uniq if uniq.ndim == 2 else np.stack([(uniq // g.v ** (g.s - 1 - i)) % g.v for i in range(g.s)], 1)
        parents = oracle._inverses(g)[L - 1](digits)
        ok = parents >= 0
        sym, par = self.maps_[L][ok], parents[ok]
        pairs = np.unique(np.stack([sym, par], 1), axis=0)  # distinct (cluster, parent) pairs
        clusters, n_parents = np.unique(pairs[:, 0], return_counts=True)
        pure = np.isin(sym, clusters[n_parents == 1])
        return {str(L): float(pure.sum() / max(ok.sum(), 1))}

    def hidden(self, x) -> list[np.ndarray]:
        """One-hot symbols of every level, bottom first (layer k: (n, s^(L-k) * vocab)), for sensitivity."""
        x = self._check_xy(x, fitting=False)
        sym = self._symbols(x)
        out = []
        for level in range(self.L_ - 1, 0, -1):
            T, k = sym[level], self.vocab_[level]
            oh = np.zeros((len(T), T.shape[1], k + 1))
            np.put_along_axis(oh, np.where(T < 0, k, T)[..., None], 1.0, axis=2)
            out.append(oh.reshape(len(T), -1))
        return out
