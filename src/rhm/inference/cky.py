"""Exact inference for the varying-tree RHM (:class:`rhm.VaryingRHM`): an inside pass over all segmentations.

The string's tree is unknown: every node rewrites into 2 or 3 children and every leaf is at depth L, so a node of
height h (h = 0 for the tokens, L for the root) spans between 2**h and 3**h tokens. The chart holds, for each
height h, start i, span length l in [2**h, 3**h] and symbol a, the inside probability

    C_h[i, l, a] = P(a derives x[i : i + l] with every leaf at depth h below a),

C_0[i, 1, a] = [x_i = a] (0 on padding), and with w2 = p2 / m2 and w3 = (1 - p2) / m3 the rule weights,

    C_{h+1}[i, l, a] = w2 sum_{(b, c) in R2(a)} sum_{l1} C_h[i, l1, b] C_h[i + l1, l - l1, c]
                     + w3 sum_{(b, c, d) in R3(a)} sum_{l1, l2} C_h[i, l1, b] C_h[i + l1, l2, c] C_h[i + l1 + l2, ., d].

The ternary sum is done in two steps (pairs (b, c) summed over their split first, then the third child), so the
cost per height is O(K'_h n D v**3 n_par + K_h**2 n D v**2) with K_h = 3**h - 2**h + 1 lengths. Everything is
vectorised over samples x starts x symbols; the loops run over heights and over span lengths only. The root's
span is (0, length); P(x | root = a) = C_L[0, length, a].

Scaling (nothing underflows): after each height every sample's chart is multiplied by exp(-t l) on spans of
length l, with t the largest per-token log inside value of that sample; products of children then carry
exp(-t (l1 + l2 (+ l3))) = exp(-t l), so the scale is consistent, and log P(x | a) = log C_L + length * sum(t).

With weights 1 instead of w2, w3 the same pass counts the derivations (parses) of a string:
:func:`num_parses`. The chart's memory is estimated before allocating (rows are chunked; one row too large for
the available memory raises :class:`rhm.limits.ResourceLimitError`).
"""

from __future__ import annotations

import numpy as np

from .. import limits

__all__ = ["inside_root", "class_posterior", "log_likelihood", "joint_log_likelihood", "num_parses", "check_x",
           "chart_bytes"]

# rows per chunk are chosen so that the chart and its widest temporary stay around this many bytes
_CHUNK_BYTES = 128 * 2**20


def _weights(g, level: int, count: bool):
    """Dense rule weights of level `level`: W2 (v*v, n_par), W3 (v*v, v, n_par)."""
    v, n_par = g.v, g.symbols(level)
    w2 = 1.0 if count else g.p2 / g.m2
    w3 = 1.0 if count else (1.0 - g.p2) / g.m3
    W2 = np.zeros((v * v, n_par))
    b = g.binary_rules[level]
    W2[b[..., 0] * v + b[..., 1], np.arange(n_par)[:, None]] = w2
    W3 = np.zeros((v * v, v, n_par))
    t = g.ternary_rules[level]
    W3[t[..., 0] * v + t[..., 1], t[..., 2], np.arange(n_par)[:, None]] = w3
    return W2, W3


def _lengths(h: int) -> tuple[int, int]:
    return 2**h, 3**h


def chart_bytes(g, rows: int) -> int:
    """Estimated peak bytes of the inside pass on `rows` strings (the charts of two heights and the ternary
    temporary)."""
    D = 3**g.L
    ext = 2 * D
    v = max(g.v, g.n_classes)
    top = max(3**h - 2**h + 1 for h in range(g.L))
    pair = max(2 * 3**h - 2 * 2**h + 1 for h in range(g.L))
    per_row = 8 * (2 * ext * top * v + D * pair * v * v + D * v**2 * max(g.n_classes, g.v))
    return rows * per_row


def check_x(g, x) -> tuple[np.ndarray, np.ndarray]:
    """x (n, w <= 3**L) integer tokens in [0, v], pad_token = v only as right padding: (x (n, 3**L), lengths)."""
    if hasattr(x, "detach"):  # a torch tensor: this pass runs in numpy
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or not (np.issubdtype(x.dtype, np.integer) or x.size == 0):
        raise ValueError(f"x must be an (n, width <= {3**g.L}) integer array of tokens, got shape {x.shape} "
                         f"dtype {x.dtype}")
    n, w = x.shape
    if w > 3**g.L:
        raise ValueError(f"x has width {w} > 3**L = {3**g.L}, the longest string of this VaryingRHM")
    x = x.astype(np.int64)
    if x.size and (x.min() < 0 or x.max() > g.pad_token):
        raise ValueError(f"x holds tokens outside [0, {g.v}] (tokens 0..{g.v - 1}, {g.pad_token} = padding)")
    full = np.full((n, 3**g.L), g.pad_token, dtype=np.int64)
    full[:, :w] = x
    real = full != g.pad_token
    lengths = real.sum(1)
    if (real != (np.arange(3**g.L)[None, :] < lengths[:, None])).any():
        raise ValueError(f"x has padding (token {g.pad_token}) before a real token: pad only on the right")
    return full, lengths


