"""rhm: Random Hierarchy Models and the layerwise learners that learn them.

Levels: level 0 is the root (the class label) and level L the input, as in Ren, Dandi, Krzakala, Lee (2026).
"""

from .grammar import RHM
from .sparse import SparseRHM
from .soft import SoftGrammar
from .varying import VaryingRHM
from .spec import Grammar, GrammarSpec
from .filtering import load_grammar
from . import diffusion, filtering, inference, learners, oracle, sampling
from .sensitivity import sensitivity

__version__ = "0.1.0"
__all__ = ["RHM", "SparseRHM", "SoftGrammar", "VaryingRHM", "Grammar", "GrammarSpec", "load_grammar",
           "diffusion", "filtering", "inference", "learners", "oracle", "sampling", "sensitivity", "__version__"]
