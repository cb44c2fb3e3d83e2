"""Exact inference on the RHM tree: inside-outside (belief propagation) for every variant, numpy or torch.

Every grammar is seen as a fixed-shape tree PCFG (:mod:`rhm.treepcfg`): level l has ``n_sym[l]`` symbols,
each with M rules of S children and probabilities; the root has a uniform prior; each leaf emits the observed
token through the noise channel P(x_i = a | clean b) = (1 - eps)[a = b] + eps/V. Masked positions are missing
tokens (their evidence is 1). Levels: 0 is the root, L the input.

The passes loop over levels only; every level is one vectorised gather/product/sum over (samples x nodes x
rules), in chunks of samples. Each node's inside vector is rescaled by its maximum and the log scales are
summed, so nothing underflows at any depth. Inputs of probability 0 get log P(x) = -inf and NaN posteriors.

Inputs may be numpy arrays (results are numpy) or torch tensors (results are float64 tensors on the input's
device: the grammar's tables are copied there once). numpy inputs of a clean grammar take a parse-like fast
path for ``class_posterior`` and ``log_likelihood``, and noisy ones a bottom-level lookup table.

    class_posterior(g, x)          (n, n_classes)       P(class | x)
    log_likelihood(g, x)           (n,)                 log P(x)
    joint_log_likelihood(g, x)     (n, n_classes)       log P(x, class)
    token_posterior(g, x, mask)    (n, d, V)            P(x_i = a | tokens where mask is False)
    next_token(g, x)               (n, d, V)            P(x_t = a | x_<t); t = 0 is the marginal
    latent_posterior(g, x, level)  (n, S**level, k)     P(symbol of each level-`level` node | x)
    expected_rule_counts(g, x, y)  L x (n_sym, M), float E[rule uses | x (, class y)], sum log P(x (| y))
    sample_posterior(g, x, n, ...) (n_obs, n, d)        clean strings drawn exactly from P(clean | x, mask, noise)

Modules: this one (the public functions), ``passes`` (inside and outside over the levels), ``backend`` (numpy and
torch operations on the compiled tables, input checks, chunking), ``sampling`` (exact posterior sampling),
``cky`` (the varying-tree RHM, :class:`rhm.VaryingRHM`: an inside pass over segmentations; class_posterior,
log_likelihood and joint_log_likelihood dispatch to it, the other functions refuse it).
"""

from __future__ import annotations

import numpy as np

from ..treepcfg import Compiled, TreePCFG, codes_of, compiled, tree_pcfg  # noqa: F401 (names of the old module)
from ..validation import check_int
from .backend import as_backend, backend_for, check_x, chunks, is_torch, row_cost
from .passes import inside, leaf_codes, normalise, outside, posterior, root_posterior
from .sampling import sample_posterior
from . import cky
from ..varying import is_varying


def class_posterior(g, x):
    """P(class | x): (n, n_classes) float64; rows of inputs no derivation produces are NaN."""
    if is_varying(g):
        return cky.class_posterior(g, x)
    B, x = backend_for(g, x)
    x, _ = check_x(B, x)
    return root_posterior(B, x)[0]


def log_likelihood(g, x):
    """log P(x) under g (uniform class prior, rule probabilities, token noise): (n,), -inf if impossible."""
    if is_varying(g):
        return cky.log_likelihood(g, x)
    B, x = backend_for(g, x)
    x, _ = check_x(B, x)
    return root_posterior(B, x)[1]


def joint_log_likelihood(g, x):
    """log P(x, class) (n, n_classes), one inside pass: log P(class | x) + log P(x) (-inf where impossible)."""
    if is_varying(g):
        return cky.joint_log_likelihood(g, x)
    B, x = backend_for(g, x)
    x, _ = check_x(B, x)
    post, logp = root_posterior(B, x)
    return B.log(post) + logp[:, None]


def latent_posterior(g, x, level, mask=None):
    """P(symbol at each level-`level` node | unmasked tokens of x): (n, S**level, k), k symbols at that level.

    level 0 is the class, level L the clean input tokens (informative only under noise or masking).
    """
    B, x = backend_for(g, x)
    level = check_int("level", level, 0, B.P.L)
    x, mask = check_x(B, x, mask)
    out = B.empty(len(x), B.P.S**level, B.P.n_sym(level))
    for rows in chunks(B, len(x), row_cost(B.P, B.C) * 2):
        codes = leaf_codes(B, x[rows], None if mask is None else mask[rows])
        betas, _, gathered = inside(B, codes, keep=True)
        alphas = outside(B, rows.stop - rows.start, gathered)
        out[rows] = posterior(B, alphas[level], betas[level])
    return out


def _rowsum(a):
    return a.sum(-1, keepdim=True) if is_torch(a) else a.sum(-1, keepdims=True)


