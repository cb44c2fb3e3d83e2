"""The RHM as a probabilistic grammar on its fixed s-ary tree: rule tables, the inside pass, EM, exclusive tables.

Level l = 0..L-1 rewrites a level-l symbol into s level-(l+1) symbols: tables[l] (k_l, k_(l+1)^s) holds
P(child tuple | parent symbol), the tuple coded base k_(l+1), first child most significant (rhm.patches). Level 0
is the class, level L the input tokens. With the grammar's own rules (uniform over each symbol's m rules,
`tables_from_rules`) the class posterior log P(class) + log P(x | class) is the exact Bayes classifier.
numpy only: no torch, no learner.
"""

from __future__ import annotations

import numpy as np

from .patches import codes

# (chunk, nodes, k^s) products stay below this many cells (~32 MB of float64)
CHUNK_CELLS = 2**22


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


def chunks(n: int, tables, s: int) -> list[slice]:
    """Sample chunks that bound the inside pass's (chunk, nodes, k^s) products to CHUNK_CELLS cells."""
    widest = max(s ** (level - 1) * t.shape[1] for level, t in enumerate(tables, 1))
    step = max(1, CHUNK_CELLS // widest)
    return [slice(i, i + step) for i in range(0, n, step)]


def _inside(tables, x, s: int):
    """Inside pass on one chunk: (log P(x | class) (n, n_c), per level the normalised children's inside vectors
    (n, nodes, s, k) and their outer products (n, nodes, k^s), root level first, and the leaf codes)."""
    n, L = len(x), len(tables)
    leaf = codes(x.reshape(n, -1, s).astype(np.int64), _leaf_alphabet(tables, s))
    node = tables[-1][:, leaf].transpose(1, 2, 0)  # (n, s^(L-1), k): P(patch | symbol) at level L-1
    logscale = np.zeros(n)
    kids_by_level, outer_by_level = [], []
    with np.errstate(divide="ignore", invalid="ignore"):
        for level in range(L - 2, -1, -1):  # combine s children into their level-`level` parent
            z = node.sum(-1, keepdims=True)
            node = node / z
            logscale = logscale + np.log(z).sum((1, 2))
            kids = node.reshape(n, node.shape[1] // s, s, -1)
            outer = kids[:, :, 0]
            for i in range(1, s):  # (n, P, k^i) x (n, P, k) -> (n, P, k^(i+1)), first child most significant
                outer = (outer[..., :, None] * kids[:, :, i, None, :]).reshape(n, kids.shape[1], -1)
            kids_by_level.insert(0, kids)
            outer_by_level.insert(0, outer)
            node = outer @ tables[level].T  # (n, P, k_parent)
        logp = np.log(node[:, 0]) + logscale[:, None]
    return logp, kids_by_level, outer_by_level, leaf


def log_likelihood(tables, x, s: int) -> np.ndarray:
    """log P(x | class) (n, n_c), summing over every latent symbol of every node."""
    x = np.asarray(x, dtype=np.int64)
    if len(x) == 0:
        return np.zeros((0, tables[0].shape[0]))
    return np.concatenate([_inside(tables, x[c], s)[0] for c in chunks(len(x), tables, s)])


def class_scores(tables, x, s: int, log_prior) -> np.ndarray:
    """log P(class) + log P(x | class) (n, n_c): its argmax is the Bayes classifier of the grammar."""
    return log_likelihood(tables, x, s) + np.asarray(log_prior)[None]


def _expected_chunk(tables, x, y, s: int, counts):
    """Add the expected rule counts of one labelled chunk to `counts`; returns sum log P(x | y)."""
    logp, kids_by_level, outer_by_level, leaf = _inside(tables, x, s)
    n = len(x)
    out = np.zeros((n, 1, tables[0].shape[0]))
    out[np.arange(n), 0, y] = 1.0  # outside of the root: the class is observed
    for level, (kids, outer) in enumerate(zip(kids_by_level, outer_by_level)):
        R = tables[level]
        OR = out @ R  # (n, P, k^s): sum_a out(a) R[a, t]
        tot = (OR * outer).sum(-1, keepdims=True)  # P(subtree) in this node's units
        w = (out / tot).reshape(-1, R.shape[0])
        counts[level] += R * (w.T @ outer.reshape(len(w), -1))  # posterior of (parent symbol, child tuple)
        G = (OR / tot).reshape(n, outer.shape[1], *(kids.shape[-1],) * s)  # the child tuple t as s axes
        # outside of child i: G contracted with every other child's inside vector
        axes = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[:s]
        child = [np.einsum(f"np{axes}," + ",".join(f"np{axes[j]}" for j in range(s) if j != i) + f"->np{axes[i]}",
                           G, *(kids[:, :, j] for j in range(s) if j != i)) for i in range(s)]
        out = np.stack(child, 2).reshape(n, -1, kids.shape[-1])
    post = out * tables[-1][:, leaf].transpose(1, 2, 0)  # the leaf patch is observed
    post /= post.sum(-1, keepdims=True)
    K = tables[-1].shape[1]
    idx = (np.arange(post.shape[-1])[None, None, :] * K + leaf[..., None]).ravel()
    counts[-1] += np.bincount(idx, weights=post.ravel(), minlength=counts[-1].size).reshape(counts[-1].shape)
    return float(logp[np.arange(n), y].sum())


def expected_counts(tables, x, y, s: int):
    """E-step: (expected rule counts per level, sum over samples of log P(x | y)) for labelled inputs."""
    x, y = np.asarray(x, dtype=np.int64), np.asarray(y, dtype=np.int64)
    counts = [np.zeros_like(t) for t in tables]
    ll = sum(_expected_chunk(tables, x[c], y[c], s, counts) for c in chunks(len(x), tables, s))
    return counts, float(ll)


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
