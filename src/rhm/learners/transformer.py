"""Transformer learner: a pre-LN encoder (classify, masked) or causal decoder (next-token, next-token-all).

Blocks: x + Attn(LN(x)), then x + MLP(LN(x)) (GELU, 4x width), with attention through
``torch.nn.functional.scaled_dot_product_attention`` (``is_causal=True`` in the decoder); learned token and
position embeddings; a final LayerNorm and a linear head. Token ids go straight into the embedding (an embedding
is a one-hot times a matrix), with two extra ids: MASK (= v, in masked inputs) and BOS (= v + 1, the decoder's
first input).

* classify: ``readout="flatten"`` (default): the d final vectors concatenated -> n_classes logits (a readout
  that knows each position); ``readout="mean"``: mean over positions (the default before issue 22);
  ``patch=p`` (optional, classify and masked) restricts block i's attention to aligned windows of p**(i+1)
  positions (the RHM's subtrees when p = s and depth = L), the CNN's locality as an attention mask;
* masked: per-position logits (B, v, d);
* next-token-all: input [BOS, x_0 .. x_{d-2}], output at t predicts x_t from x_<t (never looks ahead);
* next-token: the same decoder, read at the last position only (x_{d-1} from x_{<d-1}).

Training (shared with the CNN, :mod:`rhm.learners._torch`): AdamW with linear warmup then cosine decay,
cross-entropy over the target positions, early stopping on a validation split (``val_fraction`` and
``val_patience``), bf16 autocast on CUDA, seeded initialisation and batches, optional rich progress bar.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from ..validation import check_float, check_int
from . import register
from ._torch import TorchNetLearner
from .base import check_seed, resolve_device

CAUSAL = ("next-token", "next-token-all")


class Block(torch.nn.Module):
    """One pre-LN transformer block: x + Attn(LN x); x + MLP(LN x)."""

    def __init__(self, width, heads, dropout, causal):
        super().__init__()
        self.heads, self.causal, self.dropout = heads, causal, dropout
        self.ln1, self.ln2 = torch.nn.LayerNorm(width), torch.nn.LayerNorm(width)
        self.qkv = torch.nn.Linear(width, 3 * width)
        self.proj = torch.nn.Linear(width, width)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(width, 4 * width), torch.nn.GELU(),
                                       torch.nn.Linear(4 * width, width), torch.nn.Dropout(dropout))
        self.drop = torch.nn.Dropout(dropout)

    def forward(self, x, mask=None):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=self.causal and mask is None,
                                           dropout_p=self.dropout if self.training else 0.0)
        x = x + self.drop(self.proj(a.transpose(1, 2).reshape(B, T, C)))
        return x + self.mlp(self.ln2(x))


class TransformerNet(torch.nn.Module):
    """Token ids (B, d) -> logits: (B, n_out) for classify / next-token, (B, n_out, d) per position."""

    def __init__(self, v, n_out, d, width, depth, heads, dropout, task, generator, readout="mean", patch=None):
        super().__init__()
        self.task, self.v, self.readout = task, v, readout
        self.causal = task in CAUSAL
        self.tok = torch.nn.Embedding(v + 2, width)  # v tokens, MASK = v, BOS = v + 1
        self.pos = torch.nn.Embedding(d, width)
        self.blocks = torch.nn.ModuleList(Block(width, heads, dropout, self.causal) for _ in range(depth))
        # patch-aligned attention (classify / masked only): block i attends within aligned windows of patch**(i+1)
        # positions (the RHM's level-i subtrees when patch = s), all positions once patch**(i+1) >= d (with fewer
        # blocks than that, no position sees the whole string: only a flatten readout joins the windows)
        masks = []
        if patch is not None and not self.causal:
            pos = torch.arange(d)
            for i in range(depth):
                w = min(patch ** (i + 1), d)
                masks.append((pos[:, None] // w) == (pos[None, :] // w))
        self.register_buffer("masks", torch.stack(masks) if masks else torch.zeros(0, d, d, dtype=torch.bool),
                             persistent=False)
        self.ln = torch.nn.LayerNorm(width)
        flat = task == "classify" and readout == "flatten"
        self.head = torch.nn.Linear(width * d if flat else width, n_out)
        self.drop = torch.nn.Dropout(dropout)
        with torch.no_grad():  # seeded initialisation (GPT-2's N(0, 0.02) for matrices and embeddings)
            for p in self.parameters():
                if p.ndim >= 2:
                    p.copy_(torch.randn(p.shape, generator=generator) * 0.02)

    def forward(self, ids):
        ids = ids.long()
        if self.causal:  # shift right: position t sees BOS, x_0 .. x_{t-1}
            ids = torch.cat([torch.full_like(ids[:, :1], self.v + 1), ids[:, :-1]], 1)
        h = self.drop(self.tok(ids) + self.pos.weight)
        for i, blk in enumerate(self.blocks):
            h = blk(h, self.masks[i] if len(self.masks) else None)
        h = self.ln(h)
        if self.task == "classify":
            return self.head(h.flatten(1) if self.readout == "flatten" else h.mean(1))
        if self.task == "next-token":
            return self.head(h[:, -1])
        return self.head(h).transpose(1, 2)


@register
class Transformer(TorchNetLearner):
    """Transformer encoder / causal decoder on token ids (see module docstring).

    Parameters
    ----------
    width, depth, heads: embedding width, number of blocks, attention heads (width % heads == 0).
    dropout: dropout rate (attention, residual branches, embeddings).
    lr, weight_decay, warmup: AdamW's peak learning rate, decoupled weight decay, warmup fraction of the steps.
    schedule: "cosine" (after warmup) or "constant".
    readout: "flatten" or "mean" (classify only; see the module docstring).
    patch: None (full attention) or an int >= 2: block i attends within aligned windows of patch**(i+1) positions
        (classify and masked; the causal decoder ignores it).
    batch_size, epochs, max_steps: minibatch size, epochs, step budget (None = no cap).
    loss_threshold, patience: stop once the epoch-mean training loss stays below loss_threshold for patience
        epochs.
    val_fraction, val_patience: held-out fraction; the weights with the best validation accuracy (classify) or
        cross-entropy (LM tasks, which hold out lm_val_fraction by default) are kept, and
        the fit stops after val_patience epochs without improvement (None = never).
    progress: show a rich progress bar over the epochs.
    dtype, device, seed: as the CNN's (bf16 autocast on CUDA).
    """

    name = "transformer"
    tasks = ("classify", "next-token", "next-token-all", "masked")
    autocast_cuda = True
    parametrization, momentum, bias, optimizer = "standard", 0.0, True, "adamw"  # fixed (the shared loop reads them)

    # Defaults (issue 22; v = n_c = 8, m = 4, s = 2, L = 3 classification, docs/baselines.md): with mean pooling
    # the training loss plateaued at ~1.16-1.2 and the test error stayed ~0.65 at P = 16,000 whatever the lr,
    # batch, depth or width; the flatten readout (each position its own readout weights) leaves the plateau:
    # test error 0.364 after 1,500 steps and 0.057 after 3,000 (dev grammar 0, P = 16,000; training loss 0.12).
    # max_steps = 3,000 is that schedule (12 epochs at P = 16,000); epochs = 40 keeps a fit at P = 2,000 to
    # 1,280 steps (the <= 60 s bar; ~22 ms of CPU per step, one thread). Transformers need more samples than
    # CNNs on the RHM (Cagnetta, Favero, Sclocchi, Wyart 2025, arXiv:2505.07070: global attention lacks the
    # CNN's locality), hence the larger size, P <= 16,000, against the CNN's 800.
    def __init__(self, width=64, depth=2, heads=4, dropout=0.0, lr=1e-3, weight_decay=0.01, warmup=0.05,
                 schedule="cosine", readout="flatten", patch=None, batch_size=64, epochs=40, max_steps=3000,
                 loss_threshold=1e-4, patience=2, val_fraction=0.0, val_patience=None, progress=False,
                 dtype="float32", device="auto", seed=0):
        self.width = width
        self.depth = depth
        self.heads = heads
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup = warmup
        self.schedule = schedule
        self.readout = readout
        self.patch = patch
        self.batch_size = batch_size
        self.epochs = epochs
        self.max_steps = max_steps
        self.loss_threshold = loss_threshold
        self.patience = patience
        self.val_fraction = val_fraction
        self.val_patience = val_patience
        self.progress = progress
        self.dtype = dtype
        self.device = device
        self.seed = seed

    def _validate_shape(self):
        check_int("depth", self.depth, 1)
        heads = check_int("heads", self.heads, 1)
        if check_int("width", self.width, 1) % heads:
            raise ValueError(f"width={self.width} must be a multiple of heads={heads}")
        check_float("dropout", self.dropout, 0.0, maximum=1.0)
        if self.readout not in ("mean", "flatten"):
            raise ValueError(f"readout={self.readout!r} must be 'mean' or 'flatten'")
        check_int("patch", self.patch, 2, none_ok=True)

    def _encode(self, xb):
        return xb

    @contextlib.contextmanager
    def _seeded(self):
        # dropout draws from torch's global generator: seed it from `seed` inside a fork (caller's state kept)
        cuda = torch.cuda.is_available() and resolve_device(self.device).type == "cuda"
        with torch.random.fork_rng(devices=[torch.cuda.current_device()] if cuda else []):
            torch.manual_seed(check_seed(self.seed))
            yield

    def _fit(self, x, y):
        with self._seeded():
            super()._fit(x, y)

    def _build(self, gen, dtype):
        return TransformerNet(self.v_, self.n_classes_, self.d_, self.width, self.depth, self.heads, self.dropout,
                              self.task_, gen, self.readout, self.patch).to(dtype)

    def _layer_features(self, net, ids):
        raise ValueError("transformer: hidden-layer features are not defined (no tree-aligned layers)")
