"""rhm.diffusion (forward processes, exact forward-backward, change statistics, token-change correlations) and
rhm.oracle.validity, against exact enumeration on tiny grammars.

Statistical margins: a frequency of n Bernoulli draws is within 5 standard errors of its probability except with
probability < 1e-6; total variations use the bound of tests/test_posterior_sampling.py (exceeded by an exact
sampler with probability <= 1e-6): 0.5 sqrt(K/n) + sqrt(ln(1e6)/(2n)) for K outcomes.
"""

import itertools
import math

import numpy as np
import pytest

import rhm
from rhm import diffusion, inference
from rhm.sparse import SparseRHM


def within(freq, p, n, z=5.0):
    return abs(freq - p) <= z * math.sqrt(max(p * (1 - p), 1e-12) / n) + 1e-12


def tv_margin(k, n):
    return 0.5 * math.sqrt(k / n) + math.sqrt(math.log(1e6) / (2 * n))


# ------------------------------------------------------------------------------------------------ forward
@pytest.mark.parametrize("process", diffusion.PROCESSES)
def test_forward_corrupts_at_the_stated_rate(process):
    g = rhm.RHM(8, 3, 2, 3, seed=0)
    x, _ = g.sample(4000, seed=1)
    t = 0.3
    xt, mask = diffusion.forward(g, x, t, process, seed=2)
    assert xt.shape == x.shape and mask.shape == x.shape and mask.dtype == bool
    n = x.size
    if process == "mask":
        assert within(mask.mean(), t, n)
        assert (xt[mask] == g.v).all() and (xt[~mask] == x[~mask]).all()
    else:
        assert not mask.any() and xt.max() < g.v
        # a replaced token equals the old one with probability 1/v: P(token differs) = t (1 - 1/v)
        assert within((xt != x).mean(), t * (1 - 1 / g.v), n)
    same = diffusion.forward(g, x, t, process, seed=2)[0]
    assert np.array_equal(same, xt)


def test_forward_levels_per_string_and_ends():
    g = rhm.RHM(4, 2, 2, 2, seed=0)
    x, _ = g.sample(3, seed=1)
    xt, mask = diffusion.forward(g, x, np.array([0.0, 1.0, 0.0]), "mask", seed=0)
    assert not mask[0].any() and mask[1].all() and not mask[2].any()
    assert np.array_equal(diffusion.forward(g, x, 0.0, "uniform", seed=0)[0], x)


def test_forward_torch():
    torch = pytest.importorskip("torch")
    g = rhm.RHM(8, 3, 2, 3, seed=0)
    x, _ = g.sample(2000, seed=1)
    xt, mask = diffusion.forward(g, torch.as_tensor(x), 0.4, "mask", seed=3)
    assert torch.is_tensor(xt) and mask.dtype == torch.bool
    assert within(mask.double().mean().item(), 0.4, x.size)
    assert bool((xt[mask] == g.v).all()) and bool((xt[~mask] == torch.as_tensor(x).long()[~mask]).all())
    xu, mu = diffusion.forward(g, torch.as_tensor(x), 0.4, "uniform", seed=3)
    assert not bool(mu.any()) and within((xu != torch.as_tensor(x)).double().mean().item(), 0.4 * (1 - 1 / 8), x.size)


def test_forward_bad_input():
    g = rhm.RHM(4, 2, 2, 2, seed=0)
    x, _ = g.sample(3, seed=1)
    with pytest.raises(ValueError, match="process"):
        diffusion.forward(g, x, 0.1, "gauss", seed=0)
    with pytest.raises(ValueError, match="t must"):
        diffusion.forward(g, x, 1.5, seed=0)
    with pytest.raises(ValueError, match="t must"):
        diffusion.forward(g, x, [0.1, 0.2], seed=0)
    with pytest.raises(ValueError, match="seed"):
        diffusion.forward(g, x, 0.1)


# ------------------------------------------------------------------------------------------------ forward-backward
def derivation_leaves(P):
    """P(clean string) over every derivation of a TreePCFG: dict tuple -> probability."""
    out = {(c,): float(P.prior[c]) for c in range(len(P.prior))}
    for lv in range(P.L):
        table, probs = np.asarray(P.children[lv]), np.asarray(P.probs[lv])
        new = {}
        for syms, p in out.items():
            for ks in itertools.product(range(table.shape[1]), repeat=len(syms)):
                q = p * np.prod([probs[a, k] for a, k in zip(syms, ks)])
                kids = tuple(int(t) for a, k in zip(syms, ks) for t in table[a, k])
                if q > 0:
                    new[kids] = new.get(kids, 0.0) + q
        out = new
    return out


