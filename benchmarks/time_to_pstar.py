"""Fit time at P* of chaining+ vs the CNN, timed one after the other in the same process (one thread).

    OMP_NUM_THREADS=1 python benchmarks/time_to_pstar.py

Sizes are the upper ends of the adaptive P* brackets found by benchmarks/sweeps/chaining_plus_vs_baselines*.toml
and, for the CNN at m=8, L=3, benchmarks/sweeps/pstar_check_m8_L3_cnn.toml (grammar seed 0, data/learner seed 0):
the smallest measured size at which each learner met the threshold.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from rhm import RHM, learners  # noqa: E402

# (v, m, L): (P for chaining+, P for the CNN, the CNN's parameters: the better of the two CNNs of the sweeps;
# at m=8, L=3 the default weight decay collapses it, benchmarks/sweeps/cnn_no_weight_decay.toml)
POINTS = {(8, 2, 3): (45, 128, {}), (8, 4, 3): (108, 861, {}), (8, 8, 2): (215, 1024, {}),
          (8, 8, 3): (1448, 3760, {"weight_decay": 0.0, "impl": "matmul"})}


def fit_seconds(name, g, P, **params):
    x, y = g.sample(P, seed=0, replace=False)
    model = learners.get(name)(seed=0, **params)
    t = time.perf_counter()
    model.fit(x, y, grammar=g)
    return time.perf_counter() - t


def main():
    torch.set_num_threads(1)
    print("| grammar | chaining+ P | fit s | CNN P | fit s | time ratio |")
    print("|---|---|---|---|---|---|")
    for (v, m, L), (p_plus, p_cnn, cnn_params) in POINTS.items():
        g = RHM(v, m, 2, L, seed=0)
        a, b = fit_seconds("chaining+", g, p_plus), fit_seconds("cnn", g, p_cnn, **cnn_params)
        print(f"| v={v} m={m} L={L} | {p_plus} | {a:.2f} | {p_cnn} | {b:.1f} | {a / b:.3f} |", flush=True)


if __name__ == "__main__":
    main()
