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
"""

from __future__ import annotations

import numpy as np

from .treepcfg import Compiled, TreePCFG, codes_of, compiled, tree_pcfg
from .validation import check_int

# Rows of a chunk are chosen so that the widest per-level temporary stays around this many float64 entries.
# (Cache-sized chunks are ~3x faster than large ones on a CPU; the size changes no result.)
_CHUNK_ENTRIES = 1 << 19
_GPU_CHUNK_ENTRIES = 1 << 27


class _Numpy:
    """numpy operations and the compiled tables (the fast paths live here)."""

    def __init__(self, C: Compiled):
        self.C, self.P = C, C.P
        self.ch, self.pf, self.par, self.scatter = C.ch, C.pf, C.par, C.scatter
        self.evidence, self.leaf_tables, self.emission = C.evidence, C.leaf_tables, C.emission
        self.prior = C.P.prior
        self.dense, self.probs = C.dense, C.probs
        self.chunk = _CHUNK_ENTRIES

    rows = staticmethod(lambda a, idx: np.take(a, idx, axis=0))
    cols = staticmethod(lambda a, idx: np.take(a, idx, axis=1))
    stack = staticmethod(lambda xs, axis: np.stack(xs, axis=axis))
    where = staticmethod(np.where)
    einsum = staticmethod(np.einsum)

    def log(self, z):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(z)

    def div(self, a, b):
        with np.errstate(divide="ignore", invalid="ignore"):
            return a / b

    def zeros(self, *shape):
        return np.zeros(shape)

    def empty(self, *shape):
        return np.empty(shape)

    def arange(self, n):
        return np.arange(n)

    def one_hot(self, x, V):
        return np.eye(V)[x]

    def repeat_rows(self, x, k):
        return np.repeat(x, k, axis=0)

    def tile_rows(self, x, k):
        return np.tile(x, (k, 1))

    def patch_table(self):
        return self.C.patch_table()


class _Torch(_Numpy):
    """The same operations in torch, with the tables copied to `device` (float64)."""

    def __init__(self, C: Compiled, device):
        import torch

        self.t, self.device = torch, device
        self.C, self.P = C, C.P
        f = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64, device=device)  # noqa: E731
        i = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.long, device=device)  # noqa: E731
        self.ch = [[i(c) for c in lv] for lv in C.ch]
        self.pf, self.par = [f(p) for p in C.pf], [i(p) for p in C.par]
        self.scatter = [[f(s) for s in lv] for lv in C.scatter]
        self.evidence, self.emission, self.prior = f(C.evidence), f(C.emission), f(C.P.prior)
        self.leaf_tables = [f(t) for t in C.leaf_tables]
        self.dense, self.probs = C.dense, [f(p) for p in C.probs]
        self.einsum = torch.einsum
        self.chunk = _GPU_CHUNK_ENTRIES if torch.device(device).type != "cpu" else _CHUNK_ENTRIES

    rows = staticmethod(lambda a, idx: a[idx])
    cols = staticmethod(lambda a, idx: a[:, idx])

    def stack(self, xs, axis):
        return self.t.stack(xs, dim=axis)

    def where(self, c, a, b):
        t = self.t
        a = a if t.is_tensor(a) else t.tensor(a, dtype=t.float64, device=self.device)
        b = b if t.is_tensor(b) else t.tensor(b, dtype=t.float64, device=self.device)
        return t.where(c, a, b)

    def log(self, z):
        return self.t.log(z)

    def div(self, a, b):
        return a / b

    def zeros(self, *shape):
        return self.t.zeros(shape, dtype=self.t.float64, device=self.device)

    def empty(self, *shape):
        return self.t.empty(shape, dtype=self.t.float64, device=self.device)

    def arange(self, n):
        return self.t.arange(n, device=self.device)

    def one_hot(self, x, V):
        return self.t.nn.functional.one_hot(x, V).to(self.t.float64)

    def repeat_rows(self, x, k):
        return x.repeat_interleave(k, dim=0)

    def tile_rows(self, x, k):
        return x.repeat(k, 1)

    def patch_table(self):
        return None


def _is_torch(x) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def _backend(g, x):
    """(ops, x as an integer array of that backend); torch tables are cached per device on the grammar."""
    C = compiled(g)
    if not _is_torch(x):
        return _Numpy(C), x
    cache = g.__dict__.setdefault("_inference_torch", {})
    key = str(x.device)
    if key not in cache:
        cache[key] = _Torch(C, x.device)
    return cache[key], x


# ------------------------------------------------------------------------------------------------ checks
def _check_x(B, x, mask=None):
    P = B.P
    if _is_torch(x):
        t = B.t
        bad_dtype = x.dtype == t.bool or x.dtype.is_floating_point or x.dtype.is_complex
        dtype_name = str(x.dtype)
    else:
        try:
            x = np.asarray(x)
        except (ValueError, TypeError) as err:
            raise ValueError(f"x is not a rectangular array: {err}") from None
        bad_dtype = x.dtype == bool or not np.issubdtype(x.dtype, np.integer)
        dtype_name = str(x.dtype)
    if x.ndim != 2 or x.shape[1] != P.d:
        raise ValueError(f"x has shape {tuple(x.shape)}, expected (n, d={P.d})")
    if bad_dtype:
        raise ValueError(f"x must hold integer tokens, got dtype {dtype_name}")
    if mask is not None:
        if _is_torch(x):
            mask = B.t.as_tensor(mask, device=x.device)
            if mask.dtype != B.t.bool:
                raise ValueError(f"mask must be a boolean array, got dtype {mask.dtype}")
            if tuple(mask.shape) == (P.d,):
                mask = mask.expand(x.shape)
            x = B.t.where(mask, B.t.zeros_like(x), x) if tuple(mask.shape) == tuple(x.shape) else x
        else:
            mask = np.asarray(mask)
            if mask.dtype != bool:
                raise ValueError(f"mask must be a boolean array, got dtype {mask.dtype}")
            if mask.shape == (P.d,):
                mask = np.broadcast_to(mask, x.shape)
            x = np.where(mask, 0, x) if mask.shape == x.shape else x
        if tuple(mask.shape) != tuple(x.shape):
            raise ValueError(f"mask has shape {tuple(mask.shape)}, expected {tuple(x.shape)} or ({P.d},)")
    if x.numel() if _is_torch(x) else x.size:
        if int(x.min()) < 0 or int(x.max()) >= P.V:
            raise ValueError(f"x has tokens outside the vocabulary [0, V={P.V})")
    return (x.long() if _is_torch(x) else x), mask


def _chunks(B, n: int, per_row: int):
    rows = max(1, B.chunk // max(1, per_row))
    for a in range(0, n, rows):
        yield slice(a, min(n, a + rows))


def _row_cost(P: TreePCFG, C: Compiled) -> int:
    return max(P.S**lv * len(C.pf[lv]) * (P.S + 1) for lv in range(P.L))


# ------------------------------------------------------------------------------------------ the passes
def _leaf_codes(B, x, mask):
    """Observed tokens with masked positions set to V (the row of ones of the evidence tables): (n, d)."""
    if mask is None:
        return x if _is_torch(x) else x.astype(np.int64)
    return B.where(mask, B.P.V, x) if not _is_torch(x) else B.t.where(mask, B.P.V, x)


def _normalise(B, b):
    """Divide each node's vector by its max; return it and the log of the max (-inf for all-zero nodes)."""
    z = b.max(axis=-1, keepdims=True) if not _is_torch(b) else b.amax(dim=-1, keepdim=True)
    return b / B.where(z > 0, z, 1.0), B.log(z[..., 0])


