"""chaining+: the paper's layerwise learner, rebuilt to use its samples (results: docs/chaining_plus.md).

Like the paper's learner it works bottom-up, one level at a time, and represents every level-l patch by
statistics that are equal for synonyms, so synonyms can be identified up to relabelling. Each change to the
paper is a method switch (all on by default):

- ``quantize``: the statistics of the distinct patches are clustered (weighted k-means in the Hellinger
  embedding) into ``n_symbols`` symbols, so the next level starts from exact tokens; off: every distinct patch
  is its own symbol (no synonym pooling). Sufficient statistics are always used: a level costs O(#distinct
  patches).
- ``all_patches``: label statistics P(label | patch at position p) for every position p, not only the first.
- ``reuse``: every level uses all samples (off: the paper's disjoint stage sets, N^(l) ∝ m^l).
- ``context``: also P(sibling | patch) for the other patches under the same parent, equal for synonyms and an
  O(1) signal where the label signal is ~m^(-l/2); ``context_passes`` extra passes measure it on the
  previous pass's symbols, which pools the sibling's synonyms.
- ``label_context``: in those passes also P(sibling's symbol, label | patch) per parent position: the pair fixes
  the parent symbol, so these blocks carry the label signal of the level above (what a dense grammar, m = v,
  needs: there the siblings are independent and P(label | patch) alone is near noise).
- ``refine``: top-down refinement sweeps after the bottom-up pass (hard EM: each distinct patch moves to the
  symbol that maximises the training label likelihood, the rest of the network fixed).
- ``structure``: on sparse levels (at most half of the possible tuples seen; at level 2 the (class, tuple)
  pairs, sparse even for a dense grammar) the k-means map is polished by an annealed Gibbs search on the
  likelihood of the level's sibling groups (true synonyms explain them with the fewest distinct tuples).
- ``class_structure``: on a dense level below level 2 (a grammar with m = v, where every tuple is a rule and the
  structure search has no signal) the search models the sibling tuples given the class and the group's
  position instead, which are sparse again (only the class's rules' slots occur).
- ``generative``: after the discriminative fit, EM on the RHM as a probabilistic grammar on its tree
  (rhm.pcfg, on rhm.inference's inside-outside: from the hard-decoded rule counts, Dirichlet prior
  ``prior``) and prediction by its exact class posterior, which sums over every latent symbol. Restarts
  are then compared by the joint likelihood log P(x, y) of their hard-decoded grammar (else by the training
  label likelihood).
- ``remeasure``: when the restarts did not confirm their best, redo the whole fit from context statistics
  measured on its refined symbols, round after round, each kept where the score rises.

Modules: statistics (blocks, clustering), structure (the Gibbs structure search), network (the hard
maps and top model: `FitState`), refine, search (one fit, restarts, re-fits), estimator (`ChainingPlus`).
"""

from ...patches import patch_ids
from .estimator import ChainingPlus
from .network import FitState
from .statistics import estimate_clusters
from .structure import SiblingStructure

__all__ = ["ChainingPlus", "FitState", "SiblingStructure", "estimate_clusters", "patch_ids"]
