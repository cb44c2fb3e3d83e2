"""rhm.inference against brute-force enumeration of every derivation and every input on tiny grammars."""

import itertools

import numpy as np
import pytest

import rhm
from rhm import inference, pcfg
from rhm.sparse import SparseRHM

TOL = 1e-9


def enumerate_derivations(P):
    """Every derivation of a TreePCFG: dict levels-tuple -> probability (identical trees merged)."""
    out = {((c,),): float(P.prior[c]) for c in range(len(P.prior)) if P.prior[c] > 0}
    for lv in range(P.L):
        table, probs = np.asarray(P.children[lv]), np.asarray(P.probs[lv])
        new = {}
        for levels, p in out.items():
            syms = levels[-1]
            for ks in itertools.product(range(table.shape[1]), repeat=len(syms)):
                q = p
                kids = []
                for a, k in zip(syms, ks):
                    q *= probs[a, k]
                    kids.extend(table[a, k].tolist())
                if q > 0:
                    key = levels + (tuple(kids),)
                    new[key] = new.get(key, 0.0) + q
        out = new
    return out


class Brute:
    """Exact joint P(tree, x) over every observed string x in V^d (noise) or the support (clean)."""

    def __init__(self, g):
        self.P = P = inference.tree_pcfg(g)
        self.deriv = enumerate_derivations(P)
        E = (1 - P.noise) * np.eye(P.V) + P.noise / P.V
        if P.noise > 0:
            xs = list(itertools.product(range(P.V), repeat=P.d))
        else:
            xs = sorted({lv[-1] for lv in self.deriv})
        self.xs = np.array(xs)
        self.index = {tuple(x): i for i, x in enumerate(xs)}
        trees = list(self.deriv)
        tree_p = np.array([self.deriv[t] for t in trees])
        clean = np.array([t[-1] for t in trees])
        # joint[x, tree] = P(tree) P(x | clean leaves of tree)
        self.joint = tree_p[None, :] * np.prod(E[clean[None, :, :], self.xs[:, None, :]], axis=2)
        self.trees = trees
        self.px = self.joint.sum(axis=1)

    def latent(self, level):
        k = self.P.n_sym(level)
        width = len(self.trees[0][level])
        onehot = np.zeros((len(self.trees), width, k))
        for j, t in enumerate(self.trees):
            onehot[j, np.arange(width), list(t[level])] = 1
        return np.einsum("xt,twk->xwk", self.joint, onehot) / self.px[:, None, None]

    def predictive(self, x, mask):
        """P(x_i = a | unmasked tokens of x) for every position, by summing P over agreeing strings."""
        keep = ~mask
        agree = (self.xs[:, keep] == x[keep]).all(axis=1)
        w = self.px * agree
        out = np.zeros((self.P.d, self.P.V))
        for i in range(self.P.d):
            out[i] = np.bincount(self.xs[:, i], weights=w, minlength=self.P.V)
        return out / w.sum()


VARIANTS = [
    dict(v=3, m=2, s=2, L=2, seed=0),
    dict(v=3, m=2, s=2, L=2, seed=1, zipf=0.0),
    dict(v=3, m=3, s=2, L=2, seed=2, zipf=1.5, n_classes=2),
    dict(v=2, m=2, s=2, L=2, seed=3, noise=0.3),
    dict(v=3, m=2, s=2, L=2, seed=4, zipf=0.5, noise=0.2),
    dict(v=2, m=2, s=3, L=1, seed=5, noise=0.5, zipf=2.0),
    dict(v=2, m=1, s=2, L=3, seed=6, noise=0.1),
    dict(v=3, m=3, s=2, L=2, seed=10, zipf=1.0, zipf_levels=(1,), noise=0.1),
    dict(sparse=True, v=2, m=2, s=2, L=1, s0=1, seed=7, noise=0.2),
    dict(sparse=True, v=3, m=2, s=2, L=2, s0=1, seed=8, zipf=1.0),
    dict(sparse=True, v=2, m=1, s=2, L=1, s0=2, seed=9, n_classes=2),
    dict(dense=True, v=2, s=2, L=2, seed=11),  # every tuple a rule (chaining+'s tables): the dense passes
]


