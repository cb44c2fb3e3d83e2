"""Exact knowledge of an RHM: bottom-up parsing, q^(l) = P(label | first level-l patch), signal gaps.

Everything here uses the rules (it is the oracle a learner does not have): parse inverts the grammar with
per-level lookup tables; q is exact Bayes on the tree (paper eq. 4), valid for any rule sampler.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from .patches import codes, lookup, patch_ids
from .validation import check_tokens as _check_tokens

# Dense code -> parent tables up to this many entries (int32: 16 MiB); the rhm.patches lookup above it.
_DENSE_TABLE_MAX = 1 << 22
# Relative tolerance of Assumption 6b's comparison rho^(l) >= K_rho m^(-l/2): K_rho = SignalGaps.K_rho(m) is
# rho^(l) m^(l/2), and multiplying back by m^(-l/2) can land one rounding step above rho^(l) (e.g. v=4, m=2, L=1:
# sqrt(2) * 2^(1/2) * 2^(-1/2) > sqrt(2)), so the largest K_rho would "fail" its own check. 1e-9 is far above
# float64 rounding (~1e-16 per operation) and far below any gap that matters.
A6_RTOL = 1e-9


def check_tokens(g, x, name: str = "x") -> np.ndarray:
    """Validate a batch of inputs of g: 2-D (n, d) integers in [0, v) (rhm.validation.check_tokens)."""
    return _check_tokens(x, g.d, g.v, name=name)


class _Inverse:
    """Map s-tuples of level-(l+1) symbols to their parent at level l (-1 if no rule produces them): a dense
    code -> parent table for small v**s, else a lookup in the sorted table of rule patches (rhm.patches)."""

    def __init__(self, g, level: int):
        self.v = g.v
        table = g.rules[level]  # (n_sym, m, s)
        n_sym, m, s = table.shape
        parents = np.repeat(np.arange(n_sym, dtype=np.int32), m)
        self.patches, inv = patch_ids(table.reshape(-1, s), g.v)  # sorted codes (or rows), each rule patch once
        self.parents = np.empty(len(parents), dtype=np.int32)
        self.parents[inv] = parents
        self.dense = None
        if g.v**s <= _DENSE_TABLE_MAX:
            self.dense = np.full(g.v**s, -1, dtype=np.int32)
            self.dense[self.patches] = self.parents

    def __call__(self, patches: np.ndarray) -> np.ndarray:
        if self.dense is not None:
            return np.take(self.dense, codes(patches, self.v))
        return lookup(self.patches, self.parents, patches, self.v)


def _inverses(g):
    cache = g.__dict__.setdefault("_oracle_inverse", {})
    if not cache:
        for level in range(g.L):
            cache[level] = _Inverse(g, level)
    return cache


def parse(g, x, return_tree: bool = False):
    """Exact bottom-up parse of inputs x (n, d): labels (n,) int64, -1 where no derivation produces x.

    With return_tree, also the latent symbols: a list of L+1 int arrays, tree[0] the labels (n,), tree[l]
    (n, s**l) the level-l symbols (-1 at nodes whose subtree no rule produces), tree[L] the input.
    """
    x = check_tokens(g, x)
    n, inv = len(x), _inverses(g)
    sym = x.astype(np.int32)
    bad = np.zeros(x.shape, dtype=bool)
    tree = [x]
    for level in range(g.L - 1, -1, -1):  # rules[level] rewrites level -> level+1; recover level from level+1
        parent = inv[level](sym.reshape(n, -1, g.s))
        bad = bad.reshape(n, -1, g.s).any(axis=2) | (parent < 0)
        sym = np.maximum(parent, 0)
        if return_tree:
            tree.append(np.where(bad, -1, parent))
    y = np.where(bad[:, 0], -1, sym[:, 0]).astype(np.int64)
    if return_tree:
        tree = tree[::-1]
        tree[0] = y
        return y, tree
    return y


@dataclass
class PatchStats:
    """Exact statistics of the first patch at one level (only patches with nonzero probability there).

    patches (n, s): the producible first patches, grouped by parent; parents (n,): their level-(l-1) symbol;
    p (n,): P[first level-l patch = mu]; q (n, n_classes): P[label | first level-l patch = mu] (eq. 4);
    n_rule_patches: |P_l|, the number of patches any rule of level l-1 produces.
    """

    level: int
    patches: np.ndarray
    parents: np.ndarray
    p: np.ndarray
    q: np.ndarray
    n_rule_patches: int


def _check_tree_grammar(g, what: str) -> None:
    """The first-patch statistics are defined on the RHM tree (s children per node); a sparse RHM is refused."""
    if g.spec.s0:
        raise ValueError(f"{what} is defined for the RHM (Zipf and noise included), not for a SparseRHM "
                         f"(s0={g.spec.s0}): use rhm.inference for its exact posteriors, or pass g.base")


def first_token_transition(g, k: int) -> np.ndarray:
    """P_k[a, b] = P(first child at level k+1 is b | parent at level k is a): the summed probabilities of a's
    rules starting with b (#{such rules}/m for uniform rules; ``g.rule_probs[k]`` for a Zipf grammar).

    Token noise does not enter: this and the statistics below are of the clean latent tree."""
    _check_tree_grammar(g, "first_token_transition")
    table = g.rules[k]
    n_sym = table.shape[0]
    counts = np.zeros((n_sym, g.v))
    w, scale = _rule_weights(g, k)
    np.add.at(counts, (np.repeat(np.arange(n_sym), g.m), table[:, :, 0].ravel()), w.ravel())
    return counts / scale


def _rule_weights(g, k: int) -> tuple[np.ndarray, float]:
    """(weights (n_sym, m), scale): the probability of each rule at level k is weights / scale; uniform rules
    give (ones, m) so that the plain RHM's numbers stay bit for bit as they were, Zipf (g.rule_probs[k], 1)."""
    if g.spec.zipf is None:
        return np.ones(g.rules[k].shape[:2]), float(g.m)
    return np.asarray(g.rule_probs[k], dtype=np.float64), 1.0


def patch_stats(g, level: int) -> PatchStats:
    """Exact first-patch statistics at `level` in 1..L by Bayes on the tree (uniform label prior).

    A[zeta, nu] = P(first level-(l-1) symbol = nu | zeta) = (P_0 ... P_{l-2})[zeta, nu]; a patch mu with
    parent nu(mu) then has P(mu | zeta) = A[zeta, nu] f_mu (f_mu = 1/m, or its Zipf probability), so
    q_mu = A[:, nu] / sum_zeta A[zeta, nu] (f_mu cancels: synonyms share q). Exact for Zipf grammars too.
    """
    _check_tree_grammar(g, "patch_stats")
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or not 1 <= level <= g.L:
        raise ValueError(f"level={level!r} must be an integer in [1, L={g.L}]")
    level = int(level)
    A = np.eye(g.n_classes)
    for k in range(level - 1):
        A = A @ first_token_transition(g, k)
    table = g.rules[level - 1]
    n_sym = table.shape[0]
    parents = np.repeat(np.arange(n_sym), g.m)
    w, scale = _rule_weights(g, level - 1)
    weight = A[:, parents] * w.ravel()  # (n_classes, n_sym*m): P(mu | zeta) * scale
    p = weight.sum(axis=0) / (g.n_classes * scale)
    keep = p > 0
    w = weight[:, keep]
    return PatchStats(level=level, patches=table.reshape(-1, g.s)[keep], parents=parents[keep], p=p[keep],
                      q=(w / w.sum(axis=0)).T, n_rule_patches=n_sym * g.m)


def q(g, level: int):
    """Exact q^(l)_mu = P(label | first patch at `level` = mu) (paper eq. 4) for every producible patch.

    Returns (patches (n, s) ints, q (n, n_classes) floats); rows sum to 1 and synonyms share a row.
    """
    st = patch_stats(g, level)
    return st.patches, st.q


@dataclass
class SignalGaps:
    """rho[l] = min over non-synonym pairs of ||q_mu - q_mu'|| (inf if a level has one parent only);
    kappa = max_l max_mu 1/(|P_l| P[first patch = mu]) (Assumption 6a; inf if some rule patch never occurs
    first); producible[l] = fraction of the |P_l| rule patches that can occur as the first patch."""

    rho: dict
    kappa: float
    producible: dict = field(default_factory=dict)

    def K_rho(self, m: int) -> float:
        """Largest K with rho^(l) >= K m^(-l/2) at every level (Assumption 6b)."""
        return min(r * m ** (lv / 2) for lv, r in self.rho.items())


def signal_gaps(g) -> SignalGaps:
    rho, producible, kappa = {}, {}, 1.0
    for level in range(1, g.L + 1):
        st = patch_stats(g, level)
        par, first = np.unique(st.parents, return_index=True)
        Q = st.q[first]  # one row per parent (synonyms share q)
        if len(par) < 2:
            rho[level] = math.inf
        else:
            dist = np.sqrt(((Q[:, None, :] - Q[None, :, :]) ** 2).sum(-1))
            rho[level] = float(dist[np.triu_indices(len(par), 1)].min())
        producible[level] = len(st.p) / st.n_rule_patches
        if len(st.p) < st.n_rule_patches:
            kappa = math.inf
        else:
            kappa = max(kappa, float(1.0 / (st.n_rule_patches * st.p.min())))
    return SignalGaps(rho=rho, kappa=kappa, producible=producible)


@dataclass
class Assumption6Report:
    """Whether a grammar meets the paper's Assumption 6 for a given K_rho (see ``str(report)``)."""

    K_rho: float
    vm_uniform: bool
    kappa: float
    rho: dict
    required: dict
    holds: dict
    K_rho_max: float

    @property
    def satisfied(self) -> bool:
        return self.vm_uniform and math.isfinite(self.kappa) and all(self.holds.values())

    def __str__(self) -> str:
        lines = [f"Assumption 6 with K_rho={self.K_rho:g}: {'holds' if self.satisfied else 'FAILS'}",
                 f"  (V,m)-uniform (n_classes == v): {self.vm_uniform}",
                 f"  (a) non-degeneracy: kappa = {self.kappa:.4g}" + ("" if math.isfinite(self.kappa)
                                                                     else " (some rule patch never occurs first)")]
        for lv in self.rho:
            lines.append(f"  (b) level {lv}: rho = {self.rho[lv]:.4g} vs K_rho m^(-l/2) = {self.required[lv]:.4g}"
                         f" -> {'ok' if self.holds[lv] else 'too small'}")
        lines.append(f"  largest K_rho for (b): {self.K_rho_max:.4g}")
        return "\n".join(lines)


def assumption6(g, K_rho: float, gaps: SignalGaps | None = None) -> Assumption6Report:
    """Check Assumption 6: (V,m)-uniformity, (a) kappa finite, (b) rho^(l) >= K_rho m^(-l/2) for all l, the last
    up to a relative tolerance `A6_RTOL` (so that K_rho = gaps.K_rho(m), recomputed in floating point, holds)."""
    if isinstance(K_rho, bool) or not isinstance(K_rho, (int, float)) or not K_rho > 0:
        raise ValueError(f"K_rho={K_rho!r} must be a positive number")
    gaps = gaps or signal_gaps(g)
    required = {lv: K_rho * g.m ** (-lv / 2) for lv in gaps.rho}
    holds = {lv: gaps.rho[lv] >= required[lv] * (1 - A6_RTOL) for lv in gaps.rho}
    return Assumption6Report(K_rho=float(K_rho), vm_uniform=g.n_classes == g.v, kappa=gaps.kappa,
                             rho=dict(gaps.rho), required=required, holds=holds, K_rho_max=gaps.K_rho(g.m))


# ------------------------------------------------------------------------------------ Bayes references
# The task names of rhm.lm_tasks (the CLI's --task): "next-token" predicts the last token from the others,
# "next-token-all" every token from its prefix. The old spelling "next_token" (which meant the latter) is
# accepted with a DeprecationWarning.
BAYES_TASKS = ("classify", "next-token", "next-token-all", "masked")
_OLD_TASK_NAMES = {"next_token": "next-token-all"}


@dataclass
class BayesReference:
    """Bayes-optimal error and cross-entropy (nats) of one task, with 95% confidence intervals.

    task: "classify" (the class from x), "masked" (each token hidden independently with probability `rate`,
    scored per hidden token), "next-token" (the last token x_{d-1} from x_<d-1) or "next-token-all" (x_t from
    x_<t, averaged over t = 0..d-1), as in rhm.lm_tasks; "next_token" is the deprecated spelling of
    "next-token-all". error is the top-1
    error of the Bayes predictor, cross_entropy the expected -log of the exact posterior of the truth. method is
    "exact" (every input enumerated with its probability; the intervals have zero width) or "monte_carlo"
    (n inputs drawn from the grammar, exact posteriors on each; normal intervals, ratio estimator for masked).
    """

    task: str
    error: float
    error_ci: tuple
    cross_entropy: float
    cross_entropy_ci: tuple
    method: str
    n: int
    rate: float | None = None


def _support(g):
    """Every input of positive probability and its probability: (x (N, d), p (N,))."""
    from . import inference

    P = inference.tree_pcfg(g)
    if P.noise > 0:
        x = np.stack(np.unravel_index(np.arange(P.V**P.d), (P.V,) * P.d), axis=1)
    elif g.spec.zipf is not None:  # every input once, from the same rules with uniform weights
        x = _uniform_twin(g).sample(g.num_inputs, seed=0, replace=False)[0]
    else:
        x = g.sample(g.num_inputs, seed=0, replace=False)[0]
    return x, np.exp(inference.log_likelihood(g, x))


def _uniform_twin(g):
    """The same rules with uniform weights (the same support); built from g's own class, so that the oracle
    never imports the grammar module (which imports the oracle for parse)."""
    if hasattr(g, "base"):  # a SparseRHM: the uniform twin of its informative RHM, with the same blanks
        return type(g).from_base(_uniform_twin(g.base), g.s0)
    return type(g).from_rules(list(g.rules), v=g.v, n_classes=g.n_classes)


def _support_size(g) -> int:
    from . import inference

    P = inference.tree_pcfg(g)
    return P.V**P.d if P.noise > 0 else g.num_inputs


def _losses(g, task, x, mask=None):
    """Per-input Bayes top-1 loss and entropy summed over the scored positions, and the number scored."""
    from . import inference

    with np.errstate(divide="ignore", invalid="ignore"):
        if task == "classify":
            post = inference.class_posterior(g, x)
            ones = np.ones(len(x))
            return 1.0 - post.max(axis=1), _entropy(post), ones
        if task == "next-token-all":
            pred = inference.next_token(g, x)
            return (1.0 - pred.max(axis=2)).sum(axis=1), _entropy(pred).sum(axis=1), np.full(len(x), x.shape[1])
        if task == "next-token":  # P(x_{d-1} | x_<d-1): the last token hidden, as lm_tasks.bayes_proba does
            last = np.zeros(x.shape[1], dtype=bool)
            last[-1] = True
            pred = inference.token_posterior(g, x, last)[:, -1]
            return 1.0 - pred.max(axis=1), _entropy(pred), np.ones(len(x))
        pred = inference.token_posterior(g, x, mask)
        return (((1.0 - pred.max(axis=2)) * mask).sum(axis=1), (_entropy(pred) * mask).sum(axis=1),
                mask.sum(axis=1).astype(float))


def _entropy(p: np.ndarray) -> np.ndarray:
    return -(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)).sum(axis=-1)


