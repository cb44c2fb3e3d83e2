"""Discrete diffusion on RHM strings: forward processes, exact forward-backward, and what the papers measure.

Forward processes (noise level ``t`` in [0, 1], the probability that a token has been corrupted at that time):

- ``"mask"`` (masking / absorbing diffusion): each token is masked independently with probability t. Sclocchi,
  Favero, Levi, Wyart (ICLR 2025, arXiv 2410.13770) run masked diffusion with masking fraction t/T (the linear
  schedule of masked diffusion language models); pass that fraction as t.
- ``"uniform"`` (uniform-token diffusion): each token is kept with probability 1 - t, else replaced by a token
  drawn uniformly from the vocabulary (possibly itself). A discrete diffusion with per-step keep probability
  1 - beta_s leaves a token untouched until time u with probability alpha_bar_u = prod_s (1 - beta_s), so its
  noise level is t = 1 - alpha_bar_u (Sclocchi, Favero, Wyart, PNAS 2025, arXiv 2402.16991): pass 1 - alpha_bar
  of your schedule. This is exactly the token-noise channel of ``rhm.RHM(noise=...)``.

``forward_backward`` noises clean strings to level t and draws new clean strings from the exact posterior
(:func:`rhm.inference.sample_posterior`): a Markov chain on clean strings whose stationary law is the grammar's.
Below a critical noise the class (root) is kept, above it changes, while low-level tokens change smoothly (PNAS
2025); token changes come in correlated chunks whose size peaks at the transition (ICLR 2025). The helpers
measure both: :func:`changes` / :func:`change_stats` (class-change probability, fraction of changed symbols per
level) and :func:`token_correlations` (the token-change correlations and susceptibility).

Clean strings are the leaves of the latent tree (``tree[L]`` of ``g.sample(n, seed, return_tree=True)``; for a
grammar with token noise these differ from its noisy ``x``). Levels: 0 the root (class), L the tokens.
Everything takes numpy arrays or torch tensors (same backend out) and an explicit seed.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from .inference import sample_posterior
from .inference.backend import is_torch
from .treepcfg import tree_pcfg

PROCESSES = ("mask", "uniform")


def _check_process(process):
    if process not in PROCESSES:
        raise ValueError(f"process={process!r} must be one of {PROCESSES}")
    return process


def _check_t(t, n):
    """t as a float array (n,) in [0, 1] (a scalar applies to every string)."""
    if isinstance(t, bool):
        raise ValueError(f"t={t!r} must be a noise level in [0, 1] (a number or one per string)")
    arr = np.asarray(t.cpu() if is_torch(t) else t, dtype=float) if not isinstance(t, numbers.Real) else \
        np.asarray(float(t))
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,) or not np.isfinite(arr).all() or (arr < 0).any() or (arr > 1).any():
        raise ValueError(f"t must be a noise level in [0, 1], a number or one per string ({n},); got shape "
                         f"{arr.shape}" + ("" if arr.shape != (n,) else f", range [{arr.min()}, {arr.max()}]"))
    return arr


def _generator(seed, x):
    """The generator of an explicit seed: numpy Generator for numpy x, torch.Generator for torch x."""
    if seed is None:
        raise ValueError("seed is required (an int, a numpy Generator, or for torch inputs a torch.Generator): "
                         "rhm never draws unseeded")
    if is_torch(x):
        import torch

        if isinstance(seed, torch.Generator):
            return seed
        if isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0:
            return torch.Generator(device=x.device).manual_seed(int(seed))
        raise ValueError(f"seed={seed!r} must be an int >= 0 or a torch.Generator for torch inputs")
    from .sampling import _rng

    return _rng(seed)


def forward(g, x, t, process="mask", seed=None):
    """Noise clean strings x (N, d) to level t: returns (x_t, mask), both (N, d).

    process "mask": each token masked with probability t; masked positions hold the absorbing token V (one past
    the vocabulary, as in masked diffusion) and are True in mask. process "uniform": each token replaced with
    probability t by a uniform token of [0, V); mask is all False. t: a number or one level per string (N,).
    V is the grammar's vocabulary (v; v + 1 for the sparse RHM). numpy or torch in, same out.
    """
    process = _check_process(process)
    V = tree_pcfg(g).V
    if is_torch(x):
        if x.ndim != 2:
            raise ValueError(f"x has shape {tuple(x.shape)}, expected (N, d)")
    else:
        x = np.asarray(x)
        if x.ndim != 2 or not np.issubdtype(x.dtype, np.integer):
            raise ValueError(f"x must be an integer array (N, d), got shape {x.shape} and dtype {x.dtype}")
    levels = _check_t(t, len(x))
    gen = _generator(seed, x)
    if is_torch(x):
        import torch

        u = torch.rand(tuple(x.shape), generator=gen, device=gen.device, dtype=torch.float64).to(x.device)
        hit = u < torch.as_tensor(levels[:, None], device=x.device)
        if process == "mask":
            return x.long().masked_fill(hit, V), hit
        new = torch.randint(V, tuple(x.shape), generator=gen, device=gen.device).to(x.device)
        return torch.where(hit, new, x.long()), torch.zeros_like(hit)
    hit = gen.random(x.shape) < levels[:, None]
    if process == "mask":
        return np.where(hit, V, x).astype(np.min_scalar_type(V)), hit
    new = gen.integers(0, V, x.shape)
    return np.where(hit, new, x).astype(np.min_scalar_type(max(V - 1, 0))), np.zeros(x.shape, bool)


def forward_backward(g, x, t, process="mask", n=1, seed=None, return_tree=False):
    """Noise clean strings x (N, d) to level t, then draw n clean strings each from the exact posterior.

    Returns the new strings (N, n, d), and with return_tree also their latent trees (list over levels l = 0..L of
    (N, n, S**l)), as :func:`rhm.inference.sample_posterior`. The posterior conditions on the noised strings with
    the process's own observation model: masked tokens unobserved and the rest exact ("mask"), or every token
    observed through uniform noise of level t ("uniform"; rows are grouped by their level).
    This is the forward-backward experiment of Sclocchi, Favero, Wyart (PNAS 2025) with exact belief propagation.
    """
    process = _check_process(process)
    if not is_torch(x):
        x = np.asarray(x)
    gen = _generator(seed, x)  # one stream: the forward noise, then the posterior draws
    xt, mask = forward(g, x, t, process, gen)
    if process == "mask":
        return sample_posterior(g, xt, n=n, mask=mask, noise=0.0, seed=gen, return_tree=return_tree)
    levels = _check_t(t, len(x))
    uniq = np.unique(levels)
    if len(uniq) == 1:
        return sample_posterior(g, xt, n=n, noise=float(uniq[0]), seed=gen, return_tree=return_tree)
    # one posterior per distinct level (its noise is a property of the observation model); rows keep their order
    tree = None
    for u in uniq:
        rows = np.flatnonzero(levels == u)
        idx = rows if not is_torch(x) else _torch_index(rows, x)
        new, part = sample_posterior(g, xt[idx], n=n, noise=float(u), seed=gen, return_tree=True)
        if tree is None:
            tree = [_alloc_like(p, len(x)) for p in part]
        for lv, p in enumerate(part):
            tree[lv][idx] = p
    return (tree[-1], tree) if return_tree else tree[-1]


def _torch_index(rows, x):
    import torch

    return torch.as_tensor(rows, device=x.device)


def _alloc_like(a, n):
    if is_torch(a):
        return a.new_zeros((n,) + tuple(a.shape[1:]))
    return np.zeros((n,) + a.shape[1:], dtype=a.dtype)


# ------------------------------------------------------------------------------------------------ measurements
def _as_levels(tree, n):
    """A tree as a list of (N, n, S**l) arrays: g.sample's trees (N,), (N, S**l) broadcast over n samples."""
    out = []
    for lv, t in enumerate(tree):
        a = t.cpu().numpy() if is_torch(t) else np.asarray(t)
        if a.ndim == 1:
            a = a[:, None]
        if a.ndim == 2:
            a = a[:, None, :]
        out.append(a.astype(np.int64))
    return out


