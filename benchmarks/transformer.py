"""Training throughput on CPU: rhm's transformer against torch.nn.TransformerEncoder, the LCN against the CNN.

Run (one thread):

    OMP_NUM_THREADS=1 nice python benchmarks/transformer.py [--steps 60]

1. tokens/s of a training step (forward, cross-entropy, backward, AdamW) of rhm's TransformerNet (classify head)
   and of a plain ``torch.nn.TransformerEncoder`` of the same size (pre-LN, GELU, 4x MLP, same width, depth,
   heads, embeddings and head), timed alternately in the same process; target: ratio >= 0.9;
2. seconds per epoch of ``LCN`` and ``CNN`` (same width, same grammar and data, fit through the public API);
   target: LCN / CNN <= 1.5.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

import rhm
from rhm.learners import get
from rhm.learners.transformer import TransformerNet


class Reference(torch.nn.Module):
    """The same network built from torch.nn.TransformerEncoder."""

    def __init__(self, v, n_out, d, width, depth, heads):
        super().__init__()
        self.tok, self.pos = torch.nn.Embedding(v + 2, width), torch.nn.Embedding(d, width)
        layer = torch.nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, activation="gelu",
                                                 batch_first=True, norm_first=True)
        self.enc = torch.nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.ln, self.head = torch.nn.LayerNorm(width), torch.nn.Linear(width, n_out)

    def forward(self, ids):
        return self.head(self.ln(self.enc(self.tok(ids.long()) + self.pos.weight)).mean(1))


def tokens_per_second(net, x, y, steps):
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    for i in range(steps + 5):
        if i == 5:
            t0 = time.perf_counter()
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps * x.numel() / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    args = ap.parse_args()
    torch.manual_seed(0)
    print("| width | depth | d | batch | rhm tokens/s | nn.TransformerEncoder tokens/s | ratio |")
    print("|---|---|---|---|---|---|---|")
    for width, depth, d, batch in [(64, 2, 16, 64), (128, 4, 32, 64)]:
        v = 16
        x, y = torch.randint(0, v, (batch, d)), torch.randint(0, v, (batch,))
        ours = TransformerNet(v, v, d, width, depth, 4, 0.0, "classify", torch.Generator().manual_seed(0))
        ref = Reference(v, v, d, width, depth, 4)
        a, b = [], []
        for _ in range(3):  # alternate, keep the best of 3 (load on a shared machine only slows things down)
            a.append(tokens_per_second(ours, x, y, args.steps))
            b.append(tokens_per_second(ref, x, y, args.steps))
        print(f"| {width} | {depth} | {d} | {batch} | {max(a):,.0f} | {max(b):,.0f} | {max(a) / max(b):.2f} |")

    g = rhm.RHM(16, 4, 2, 3, seed=0)
    xs, ys = g.sample(4096, seed=0)
    print("\n| width | CNN s/epoch | LCN s/epoch | LCN / CNN |")
    print("|---|---|---|---|")
    for width in (64, 256):
        secs = {}
        for name in ("cnn", "lcn"):
            best = []
            for _ in range(3):
                m = get(name)(width=width, epochs=2, batch_size=64, seed=0).fit(xs, ys, grammar=g)
                best.append(m.info_["fit_seconds"] / 2)
            secs[name] = min(best)
        print(f"| {width} | {secs['cnn']:.3f} | {secs['lcn']:.3f} | {secs['lcn'] / secs['cnn']:.2f} |")


if __name__ == "__main__":
    main()
