"""induce: grammar induction from unlabeled strings, then exact inference on the learned grammar.

After Korchinski, Favero, Wyart, "Learn from your own latents and not from tokens: a sample-complexity theory"
(arXiv 2605.27734, 2026): on the RHM, latent prediction (their iterative latent clustering, ILC) recovers the
latent tree from about m^3 samples up to logarithms, constant in the depth L, where supervised learning and
token-level self-supervision (MLM, diffusion) need samples exponential in L. ILC works bottom-up: at each
level, the distinct patches are represented by the statistics of their neighbouring context, which are equal
for synonyms (the context depends on a patch only through its latent symbol); the patches are clustered into
latent symbols, the string is rewritten in those symbols, and the next level starts from them.

Here, with rhm's own parts (no code of the paper; it published none):

1. levels (per level, from the bottom): each distinct s-patch's statistic is P(sibling patch | patch, slot)
   under the same parent node (chaining+'s context blocks, with the one root in place of the label),
   clustered by weighted k-means, polished by chaining+'s annealed structure search, re-measured on the
   sibling's symbols (`passes`);
2. refine: the decoded trees' rule counts refined by MAP-EM on rhm.pcfg's tables (rhm.inference's
   inside-outside), then rules extracted (one owner per tuple, at least `threshold` expected uses);
3. grammar: :class:`InducedGrammar`, one root over the top-level tuples seen (the grouping into classes is not
   identifiable without labels), on which every rhm.inference function runs;
4. estimator: :class:`Induce` (learner "induce", tasks masked and next-token, predictions by exact inference);
5. measures: rules recovered up to relabelling per level, KL(true || learned) of masked-token posteriors.

Results and the targets of issue 27: docs/induce.md.
"""

from .estimator import Induce
from .grammar import InducedGrammar, masked_posterior
from .measures import masked_kl, rules_recovered

__all__ = ["Induce", "InducedGrammar", "masked_kl", "masked_posterior", "rules_recovered"]