def changes(before, after):
    """Which latent symbols changed: list over levels l = 0..L of bool (N, n, S**l).

    before: the trees of the starting strings (``g.sample(..., return_tree=True)``'s tree: (N,), (N, S**l) per
    level, or (N, n, S**l)); after: the trees of forward_backward (N, n, S**l). Level 0 is the class, level L the
    tokens. Accepts clean strings alone as one-level "trees" ([x0], [x_new]): then only the tokens are compared.
    """
    if len(before) != len(after):
        raise ValueError(f"before has {len(before)} levels and after {len(after)}: pass the trees of one grammar")
    b, a = _as_levels(before, 1), _as_levels(after, 1)
    out = []
    for lv, (p, q) in enumerate(zip(b, a)):
        if p.shape[0] != q.shape[0] or p.shape[2] != q.shape[2]:
            raise ValueError(f"level {lv}: before has shape {p.shape} and after {q.shape}; expected (N, [n,] width)")
        out.append(p != q)
    return out


@dataclass(frozen=True)
class ChangeStats:
    """What changed in a forward-backward experiment (PNAS 2025): class_change = P(the root changes);
    fraction[l] = mean fraction of level-l symbols that change (fraction[0] == class_change, fraction[L] the
    tokens); per_string[l] (N, n) the fraction in each new string (for error bars)."""

    class_change: float
    fraction: tuple
    per_string: tuple


