"""torch datasets over RHM samples: tokens stay small integers in memory, one-hot is made per batch.

- :class:`RHMDataset` (map-style) wraps arrays (x, y); use it with ``DataLoader(ds, batch_size=B,
  collate_fn=ds.collate)`` or index it with a batch of indices (``ds[idx_array]``) to get one-hot batches.
- :class:`RHMStream` (iterable) draws fresh i.i.d. batches forever from a grammar, turned into the batch of a task
  of :mod:`rhm.lm_tasks` (classify, next-token, next-token-all, masked); each DataLoader worker gets its own
  independent child seed, so the stream is reproducible for a fixed (seed, num_workers). Nothing is kept:
  a batch is drawn, encoded (one-hot or token ids) and handed over. The torch learners train on it online
  (``learner.fit_stream(stream)``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from . import limits, lm_tasks
from .sampling import _rng
from .spec import Grammar
from .validation import check_bool, check_int


def one_hot_batch(x, v: int, dtype=torch.float32, channels_first: bool = True) -> torch.Tensor:
    """Integer tokens (B, d) -> one-hot float (B, v, d) (channels first, as conv1d expects) or (B, d, v)."""
    t = torch.as_tensor(np.asarray(x).astype(np.int64)) if not torch.is_tensor(x) else x.long()
    out = torch.nn.functional.one_hot(t, v).to(dtype)
    return out.transpose(1, 2) if channels_first else out


class RHMDataset(Dataset):
    """Map-style dataset over integer tokens x (n, d) and labels y (n,); one-hot only when batched."""

    def __init__(self, x, y, v: int, dtype=torch.float32, channels_first: bool = True):
        x, y = np.asarray(x), np.asarray(y)
        if x.ndim != 2 or y.shape != (len(x),):
            raise ValueError(f"x must be (n, d) and y (n,), got {x.shape} and {y.shape}")
        if x.size and (x.min() < 0 or x.max() >= v):
            raise ValueError(f"x has tokens outside [0, v={v})")
        self.x, self.y, self.v = x, y, v
        self.dtype, self.channels_first = dtype, channels_first

    @classmethod
    def from_grammar(cls, g, n, seed, replace=True, **kw) -> "RHMDataset":
        """n samples of any grammar (RHM or SparseRHM; one-hot over its ``vocab_size`` tokens)."""
        x, y = g.sample(n, seed=seed, replace=replace)
        return cls(x, y, g.vocab_size, **kw)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, idx):
        """An int gives (tokens (d,), label); an index array gives a one-hot batch ((B, v, d), (B,))."""
        if isinstance(idx, (int, np.integer)):
            return self.x[idx], int(self.y[idx])
        idx = np.asarray(idx)
        return self._encode(self.x[idx], self.y[idx])

    def collate(self, items):
        """DataLoader collate_fn: list of (tokens, label) -> one-hot batch."""
        x = np.stack([a for a, _ in items])
        y = np.array([b for _, b in items])
        return self._encode(x, y)

    def _encode(self, x, y):
        return (one_hot_batch(x, self.v, self.dtype, self.channels_first),
                torch.as_tensor(y.astype(np.int64)))


class RHMStream(IterableDataset):
    """Unbounded i.i.d. batches of task `task` from grammar `g` (use with ``DataLoader(stream, batch_size=None)``).

    Each batch: ``g.sample(batch_size)`` then ``lm_tasks.make(g, task, ...)`` (the masked task's mask drawn from the
    same generator), encoded as one-hot (B, V, d) (channels first; the MASK token is a zero column) or, with
    ``tokens=True``, token ids (B, d) int64 (MASK = V); targets int64 ((B,) or (B, d), -1 = no target).
    ``task_batches()`` yields the same batches as :class:`rhm.lm_tasks.TaskData` (numpy). ``mask_draws=K``
    (masked task) shows each batch's B fresh strings with K independently drawn masks: K·B rows, B samples seen.
    The stream keeps no state: every iteration restarts from `seed` (same seed, same batches), so a count of the
    batches drawn is the consumer's (``fit_stream`` records ``info_["steps"]``), not a field that DataLoader
    workers' copies would split.
    """

    def __init__(self, g, batch_size: int, seed, n_batches: int | None = None, dtype=torch.float32,
                 channels_first: bool = True, task: str = "classify", mask_rate: float = 0.15, tokens: bool = False,
                 mask_draws: int = 1):
        if not isinstance(g, Grammar):
            raise ValueError(f"g={g!r} must be a grammar (rhm.RHM, rhm.SparseRHM: the rhm.Grammar protocol)")
        check_int("batch_size", batch_size, 1)
        check_int("n_batches", n_batches, 0, none_ok=True)
        check_int("seed", seed, 0)
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ValueError(f"dtype={dtype!r} must be a floating torch dtype (the one-hot batches' type)")
        self.task = lm_tasks.check_task(task)
        self.mask_draws = check_int("mask_draws", mask_draws, 1)
        if self.mask_draws > 1 and task != "masked":
            raise ValueError(f"mask_draws={mask_draws} applies to the masked task only, not task={task!r}")
        # one batch's rows: tokens and targets (int64) and the one-hot encoding (float32), estimated before any draw
        rows = self.mask_draws * int(batch_size)
        limits.check_bytes("mask_draws" if self.mask_draws > 1 else "batch_size",
                           f"one stream batch of {rows:,} rows", rows * g.d * (16.0 + 4.0 * (g.vocab_size + 1)))
        if task == "masked":  # validated once here, not per batch
            lm_tasks.make(g, task, np.zeros((1, g.d), np.int64), mask_rate=mask_rate)
        self.g, self.batch_size, self.seed = g, int(batch_size), int(seed)
        self.n_batches = None if n_batches is None else int(n_batches)
        self.dtype, self.channels_first = dtype, check_bool("channels_first", channels_first)
        self.mask_rate, self.tokens = mask_rate, check_bool("tokens", tokens)

    def __len__(self) -> int:
        if self.n_batches is None:
            raise TypeError("this RHMStream is unbounded (n_batches=None): it has no length")
        return int(self.n_batches)

    def task_batches(self):
        """Yield :class:`rhm.lm_tasks.TaskData` batches (inputs (B, d), targets), from `seed` anew at each call."""
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        # each worker: an independent child stream; batches are split round-robin between workers
        rng = _rng(np.random.SeedSequence(self.seed).spawn(workers)[worker])
        k = worker
        while self.n_batches is None or k < self.n_batches:
            x, y = self.g.sample(self.batch_size, seed=rng)
            if self.mask_draws > 1:  # the same B strings K times, each copy with its own mask: (K·B, d)
                x, y = np.tile(x, (self.mask_draws, 1)), np.tile(y, self.mask_draws)
            yield lm_tasks.make(self.g, self.task, x, y, mask_rate=self.mask_rate, seed=rng)
            k += workers

    def __iter__(self):
        V = self.g.vocab_size
        masked = self.task in lm_tasks.MASKED_INPUT
        for b in self.task_batches():
            y = torch.as_tensor(b.y.astype(np.int64))
            if self.tokens:
                yield torch.as_tensor(b.x.astype(np.int64)), y
            else:  # the MASK token (id V) becomes the zero vector
                oh = one_hot_batch(b.x, V + masked, self.dtype, self.channels_first)
                oh = (oh[:, :V] if self.channels_first else oh[..., :V]) if masked else oh
                yield oh.contiguous(), y


__all__ = ["RHMDataset", "RHMStream", "one_hot_batch"]
