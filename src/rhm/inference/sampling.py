"""Exact posterior sampling of clean strings (and their latent trees) given noisy or partly masked observations.

The forward-backward experiments of Sclocchi, Favero and Wyart ("A phase transition in diffusion models reveals
the hierarchical nature of data", PNAS 2025, arXiv 2402.16991) and of Sclocchi, Favero, Levi and Wyart
("Probing the latent hierarchical structure of data via diffusion models", ICLR 2025, arXiv 2410.13770) need
draws from P(clean string | observation) on the RHM; on a tree this is exact by one inside (upward) pass and a
top-down pass that samples each node given its parent and the inside messages of its children:

    root class      P(a | x)                ∝ prior(a) beta_0(a)
    rule of a node  P(k | symbol a, x)      ∝ p(a, k) prod_c beta_child_c(children(a, k)_c)
    clean leaf      the level-L symbols are the clean tokens (their inside vector is the emission evidence)

Each level is one vectorised gather over (observed strings x samples x nodes x rules); the only Python loops are
over levels and child slots.
"""

from __future__ import annotations

import dataclasses
import numbers

import numpy as np

from ..treepcfg import Compiled, tree_pcfg
from ..validation import check_bool, check_int
from .backend import _Numpy, _Torch, backend_for, check_x, chunks, is_torch, row_cost
from .. import patches
from .passes import inside, leaf_codes

def _backend(g, x, noise):
    """Backend of g's tables, or of a copy of its TreePCFG with another noise level (cached per noise)."""
    P = tree_pcfg(g)
    if noise is None or noise == P.noise:
        return backend_for(g, x)
    cache = g.__dict__.setdefault("_posterior_tables", {})
    key = (float(noise), str(x.device) if is_torch(x) else "numpy")
    if key not in cache:
        C = cache.get((float(noise), "compiled")) or Compiled(dataclasses.replace(P, noise=float(noise)))
        cache[(float(noise), "compiled")] = C
        cache[key] = _Torch(C, x.device) if is_torch(x) else _Numpy(C)
    return cache[key], x


def _check_noise(noise):
    if noise is None:
        return None
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real) or not 0.0 <= float(noise) <= 1.0:
        raise ValueError(f"noise={noise!r} must be a real number in [0, 1] (the probability that a token was "
                         "replaced by a uniform one), or None for the grammar's own noise")
    return float(noise)


def _uniform_source(seed, x):
    """A function shape -> uniforms in [0, 1) (float64, the backend of x) from an explicit seed."""
    if seed is None:
        raise ValueError("seed is required (an int, a numpy Generator, or for torch inputs a torch.Generator): "
                         "rhm never draws unseeded")
    if is_torch(x):
        import torch

        if isinstance(seed, torch.Generator):
            gen = seed
        elif isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0:
            gen = torch.Generator(device=x.device).manual_seed(int(seed))
        else:
            raise ValueError(f"seed={seed!r} must be an int >= 0 or a torch.Generator for torch inputs")
        return lambda *shape: torch.rand(shape, generator=gen, device=gen.device, dtype=torch.float64).to(x.device)
    from ..sampling import _rng

    rng = _rng(seed)
    return lambda *shape: rng.random(shape)


def _draw(weights, u):
    """Index drawn from each row of unnormalised weights (R, K) for each uniform of u (R, n): (R, n) int64."""
    return _draw_cum(weights.cumsum(-1), u)


def _draw_cum(cum, u):
    """The same from cumulative weights (R, K): the first k with cum[k] > u * total, which has positive weight.

    u * total is capped just below the total (it can round up to it), so trailing zero weights are never drawn."""
    tot = cum[:, -1:]
    if is_torch(cum):
        import torch

        thresh = torch.minimum(u * tot, torch.nextafter(tot, torch.zeros_like(tot)))
        return (cum[:, None, :] <= thresh[:, :, None]).sum(-1)
    thresh = np.minimum(u * tot, np.nextafter(tot, 0.0))
    K = cum.shape[1]
    if K > _DRAW_LOOP_MAX or u.shape[1] != 1:
        return (cum[:, None, :] <= thresh[:, :, None]).sum(-1)
    # few rules, one draw per row (the top-down pass): the same count column by column, ~5x faster than the
    # (R, 1, K) boolean temporary and its sum; the last column is never <= thresh (thresh < total)
    k = np.zeros(len(cum), dtype=np.intp)
    th = thresh[:, 0]
    for j in range(K - 1):
        k += cum[:, j] <= th
    return k[:, None]