class Dense:
    """Random rule tables over every child tuple (rhm.pcfg.TablesGrammar) with the d and L the tests read."""

    def __init__(self, v, s, L, seed):
        rng = np.random.default_rng(seed)
        tables = [rng.random((v, v**s)) + 0.05 for _ in range(L)]
        self.g = pcfg.TablesGrammar([t / t.sum(1, keepdims=True) for t in tables], s)
        self.L, self.d = L, s**L

    def tree_pcfg(self):
        return self.g.tree_pcfg()


def ids(p):
    return ",".join(f"{k}={v}" for k, v in p.items())


def make(params):
    params = dict(params)
    if params.pop("dense", False):
        return Dense(**params)
    return SparseRHM(**params) if params.pop("sparse", False) else rhm.RHM(**params)


@pytest.fixture(scope="module", params=VARIANTS, ids=ids)
def case(request):
    g = make(request.param)
    return g, Brute(g)


def test_class_posterior_and_likelihood_match_enumeration(case):
    g, b = case
    post = inference.class_posterior(g, b.xs)
    want = b.latent(0)[:, 0, :]
    assert np.abs(post - want).max() < TOL
    ll = inference.log_likelihood(g, b.xs)
    assert np.abs(ll - np.log(b.px)).max() < TOL
    assert abs(np.exp(ll).sum() - 1) < TOL  # the enumerated strings carry all the mass
    with np.errstate(divide="ignore"):
        want_joint = np.log(want * b.px[:, None])
    assert np.allclose(inference.joint_log_likelihood(g, b.xs), want_joint, rtol=0, atol=TOL)


def test_latent_posterior_every_level_matches_enumeration(case):
    g, b = case
    for level in range(g.L + 1):
        got = inference.latent_posterior(g, b.xs, level)
        assert got.shape == (len(b.xs), b.P.S**level, b.P.n_sym(level))
        assert np.abs(got - b.latent(level)).max() < TOL


def test_token_posterior_matches_enumeration(case):
    g, b = case
    rng = np.random.default_rng(0)
    rows = rng.choice(len(b.xs), size=min(12, len(b.xs)), replace=False)
    x = b.xs[rows]
    masks = rng.random((len(rows), g.d)) < 0.5
    masks[0] = True  # everything hidden: the marginal of every token
    got = inference.token_posterior(g, x, masks)
    for r in range(len(rows)):
        want = b.predictive(x[r], masks[r])
        want[~masks[r]] = np.eye(b.P.V)[x[r][~masks[r]]]
        assert np.abs(got[r] - want).max() < TOL


def test_next_token_matches_enumeration(case):
    g, b = case
    rows = np.random.default_rng(1).choice(len(b.xs), size=min(8, len(b.xs)), replace=False)
    got = inference.next_token(g, b.xs[rows])
    assert got.shape == (len(rows), g.d, b.P.V)
    for r, i in enumerate(rows):
        for t in range(g.d):
            mask = np.arange(g.d) >= t
            assert np.abs(got[r, t] - b.predictive(b.xs[i], mask)[t]).max() < TOL


@pytest.mark.parametrize("s0", [1, 2])
def test_sparse_pcfg_support_is_the_sampler_support(s0):
    """Every distinct input the sampler can produce has probability 1/num_inputs under the tree PCFG."""
    g = SparseRHM(4, 2, 2, 2, s0=s0, seed=s0)
    x, y = g.sample(g.num_inputs, seed=0, replace=False)
    assert len(np.unique(x, axis=0)) == g.num_inputs
    ll = inference.log_likelihood(g, x)
    assert np.abs(ll + np.log(g.num_inputs)).max() < TOL
    assert np.array_equal(inference.class_posterior(g, x), np.eye(g.n_classes)[y])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("zipf", [None, 1.0])
def test_clean_root_posterior_is_one_hot_parse(seed, zipf):
    g = rhm.RHM(8, 4, 2, 3, seed=seed, zipf=zipf)
    x, y = g.sample(2000, seed=seed + 10)
    post = inference.class_posterior(g, x)
    assert np.array_equal(post, np.eye(g.n_classes)[g.parse(x)])
    # the general inside pass (through latent_posterior) agrees with the fast path
    assert np.abs(inference.latent_posterior(g, x[:200], 0)[:, 0] - post[:200]).max() < TOL
    bad = x[:50].copy()
    bad[:, :2] = bad[:, 2:4]  # mostly unproducible strings
    impossible = g.parse(bad) < 0
    assert impossible.any()
    assert np.isneginf(inference.log_likelihood(g, bad)[impossible]).all()
    assert np.isnan(inference.class_posterior(g, bad)[impossible]).all()


