"""Every experiment of ``rhm reproduce``, by id: one :class:`~rhm.experiments.experiment.Experiment` record each.

The records live with the family they belong to, one module each: R1-R3 the grammar and the paper's learner
(:mod:`.exp_paper`), R4-R7 and R9 the deep learners on one grid (:mod:`.exp_deep`), R8 Appendix C
(:mod:`.exp_boolean`), V1-V2 the variants of the RHM (:mod:`.exp_variants`), LM1-LM3 the language-model tasks
(:mod:`.exp_lm`), DM1-DM3 diffusion (:mod:`.exp_diffusion`), SS1 grammar induction
from unlabeled strings (:mod:`.exp_ss`), FG1 the transformer vs exact BP on the soft grammar (:mod:`.exp_soft`),
FG2 the moment learner on the varying-tree RHM (:mod:`.exp_moments`), FG3 the varying-tree RHM's ambiguity
transition (:mod:`.exp_varying`). To add an experiment, write its record in its family's module (or a new one)
and list it here.
"""

from __future__ import annotations

from .exp_boolean import R8
from .exp_diffusion import DM1, DM2, DM3
from .exp_deep import R4, R5, R6, R7, R9
from .exp_lm import LM1, LM2, LM3
from .exp_moments import FG2
from .exp_paper import R1, R2, R3
from .exp_soft import FG1
from .exp_ss import SS1
from .exp_variants import V1, V2
from .exp_varying import FG3
from .experiment import MODES, Experiment

__all__ = ["EXPERIMENTS", "MODES", "Experiment", "get"]

EXPERIMENTS: dict[str, Experiment] = {
    e.id: e for e in (R1, R2, R3, R4, R5, R6, R7, R8, R9, V1, V2,
                      LM1, LM2, LM3, DM1, DM2, DM3, SS1, FG1, FG2, FG3)}


def get(rid: str) -> Experiment:
    if rid not in EXPERIMENTS:
        raise ValueError(f"experiment={rid!r} is not one of {list(EXPERIMENTS)}")
    return EXPERIMENTS[rid]
