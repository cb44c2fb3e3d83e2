"""Exact inference on the RHM tree: inside-outside (belief propagation) for every variant.

Every grammar is seen as a fixed-shape tree PCFG (:class:`TreePCFG`): level l has ``n_sym[l]`` symbols, each
with M rules of S children and probabilities ``probs[l]``; the root has a prior; each leaf emits the observed
token through the noise channel P(x_i = a | clean b) = (1 - eps)[a = b] + eps/V. Masked positions are missing
tokens (their emission is 1). Levels: 0 is the root, L the input.

The passes loop over levels only; every level is one vectorised gather/product/sum over (samples x nodes x
rules). Each node's inside vector is rescaled by its maximum and the log scales are summed, so nothing
underflows at any depth. Inputs of probability 0 (no derivation produces them) get log P(x) = -inf and NaN
posteriors. Clean, unmasked inputs of an unambiguous grammar take a parse-like fast path (one table lookup per
node) for ``class_posterior`` and ``log_likelihood``.

    class_posterior(g, x)          (n, n_classes)       P(class | x)
    log_likelihood(g, x)           (n,)                 log P(x)
    token_posterior(g, x, mask)    (n, d, V)            P(x_i = a | tokens where mask is False)
    next_token(g, x)               (n, d, V)            P(x_t = a | x_<t); t = 0 is the marginal
    latent_posterior(g, x, level)  (n, nodes, k)        P(symbol of each level-`level` node | x)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .validation import check_int

# Rows of a chunk are chosen so that the widest per-level temporary stays around this many float64 entries.
# (Cache-sized chunks are ~3x faster than large ones; the size changes no result.)
_CHUNK_ENTRIES = 1 << 19
_DENSE_CODES_MAX = 1 << 22
_PATCH_TABLE_MAX = 1 << 21


@dataclass(frozen=True)
class TreePCFG:
    """What inference needs from a grammar: per-level rule tables, probabilities, root prior, noise.

    children[l]: (n_sym[l], M, S) ints, the level-(l+1) symbols of each rule; probs[l]: (n_sym[l], M), rows
    sum to 1; prior: (n_sym[0],); V: leaf/observed vocabulary; noise: the token noise eps.
    """

    children: tuple
    probs: tuple
    prior: np.ndarray
    V: int
    noise: float

    @property
    def L(self) -> int:
        return len(self.children)

    @property
    def S(self) -> int:
        return self.children[0].shape[2]

    @property
    def d(self) -> int:
        return self.S**self.L

    def n_sym(self, level: int) -> int:
        return self.prior.shape[0] if level == 0 else (self.V if level == self.L else self.probs[level].shape[0])


class _Compiled:
    """Per-level flat tables of a TreePCFG: children per slot, probabilities, parents, scatter matrices."""

    def __init__(self, P: TreePCFG):
        self.P = P
        self.ch, self.pf, self.par, self.scatter = [], [], [], []
        for lv in range(P.L):
            table = np.asarray(P.children[lv], dtype=np.int64)
            n_sym, M, S = table.shape
            n_child = P.n_sym(lv + 1)
            # rule-major flat order (index k * n_sym + a): the sum over rules is a sum of M contiguous blocks
            flat = table.transpose(1, 0, 2).reshape(M * n_sym, S)
            self.ch.append([np.ascontiguousarray(flat[:, c]) for c in range(S)])
            self.pf.append(np.asarray(P.probs[lv], dtype=np.float64).T.reshape(-1))
            self.par.append(np.tile(np.arange(n_sym), M))
            self.scatter.append([np.eye(n_child)[flat[:, c]] for c in range(S)])  # (n_sym*M, n_child)
        self.fast = _FastTables(P)
        eps, V = P.noise, P.V
        self.emission = (1.0 - eps) * np.eye(V) + eps / V  # [clean b, observed a]
        # leaf evidence by observed token, with a last row of ones for a masked (missing) token: (V+1, V)
        self.evidence = np.vstack([self.emission.T, np.ones(V)])
        # bottom level: the evidence of slot c's child of every rule, by observed token: (V+1, M*n_sym)
        self.leaf_tables = [np.ascontiguousarray(self.evidence[:, ch]) for ch in self.ch[P.L - 1]]
        self._patch_table = None

    def patch_table(self):
        """Inside vector of a bottom-level node for every (V+1)**S code of its observed/masked leaves.

        Shape ((V+1)**S, n_sym[L-1]); None when that table would exceed _PATCH_TABLE_MAX entries. With it, the
        bottom level of an inside-only pass is one row gather per node.
        """
        P = self.P
        if self._patch_table is None:
            size = (P.V + 1) ** P.S
            if size * P.n_sym(P.L - 1) > _PATCH_TABLE_MAX:
                self._patch_table = False
            else:
                codes = np.stack(np.unravel_index(np.arange(size), (P.V + 1,) * P.S), axis=1)
                gs = [np.take(self.leaf_tables[c], codes[:, c], axis=0) for c in range(P.S)]
                prod = gs[0] * self.pf[P.L - 1]
                for c in range(1, P.S):
                    prod *= gs[c]
                table = prod.reshape(size, -1, P.n_sym(P.L - 1)).sum(axis=1)
                beta, log_z = _normalise(table)
                # one level up, the gathered factor of child slot c for every code of that child's leaves
                above = [np.ascontiguousarray(beta[:, ch]) for ch in self.ch[P.L - 2]] if P.L >= 2 else None
                self._patch_table = (beta, log_z, above)
        return self._patch_table if self._patch_table is not False else None


class _FastTables:
    """Clean-input lookup: the code of an S-tuple -> (parent, log of its total rule probability)."""

    def __init__(self, P: TreePCFG):
        self.ok = True
        self.levels = []
        for lv in range(P.L):
            table = np.asarray(P.children[lv], dtype=np.int64)
            n_sym, M, S = table.shape
            base = P.n_sym(lv + 1)
            if float(base) ** S >= 2**62:
                self.ok = False
                return
            codes = _codes(table.reshape(-1, S), base)
            parents = np.repeat(np.arange(n_sym), M)
            prob = np.asarray(P.probs[lv], dtype=np.float64).reshape(-1)
            uniq, inv = np.unique(codes, return_inverse=True)
            owner = np.full(len(uniq), -1)
            owner[inv] = parents
            if (np.bincount(inv, weights=(parents != owner[inv]).astype(float)) > 0).any():
                self.ok = False  # ambiguous grammar: a tuple with two parents
                return
            total = np.bincount(inv, weights=prob, minlength=len(uniq))
            with np.errstate(divide="ignore"):
                logp = np.log(total)
            if base**S <= _DENSE_CODES_MAX:
                par = np.full(base**S, -1, dtype=np.int64)
                lp = np.full(base**S, -np.inf)
                par[uniq], lp[uniq] = owner, logp
                self.levels.append(("dense", base, S, par, lp))
            else:
                self.levels.append(("sorted", base, S, uniq, (owner, logp)))

    def run(self, x: np.ndarray, prior: np.ndarray):
        """Root symbol (-1 if none) and log P(x) of clean inputs x (n, d), by one bottom-up pass."""
        n = len(x)
        sym = x.astype(np.int64)
        logp = np.zeros(n)
        bad = np.zeros(n, dtype=bool)
        for lv in range(len(self.levels) - 1, -1, -1):
            mode, base, S, a, b = self.levels[lv]
            code = _codes(np.maximum(sym, 0).reshape(n, -1, S), base)
            if mode == "dense":
                par, lp = a[code], b[code]
            else:
                pos = np.minimum(np.searchsorted(a, code), len(a) - 1)
                hit = a[pos] == code
                par = np.where(hit, b[0][pos], -1)
                lp = np.where(hit, b[1][pos], -np.inf)
            bad |= (sym.reshape(n, -1, S) < 0).any(axis=(1, 2)) | (par < 0).any(axis=1)
            logp += np.where(bad, 0.0, lp.sum(axis=1))
            sym = par
        root = np.where(bad, -1, sym[:, 0])
        with np.errstate(divide="ignore"):
            logp = np.where(bad, -np.inf, logp + np.log(prior[np.maximum(root, 0)]))
        return root, logp


def _codes(tuples: np.ndarray, base: int) -> np.ndarray:
    code = tuples[..., 0].astype(np.int64)
    for c in range(1, tuples.shape[-1]):
        code = code * base + tuples[..., c]
    return code


def tree_pcfg(g) -> TreePCFG:
    """The TreePCFG of grammar g (an RHM, or any object with a ``tree_pcfg()`` method such as SparseRHM)."""
    if hasattr(g, "tree_pcfg"):
        return g.tree_pcfg()
    return TreePCFG(children=tuple(g.rules), probs=tuple(g.rule_probs),
                    prior=np.full(g.n_classes, 1.0 / g.n_classes), V=g.v, noise=float(g.noise))


def _compiled(g) -> _Compiled:
    cache = g.__dict__.get("_inference_tables")
    if cache is None:
        cache = _Compiled(tree_pcfg(g))
        g.__dict__["_inference_tables"] = cache
    return cache


# ------------------------------------------------------------------------------------------------ checks
def _check_x(C: _Compiled, x, mask=None) -> tuple[np.ndarray, np.ndarray | None]:
    P = C.P
    try:
        x = np.asarray(x)
    except (ValueError, TypeError) as err:
        raise ValueError(f"x is not a rectangular array: {err}") from None
    if x.ndim != 2 or x.shape[1] != P.d:
        raise ValueError(f"x has shape {x.shape}, expected (n, d={P.d})")
    if x.dtype == bool or not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"x must hold integer tokens, got dtype {x.dtype}")
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype != bool:
            raise ValueError(f"mask must be a boolean array, got dtype {mask.dtype}")
        if mask.shape == (P.d,):
            mask = np.broadcast_to(mask, x.shape)
        if mask.shape != x.shape:
            raise ValueError(f"mask has shape {mask.shape}, expected {x.shape} or ({P.d},)")
        x = np.where(mask, 0, x)  # masked tokens are missing: any value is accepted there
    if x.size and (x.min() < 0 or x.max() >= P.V):
        raise ValueError(f"x has tokens outside the vocabulary [0, V={P.V})")
    return x, mask


def _chunks(n: int, per_row: int):
    rows = max(1, _CHUNK_ENTRIES // max(1, per_row))
    for a in range(0, n, rows):
        yield slice(a, min(n, a + rows))


def _row_cost(C: _Compiled) -> int:
    P = C.P
    return max(P.S**lv * len(C.pf[lv]) * (P.S + 1) for lv in range(P.L))


# ------------------------------------------------------------------------------------------ the passes
def _leaf_codes(C: _Compiled, x: np.ndarray, mask) -> np.ndarray:
    """Observed tokens with masked positions set to V (the row of ones of the evidence tables): (n, d)."""
    return x.astype(np.int64) if mask is None else np.where(mask, C.P.V, x)


def _normalise(b: np.ndarray):
    """Divide each node's vector by its max; return it and the log of the max (-inf for all-zero nodes)."""
    z = b.max(axis=-1, keepdims=True)
    with np.errstate(divide="ignore"):
        log_z = np.log(z[..., 0])
    return b / np.where(z > 0, z, 1.0), log_z