def exact_forward_backward(P, x0, t, process):
    """P(new clean string | x0) after noising to level t: sum over corruptions of P(corruption) P(new | it)."""
    clean = derivation_leaves(P)
    strings = np.array(list(clean))
    prior = np.array([clean[tuple(s)] for s in strings])
    d, V = P.d, P.V
    out = np.zeros(len(strings))
    if process == "mask":
        for bits in itertools.product([False, True], repeat=d):
            m = np.array(bits)
            w = t ** m.sum() * (1 - t) ** (d - m.sum())
            post = prior * (strings[:, ~m] == x0[~m]).all(1)
            out += w * post / post.sum()
    else:
        E = (1 - t) * np.eye(V) + t / V
        for obs in itertools.product(range(V), repeat=d):
            obs = np.array(obs)
            w = np.prod(E[x0, obs])
            post = prior * np.prod(E[strings, obs], axis=1)
            out += w * post / post.sum()
    return {tuple(s): p for s, p in zip(strings, out)}


@pytest.mark.parametrize("process", diffusion.PROCESSES)
@pytest.mark.parametrize("t", [0.3, 0.7])
def test_forward_backward_is_exact(process, t):
    g = rhm.RHM(2, 2, 2, 2, seed=3)
    P = inference.tree_pcfg(g)
    x0 = np.array(list(derivation_leaves(P))[1])
    n = 20_000
    new = diffusion.forward_backward(g, np.repeat(x0[None], n, 0), t, process, seed=4)
    assert new.shape == (n, 1, g.d)
    keys, counts = np.unique(new[:, 0], axis=0, return_counts=True)
    emp = {tuple(int(a) for a in k): c / n for k, c in zip(keys, counts)}
    exact = exact_forward_backward(P, x0, t, process)
    tv = 0.5 * sum(abs(emp.get(k, 0.0) - exact.get(k, 0.0)) for k in set(emp) | set(exact))
    assert tv < tv_margin(len(exact), n)


def test_forward_backward_ends_and_class_change():
    g = rhm.RHM(8, 3, 2, 3, seed=0)
    x, y, tree = g.sample(3000, seed=1, return_tree=True)
    for process in diffusion.PROCESSES:  # t = 0 gives the string (and its tree) back
        new, tr = diffusion.forward_backward(g, x, 0.0, process, n=2, seed=0, return_tree=True)
        st = diffusion.change_stats(tree, tr)
        assert st.class_change == 0.0 and all(f == 0.0 for f in st.fraction)
        # t = 1 forgets everything: the class is redrawn uniformly, P(change) = 1 - 1/n_c
        new, tr = diffusion.forward_backward(g, x, 1.0, process, seed=1, return_tree=True)
        st = diffusion.change_stats(tree, tr)
        assert within(st.class_change, 1 - 1 / g.n_classes, len(x))
        assert (g.parse(new[:, 0]) == tr[0][:, 0, 0]).all()
        assert st.per_string[g.L].shape == (len(x), 1)


def test_forward_backward_per_string_levels_and_torch():
    g = rhm.RHM(8, 3, 2, 3, seed=0)
    x, _ = g.sample(200, seed=1)
    t = np.where(np.arange(200) % 2 == 0, 0.0, 1.0)
    new = diffusion.forward_backward(g, x, t, "uniform", seed=2)
    assert (new[::2, 0] == x[::2]).all() and (g.parse(new[:, 0]) >= 0).all()
    torch = pytest.importorskip("torch")
    xt = torch.as_tensor(x)
    a, tr = diffusion.forward_backward(g, xt, t, "uniform", n=2, seed=5, return_tree=True)
    b = diffusion.forward_backward(g, xt, t, "uniform", n=2, seed=5)
    assert torch.is_tensor(a) and torch.equal(a, b) and torch.equal(a[::2, 0], xt[::2].long())
    assert (g.parse(a.reshape(-1, g.d).numpy()) >= 0).all() and len(tr) == g.L + 1


def test_forward_backward_sparse():
    g = SparseRHM(3, 2, 2, 2, s0=1, seed=0)
    x, _, tree = g.sample(300, seed=1, return_tree=True)
    new, tr = diffusion.forward_backward(g, x, 0.3, "mask", seed=0, return_tree=True)
    assert new.shape == (300, 1, g.d) and (inference.log_likelihood(g, new[:, 0]) > -np.inf).all()
    st = diffusion.change_stats(tree, tr)
    assert 0 <= st.class_change <= 1 and len(st.fraction) == g.L + 1


# ------------------------------------------------------------------------------------------------ measurements
def test_token_correlations_by_hand():
    x0 = np.zeros((4, 3), int)
    new = np.array([[1, 1, 0], [0, 0, 0], [1, 1, 1], [0, 0, 1]])  # o = new != x0
    c = diffusion.token_correlations(x0, new)
    o = new.astype(float)
    C = (o.T @ o) / 4 - np.outer(o.mean(0), o.mean(0))
    assert np.allclose(c.C, C) and np.isclose(c.susceptibility, o.sum(1).var() / 3)
    assert np.isclose(c.by_distance[0], np.diag(C).mean()) and np.isclose(c.by_distance[1], (C[0, 1] + C[1, 2]) / 2)
    assert np.isclose(c.rate, o.mean())
    # independent changes at rate p: chi = p (1 - p) (5 standard errors of the variance estimate)
    rng = np.random.default_rng(0)
    ind = diffusion.token_correlations(np.zeros((20000, 16), int), (rng.random((20000, 16)) < 0.3).astype(int))
    assert abs(ind.susceptibility - 0.21) < 0.02 and abs(ind.by_distance[1:]).max() < 0.01


