"""Diffusion learner: a discrete masked (absorbing-state) diffusion model with a transformer denoiser.

The forward process masks each token independently with probability t (t ~ U(0, 1), the linear schedule
α_t = 1 − t of MDLM / MD4: Sahoo et al. 2024, Shi et al. 2024); masked tokens hold the absorbing id V. The
denoiser is :class:`rhm.learners.transformer.TransformerNet` (bidirectional encoder, task "masked") and predicts,
at every masked position, the clean token. Training minimises the continuous-time ELBO
    E_t E_{x_t} [ (1/t) Σ_{i masked} −log p_θ(x_0,i | x_t) ],
divided by d (nats per token), which bounds −log p_θ(x_0)/d from above.

Generation (``sample(n, seed)``) is ancestral unmasking on T steps (``sample_steps``, default d): start from the
all-masked string; going from time t = k/T to s = (k−1)/T, each still-masked position is unmasked with
probability (t − s)/t = 1/k, its token drawn from the denoiser's distribution given the current partly masked
string; unmasked tokens are never changed (the reverse process of the absorbing chain). At k = 1 every remaining
position is unmasked.

``fit(x)`` takes clean strings (no labels); ``fit_stream(RHMStream)`` trains on fresh clean batches (the stream's
task is ignored: the batches' strings are re-drawn from the same generator as ``g.sample``).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from ..validation import check_float, check_int, check_tokens
from . import register
from .base import Learner, check_seed, resolve_device, resolve_dtype
from .transformer import TransformerNet

_T_MIN = 1e-3  # lower bound on the sampled masking time: keeps the 1/t weight of the ELBO finite


@register
class Diffusion(Learner):
    """Masked (absorbing) discrete diffusion on token ids with a transformer denoiser (see module docstring).

    Parameters
    ----------
    width, depth, heads, dropout: the denoiser (:class:`TransformerNet`; width % heads == 0).
    lr, weight_decay, warmup: AdamW's peak learning rate, decoupled weight decay, linear warmup fraction.
    batch_size, max_steps: minibatch size and number of optimiser steps (cosine decay over them).
    sample_steps: unmasking steps of ``sample`` (None = d, one expected token per step).
    patch: None (full attention) or an int >= 2: block i of the denoiser attends within aligned windows of
        patch**(i+1) positions (the RHM's level subtrees when patch = s; :class:`TransformerNet`), so that the
        receptive field grows level by level as in the U-Net of Favero et al. (ICML 2025); patch**depth must
        reach d, or no block would see the whole string.
    dtype, device, seed: float32 | float64; "auto" | "cpu" | "cuda[:k]"; integer seed of init, batches, masks.
    """

    name = "diffusion"
    tasks = ("masked",)

    def __init__(self, width=64, depth=2, heads=4, dropout=0.0, lr=1e-3, weight_decay=0.0, warmup=0.05,
                 batch_size=64, max_steps=2000, sample_steps=None, patch=None, dtype="float32", device="auto",
                 seed=0):
        self.width = width
        self.depth = depth
        self.heads = heads
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup = warmup
        self.batch_size = batch_size
        self.max_steps = max_steps
        self.sample_steps = sample_steps
        self.patch = patch
        self.dtype = dtype
        self.device = device
        self.seed = seed

    # ------------------------------------------------------------------------------------ validation
    def _check_params(self):
        check_int("depth", self.depth, 1)
        heads = check_int("heads", self.heads, 1)
        if check_int("width", self.width, 1) % heads:
            raise ValueError(f"width={self.width} must be a multiple of heads={heads}")
        check_float("dropout", self.dropout, 0.0, maximum=1.0)
        check_float("lr", self.lr, 0.0, strict=True)
        check_float("weight_decay", self.weight_decay, 0.0)
        check_float("warmup", self.warmup, 0.0, maximum=1.0)
        check_int("batch_size", self.batch_size, 1)
        check_int("max_steps", self.max_steps, 1)
        check_int("sample_steps", self.sample_steps, 1, none_ok=True)
        check_int("patch", self.patch, 2, none_ok=True)
        check_seed(self.seed)
        self.dtype_ = resolve_dtype(self.dtype)
        self.device_ = resolve_device(self.device)

    @contextlib.contextmanager
    def _seeded(self):
        # dropout draws from torch's global generator: seed it inside a fork (the caller's state is kept)
        cuda = self.device_.type == "cuda"
        with torch.random.fork_rng(devices=[torch.cuda.current_device()] if cuda else []):
            torch.manual_seed(check_seed(self.seed))
            yield

    # ------------------------------------------------------------------------------------ training
    def fit(self, x, y=None, v: int | None = None, n_classes: int | None = None, grammar=None, task: str = "masked"):
        """Fit on clean strings x (n, d) (``y``, ``n_classes`` and ``task`` are accepted for the estimator protocol
        and ignored). v defaults to the grammar's input vocabulary, else max(x) + 1."""
        self._check_params()
        x = check_tokens(x, nonempty=True)
        if grammar is not None:
            from ..lm_tasks import vocab

            if x.shape[1] != grammar.d:
                raise ValueError(f"x has d={x.shape[1]} tokens per input but the grammar has d={grammar.d}")
            v = vocab(grammar) if v is None else v
        v = int(x.max()) + 1 if v is None else check_int("v", v, 2)
        if x.max() >= v:
            raise ValueError(f"x holds the token {int(x.max())}, outside the vocabulary 0..{v - 1} (fit takes clean "
                             "strings, without the MASK token)")
        self.v_ = self.n_classes_ = max(v, 2)
        self.d_, self.grammar_, self.task_ = x.shape[1], grammar, "masked"
        self.info_ = {}
        xt = torch.as_tensor(np.ascontiguousarray(x).astype(np.int64)).to(self.device_)
        gen = torch.Generator().manual_seed(check_seed(self.seed))

        def batches():
            n, bs = len(xt), min(self.batch_size, len(xt))
            while True:  # epochs of a seeded permutation
                perm = torch.randperm(n, generator=gen).to(self.device_)
                for i in range(0, n - bs + 1, bs):
                    yield xt[perm[i:i + bs]]

        with self._seeded():
            self._train(batches(), self.max_steps, gen)
        self.info_["n_train"] = len(x)
        return self

    def fit_stream(self, stream, max_steps: int | None = None, log_every: int = 100):
        """Train on fresh clean strings of an :class:`rhm.data.RHMStream` (its grammar, batch size and seed; its
        task's masks are not used: the diffusion draws its own). Steps: `max_steps`, else the stream's n_batches,
        else the learner's max_steps."""
        from ..data import RHMStream
        from ..lm_tasks import vocab

        if not isinstance(stream, RHMStream):
            raise ValueError(f"stream must be an rhm.data.RHMStream, got {type(stream).__name__}")
        check_int("max_steps", max_steps, 1, none_ok=True)
        check_int("log_every", log_every, 1)
        self._check_params()
        steps = next(k for k in (max_steps, stream.n_batches, self.max_steps) if k is not None)
        g = stream.g
        self.v_ = self.n_classes_ = vocab(g)
        self.d_, self.grammar_, self.task_, self.info_ = int(g.d), g, "masked", {}
        rng = np.random.default_rng(np.random.SeedSequence(stream.seed))

        def batches():
            while True:
                xb, _ = g.sample(stream.batch_size, seed=rng)
                yield torch.as_tensor(xb.astype(np.int64)).to(self.device_)

        with self._seeded():
            self._train(batches(), int(steps), torch.Generator().manual_seed(check_seed(self.seed)),
                        log_every=log_every)
        self.info_.update({"online": True, "samples_seen": self.info_["steps"] * stream.batch_size})
        return self

    def _train(self, batches, steps, gen, log_every=100):
        t0 = time.perf_counter()
        if self.patch is not None and self.patch ** self.depth < self.d_:
            need = next(k for k in itertools.count(1) if self.patch ** k >= self.d_)  # exact, in integers
            raise ValueError(f"patch={self.patch} with depth={self.depth}: the last block attends within windows of "
                             f"patch**depth = {self.patch ** self.depth} < d = {self.d_} positions, so no block sees "
                             f"the whole string; use depth >= {need}")
        self.net_ = TransformerNet(self.v_, self.v_, self.d_, self.width, self.depth, self.heads, self.dropout,
                                   "masked", gen, patch=self.patch).to(self.dtype_).to(self.device_)
        opt = torch.optim.AdamW(self.net_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        warm = int(self.warmup * steps)
        hist, window = [], torch.zeros((), dtype=torch.float64, device=self.device_)
        self.net_.train()
        for step in range(steps):
            cos = 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))
            f = (step + 1) / warm if step < warm else cos
            for grp in opt.param_groups:
                grp["lr"] = self.lr * f
            loss = self._elbo(next(batches), gen).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            window += loss.detach()
            if (step + 1) % log_every == 0 or step + 1 == steps:
                hist.append(float(window) / ((step % log_every) + 1))
                window.zero_()
        self.net_.eval()
        self.info_.update({"steps": steps, "train_loss_history": hist, "final_train_loss": hist[-1],
                           "fit_seconds": time.perf_counter() - t0, "device": str(self.device_)})

    def _elbo(self, x0, gen):
        """Per-string ELBO term (B,) in nats per token for one draw of (t, mask) from `gen` (a CPU generator:
        the same draws on every device)."""
        B, d = x0.shape
        t = (_T_MIN + (1 - _T_MIN) * torch.rand(B, 1, generator=gen, dtype=torch.float64)).to(self.device_)
        masked = torch.rand(B, d, generator=gen, dtype=torch.float64).to(self.device_) < t
        xt = torch.where(masked, torch.full_like(x0, self.v_), x0)
        logits = self.net_(xt).float()  # (B, v, d)
        nll = F.cross_entropy(logits, x0, reduction="none")  # (B, d)
        return ((nll * masked) / t.float()).sum(1) / d

    # ------------------------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def nll_bound(self, x, n_draws: int = 8, seed: int = 0) -> np.ndarray:
        """Monte Carlo estimate (n_draws draws of t and the mask) of the ELBO bound on −log p_θ(x)/d per string
        (n,), nats per token; its mean over strings of the grammar minus the grammar's entropy per token is the
        model's excess (>= 0 up to Monte Carlo noise)."""
        self._check_fitted()
        x = self._check_clean(x)
        check_int("n_draws", n_draws, 1)
        gen = torch.Generator().manual_seed(check_int("seed", seed, 0))
        xt = torch.as_tensor(x.astype(np.int64)).to(self.device_)
        out = torch.zeros(len(x), dtype=torch.float64)
        for _ in range(n_draws):
            for i in range(0, len(x), 4096):
                out[i:i + 4096] += self._elbo(xt[i:i + 4096], gen).double().cpu()
        return (out / n_draws).numpy()

    def _check_clean(self, x):
        x = check_tokens(x, nonempty=True)
        if x.shape[1] != self.d_:
            raise ValueError(f"x has d={x.shape[1]} tokens per input, the model was fit on d={self.d_}")
        if x.max() >= self.v_:
            raise ValueError(f"x has tokens >= v={self.v_}, outside the vocabulary seen in fit")
        return x

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """n generated strings (n, d) (uint8 when v <= 256) by ancestral unmasking (module docstring); the same
        seed gives the same strings on a given device."""
        self._check_fitted()
        n = check_int("n", n, 1)
        gen = torch.Generator().manual_seed(check_int("seed", seed, 0))
        T = self.d_ if self.sample_steps is None else check_int("sample_steps", self.sample_steps, 1)
        self.net_.eval()
        out = []
        for i in range(0, n, 4096):
            B = min(4096, n - i)
            x = torch.full((B, self.d_), self.v_, dtype=torch.int64, device=self.device_)
            for k in range(T, 0, -1):
                still = x == self.v_
                if not bool(still.any()):
                    break
                unmask = still & (torch.rand(B, self.d_, generator=gen).to(self.device_) < 1.0 / k)
                probs = torch.softmax(self.net_(x).float(), dim=1).transpose(1, 2)  # (B, d, v)
                # inverse-CDF draw of one token per position from a seeded uniform
                u = torch.rand(B, self.d_, 1, generator=gen).to(self.device_)
                tok = (probs.cumsum(-1) < u).sum(-1).clamp_(max=self.v_ - 1)
                x = torch.where(unmask, tok, x)
            out.append(x.cpu())
        x = torch.cat(out).numpy()
        return x.astype(np.uint8 if self.v_ <= 256 else np.int64)

    @torch.no_grad()
    def predict_proba(self, x) -> np.ndarray:
        """The denoiser's per-position token probabilities (n, d, v) for inputs holding the MASK token v."""
        x = self._check_xy(x, fitting=False)
        xt = torch.as_tensor(x.astype(np.int64)).to(self.device_)
        p = [torch.softmax(self.net_(xt[i:i + 4096]).double(), 1).transpose(1, 2).cpu()
             for i in range(0, len(x), 4096)]
        return torch.cat(p).numpy()

    def _predict(self, x):
        return self.predict_proba(x).argmax(-1)