def change_stats(before, after) -> ChangeStats:
    """Class-change probability and the fraction of changed symbols per level (see :func:`changes`)."""
    ch = changes(before, after)
    per = tuple(c.mean(axis=2) for c in ch)
    frac = tuple(float(p.mean()) for p in per)
    return ChangeStats(class_change=frac[0], fraction=frac, per_string=per)


@dataclass(frozen=True)
class TokenCorrelations:
    """Token-change correlations (ICLR 2025, arXiv 2410.13770). With o_i = 1 if token i changed:

    C (d, d): C_ij = E[o_i o_j] - E[o_i] E[o_j] over starting strings and samples (connected correlation);
    by_distance (d,): C(r), the mean of C_ij over the pairs with |i - j| = r (C(0) the variance);
    susceptibility: chi = (1/d) sum_ij C_ij = Var(number of changed tokens) / d, which measures the size of the
    correlated chunks of changes (independent changes at rate p give chi = p (1 - p)); it peaks at the class
    transition. rate: E[o_i] averaged over i."""

    C: np.ndarray
    by_distance: np.ndarray
    susceptibility: float
    rate: float


def token_correlations(x0, x_new) -> TokenCorrelations:
    """Correlations of token changes between starting strings x0 (N, d) and new strings x_new (N, n, d) or (N, d)."""
    o = changes([x0], [x_new])[0]
    d = o.shape[2]
    o = o.reshape(-1, d).astype(np.float64)
    if len(o) == 0:
        raise ValueError("x0 is empty: correlations need at least one string")
    mu = o.mean(0)
    C = o.T @ o / len(o) - np.outer(mu, mu)
    i = np.arange(d)
    r = np.abs(i[:, None] - i[None, :])
    by_r = np.bincount(r.ravel(), weights=C.ravel(), minlength=d) / np.bincount(r.ravel(), minlength=d)
    return TokenCorrelations(C=C, by_distance=by_r, susceptibility=float(C.sum() / d), rate=float(mu.mean()))


__all__ = ["PROCESSES", "ChangeStats", "TokenCorrelations", "change_stats", "changes", "forward",
           "forward_backward", "token_correlations"]
