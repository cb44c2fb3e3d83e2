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
- ``label_context``: in the context passes, also P(sibling's symbol, label | patch in slot a of parent j) for
  every parent position j: the pair fixes the parent symbol, so these blocks carry the label signal of the
  level above, spread over k times more cells. It is what a dense grammar needs, where the siblings are
  independent and P(label | patch) alone is near noise: at v = m = 8, L = 3 the true maps score 1,700-3,000
  nats (joint likelihood) above the failed fits at P = 1800, but only ~7% of the restarts reached them; with
  these blocks 48% do, and the mean test error at P = 1700 (grammar seeds 0-2, 9 runs) goes from 0.157 to 0.
- ``upper_restarts``: after restarts that did not confirm their best (a best reached `confirm` times is taken
  as the optimum and left alone, which keeps easy fits cheap), the levels above the bottom are re-fitted from
  the best restart's bottom symbols and kept where the score rises: a right bottom map under a wrong level 2
  is the other failure of dense grammars (v = m = 8, L = 3, P = 1500: mean error 0.195 -> 0.142; the engine's
  P = 1880 seed-0 draw 0.217 -> 0).
- ``remeasure``: then (same condition), round after round, the context statistics (sibling symbols, with the
  label) are re-measured on the best fit's refined symbols and the whole fit is redone from them, kept where
  the score rises, until a fixed point: an outer EM loop over the statistics. Near the threshold of a dense grammar the
  restarts' k-means symbols are mostly wrong but the refined ones much less, so each round starts cleaner:
  v = m = 8, L = 3 on the engine's draws (6 seeds) at P = 1448: mean error 0.215 -> 0, at P = 1600: 0.292 -> 0.
- ``denoise``: every block of statistics (the label block of one position, the context block of one slot
  pair) is shrunk toward its mean by its reliability r = signal / (signal + noise), a Wiener filter per block,
  with r estimated from the correlation of the block computed on two random halves of the samples (split-half,
  Spearman-Brown corrected). Blocks without signal stop adding noise to the k-means distances: in a dense
  grammar (m = v) the siblings are independent and the context blocks are pure noise. Before label_context,
  upper_restarts and remeasure existed, at v = m = 8, L = 3 (grammar seed 0, six draws) it took the mean test
  error from 0.333 to 0.191 at P = 1722 and from 0.108 to 0.057 at P = 2048 (over grammar seeds 0-2 at
  P = 2048 it changed nothing); with them it changes nothing there (benchmarks/chaining_plus_fixed_p.py).
- ``structure``: on sparse levels (at most half of the k^s possible patches observed, e.g. m < v; at level 2,
  where the tuples are modelled given the class, at most half of the (class, tuple) pairs, which holds for
  every grammar with m <= k^s / 2, dense ones included), the k-means map is polished by an annealed Gibbs
  search on the structure log-likelihood of the level (SiblingStructure: true synonyms explain the sibling
  groups with the fewest distinct symbol tuples). This is where small m gets its samples back: at v = 8, m = 2,
  L = 3, P = 54 the bottom clusters go from 0.5-0.75 to ~1.0 synonym purity; at level 2 of v = m = 5, L = 2,
  P = 110 the mean test error goes from 0.12 to 0.016. Runs in the last bottom-up pass only.
- ``generative``: after the discriminative pass, EM on the RHM as a probabilistic grammar on its fixed tree
  (inside-outside, rule tables per level started from the hard-decoded counts, Dirichlet prior `prior`), and
  prediction by the exact posterior P(class | x) of the fitted grammar, which sums over every latent symbol
  instead of committing to one per patch and scores unseen patch combinations through their parts.
- ``exclusive``: the prediction tables of the generative grammar use the RHM's rule structure: every symbol has
  exactly m rules and no tuple is a rule of two symbols (m estimated as the distinct input patches per bottom
  symbol, rounded up). A tuple never seen in training is a rule that was missed, so it gets the missing-rule
  mass (m - r)/m of a symbol with r rules seen, shared over the tuples no symbol has claimed; tuples claimed by
  another symbol keep only a small floor (1% of the Dirichlet prior). The plain Dirichlet tables give their
  pseudo-counts to every cell, so the unseen top rule of a class went to the class with the *most* training
  samples; at v = 8, m = 2, L = 3, P = 54 every such input was misclassified.

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
from scipy.special import xlogy
from sklearn.cluster import KMeans

from ..validation import check_bool, check_float, check_int
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


def _compare(score: float, best: float) -> int:
    """1 if score beats best, 0 if it ties (relative tolerance 1e-9), -1 if below."""
    tol = 1e-9 * abs(best)
    return 1 if score > best + tol else 0 if score >= best - tol else -1


def _xlogx(c: np.ndarray) -> np.ndarray:
    """sum over the last axis of c log c (0 log 0 = 0)."""
    return xlogy(c, c).sum(-1)


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
    label_context: in those passes, also the label jointly with the sibling's symbol, per parent position.
    denoise: shrink every block of statistics by its split-half reliability before clustering.
    refine: maximum top-down refinement sweeps (backward feature correction); stops early at a fixed point.
    structure: structure search on sparse levels (module docstring).
    generative: EM on the grammar's rule tables and prediction by its posterior (needs quantize).
    exclusive: prediction tables with the RHM's rule structure (m rules per symbol, no shared tuple).
    em_iters: maximum EM iterations (stops when the MAP objective gains < 1e-6 relative).
    restarts: maximum independent fits (k-means seeds). Kept: with `generative`, the one whose hard-decoded
        grammar gives the training set the highest joint likelihood log P(x, y) (the structure search can overfit
        a level's sibling groups; the label likelihood alone then still prefers the overfit map, the joint one
        does not; and with `structure`, odd restarts search level 2 only, so that a map the search overfit on
        a lower level has a competitor); otherwise the highest training label likelihood.
    upper_restarts: after restarts that did not confirm their best (L >= 3), at most this many re-fits of the
        levels above the bottom from the best restart's bottom symbols (bottom-up passes, top, refinement of
        every level), each kept if it raises the score; stops when one reaches the best score again.
    remeasure: then (same condition) at most this many rounds that re-measure the context statistics on the
        best fit's symbols and redo the whole fit from them (a context pass, top, refinement), each kept if it
        raises the score; stops at a fixed point (a round that reaches the best score again). Needs quantize
        and context (otherwise no rounds run); with context_passes=0 the round's single pass is such a context
        pass (with label_context, labelled).
    confirm: stop once this many restarts have reached the best score (easy problems stop after `confirm`
        restarts, hard ones, whose restarts land in different optima, use up to `restarts`).
    prior: Dirichlet prior strength (pseudo-counts) of every conditional distribution, i.e. the ridge.
    n_init: k-means restarts.
    seed: seed of k-means and of the fresh split.
    """

    name = "chaining+"

    def __init__(self, s=None, n_symbols="v", quantize=True, all_patches=True, reuse=True, context=True,
                 context_passes=1, label_context=True, denoise=True, refine=20, structure=True, generative=True,
                 exclusive=True, em_iters=50, restarts=10, upper_restarts=3, remeasure=10, confirm=2, prior=2.0,
                 n_init=10, seed=0):
        self.s = s
        self.n_symbols = n_symbols
        self.quantize = quantize
        self.all_patches = all_patches
        self.reuse = reuse
        self.context = context
        self.context_passes = context_passes
        self.label_context = label_context
        self.denoise = denoise
        self.refine = refine
        self.structure = structure
        self.generative = generative
        self.exclusive = exclusive
        self.em_iters = em_iters
        self.restarts = restarts
        self.upper_restarts = upper_restarts
        self.remeasure = remeasure
        self.confirm = confirm
        self.prior = prior
        self.n_init = n_init
        self.seed = seed

    def _validate_params(self):
        for name in ("quantize", "all_patches", "reuse", "context", "label_context", "denoise", "structure",
                     "generative", "exclusive"):
            check_bool(name, getattr(self, name))
        ns = self.n_symbols
        if ns not in ("v", "auto") and (isinstance(ns, bool) or not isinstance(ns, numbers.Integral) or ns < 2):
            raise ValueError(f"n_symbols={ns!r} must be 'v', 'auto' or an integer >= 2")
        for name in ("context_passes", "refine", "upper_restarts", "remeasure"):
            check_int(name, getattr(self, name), 0)
        check_float("prior", self.prior, 0.0, strict=True)
        for name in ("n_init", "restarts", "em_iters", "confirm"):
            check_int(name, getattr(self, name), 1)
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

        generative = self.generative and self.quantize
        best = None
        for restart in range(self.restarts):
            score, loglik, sweeps = self._descend(x, y, {L: x.astype(np.int64)}, rng, restart, generative)
            state = (score, restart, loglik, sweeps, *self._snapshot())
            if best is None or _compare(score, best[0]) > 0:
                best, hits = state, 1
            elif _compare(score, best[0]) == 0:
                hits += 1  # another restart reached the best score
            if hits >= self.confirm:
                break  # the best has been found `confirm` times: most likely the optimum
        # then, unless the restarts confirmed their best (an optimum found `confirm` times is left as it is), two
        # kinds of re-fit from the best state, each kept where the score rises:
        # - the levels above the bottom from its bottom symbols (a right bottom map under a wrong upper level is a
        #   failure of dense grammars, and the upper levels are the easy part);
        # - re-measure: the whole fit from the context statistics (sibling symbols, with the label) measured on
        #   its refined symbols (near the threshold of a dense grammar the restarts' symbols are partly wrong, the
        #   refined ones much less, so every round starts from cleaner statistics)
        restart_best, confirmed = best[0], hits >= self.confirm
        upper_n = self.upper_restarts if not confirmed and self.quantize and L >= 3 else 0
        remeasure_n = self.remeasure if not confirmed and self.quantize and self.context else 0
        best, refits = self._improve(best, upper_n, x, y, rng, generative, upper=True)
        upper_best = best[0]
        best, remeasured = self._improve(best, remeasure_n, x, y, rng, generative, upper=False)
        score, restart, loglik, sweeps = best[:4]
        self._restore(best[4:])
        self.info_.update({"train_loglik": loglik, "restart_criterion": "joint" if generative else "label",
                           "restart_score": score, "chosen_restart": restart, "refine_sweeps": sweeps,
                           "restarts_confirmed": confirmed, "upper_refits": refits,
                           "upper_score_gain": upper_best - restart_best, "remeasure_rounds": remeasured,
                           "remeasure_score_gain": score - upper_best})
        self.tables_ = None
        if generative:
            self._fit_generative(x.astype(np.int64), y)
        self.info_.update({
            "symbols_per_level": {str(lv): int(self.vocab_[lv - 1]) for lv in range(L, 1, -1)},
            "distinct_patches": {str(lv): int(len(self.codes_[lv])) for lv in range(L, 0, -1)},
            "stage_samples": {str(lv): int(len(self.stage_rows_[lv])) for lv in range(L, 0, -1)},
            "fit_seconds": time.perf_counter() - t0})
        if self.grammar_ is not None and L >= 2:  # L = 1 has no clustered level
            self.info_["synonym_purity"] = self._purity(self.grammar_)

    def _descend(self, x, y, tokens, rng, restart, generative, prev=None):
        """One fit from `tokens` {start: (n, s^start) symbols} up: the bottom-up passes from level `start` (the
        maps below it kept), the top, then top-down refinement of every level. Returns (restart score, training
        label log-likelihood, refinement sweeps). With `prev` (symbols of every level, e.g. of a refined fit)
        the first pass is already a context pass measured on them."""
        L = self.L_
        passes = 1 + (self.context_passes if self.context else 0)
        for i in range(0 if prev is None or passes == 1 else 1, passes):
            # the search levels: all sparse ones, or (odd restarts under the joint criterion) level 2 only,
            # so that the joint likelihood can reject a search that overfit a lower level
            search = 0 if not (self.structure and i == passes - 1) else 2 if generative and restart % 2 else L
            prev = self._bottom_up(dict(tokens), y, prev, rng, search=search)
        self._fit_top(prev[1], y)
        sweeps = 0
        for sweeps in range(1, (self.refine if self.quantize else 0) + 1):
            before = [m.copy() for m in self.maps_.values()]
            for level in range(2, L + 1):  # top-down
                self._refine_level(level, x, y)
            if all(len(a) == len(b) and (a == b).all() for a, b in zip(before, self.maps_.values())):
                break  # converged: no patch changed its symbol
        loglik = float(self._top_logprob(self._symbols(x)[1], y).sum())
        # the restart criterion: the joint likelihood of the hard-decoded grammar when that grammar is what
        # predicts (generative), else the training label likelihood
        return (self._hard_joint_loglik(x, y) if generative else loglik), loglik, sweeps

    def _improve(self, best, rounds, x, y, rng, generative, upper):
        """Up to `rounds` re-fits from the state `best` (restart-loop tuple), each kept if it raises the score
        with the same symbol counts; stops at a fixed point (a re-fit that reaches the best score again).
        `upper`: the levels above the bottom from its bottom symbols; else the whole fit with the context
        measured on its symbols. Returns (the best state, rounds run)."""
        L, done = self.L_, 0
        for done in range(1, rounds + 1):
            self._restore(best[4:])
            sym = self._symbols(x)
            if upper:
                cand = self._descend(x, y, {L - 1: sym[L - 1]}, rng, best[1], generative)
            else:
                self.vocab_prev_ = dict(self.vocab_)
                cand = self._descend(x, y, {L: x.astype(np.int64)}, rng, best[1], generative, prev=sym)
            if self.vocab_ != best[6]:
                continue  # n_symbols="auto" chose other symbol counts: likelihoods not comparable
            if _compare(cand[0], best[0]) > 0:
                best = (cand[0], best[1], *cand[1:], *self._snapshot())
            elif _compare(cand[0], best[0]) == 0:
                break
        return best, done

    def _snapshot(self):
        return (dict(self.codes_), dict(self.maps_), dict(self.vocab_), self.top_label_, self.top_logp_,
                self.nb_log_)

    def _restore(self, state):
        self.codes_, self.maps_, self.vocab_, self.top_label_, self.top_logp_, self.nb_log_ = (
            dict(state[0]), dict(state[1]), dict(state[2]), *state[3:])

    def _bottom_up(self, tokens, y, prev, rng, search=0):
        """One bottom-up pass from `tokens` {start: (n, s^start)}, the training data's symbols at level `start`
        (the input, start = L, or the symbols of the current maps, whose levels below `start` are kept). Returns
        tokens[l] (n, s^l) for l = start..1.

        `prev` holds the previous pass's tokens (for the refined sibling context), or None. The structure search
        runs on the sparse levels 2..`search` (0: none).
        """
        s, L = self.s_, self.L_
        (start,) = tokens
        self.codes_ = {lv: c for lv, c in self.codes_.items() if lv > start} if start < L else {}
        self.maps_ = {lv: c for lv, c in self.maps_.items() if lv > start} if start < L else {}
        self.vocab_ = {lv: k for lv, k in self.vocab_.items() if lv >= start} if start < L else {L: self.v_}
        for level in range(start, 1, -1):
            T, k = tokens[level], self.vocab_[level]
            n, width = T.shape
            P = width // s  # patches at this level = tokens at level-1
            patches = T.reshape(n, P, s)
            uniq, inv = patch_ids(patches, k)  # inv (n, P)
            U = len(uniq)
            rows = self.stage_rows_[level]
            sib = inv if prev is None else prev[level - 1]  # the sibling: raw patch id, or previous-pass symbol
            K = U if prev is None else self.vocab_prev_[level - 1]
            labelled = self.label_context and prev is not None  # siblings are symbols: (sibling, label) blocks
            feats = self._statistics(inv, sib, K, y, rows, U, labelled)
            # Wiener shrinkage of every block toward its mean (k-means is shift-invariant); below 4 samples
            # there are no two halves to compare, and when no block shows any reliability (a few dozen samples)
            # the blocks stay as they are rather than all collapse to one point
            if self.denoise and len(rows) >= 4:
                rel = self._reliability(inv, sib, K, y, rows, U, rng, labelled)
                if max(rel) > 1e-9:
                    feats = [f * r for f, r in zip(feats, rel)]
            F = np.concatenate(feats, axis=1)  # (U, features)
            weight = np.bincount(inv[rows].ravel(), minlength=U).astype(np.float64)
            if self.quantize:
                k_next = self._n_clusters(F[weight > 0], U)
                sym = self._cluster(F, weight, k_next, rng)
                parent = y[rows] if level == 2 else None  # level-2 groups are the top tuples
                if level <= search and P >= s and self._sparse(inv[rows], sym, k_next, U, k, parent):
                    sym = SiblingStructure(inv[rows], s, k_next, U, parent).search(sym, rng)
            else:
                sym, k_next = np.arange(U), U
            self.codes_[level], self.maps_[level], self.vocab_[level - 1] = uniq, sym, k_next
            tokens[level - 1] = sym[inv]
        self.vocab_prev_ = dict(self.vocab_)
        return tokens

    def _statistics(self, inv, sib, K, y, rows, U, labelled=False) -> list[np.ndarray]:
        """The blocks of synonym-invariant statistics of the level's U distinct patches, from samples `rows`:
        P(label | patch at position p) for every position (or the first), then P(sibling in slot b | patch in
        slot a) for every slot pair, then (`labelled`) P(sibling in slot b, label | patch in slot a of parent j)
        for every parent position j and slot pair, each (U, K_block) in the Hellinger embedding."""
        s, n_c = self.s_, self.n_classes_
        P = inv.shape[1]
        positions = np.arange(P) if self.all_patches else np.arange(1)
        sub = inv[rows][:, positions]  # (N_l, P')
        idx = ((np.arange(len(positions))[None, :] * U + sub) * n_c + y[rows][:, None]).ravel()
        lab = np.bincount(idx, minlength=len(positions) * U * n_c).reshape(len(positions), U, n_c)
        prior = np.bincount(y[rows], minlength=n_c) / len(rows)
        feats = list(_hellinger(lab, prior, self.prior))  # each (U, n_c)
        if self.context and P >= s:
            # patch in slot a, sibling in slot b of the same parent patch (pooled over parent positions)
            g_inv = inv[rows].reshape(len(rows), P // s, s)
            g_sib = sib[rows].reshape(len(rows), P // s, s)
            for a in range(s):
                for b in range(s):
                    if a == b:
                        continue
                    ok = g_sib[:, :, b] >= 0  # a refined fit's symbols can be unknown (-1): not counted
                    pair = (g_inv[:, :, a] * K + g_sib[:, :, b])[ok]
                    cnt = np.bincount(pair, minlength=U * K).reshape(U, K).astype(np.float64)
                    marg = cnt.sum(0) / max(cnt.sum(), 1)
                    feats.append(_hellinger(cnt, marg, self.prior))
            if labelled:
                # the label given the patch *and* its sibling's symbol: the pair fixes the parent symbol, so
                # the signal is that of the level above (~m^(1/2) stronger than P(label | patch) alone), spread
                # over K times more cells; position-specific, like the label blocks
                for j in range(P // s):
                    for a in range(s):
                        for b in range(s):
                            if a == b:
                                continue
                            ok = g_sib[:, j, b] >= 0
                            idx = ((g_inv[:, j, a] * K + g_sib[:, j, b]) * n_c + y[rows])[ok]
                            cnt = np.bincount(idx, minlength=U * K * n_c).reshape(U, K * n_c).astype(np.float64)
                            feats.append(_hellinger(cnt, cnt.sum(0) / max(cnt.sum(), 1), self.prior))
        return feats

    def _reliability(self, inv, sib, K, y, rows, U, rng, labelled=False) -> list[float]:
        """Per block of statistics, the fraction of its variance across patches that is signal, r = S / (S + N):
        the correlation of the block computed on two random halves of `rows` (the noise is independent between
        halves, the signal is shared), Spearman-Brown corrected to the full sample, 2 r_half / (1 + r_half)."""
        perm = rng.permutation(rows)
        half = len(perm) // 2
        halves = [self._statistics(inv, sib, K, y, h, U, labelled) for h in (perm[:half], perm[half:])]
        w = np.bincount(inv[rows].ravel(), minlength=U).astype(np.float64)
        w = (w / w.sum())[:, None]  # patch weights (U, 1)
        out = []
        for f1, f2 in zip(*halves):
            a, b = f1 - (w * f1).sum(0), f2 - (w * f2).sum(0)
            cross, var = float((w * a * b).sum()), np.sqrt(float((w * a * a).sum()) * float((w * b * b).sum()))
            r = min(max(cross, 0.0) / var, 1.0) if var > 0 else 0.0
            out.append(2 * r / (1 + r))
        return out

    def _sparse(self, inv, sym, k_next, U, k, parent) -> bool:
        """Whether the structure search has a signal at this level: at most half of the possible tuples occur.

        Without parents: the level's U distinct patches among the k^s possible (m < v at the level below). At
        level 2 the groups' parents are the class labels and the tuples are modelled given the class, so what
        counts is the (class, symbol tuple) pairs under the initial map among the n_c k_next^s possible: sparse
        even for a dense grammar (m = v), where every tuple is some class's rule but each class has only m.
        """
        if parent is None:
            return U <= k**self.s_ / 2
        first = sym[inv].reshape(len(inv), -1, self.s_)[:, 0]  # (n, s): level 2 has one group per sample
        code = parent.astype(np.int64)
        for i in range(self.s_):
            code = code * k_next + first[:, i]
        return len(np.unique(code)) <= self.n_classes_ * k_next**self.s_ / 2

    def _n_clusters(self, F, U):
        """Symbols for the level: n_symbols, at most the number of distinct statistics rows F (seen patches)."""
        if self.n_symbols == "v":
            k = self.v_
        elif self.n_symbols == "auto":
            k = estimate_clusters(F, max_clusters=max(2, U // 2))
        else:
            k = int(self.n_symbols)
        distinct = len(np.unique(np.round(F, 9), axis=0))  # k-means cannot split (numerically) identical rows
        return max(1, min(k, distinct))

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
        with np.errstate(divide="ignore"):  # a class absent from training keeps log-probability -inf
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

    # ------------------------------------------------------------------------------------- generative
    def _rule_counts(self, x, y) -> list[np.ndarray]:
        """Rule counts of the hard-decoded training trees: counts[l] (k_parent, k_child**s) for the rewrite of
        level l into level l+1 (l = 0: class -> level-1 tuple); nodes with an unseen patch below are skipped."""
        s, n = self.s_, len(x)
        sym = self._symbols(x)
        sym[0] = y[:, None]
        counts = []
        for level in range(self.L_):
            k_par = self.n_classes_ if level == 0 else self.vocab_[level]
            k_child = self.vocab_[level + 1]
            child = sym[level + 1].reshape(n, -1, s)
            ok = (child >= 0).all(-1) & (sym[level] >= 0)
            code = _codes(np.maximum(child, 0), k_child)
            c = np.zeros((k_par, k_child**s))
            np.add.at(c, (sym[level][ok], code[ok]), 1.0)
            counts.append(c)
        return counts

    def _tables(self, counts):
        """Rule probabilities from counts, Dirichlet-smoothed with `prior` pseudo-counts per parent symbol."""
        import torch

        return [torch.tensor((c + self.prior / c.shape[1]) / (c.sum(1, keepdims=True) + self.prior),
                             requires_grad=True) for c in counts]

    def _chunks(self, n, tables):
        widest = max(self.s_ ** (level - 1) * t.shape[1] for level, t in enumerate(tables, 1))
        step = max(1, 2**22 // widest)  # bounds the (chunk, nodes, k^s) products below to ~32 MB
        return [slice(i, i + step) for i in range(0, n, step)]

    def _inside(self, tables, x):
        """log P(x | class) (n, n_c) under rule tables[l] (k_parent, k_child^s): the inside pass of the RHM as a
        probabilistic grammar on its fixed s-ary tree, summing over every latent symbol of every node."""
        import torch

        s, n = self.s_, len(x)
        code = torch.as_tensor(_codes(x.reshape(n, -1, s).astype(np.int64), self.vocab_[self.L_]))
        node = tables[-1][:, code].permute(1, 2, 0)  # (n, s^(L-1), k): P(patch | symbol) at level L-1
        logscale = torch.zeros(n, dtype=node.dtype)
        for level in range(self.L_ - 2, -1, -1):  # combine s children into their level-`level` parent
            z = node.sum(-1, keepdim=True)
            node = node / z
            logscale = logscale + torch.log(z).sum((1, 2))
            kids = node.reshape(n, node.shape[1] // s, s, -1)
            outer = kids[:, :, 0]
            for i in range(1, s):  # (n, P, k^i) x (n, P, k) -> (n, P, k^(i+1)), first child most significant
                outer = (outer[..., :, None] * kids[:, :, i, None, :]).flatten(2)
            node = outer @ tables[level].T  # (n, P, k_parent)
        return torch.log(node[:, 0]) + logscale[:, None]

    def _hard_joint_loglik(self, x, y) -> float:
        """log P(x, y) of the training set under the grammar of the current hard maps (Dirichlet-smoothed rule
        counts, the start of EM), summed over every latent symbol by the inside pass."""
        import torch

        tables = self._tables(self._rule_counts(x, y))
        x, total = x.astype(np.int64), 0.0
        with torch.no_grad():
            for chunk in self._chunks(len(x), tables):
                logp = self._inside(tables, x[chunk]).numpy()
                total += float(logp[np.arange(len(logp)), y[chunk]].sum())
        return total + float(np.log(self.label_prior_[y]).sum())

    def _fit_generative(self, x, y):
        """EM on the rule tables (inside-outside on the fixed tree), started from the hard-decoded counts.

        The expected rule counts of an E-step are R * d(log-likelihood)/dR (the outside pass, by autograd).
        """
        import torch

        y = y.astype(np.int64)
        counts = self._rule_counts(x, y)
        prev, it, first = -np.inf, 0, None
        for it in range(1, self.em_iters + 1):
            tables, ll = self._tables(counts), 0.0
            for chunk in self._chunks(len(x), tables):
                logp = self._inside(tables, x[chunk])
                val = logp[torch.arange(len(logp)), torch.as_tensor(y[chunk])].sum()
                val.backward()
                ll += float(val.detach())
            counts = [(t * t.grad).detach().numpy() for t in tables]
            # MAP-EM: log-likelihood + log Dirichlet prior (pseudo-count prior/k^s per cell) never decreases
            obj = ll + sum(self.prior / t.shape[1] * float(torch.log(t.detach()).sum()) for t in tables)
            first = obj if first is None else first
            if obj - prev <= 1e-6 * abs(obj):
                break
            prev = obj
        if self.exclusive:
            parents = self.vocab_.get(self.L_ - 1, self.n_classes_)  # L = 1: the input patch's parent is the class
            m_hat = int(np.ceil(len(self.codes_[self.L_]) / parents))
            self.tables_ = self._exclusive_tables(counts, max(m_hat, 1))
            self.info_["m_hat"] = m_hat
        else:
            self.tables_ = [t.detach() for t in self._tables(counts)]
        # joint_loglik: log P(x, y | tables) summed over the training set (last E-step); em_objective: the
        # MAP objective EM increases (joint_loglik + log prior), at the hard-decoded start and at the end
        self.info_.update({"em_iterations": it, "joint_loglik": ll, "em_objective_init": first,
                           "em_objective": obj})

    def _exclusive_tables(self, counts, m: int, floor: float = 0.01):
        """Rule probabilities under the RHM's rule structure from (expected) counts (k_parent, k_child^s).

        A tuple with expected count >= 1/2 under a parent is one of its rules. Row a: its seen rules by their
        counts, and the mass w_a = max((m - r_a)/m, floor * prior/(n_a + prior)) of its r_a < m missing rules
        spread uniformly over the tuples no parent has claimed; claimed tuples get `floor` of the Dirichlet
        pseudo-count so that no cell is exactly zero.
        """
        import torch

        tables = []
        for c in counts:
            K = c.shape[1]
            seen = c >= 0.5
            free = ~seen.any(0)  # (K,) tuples no parent has claimed
            n_a = c.sum(1, keepdims=True)
            w = np.maximum((m - seen.sum(1, keepdims=True)) / m, floor * self.prior / (n_a + self.prior))
            claimed = np.where(free[None, :], 0.0, c + floor * self.prior / K)
            total = claimed.sum(1, keepdims=True)
            if not free.any():
                w = np.zeros_like(w)
            w = np.where(total > 0, np.clip(w, 0.0, 1.0), 1.0)
            row = (1 - w) * claimed / np.maximum(total, 1e-300) + w * free[None, :] / max(int(free.sum()), 1)
            tables.append(torch.tensor(row))
        return tables

    def _generative_scores(self, x) -> np.ndarray:
        """log P(class) + log P(x | class) (n, n_c) under the fitted rule tables."""
        import torch

        with torch.no_grad():
            out = [self._inside(self.tables_, x[chunk]).numpy() for chunk in self._chunks(len(x), self.tables_)]
        return np.concatenate(out) + self.nb_prior_[None]

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
        if getattr(self, "tables_", None) is not None:
            return self._generative_scores(x.astype(np.int64)).argmax(1)
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
        """One-hot symbols of every level, bottom first (layer k: (n, s^(L-k) * vocab)), for sensitivity: the
        hard maps of the discriminative pass (the generative posterior is not one symbol per node)."""
        x = self._check_xy(x, fitting=False)
        sym = self._symbols(x)
        out = []
        for level in range(self.L_ - 1, 0, -1):
            T, k = sym[level], self.vocab_[level]
            oh = np.zeros((len(T), T.shape[1], k + 1))
            np.put_along_axis(oh, np.where(T < 0, k, T)[..., None], 1.0, axis=2)
            out.append(oh.reshape(len(T), -1))
        return out