_DRAW_LOOP_MAX = 16


def _take(a, idx):
    """Flat gather a.reshape(-1)[idx] in either backend."""
    return a.reshape(-1)[idx] if is_torch(a) else np.take(a, idx)


def sample_posterior(g, x, n=1, mask=None, noise=None, seed=None, return_tree=False):
    """Draw `n` clean strings from P(clean | observed) for every observed string of x: (N, n, d).

    The observation model is the one of rhm.inference: positions where `mask` (bool, (N, d) or (d,)) is True are
    unobserved (their tokens are ignored); an observed token is the clean one kept with probability 1 - noise,
    else a uniform token of the vocabulary V (it may coincide with the clean one). `noise` defaults to the
    grammar's own noise; pass 0 for clean observations, or the level of a forward process (rhm.diffusion).
    The clean strings are the leaves of the latent tree (``tree[L]`` of ``g.sample(..., return_tree=True)``),
    for the sparse RHM its tokens with blanks (V = v + 1).

    Exact: one inside pass (rhm.inference), then top-down sampling: the root class from its posterior, each
    node's rule from P(rule | parent symbol, inside messages of its children), down to the clean leaves.
    Vectorised over strings x samples x nodes; the chain of Sclocchi, Favero, Wyart (PNAS 2025, arXiv
    2402.16991) samples the same distribution by belief propagation.

    seed: an int or numpy Generator (numpy inputs), an int or torch.Generator (torch inputs); required.
    Returns numpy arrays for numpy x (tokens in the smallest unsigned dtype), int64 tensors on x's device for
    torch x. With return_tree, also the list over levels l = 0..L of the latent symbols (N, n, S**l) (level 0
    the class, level L the clean strings again). Observed strings of probability 0 (possible only without noise)
    raise ValueError naming them.
    """
    noise = _check_noise(noise)
    n = check_int("n", n, 1)
    return_tree = check_bool("return_tree", return_tree)
    B, x = _backend(g, x, noise)
    x, mask = check_x(B, x, mask)
    rand = _uniform_source(seed, x)
    P = B.P
    N, L = len(x), P.L
    # Chunks sized by the sampling temporaries, (samples x nodes x rules) x (S + 2) entries per row at the widest
    # level: much larger than the cache-sized chunks of the inside pass, which runs in sub-chunks of its own
    # (the per-level operations of the top-down pass are small, so per-call overhead dominates in small chunks).
    widest = max(P.S**lv * (len(B.pf[lv]) // P.n_sym(lv)) for lv in range(L)) * n
    out = [[] for _ in range(L + 1)]
    for rows in chunks(B, N, widest * (P.S + 2)):
        part = _sample_rows(B, x[rows], None if mask is None else mask[rows], n, rand, rows.start)
        for lv in range(L + 1):
            out[lv].append(part[lv])
    cat = (lambda xs: B.t.cat(xs, 0)) if is_torch(x) else (lambda xs: np.concatenate(xs, 0))
    if N == 0:
        levels = [_empty(B, x, n, P.S**lv, P.n_sym(lv)) for lv in range(L + 1)]
    else:
        levels = [cat(o) for o in out]
        if not is_torch(x):
            levels = [lv_.astype(np.min_scalar_type(max(P.n_sym(i) - 1, 0))) for i, lv_ in enumerate(levels)]
    return (levels[L], levels) if return_tree else levels[L]


def _empty(B, x, n, width, k):
    if is_torch(x):
        return B.t.zeros((0, n, width), dtype=B.t.long, device=x.device)
    return np.zeros((0, n, width), dtype=np.min_scalar_type(max(k - 1, 0)))


_BOTTOM_TABLE_MAX = 1 << 21


def _bottom_table(B):
    """Cumulative weights of the bottom rules, ((V+1)**S * n_sym, M): row code * n_sym + a, column k holds
    sum_{k' <= k} p(a, k') prod_c evidence(leaf c of the patch | child c of rule k'), for every code of a bottom
    patch of observed or masked leaves; None above _BOTTOM_TABLE_MAX entries. Cached on the compiled tables."""
    C, P = B.C, B.P
    cache = C.__dict__.get("_posterior_bottom")
    if cache is None:
        lv, V, S = P.L - 1, P.V, P.S
        n_sym = P.n_sym(lv)
        M = len(C.pf[lv]) // n_sym
        size = (V + 1) ** S
        if size * n_sym * M > _BOTTOM_TABLE_MAX:
            cache = False
        else:
            leaves = patches.digits(np.arange(size), V + 1, S)  # (size, S)
            w = np.broadcast_to(C.pf[lv], (size, M * n_sym)).copy()
            for c in range(S):
                w *= C.evidence[leaves[:, c]][:, C.ch[lv][c]]
            # rule-major (k * n_sym + a) -> (code, a, k), cumulated over k
            cache = w.reshape(size, M, n_sym).transpose(0, 2, 1).cumsum(-1).reshape(size * n_sym, M)
        C.__dict__["_posterior_bottom"] = cache
    return cache if cache is not False else None


def _rows(a, idx):
    """a[idx] (rows of a table by an index array) in either backend."""
    return a[idx] if is_torch(a) else np.take(a, idx, axis=0)


def _rule_offsets(B, lv):
    """Per symbol a of level lv: (n_sym, S, M) offsets c * n_sym[lv + 1] + children(a, k)_c of its rules' children
    in the concatenated inside vectors of a node's S children, and (n_sym, M) its rule weights p(a, k). Cached on
    the compiled tables (numpy), moved to the backend's device per call (they are small)."""
    C, P = B.C, B.P
    cache = C.__dict__.setdefault("_posterior_offsets", {})
    if lv not in cache:
        n_sym, n_child, S = P.n_sym(lv), P.n_sym(lv + 1), P.S
        M = len(C.pf[lv]) // n_sym
        offs = np.stack([np.asarray(C.ch[lv][c]).reshape(M, n_sym).T + c * n_child for c in range(S)], 1)
        cache[lv] = (np.ascontiguousarray(offs), np.ascontiguousarray(np.asarray(C.pf[lv]).reshape(M, n_sym).T))
    offs, pf = cache[lv]
    if isinstance(B, _Torch):
        return B.t.as_tensor(offs, device=B.device), B.t.as_tensor(pf, device=B.device)
    return offs, pf


def _inside_all(B, codes):
    """Scaled inside vectors of levels 0..L-1: list of (r, S**l, n_sym[l]) (level L is read from the codes)."""
    P = B.P
    betas, _, _ = inside(B, codes)
    if betas[P.L - 1] is None:  # the bottom level was a patch-table lookup: read it again by the leaves' codes
        leaf = codes.reshape(-1, P.S)
        betas[P.L - 1] = np.take(B.patch_table()[0], patches.codes(leaf, P.V + 1), axis=0).reshape(
            len(codes), P.S ** (P.L - 1), -1)
    return betas


def _sample_rows(B, x, mask, n, rand, offset):
    """Levels 0..L of n posterior samples of each row of x: list of (r, n, S**l) int64 arrays."""
    P = B.P
    r, S = len(x), P.S
    torch_in = is_torch(x)
    arange = (lambda k: B.t.arange(k, device=B.device)) if torch_in else np.arange
    codes = leaf_codes(B, x, mask)
    parts = [_inside_all(B, codes[sub]) for sub in chunks(B, r, row_cost(P, B.C))]
    cat = (lambda xs: B.t.cat(xs, 0)) if torch_in else (lambda xs: np.concatenate(xs, 0))
    betas = [cat([b[lv] for b in parts]) for lv in range(P.L)]
    root = betas[0][:, 0, :] * B.prior  # (r, n_classes), unnormalised posterior of the class
    bad = ~(root.sum(-1) > 0)
    if bool(bad.any()):
        where = (bad.nonzero()[:, 0].cpu().numpy() if torch_in else bad.nonzero()[0]) + offset
        raise ValueError(f"x rows {where[:10].tolist()} have probability 0 under the grammar with this noise and "
                         "mask: no clean string produces them")
    sym = _draw(root, rand(r, n)).reshape(r, n, 1)
    levels = [sym]
    for lv in range(P.L):
        J, n_sym, n_child = S**lv, P.n_sym(lv), P.n_sym(lv + 1)
        M = len(B.pf[lv]) // n_sym
        # P(rule k | node symbol a) ∝ p(a, k) prod_c beta_child_c(children(a, k)_c), for every (row, sample, node)
        table = _bottom_table(B) if lv == P.L - 1 and not torch_in else None
        if table is not None:  # cumulative rule weights by (code of the leaf patch, parent symbol): one gather
            pc = patches.codes(codes.reshape(r, J, S), P.V + 1)[:, None, :]  # (r, 1, J)
            cum = np.take(table, (pc * n_sym + sym).reshape(-1), axis=0)  # (r * n * J, M)
            k = _draw_cum(cum, rand(r * n * J, 1)).reshape(r, n, J)
            sym = np.stack([np.take(B.ch[lv][c], k * n_sym + sym) for c in range(S)], -1).reshape(r, n, J * S)
            levels.append(sym)
            continue
        if lv == P.L - 1:  # a leaf's inside vector is its evidence row: (V+1, V), row V for a masked leaf
            flat = arange(M) * n_sym + sym[..., None]  # (r, n, J, M): rule-major index k * n_sym + a
            W = _take(B.pf[lv], flat)
            for c in range(S):
                code = codes.reshape(r, J, S)[:, None, :, c, None]
                W = W * _take(B.evidence, code * n_child + _take(B.ch[lv][c], flat))
        else:
            # one gather of the S children's inside values of every rule of the node's symbol: the offsets
            # c * n_child + children(a, k)_c of symbol a are a table row, added to the node's first child
            offs, pf = _rule_offsets(B, lv)  # (n_sym, S, M), (n_sym, M)
            base = ((arange(r)[:, None] * (J * S) + arange(J) * S) * n_child)[:, None, :, None, None]
            g = _take(betas[lv + 1], base + _rows(offs, sym))  # (r, n, J, S, M)
            W = _rows(pf, sym) * g[..., 0, :]
            for c in range(1, S):
                W *= g[..., c, :]
        k = _draw(W.reshape(-1, M), rand(r * n * J, 1)).reshape(r, n, J)
        idx = k * n_sym + sym
        kids = [_take(B.ch[lv][c], idx) for c in range(S)]
        sym = (B.t.stack(kids, -1) if torch_in else np.stack(kids, -1)).reshape(r, n, J * S)
        levels.append(sym)
    return levels


def derivable(g, x):
    """Which subtrees of clean strings x (n, d) have a derivation: list over levels l = 0..L-1 of bool (n, S**l).

    Node j of level l is True when some level-l symbol derives the tokens under it (its inside vector without
    noise is nonzero). Exact for every grammar inference supports, ambiguous ones included (used by
    rhm.oracle.validity for grammars without the RHM's inverse tables, e.g. the sparse RHM).
    """
    B, x = _backend(g, x, 0.0)
    x, _ = check_x(B, x)
    P = B.P
    out = [np.empty((len(x), P.S**lv), dtype=bool) for lv in range(P.L)]
    for rows in chunks(B, len(x), row_cost(P, B.C)):
        betas = _inside_all(B, leaf_codes(B, x[rows], None))
        for lv in range(P.L):
            ok = (betas[lv] > 0).any(-1)
            out[lv][rows] = ok.cpu().numpy() if is_torch(ok) else ok
    return out
