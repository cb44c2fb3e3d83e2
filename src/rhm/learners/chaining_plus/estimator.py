"""The chaining+ estimator: parameters and their checks, fit orchestration, prediction."""

from __future__ import annotations

import numbers
import time

import numpy as np

from ... import pcfg
from ...patches import check_codes, digits
from ...validation import check_bool, check_float, check_int
from .. import register
from ..base import Learner, check_seed, distinct_patches, fresh_stage_sizes
from .network import FitState
from .search import restart_search

SWITCHES = ("quantize", "all_patches", "reuse", "context", "label_context", "refine", "structure", "class_structure",
            "generative", "remeasure")
BUDGETS = {"context_passes": 0, "refine_sweeps": 1, "restarts": 1, "confirm": 1, "remeasure_rounds": 1,
           "em_iters": 1, "n_init": 1, "structure_chains": 1, "structure_sweeps": 1,
           "structure_blocks": 1}  # name -> minimum


@register
class ChainingPlus(Learner):
    """Layerwise, bottom-up learner with quantised synonym-invariant patch statistics (see the package docstring).

    Method switches (True/False; a switch that cannot act with the others raises a ValueError naming both):
    quantize, all_patches, reuse, context, label_context, refine, structure, class_structure, generative,
    remeasure (each described in the package docstring).

    Search budgets:
    context_passes: extra bottom-up passes with the sibling context measured on the previous pass's symbols
        (>= 1 needs context).
    refine_sweeps: at most this many top-down refinement sweeps (stops at a fixed point).
    restarts: at most this many independent fits (k-means seeds); confirm: stop once this many reached the best
        score (easy problems stop after `confirm` restarts, hard ones use up to `restarts`).
    remeasure_rounds: at most this many remeasure rounds (stops at a fixed point).
    em_iters: at most this many EM iterations (stops when the MAP objective gains < 1e-6 relative).
    n_init: k-means initialisations per clustering.
    structure_chains, structure_sweeps, structure_blocks: the structure search's parallel annealed chains, its
        sweeps over the patches, and the blocks a sweep is split into (the patches of a block move at once; a
        number >= the level's distinct patches is plain one-patch-at-a-time Gibbs sampling).

    Other: s (branching factor; None: the grammar's, from fit(..., grammar=g)); n_symbols: symbols per level
    after clustering, "v" (the vocabulary size), "auto" (the largest gap of the single-linkage tree) or an int;
    prior: Dirichlet pseudo-counts of every conditional distribution (the ridge); seed: of k-means, the
    structure search and the fresh split.
    """

    name = "chaining+"

    def __init__(self, s=None, n_symbols="v", quantize=True, all_patches=True, reuse=True, context=True,
                 context_passes=1, label_context=True, refine=True, refine_sweeps=20, structure=True,
                 class_structure=True, generative=True, em_iters=50, restarts=10, confirm=2, remeasure=True,
                 remeasure_rounds=10, prior=2.0, n_init=10, structure_chains=32, structure_sweeps=6,
                 structure_blocks=4, seed=0):
        self.s = s
        self.n_symbols = n_symbols
        self.quantize = quantize
        self.all_patches = all_patches
        self.reuse = reuse
        self.context = context
        self.context_passes = context_passes
        self.label_context = label_context
        self.refine = refine
        self.refine_sweeps = refine_sweeps
        self.structure = structure
        self.class_structure = class_structure
        self.generative = generative
        self.em_iters = em_iters
        self.restarts = restarts
        self.confirm = confirm
        self.remeasure = remeasure
        self.remeasure_rounds = remeasure_rounds
        self.prior = prior
        self.n_init = n_init
        self.structure_chains = structure_chains
        self.structure_sweeps = structure_sweeps
        self.structure_blocks = structure_blocks
        self.seed = seed

    def _validate_params(self):
        for name in SWITCHES:
            check_bool(name, getattr(self, name))
        for name, lo in BUDGETS.items():
            check_int(name, getattr(self, name), lo)
        ns = self.n_symbols
        if ns not in ("v", "auto") and (isinstance(ns, bool) or not isinstance(ns, numbers.Integral) or ns < 2):
            raise ValueError(f"n_symbols={ns!r} must be 'v', 'auto' or an integer >= 2")
        check_float("prior", self.prior, 0.0, strict=True)
        check_seed(self.seed)
        # (switch, what it needs, whether that holds): a switch that cannot act is an error, never dropped
        needs = [("generative", "quantize=True", self.quantize), ("refine", "quantize=True", self.quantize),
                 ("structure", "quantize=True", self.quantize), ("class_structure", "structure=True", self.structure),
                 ("remeasure", "quantize=True", self.quantize),
                 ("remeasure", "context=True", self.context), ("label_context", "context=True", self.context),
                 ("label_context", "context_passes >= 1 or remeasure=True",
                  self.context_passes >= 1 or self.remeasure)]
        for switch, need, holds in needs:
            if getattr(self, switch) and not holds:
                raise ValueError(f"{switch}=True needs {need}: without it {switch} cannot act (set {switch}=False)")
        if self.context_passes >= 1 and not self.context:
            raise ValueError(f"context_passes={self.context_passes} needs context=True: without it the extra "
                             "passes cannot act (set context_passes=0)")

    # -------------------------------------------------------------------------------------------- fit
    def _empty_state(self) -> FitState:
        return FitState(self.s_, self.L_, self.n_classes_, self.prior, self.label_prior_)

    def _fit(self, x, y):
        self._validate_params()
        t0 = time.perf_counter()
        s, L = self._tree_shape(self.s, x.shape[1])
        check_codes(self.v_, s, "v")  # the structure search and the rule tables code patches
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
        self.state_, info = restart_search(self, x, y, rng, joint=self.generative)
        self.info_.update(info)
        self.tables_ = None
        if self.generative:
            self._fit_generative(x.astype(np.int64), y.astype(np.int64))
        st = self.state_
        self.info_.update({
            "symbols_per_level": {str(lv): int(st.vocab[lv - 1]) for lv in range(L, 1, -1)},
            "distinct_patches": {str(lv): int(len(st.codes[lv])) for lv in range(L, 0, -1)},
            "stage_samples": {str(lv): int(len(self.stage_rows_[lv])) for lv in range(L, 0, -1)},
            "fit_seconds": time.perf_counter() - t0})
        if self.grammar_ is not None and L >= 2:  # L = 1 has no clustered level
            self.info_["synonym_purity"] = self._purity(self.grammar_)

    def _fit_generative(self, x, y):
        """EM on the grammar's rule tables from the hard-decoded counts (rhm.pcfg), then the prediction tables."""
        counts, em_info = pcfg.em(self.state_.rule_counts(x, y), x, y, self.s_, self.prior, self.em_iters)
        self.tables_ = pcfg.dirichlet_tables(counts, self.prior)
        # joint_loglik: sum log P(x | y) under the last E-step's tables; em_objective: the MAP objective EM
        # increases, at the hard-decoded start and at the end
        self.info_.update(em_info)

    # ---------------------------------------------------------------------------------------- predict
    def _predict(self, x):
        if self.tables_ is not None:
            return pcfg.class_scores(self.tables_, x.astype(np.int64), self.s_, self.state_.nb_prior).argmax(1)
        return self.state_.predict(x)

    def _purity(self, g) -> dict:
        """Oracle diagnostic at the bottom level: the fraction of distinct input patches that sit in a cluster
        whose patches all share one true parent (1.0 = the clusters are exactly unions of synonym classes)."""
        from ... import oracle

        L, uniq = self.L_, self.state_.codes[self.L_]
        parents = oracle._inverses(g)[L - 1](uniq if uniq.ndim == 2 else digits(uniq, g.v, g.s))
        ok = parents >= 0
        sym, par = self.state_.maps[L][ok], parents[ok]
        pairs = np.unique(np.stack([sym, par], 1), axis=0)  # distinct (cluster, parent) pairs
        clusters, n_parents = np.unique(pairs[:, 0], return_counts=True)
        pure = np.isin(sym, clusters[n_parents == 1])
        return {str(L): float(pure.sum() / max(ok.sum(), 1))}

    def hidden(self, x) -> list[np.ndarray]:
        """One-hot symbols of every level, bottom first (layer k: (n, s^(L-k) * (vocab + 1)), the last column
        for unseen patches), for sensitivity: the hard maps (the generative posterior is not one symbol per
        node)."""
        x = self._check_xy(x, fitting=False)
        sym = self.state_.symbols(x)
        out = []
        for level in range(self.L_ - 1, 0, -1):
            T, k = sym[level], self.state_.vocab[level]
            oh = np.zeros((len(T), T.shape[1], k + 1))
            np.put_along_axis(oh, np.where(T < 0, k, T)[..., None], 1.0, axis=2)
            out.append(oh.reshape(len(T), -1))
        return out