def _inside_rows(g, x: np.ndarray, lengths: np.ndarray, count: bool) -> tuple[np.ndarray, np.ndarray]:
    """(inside values at the root (n, n_classes), scaled, and the log scale per token (n,))."""
    n = x.shape[0]
    L, v = g.L, g.v
    D = 3**L
    ext = 2 * D  # starts past the string read zeros
    # height 0: one-hot tokens, padding 0 (C[n, start, length index, symbol])
    C = np.zeros((n, ext, 1, v))
    real = x != g.pad_token
    r, c = np.nonzero(real)
    C[r, c, 0, x[r, c]] = 1.0
    logscale = np.zeros(n)
    rows = np.arange(n)
    for h in range(L):
        level = L - 1 - h  # the parents' level
        W2, W3 = _weights(g, level, count)
        n_par = W2.shape[1]
        lo, hi = _lengths(h)
        plo, phi = _lengths(h + 1)
        top = h == L - 1
        # starts that can begin a span of a string in this chunk (the root: 0 only)
        starts = 1 if top else max(1, min(D, int(lengths.max(initial=0)) - plo + 1))
        # pairs (b, c) of adjacent child spans, summed over their split, by total length: U[n, i, l12 - 2 lo, b*v+c]
        U = np.zeros((n, starts, 2 * (hi - lo) + 1, v * v))
        for l1 in range(lo, hi + 1):
            X = C[:, :starts, l1 - lo, :]
            for l2 in range(lo, hi + 1):
                Y = C[:, l1: l1 + starts, l2 - lo, :]
                U[:, :, l1 + l2 - 2 * lo] += (X[..., :, None] * Y[..., None, :]).reshape(n, starts, v * v)
        W3f = W3.reshape(v * v, v * n_par)
        if top:  # only the span (0, length) of each row: the last child's length is length - l12
            root = np.zeros((n, n_par))
            k = lengths - 2 * lo
            ok = (k >= 0) & (k <= 2 * (hi - lo))
            root += (U[rows, 0, np.clip(k, 0, 2 * (hi - lo))] * ok[:, None]) @ W2
            for l12 in range(2 * lo, 2 * hi + 1):
                V = (U[:, 0, l12 - 2 * lo] @ W3f).reshape(n, v, n_par)
                l3 = lengths - l12
                ok = (l3 >= lo) & (l3 <= hi)
                Z = C[rows, l12, np.clip(l3 - lo, 0, hi - lo)] * ok[:, None]
                root += np.einsum("ndp,nd->np", V, Z)
            out = root[:, None, None, :]  # one start, one length (each row's own)
            span = lengths.astype(np.float64)[:, None]
        else:
            out = np.zeros((n, ext, phi - plo + 1, n_par))
            # binary parents: the pairs through W2
            for l12 in range(2 * lo, 2 * hi + 1):
                out[:, :starts, l12 - plo] += U[:, :, l12 - 2 * lo] @ W2
            # ternary parents: pairs through W3 (-> (third child, parent)), then the third child
            for l12 in range(2 * lo, 2 * hi + 1):
                V = (U[:, :, l12 - 2 * lo] @ W3f).reshape(n, starts, v, n_par)
                for l3 in range(lo, hi + 1):
                    Z = C[:, l12: l12 + starts, l3 - lo, :]
                    out[:, :starts, l12 + l3 - plo] += np.einsum("nidp,nid->nip", V, Z)
            span = np.broadcast_to(np.arange(plo, phi + 1, dtype=np.float64), (n, phi - plo + 1))
        # rescale per sample by exp(-t * span length) (see the module docstring)
        with np.errstate(divide="ignore"):
            rate = np.log(out.max(axis=3)) / span[:, None, :]
        t = rate.reshape(n, -1).max(1)
        t = np.where(np.isfinite(t), t, 0.0)
        out *= np.exp(-t[:, None] * span)[:, None, :, None]
        logscale += t
        C = out
    root = C[:, 0, 0, :].copy()
    root[(lengths < 2**L) | (lengths > 3**L)] = 0.0
    return root, logscale


def inside_root(g, x, count: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """log P(x | root = a) (n, n_classes) (-inf where a cannot derive x), or with count=True the log number of
    derivations of x from a; and the lengths (n,)."""
    x, lengths = check_x(g, x)
    n = x.shape[0]
    one = chart_bytes(g, 1)
    limits.check_bytes("x", f"the CKY chart of one string of this VaryingRHM (L={g.L}, v={g.v})", one)
    step = max(1, _CHUNK_BYTES // one)
    out = np.empty((n, g.n_classes))
    for a in range(0, n, step):  # chunks of rows bound the memory (each chunk is vectorised)
        root, logscale = _inside_rows(g, x[a: a + step], lengths[a: a + step], count)
        with np.errstate(divide="ignore"):
            out[a: a + step] = np.log(root) + (lengths[a: a + step] * logscale)[:, None]
    return out, lengths


def joint_log_likelihood(g, x) -> np.ndarray:
    """log P(x, class) (n, n_classes) with the uniform class prior."""
    lp, _ = inside_root(g, x)
    return lp - np.log(g.n_classes)


def log_likelihood(g, x) -> np.ndarray:
    """log P(x) (n,), summed over classes, trees and segmentations; -inf if no derivation gives x."""
    j = joint_log_likelihood(g, x)
    top = j.max(1)
    safe = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.where(np.isfinite(top), safe + np.log(np.exp(j - safe[:, None]).sum(1)), -np.inf)


def class_posterior(g, x) -> np.ndarray:
    """P(class | x) (n, n_classes), summing over every tree and segmentation; NaN rows where x is impossible."""
    j = joint_log_likelihood(g, x)
    top = j.max(1, keepdims=True)
    with np.errstate(invalid="ignore"):
        p = np.exp(j - top)
        return p / p.sum(1, keepdims=True)


def num_parses(g, x) -> np.ndarray:
    """The number of derivations (parse trees, over every root class) of each string (n,) float64 (0: none).
    The rules of one arity have distinct right-hand sides, so distinct parses are distinct segmentations."""
    lc, _ = inside_root(g, x, count=True)
    with np.errstate(over="ignore"):
        return np.rint(np.exp(lc).sum(1))  # integers; the rescaled pass leaves ~1e-15 relative rounding
