"""The RHM as a probabilistic grammar on its fixed s-ary tree: rule tables, EM, exclusive tables.

Level l = 0..L-1 rewrites a level-l symbol into s level-(l+1) symbols: tables[l] (k_l, k_(l+1)^s) holds
P(child tuple | parent symbol), the tuple coded base k_(l+1), first child most significant (rhm.patches). Level 0
is the class, level L the input tokens. With the grammar's own rules (uniform over each symbol's m rules,
`tables_from_rules`) the class posterior log P(class) + log P(x | class) is the exact Bayes classifier.
The inside-outside passes are rhm.inference's, on the tables seen as a grammar (:class:`TablesGrammar`).
numpy only: no torch, no learner.
"""

from __future__ import annotations

import numpy as np

from . import inference
from .patches import codes
from .treepcfg import TreePCFG


def _leaf_alphabet(tables, s: int) -> int:
    K = tables[-1].shape[1]
    v = int(round(K ** (1 / s)))
    for cand in (v - 1, v, v + 1):
        if cand >= 1 and cand**s == K:
            return cand
    raise ValueError(f"tables[-1] has {K} columns, not a power k^s of s={s}")


def tables_from_rules(rules, sizes) -> list[np.ndarray]:
    """Rule tables of a grammar: rules[l] (k_l, m, s) the level-l rules, sizes[l] = k_l (l = 0..L); uniform over
    each symbol's m rules."""
    out = []
    for level, r in enumerate(rules):
        r = np.asarray(r, dtype=np.int64)
        K = sizes[level + 1] ** r.shape[2]
        t = np.zeros((len(r), K))
        np.put_along_axis(t, codes(r, sizes[level + 1]), 1.0 / r.shape[1], axis=1)
        out.append(t)
    return out


def rule_counts(symbols, sizes, s: int) -> list[np.ndarray]:
    """Rule counts of decoded trees: symbols[l] (n, s^l) the level-l symbols (l = 0..L; symbols[0] the classes,
    -1 = unknown), sizes[l] = k_l. counts[l] (k_l, k_(l+1)^s); a node with an unknown symbol or child is skipped."""
    n, out = len(symbols[0]), []
    for level in range(len(symbols) - 1):
        child = symbols[level + 1].reshape(n, -1, s)
        ok = (child >= 0).all(-1) & (symbols[level] >= 0)
        K = sizes[level + 1] ** s
        idx = symbols[level][ok].astype(np.int64) * K + codes(np.maximum(child, 0), sizes[level + 1])[ok]
        out.append(np.bincount(idx, minlength=sizes[level] * K).reshape(sizes[level], K).astype(np.float64))
    return out


def dirichlet_tables(counts, prior: float) -> list[np.ndarray]:
    """Rule probabilities from counts, Dirichlet-smoothed with `prior` pseudo-counts per parent symbol."""
    return [(c + prior / c.shape[1]) / (c.sum(1, keepdims=True) + prior) for c in counts]


class TablesGrammar:
    """Rule tables as a grammar for rhm.inference: every parent rewrites into all k^s child tuples (rule index
    = tuple code, first child most significant), probabilities tables[l]; the class prior `prior`; no noise."""

    def __init__(self, tables, s: int, prior=None):
        self.tables = [np.asarray(t, dtype=np.float64) for t in tables]
        self.s = s
        n_c = self.tables[0].shape[0]
        self.prior = np.full(n_c, 1.0 / n_c) if prior is None else np.asarray(prior, dtype=np.float64)

    def tree_pcfg(self) -> TreePCFG:
        V = _leaf_alphabet(self.tables, self.s)
        children = []
        for level, t in enumerate(self.tables):
            k_child = V if level == len(self.tables) - 1 else self.tables[level + 1].shape[0]
            if k_child**self.s != t.shape[1]:
                raise ValueError(f"tables[{level}] has {t.shape[1]} columns, not k^s = {k_child}^{self.s}")
            tuples = np.stack(np.unravel_index(np.arange(t.shape[1]), (k_child,) * self.s), axis=1)
            children.append(np.broadcast_to(tuples, (t.shape[0], *tuples.shape)))
        return TreePCFG(children=tuple(children), probs=tuple(self.tables), prior=self.prior, V=V, noise=0.0)


