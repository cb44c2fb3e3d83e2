"""Locally connected network (LCN): the hierarchical CNN with untied weights per position (Tomasini & Wyart 2024).

Layer k maps each non-overlapping patch of s positions to h channels with its *own* weights: one batched matrix
product per layer, weights (P_k, h, s * c_in) for the P_k = d / s**k output positions. Everything else (the
mean-field readout, the training loop, the tasks: classify and next-token) is the CNN's.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import register
from .cnn import CNN


class HierarchicalLCN(torch.nn.Module):
    """L locally connected layers (patch = stride = s, untied), ReLU, readout. Input: one-hot (B, v, s**L)."""

    def __init__(self, v, n_classes, width, s, L, parametrization, bias, generator, dtype):
        super().__init__()
        self.s, self.L, self.width = s, L, width
        chans = [v] + [width] * L
        pos = [s ** (L - k - 1) for k in range(L)]  # output positions of layer k (0 = bottom)
        self.weights = torch.nn.ParameterList(
            torch.nn.Parameter(torch.randn(pos[k], s * chans[k], chans[k + 1], generator=generator, dtype=dtype))
            for k in range(L))
        self.biases = torch.nn.ParameterList(
            torch.nn.Parameter(torch.zeros(pos[k], 1, width, dtype=dtype)) for k in range(L)) if bias else None
        self.scales = [1.0 / math.sqrt(chans[k] * s) for k in range(L)]
        self.beta = torch.nn.Parameter(torch.randn(n_classes, width, generator=generator, dtype=dtype))
        self.out_scale = 1.0 / width if parametrization == "mf" else 1.0 / math.sqrt(width)

    def _layers(self, x):
        """Yield every layer's post-ReLU activation, position-major (P_k, B, h)."""
        B = x.shape[0]
        x = x.permute(2, 0, 1)  # (d, B, v)
        for k, w in enumerate(self.weights):
            p, c = x.shape[0] // self.s, x.shape[2]
            # (P, s, B, c) -> (P, B, s*c): the s children of each output position, child-major like conv1d
            patches = x.reshape(p, self.s, B, c).permute(0, 2, 1, 3).reshape(p, B, self.s * c)
            h = torch.bmm(patches, w) * self.scales[k]
            if self.biases is not None:
                h = h + self.biases[k]
            x = F.relu(h)
            yield x

    def features(self, x):
        """Post-ReLU activations of every layer, bottom first: [(B, h, d / s**k) for k = 1..L]."""
        return [a.permute(1, 2, 0) for a in self._layers(x)]

    def forward(self, x):
        for a in self._layers(x):
            pass
        return F.linear(a[0], self.beta) * self.out_scale


@register
class LCN(CNN):
    """The CNN's hierarchical network with untied weights per position; same hyperparameters as ``cnn``
    (``impl`` is ignored: one batched matmul per layer), other defaults.

    Defaults: batch 64, lr 0.8 (x width), no weight decay, at most 3,000 steps (the CNN's: batch 16, lr 0.2,
    weight decay 5e-6, 5,000 steps). Untied weights see each position's gradient alone, so the LCN needs more
    epochs than the CNN: with the CNN's defaults at P = 4,000 (v = n_c = 8, m = 4, L = 3) it stays near 0.33
    accuracy; the same lr / batch ratio at 4x the batch runs 4x the epochs per step. The CNN's weight decay,
    at this lr x width (a shrink of 1e-3 per step), made it collapse to a constant output on one grammar (seed
    100; a RuntimeWarning says so); without it the test errors at P = 4,000 on the development grammar seeds
    0, 1, 2 are 0.000, 0.009, 0.000 (held-out grammars 100-109: docs/baselines.md).
    """

    name = "lcn"

    def __init__(self, width=256, s=None, parametrization="mf", optimizer="sgd", lr=0.8, momentum=0.9,
                 weight_decay=0.0, batch_size=64, epochs=100, max_steps=3000, schedule="cosine",
                 loss_threshold=1e-5, patience=2, val_fraction=0.0, bias=False, impl="conv1d", progress=False,
                 dtype="float32", device="auto", seed=0):
        super().__init__(width=width, s=s, parametrization=parametrization, optimizer=optimizer, lr=lr,
                         momentum=momentum, weight_decay=weight_decay, batch_size=batch_size, epochs=epochs,
                         max_steps=max_steps, schedule=schedule, loss_threshold=loss_threshold, patience=patience,
                         val_fraction=val_fraction, bias=bias, impl=impl, progress=progress, dtype=dtype,
                         device=device, seed=seed)

    def _build(self, gen, dtype):
        return HierarchicalLCN(self.v_, self.n_classes_, self.width, self.s_, self.L_, self.parametrization,
                               self.bias, gen, dtype)
