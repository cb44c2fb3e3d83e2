"""rhm.inference.sample_posterior against the exact posterior over every derivation, on tiny grammars.

Margin of the statistical tests: for n draws from a distribution with K outcomes, the total variation (TV) between
the empirical and the true distribution has mean <= 0.5 sqrt(K / n), and each draw moves it by at most 1/n, so
(McDiarmid) it exceeds that mean by t with probability <= exp(-2 n t^2). MARGIN = 0.5 sqrt(K/n) + sqrt(ln(1e6)/(2n))
is passed by an exact sampler except with probability <= 1e-6 per comparison.
"""

import itertools
import math

import numpy as np
import pytest

import rhm
from rhm import inference, pcfg
from rhm.sparse import SparseRHM

N_DRAWS = 20_000


def margin(k, n=N_DRAWS):
    return 0.5 * math.sqrt(k / n) + math.sqrt(math.log(1e6) / (2 * n))


def derivations(P):
    """Every latent tree of a TreePCFG as (levels concatenated into one tuple) -> probability."""
    out = {(c,): float(P.prior[c]) for c in range(len(P.prior)) if P.prior[c] > 0}
    width = 1
    for lv in range(P.L):
        table, probs = np.asarray(P.children[lv]), np.asarray(P.probs[lv])
        new = {}
        for key, p in out.items():
            syms = key[-width:]
            for ks in itertools.product(range(table.shape[1]), repeat=width):
                q = p * np.prod([probs[a, k] for a, k in zip(syms, ks)])
                if q > 0:
                    kids = tuple(int(t) for a, k in zip(syms, ks) for t in table[a, k])
                    new[key + kids] = new.get(key + kids, 0.0) + q
        out, width = new, width * P.S
    return out


def exact_posterior(P, x, mask, noise):
    """P(tree | tokens of x where mask is False, noise): dict tree key -> probability."""
    E = (1 - noise) * np.eye(P.V) + noise / P.V
    post = {}
    for key, p in derivations(P).items():
        leaves = np.array(key[-P.d:])
        post[key] = p * np.prod(E[leaves[~mask], x[~mask]])
    z = sum(post.values())
    return {k: v / z for k, v in post.items() if v > 0}


def empirical(tree, row):
    """Frequencies of the sampled trees of observed row `row`: dict key -> frequency."""
    flat = np.concatenate([np.asarray(t[row]).reshape(len(t[row]), -1) for t in tree], axis=1)
    keys, counts = np.unique(flat, axis=0, return_counts=True)
    return {tuple(int(a) for a in k): c / len(flat) for k, c in zip(keys, counts)}


def tv(p, q):
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


class Dense:
    """A grammar whose rules are every child tuple (chaining+'s tables, rhm.pcfg.TablesGrammar)."""

    def __init__(self, v, s, L, seed):
        rng = np.random.default_rng(seed)
        tables = [rng.random((v, v**s)) + 0.05 for _ in range(L)]
        self.g = pcfg.TablesGrammar([t / t.sum(1, keepdims=True) for t in tables], s)

    def tree_pcfg(self):
        return self.g.tree_pcfg()


VARIANTS = {
    "plain": lambda: rhm.RHM(3, 2, 2, 2, seed=0),
    "zipf": lambda: rhm.RHM(3, 3, 2, 2, seed=2, zipf=1.5, n_classes=2),
    "noise": lambda: rhm.RHM(2, 2, 2, 2, seed=3, noise=0.3),
    "zipf+noise,s=3": lambda: rhm.RHM(2, 2, 3, 1, seed=5, noise=0.4, zipf=1.0),
    "L=3": lambda: rhm.RHM(2, 1, 2, 3, seed=6, noise=0.1),
    "sparse": lambda: SparseRHM(2, 2, 2, 1, s0=1, seed=7, noise=0.2),
    "sparse,zipf": lambda: SparseRHM(3, 2, 2, 2, s0=1, seed=8, zipf=1.0),
    "dense": lambda: Dense(2, 2, 2, seed=11),
}


