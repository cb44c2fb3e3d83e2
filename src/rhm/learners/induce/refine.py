"""From the bottom-up symbol maps to a grammar: hard rule counts, EM on rhm.pcfg's tables, rule extraction.

The decoded trees (the root, the learned symbols of every level, the tokens) give rule counts
(rhm.pcfg.rule_counts); MAP-EM on the dense tables (rhm.pcfg.em: rhm.inference's inside-outside with the one
root observed) lets every patch's assignment move softly where the hard maps disagree with the likelihood of
the whole tree. A child tuple is a rule of the parent with the most expected uses, if it has at least
``threshold`` expected uses in all (the RHM: a tuple is the rule of one symbol only).
"""

from __future__ import annotations

import numpy as np

from ... import pcfg
from .grammar import InducedGrammar


def hard_counts(symbols, sizes, s: int) -> list[np.ndarray]:
    """Rule counts (k_l, k_(l+1)^s) per level of decoded trees symbols[l] (n, s^l), l = 0..L."""
    return pcfg.rule_counts(symbols, sizes, s)


def em_counts(counts, x, s: int, prior: float, iters: int):
    """MAP-EM (rhm.pcfg.em) from `counts` on unlabeled x: the root (one symbol) is observed. (counts, info)."""
    root = np.zeros(len(x), dtype=np.int64)
    return pcfg.em(counts, x, root, s, prior, iters)


def extract(counts, sizes, s: int, threshold: float, probs: str) -> InducedGrammar:
    """The grammar of expected rule counts: rules by owner and threshold, symbols without rules (and the rules
    that use them) pruned bottom-up, unreachable symbols pruned top-down, labels made compact.

    probs: "uniform" (each symbol's rules equally likely: the RHM's) or "counts" (proportional to the counts).
    """
    L = len(counts)
    rules = []  # per level: (parents, children codes)
    for c in counts:
        owner, total = c.argmax(0), c.sum(0)
        col = np.flatnonzero(total >= threshold)
        rules.append([owner[col], col, c[owner[col], col]])
    keep_child = np.ones(sizes[L], bool)  # tokens always exist
    for lv in range(L - 1, -1, -1):  # bottom-up: a rule needs children that have rules
        par, col, w = rules[lv]
        ch = np.stack(np.unravel_index(col, (sizes[lv + 1],) * s), 1)
        ok = keep_child[ch].all(1)
        rules[lv] = [par[ok], ch[ok], w[ok]]
        keep_child = np.bincount(rules[lv][0], minlength=sizes[lv]) > 0
    if not keep_child[0]:
        raise ValueError("no complete derivation: the fit found no rule of the root (too few strings?)")
    new_sizes, remap = [1], [np.zeros(1, dtype=np.int64)]
    for lv in range(L):  # top-down: keep the rules of reachable symbols, relabel the children compactly
        par, ch, w = rules[lv]
        ok = remap[lv][par] >= 0
        par, ch, w = remap[lv][par[ok]], ch[ok], w[ok]
        used = np.zeros(sizes[lv + 1], bool)
        used[ch.ravel()] = True
        if lv == L - 1:
            used[:] = True  # the token alphabet is never relabelled
        m = np.full(sizes[lv + 1], -1, dtype=np.int64)
        m[used] = np.arange(int(used.sum()))
        remap.append(m)
        new_sizes.append(int(used.sum()))
        rules[lv] = [par, m[ch], w]
    parents, children, p = [], [], []
    for lv in range(L):
        par, ch, w = rules[lv]
        if probs == "uniform":
            w = np.ones(len(par))
        w = w / np.bincount(par, weights=w, minlength=new_sizes[lv])[par]
        parents.append(par)
        children.append(ch)
        p.append(w)
    return InducedGrammar(parents, children, p, new_sizes, s)
