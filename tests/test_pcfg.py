"""rhm.pcfg: the RHM as a probabilistic grammar: Bayes classifier, inside pass, expected counts, EM, tables."""

import itertools
import subprocess
import sys

import numpy as np
import pytest

from rhm import RHM, pcfg

SHAPES = [(8, 2, 2, 3), (8, 4, 2, 3), (5, 2, 2, 3), (4, 2, 3, 2), (4, 4, 4, 2), (4, 2, 2, 1)]


def true_tables(g):
    return pcfg.tables_from_rules(g.rules, [g.n_classes] + [g.v] * g.L)


@pytest.mark.parametrize("v, m, s, L", SHAPES)
def test_true_rules_give_the_exact_bayes_classifier(v, m, s, L):
    for grammar_seed in range(5):
        g = RHM(v, m, s, L, seed=grammar_seed)
        x, y = g.sample(min(500, g.num_inputs), seed=grammar_seed, replace=False)
        scores = pcfg.class_scores(true_tables(g), x, s, np.full(g.n_classes, -np.log(g.n_classes)))
        assert (scores.argmax(1) == y).all()
        # every internal node picks one of m rules uniformly: log P(x | y) = -(#nodes) log m
        nodes = (g.d - 1) // (s - 1)
        assert np.allclose(scores[np.arange(len(y)), y] + np.log(g.n_classes), -nodes * np.log(m))


def test_expected_counts_are_tables_times_the_likelihood_gradient():
    # E-step identity: expected count of a rule = R * d log L / d R (checked by central differences)
    g = RHM(4, 2, 2, 3, seed=0)
    x, y = g.sample(40, seed=0)
    rng = np.random.default_rng(0)
    tables = [t + rng.random(t.shape) for t in true_tables(g)]
    counts, ll = pcfg.expected_counts(tables, x, y, 2)

    def loglik(ts):
        return pcfg.log_likelihood(ts, x, 2)[np.arange(len(y)), y].sum()

    assert np.isclose(ll, loglik(tables))
    for level in range(3):
        for a, t in [(0, 0), (1, 5), (3, 15)]:
            eps = 1e-6 * tables[level][a, t]
            up = [tt.copy() for tt in tables]
            dn = [tt.copy() for tt in tables]
            up[level][a, t] += eps
            dn[level][a, t] -= eps
            grad = (loglik(up) - loglik(dn)) / (2 * eps)
            assert np.isclose(counts[level][a, t], tables[level][a, t] * grad, rtol=1e-4, atol=1e-7)
    for level, c in enumerate(counts):  # every node has one rule: counts sum to the nodes of that level
        assert np.isclose(c.sum(), len(x) * 2**level)


def test_rule_counts_of_true_trees_and_em_never_decreases_its_objective():
    for grammar_seed in range(5):
        g = RHM(8, 2, 2, 3, seed=grammar_seed)
        x, y, tree = g.sample(60, seed=grammar_seed, replace=False, return_tree=True)
        counts = pcfg.rule_counts([y[:, None]] + list(tree[1:]), [8, 8, 8, 8], 2)
        assert [c.sum() for c in counts] == [60, 120, 240]
        for level, c in enumerate(counts):  # only the grammar's rules are counted
            assert (c[true_tables(g)[level] == 0] == 0).all()
        objs = []
        for iters in (1, 2, 5):
            _, info = pcfg.em(counts, x, y, 2, prior=2.0, max_iters=iters, tol=0.0)
            objs.append(info["em_objective"])
        assert objs[0] <= objs[1] + 1e-9 <= objs[2] + 2e-9


def test_exclusive_tables_give_a_missing_rule_mass_to_the_symbol_that_lacks_it():
    # 3 parents, 2 rules each over 9 tuples; parent 2 showed only one of its rules
    counts = np.zeros((3, 9))
    counts[0, [0, 1]] = 5
    counts[1, [2, 3]] = 5
    counts[2, 4] = 5
    t = pcfg.exclusive_tables([counts], m=2, prior=2.0)[0]
    assert np.allclose(t.sum(1), 1.0) and (t > 0).all()
    free = [5, 6, 7, 8]  # no parent claimed them: the missing rule is one of them, and parent 2's
    assert (t[2, free].argmax() + 5 in free) and (t[2, free] > 10 * t[0, free]).all()
    assert np.allclose(pcfg.dirichlet_tables([counts], 2.0)[0].sum(1), 1.0)


def test_pcfg_stands_alone_without_torch():
    # (rhm itself imports the learners' lazy registry, never a learner module)
    code = ("import sys, rhm.pcfg; assert 'torch' not in sys.modules; "
            "assert not [m for m in sys.modules if m.startswith('rhm.learners.')]")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_expected_counts_match_enumeration_of_every_tree():
    # 2 classes -> 3 symbols -> 2 tokens, s = 2: every (class, root tuple, two leaf tuples) derivation
    for seed in range(3):
        rng = np.random.default_rng(seed)
        tables = [rng.random((2, 9)) + 0.05, rng.random((3, 4)) + 0.05]
        tables = [t / t.sum(1, keepdims=True) for t in tables]
        x = np.array(list(itertools.product(range(2), repeat=4)))
        y = rng.integers(0, 2, len(x))
        want = [np.zeros_like(t) for t in tables]
        ll = 0.0
        for i in range(len(x)):
            joint, uses = [], []
            for t0 in range(9):
                a, b = divmod(t0, 3)  # first child most significant
                t1, t2 = x[i, 0] * 2 + x[i, 1], x[i, 2] * 2 + x[i, 3]
                joint.append(tables[0][y[i], t0] * tables[1][a, t1] * tables[1][b, t2])
                uses.append((t0, a, t1, b, t2))
            joint = np.array(joint)
            ll += np.log(joint.sum())
            for p, (t0, a, t1, b, t2) in zip(joint / joint.sum(), uses):
                want[0][y[i], t0] += p
                want[1][a, t1] += p
                want[1][b, t2] += p
        counts, got_ll = pcfg.expected_counts(tables, x, y, 2)
        assert all(np.abs(c - w).max() < 1e-9 for c, w in zip(counts, want))
        assert abs(got_ll - ll) < 1e-9 * abs(ll)
        scores = pcfg.log_likelihood(tables, x, 2)
        assert np.allclose(scores[np.arange(len(y)), y], [np.log(sum(
            tables[0][y[i], t0] * tables[1][t0 // 3, x[i, 0] * 2 + x[i, 1]] * tables[1][t0 % 3, x[i, 2] * 2 + x[i, 3]]
            for t0 in range(9))) for i in range(len(x))], rtol=0, atol=1e-9)