def expected_rule_counts(g, x, y=None):
    """Expected rule counts given x (and the class, the root symbol, when y is given): (counts, loglik).

    counts[l] (n_sym[l], M), M rules per symbol as in the grammar's TreePCFG: the sum over samples and over
    level-l nodes of P(that node is symbol a rewritten by its rule k | x[, y]), the E-step of EM on the rule
    probabilities. loglik: sum over samples of log P(x) (y None) or of log P(x | class y). Same backend as x.
    """
    B, x = backend_for(g, x)
    x, _ = check_x(B, x)
    P = B.P
    n_c = P.n_sym(0)
    if y is not None:
        y = y if is_torch(y) else np.asarray(y)
        if tuple(y.shape) != (len(x),) or (len(y) and (int(y.min()) < 0 or int(y.max()) >= n_c)):
            raise ValueError(f"y must hold {len(x)} class labels in [0, n_classes={n_c}), "
                             f"got shape {tuple(y.shape)}")
        y = y.long() if is_torch(y) else y.astype(np.int64)
    flat = [B.zeros(len(B.pf[lv])) for lv in range(P.L)]
    loglik = 0.0
    for rows in chunks(B, len(x), row_cost(P, B.C) * 2):
        n = rows.stop - rows.start
        betas, log_scale, gathered = inside(B, leaf_codes(B, x[rows], None), keep=True)
        root = None if y is None else B.one_hot(y[rows], n_c)[:, None, :]
        alphas = outside(B, n, gathered, root)
        for lv in range(P.L):  # P(node is (a, rule k)) ∝ alpha(a) p(a, k) prod_c beta(child c of (a, k))
            a = alphas[lv].reshape(n * P.S**lv, -1)
            if B.dense[lv]:  # the same with the rules as the outer product of the children's vectors
                outer = gathered[lv][1]
                tot = ((a @ B.probs[lv]) * outer).sum(-1)
                flat[lv] += (B.probs[lv] * (B.div(a, tot[:, None]).T @ outer)).T.reshape(-1)
                continue
            W = B.cols(a, B.par[lv]) * B.pf[lv]
            for gs in gathered[lv]:
                W = W * gs
            flat[lv] += B.div(W, _rowsum(W)).sum(0)
        root_in = betas[0][:, 0, :] * (B.prior if root is None else root[:, 0, :])
        loglik += float((B.log(root_in.sum(1)) + log_scale).sum())
    counts = [f.reshape(-1, P.n_sym(lv)).T for lv, f in enumerate(flat)]  # rule-major flat -> (n_sym, M)
    return counts, loglik


def _predictive(B, x, mask):
    """P(observed token at each position | unmasked tokens): (n, d, V) for the masked positions."""
    _, _, gathered = inside(B, leaf_codes(B, x, mask), keep=True)
    alpha = outside(B, len(x), gathered)[B.P.L]  # a masked leaf's evidence is 1: its posterior is alpha
    return posterior(B, alpha, 1.0) @ B.emission


def token_posterior(g, x, mask):
    """P(x_i = a | the tokens where mask is False): (n, d, V).

    Masked positions get the exact posterior predictive (through the noise channel when there is noise);
    unmasked positions are observed, so their row is one-hot at x_i. Tokens under the mask are ignored.
    """
    B, x = backend_for(g, x)
    if mask is None:
        raise ValueError("mask must be a boolean array (n, d) or (d,), True where the token is hidden")
    x, mask = check_x(B, x, mask)
    out = B.empty(len(x), B.P.d, B.P.V)
    for rows in chunks(B, len(x), row_cost(B.P, B.C) * 2):
        pred = _predictive(B, x[rows], mask[rows])
        out[rows] = B.where(mask[rows][..., None], pred, B.one_hot(x[rows], B.P.V))
    return out


def next_token(g, x):
    """P(x_t = a | x_<t) for every t: (n, d, V); row t = 0 is the marginal of the first token.

    One inside pass with every token observed, then one outside pass per level along the root-to-leaf-t path
    of every t at once: for prefix t, a subtree left of the path is fully observed (its inside vector is the
    full pass's), a subtree right of it is fully marginalised (inside vector 1, as rule probabilities sum to
    1). Cost ~ L d rule gathers per sample instead of d full passes; no Python loop over t or samples.
    """
    B, x = backend_for(g, x)
    x, _ = check_x(B, x)
    P = B.P
    out = B.empty(len(x), P.d, P.V)
    for rows in chunks(B, len(x), row_cost(P, B.C) * 2 * P.d):
        out[rows] = _prefix_predictive(B, x[rows])
    return out


def _prefix_predictive(B, x):
    P = B.P
    n, d, S = len(x), P.d, P.S
    betas, _, _ = inside(B, leaf_codes(B, x, None), keep=True)
    t = np.arange(d)
    alpha = B.zeros(n, d, P.n_sym(0)) + B.prior  # outside vector of the path node of every (sample, t)
    for lv in range(P.L):
        node = t // S ** (P.L - lv)  # the path node of leaf t at level lv
        slot = (t // S ** (P.L - lv - 1)) % S  # which of its children is on the path
        nxt = B.empty(n, d, P.n_sym(lv + 1))
        for c in range(S):  # the prefixes whose path goes through child c
            T = np.flatnonzero(slot == c)
            k = len(T)
            W = B.cols(alpha[:, as_backend(B, T)].reshape(n * k, -1), B.par[lv]) * B.pf[lv]
            for c2 in range(c):  # siblings left of the path are observed; those right of it contribute 1
                sib = betas[lv + 1][:, as_backend(B, node[T] * S + c2), :].reshape(n * k, -1)
                W = W * B.cols(sib, B.ch[lv][c2])
            nxt[:, as_backend(B, T)] = (W @ B.scatter[lv][c]).reshape(n, k, -1)
        alpha = normalise(B, nxt)[0]
    return posterior(B, alpha, 1.0) @ B.emission


__all__ = ["TreePCFG", "class_posterior", "expected_rule_counts", "joint_log_likelihood", "latent_posterior",
           "log_likelihood", "next_token", "sample_posterior", "token_posterior", "tree_pcfg"]

from .plateaus import Plateaus, plateaus  # noqa: E402 (exact LM plateaus, built on the functions above)

__all__ += ["Plateaus", "plateaus"]