def _inside(B, codes, keep: bool = False):
    """Scaled inside vectors of every level (list indexed by level), log scale per sample, gathered factors.

    codes: leaf codes from :func:`_leaf_codes`. The leaf evidence is at least eps/V, so it is not rescaled;
    the bottom level reads it by row gathers from per-slot tables instead of materialising it.
    """
    P = B.P
    n = codes.shape[0]
    log_scale = B.zeros(n)
    betas, gathered = [None] * (P.L + 1), [None] * P.L
    if keep:
        betas[P.L] = B.rows(B.evidence, codes)
    beta = patch_codes = None
    for lv in range(P.L - 1, -1, -1):
        J, S = P.S**lv, P.S
        if B.dense[lv] and (keep or lv < P.L - 1 or B.patch_table() is None):
            if lv == P.L - 1:
                leaf = codes.reshape(n * J, S)
                kids = [B.rows(B.evidence, leaf[:, c]) for c in range(S)]
            else:
                if beta is None:  # the bottom level was the patch-table lookup (its log scale is counted)
                    beta = np.take(B.patch_table()[0], patch_codes, axis=0)
                b = beta.reshape(n * J, S, -1)
                kids = [b[:, c, :] for c in range(S)]
            outer = _outer(kids)
            beta, log_z = _normalise(B, (outer @ B.probs[lv].T).reshape(n, J, -1))
            log_scale = log_scale + log_z.sum(axis=1)
            betas[lv] = beta
            if keep:
                gathered[lv] = (kids, outer)
            continue
        if lv == P.L - 1:
            leaf = codes.reshape(n * J, S)
            table = None if keep else B.patch_table()
            if table is not None:  # inside-only: the bottom level is a lookup by the code of its leaves
                patch_codes = codes_of(leaf, P.V + 1).reshape(n, J)
                log_scale = log_scale + np.take(table[1], patch_codes).sum(axis=1)
                if lv == 0:
                    betas[0] = np.take(table[0], patch_codes, axis=0)
                continue
            gs = [B.rows(B.leaf_tables[c], leaf[:, c]) for c in range(S)]
        elif lv == P.L - 2 and patch_codes is not None:  # row gathers of precomputed child factors
            child = patch_codes.reshape(n * J, S)
            gs = [np.take(B.patch_table()[2][c], child[:, c], axis=0) for c in range(S)]
        else:
            b = beta.reshape(n * J, S, -1)
            gs = [B.cols(b[:, c, :], B.ch[lv][c]) for c in range(S)]
        prod = gs[0] if patch_codes is not None and lv == P.L - 2 else gs[0] * B.pf[lv]  # (table holds pf)
        for c in range(1, S):
            prod *= gs[c]
        inner = prod.reshape(n * J, -1, P.n_sym(lv)).sum(axis=1).reshape(n, J, -1)
        beta, log_z = _normalise(B, inner)
        log_scale = log_scale + log_z.sum(axis=1)
        betas[lv] = beta
        if keep:
            gathered[lv] = gs
    return betas, log_scale, gathered


