"""The tree PCFG view of every rhm grammar, compiled into the flat tables that rhm.inference runs on.

A :class:`TreePCFG` is what exact inference needs from a grammar: per level a rule table (n_sym, M, S) of child
symbols and rule probabilities (n_sym, M), a root prior, the input vocabulary V and the token noise eps. The
RHM maps onto it directly; the sparse RHM provides its own (``SparseRHM.tree_pcfg``). :class:`Compiled` adds
rule-major flat tables, the clean-input lookup (:class:`FastTables`) and the bottom-level patch table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .patches import codes, digits, fits_codes, lookup, patch_ids

codes_of = codes  # its name before rhm.patches (kept for callers): base-`base` int64 codes of tuples

_DENSE_CODES_MAX = 1 << 22
_PATCH_TABLE_MAX = 1 << 21


def normalise(b: np.ndarray):
    """Divide each node's vector by its max; return it and the log of the max (-inf for all-zero nodes)."""
    z = b.max(axis=-1, keepdims=True)
    with np.errstate(divide="ignore"):
        log_z = np.log(z[..., 0])
    return b / np.where(z > 0, z, 1.0), log_z


@dataclass(frozen=True)
class TreePCFG:
    """What inference needs from a grammar: per-level rule tables, probabilities, root prior, noise.

    children[l]: (n_sym[l], M, S) ints, the level-(l+1) symbols of each rule; probs[l]: (n_sym[l], M), rows
    sum to 1; prior: (n_sym[0],); V: leaf/observed vocabulary; noise: the token noise eps.
    """

    children: tuple
    probs: tuple
    prior: np.ndarray
    V: int
    noise: float

    @property
    def L(self) -> int:
        return len(self.children)

    @property
    def S(self) -> int:
        return self.children[0].shape[2]

    @property
    def d(self) -> int:
        return self.S**self.L

    def n_sym(self, level: int) -> int:
        return self.prior.shape[0] if level == 0 else (self.V if level == self.L else self.probs[level].shape[0])


class Compiled:
    """Per-level flat tables of a TreePCFG: children per slot, probabilities, parents, scatter matrices."""

    def __init__(self, P: TreePCFG):
        self.P = P
        self.ch, self.pf, self.par, self.scatter = [], [], [], []
        # dense[l]: every parent has every child tuple as a rule, in code order (first child most significant):
        # the passes then use the outer product of the children's vectors and the table probs[l] (n_sym, M)
        self.dense, self.probs = [], [np.array(p, dtype=np.float64) for p in P.probs]
        for lv in range(P.L):
            table = np.asarray(P.children[lv], dtype=np.int64)
            n_sym, M, S = table.shape
            n_child = P.n_sym(lv + 1)
            self.dense.append(M == n_child**S and bool((codes(table, n_child) == np.arange(M)).all()))
            # rule-major flat order (index k * n_sym + a): the sum over rules is a sum of M contiguous blocks
            flat = table.transpose(1, 0, 2).reshape(M * n_sym, S)
            self.ch.append([np.ascontiguousarray(flat[:, c]) for c in range(S)])
            self.pf.append(np.asarray(P.probs[lv], dtype=np.float64).T.reshape(-1))
            self.par.append(np.tile(np.arange(n_sym), M))
            self.scatter.append([np.eye(n_child)[flat[:, c]] for c in range(S)])  # (n_sym*M, n_child)
        self.fast = FastTables(P)
        eps, V = P.noise, P.V
        self.emission = (1.0 - eps) * np.eye(V) + eps / V  # [clean b, observed a]
        # leaf evidence by observed token, with a last row of ones for a masked (missing) token: (V+1, V)
        self.evidence = np.vstack([self.emission.T, np.ones(V)])
        # bottom level: the evidence of slot c's child of every rule, by observed token: (V+1, M*n_sym)
        self.leaf_tables = [np.ascontiguousarray(self.evidence[:, ch]) for ch in self.ch[P.L - 1]]
        self._patch_table = None

    def patch_table(self):
        """Scaled inside vector of a bottom-level node for every (V+1)**S code of its observed/masked leaves.

        Returns (beta ((V+1)**S, n_sym[L-1]), its log scale ((V+1)**S,), and for the level above, per child
        slot c, beta gathered at that slot's children, times the rule probabilities for c = 0 (None if
        L = 1)), or None when the table would exceed
        _PATCH_TABLE_MAX entries. With it, the bottom level of an inside-only pass is one lookup per node.
        """
        P = self.P
        if self._patch_table is None:
            size = (P.V + 1) ** P.S
            if size * P.n_sym(P.L - 1) > _PATCH_TABLE_MAX:
                self._patch_table = False
            else:
                codes = digits(np.arange(size), P.V + 1, P.S)  # every leaf patch, by its code
                gs = [np.take(self.leaf_tables[c], codes[:, c], axis=0) for c in range(P.S)]
                prod = gs[0] * self.pf[P.L - 1]
                for c in range(1, P.S):
                    prod *= gs[c]
                table = prod.reshape(size, -1, P.n_sym(P.L - 1)).sum(axis=1)
                beta, log_z = normalise(table)
                # one level up, the gathered factor of child slot c for every code of that child's leaves
                # (slot 0's table carries the rule probabilities, so the inside pass skips that product)
                above = [np.ascontiguousarray(beta[:, ch]) for ch in self.ch[P.L - 2]] if P.L >= 2 else None
                if above is not None:
                    above[0] = above[0] * self.pf[P.L - 2]
                self._patch_table = (beta, log_z, above)
        return self._patch_table if self._patch_table is not False else None


