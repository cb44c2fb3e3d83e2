"""Exact plateaus of language-model learning curves: the cross-entropy of the predictor that knows the grammar
up to level l, for l = 0..L.

Cagnetta & Wyart (NeurIPS 2024, arXiv 2406.00048): the next-token loss of a deep network trained on RHM data
falls in steps; after the l-th step the network predicts the last token from the tokens of the smallest subtree
that contains it and spans s**l tokens (the subtree of its level-(L-l) ancestor). The l-th plateau is the
cross-entropy of the Bayes predictor restricted to that window: l = 0 is the marginal (unigram) entropy of the
token, l = L the full Bayes cross-entropy. The masked analogue (Garnier-Brun et al., arXiv 2408.15138): the
hidden token predicted from the visible tokens of its own s**l-token block only.

The window of a level-(L-l) node is itself a depth-l tree PCFG whose root prior is that node's marginal (the
root prior pushed down the tree), so each plateau is computed on that small grammar: its strings are enumerated
with their probabilities and scored with the exact posteriors of :mod:`rhm.inference`, or, when the enumeration
is too large, windows cut from i.i.d. samples of g are scored the same way (Monte Carlo with a 95% interval).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..treepcfg import TreePCFG, tree_pcfg
from ..validation import check_choice, check_float, check_int

PLATEAU_TASKS = ("next-token", "next-token-all", "masked")
_Z95 = 1.959964
# exact=True refuses enumerations above this many inference rows (the auto rule uses exact_limit instead)
_EXACT_HARD_MAX = 10**8


@dataclass
class Plateaus:
    """The plateau cross-entropies (nats) of one task, l = 0..L: ``values[l]`` with 95% interval (lo[l], hi[l]).

    method[l] is "exact" (enumeration: lo = hi = value) or "monte_carlo"; n[l] the window strings enumerated
    (summed over the windows scored) or the samples drawn; window[l] = S**l tokens. per_position (L+1, d): the
    plateau of each scored position (NaN where the task scores nothing: every position but the last for
    "next-token"); values[l] is their mean over the scored positions (every position weighs the same).
    """

    task: str
    values: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    method: tuple
    n: tuple
    window: tuple
    per_position: np.ndarray
    mask_rate: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def L(self) -> int:
        return len(self.values) - 1

    def midpoints(self) -> np.ndarray:
        """(values[l-1] + values[l]) / 2 for l = 1..L: the levels at which the step locator reads P_l."""
        return (self.values[:-1] + self.values[1:]) / 2

    def to_dict(self) -> dict:
        return {"task": self.task, "mask_rate": self.mask_rate, "values": self.values.tolist(),
                "lo": self.lo.tolist(), "hi": self.hi.tolist(), "method": list(self.method), "n": list(self.n),
                "window": list(self.window)}


class _Window:
    """A depth-l sub-grammar: the levels below `top` of P, rooted at one node with the given prior."""

    def __init__(self, P: TreePCFG, top: int, prior: np.ndarray):
        self._P = TreePCFG(children=P.children[top:], probs=P.probs[top:], prior=np.asarray(prior, float),
                           V=P.V, noise=P.noise)

    def tree_pcfg(self) -> TreePCFG:
        return self._P


def node_marginals(P: TreePCFG) -> list:
    """marg[k] (S**k, n_sym[k]): P(symbol at each level-k node), the root prior pushed down the rules."""
    marg = [np.asarray(P.prior, dtype=np.float64)[None, :]]
    for lv in range(P.L):
        ch, pr = np.asarray(P.children[lv]), np.asarray(P.probs[lv], dtype=np.float64)
        n_sym, M, S = ch.shape
        T = np.zeros((S, n_sym, P.n_sym(lv + 1)))  # T[c, a, b] = P(child c of a is b)
        for c in range(S):
            np.add.at(T[c], (np.repeat(np.arange(n_sym), M), ch[:, :, c].ravel()), pr.ravel())
        marg.append(np.einsum("ja,cab->jcb", marg[-1], T).reshape(-1, P.n_sym(lv + 1)))
    return marg


def _expand(rows, p, sym, table_probs, table_children):
    """Replace column `sym` of every row by each of its expansions (children (n_sym, M, k), probabilities
    (n_sym, M)), multiplying the weights; zero-probability expansions are dropped."""
    a = rows[:, sym]
    w = p[:, None] * table_probs[a]
    i, r = np.nonzero(w > 0)
    return np.concatenate([rows[i, :sym], table_children[a[i], r], rows[i, sym + 1:]], axis=1), w[i, r]


def _merge(rows, p):
    """Merge equal rows, summing their weights (ambiguous grammars, the sparse RHM's blanks, noise)."""
    if len(rows) == 0:
        return rows, p
    key, inv = np.unique(rows, axis=0, return_inverse=True)
    return key, np.bincount(inv.ravel(), weights=p, minlength=len(key))


def window_support(P: TreePCFG):
    """Every observed string of grammar P with positive probability, and that probability: (x (N, d), p (N,)).

    Top-down over the nodes, merging equal partial strings after each node; the leaves then go through the
    noise channel (each clean token b becomes a with probability (1 - eps)[a = b] + eps/V)."""
    prior = np.asarray(P.prior, dtype=np.float64)
    roots = np.flatnonzero(prior > 0)
    rows, p = roots[:, None].astype(np.int64), prior[roots]
    for lv in range(P.L):
        ch, pr = np.asarray(P.children[lv], dtype=np.int64), np.asarray(P.probs[lv], dtype=np.float64)
        # node j of this level sits at column j * S after the nodes left of it were expanded
        n_nodes, S = rows.shape[1], ch.shape[2]
        for j in range(n_nodes):
            rows, p = _merge(*_expand(rows, p, j * S, pr, ch))
    if P.noise > 0:
        V = P.V
        emission = (1.0 - P.noise) * np.eye(V) + P.noise / V
        outcomes = np.broadcast_to(np.arange(V)[None, :, None], (V, V, 1))
        for j in range(rows.shape[1]):
            rows, p = _merge(*_expand(rows, p, j, emission, outcomes))
    return rows, p


def _support_bound(P: TreePCFG, top: int) -> int:
    """An upper bound on the number of observed strings of the window below a level-`top` node."""
    depth = P.L - top
    w = P.S**depth
    if P.noise > 0:
        return P.V**w
    derivations = P.n_sym(top)
    for lv in range(top, P.L):
        derivations *= int(np.asarray(P.probs[lv]).shape[1]) ** (P.S ** (lv - top))
    return min(derivations, P.V**w)


def _entropy_rows(q: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0)), 0.0).sum(-1)


