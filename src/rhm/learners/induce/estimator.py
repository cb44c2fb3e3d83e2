"""The `induce` estimator: parameters and their checks, the bottom-up fit, prediction by exact inference."""

from __future__ import annotations

import time

import numpy as np

from ... import inference
from ...lm_tasks import check_task, unsupported, vocab
from ...validation import check_bool, check_choice, check_float, check_int, check_tokens
from .. import register
from ..base import Learner, check_seed
from ...patches import codes
from .grammar import InducedGrammar, masked_posterior
from .levels import cluster_level, patch_inverse
from .refine import em_counts, extract, hard_counts, merge_split_symbols


@register
class Induce(Learner):
    """Grammar induction from unlabeled strings, then exact inference on the learned grammar (package docstring).

    s: the patch size (None: the grammar's, from fit(..., grammar=g); refused when neither is given: d = 16 is
    both 2**4 and 4**2). n_symbols: symbols per learned level, "v" (the token alphabet size, the RHM's), "auto"
    (the largest gap of the single-linkage tree of the statistics) or an int. passes: extra clustering rounds per
    level with the sibling measured on the previous round's symbols. structure: polish each level's map by
    chaining+'s annealed structure search (structure_chains / _sweeps / _blocks its budget). em_iters: MAP-EM
    iterations on the whole tree after the bottom-up pass (0: none). merge: then merge pairs of symbols of a level
    while the training log-likelihood rises (a symbol split in two; with rule_probs="uniform" only).
    threshold: expected uses for a tuple to be a rule. rule_probs: "uniform" (the RHM's) or "counts" (EM's).
    prior: Dirichlet pseudo-counts of the statistics and of EM. eps: the smoothing of the predictive where the
    learned rules cannot derive a context.
    n_init: k-means initialisations. seed: of k-means and the structure search.

    Tasks: masked and next-token (predict_proba by exact inference on grammar_), classify (few labels:
    ``fit(x_unlabeled).fit_labels(x_labelled, y)``, or ``fit(x, y, task="classify")`` with every string labelled).
    """

    name = "induce"
    tasks = ("masked", "next-token", "classify")

    def __init__(self, s=None, n_symbols="v", passes=1, structure=True, structure_chains=16, structure_sweeps=6,
                 structure_blocks=4, em_iters=10, merge=True, threshold=0.5, rule_probs="uniform", prior=1.0, eps=1e-3,
                 n_init=10, seed=0):
        self.s = s
        self.n_symbols = n_symbols
        self.passes = passes
        self.structure = structure
        self.structure_chains = structure_chains
        self.structure_sweeps = structure_sweeps
        self.structure_blocks = structure_blocks
        self.em_iters = em_iters
        self.merge = merge
        self.threshold = threshold
        self.rule_probs = rule_probs
        self.prior = prior
        self.eps = eps
        self.n_init = n_init
        self.seed = seed

    def _check_params(self):
        ns = self.n_symbols
        if not (ns in ("v", "auto") or (isinstance(ns, (int, np.integer)) and not isinstance(ns, bool))):
            raise ValueError(f"n_symbols={ns!r} must be 'v', 'auto' or an integer >= 1")
        if not isinstance(ns, str):
            check_int("n_symbols", ns, 1)
        check_int("passes", self.passes, 0)
        check_bool("structure", self.structure)
        for name in ("structure_chains", "structure_sweeps", "structure_blocks", "n_init"):
            check_int(name, getattr(self, name), 1)
        check_int("em_iters", self.em_iters, 0)
        check_bool("merge", self.merge)
        check_float("threshold", self.threshold, 0.0, strict=True)
        check_choice("rule_probs", self.rule_probs, ("uniform", "counts"))
        check_float("prior", self.prior, 0.0, strict=True)
        check_float("eps", self.eps, 0.0, strict=True, maximum=1.0)
        check_seed(self.seed)

    def fit(self, x, y=None, v=None, n_classes=None, grammar=None, task="masked"):
        """Fit on strings x (n, d). y None: x are complete unlabeled strings. Otherwise (x, y) are the inputs
        and targets of `task` (rhm.lm_tasks: masked or next-token), and the complete strings are rebuilt from
        them (a hidden token is its target). For task="classify", y are the labels of x: the grammar is learned
        from x alone, then its top-level tuples are labelled from (x, y) (see fit_labels)."""
        if check_task(task) not in self.tasks:
            raise unsupported(self.name, task, self.tasks)
        if y is not None:
            return super().fit(x, y, v=v, n_classes=n_classes, grammar=grammar, task=task)
        if task == "classify":
            raise ValueError("y: task='classify' needs the labels of x; for few labels fit(x) on the unlabeled "
                             "strings, then fit_labels(x_labelled, y)")
        self.task_ = task
        x = check_tokens(x, nonempty=True)
        if grammar is not None:
            if x.shape[1] != grammar.d:
                raise ValueError(f"x has d={x.shape[1]} tokens per input but the grammar has d={grammar.d}")
            v = vocab(grammar) if v is None else v
        self.v_ = self._size("v", v, int(x.max()) + 1, int(x.max()))
        self.n_classes_, self.d_, self.grammar_, self.info_ = self.v_, x.shape[1], grammar, {}
        self._fit(x, None)
        return self

    def _fit(self, x, y):
        self._check_params()
        s, L = self._tree_shape(self.s, self.d_)
        x = np.asarray(x, dtype=np.int64)
        if self.task_ == "classify":  # the labels are used only once the grammar is learned (fit_labels)
            labels, y = y, None
        if y is not None:  # rebuild the complete strings from the task's inputs and targets
            x = x.copy()
            if y.ndim == 1:
                x[:, -1] = y
            else:
                x = np.where(y >= 0, y, x)
            if (x >= self.v_).any():
                raise ValueError("x: a hidden token (MASK) has no target: induce needs complete strings")
        t0 = time.perf_counter()
        rng = np.random.default_rng(self.seed)
        budget = dict(chains=self.structure_chains, sweeps=self.structure_sweeps, blocks=self.structure_blocks)
        seq, base = x, self.v_
        symbols, sizes = [x], [self.v_]
        for _level in range(L - 1, 0, -1):  # the level whose symbols are learned; its patches are seq's
            _, inv = patch_inverse(seq, s, base)
            U = int(inv.max()) + 1
            sym = cluster_level(inv, U, s, self.n_symbols, self.v_, rng, prior=self.prior, n_init=self.n_init,
                                passes=self.passes, structure=budget if self.structure else None)
            seq, base = sym[inv], int(sym.max()) + 1
            symbols.insert(0, seq)
            sizes.insert(0, base)
        symbols.insert(0, np.zeros((len(x), 1), dtype=np.int64))
        sizes.insert(0, 1)
        counts = hard_counts(symbols, sizes, s)
        self.info_["bottom_up_seconds"] = time.perf_counter() - t0
        self.grammar_ = extract(counts, sizes, s, self.threshold, self.rule_probs)
        if self.em_iters:
            # EM can also move a right assignment the wrong way: keep the grammar under which the training
            # strings are more likely (an underivable string counts as -inf)
            em, info = em_counts(counts, x, s, self.prior, self.em_iters)
            after = extract(em, sizes, s, self.threshold, self.rule_probs)
            ll = [float(inference.log_likelihood(h, x).sum()) for h in (self.grammar_, after)]
            self.info_.update(info, loglik_bottom_up=ll[0], loglik_em=ll[1], em_kept=ll[1] > ll[0])
            if ll[1] > ll[0]:
                self.grammar_ = after
        if self.merge and self.rule_probs == "uniform":
            self.grammar_, self.info_["merges"] = merge_split_symbols(self.grammar_, x)
        self.info_.update(rules_per_level=self.grammar_.num_rules, symbols_per_level=self.grammar_.sizes,
                          fit_seconds=time.perf_counter() - t0)
        if self.task_ == "classify":
            self._label(x, labels, self.n_classes_)

    def fit_labels(self, x, y, n_classes=None):
        """Few-label classification after an unlabeled fit: the root's top-level tuples are given classes from
        labelled strings (x (n, d), y (n,)); predict / predict_proba then classify by exact inference on
        ``class_grammar_``. n_classes: default max(y) + 1 (at least 2)."""
        self._check_fitted()
        x = check_tokens(x, self.d_, self.v_, nonempty=True)
        y = np.asarray(y)
        if y.shape != (len(x),) or y.dtype == bool or not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
            raise ValueError(f"y must hold {len(x)} integer labels >= 0, got shape {y.shape} dtype {y.dtype}")
        n_classes = self._size("n_classes", n_classes, max(2, int(y.max()) + 1), int(y.max()))
        self._label(x, y, n_classes)
        self.task_, self.n_classes_ = "classify", n_classes
        return self

    def _label(self, x, y, n_classes: int):
        """class_grammar_: grammar_ with n_classes root symbols. A top-level tuple seen with labels belongs to
        its majority class; one never seen with a label is a rule of every class (each class's rules equally
        likely, so the posterior favours the classes with fewest labelled tuples, where rules are missing)."""
        g = self.grammar_
        top = inference.latent_posterior(g, x, 1)  # (n, s, k_1): the level-1 symbols of each string
        ok = np.isfinite(top).all((1, 2))  # strings the learned grammar cannot derive carry no label
        sym = np.nan_to_num(top[ok]).argmax(-1)
        kc = g.sizes[1]
        owner = np.full(kc**g.s, -1, dtype=np.int64)
        rule_codes = codes(g.children_[0], kc)
        owner[rule_codes] = np.arange(len(rule_codes))
        rule = owner[codes(sym, kc)]
        keep = rule >= 0
        votes = np.zeros((len(rule_codes), n_classes))
        np.add.at(votes, (rule[keep], y[ok][keep]), 1.0)
        labelled = votes.sum(1) > 0
        cls = votes.argmax(1)
        par = [cls[labelled]]
        ch = [g.children_[0][labelled]]
        unl = np.flatnonzero(~labelled)
        par.append(np.repeat(np.arange(n_classes), len(unl)))
        ch.append(np.tile(g.children_[0][unl], (n_classes, 1)))
        empty = np.flatnonzero(np.bincount(np.concatenate(par), minlength=n_classes) == 0)
        par.append(np.repeat(empty, len(rule_codes)))  # a class without any rule: every tuple
        ch.append(np.tile(g.children_[0], (len(empty), 1)))
        par, ch = np.concatenate(par), np.concatenate(ch)
        probs = 1.0 / np.bincount(par, minlength=n_classes)[par]
        self.class_grammar_ = InducedGrammar([par, *g.parents[1:]], [ch, *g.children_[1:]], [probs, *g.probs_[1:]],
                                             [n_classes, *g.sizes[1:]], g.s)
        self.info_.update(labelled_strings=int(len(x)), labelled_tuples=int(labelled.sum()),
                          top_tuples=int(len(rule_codes)))

    # ------------------------------------------------------------------------------------------- predict
    def predict_proba(self, x) -> np.ndarray:
        """The predictive of the task's targets by exact inference on grammar_: (n, d, V) for masked (every
        position; the MASK token marks the hidden ones), (n, V) for next-token, (n, n_classes) for classify (on
        class_grammar_)."""
        x = self._check_xy(x, fitting=False)
        return self._proba(x)

    def _proba(self, x):
        if self.task_ == "classify":
            post = inference.class_posterior(self.class_grammar_, x)
            bad = ~np.isfinite(post).all(1)  # a string the learned rules cannot derive: the smoothed grammar's
            if bad.any():
                post[bad] = inference.class_posterior(self.class_grammar_.smoothed(self.eps), x[bad])
            return post
        mask = x == self.v_
        post = masked_posterior(self.grammar_, np.where(mask, 0, x), mask, self.eps)
        return post[:, -1] if self.task_ == "next-token" else post

    def _predict(self, x):
        return self._proba(x).argmax(-1)
