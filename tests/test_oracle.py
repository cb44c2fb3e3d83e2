"""Oracle: parse of unproducible strings, exact q^(l) (vs Monte Carlo), signal gaps, Assumption 6."""

import math

import numpy as np
import pytest

from rhm import RHM, oracle


@pytest.mark.parametrize("rules", ["uniform", "balanced"])
def test_q_rows_sum_to_one_synonyms_share_q(rules):
    g = RHM(8, 4, 2, 3, rules=rules, seed=1)
    for level in range(1, 4):
        st = oracle.patch_stats(g, level)
        assert np.allclose(st.q.sum(1), 1) and (st.q >= 0).all()
        assert np.isclose(st.p.sum(), 1)
        for parent in np.unique(st.parents):
            rows = st.q[st.parents == parent]
            assert np.allclose(rows, rows[0])
        patches, q = oracle.q(g, level)
        assert patches.shape == (len(q), 2) and q.shape[1] == 8
    _, q1 = oracle.q(g, 1)
    assert set(np.unique(q1)) == {0.0, 1.0}  # level 1: the patch determines the label


@pytest.mark.parametrize("g", [RHM(6, 3, 2, 3, seed=2), RHM(4, 2, 3, 2, n_classes=5, seed=0),
                               RHM(8, 4, 2, 3, rules="balanced", seed=4)])
def test_q_matches_monte_carlo(g):
    n = 200_000
    x, y, tree = g.sample(n, seed=0, return_tree=True)
    for level in range(1, g.L + 1):
        st = oracle.patch_stats(g, level)
        first = tree[level][:, : g.s].astype(np.int64)
        code = first @ (g.v ** np.arange(g.s - 1, -1, -1))
        pcode = st.patches @ (g.v ** np.arange(g.s - 1, -1, -1))
        assert set(np.unique(code)) <= set(pcode)  # only "producible" patches ever occur first
        for i in np.argsort(-st.p)[:5]:  # the 5 most frequent first patches
            sel = code == pcode[i]
            emp = np.bincount(y[sel], minlength=g.n_classes) / sel.sum()
            # standard error of each entry <= 0.5/sqrt(count); allow 5 standard errors
            assert np.abs(emp - st.q[i]).max() < 5 * 0.5 / math.sqrt(sel.sum())
            assert abs(sel.mean() - st.p[i]) < 5 * math.sqrt(st.p[i] / n)


def test_signal_gaps_balanced_match_paper_check():
    gaps = oracle.signal_gaps(RHM(8, 4, 2, 3, rules="balanced", seed=0))
    assert gaps.kappa == 1.0  # App. B keeps the first-patch marginal uniform
    assert math.isclose(gaps.rho[1], math.sqrt(2))
    assert gaps.rho[2] < gaps.rho[1] and gaps.rho[3] < gaps.rho[2]


def test_signal_gap_is_min_over_non_synonyms():
    g = RHM(6, 2, 2, 3, seed=3)
    gaps = oracle.signal_gaps(g)
    for level in (2, 3):
        st = oracle.patch_stats(g, level)
        d = np.sqrt(((st.q[:, None] - st.q[None]) ** 2).sum(-1))
        diff = st.parents[:, None] != st.parents[None]
        assert math.isclose(gaps.rho[level], d[diff].min())


def test_assumption6_report():
    g = RHM(8, 4, 2, 3, rules="balanced", seed=0)
    ok = oracle.assumption6(g, 0.5)
    assert ok.satisfied and "holds" in str(ok)
    bad = oracle.assumption6(g, 100.0)
    assert not bad.satisfied and "too small" in str(bad)
    assert math.isclose(ok.K_rho_max, min(r * 4 ** (l / 2) for l, r in ok.rho.items()))
    assert not oracle.assumption6(RHM(6, 2, 2, 2, n_classes=3, seed=0), 0.1).vm_uniform
    with pytest.raises(ValueError, match="K_rho"):
        oracle.assumption6(g, -1)