def _outer(kids):
    """Outer product of the children's vectors (rows, k^S), first child most significant."""
    outer = kids[0]
    for kid in kids[1:]:
        outer = (outer[:, :, None] * kid[:, None, :]).reshape(len(outer), -1)
    return outer


def _dense_outside(B, a, lv, kids):
    """Outside vectors of the S children at a dense level: contract a @ probs with every other child's inside."""
    S, k = len(kids), kids[0].shape[-1]
    G = (a @ B.probs[lv]).reshape(-1, *(k,) * S)
    ax = "abcdefghijklmnopqrstuvwxy"[:S]
    return [B.einsum(f"z{ax}," + ",".join(f"z{ax[j]}" for j in range(S) if j != c) + f"->z{ax[c]}",
                     G, *[kids[j] for j in range(S) if j != c]) for c in range(S)]


def _outside(B, n: int, gathered, root=None) -> list:
    """Scaled outside vectors alpha[l] (n, S**l, n_sym[l]) from the gathered inside factors.

    root: the outside vector of the root, (n, 1, n_sym[0]); None is the prior."""
    P = B.P
    alphas = [B.zeros(n, 1, P.n_sym(0)) + (B.prior if root is None else root)]
    for lv in range(P.L):
        J, S = P.S**lv, P.S
        a = alphas[lv].reshape(n * J, -1)
        if B.dense[lv]:
            alphas.append(_normalise(B, B.stack(_dense_outside(B, a, lv, gathered[lv][0]), 1).reshape(n, J * S, -1))[0])
            continue
        W = B.cols(a, B.par[lv]) * B.pf[lv]
        gs = gathered[lv]
        out = []
        for c in range(S):
            w = W
            for c2 in range(S):
                if c2 != c:
                    w = w * gs[c2]
            out.append(w @ B.scatter[lv][c])
        alphas.append(_normalise(B, B.stack(out, 1).reshape(n, J * S, -1))[0])
    return alphas