def bayes_reference(g, task: str = "classify", *, rate: float = 0.15, n: int = 20_000, seed=0,
                    exact_limit: int = 200_000) -> BayesReference:
    """Bayes error and cross-entropy of `task` on grammar g, exact where small, else Monte Carlo.

    Exact when (inputs of positive probability) x (work per input: 1, d for next-token-all, 2**d mask
    patterns for masked) <= exact_limit; a clean classification task is exact at once (the label is a function
    of x: 0, 0).
    Otherwise n inputs (and masks) are drawn with `seed` and scored with their exact posteriors.
    """
    from .sampling import _rng
    from .validation import check_choice, check_float, check_int

    if task in _OLD_TASK_NAMES:
        warnings.warn(f"task={task!r} is deprecated: use {_OLD_TASK_NAMES[task]!r} (the task names of "
                      "rhm.lm_tasks and the CLI)", DeprecationWarning, stacklevel=2)
        task = _OLD_TASK_NAMES[task]
    check_choice("task", task, BAYES_TASKS)
    n = check_int("n", n, 2)
    exact_limit = check_int("exact_limit", exact_limit, 0)
    if task == "masked":
        rate = check_float("rate", rate, 0.0, strict=True)
        if rate > 1:
            raise ValueError(f"rate={rate!r} must be a probability in (0, 1]")
    else:
        rate = None
    if task == "classify" and not g.spec.noise:
        return BayesReference(task, 0.0, (0.0, 0.0), 0.0, (0.0, 0.0), "exact", 0)
    d = g.d
    work = {"classify": 1, "next-token": 1, "next-token-all": d, "masked": 2**d}[task]
    size = _support_size(g)
    if size * work <= exact_limit:
        return _exact(g, task, rate)
    rng = _rng(seed)
    x = g.sample(n, seed=rng)[0]
    mask = rng.random(x.shape) < rate if task == "masked" else None
    err, ent, count = _losses(g, task, x, mask)
    return BayesReference(task, *_ratio_ci(err, count), *_ratio_ci(ent, count), "monte_carlo", n, rate)