@pytest.mark.parametrize("args", [dict(v=4, m=2, s=2, L=1), dict(v=3, m=3, s=3, L=3)])
def test_assumption6_holds_at_its_own_largest_K_rho(args):
    # K_rho_max = min_l rho^(l) m^(l/2); multiplied back by m^(-l/2) it can come out one rounding step above rho^(l)
    # (v=4, m=2, L=1: sqrt(2) * sqrt(2) / sqrt(2) > sqrt(2) in float64), which printed "FAILS" in `rhm info`
    g = RHM(**args, seed=0)
    gaps = oracle.signal_gaps(g)
    k = gaps.K_rho(g.m)
    assert math.isfinite(k) and k > 0
    rep = oracle.assumption6(g, k, gaps)
    assert rep.satisfied and all(rep.holds.values()) and "holds" in str(rep) and "too small" not in str(rep)
    # a K_rho truly above the largest one fails, at the level that attains the minimum (1e-6 >> the 1e-9 tolerance)
    tight = min(gaps.rho, key=lambda lv: gaps.rho[lv] * g.m ** (lv / 2))
    over = oracle.assumption6(g, k * (1 + 1e-6), gaps)
    assert not over.satisfied and not over.holds[tight] and "FAILS" in str(over)


def test_assumption6_fails_on_a_degenerate_level():
    # 5 of the 10 held-out balanced grammars of docs/paper_fidelity.md have rho^(l) = 0 somewhere; 102 is one
    g = RHM(8, 4, 2, 3, rules="balanced", seed=102)
    gaps = oracle.signal_gaps(g)
    flat = [lv for lv, r in gaps.rho.items() if r == 0]
    assert flat
    rep = oracle.assumption6(g, 1e-12, gaps)  # no positive K_rho can meet rho = 0
    assert not rep.satisfied and not any(rep.holds[lv] for lv in flat)


def _kappa_by_enumeration(g) -> float:
    """Assumption 6a's kappa from its definition, by counting: every input once (uniform rules: each input has
    one derivation and all derivations are equally likely, so the inputs are equiprobable), its parse tree, and
    at each level l the frequency p_mu of each rule patch mu as the first level-l patch; kappa is the smallest
    constant with p_mu >= 1/(kappa |P_l|), i.e. max_l max_mu 1/(|P_l| p_mu), inf if a rule patch never comes first."""
    x, _ = g.sample(g.num_inputs, seed=0, replace=False)
    assert len({row.tobytes() for row in np.ascontiguousarray(x)}) == g.num_inputs  # the whole support, once each
    _, tree = g.parse(x, return_tree=True)
    kappa = 1.0
    for level in range(1, g.L + 1):
        rule_patches = {tuple(p) for p in g.rules[level - 1].reshape(-1, g.s).tolist()}  # P_l
        first = [tuple(p) for p in tree[level][:, : g.s].tolist()]
        counts = {p: 0 for p in rule_patches}
        for p in first:
            counts[p] += 1
        p_min = min(counts.values()) / len(first)
        kappa = max(kappa, math.inf if p_min == 0 else 1.0 / (len(rule_patches) * p_min))
    return kappa


@pytest.mark.parametrize("args, kappa", [
    (dict(v=4, m=2, s=3, L=2, n_classes=5, seed=0), 2.5),
    (dict(v=5, m=3, s=2, L=2, seed=2), 1.5),
    (dict(v=4, m=3, s=2, L=2, seed=3), 1.5),
    (dict(v=4, m=2, s=2, L=2, seed=0), math.inf),  # a level-2 rule patch never occurs first
    (dict(v=3, m=2, s=2, L=3, seed=0), math.inf),  # the same at level 2 of 3
    (dict(v=4, m=2, s=2, L=2, seed=1), 1.0),
])
def test_kappa_of_uniform_grammars_matches_its_definition(args, kappa):
    # every other kappa assertion is on a balanced grammar (kappa = 1 by construction); uniform rules give
    # kappa > 1 or inf. The literal is what the enumeration gives (so the examples are known not to be all 1).
    g = RHM(**args, rules="uniform")
    want = _kappa_by_enumeration(g)
    assert want == pytest.approx(kappa, rel=1e-12)
    got = oracle.signal_gaps(g).kappa
    assert got == want if math.isinf(want) else got == pytest.approx(want, rel=1e-12)