def _posterior(B, alpha, beta):
    post = alpha * beta
    return B.div(post, post.sum(axis=-1, keepdims=True) if not _is_torch(post) else post.sum(-1, keepdim=True))


def _root(B, x):
    """Root posterior (n, n_classes) and log P(x) (n,) by the fast path or the inside pass."""
    P, C = B.P, B.C
    if P.noise == 0.0 and C.fast.ok and not _is_torch(x):
        root, logp = C.fast.run(x, P.prior)
        post = np.zeros((len(x), P.n_sym(0)))
        post[np.flatnonzero(root >= 0), root[root >= 0]] = 1.0
        post[root < 0] = np.nan
        return post, logp
    post, logp = B.empty(len(x), P.n_sym(0)), B.empty(len(x))
    for rows in _chunks(B, len(x), _row_cost(P, C)):
        betas, log_scale, _ = _inside(B, _leaf_codes(B, x[rows], None))
        joint = betas[0][:, 0, :] * B.prior
        tot = joint.sum(axis=1)
        post[rows] = B.div(joint, tot[:, None])
        logp[rows] = B.log(tot) + log_scale
    return post, logp


# ---------------------------------------------------------------------------------------- public API
def class_posterior(g, x):
    """P(class | x): (n, n_classes) float64; rows of inputs no derivation produces are NaN."""
    B, x = _backend(g, x)
    x, _ = _check_x(B, x)
    return _root(B, x)[0]


def log_likelihood(g, x):
    """log P(x) under g (uniform class prior, rule probabilities, token noise): (n,), -inf if impossible."""
    B, x = _backend(g, x)
    x, _ = _check_x(B, x)
    return _root(B, x)[1]


def joint_log_likelihood(g, x):
    """log P(x, class) (n, n_classes), one inside pass: log P(class | x) + log P(x) (-inf where impossible)."""
    B, x = _backend(g, x)
    x, _ = _check_x(B, x)
    post, logp = _root(B, x)
    return B.log(post) + logp[:, None]


def latent_posterior(g, x, level, mask=None):
    """P(symbol at each level-`level` node | unmasked tokens of x): (n, S**level, k), k symbols at that level.

    level 0 is the class, level L the clean input tokens (informative only under noise or masking).
    """
    B, x = _backend(g, x)
    level = check_int("level", level, 0, B.P.L)
    x, mask = _check_x(B, x, mask)
    out = B.empty(len(x), B.P.S**level, B.P.n_sym(level))
    for rows in _chunks(B, len(x), _row_cost(B.P, B.C) * 2):
        codes = _leaf_codes(B, x[rows], None if mask is None else mask[rows])
        betas, _, gathered = _inside(B, codes, keep=True)
        alphas = _outside(B, rows.stop - rows.start, gathered)
        out[rows] = _posterior(B, alphas[level], betas[level])
    return out


def _rowsum(a):
    return a.sum(-1, keepdim=True) if _is_torch(a) else a.sum(-1, keepdims=True)