def observations(g, P, seed):
    """Three observed strings with masks: a sampled string unmasked, the same half masked, a random string with
    a random mask that leaves it possible (every string is possible under noise)."""
    rng = np.random.default_rng(seed)
    derivs = list(derivations(P))
    clean = np.array(derivs[rng.integers(len(derivs))][-P.d:])
    other = np.array(derivs[rng.integers(len(derivs))][-P.d:])
    x = np.stack([clean, clean, other if P.noise == 0 else rng.integers(0, P.V, P.d)])
    mask = np.zeros(x.shape, bool)
    mask[1, rng.permutation(P.d)[: P.d // 2]] = True
    mask[2, rng.permutation(P.d)[: max(1, P.d // 3)]] = True
    return x, mask


@pytest.mark.parametrize("name", list(VARIANTS))
def test_samples_follow_the_exact_posterior(name):
    g = VARIANTS[name]()
    P = inference.tree_pcfg(g)
    for seed in (0, 1):
        x, mask = observations(g, P, seed)
        clean, tree = inference.sample_posterior(g, x, n=N_DRAWS, mask=mask, seed=seed, return_tree=True)
        assert clean.shape == (3, N_DRAWS, P.d) and len(tree) == P.L + 1
        assert all(t.shape == (3, N_DRAWS, P.S**lv) for lv, t in enumerate(tree))
        assert (tree[P.L] == clean).all()
        for row in range(3):
            exact = exact_posterior(P, x[row], mask[row], P.noise)
            dist = tv(empirical(tree, row), exact)
            assert dist < margin(len(exact)), (name, seed, row, dist, margin(len(exact)))


@pytest.mark.parametrize("noise", [0.0, 0.25, 0.9])
def test_noise_override_and_the_test_has_power(noise):
    g = rhm.RHM(3, 2, 2, 2, seed=0)  # a clean grammar observed through the token noise of a forward process
    P = inference.tree_pcfg(g)
    x = np.array([[0, 1, 2, 2], [1, 1, 0, 2]])
    mask = np.array([[False, False, True, False], [True, False, False, False]])
    if noise == 0.0:  # without noise an arbitrary string is impossible: observe a derivation's leaves instead
        x[0] = list(derivations(P))[3][-P.d:]
        x[1] = list(derivations(P))[17][-P.d:]
    _, tree = inference.sample_posterior(g, x, n=N_DRAWS, mask=mask, noise=noise, seed=3, return_tree=True)
    for row in range(2):
        exact = exact_posterior(P, x[row], mask[row], noise)
        emp = empirical(tree, row)
        assert tv(emp, exact) < margin(len(exact))
        # the same margin rejects the posterior at another noise level (so the comparison above has power)
        wrong = exact_posterior(P, x[row], mask[row], 0.5 if noise != 0.5 else 0.1)
        if noise != 0.9:  # at noise 0.9 both are close to the prior
            assert tv(emp, wrong) > margin(len(wrong))


def test_clean_unmasked_observation_is_a_point_mass_on_its_parse():
    g = rhm.RHM(8, 4, 2, 3, seed=0)
    x, y = g.sample(50, seed=1)
    clean, tree = inference.sample_posterior(g, x, n=3, noise=0.0, seed=0, return_tree=True)
    assert (clean == x[:, None, :]).all()
    _, parsed = g.parse(x, return_tree=True)
    for lv in range(1, g.L):
        assert (tree[lv] == parsed[lv][:, None, :]).all()
    assert (tree[0][..., 0] == y[:, None]).all()


def test_samples_are_valid_strings_of_a_larger_grammar():
    g = rhm.RHM(16, 4, 2, 3, seed=0, noise=0.2)
    x, _ = g.sample(300, seed=1)
    mask = np.random.default_rng(0).random(x.shape) < 0.3
    clean = inference.sample_posterior(g, x, n=4, mask=mask, seed=5)
    assert clean.dtype == np.uint8 and clean.shape == (300, 4, g.d)
    assert (g.parse(clean.reshape(-1, g.d)) >= 0).all()


def test_same_seed_same_bytes_and_generators():
    g = rhm.RHM(4, 2, 2, 2, seed=0, noise=0.3)
    x, _ = g.sample(40, seed=1)
    a = inference.sample_posterior(g, x, n=5, seed=7)
    assert np.array_equal(a, inference.sample_posterior(g, x, n=5, seed=7))
    assert np.array_equal(a, inference.sample_posterior(g, x, n=5, seed=np.random.default_rng(7)))
    assert not np.array_equal(a, inference.sample_posterior(g, x, n=5, seed=8))


def test_torch_in_torch_out_and_exact():
    torch = pytest.importorskip("torch")
    g = rhm.RHM(2, 2, 2, 2, seed=3, noise=0.3)
    P = inference.tree_pcfg(g)
    x, mask = observations(g, P, 0)
    xt, mt = torch.as_tensor(x), torch.as_tensor(mask)
    clean, tree = inference.sample_posterior(g, xt, n=N_DRAWS, mask=mt, seed=0, return_tree=True)
    assert torch.is_tensor(clean) and clean.dtype == torch.long and clean.shape == (3, N_DRAWS, P.d)
    again = inference.sample_posterior(g, xt, n=N_DRAWS, mask=mt, seed=torch.Generator().manual_seed(0))
    assert torch.equal(clean, again)
    tree = [t.numpy() for t in tree]
    for row in range(3):
        exact = exact_posterior(P, x[row], mask[row], P.noise)
        assert tv(empirical(tree, row), exact) < margin(len(exact))


def test_bad_input_names_the_parameter():
    g = rhm.RHM(3, 2, 2, 2, seed=0)
    x, _ = g.sample(4, seed=1)
    with pytest.raises(ValueError, match="noise"):
        inference.sample_posterior(g, x, noise=1.5, seed=0)
    with pytest.raises(ValueError, match="n="):
        inference.sample_posterior(g, x, n=0, seed=0)
    with pytest.raises(ValueError, match="seed"):
        inference.sample_posterior(g, x)
    with pytest.raises(ValueError, match="mask"):
        inference.sample_posterior(g, x, mask=np.zeros(3, bool), seed=0)
    bad = x.copy()
    bad[1] = 0
    assert g.parse(bad[1:2])[0] == -1  # no derivation produces 0000: impossible without noise
    with pytest.raises(ValueError, match=r"x rows \[1\]"):
        inference.sample_posterior(g, bad, seed=0)
    assert inference.sample_posterior(g, bad, noise=0.1, seed=0).shape == (4, 1, g.d)
    assert inference.sample_posterior(g, x[:0], n=2, seed=0).shape == (0, 2, g.d)


@pytest.mark.parametrize("g", [rhm.RHM(17, 2, 2, 2, seed=1, noise=0.3),  # 17 classes: root draw over > 16 weights
                               rhm.RHM(6, 17, 2, 1, seed=2, n_classes=2, noise=0.3)],  # 17 rules per symbol
                         ids=["17 classes", "17 rules"])
def test_one_sample_per_row_over_many_rows_follows_the_exact_posterior(g):
    # n = 1 over many observed rows (the layout of benchmarks/posterior_sampling.py): draws of one uniform per row,
    # counted column by column for up to 16 weights and by a boolean comparison above; both against enumeration
    P = inference.tree_pcfg(g)
    x, mask = observations(g, P, 0)
    for row in (0, 2):
        xs, ms = np.repeat(x[row:row + 1], N_DRAWS, 0), np.repeat(mask[row:row + 1], N_DRAWS, 0)
        _, tree = inference.sample_posterior(g, xs, n=1, mask=ms, seed=row, return_tree=True)
        exact = exact_posterior(P, x[row], mask[row], P.noise)
        dist = tv(empirical([t.transpose(1, 0, 2) for t in tree], 0), exact)
        assert dist < margin(len(exact)), (row, dist, margin(len(exact)))