def _nll(pred: np.ndarray, x: np.ndarray) -> np.ndarray:
    """-log pred[..., x]: pred (n, w, V), x (n, w) -> (n, w)."""
    p = np.take_along_axis(pred, x[..., None].astype(np.int64), axis=-1)[..., 0]
    with np.errstate(divide="ignore"):
        return -np.log(p)


def _window_scores(sub, x, task: str, targets, mask_rate, mask):
    """-log P(target | visible tokens of the window) at every window position, and 1 where scored: (n, w) each.

    targets: the window positions scored. next-token / next-token-all: x_t from the window tokens before t;
    masked with mask_rate None: x_t from every other window token (one hidden token, each t of targets in
    turn); masked with a rate: the hidden tokens of `mask` ((n, w) or (w,)) from the visible ones.
    """
    from . import log_likelihood, next_token, token_posterior

    n, w = x.shape
    loss = np.zeros((n, w))
    scored = np.zeros((n, w))
    if task == "next-token-all":
        pred = next_token(sub, x)  # (n, w, V): P(x_t | window tokens before t)
        loss[:, targets] = _nll(pred, x)[:, targets]
        scored[:, targets] = 1.0
        return loss, scored
    if task == "next-token" or mask_rate is None:
        # One hidden token t (for the last token, the tokens before it are all the others):
        # P(x_t = a | rest) = P(x with x_t = a) / sum_b P(x with x_t = b), from V likelihood passes, which are
        # much cheaper than an outside pass (rhm.inference's clean fast path / bottom lookup table).
        V = sub.tree_pcfg().V
        for t in targets:
            ll = np.empty((n, V))
            xa = x.copy()
            for a in range(V):
                xa[:, t] = a
                ll[:, a] = log_likelihood(sub, xa)
            top = ll.max(1)
            log_norm = top + np.log(np.exp(ll - top[:, None]).sum(1))
            loss[:, t] = log_norm - ll[np.arange(n), x[:, t]]
        scored[:, targets] = 1.0
        return loss, scored
    mask = np.broadcast_to(mask, x.shape)
    pred = token_posterior(sub, x, mask)
    loss = np.where(mask, _nll(pred, x), 0.0)
    return loss, mask.astype(float)