def _inside(C: _Compiled, codes: np.ndarray, keep: bool = False):
    """Scaled inside vectors of every level (list indexed by level), log scale per sample, gathered factors.

    codes: leaf codes from :func:`_leaf_codes`. The leaf evidence is at least eps/V, so it is not rescaled;
    the bottom level reads it by row gathers from per-slot tables instead of materialising it.
    """
    P = C.P
    n = codes.shape[0]
    log_scale = np.zeros(n)
    betas, gathered = [None] * (P.L + 1), [None] * P.L
    if keep:
        betas[P.L] = np.take(C.evidence, codes, axis=0)
    beta = patch_codes = None
    for lv in range(P.L - 1, -1, -1):
        J, S = P.S**lv, P.S
        if lv == P.L - 1:
            leaf = codes.reshape(n * J, S)
            table = None if keep else C.patch_table()
            if table is not None:  # inside-only: the bottom level is a lookup by the code of its leaves
                patch_codes = _codes(leaf, P.V + 1).reshape(n, J)
                log_scale = log_scale + np.take(table[1], patch_codes).sum(axis=1)
                if lv == 0:
                    betas[0] = np.take(table[0], patch_codes, axis=0)
                continue
            gs = [np.take(C.leaf_tables[c], leaf[:, c], axis=0) for c in range(S)]
        elif lv == P.L - 2 and patch_codes is not None:  # row gathers of precomputed child factors
            child = patch_codes.reshape(n * J, S)
            gs = [np.take(C.patch_table()[2][c], child[:, c], axis=0) for c in range(S)]
        else:
            b = beta.reshape(n * J, S, -1)
            gs = [np.take(b[:, c, :], C.ch[lv][c], axis=1) for c in range(S)]
        prod = gs[0] * C.pf[lv]
        for c in range(1, S):
            prod *= gs[c]
        inner = prod.reshape(n * J, -1, P.n_sym(lv)).sum(axis=1).reshape(n, J, -1)
        beta, log_z = _normalise(inner)
        log_scale = log_scale + log_z.sum(axis=1)
        betas[lv] = beta
        if keep:
            gathered[lv] = gs
    return betas, log_scale, gathered


