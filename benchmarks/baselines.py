"""Baselines on v = n_c = 8, m = 4, s = 2, L = 3 (uniform rules): accuracy / fit time, CNN epoch time, CNN P*.

Run (one thread, the numbers in the README were taken this way):

    OMP_NUM_THREADS=1 nice python benchmarks/baselines.py [--quick] [--out results.md]

Prints markdown tables:

1. test accuracy (mean ± sd over 3 seeds) and fit seconds of every learner at P = 1k, 4k, 16k, 64k; a learner
   that cannot run at some P (kernel: memory) says so;
2. the CNN's seconds per epoch at width 64 and 256, P = 10k, batch 128, next to a plain F.conv1d reference
   implementation (one-hot dataset stored, as in the prior code) timed in the same process, with the ratio;
3. the CNN's P* (test error <= 0.1 (1 - 1/n_c)) per seed and the median, with the default hyperparameters.

Seeds: grammar seed = data seed = learner seed = 0, 1, 2. Data: g.sample(P + P_test, seed, replace=False),
split, so the test set is disjoint from the training set.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

import rhm
from rhm import learners

V, M, S, L = 8, 4, 2, 3
THRESHOLD = 0.1 * (1 - 1 / V)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------ accuracy and fit time
def accuracy_table(sizes, seeds, n_test, names):
    rows = []
    data = {}
    for seed in seeds:
        g = rhm.RHM(V, M, S, L, seed=seed)
        x, y = g.sample(max(sizes) + n_test, seed=seed, replace=False)
        data[seed] = (g, x, y)
    for name in names:
        cls = learners.get(name)
        for P in sizes:
            accs, secs, note = [], [], ""
            for seed in seeds:
                g, x, y = data[seed]
                model = cls(device="cpu", seed=seed)
                try:
                    t0 = time.perf_counter()
                    model.fit(x[:P], y[:P], grammar=g)
                    secs.append(time.perf_counter() - t0)
                except ValueError as err:
                    note = str(err).split(";")[0]
                    break
                accs.append(model.score(x[-n_test:], y[-n_test:]))
                log(f"{name} P={P} seed={seed}: acc {accs[-1]:.4f} fit {secs[-1]:.1f} s")
            rows.append((name, P, accs, secs, note))
    return rows


def print_accuracy(rows, n_test, seeds):
    print(f"\n### Test accuracy and fit time (v=n_c={V}, m={M}, s={S}, L={L}; {len(seeds)} seeds; "
          f"{n_test} test inputs; defaults)\n")
    print("| learner | P | test accuracy (mean ± sd) | per seed | fit s (mean) |")
    print("|---|---|---|---|---|")
    for name, P, accs, secs, note in rows:
        if note:
            print(f"| {name} | {P} | cannot run | {note} | – |")
            continue
        sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
        print(f"| {name} | {P} | {statistics.mean(accs):.4f} ± {sd:.4f} | "
              f"{', '.join(f'{a:.3f}' for a in accs)} | {statistics.mean(secs):.1f} |")


# ------------------------------------------------------------------------------------------ epoch timing
class ReferenceCNN(torch.nn.Module):
    """Plain hierarchical CNN as in the prior conv-based code: F.conv1d(stride=s) / sqrt(c_in s), mean-field."""

    def __init__(self, v, width, n_classes, gen):
        super().__init__()
        chans = [v] + [width] * L
        self.w = torch.nn.ParameterList(torch.nn.Parameter(torch.randn(chans[k + 1], chans[k], S, generator=gen))
                                        for k in range(L))
        self.beta = torch.nn.Parameter(torch.randn(n_classes, width, generator=gen))
        self.width = width

    def forward(self, x):
        for w in self.w:
            x = F.relu(F.conv1d(x, w / math.sqrt(w.shape[1] * S), stride=S))
        return x.mean(-1) @ self.beta.t() / self.width


def reference_epoch_seconds(x, y, width, epochs, batch=128):
    """Seconds per epoch of the plain reference, with the same optimiser settings as our default CNN."""
    d = learners.get("cnn").defaults()
    gen = torch.Generator().manual_seed(0)
    net = ReferenceCNN(V, width, V, gen)
    opt = torch.optim.SGD(net.parameters(), lr=d["lr"] * width, momentum=d["momentum"],
                          weight_decay=d["weight_decay"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, int(0.8 * epochs)))
    xo = F.one_hot(torch.as_tensor(x.astype(np.int64)), V).float().transpose(1, 2).contiguous()  # stored one-hot
    yt = torch.as_tensor(y.astype(np.int64))
    times = []
    for _ in range(epochs + 1):  # first epoch is warm-up
        t0 = time.perf_counter()
        perm = torch.randperm(len(xo), generator=gen)
        for i in range(0, len(xo), batch):
            idx = perm[i:i + batch]
            loss = F.cross_entropy(net(xo[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def ours_epoch_seconds(x, y, width, epochs, impl, batch=128):
    g = rhm.RHM(V, M, S, L, seed=0)
    cls = learners.get("cnn")
    cls(width=width, batch_size=batch, epochs=1, loss_threshold=0.0, device="cpu", impl=impl).fit(x, y, grammar=g)
    model = cls(width=width, batch_size=batch, epochs=epochs, loss_threshold=0.0, device="cpu", impl=impl)
    t0 = time.perf_counter()
    model.fit(x, y, grammar=g)
    return (time.perf_counter() - t0) / epochs


def timing_table(epochs):
    g = rhm.RHM(V, M, S, L, seed=0)
    x, y = g.sample(10000, seed=0, replace=False)
    print(f"\n### CNN seconds per epoch (P=10000, batch 128, L={L}, {torch.get_num_threads()} thread(s), "
          f"median/mean of {epochs} epochs)\n")
    print("| width | reference F.conv1d (s/epoch) | ours impl=conv1d (default) | ratio | ours impl=matmul | ratio |")
    print("|---|---|---|---|---|---|")
    for width in (64, 256):
        ref = reference_epoch_seconds(x, y, width, epochs)
        conv = ours_epoch_seconds(x, y, width, epochs, "conv1d")
        mm = ours_epoch_seconds(x, y, width, epochs, "matmul")
        log(f"width {width}: reference {ref:.3f} s, conv1d {conv:.3f} s, matmul {mm:.3f} s")
        print(f"| {width} | {ref:.3f} | {conv:.3f} | {conv / ref:.2f} | {mm:.3f} | {mm / ref:.2f} |")


# ------------------------------------------------------------------------------------------------ P* of CNN
def p_star(seed, grid, n_test, **kw):
    """Smallest grid P whose test error is <= THRESHOLD, log-interpolated with the grid point below it.

    Returns (P*, [(P, error), ...]); P* is None if no grid point passes. The scan stops once two consecutive
    grid points pass.
    """
    g = rhm.RHM(V, M, S, L, seed=seed)
    x, y = g.sample(max(grid) + n_test, seed=seed, replace=False)
    xt, yt = x[-n_test:], y[-n_test:]
    cls = learners.get("cnn")
    errs, passed = [], 0
    for P in grid:
        model = cls(device="cpu", seed=seed, **kw).fit(x[:P], y[:P], grammar=g)
        errs.append((P, 1 - model.score(xt, yt)))
        log(f"P* seed {seed}: P={P} error {errs[-1][1]:.4f} ({model.info_['epochs_run']} epochs)")
        passed = passed + 1 if errs[-1][1] <= THRESHOLD else 0
        if passed == 2:
            break
    for i, (P, e) in enumerate(errs):
        if e <= THRESHOLD and all(e2 <= THRESHOLD for _, e2 in errs[i:]):
            if i == 0:
                return float(P), errs
            P0, e0 = errs[i - 1]
            if e <= 0:
                return float(P), errs
            t = math.log(e0 / THRESHOLD) / math.log(e0 / e)
            return P0 * (P / P0) ** t, errs
    return None, errs


def pstar_table(seeds, grid, n_test, **kw):
    print(f"\n### CNN P* (test error <= 0.1(1 - 1/n_c) = {THRESHOLD:.4f}; defaults{' + ' + str(kw) if kw else ''}; "
          f"{n_test} test inputs)\n")
    print("| seed | P* | test error at the grid points |")
    print("|---|---|---|")
    values = []
    for seed in seeds:
        ps, errs = p_star(seed, grid, n_test, **kw)
        values.append(ps if ps is not None else math.inf)
        print(f"| {seed} | {'> ' + str(grid[-1]) if ps is None else f'{ps:.0f}'} | "
              + ", ".join(f"{P}: {e:.3f}" for P, e in errs) + " |")
    med = statistics.median(values)
    print(f"| **median** | **{med:.0f}** | n_c m^L = {V * M**L} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 seed, P <= 4k, 1 timing epoch: a smoke run")
    ap.add_argument("--skip", default="", help="comma list of sections to skip: accuracy,timing,pstar")
    ap.add_argument("--learners", default="cnn,kmeans,fcn,kernel")
    args = ap.parse_args()
    torch.set_num_threads(1)
    skip = set(filter(None, args.skip.split(",")))
    seeds = [0] if args.quick else [0, 1, 2]
    sizes = [1000, 4000] if args.quick else [1000, 4000, 16000, 64000]
    n_test = 2000 if args.quick else 10000
    print(f"# Baselines on RHM(v={V}, m={M}, s={S}, L={L}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s)")
    if "timing" not in skip:
        timing_table(1 if args.quick else 5)
    if "pstar" not in skip:
        pstar_table(seeds, [500, 600, 700, 800, 1000, 1200, 1600], 2000 if args.quick else 10000)
    if "accuracy" not in skip:
        rows = accuracy_table(sizes, seeds, n_test, args.learners.split(","))
        print_accuracy(rows, n_test, seeds)


if __name__ == "__main__":
    main()
