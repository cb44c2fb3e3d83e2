"""LM2's analysis (rhm.experiments.exp_lm.analyze_LM2, the --full mode's) on a store holding part of its grid.

LM2 runs only in `rhm reproduce --full` (1,530 runs, L = 3, 4, 5, three seeds). The sweeps
benchmarks/sweeps/lm2_heldout_L3.toml and lm2_heldout_L4.toml run its seed-0 part at L = 3 and 4 with --full's
sweep names and keys; this prints the verdict, P* and ratio tables the report would show for what the store holds
(a depth with no rows is left out of the analysis).

    nice -n 5 rhm sweep benchmarks/sweeps/lm2_heldout_L3.toml --store S --workers 1
    nice -n 5 rhm sweep benchmarks/sweeps/lm2_heldout_L4.toml --store S --workers 1
    python benchmarks/lm2_partial.py --store S
"""

from __future__ import annotations

import argparse
import tempfile

from rhm.experiments import ResultStore
from rhm.experiments.registry import get
from rhm.experiments.render import render_md


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True, help="a results store holding full-LM2-L* rows")
    args = ap.parse_args()
    exp = get("LM2")
    with ResultStore(args.store) as st, tempfile.TemporaryDirectory() as out:
        s = exp.analyze(exp, st, "full", out)
    print(f"LM2: {s.verdict}. {s.numbers}\n")
    print(render_md([b for b in s.blocks if b[0] == "table"]))  # the figures were written to a temporary folder


if __name__ == "__main__":
    main()