def test_parse_unproducible_strings():
    g = RHM(8, 2, 2, 3, seed=0)  # m=2 < v: most strings are not in the language
    x, y = g.sample(1000, seed=0)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 8, size=(5000, 8))
    lab, tree = g.parse(noise, return_tree=True)
    valid = lab >= 0
    assert (~valid).mean() > 0.9  # random strings are almost never produced
    assert (g.parse(noise[valid]) == lab[valid]).all()
    # an invalid string fails somewhere: a -1 at level 1, or a level-1 pair that no class produces
    t1 = tree[1][~valid]
    top = {tuple(p) for p in g.rules[0].reshape(-1, 2).tolist()}
    assert all(-1 in row or tuple(row) not in top for row in t1.tolist())
    assert (t1 == -1).any(1).mean() > 0.5
    # flipping one token of a valid input to a symbol that breaks its patch gives -1
    x2 = x.copy().astype(np.int64)
    x2[:, 0] = (x2[:, 0] + 1) % 8
    y2 = g.parse(x2)
    assert ((y2 == -1) | (y2 >= 0)).all() and (y2 == -1).mean() > 0.5


def test_parse_validates_input():
    g = RHM(4, 2, 2, 2)
    with pytest.raises(ValueError, match=r"shape \(3,\), expected \(n, d=4\)"):
        g.parse(np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        g.parse(np.full((2, 4), 4))
    with pytest.raises(ValueError, match="integer tokens"):
        g.parse(np.zeros((2, 4)))


def test_parse_large_vocabulary_paths():
    # v**s above the dense-table limit (sorted codes) and beyond int64 (row dictionary)
    for g in (RHM(2100, 3, 2, 2, seed=0), RHM(300, 2, 8, 1, seed=0)):
        x, y = g.sample(500, seed=1)
        assert (g.parse(x) == y).all()
        bad = x.copy()
        bad[:, :2] = bad[:, 1::-1]  # swap the first two tokens: almost surely not a rule
        assert (g.parse(bad) == -1).mean() > 0.9


def test_level_validation():
    with pytest.raises(ValueError, match=r"level=0 must be an integer in \[1, L=2\]"):
        oracle.q(RHM(4, 2, 2, 2), 0)


def test_bayes_reference_task_names_are_lm_tasks_and_the_old_spelling_is_deprecated():
    from rhm import lm_tasks

    assert set(oracle.BAYES_TASKS) == set(lm_tasks.TASKS)
    g = RHM(3, 2, 2, 2, seed=2)
    new = oracle.bayes_reference(g, "next-token-all")
    with pytest.warns(DeprecationWarning, match="'next_token' is deprecated: use 'next-token-all'"):
        old = oracle.bayes_reference(g, "next_token")
    assert old == new and new.task == "next-token-all"


@pytest.mark.parametrize("args", [dict(v=3, m=2, s=2, L=2, seed=2), dict(v=4, m=4, s=2, L=2, n_classes=3, seed=1)])
def test_bayes_next_token_is_the_last_token_given_the_rest_by_counting(args):
    # uniform rules without noise: every input is equally likely (one derivation each), so the Bayes predictor of
    # x_{d-1} from x_<d-1 is the frequency of each last token among the inputs sharing that prefix
    g = RHM(**args)
    x, _ = g.sample(g.num_inputs, seed=0, replace=False)
    _, prefix = np.unique(x[:, :-1], axis=0, return_inverse=True)
    prefix = prefix.ravel()
    counts = np.zeros((prefix.max() + 1, g.v))
    np.add.at(counts, (prefix, x[:, -1]), 1.0)
    post = counts / counts.sum(1, keepdims=True)  # P(last = a | prefix)
    err = np.mean(1 - post[prefix].max(1))
    ent = np.mean(-np.log(post[prefix, x[:, -1]]))  # E[-log p(truth)] over the uniform support
    ref = oracle.bayes_reference(g, "next-token")
    assert ref.method == "exact" and ref.task == "next-token"
    assert ref.error == pytest.approx(err, abs=1e-12) and ref.cross_entropy == pytest.approx(ent, abs=1e-12)
    assert ref.cross_entropy > 0  # the examples are not trivial: the last token is not fixed by the rest