class FastTables:
    """Clean-input lookup: the code of an S-tuple -> (parent, log of its total rule probability)."""

    def __init__(self, P: TreePCFG):
        self.ok = True
        self.levels = []
        for lv in range(P.L):
            table = np.asarray(P.children[lv], dtype=np.int64)
            n_sym, M, S = table.shape
            base = P.n_sym(lv + 1)
            if not fits_codes(base, S):
                self.ok = False
                return
            parents = np.repeat(np.arange(n_sym), M)
            prob = np.asarray(P.probs[lv], dtype=np.float64).reshape(-1)
            uniq, inv = patch_ids(table.reshape(-1, S), base)
            owner = np.full(len(uniq), -1)
            owner[inv] = parents
            if (np.bincount(inv, weights=(parents != owner[inv]).astype(float)) > 0).any():
                self.ok = False  # ambiguous grammar: a tuple with two parents
                return
            total = np.bincount(inv, weights=prob, minlength=len(uniq))
            with np.errstate(divide="ignore"):
                logp = np.log(total)
            if base**S <= _DENSE_CODES_MAX:
                par = np.full(base**S, -1, dtype=np.int64)
                lp = np.full(base**S, -np.inf)
                par[uniq], lp[uniq] = owner, logp
                self.levels.append(("dense", base, S, par, lp))
            else:
                self.levels.append(("sorted", base, S, uniq, (owner, logp)))

    def run(self, x: np.ndarray, prior: np.ndarray):
        """Root symbol (-1 if none) and log P(x) of clean inputs x (n, d), by one bottom-up pass."""
        n = len(x)
        sym = x.astype(np.int64)
        logp = np.zeros(n)
        bad = np.zeros(n, dtype=bool)
        for lv in range(len(self.levels) - 1, -1, -1):
            mode, base, S, a, b = self.levels[lv]
            patches = np.maximum(sym, 0).reshape(n, -1, S)
            if mode == "dense":
                code = codes(patches, base)
                par, lp = a[code], b[code]
            else:
                par, lp = lookup(a, b[0], patches, base), lookup(a, b[1], patches, base, missing=-np.inf)
            bad |= (sym.reshape(n, -1, S) < 0).any(axis=(1, 2)) | (par < 0).any(axis=1)
            logp += np.where(bad, 0.0, lp.sum(axis=1))
            sym = par
        root = np.where(bad, -1, sym[:, 0])
        with np.errstate(divide="ignore"):
            logp = np.where(bad, -np.inf, logp + np.log(prior[np.maximum(root, 0)]))
        return root, logp


def tree_pcfg(g) -> TreePCFG:
    """The TreePCFG of grammar g (an RHM, or any object with a ``tree_pcfg()`` method such as SparseRHM)."""
    if hasattr(g, "tree_pcfg"):
        return g.tree_pcfg()
    return TreePCFG(children=tuple(g.rules), probs=tuple(g.rule_probs),
                    prior=np.full(g.n_classes, 1.0 / g.n_classes), V=g.v, noise=float(g.noise))


def compiled(g) -> Compiled:
    """The compiled tables of g, built once and cached on the grammar."""
    cache = g.__dict__.get("_inference_tables")
    if cache is None:
        cache = Compiled(tree_pcfg(g))
        g.__dict__["_inference_tables"] = cache
    return cache