def log_likelihood(tables, x, s: int) -> np.ndarray:
    """log P(x | class) (n, n_c), summing over every latent symbol of every node (rhm.inference)."""
    x = np.asarray(x, dtype=np.int64)
    g = TablesGrammar(tables, s)
    if len(x) == 0:
        return np.zeros((0, len(g.prior)))
    return inference.joint_log_likelihood(g, x) - np.log(g.prior)[None]


def class_scores(tables, x, s: int, log_prior) -> np.ndarray:
    """log P(class) + log P(x | class) (n, n_c): its argmax is the Bayes classifier of the grammar."""
    return log_likelihood(tables, x, s) + np.asarray(log_prior)[None]


def expected_counts(tables, x, y, s: int):
    """E-step: (expected rule counts per level, sum over samples of log P(x | y)) for labelled inputs
    (rhm.inference.expected_rule_counts with the class observed)."""
    x, y = np.asarray(x, dtype=np.int64), np.asarray(y, dtype=np.int64)
    return inference.expected_rule_counts(TablesGrammar(tables, s), x, y)


def em(counts, x, y, s: int, prior: float, max_iters: int, tol: float = 1e-6):
    """MAP-EM on the rule tables from initial counts (e.g. of hard-decoded trees), Dirichlet prior `prior`.

    Stops when the MAP objective (log-likelihood + log prior, which never decreases) gains < tol relative.
    Returns (the last E-step's expected counts, info: iterations, joint_loglik = sum log P(x | y) of the last
    E-step, em_objective_init / em_objective: the objective at the first and last E-step)."""
    prev, it, first, obj, ll = -np.inf, 0, None, None, None
    for it in range(1, max_iters + 1):
        tables = dirichlet_tables(counts, prior)
        counts, ll = expected_counts(tables, x, y, s)
        obj = ll + sum(prior / t.shape[1] * float(np.log(t).sum()) for t in tables)
        first = obj if first is None else first
        if obj - prev <= tol * abs(obj):
            break
        prev = obj
    return counts, {"em_iterations": it, "joint_loglik": ll, "em_objective_init": first, "em_objective": obj}


def exclusive_tables(counts, m: int, prior: float, floor: float = 0.01) -> list[np.ndarray]:
    """Rule probabilities under the RHM's rule structure from (expected) counts (k_parent, k_child^s).

    A tuple with expected count >= 1/2 under a parent is one of its rules. Row a: its seen rules by their
    counts, and the mass w_a = max((m - r_a)/m, floor * prior/(n_a + prior)) of its r_a < m missing rules
    spread uniformly over the tuples no parent has claimed (a tuple is the rule of one symbol only); claimed
    tuples get `floor` of the Dirichlet pseudo-count so that no cell of a row with counts is exactly zero (a
    row without counts, a symbol no tree uses, is uniform over the unclaimed tuples).
    """
    tables = []
    for c in counts:
        K = c.shape[1]
        seen = c >= 0.5
        free = ~seen.any(0)  # (K,) tuples no parent has claimed
        n_a = c.sum(1, keepdims=True)
        w = np.maximum((m - seen.sum(1, keepdims=True)) / m, floor * prior / (n_a + prior))
        claimed = np.where(free[None, :], 0.0, c + floor * prior / K)
        total = claimed.sum(1, keepdims=True)
        if not free.any():
            w = np.zeros_like(w)
        w = np.where(total > 0, np.clip(w, 0.0, 1.0), 1.0)
        tables.append((1 - w) * claimed / np.maximum(total, 1e-300) + w * free[None, :] / max(int(free.sum()), 1))
    return tables