def _check_args(task, mask_rate, exact, n, exact_limit):
    task = check_choice("task", task, PLATEAU_TASKS)
    if mask_rate is not None:
        if task != "masked":
            raise ValueError(f"mask_rate={mask_rate!r} applies to task='masked' only (task={task!r})")
        mask_rate = check_float("mask_rate", mask_rate, 0.0, strict=True)
        if mask_rate > 1:
            raise ValueError(f"mask_rate={mask_rate!r} must be a probability in (0, 1]")
    if exact is not None and not isinstance(exact, bool):
        raise ValueError(f"exact={exact!r} must be True, False or None (automatic)")
    n = check_int("n", n, 2)
    exact_limit = check_int("exact_limit", exact_limit, 0)
    return task, mask_rate, n, exact_limit


def plateaus(g, task: str = "next-token", *, mask_rate: float | None = None, exact: bool | None = None,
             n: int = 20_000, seed=0, exact_limit: int = 2_000_000) -> Plateaus:
    """The l-th plateau, l = 0..L: the cross-entropy (nats) of the Bayes predictor that sees only the window
    of s**l tokens (the subtree of the level-(L-l) ancestor) around each predicted token.

    task: "next-token" (the last token x_{d-1} from the window's earlier tokens, the literature's task),
    "next-token-all" (every x_t from the window's tokens before t, averaged over t; t = 0 is the marginal) or
    "masked" (mask_rate None: one hidden token, predicted from every other token of its window, averaged over a
    uniformly chosen position; with a rate: every token hidden independently with that probability, each hidden
    token predicted from the visible tokens of its window, averaged per hidden token as in ``lm_tasks``).
    l = 0 is the entropy of the token's marginal; l = L equals the full Bayes cross-entropy
    (``oracle.bayes_reference(g, "next_token")`` for next-token-all, ``(g, "masked", rate=mask_rate)``).

    Exact rule (exact=None): a level is enumerated when (window strings, bounded by n_sym m**nodes or V**w) x
    (inference rows per string: 1 for next-token(-all), w for one hidden token, 2**w - 1 mask patterns with a
    rate) x (windows scored) <= exact_limit; otherwise n inputs are drawn from g with `seed` (the same draws
    for every level) and their windows scored exactly (95% normal interval; ratio estimator with a rate).
    exact=True forces enumeration (refused above 1e8 rows), exact=False Monte Carlo. Any grammar rhm.inference
    supports (uniform, balanced, Zipf, token noise, SparseRHM: windows of its tree PCFG, (s(s0+1))**l tokens).
    """
    task, mask_rate, n, exact_limit = _check_args(task, mask_rate, exact, n, exact_limit)
    P = tree_pcfg(g)
    L, S, d, V = P.L, P.S, P.d, P.V
    emission = (1.0 - P.noise) * np.eye(V) + P.noise / V
    marg = node_marginals(P)
    values, lo, hi = np.zeros(L + 1), np.zeros(L + 1), np.zeros(L + 1)
    per_pos = np.full((L + 1, d), np.nan)
    method, counts = [], []
    positions = np.array([d - 1]) if task == "next-token" else np.arange(d)

    # l = 0: the window is the token alone; its predictor is the marginal of the observed token
    leaf = marg[L] @ emission
    per_pos[0, positions] = _entropy_rows(leaf[positions])
    values[0] = lo[0] = hi[0] = per_pos[0, positions].mean()
    method.append("exact")
    counts.append(len(positions))

    plan = []  # (level, top node level, window, blocks scored, exact?): decided before any work is done
    for level in range(1, L + 1):
        top, w = L - level, S**level
        blocks = np.unique(positions // w)
        per_string = w if task == "masked" and mask_rate is None else 2**w - 1 if task == "masked" else 1
        work = _support_bound(P, top) * per_string * len(blocks)
        use_exact = exact if exact is not None else work <= exact_limit
        if use_exact and work > _EXACT_HARD_MAX:
            raise ValueError(f"exact: enumerating level {level} needs up to {work:.3g} inference rows, over the "
                             f"limit {_EXACT_HARD_MAX:.0e}; use exact=False (Monte Carlo) or a smaller exact_limit")
        plan.append((level, top, w, blocks, use_exact))

    x_mc = mask_mc = None
    for level, top, w, blocks, use_exact in plan:
        if use_exact:
            num = np.zeros(d)
            den = np.zeros(d)
            total = 0
            for b in blocks:
                sub = _Window(P, top, marg[top][b])
                xs, p = window_support(sub.tree_pcfg())
                total += len(xs)
                targets = positions[positions // w == b] - b * w
                for mask, weight in _mask_patterns(w, mask_rate):
                    loss, scored = _window_scores(sub, xs, task, targets, mask_rate, mask)
                    num[b * w:(b + 1) * w] += weight * (p @ loss)
                    den[b * w:(b + 1) * w] += weight * (p @ scored)
            with np.errstate(invalid="ignore"):
                per_pos[level, positions] = num[positions] / den[positions]
            values[level] = lo[level] = hi[level] = num[positions].sum() / den[positions].sum()
            method.append("exact")
            counts.append(total)
            continue
        if x_mc is None:  # the same draws (and masks) for every Monte Carlo level
            rng = np.random.default_rng(seed)
            x_mc = np.asarray(g.sample(n, seed=rng)[0]).astype(np.int64)
            mask_mc = rng.random(x_mc.shape) < mask_rate if mask_rate is not None else None
        num = np.zeros((n, d))
        den = np.zeros((n, d))
        for b in blocks:
            sub = _Window(P, top, marg[top][b])
            cols = slice(b * w, (b + 1) * w)
            targets = positions[positions // w == b] - b * w
            m = None if mask_rate is None else mask_mc[:, cols]
            num[:, cols], den[:, cols] = _window_scores(sub, x_mc[:, cols], task, targets, mask_rate, m)
        with np.errstate(invalid="ignore"):
            per_pos[level, positions] = num[:, positions].sum(0) / den[:, positions].sum(0)
        value, (a, c) = _ratio_ci(num[:, positions].sum(1), den[:, positions].sum(1))
        values[level], lo[level], hi[level] = value, a, c
        method.append("monte_carlo")
        counts.append(n)
    return Plateaus(task=task, values=values, lo=lo, hi=hi, method=tuple(method), n=tuple(counts),
                    window=tuple(S**lv for lv in range(L + 1)), per_position=per_pos, mask_rate=mask_rate)


def _mask_patterns(w: int, mask_rate):
    """(mask (w,), weight) pairs: one (None, 1) without a rate; every nonempty mask with its probability."""
    if mask_rate is None:
        yield None, 1.0
        return
    for code in range(1, 2**w):
        mask = ((code >> np.arange(w)) & 1).astype(bool)
        k = int(mask.sum())
        yield mask, mask_rate**k * (1 - mask_rate) ** (w - k)


def _ratio_ci(num: np.ndarray, den: np.ndarray, z: float = _Z95):
    """sum(num) / sum(den) with a delta-method interval over the rows (a plain mean when den is constant)."""
    r = num.sum() / den.sum()
    resid = num - r * den
    se = math.sqrt(resid.var(ddof=1) / len(num)) / den.mean()
    return float(r), (float(r - z * se), float(r + z * se))


__all__ = ["PLATEAU_TASKS", "Plateaus", "node_marginals", "plateaus", "window_support"]
