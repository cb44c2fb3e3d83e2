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


def merged(g: InducedGrammar, level: int, keep: int, drop: int) -> InducedGrammar:
    """g with level-`level` symbol `drop` merged into `keep` (1 <= level < L): the union of their rules, the
    duplicate rules of the level above made one, labels compact, each symbol's rules equally likely."""
    parents = [p.copy() for p in g.parents]
    children = [c.copy() for c in g.children_]
    relabel = np.arange(g.sizes[level])
    relabel[drop] = keep
    relabel = np.unique(relabel, return_inverse=True)[1]  # compact: symbols above `drop` move down by one
    children[level - 1] = relabel[children[level - 1]]
    parents[level] = relabel[parents[level]]
    sizes = list(g.sizes)
    sizes[level] -= 1
    probs = []
    for lv in range(g.L):
        rows = np.concatenate([parents[lv][:, None], children[lv]], 1)
        rows = np.unique(rows, axis=0)
        parents[lv], children[lv] = rows[:, 0], rows[:, 1:]
        probs.append(1.0 / np.bincount(parents[lv], minlength=sizes[lv])[parents[lv]])
    return InducedGrammar(parents, children, probs, sizes, g.s)


def merge_split_symbols(g: InducedGrammar, x, max_rows: int = 1000) -> tuple[InducedGrammar, int]:
    """Greedily merge pairs of symbols of one level while that raises the training log-likelihood (every string
    still derived): a true symbol split in two (k-means asked for more symbols than the level uses, e.g. a symbol
    no rule above produces) is one symbol again. Needs uniform rule probabilities. The likelihoods are those of
    the first `max_rows` strings. (grammar, merges made)."""
    from ... import inference

    x = x[:max_rows]  # a merge only adds rules, so every string stays derived: a subsample compares them
    best = float(inference.log_likelihood(g, x).sum())
    merges = 0
    for level in range(1, g.L):
        while g.sizes[level] > 1:
            k = g.sizes[level]
            cands = [merged(g, level, a, b) for a in range(k) for b in range(a + 1, k)]
            ll = np.array([float(inference.log_likelihood(h, x).sum()) for h in cands])
            i = int(np.argmax(ll))
            if not ll[i] > best + 1e-9:
                break
            g, best, merges = cands[i], float(ll[i]), merges + 1
    return g, merges
