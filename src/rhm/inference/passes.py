"""The inside and outside passes over the levels of the tree (one vectorised gather/product/sum per level)."""

from __future__ import annotations

import numpy as np

from .. import patches
from .backend import chunks, is_torch, row_cost


def leaf_codes(B, x, mask):
    """Observed tokens with masked positions set to V (the row of ones of the evidence tables): (n, d)."""
    if mask is None:
        return x if is_torch(x) else x.astype(np.int64)
    return B.where(mask, B.P.V, x) if not is_torch(x) else B.t.where(mask, B.P.V, x)


def normalise(B, b):
    """Divide each node's vector by its max; return it and the log of the max (-inf for all-zero nodes)."""
    z = b.max(axis=-1, keepdims=True) if not is_torch(b) else b.amax(dim=-1, keepdim=True)
    return b / B.where(z > 0, z, 1.0), B.log(z[..., 0])


def inside(B, codes, keep: bool = False):
    """Scaled inside vectors of every level (list indexed by level), log scale per sample, gathered factors.

    codes: leaf codes from :func:`leaf_codes`. The leaf evidence is at least eps/V, so it is not rescaled;
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
            beta, log_z = normalise(B, (outer @ B.probs[lv].T).reshape(n, J, -1))
            log_scale = log_scale + log_z.sum(axis=1)
            betas[lv] = beta
            if keep:
                gathered[lv] = (kids, outer)
            continue
        if lv == P.L - 1:
            leaf = codes.reshape(n * J, S)
            table = None if keep else B.patch_table()
            if table is not None:  # inside-only: the bottom level is a lookup by the code of its leaves
                patch_codes = patches.codes(leaf, P.V + 1).reshape(n, J)
                log_scale = log_scale + np.take(table[1], patch_codes).sum(axis=1)
                if lv == 0:
                    betas[0] = np.take(table[0], patch_codes, axis=0)
                continue
            gs = [B.rows(B.leaf_tables[c], leaf[:, c]) for c in range(S)]
        elif lv == P.L - 2 and patch_codes is not None:  # row gathers of precomputed child factors
            child = patch_codes.reshape(n * J, S)
            gs = [np.take(B.patch_table()[2][c], child[:, c], axis=0) for c in range(S)]
        else:
            # the S children's vectors side by side, child c's columns offset by c * n_sym: a column gather from a
            # contiguous array (numpy's take from the strided view b[:, c, :] is slower)
            b, k = beta.reshape(n * J, -1), P.n_sym(lv + 1)
            gs = [B.cols(b, B.ch[lv][c] + c * k) for c in range(S)]
        prod = gs[0] if patch_codes is not None and lv == P.L - 2 else gs[0] * B.pf[lv]  # (table holds pf)
        for c in range(1, S):
            prod *= gs[c]
        rules = prod.reshape(n * J, -1, P.n_sym(lv))
        # numpy's sum over the middle axis is ~2x slower than einsum's loop for these shapes (same sum up to the
        # order of the additions)
        inner = (rules.sum(axis=1) if is_torch(rules) else np.einsum("nka->na", rules)).reshape(n, J, -1)
        beta, log_z = normalise(B, inner)
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


def outside(B, n: int, gathered, root=None) -> list:
    """Scaled outside vectors alpha[l] (n, S**l, n_sym[l]) from the gathered inside factors.

    root: the outside vector of the root, (n, 1, n_sym[0]); None is the prior."""
    P = B.P
    alphas = [B.zeros(n, 1, P.n_sym(0)) + (B.prior if root is None else root)]
    for lv in range(P.L):
        J, S = P.S**lv, P.S
        a = alphas[lv].reshape(n * J, -1)
        if B.dense[lv]:
            alphas.append(normalise(B, B.stack(_dense_outside(B, a, lv, gathered[lv][0]), 1).reshape(n, J * S, -1))[0])
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
        alphas.append(normalise(B, B.stack(out, 1).reshape(n, J * S, -1))[0])
    return alphas


def posterior(B, alpha, beta):
    post = alpha * beta
    return B.div(post, post.sum(axis=-1, keepdims=True) if not is_torch(post) else post.sum(-1, keepdim=True))


def root_posterior(B, x):
    """Root posterior (n, n_classes) and log P(x) (n,) by the fast path or the inside pass."""
    P, C = B.P, B.C
    if P.noise == 0.0 and C.fast.ok and not is_torch(x):
        root, logp = C.fast.run(x, P.prior)
        post = np.zeros((len(x), P.n_sym(0)))
        post[np.flatnonzero(root >= 0), root[root >= 0]] = 1.0
        post[root < 0] = np.nan
        return post, logp
    post, logp = B.empty(len(x), P.n_sym(0)), B.empty(len(x))
    for rows in chunks(B, len(x), row_cost(P, C)):
        betas, log_scale, _ = inside(B, leaf_codes(B, x[rows], None))
        joint = betas[0][:, 0, :] * B.prior
        tot = joint.sum(axis=1)
        post[rows] = B.div(joint, tot[:, None])
        logp[rows] = B.log(tot) + log_scale
    return post, logp
