"""The two backends of the passes (numpy, torch: the same operations on the compiled tables), input checks,
chunking of samples by the cost of one row."""

from __future__ import annotations

import numpy as np

from ..treepcfg import Compiled, TreePCFG, compiled
from ..validation import check_tokens


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


def is_torch(x) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def backend_for(g, x):
    """(ops, x as an integer array of that backend); torch tables are cached per device on the grammar."""
    if getattr(g, "varying", False) is True:
        raise ValueError(f"{g!r} has a varying tree topology: this inference function needs a fixed tree; "
                         "rhm.inference.class_posterior, log_likelihood, joint_log_likelihood and "
                         "rhm.inference.cky (the inside pass over segmentations) accept it")
    C = compiled(g)
    if not is_torch(x):
        return _Numpy(C), x
    cache = g.__dict__.setdefault("_inference_torch", {})
    key = str(x.device)
    if key not in cache:
        cache[key] = _Torch(C, x.device)
    return cache[key], x


# ------------------------------------------------------------------------------------------------ checks
def check_x(B, x, mask=None):
    """x (n, d) integer tokens in [0, V) (numpy or torch) and an optional boolean mask, (n, d) or (d,), of hidden
    positions (their tokens are replaced by 0): (x, mask)."""
    P = B.P
    # the range is checked below, once hidden tokens are replaced
    x = check_tokens(x, P.d, values=False, allow_torch=True)
    if mask is not None:
        if is_torch(x):
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
    x = check_tokens(x, P.d, P.V, vocab_label="V", allow_torch=True)
    return (x.long() if is_torch(x) else x), mask


def chunks(B, n: int, per_row: int):
    rows = max(1, B.chunk // max(1, per_row))
    for a in range(0, n, rows):
        yield slice(a, min(n, a + rows))


def row_cost(P: TreePCFG, C: Compiled) -> int:
    """Float entries of the widest per-level temporary of one sample. A dense level (every child tuple a rule:
    the soft grammar's, a filtered model's level k-1) holds the outer product of the children's vectors (M) and
    the result, not the rule-major gathers (n_sym M (S + 1))."""
    return max(P.S**lv * ((C.probs[lv].shape[1] + P.n_sym(lv) + P.S * P.n_sym(lv + 1)) if C.dense[lv]
                          else len(C.pf[lv]) * (P.S + 1)) for lv in range(P.L))


def as_backend(B, a: np.ndarray):
    """A numpy constant in the backend of B."""
    return B.t.as_tensor(a, device=B.device) if isinstance(B, _Torch) else a
