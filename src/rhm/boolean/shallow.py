"""Shallow baselines: ridge on all monomials of degree ≤ q (exact, via the Krawtchouk kernel), a two-layer ReLU net."""

from __future__ import annotations

import math

import numpy as np

from ..validation import check_float, check_int

from ._cube import check_pm1, check_y, relative_mse


def krawtchouk_kernel_table(d: int, degree: int) -> np.ndarray:
    """k[h] = Σ_{|S|≤degree} χ_S(x)χ_S(x') for two points at Hamming distance h = 0..d: (d+1,) float64.

    Σ_{|S|=k} χ_S(x)χ_S(x') = K_k(h) = Σ_j (−1)^j C(h, j) C(d−h, k−j), the Krawtchouk polynomial, so this kernel
    is exactly the Gram kernel of all monomials of degree ≤ ``degree`` (k[0] is their number).
    """
    table = np.zeros(d + 1)
    for h in range(d + 1):
        table[h] = sum((-1) ** j * math.comb(h, j) * math.comb(d - h, k - j)
                       for k in range(degree + 1) for j in range(k + 1))
    return table


def n_monomials(d: int, degree: int) -> int:
    """Σ_{k≤degree} C(d, k): the number of monomials of degree ≤ ``degree`` on {±1}^d."""
    return sum(math.comb(d, k) for k in range(min(degree, d) + 1))


class PolynomialRidge:
    """Shallow baseline: ridge regression on all monomials χ_S(x), |S| ≤ ``degree``, of the raw input.

    Computed exactly in the dual with the hypercube kernel k(x, x') = Σ_{|S|≤q} χ_S(x)χ_S(x') (Krawtchouk, see
    :func:`krawtchouk_kernel_table`): α = (K/N + ridge·I)^{-1} y with N = number of monomials, so the cost is
    O(n³) whatever the number of monomials (~d^q/q!). ``ridge`` → 0 is the minimum-norm least-squares fit.
    ``max_samples`` guards memory (the n × n kernel matrix, a few copies of 8·n² bytes).
    It uses no knowledge of the target beyond its maximal degree; it needs n ≈ N samples for a small error.
    """

    name = "shallow"

    def __init__(self, degree: int = 4, ridge: float = 1e-10, chunk_rows: int = 4096, max_samples: int = 30_000):
        self.degree = check_int("degree", degree, minimum=0)
        self.ridge = check_float("ridge", ridge)
        self.chunk_rows = check_int("chunk_rows", chunk_rows, minimum=1)
        self.max_samples = check_int("max_samples", max_samples, minimum=1)

    def _kernel(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        h = np.rint((self.d_ - a @ b.T) / 2).astype(np.intp)
        return self.table_[h]

    def fit(self, x, y) -> "PolynomialRidge":
        import scipy.linalg

        x = check_pm1(x)
        y = check_y(y, x.shape[0])
        if x.shape[0] > self.max_samples:
            raise ValueError(f"train size n={x.shape[0]} exceeds max_samples={self.max_samples}: the n × n kernel "
                             f"matrix needs {8 * x.shape[0] ** 2 / 1e9:.1f} GB per copy; raise max_samples if the "
                             f"machine has the memory")
        self.d_ = x.shape[1]
        self.n_features_ = n_monomials(self.d_, self.degree)
        self.table_ = krawtchouk_kernel_table(self.d_, self.degree) / self.n_features_
        self.x_ = x.astype(np.float64)
        K = self._kernel(self.x_, self.x_)
        ridge = max(self.ridge, 1e-14)
        while True:
            try:
                K.flat[:: K.shape[0] + 1] += ridge
                self.alpha_ = scipy.linalg.cho_solve(scipy.linalg.cho_factor(K, lower=True, overwrite_a=True,
                                                                             check_finite=False), y)
                break
            except np.linalg.LinAlgError:  # numerically singular (n ≫ N): raise the jitter
                K = self._kernel(self.x_, self.x_)
                ridge *= 100
        self.ridge_used_ = ridge
        return self

    def predict(self, x) -> np.ndarray:
        if not hasattr(self, "alpha_"):
            raise ValueError("this PolynomialRidge is not fitted yet: call fit(x, y) first")
        x = check_pm1(x, self.d_).astype(np.float64)
        out = np.empty(x.shape[0])
        for s in range(0, x.shape[0], self.chunk_rows):
            out[s: s + self.chunk_rows] = self._kernel(x[s: s + self.chunk_rows], self.x_) @ self.alpha_
        return out

    def relative_mse(self, x, y) -> float:
        return relative_mse(self.predict(x), check_y(y, np.asarray(x).shape[0]))


class TwoLayerNet:
    """Shallow baseline: f(x) = aᵀ relu(W x / sqrt(d) + c) + b0, trained end to end with full-batch Adam on the MSE.

    Seeded (torch.Generator for the initialisation; full-batch, so no data-order randomness); CPU float32.
    ``width`` hidden units, ``epochs`` Adam steps at learning rate ``lr``, ``weight_decay`` (AdamW).
    """

    name = "mlp"

    def __init__(self, width: int = 512, epochs: int = 2000, lr: float = 3e-3, weight_decay: float = 0.0,
                 seed: int = 0):
        self.width = check_int("width", width, minimum=1)
        self.epochs = check_int("epochs", epochs, minimum=1)
        self.lr = check_float("lr", lr)
        self.weight_decay = check_float("weight_decay", weight_decay)
        self.seed = check_int("seed", seed, minimum=0)

    def fit(self, x, y) -> "TwoLayerNet":
        import torch

        x = check_pm1(x)
        y = check_y(y, x.shape[0])
        self.d_ = x.shape[1]
        gen = torch.Generator().manual_seed(self.seed)
        d, w = self.d_, self.width
        self.W_ = (torch.randn(w, d, generator=gen)).requires_grad_()
        self.c_ = torch.zeros(w).requires_grad_()
        self.a_ = (torch.randn(w, generator=gen) / math.sqrt(w)).requires_grad_()
        self.b_ = torch.zeros(()).requires_grad_()
        X = torch.as_tensor(x, dtype=torch.float32)
        Y = torch.as_tensor(y, dtype=torch.float32)
        opt = torch.optim.AdamW([self.W_, self.c_, self.a_, self.b_], lr=self.lr, weight_decay=self.weight_decay)
        for _ in range(self.epochs):
            opt.zero_grad(set_to_none=True)
            loss = torch.mean((self._forward(X) - Y) ** 2)
            loss.backward()
            opt.step()
        self.train_mse_ = float(loss.detach())
        return self

    def _forward(self, X):
        import torch

        return torch.relu(X @ self.W_.T / math.sqrt(self.d_) + self.c_) @ self.a_ + self.b_

    def predict(self, x) -> np.ndarray:
        import torch

        if not hasattr(self, "W_"):
            raise ValueError("this TwoLayerNet is not fitted yet: call fit(x, y) first")
        x = check_pm1(x, self.d_)
        with torch.no_grad():
            return self._forward(torch.as_tensor(x, dtype=torch.float32)).double().numpy()

    def relative_mse(self, x, y) -> float:
        return relative_mse(self.predict(x), check_y(y, np.asarray(x).shape[0]))