def expected_rule_counts(g, x, y=None):
    """Expected rule counts given x (and the class, the root symbol, when y is given): (counts, loglik).

    counts[l] (n_sym[l], M), M rules per symbol as in the grammar's TreePCFG: the sum over samples and over
    level-l nodes of P(that node is symbol a rewritten by its rule k | x[, y]), the E-step of EM on the rule
    probabilities. loglik: sum over samples of log P(x) (y None) or of log P(x | class y). Same backend as x.
    """
    B, x = _backend(g, x)
    x, _ = _check_x(B, x)
    P = B.P
    n_c = P.n_sym(0)
    if y is not None:
        y = y if _is_torch(y) else np.asarray(y)
        if tuple(y.shape) != (len(x),) or (len(y) and (int(y.min()) < 0 or int(y.max()) >= n_c)):
            raise ValueError(f"y must hold {len(x)} class labels in [0, n_classes={n_c}), "
                             f"got shape {tuple(y.shape)}")
        y = y.long() if _is_torch(y) else y.astype(np.int64)
    flat = [B.zeros(len(B.pf[lv])) for lv in range(P.L)]
    loglik = 0.0
    for rows in _chunks(B, len(x), _row_cost(P, B.C) * 2):
        n = rows.stop - rows.start
        betas, log_scale, gathered = _inside(B, _leaf_codes(B, x[rows], None), keep=True)
        root = None if y is None else B.one_hot(y[rows], n_c)[:, None, :]
        alphas = _outside(B, n, gathered, root)
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
    _, _, gathered = _inside(B, _leaf_codes(B, x, mask), keep=True)
    alpha = _outside(B, len(x), gathered)[B.P.L]  # a masked leaf's evidence is 1: its posterior is alpha
    return _posterior(B, alpha, 1.0) @ B.emission


def token_posterior(g, x, mask):
    """P(x_i = a | the tokens where mask is False): (n, d, V).

    Masked positions get the exact posterior predictive (through the noise channel when there is noise);
    unmasked positions are observed, so their row is one-hot at x_i. Tokens under the mask are ignored.
    """
    B, x = _backend(g, x)
    if mask is None:
        raise ValueError("mask must be a boolean array (n, d) or (d,), True where the token is hidden")
    x, mask = _check_x(B, x, mask)
    out = B.empty(len(x), B.P.d, B.P.V)
    for rows in _chunks(B, len(x), _row_cost(B.P, B.C) * 2):
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
    B, x = _backend(g, x)
    x, _ = _check_x(B, x)
    P = B.P
    out = B.empty(len(x), P.d, P.V)
    for rows in _chunks(B, len(x), _row_cost(P, B.C) * 2 * P.d):
        out[rows] = _prefix_predictive(B, x[rows])
    return out


def _prefix_predictive(B, x):
    P = B.P
    n, d, S = len(x), P.d, P.S
    betas, _, _ = _inside(B, _leaf_codes(B, x, None), keep=True)
    t = np.arange(d)
    alpha = B.zeros(n, d, P.n_sym(0)) + B.prior  # outside vector of the path node of every (sample, t)
    for lv in range(P.L):
        node = t // S ** (P.L - lv)  # the path node of leaf t at level lv
        slot = (t // S ** (P.L - lv - 1)) % S  # which of its children is on the path
        nxt = B.empty(n, d, P.n_sym(lv + 1))
        for c in range(S):  # the prefixes whose path goes through child c
            T = np.flatnonzero(slot == c)
            k = len(T)
            W = B.cols(alpha[:, _as(B, T)].reshape(n * k, -1), B.par[lv]) * B.pf[lv]
            for c2 in range(c):  # siblings left of the path are observed; those right of it contribute 1
                sib = betas[lv + 1][:, _as(B, node[T] * S + c2), :].reshape(n * k, -1)
                W = W * B.cols(sib, B.ch[lv][c2])
            nxt[:, _as(B, T)] = (W @ B.scatter[lv][c]).reshape(n, k, -1)
        alpha = _normalise(B, nxt)[0]
    return _posterior(B, alpha, 1.0) @ B.emission


def _as(B, a: np.ndarray):
    """A numpy constant in the backend of B."""
    return B.t.as_tensor(a, device=B.device) if isinstance(B, _Torch) else a


__all__ = ["TreePCFG", "class_posterior", "expected_rule_counts", "joint_log_likelihood", "latent_posterior",
           "log_likelihood", "next_token", "token_posterior", "tree_pcfg"]
