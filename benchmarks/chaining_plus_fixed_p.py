"""chaining+ switches at a fixed training size: mean test error over grammar seeds 0-2 x data seeds 0-2.

    OMP_NUM_THREADS=1 python benchmarks/chaining_plus_fixed_p.py

Complements the adaptive-P* ladder of benchmarks/chaining_plus.py for the switches whose gain shows mostly below
P*: `structure`, `generative`, `exclusive`, `denoise`, `label_context`, `upper_restarts` and `remeasure`, at
v = n_c = 8, s = 2, L = 3 with m = 2 (P = 54), m = 4 (P = 120) and m = 8 (P = 1450). Each run fits on the first
P of g.sample(min(P + 5000, #inputs), seed=1000 + seed, without replacement) and tests on the rest.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from rhm import RHM  # noqa: E402
from rhm.learners.chaining_plus import ChainingPlus  # noqa: E402

CONFIGS = [
    ("`structure=False, generative=False`", {"structure": False, "generative": False}),
    ("`structure` only", {"generative": False}),
    ("`generative` only", {"structure": False}),
    ("`structure` and `generative`, `exclusive=False`", {"exclusive": False}),
    ("defaults without `denoise`", {"denoise": False}),
    ("defaults without `label_context`", {"label_context": False}),
    ("defaults without `upper_restarts`", {"upper_restarts": 0}),
    ("defaults without `remeasure`", {"remeasure": 0}),
    ("defaults", {}),
]
POINTS = [(2, 54), (4, 120), (8, 1450)]  # (m, P)


def mean_error(params, m, P, L=3, v=8):
    errs = []
    for grammar_seed in range(3):
        g = RHM(v, m, 2, L, seed=grammar_seed)
        for seed in range(3):
            x, y = g.sample(min(P + 5000, g.num_inputs), seed=1000 + seed, replace=False)
            model = ChainingPlus(seed=seed, **params).fit(x[:P], y[:P], grammar=g)
            errs.append(1 - model.score(x[P:], y[P:]))
    return float(np.mean(errs))


def main():
    torch.set_num_threads(1)
    print("| switches | " + " | ".join(f"v=8 m={m} L=3, P={P}" for m, P in POINTS) + " |")
    print("|---|" + "---|" * len(POINTS))
    for name, params in CONFIGS:
        cells = [f"{mean_error(params, m, P):.3f}" for m, P in POINTS]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