def test_deep_noisy_grammar_does_not_underflow():
    g = rhm.RHM(16, 4, 2, 7, seed=0, noise=0.2)  # d = 128: unscaled inside products would underflow
    x, y = g.sample(2000, seed=1)
    ll = inference.log_likelihood(g, x)
    post = inference.class_posterior(g, x)
    assert np.isfinite(ll).all() and (ll < 0).all()
    assert np.abs(post.sum(axis=1) - 1).max() < 1e-12
    # exact posteriors are calibrated: accuracy of the argmax = mean max-posterior, within 4 standard errors
    hit = (post.argmax(axis=1) == y).astype(float)
    conf = post.max(axis=1)
    assert abs(hit.mean() - conf.mean()) < 4 * (hit - conf).std() / np.sqrt(len(y))


def test_bad_inputs_raise():
    g = rhm.RHM(4, 2, 2, 2, seed=0)
    x, _ = g.sample(3, seed=0)
    with pytest.raises(ValueError, match="shape"):
        inference.class_posterior(g, x[:, :3])
    with pytest.raises(ValueError, match="vocabulary"):
        inference.log_likelihood(g, x + 4)
    with pytest.raises(ValueError, match="level"):
        inference.latent_posterior(g, x, 3)
    with pytest.raises(ValueError, match="mask"):
        inference.token_posterior(g, x, np.zeros(x.shape, dtype=int))
    # masked positions may hold anything, even out-of-range sentinels
    mask = np.zeros(x.shape, dtype=bool)
    mask[:, 0] = True
    xs = x.astype(np.int64)
    xs[:, 0] = -1
    assert np.allclose(inference.token_posterior(g, xs, mask).sum(axis=2), 1)


@pytest.mark.parametrize("params", [VARIANTS[0], VARIANTS[4], VARIANTS[8]], ids=ids)
def test_torch_backend_matches_numpy(params):
    torch = pytest.importorskip("torch")
    g = make(params)
    x, _ = g.sample(300, seed=5)
    xt = torch.as_tensor(x.astype(np.int64))
    mask = np.random.default_rng(6).random(x.shape) < 0.4
    pairs = [
        (inference.class_posterior(g, x), inference.class_posterior(g, xt)),
        (inference.log_likelihood(g, x), inference.log_likelihood(g, xt)),
        (inference.latent_posterior(g, x, 1, mask=mask),
         inference.latent_posterior(g, xt, 1, mask=torch.as_tensor(mask))),
        (inference.token_posterior(g, x, mask), inference.token_posterior(g, xt, torch.as_tensor(mask))),
        (inference.next_token(g, x[:40]), inference.next_token(g, xt[:40])),
    ]
    for a, b in pairs:
        assert torch.is_tensor(b) and b.dtype == torch.float64 and b.device == xt.device
        assert np.allclose(a, b.numpy(), atol=1e-12, rtol=0, equal_nan=True)
    with pytest.raises(ValueError, match="integer tokens"):
        inference.class_posterior(g, xt.double())


def enumerate_rule_uses(P):
    """Every derivation as (probability, root, clean leaves, rule uses: per level (n_sym, M) counts)."""
    out = [(float(P.prior[c]), c, [c], [np.zeros(np.shape(p)) for p in P.probs]) for c in range(len(P.prior))]
    for lv in range(P.L):
        table, probs = np.asarray(P.children[lv]), np.asarray(P.probs[lv])
        new = []
        for p, root, syms, uses in out:
            for ks in itertools.product(range(table.shape[1]), repeat=len(syms)):
                q, kids, u = p, [], [c.copy() for c in uses]
                for a, k in zip(syms, ks):
                    q *= probs[a, k]
                    kids.extend(table[a, k].tolist())
                    u[lv][a, k] += 1
                if q > 0:
                    new.append((q, root, kids, u))
        out = new
    return out