def _exact(g, task, rate) -> BayesReference:
    x, p = _support(g)
    if task != "masked":
        err, ent, count = _losses(g, task, x)
        e, h = float(p @ err / (p @ count)), float(p @ ent / (p @ count))
        return BayesReference(task, e, (e, e), h, (h, h), "exact", len(x))
    d = g.d
    num_e = num_h = 0.0
    for code in range(1, 2**d):  # the empty mask scores nothing
        mask = ((code >> np.arange(d)) & 1).astype(bool)
        weight = rate ** mask.sum() * (1 - rate) ** (d - mask.sum())
        err, ent, _ = _losses(g, task, x, np.broadcast_to(mask, x.shape))
        num_e += weight * float(p @ err)
        num_h += weight * float(p @ ent)
    e, h = num_e / (rate * d), num_h / (rate * d)
    return BayesReference(task, e, (e, e), h, (h, h), "exact", len(x), rate)


def _ratio_ci(num: np.ndarray, den: np.ndarray, z: float = 1.959964) -> tuple[float, tuple]:
    """Ratio estimate sum(num)/sum(den) with a delta-method 95% interval (a plain mean when den == 1)."""
    k = len(num)
    r = num.sum() / den.sum()
    resid = num - r * den
    se = np.sqrt(resid.var(ddof=1) / k) / den.mean()
    return float(r), (float(r - z * se), float(r + z * se))


