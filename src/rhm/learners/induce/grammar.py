"""The grammar an `induce` fit learns: :class:`InducedGrammar`, explicit rules per level on the RHM's tree.

Level 0 is one root whose rules are the top-level tuples seen (without labels the grouping of those tuples
into classes is not identifiable, so n_classes = 1); levels 1..L-1 hold the learned latent symbols, level L
the input tokens. Every symbol has its own number of rules; the tables handed to rhm.inference pad each row
to the level's largest rule count with a copy of its first rule at probability 0. It follows rhm's grammar
protocol where that makes sense for a learned grammar (sizes, ``rules`` / ``rule_probs``, ``tree_pcfg``,
``sample``, ``parse``, ``to_dict``), so every rhm.inference function runs on it.
"""

from __future__ import annotations

import numpy as np

from ... import inference
from ...spec import CUSTOM_RULES, GrammarSpec
from ...treepcfg import TreePCFG
from ...validation import check_float


class InducedGrammar:
    """Rules per level: parents[l] (R_l,) and children[l] (R_l, s) (level-(l+1) symbols, tokens at the last
    level), probs[l] (R_l,) summing to 1 over each parent's rules; sizes[l] = symbols at level l (sizes[0]: the
    root symbols, 1 without labels, uniform prior; sizes[L] = V the token alphabet). Each parent of levels
    0..L-1 has at least one rule."""

    noise = 0.0

    def __init__(self, parents, children, probs, sizes, s: int):
        self.parents = [np.asarray(p, dtype=np.int64) for p in parents]
        self.children_ = [np.asarray(c, dtype=np.int64).reshape(-1, s) for c in children]
        self.probs_ = [np.asarray(p, dtype=np.float64) for p in probs]
        self.sizes = [int(k) for k in sizes]
        self.s, self.L = int(s), len(self.parents)
        self.v = self.sizes[-1]
        if len(self.sizes) != self.L + 1:
            raise ValueError(f"sizes={self.sizes} must be [n_classes, k_1, ..., k_(L-1), V] for L={self.L} levels")
        for lv in range(self.L):
            count = np.bincount(self.parents[lv], minlength=self.sizes[lv])
            if (count == 0).any():
                raise ValueError(f"level {lv}: symbols {np.flatnonzero(count == 0).tolist()} have no rule")
            tot = np.bincount(self.parents[lv], weights=self.probs_[lv], minlength=self.sizes[lv])
            if not np.allclose(tot, 1.0):
                raise ValueError(f"level {lv}: rule probabilities do not sum to 1 per symbol")

    # ---------------------------------------------------------------------------------------------- sizes
    @property
    def n_classes(self) -> int:
        """Root symbols: 1 for what `induce` learns from unlabeled strings, the classes once labelled."""
        return self.sizes[0]

    @property
    def d(self) -> int:
        return self.s**self.L

    @property
    def vocab_size(self) -> int:
        return self.v

    @property
    def m(self) -> int:
        """The largest number of rules of a symbol below the root."""
        return max([int(np.bincount(p).max()) for p in self.parents[1:]] or [1])

    @property
    def token_dtype(self):
        return np.min_scalar_type(self.v - 1)

    def symbols(self, level: int) -> int:
        return self.sizes[level]

    @property
    def num_rules(self) -> list[int]:
        """Rules per level (level 0: the root's top-level tuples)."""
        return [len(p) for p in self.parents]

    @property
    def num_inputs(self) -> int:
        """Number of distinct derivations (= distinct inputs for an unambiguous grammar), a Python int."""
        ways = [1] * self.v  # derivations below each symbol of the current level, bottom-up
        for lv in range(self.L - 1, -1, -1):
            per = [0] * self.sizes[lv]
            for a, ch in zip(self.parents[lv].tolist(), self.children_[lv].tolist()):
                prod = 1
                for c in ch:
                    prod *= ways[c]
                per[a] += prod
            ways = per
        return ways[0]

    @property
    def spec(self) -> GrammarSpec:
        """A size description only (rules 'custom'): v, s, L, m the largest rule count below the root, and
        n_classes: the classes once labelled, else the root's tuples / m (the classes the top-level tuples would
        form; not identifiable without labels)."""
        m = self.m
        n_c = self.n_classes if self.n_classes > 1 else max(2, len(self.parents[0]) // m)
        return GrammarSpec(v=self.v, m=m, s=self.s, L=self.L, n_classes=n_c,
                           rules=CUSTOM_RULES, seed=None)

    # ----------------------------------------------------------------------------------- inference tables
    def _padded(self, lv: int):
        """(children (k, M, s), probs (k, M)) of level lv, rows padded with their first rule at probability 0."""
        par, ch, pr = self.parents[lv], self.children_[lv], self.probs_[lv]
        k = self.sizes[lv]
        order = np.argsort(par, kind="stable")
        par, ch, pr = par[order], ch[order], pr[order]
        count = np.bincount(par, minlength=k)
        M = int(count.max())
        start = np.concatenate([[0], np.cumsum(count)[:-1]])
        slot = np.arange(len(par)) - start[par]
        children = np.broadcast_to(ch[start][:, None, :], (k, M, self.s)).copy()
        probs = np.zeros((k, M))
        children[par, slot], probs[par, slot] = ch, pr
        return children, probs

    @property
    def rules(self) -> tuple:
        """Per level, top first: (k_l, M_l, s) child symbols (padded rows: see rule_probs == 0)."""
        return tuple(self._padded(lv)[0] for lv in range(self.L))

    @property
    def rule_probs(self) -> tuple:
        return tuple(self._padded(lv)[1] for lv in range(self.L))

    def tree_pcfg(self) -> TreePCFG:
        padded = [self._padded(lv) for lv in range(self.L)]
        return TreePCFG(children=tuple(c for c, _ in padded), probs=tuple(p for _, p in padded),
                        prior=np.full(self.n_classes, 1.0 / self.n_classes), V=self.v, noise=0.0)

    def smoothed(self, eps: float) -> "InducedGrammar":
        """The same grammar with every symbol also rewriting into every child tuple with total probability eps
        (dense levels): every string has positive probability. Used where a context is impossible under the
        learned rules (a rule never seen in fit)."""
        eps = check_float("eps", eps, 0.0, strict=True, maximum=1.0)
        parents, children, probs = [], [], []
        for lv in range(self.L):
            k, kc = self.sizes[lv], self.sizes[lv + 1]
            table = np.full((k, kc**self.s), eps / kc**self.s)
            code = np.ravel_multi_index(tuple(self.children_[lv].T), (kc,) * self.s)
            np.add.at(table, (self.parents[lv], code), (1 - eps) * self.probs_[lv])
            par, col = np.nonzero(table > 0)
            parents.append(par)
            children.append(np.stack(np.unravel_index(col, (kc,) * self.s), 1))
            probs.append(table[par, col])
        return InducedGrammar(parents, children, probs, self.sizes, self.s)

    # ------------------------------------------------------------------------------------------ draws
    def sample(self, n, seed=None, replace=True, return_tree=False):
        """n i.i.d. strings x (n, d) and their root symbols y (n,) (0 without labels), drawn exactly (rhm.inference's
        posterior sampler with every position hidden); with return_tree also the latent symbols of every level."""
        if not replace:
            raise ValueError("replace=False is not available for an induced grammar (no distinct-input sampler)")
        if seed is None:
            raise ValueError("seed: an int or numpy Generator is required")
        hidden = np.zeros((1, self.d), dtype=np.int64)
        x, tree = inference.sample_posterior(self, hidden, n, mask=np.ones(self.d, bool), seed=seed,
                                             return_tree=True)
        tree = [lv[0] for lv in tree]
        y = tree[0][:, 0].astype(np.int64)
        return (x[0], y, tree) if return_tree else (x[0], y)

    def resample_below(self, tree, level, seed=None, return_tree=False):
        raise ValueError("resample_below is not available for an induced grammar")

    def parse(self, x, return_tree=False):
        """The most probable root symbol (0 without labels) of the strings the grammar derives, -1 otherwise."""
        if return_tree:
            raise ValueError("return_tree is not available for an induced grammar's parse")
        post = inference.class_posterior(self, x)
        ok = np.isfinite(post).all(1)
        return np.where(ok, np.nan_to_num(post).argmax(1), -1)

    def to_dict(self) -> dict:
        return {"kind": "induced", "s": self.s, "sizes": self.sizes,
                "levels": [{"parents": p.tolist(), "children": c.tolist(), "probs": q.tolist()}
                           for p, c, q in zip(self.parents, self.children_, self.probs_)]}

    @classmethod
    def from_dict(cls, data) -> "InducedGrammar":
        lv = data["levels"]
        return cls([e["parents"] for e in lv], [e["children"] for e in lv], [e["probs"] for e in lv],
                   data["sizes"], data["s"])

    def __repr__(self) -> str:
        return f"InducedGrammar(V={self.v}, s={self.s}, L={self.L}, sizes={self.sizes}, rules={self.num_rules})"


def masked_posterior(g: InducedGrammar, x, mask, eps: float = 1e-3) -> np.ndarray:
    """P(x_i = a | unmasked tokens) (n, d, V) under g; rows whose context g cannot derive (a rule unseen in
    fit) take the posterior of ``g.smoothed(eps)`` instead of NaN."""
    post = inference.token_posterior(g, x, mask)
    bad = ~np.isfinite(post).all(axis=(1, 2))
    if bad.any():
        post[bad] = inference.token_posterior(g.smoothed(eps), np.asarray(x)[bad],
                                              np.broadcast_to(mask, np.shape(x))[bad])
    return post