def test_expected_rule_counts_match_enumeration(case):
    g, b = case
    P = b.P
    derivs = enumerate_rule_uses(P)
    prob = np.array([p for p, _, _, _ in derivs])
    uses = [np.stack([u[lv] for _, _, _, u in derivs]).reshape(len(derivs), -1) for lv in range(P.L)]
    # P(x | derivation) depends only on its (root, clean leaves): the derivations sharing them form one group, so
    # joint[x, group] = P(group) P(x | leaves) is (strings, groups), not (strings, derivations) (1536 x 98304 in
    # the sparse seed=8 case, 30 s of Python to fill), and a derivation's posterior is its group's times
    # P(deriv) / P(group)
    keys, group = np.unique(np.array([[r, *leaves] for _, r, leaves, _ in derivs]), axis=0, return_inverse=True)
    group = group.ravel()
    roots, leaves = keys[:, 0], keys[:, 1:]
    group_p = np.bincount(group, weights=prob)
    # sum over a group's derivations of P(deriv) * its rule uses, per level
    group_uses = [np.stack([np.bincount(group, weights=prob * u[:, k], minlength=len(keys)) for k in range(u.shape[1])],
                           1) for u in uses]
    E = (1 - P.noise) * np.eye(P.V) + P.noise / P.V
    like = np.ones((len(b.xs), len(keys)))  # P(x | leaves of the group)
    for i in range(P.d):
        like *= E[b.xs[:, i]][:, leaves[:, i]]
    joint = group_p * like
    for y in (None, np.argmax(b.latent(0)[:, 0, :], axis=1)):  # unconditioned, and given one likely class
        w = joint if y is None else joint * (roots[None, :] == y[:, None])
        px = w.sum(1)
        post = (w / px[:, None]).sum(0) / group_p  # sum over x of P(deriv | x) / P(deriv), per group
        want = [(post @ gu).reshape(np.shape(P.probs[lv])) for lv, gu in enumerate(group_uses)]
        counts, ll = inference.expected_rule_counts(g, b.xs, y)
        for lv in range(P.L):
            assert counts[lv].shape == np.shape(P.probs[lv])
            assert np.abs(counts[lv] - want[lv]).max() < TOL
            assert np.isclose(counts[lv].sum(), len(b.xs) * P.S**lv, rtol=TOL)  # one rule per node
        want_ll = np.log(px).sum() if y is None else (np.log(px) - np.log(P.prior[y])).sum()
        assert abs(ll - want_ll) < TOL * max(1.0, abs(want_ll))


def test_expected_rule_counts_bad_labels_raise():
    g = rhm.RHM(3, 2, 2, 2, seed=0)
    x, y = g.sample(5, seed=0)
    with pytest.raises(ValueError, match="y must hold 5 class labels"):
        inference.expected_rule_counts(g, x, y[:3])
    with pytest.raises(ValueError, match="n_classes=3"):
        inference.expected_rule_counts(g, x, y + 3)


def test_torch_backend_matches_numpy_on_dense_tables():
    torch = pytest.importorskip("torch")
    g = Dense(3, 2, 3, seed=0)
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 3, (200, 8)), rng.integers(0, 3, 200)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    a, b = inference.expected_rule_counts(g, x, y), inference.expected_rule_counts(g, xt, yt)
    assert all(np.allclose(c, ct.numpy(), atol=1e-9, rtol=0) for c, ct in zip(a[0], b[0]))
    assert np.isclose(a[1], b[1], rtol=1e-12)
    mask = rng.random(x.shape) < 0.4
    assert np.allclose(inference.token_posterior(g, x, mask),
                       inference.token_posterior(g, xt, torch.as_tensor(mask)).numpy(), atol=1e-12, rtol=0)


def test_names_of_the_single_module_remain_after_the_split():
    """rhm.inference became a package: the names it exported as a module are still there (same objects)."""
    from rhm import treepcfg
    from rhm.patches import codes

    for name in ("Compiled", "compiled", "TreePCFG", "tree_pcfg"):
        assert getattr(inference, name) is getattr(treepcfg, name)
    assert inference.codes_of is codes and treepcfg.codes_of is codes
    g = rhm.RHM(6, 2, 2, 2, seed=0)
    assert isinstance(inference.compiled(g), inference.Compiled)
