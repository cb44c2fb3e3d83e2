"""End-to-end check of every torch learner's CUDA path, with timings (for a machine with a GPU).

    python benchmarks/gpu_check.py            # exits 0 with a message when CUDA is absent
    python benchmarks/gpu_check.py --cpu      # the same checks on the CPU (to test this script without a GPU)

For each (learner, task) it serves: fit on a small grammar on the device (bf16 autocast for the transformer),
predict, score, the Bayes excess cross-entropy of the language-model tasks, and the fit seconds; the torch
learners also train online (``fit_stream`` on an RHMStream, 200 batches).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

import rhm
from rhm import learners, lm_tasks
from rhm.data import RHMStream

SMALL = {"cnn": dict(width=64, epochs=5), "lcn": dict(width=64, epochs=5), "fcn": dict(width=64, epochs=5),
         "transformer": dict(width=64, depth=2, epochs=5), "kmeans": {}, "kernel": {}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cpu", action="store_true", help="run on the CPU (no GPU needed)")
    args = ap.parse_args()
    if not args.cpu and not torch.cuda.is_available():
        print("gpu_check: CUDA is not available on this machine; nothing to check (use --cpu to test the script)")
        return 0
    device = "cpu" if args.cpu else "cuda"
    print(f"device: {torch.cuda.get_device_name(0) if device == 'cuda' else 'cpu'}")
    g = rhm.RHM(8, 4, 2, 3, seed=0)
    failures = 0
    for name in learners.names():
        cls = learners.get(name)
        params = dict(SMALL.get(name, {}))
        if "device" in cls.defaults():
            params["device"] = device
        elif device == "cuda":
            print(f"{name:12s} (no device parameter: CPU only)")
        for task in cls.tasks:
            data = lm_tasks.sample(g, task, 2000, seed=0)
            test = lm_tasks.sample(g, task, 500, seed=1)
            try:
                t0 = time.perf_counter()
                model = cls(**params).fit(data.x, data.y, grammar=g, task=task)
                if device == "cuda":
                    torch.cuda.synchronize()
                fit_s = time.perf_counter() - t0
                acc = model.score(test.x, test.y)
                extra = ""
                if task != "classify":
                    ev = lm_tasks.evaluate(g, test, model.predict_proba(test.x))
                    extra = f" excess CE {ev['excess_cross_entropy']:.3f}"
                dev = getattr(model, "info_", {}).get("device", "-")
                print(f"{name:12s} {task:15s} fit {fit_s:7.2f} s  accuracy {acc:.3f}{extra}  on {dev}")
                if hasattr(cls, "fit_stream"):  # online: fresh batches drawn on the host, trained on the device
                    t0 = time.perf_counter()
                    model = cls(**params).fit_stream(RHMStream(g, 64, seed=0, task=task), max_steps=200)
                    if device == "cuda":
                        torch.cuda.synchronize()
                    print(f"{name:12s} {task:15s} online {time.perf_counter() - t0:7.2f} s  accuracy "
                          f"{model.score(test.x, test.y):.3f}  on {model.info_['device']}")
            except Exception as err:  # report every failure, then exit non-zero
                failures += 1
                print(f"{name:12s} {task:15s} FAILED: {type(err).__name__}: {err}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
