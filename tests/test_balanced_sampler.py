"""App. B's sampler: step 2 deals the V m candidate patches to the parents at random (m each), so a parent's
rules are a uniformly random m-subset of the candidates -- not only first-token counts equal to m."""

import math

import numpy as np

from rhm import RHM


def test_balanced_parent_assignment_is_random():
    V, m = 8, 4
    # a parent's m rules are a uniform m-subset of the V m candidates, m per first token: it misses a given first
    # token with probability C(Vm - m, m) / C(Vm, m) = C(28, 4) / C(32, 4) = 20475 / 35960 = 0.569383, so its
    # expected number of distinct first tokens is V (1 - 0.569383) = 3.444939 (a dealing sorted by first token
    # would give 1, a round-robin dealing 4)
    expected = V * (1 - math.comb(V * m - m, m) / math.comb(V * m, m))
    assert abs(expected - 3.444939) < 1e-6
    counts, parents_of_first = [], []
    for seed in range(30):
        g = RHM(V, m, 2, 3, rules="balanced", seed=seed)
        for table in g.rules:  # (V, m, s)
            counts += [len(set(row[:, 0].tolist())) for row in table]
        parents_of_first.append(tuple(np.argsort(g.rules[0][:, :, 0].min(axis=1), kind="stable")))
    counts = np.array(counts)  # 30 seeds * 3 levels * 8 parents = 720 (sd per parent ~0.63 -> se ~0.024)
    assert abs(counts.mean() - expected) < 0.12, counts.mean()
    assert 2 in counts and m in counts  # spread (1 distinct has probability 8 / C(32, 4) = 2e-4 only)
    # which parent gets the smallest first token changes with the seed (the dealing is not a fixed order)
    assert len(set(parents_of_first)) > 20
