"""Layerwise one gradient step + k-means (Cagnetta et al. 2024, App. D; prior code ``main_layerwise.py``).

Bottom-up, for each level below the root (levels: 0 = root, L = input):

1. cut the current token sequence into its non-overlapping s-patches and encode each patch as an integer;
2. one large gradient step of a two-layer network ``o = w2 · relu(w1 · onehot(patch)) / h`` on the labels,
   from w1 = all ones and a fixed Gaussian readout w2 (n_classes, h): ``w1 <- w1 - lr·h·∇w1`` (Eq. 13: each
   column of w1 becomes a random projection of the empirical label counts of that patch, the "P(label |
   patch)" proxy that synonyms share). The literature trains on the first patch only (``patches="first"``);
   ``patches="all"`` shares w1 across all patch positions of the level;
3. k-means (scikit-learn) of the columns of w1 of the patches **that occur** in the training data into
   v clusters (the prior code clustered all v**s columns, so for m < v the never-seen patches, which keep
   identical columns, took one of the v clusters);
4. coarse-grain every patch to its cluster id (a vectorised sorted-code lookup; a patch never seen in training
   goes to the cluster nearest the untouched all-ones column) and continue one level up.

At the top (one s-patch left) the one-step network itself classifies.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from .. import limits
from ..patches import lookup, patch_ids
from ..validation import check_choice, check_float, check_int
from . import register
from .base import Learner, check_seed, resolve_device

PATCHES = ("first", "all")


class _Level:
    """What one level learned: the table of occurring patches (rhm.patches) and their outputs; `unseen` for any
    other patch."""

    def __init__(self, table, values, unseen, base):
        self.table, self.values, self.unseen, self.base = table, values, unseen, base

    def lookup(self, patches: np.ndarray) -> np.ndarray:
        return lookup(self.table, self.values, patches, self.base, missing=self.unseen)


@register
class OneStepKMeans(Learner):
    """Layerwise one-step GD + k-means classifier (see module docstring).

    Parameters
    ----------
    width: hidden units h of each level's two-layer network.
    lr: step size, multiplied by h (literature: 1000·h). Only the top-level classifier depends on it: k-means
        is invariant to the common shift and scale of the columns.
    patches: "first" (the literature: gradient from the first patch of every input) or "all" (every patch
        position, weights shared).
    n_init: k-means restarts.
    s: patch size; None = the grammar's s (fit with grammar=), else an error (s is never guessed from d).
    device: torch device of the gradient step ("auto" = cuda if available).
    seed: seeds the readouts w2 and k-means.
    """

    name = "kmeans"

    def __init__(self, width=256, lr=1000.0, patches="first", n_init=10, s=None, device="auto", seed=0):
        self.width = width
        self.lr = lr
        self.patches = patches
        self.n_init = n_init
        self.s = s
        self.device = device
        self.seed = seed

    # ------------------------------------------------------------------------------------------------ fit
    def _check_params(self):
        check_int("width", self.width, 1)
        check_float("lr", self.lr, 0.0, strict=True)
        check_choice("patches", self.patches, PATCHES)
        check_int("n_init", self.n_init, 1, 1000)  # sklearn's default is 10; more only costs time
        check_seed(self.seed)
        resolve_device(self.device)

    def _one_step(self, inverse, labels, n_codes, gen):
        """One gradient step from w1 = 1 on patches given by their index in [0, n_codes); returns the
        stepped columns (n_codes, h) and the readout w2 (n_classes, h) as float64 tensors on the CPU."""
        h = self.width
        # w1, its gradient, the step and the ReLU/embedding activations per occurrence: float64, before allocating
        limits.check_bytes("width", f"the one-step network on {n_codes:,} patches and {len(inverse):,} occurrences",
                           8.0 * h * (3 * n_codes + 2 * len(inverse) + self.n_classes_))
        w2 = torch.randn(self.n_classes_, h, generator=gen, dtype=torch.float64).to(self.device_)
        w1 = torch.ones(n_codes, h, dtype=torch.float64, device=self.device_, requires_grad=True)
        idx = torch.as_tensor(inverse, device=self.device_)
        tgt = torch.as_tensor(labels, device=self.device_)
        # w1 · onehot(patch) is the patch's column of w1 (a lookup, not a stored one-hot matrix)
        logits = F.linear(F.relu(F.embedding(idx, w1)), w2) / h
        loss = F.cross_entropy(logits, tgt)
        (grad,) = torch.autograd.grad(loss, w1)
        with torch.no_grad():
            w1 = w1 - self.lr * h * grad
        return w1.cpu(), w2.cpu(), float(loss.detach())

    def _fit(self, x, y):
        from sklearn.cluster import KMeans

        self._check_params()
        self.s_, self.L_ = self._tree_shape(self.s, self.d_)
        self.device_ = resolve_device(self.device)
        seed = check_seed(self.seed)
        gen = torch.Generator().manual_seed(seed)
        t0 = time.perf_counter()
        s = self.s_
        tokens, base = x.astype(np.int64), self.v_
        self.levels_ = []
        info = []
        for depth in range(self.L_):
            patches = tokens.reshape(len(tokens), -1, s)
            used = patches[:, :1] if self.patches == "first" else patches
            occ, inverse = patch_ids(used, base)
            inverse = inverse.reshape(-1)
            labels = np.repeat(y.astype(np.int64), used.shape[1])
            # one extra column (never selected) for the patches that did not occur: it stays all ones
            cols, w2, loss = self._one_step(inverse, labels, len(occ) + 1, gen)
            top = depth == self.L_ - 1
            if top:
                # the one-step network classifies the last patch
                logits = (F.linear(F.relu(cols), w2) / self.width).numpy()
                pred = logits.argmax(1)
                self.levels_.append(_Level(occ, pred[:-1], pred[-1], base))
                info.append({"level": 0, "occurring_patches": int(len(occ)), "loss_at_init": loss})
                break
            reps = cols.numpy()
            k = min(self.v_, len(occ))
            km = KMeans(n_clusters=k, n_init=self.n_init, random_state=seed + depth).fit(reps[:-1])
            ids = km.labels_.astype(np.int64)
            unseen = int(km.predict(reps[-1:])[0])
            level = _Level(occ, ids, unseen, base)
            self.levels_.append(level)
            info.append({"level": self.L_ - 1 - depth, "occurring_patches": int(len(occ)), "clusters": k,
                         "loss_at_init": loss, "inertia": float(km.inertia_)})
            tokens = level.lookup(patches)
            base = k
        self.info_.update({"levels": info, "fit_seconds": time.perf_counter() - t0})

    # -------------------------------------------------------------------------------------------- predict
    def _predict(self, x):
        tokens = x.astype(np.int64)
        for level in self.levels_:
            tokens = level.lookup(tokens.reshape(len(tokens), -1, self.s_))
        return tokens[:, 0]