def _outside(C: _Compiled, n: int, gathered) -> list:
    """Scaled outside vectors alpha[l] (n, S**l, n_sym[l]) from the gathered inside factors."""
    P = C.P
    alpha = np.broadcast_to(P.prior, (n, 1, P.n_sym(0))).copy()
    alphas = [alpha]
    for lv in range(P.L):
        J, S = P.S**lv, P.S
        a = alphas[lv].reshape(n * J, -1)
        W = np.take(a, C.par[lv], axis=1) * C.pf[lv]
        gs = gathered[lv]
        out = []
        for c in range(S):
            w = W
            for c2 in range(S):
                if c2 != c:
                    w = w * gs[c2]
            out.append(w @ C.scatter[lv][c])
        nxt = np.stack(out, axis=1).reshape(n, J * S, -1)
        alphas.append(_normalise(nxt)[0])
    return alphas


def _posterior(alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    post = alpha * beta
    tot = post.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return post / tot


def _root(C: _Compiled, x: np.ndarray):
    """Root posterior (n, n_classes) and log P(x) (n,) by the fast path or the inside pass."""
    P = C.P
    if P.noise == 0.0 and C.fast.ok:
        root, logp = C.fast.run(x, P.prior)
        post = np.zeros((len(x), P.n_sym(0)))
        post[np.flatnonzero(root >= 0), root[root >= 0]] = 1.0
        post[root < 0] = np.nan
        return post, logp
    post = np.empty((len(x), P.n_sym(0)))
    logp = np.empty(len(x))
    for rows in _chunks(len(x), _row_cost(C)):
        betas, log_scale, _ = _inside(C, _leaf_codes(C, x[rows], None))
        joint = betas[0][:, 0, :] * P.prior
        tot = joint.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            post[rows] = joint / tot[:, None]
            logp[rows] = np.log(tot) + log_scale
    return post, logp


# ---------------------------------------------------------------------------------------- public API
def class_posterior(g, x) -> np.ndarray:
    """P(class | x): (n, n_classes) float64; rows of inputs no derivation produces are NaN."""
    C = _compiled(g)
    x, _ = _check_x(C, x)
    return _root(C, x)[0]


def log_likelihood(g, x) -> np.ndarray:
    """log P(x) under g (uniform class prior, rule probabilities, token noise): (n,), -inf if impossible."""
    C = _compiled(g)
    x, _ = _check_x(C, x)
    return _root(C, x)[1]


def latent_posterior(g, x, level, mask=None) -> np.ndarray:
    """P(symbol at each level-`level` node | unmasked tokens of x): (n, S**level, k), k symbols at that level.

    level 0 is the class, level L the clean input tokens (informative only under noise or masking).
    """
    C = _compiled(g)
    level = check_int("level", level, 0, C.P.L)
    x, mask = _check_x(C, x, mask)
    out = np.empty((len(x), C.P.S**level, C.P.n_sym(level)))
    for rows in _chunks(len(x), _row_cost(C) * 2):
        codes = _leaf_codes(C, x[rows], None if mask is None else mask[rows])
        betas, _, gathered = _inside(C, codes, keep=True)
        alphas = _outside(C, rows.stop - rows.start, gathered)
        out[rows] = _posterior(alphas[level], betas[level])
    return out


def _predictive(C: _Compiled, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """P(observed token at each position | unmasked tokens): (n, d, V) for the masked positions."""
    betas, _, gathered = _inside(C, _leaf_codes(C, x, mask), keep=True)
    alphas = _outside(C, len(x), gathered)
    clean = _posterior(alphas[C.P.L], np.ones_like(betas[C.P.L]))  # a masked leaf's evidence is 1
    return clean @ C.emission


def token_posterior(g, x, mask) -> np.ndarray:
    """P(x_i = a | the tokens where mask is False): (n, d, V).

    Masked positions get the exact posterior predictive (through the noise channel when there is noise);
    unmasked positions are observed, so their row is one-hot at x_i. Tokens under the mask are ignored.
    """
    C = _compiled(g)
    if mask is None:
        raise ValueError("mask must be a boolean array (n, d) or (d,), True where the token is hidden")
    x, mask = _check_x(C, x, mask)
    out = np.empty((len(x), C.P.d, C.P.V))
    for rows in _chunks(len(x), _row_cost(C) * 2):
        pred = _predictive(C, x[rows], mask[rows])
        obs = np.eye(C.P.V)[x[rows]]
        out[rows] = np.where(mask[rows][..., None], pred, obs)
    return out


def next_token(g, x) -> np.ndarray:
    """P(x_t = a | x_<t) for every t: (n, d, V); row t = 0 is the marginal of the first token.

    Row t is the predictive of position t with positions >= t marginalised; all d prefixes of a sample are
    batched into one inside-outside pass (cost d passes, no Python loop over t or samples).
    """
    C = _compiled(g)
    x, _ = _check_x(C, x)
    d = C.P.d
    prefix_mask = np.arange(d)[None, :] >= np.arange(d)[:, None]  # row t hides positions >= t
    out = np.empty((len(x), d, C.P.V))
    for rows in _chunks(len(x), _row_cost(C) * 2 * d):
        k = rows.stop - rows.start
        xr = np.repeat(x[rows], d, axis=0)
        mr = np.tile(prefix_mask, (k, 1))
        pred = _predictive(C, xr, mr).reshape(k, d, d, -1)
        out[rows] = pred[:, np.arange(d), np.arange(d), :]
    return out


__all__ = ["TreePCFG", "class_posterior", "latent_posterior", "log_likelihood", "next_token",
           "token_posterior", "tree_pcfg"]