def test_changes_shapes_and_errors():
    g = rhm.RHM(4, 2, 2, 2, seed=0)
    x, y, tree = g.sample(5, seed=1, return_tree=True)
    ch = diffusion.changes(tree, [t if t.ndim > 1 else t[:, None] for t in tree])
    assert [c.shape for c in ch] == [(5, 1, 1), (5, 1, 2), (5, 1, 4)] and not any(c.any() for c in ch)
    with pytest.raises(ValueError, match="levels"):
        diffusion.changes(tree, tree[:2])


# ------------------------------------------------------------------------------------------------ validity
@pytest.mark.parametrize("make", [lambda: rhm.RHM(8, 3, 2, 3, seed=0), lambda: rhm.RHM(8, 4, 2, 3, seed=1, zipf=1.0),
                                  lambda: rhm.RHM(6, 2, 3, 2, seed=2, rules="balanced"),
                                  lambda: SparseRHM(3, 2, 2, 2, s0=1, seed=0)])
def test_samples_are_valid_at_every_level(make):
    g = make()
    x, _ = g.sample(500, seed=1)
    v = rhm.oracle.validity(g, x)
    assert set(v.strings) == set(range(1, g.L + 1)) and all(f == 1.0 for f in v.strings.values())
    assert all(f == 1.0 for f in v.patches.values()) and v.valid.all()


def test_noisy_grammar_leaves_are_valid_and_noisy_strings_are_not():
    g = rhm.RHM(8, 3, 2, 3, seed=0, noise=0.5)
    x, _, tree = g.sample(500, seed=1, return_tree=True)
    assert rhm.oracle.validity(g, tree[-1]).strings[1] == 1.0
    assert rhm.oracle.validity(g, x).strings[1] < 0.5


def rates(g):
    """P(valid from level L up to l) and P(level-l patch valid | defined) for uniformly random tokens.

    Counting: the rules of level l-1 produce n_sym(l-1) m distinct patches out of v^s (the RHM's rules are
    unambiguous), each parent owning m of them; so a uniform random patch is valid with probability
    q_l = n_sym(l-1) m / v^s and its parent is then uniform, and levels are independent."""
    q = {lv: (g.n_classes if lv == 1 else g.v) * g.m / g.v**g.s for lv in range(1, g.L + 1)}
    strings, acc = {}, 1.0
    for lv in range(g.L, 0, -1):
        acc *= q[lv] ** (g.s ** (lv - 1))
        strings[lv] = acc
    return strings, q


def test_validity_of_every_string_matches_counting():
    g = rhm.RHM(3, 2, 2, 2, seed=0)
    xs = np.array(list(itertools.product(range(3), repeat=g.d)))  # every string once: the fractions are exact
    v = rhm.oracle.validity(g, xs)
    strings, q = rates(g)
    for lv in range(1, g.L + 1):
        assert np.isclose(v.strings[lv], strings[lv]) and np.isclose(v.patches[lv], q[lv])
    assert np.isclose(v.strings[1], (g.parse(xs) >= 0).mean())

    class OnlyTreePCFG:  # the general path (inside pass without noise) on the same grammar
        d = g.d

        def tree_pcfg(self):
            return inference.tree_pcfg(g)

    w = rhm.oracle.validity(OnlyTreePCFG(), xs)
    assert np.array_equal(w.valid, v.valid) and w.patches == v.patches


def test_validity_of_random_strings_matches_counting():
    g = rhm.RHM(6, 3, 2, 3, seed=0, n_classes=4)
    n = 100_000
    x = np.random.default_rng(0).integers(0, g.v, (n, g.d))
    v = rhm.oracle.validity(g, x)
    strings, q = rates(g)
    assert within(v.strings[g.L], strings[g.L], n) and within(v.strings[g.L - 1], strings[g.L - 1], n)
    n_patches = int(n * 2 * q[g.L] ** 2)  # about this many level-(L-1) patches have both symbols defined
    assert within(v.patches[g.L], q[g.L], n * g.d // g.s) and within(v.patches[g.L - 1], q[g.L - 1], n_patches)


def test_validity_bad_input():
    g = rhm.RHM(4, 2, 2, 2, seed=0)
    with pytest.raises(ValueError, match="x has shape"):
        rhm.oracle.validity(g, np.zeros((2, 3), int))
    with pytest.raises(ValueError, match="vocabulary"):
        rhm.oracle.validity(g, np.full((2, 4), 9))