# ------------------------------------------------------------------------------------ validity of generated data
@dataclass(frozen=True)
class Validity:
    """How much of the grammar strings respect, level by level (levels: 0 the root, L the tokens).

    The level-l patches of a string are the s-tuples of its level-l symbols (level L: its tokens); one is valid
    when some rule of level l-1 produces it, which defines its parent. strings[l] (l = 1..L): the fraction of
    strings whose patches at every level l..L are valid, i.e. whose bottom-up parse succeeds from the tokens up
    to level l-1 (strings[1] = the fraction of strings of the grammar; nonincreasing as l decreases).
    patches[l]: among the level-l patches whose symbols are all defined (their own subtrees valid), the fraction
    that are valid (nan when there are none). valid (n, L) bool: column l-1 is string i's strings[l] indicator.
    """

    strings: dict
    patches: dict
    valid: np.ndarray


def validity(g, x) -> Validity:
    """Exact per-level validity of strings x (n, d) under grammar g (see :class:`Validity`); token noise ignored.

    The RHM (any rule sampler, Zipf, noise) uses the inverse tables of :func:`parse`; other grammars (the sparse
    RHM, grammars that only provide ``tree_pcfg()``) an inside pass without noise, where a node is defined when
    some symbol derives its subtree (ambiguous grammars included). This measures generated data (e.g. a
    diffusion model's samples) as in Favero, Sclocchi, Cagnetta, Frossard, Wyart (ICML 2025, arXiv 2502.12089).
    """
    if hasattr(g, "rules") and not hasattr(g, "s0"):
        _, tree = parse(g, x, return_tree=True)
        ok = [np.asarray(t).reshape(len(t), -1) >= 0 for t in tree[:-1]]  # level l: (n, s**l) subtree defined
        S = g.s
    else:
        from .inference.sampling import derivable
        from .treepcfg import tree_pcfg

        ok = derivable(g, x)
        S = tree_pcfg(g).S
    L, n = len(ok), len(ok[0])
    strings, patches = {}, {}
    valid = np.ones((n, L), dtype=bool)
    below = np.ones(n, dtype=bool)
    for lv in range(L, 0, -1):  # level-lv patches are the children of the level-(lv-1) nodes
        parent = ok[lv - 1]
        kids = ok[lv].reshape(n, -1, S).all(-1) if lv < L else np.ones_like(parent)
        below &= parent.all(1)
        valid[:, lv - 1] = below
        strings[lv] = float(below.mean()) if n else float("nan")
        k = int(kids.sum())
        patches[lv] = float((parent & kids).sum() / k) if k else float("nan")
    return Validity(strings=strings, patches=patches, valid=valid)
