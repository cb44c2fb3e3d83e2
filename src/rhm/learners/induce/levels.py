"""One level of the bottom-up induction: which distinct s-patches of a level's sequence are synonyms.

The statistic of a patch is the distribution of its sibling (the other patches under the same parent node)
given the patch and its slot: under the RHM the sibling depends on the patch only through the patch's latent
symbol, so synonyms have equal rows (chaining+'s context blocks, rhm.learners.chaining_plus.statistics, with
the one root as the "label"). The rows are clustered by weighted k-means in the Hellinger embedding, the map
is polished by chaining+'s annealed structure search on the sibling groups' likelihood, and ``passes`` more
rounds measure the sibling on the previous round's symbols (which pools the sibling's synonyms: the statistic
then has k columns instead of one per distinct patch). The best map by the structure likelihood is kept.
"""

from __future__ import annotations

import numpy as np

from ...patches import patch_ids
from ..chaining_plus.statistics import Blocks, cluster, n_clusters, statistics
from ..chaining_plus.structure import SiblingStructure


def patch_inverse(seq: np.ndarray, s: int, base: int):
    """(distinct patches (U,) codes, inverse (n, len/s)) of the s-patches of a level's sequence (n, len)."""
    n = len(seq)
    return patch_ids(seq.reshape(n, -1, s).astype(np.int64), base)


def cluster_level(inv: np.ndarray, U: int, s: int, n_symbols, v: int, rng: np.random.Generator, *,
                  prior: float, n_init: int, passes: int, structure: dict | None) -> np.ndarray:
    """Symbol (< k) of each of the U distinct patches whose occurrences are inv (n, P), P >= s a multiple of s.

    n_symbols: "v", "auto" or an int (see chaining_plus.statistics.n_clusters); structure: the keyword budget
    of SiblingStructure.search (chains, sweeps, blocks), None to skip the search.
    """
    n = len(inv)
    cfg = Blocks(s=s, n_classes=1, prior=prior, all_patches=False, context=True)
    root = np.zeros(n, dtype=np.int64)
    rows = np.arange(n)
    weight = np.bincount(inv.ravel(), minlength=U).astype(np.float64)
    judge = SiblingStructure(inv, s, 1, U)  # k fixed below, once known
    best, best_score, sib, K = None, -np.inf, inv, U
    for _ in range(1 + passes):
        feats = statistics(cfg, inv, sib, K, root, rows, U)[1:]  # [0]: P(root | patch) = 1, no information
        F = np.hstack(feats)
        k = n_clusters(F, U, n_symbols, v)
        if k >= U:
            return np.arange(U)
        sym = cluster(F, weight, k, n_init, rng)
        judge.k = k
        if structure is not None:
            sym = judge.search(sym, rng, **structure)
        sym = np.unique(sym, return_inverse=True)[1]  # compact labels (a search may empty a symbol)
        judge.k = int(sym.max()) + 1
        score = float(judge.score(sym)[0])
        if score > best_score + 1e-9:
            best, best_score = sym, score
        sib, K = sym[inv], judge.k
    return best
