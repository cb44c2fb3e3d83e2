"""The anchor papers' language-model training protocols as named presets (``rhm train --protocol NAME``).

A protocol is a learner, a task, the task's settings and the learner's hyperparameters, with the paper it comes
from and what differs here on a CPU. It fixes what the paper fixes; a user's explicit options win over it
(``rhm train --protocol cagnetta-wyart-2024 --hp max_steps=500``), and the grammar is always the user's.

* ``cagnetta-wyart-2024``: Cagnetta & Wyart, "Towards a theory of how the structure of language is acquired by
  deep neural networks", NeurIPS 2024 (arXiv 2406.00048). Next-token prediction of the last token of an RHM
  string from the others (task ``next-token``), a causal (decoder-only) transformer trained with Adam on
  cross-entropy, and the test loss read at the epoch of the lowest held-out loss (our weight selection on
  validation cross-entropy, which keeps those weights).
* ``garnier-brun-2025``: Garnier-Brun, Mézard, Moscato & Saglietti, "How transformers learn structured data:
  insights from hierarchical filtering", ICML 2025 (arXiv 2408.15138). Masked language modelling with exactly one
  masked token per sequence, re-drawn for every batch (``mask_rate="one"`` and ``remask``), an encoder-only
  transformer with as many layers as the tree has levels, Adam.

What is taken from the papers is the task, the masking, the architecture family, the optimiser and the model
selection rule; the widths, learning rates and step budgets below are ours, sized for 2 CPU cores (the papers
train larger models on GPUs for many more steps; their exact sizes were not re-checked here, so no number below
claims to be theirs). Both use no weight decay (plain Adam) and a constant learning rate after a short warmup.
Both rely on the torch learners' calibrated defaults (``rhm.learners._torch``): a 10% validation split with the
weights of the lowest validation cross-entropy kept, and, for the masked task, a fresh mask every batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .validation import check_choice


@dataclass(frozen=True)
class Protocol:
    """One named preset: learner, task, task settings, learner hyperparameters, provenance."""

    name: str
    paper: str
    learner: str
    task: str
    params: dict = field(default_factory=dict)
    #: masked task: a probability, or "one" (one hidden token per row)
    mask_rate: float | str = 0.15
    #: the grammar's depth L decides the number of layers (depth = L), as in Garnier-Brun et al.
    depth_from_L: bool = False
    #: what differs on a CPU from the paper's own runs
    cpu_differences: str = ""

    def learner_params(self, L: int | None = None) -> dict:
        """The learner's hyperparameters for a grammar of depth L (depth = L when depth_from_L)."""
        out = dict(self.params)
        if self.depth_from_L and L is not None:
            out["depth"] = int(L)
        return out

    def describe(self) -> dict:
        return {"protocol": self.name, "paper": self.paper, "learner": self.learner, "task": self.task,
                "mask_rate": self.mask_rate, "params": dict(self.params), "depth_from_L": self.depth_from_L,
                "cpu_differences": self.cpu_differences}


PROTOCOLS = {
    "cagnetta-wyart-2024": Protocol(
        name="cagnetta-wyart-2024",
        paper="Cagnetta & Wyart, NeurIPS 2024, arXiv 2406.00048",
        learner="transformer", task="next-token",
        # optimizer: the transformer's loop runs AdamW; weight_decay=0 makes it Adam
        params={"width": 64, "depth": 2, "heads": 4, "dropout": 0.0, "lr": 1e-3, "weight_decay": 0.0,
                "warmup": 0.05, "schedule": "constant", "batch_size": 32, "max_steps": 3000},
        cpu_differences="width 64, 2 blocks and at most 3,000 Adam steps (the paper's transformers are larger and "
                        "train longer on a GPU); the best held-out loss is read on a 10% validation split of the "
                        "P training samples, with early stopping after 10 epochs (at least 500 steps) without a "
                        "lower one"),
    "garnier-brun-2025": Protocol(
        name="garnier-brun-2025",
        paper="Garnier-Brun, Mézard, Moscato & Saglietti, ICML 2025, arXiv 2408.15138",
        learner="transformer", task="masked", mask_rate="one", depth_from_L=True,
        params={"width": 64, "heads": 4, "dropout": 0.0, "lr": 1e-3, "weight_decay": 0.0, "warmup": 0.05,
                "schedule": "constant", "batch_size": 32, "max_steps": 3000},
        cpu_differences="width 64 and at most 3,000 Adam steps (the paper trains larger encoders for many more "
                        "steps on a GPU); depth = L encoder blocks as in the paper; offline fits also hold out 10% "
                        "for the weight selection (the paper trains online, i.e. `--online`, where none is "
                        "needed)"),
}
NAMES = tuple(PROTOCOLS)


def get(name: str) -> Protocol:
    """The protocol called `name` (ValueError naming the known ones otherwise)."""
    return PROTOCOLS[check_choice("protocol", name, NAMES)]


def sweep_fields(name: str, L: int) -> dict:
    """What a :class:`rhm.experiments.Sweep` needs to run protocol `name` on grammars of depth L: {"learners":
    [LearnerSpec], "objective", "extras"} (pass them as keyword arguments with the grammars and sizes)."""
    from .experiments.sweep import LearnerSpec

    p = get(name)
    extras = {"mask_rate": p.mask_rate} if p.task == "masked" else {}
    return {"learners": [LearnerSpec(p.learner, params=p.learner_params(L), label=p.name)],
            "objective": p.task, "extras": extras}
