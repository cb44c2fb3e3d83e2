"""Brute-force enumeration of the derivations of a tiny fixed-tree grammar (the tests' independent reference for
the soft grammar and for hierarchical filtering): plain Python over rule tables, no rhm.inference code."""

import itertools

import numpy as np


def derivations(rules, probs, top_probs, start: int = 0):
    """Every derivation below level `start`: a list of (levels, prob), levels[0] the level-`start` symbols.

    rules[l] (n_sym, M, S) and probs[l] (n_sym, M) as in the grammar (level l rewrites into level l + 1);
    top_probs: {tuple of level-`start` symbols: probability} (e.g. the root prior).
    """
    out = [([tuple(top)], p) for top, p in top_probs.items() if p > 0]
    for lv in range(start, len(rules)):
        nxt = []
        for levels, p in out:
            options = [[(tuple(rules[lv][a][k]), probs[lv][a][k]) for k in range(len(rules[lv][a]))]
                       for a in levels[-1]]
            for combo in itertools.product(*options):
                q = p * float(np.prod([c[1] for c in combo]))
                if q > 0:
                    nxt.append((levels + [tuple(x for c in combo for x in c[0])], q))
        out = nxt
    return out


def input_table(derivs, V: int, d: int, n_classes: int):
    """P(x, class) as an array (V**d, n_classes), x in base-V code order (first token most significant)."""
    table = np.zeros((V**d, n_classes))
    for levels, p in derivs:
        code = 0
        for t in levels[-1]:
            code = code * V + t
        table[code, levels[0][0]] += p
    return table


def all_inputs(V: int, d: int) -> np.ndarray:
    return np.array(list(itertools.product(range(V), repeat=d)), dtype=np.int64)


def codes(x: np.ndarray, V: int) -> np.ndarray:
    return (x.astype(np.int64) * V ** np.arange(x.shape[1] - 1, -1, -1)).sum(1)


def chi_square_ok(counts: np.ndarray, probs: np.ndarray) -> tuple[bool, float, int]:
    """Pearson's chi-square of counts against probs: no count where the probability is 0, and the statistic
    under df + 5 sqrt(2 df) (about five standard deviations above its mean under the null)."""
    n = counts.sum()
    pos = probs > 0
    if counts[~pos].any():
        return False, np.inf, 0
    exp = n * probs[pos]
    stat = float(((counts[pos] - exp) ** 2 / exp).sum())
    df = int(pos.sum()) - 1
    return stat <= df + 5 * np.sqrt(2 * df), stat, df
