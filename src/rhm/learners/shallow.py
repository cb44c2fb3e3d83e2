"""Shallow baselines on the flattened one-hot input (v*d features): a two-layer fully connected network
("fcn") and kernel ridge regression/classification with RBF or Laplace kernels ("kernel").

Cagnetta et al. (2024, Fig. 2) find that shallow learners need a fixed fraction of all inputs (P* ∝ P_max),
against P* ≈ n_c m^L for the deep CNN.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from ..validation import check_choice, check_float
from . import register
from ._torch import TorchNetLearner
from .base import Learner, check_seed, resolve_device, resolve_dtype

KERNELS = ("laplace", "rbf")


class TwoLayerNet(torch.nn.Module):
    """o = β · relu(W x / sqrt(v d) + b) · out_scale on the flattened one-hot input x (v*d)."""

    def __init__(self, n_in, n_classes, width, parametrization, bias, generator, dtype):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(width, n_in, generator=generator, dtype=dtype))
        self.b = torch.nn.Parameter(torch.zeros(width, dtype=dtype)) if bias else None
        self.scale = 1.0 / math.sqrt(n_in)
        self.beta = torch.nn.Parameter(torch.randn(n_classes, width, generator=generator, dtype=dtype))
        self.out_scale = 1.0 / width if parametrization == "mf" else 1.0 / math.sqrt(width)

    def features(self, onehot):
        return [F.relu(F.linear(onehot.flatten(1), self.w * self.scale, self.b))]

    def forward(self, onehot):
        return F.linear(self.features(onehot)[0], self.beta) * self.out_scale


@register
class FCN(TorchNetLearner):
    """Two-layer fully connected network on the flattened one-hot input (the shallow baseline).

    Parameters are those of :class:`rhm.learners.cnn.CNN` (same training loop, :mod:`rhm.learners._torch`),
    without `s` and `impl`. The
    one-hot input (B, v, d) is flattened channel-major to v*d features, per batch. No step cap by default
    (max_steps=None): a shallow network needs its epochs to fit a large training set, and capping them would
    understate it as a baseline.
    """

    name = "fcn"

    def __init__(self, width=256, parametrization="mf", optimizer="sgd", lr=0.1, momentum=0.9,
                 weight_decay=0.0, batch_size=32, epochs=100, max_steps=None, schedule="cosine", loss_threshold=1e-3,
                 patience=2, val_fraction=0.0, bias=True, progress=False, dtype="float32", device="auto", seed=0):
        self.width = width
        self.parametrization = parametrization
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.epochs = epochs
        self.max_steps = max_steps
        self.schedule = schedule
        self.loss_threshold = loss_threshold
        self.patience = patience
        self.val_fraction = val_fraction
        self.bias = bias
        self.progress = progress
        self.dtype = dtype
        self.device = device
        self.seed = seed

    def _build(self, gen, dtype):
        return TwoLayerNet(self.v_ * self.d_, self.n_classes_, self.width, self.parametrization, self.bias,
                           gen, dtype)

    def _layer_features(self, net, onehot):
        return net.features(onehot)


@register
class KernelRidge(Learner):
    """Kernel ridge regression onto centred one-hot labels, classified by argmax (dual solve).

    On one-hot inputs ||x - x'||^2 = 2 * (number of positions where the tokens differ), computed from the
    integer tokens without forming one-hot matrices. Kernels: "laplace" exp(-||x - x'|| / bandwidth) and
    "rbf" exp(-||x - x'||^2 / (2 bandwidth^2)); bandwidth None = sqrt(d).

    Parameters
    ----------
    kernel: "laplace" or "rbf".
    bandwidth: kernel length scale (> 0) or None for sqrt(d).
    ridge: λ in (K + λ I) α = Y (absolute, >= 0; a tiny jitter is added if the factorisation fails).
    max_memory_gb: refuse a fit whose P x P kernel matrix and Cholesky factor would exceed this.
    dtype: "float64" (default) or "float32".
    device: "auto" (cuda if available), "cpu", "cuda", ...
    seed: accepted for a uniform API; the fit is deterministic.
    """

    name = "kernel"

    def __init__(self, kernel="laplace", bandwidth=None, ridge=1e-6, max_memory_gb=8.0, dtype="float64",
                 device="auto", seed=0):
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.ridge = ridge
        self.max_memory_gb = max_memory_gb
        self.dtype = dtype
        self.device = device
        self.seed = seed

    def memory_bytes(self, n_train: int) -> int:
        """Bytes the dual solve needs for n_train samples: the P x P kernel matrix and its factor."""
        item = 8 if resolve_dtype(self.dtype) == torch.float64 else 4
        return 2 * int(n_train) ** 2 * item

    def _check_params(self, n):
        check_choice("kernel", self.kernel, KERNELS)
        if self.bandwidth is not None:
            check_float("bandwidth", self.bandwidth, 0.0, strict=True)
        check_float("ridge", self.ridge, 0.0)
        check_float("max_memory_gb", self.max_memory_gb, 0.0, strict=True)
        check_seed(self.seed)
        need = self.memory_bytes(n)
        if need > self.max_memory_gb * 2**30:
            raise ValueError(
                f"kernel: P={n} training samples need {need / 2**30:.1f} GiB for the P x P kernel matrix and "
                f"its Cholesky factor ({self.dtype}), over max_memory_gb={self.max_memory_gb}; use fewer "
                f"samples, dtype='float32' or a larger max_memory_gb")

    def _gram(self, a, b):
        """Kernel matrix between token tensors a (n, d) and b (p, d), built in row chunks (small temporaries)."""
        out = torch.empty(len(a), len(b), dtype=self.dtype_, device=self.device_)
        rows = max(1, int(2**25 // max(1, len(b))))  # ~256 MiB of float64 temporaries per chunk at most
        for i in range(0, len(a), rows):
            blk = out[i:i + rows]
            blk.zero_()
            for j in range(a.shape[1]):  # number of positions where the tokens differ
                blk += a[i:i + rows, j, None] != b[None, :, j]
            blk.mul_(2.0)  # squared distance of the one-hot encodings
            if self.kernel == "rbf":
                blk.div_(-2.0 * self.bw_**2).exp_()
            else:
                blk.sqrt_().div_(-self.bw_).exp_()
        return out

    def _fit(self, x, y):
        n = len(x)
        self._check_params(n)
        self.device_ = resolve_device(self.device)
        self.dtype_ = resolve_dtype(self.dtype)
        self.bw_ = float(self.bandwidth) if self.bandwidth is not None else math.sqrt(self.d_)
        t0 = time.perf_counter()
        self.x_train_ = torch.as_tensor(x.astype(np.int64), device=self.device_)
        k = self._gram(self.x_train_, self.x_train_)
        targets = torch.full((n, self.n_classes_), -1.0 / self.n_classes_, dtype=self.dtype_, device=self.device_)
        targets[torch.arange(n, device=self.device_), torch.as_tensor(y.astype(np.int64), device=self.device_)] += 1.0
        jitter = float(self.ridge)
        k.diagonal().add_(jitter)
        factor, info = torch.linalg.cholesky_ex(k)
        tries = 0
        while int(info) != 0 and tries < 6:  # not numerically PD: add a growing jitter
            add = max(jitter, 1e-10) * 10 - jitter if tries else max(1e-10, 1e-8 * float(k.diagonal().mean()))
            k.diagonal().add_(add)
            jitter += add
            factor, info = torch.linalg.cholesky_ex(k)
            tries += 1
        if int(info) != 0:
            raise ValueError(f"kernel matrix is not positive definite even with ridge {jitter:g}; raise ridge")
        del k
        self.alpha_ = torch.cholesky_solve(targets, factor)
        del factor
        self.info_.update({"fit_seconds": time.perf_counter() - t0, "ridge_used": jitter, "bandwidth": self.bw_,
                           "memory_gib": self.memory_bytes(n) / 2**30})

    def decision_function(self, x) -> np.ndarray:
        """Regression outputs (n, n_classes) as float64."""
        x = self._check_xy(x, fitting=False)
        return self._scores(x).double().cpu().numpy()

    def _scores(self, x):
        xt = torch.as_tensor(x.astype(np.int64), device=self.device_)
        chunk = max(1, int(2**25 // max(1, len(self.x_train_))))
        return torch.cat([self._gram(xt[i:i + chunk], self.x_train_) @ self.alpha_
                          for i in range(0, len(xt), chunk)])

    def _predict(self, x):
        return self._scores(x).argmax(1).cpu().numpy()
