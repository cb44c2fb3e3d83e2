"""The sparse RHM (Tomasini & Wyart, ICML 2024, arXiv 2404.10727): an RHM whose informative tokens are padded.

Every informative symbol rewrites into s informative children as in the RHM, but each child sits in its own
block of s0+1 positions, at a position drawn uniformly in the block, independently for every informative node;
the other s0 positions of the block are *blank*, and a blank expands into blanks only. So a level-l node owns
(s(s0+1))**(L-l) input positions, the input has d = (s(s0+1))**L tokens over the vocabulary v+1 (the blank is
token v), and an input is its RHM derivation plus one position per informative node below the root. The
bijection gives the exact number of distinct inputs

    P_max = n_classes * m**((s**L - 1)/(s - 1)) * (s0+1)**(s (s**L - 1)/(s - 1)).

With s0 = 0 this is the RHM itself (without a blank token in use). Rules, zipf and noise follow the RHM; noise
replaces tokens by uniform draws from all v+1 tokens (the blank included).
"""

from __future__ import annotations

import numpy as np

from . import limits
from ._io import check_header, load_json, save_json
from .filtering import register_format
from .grammar import RHM, _filtered_sample, check_variant
from .spec import register_builder, spec_of
from .validation import check_int, check_tokens

SPARSE_FORMAT = "rhm-sparse-grammar"


@register_format(SPARSE_FORMAT)
class SparseRHM:
    """A sparse RHM: an RHM (``self.base``, same parameters and rules for a given seed) plus s0 blanks per
    informative token. Levels, ``sample``, ``resample_below``, ``parse``, ``save``/``load`` mirror :class:`RHM`;
    trees are in the sparse layout (level l has (s(s0+1))**l nodes, blank = v)."""

    def __init__(self, v, m, s, L, s0, n_classes=None, rules="uniform", seed=0, zipf=None, noise=0.0,
                 zipf_levels=None):
        self.s0 = check_int("s0", s0, 0)
        self.zipf, self.noise = check_variant(zipf, noise)
        self.base = RHM(v, m, s, L, n_classes=n_classes, rules=rules, seed=seed, zipf=self.zipf,
                        zipf_levels=zipf_levels)

    @classmethod
    def from_base(cls, base: RHM, s0, noise=0.0) -> "SparseRHM":
        """Pad an existing (noise-free) RHM with s0 blanks per informative token."""
        if base.noise:
            raise ValueError(f"base has noise={base.noise}: give the noise to the SparseRHM instead")
        self = cls.__new__(cls)
        self.s0 = check_int("s0", s0, 0)
        self.zipf, self.noise = check_variant(base.zipf, noise)
        self.base = base
        return self

    # ------------------------------------------------------------------------------------------ sizes
    v = property(lambda self: self.base.v)
    m = property(lambda self: self.base.m)
    s = property(lambda self: self.base.s)
    L = property(lambda self: self.base.L)
    n_classes = property(lambda self: self.base.n_classes)
    seed = property(lambda self: self.base.seed)
    rule_sampler = property(lambda self: self.base.rule_sampler)
    rules = property(lambda self: self.base.rules)
    rule_probs = property(lambda self: self.base.rule_probs)

    @property
    def blank(self) -> int:
        """The blank token (= v)."""
        return self.base.v

    @property
    def vocab_size(self) -> int:
        """Input vocabulary v + 1 (the blank included)."""
        return self.base.v + 1

    @property
    def patch(self) -> int:
        """Positions owned by one rule: s (s0+1)."""
        return self.s * (self.s0 + 1)

    @property
    def d(self) -> int:
        return self.patch**self.L

    @property
    def num_informative(self) -> int:
        """Informative nodes below the root, each with a drawn position: s + s**2 + ... + s**L."""
        return self.s * (self.s**self.L - 1) // (self.s - 1)

    @property
    def num_inputs(self) -> int:
        """Exact number of distinct inputs: the RHM's times (s0+1)**num_informative (a Python int)."""
        return self.base.num_inputs * (self.s0 + 1) ** self.num_informative

    @property
    def token_dtype(self) -> np.dtype:
        top = max(self.v, self.n_classes)
        for dt in (np.uint8, np.uint16, np.uint32):
            if top <= np.iinfo(dt).max:
                return np.dtype(dt)
        return np.dtype(np.uint64)

    def symbols(self, level: int) -> int:
        """Symbols at `level`: n_classes at the root, v + 1 (the blank included) below."""
        return self.n_classes if level == 0 else self.v + 1

    zipf_levels = property(lambda self: self.base.zipf_levels)

    @property
    def spec(self):
        """Its :class:`rhm.GrammarSpec` (the base RHM's fields, its s0 and noise)."""
        cache = self.__dict__.get("_spec")
        if cache is None:
            cache = self.__dict__["_spec"] = spec_of(self, s0=self.s0)
        return cache

    def params(self) -> dict:
        return dict(self.base.params(), s0=self.s0, noise=self.noise)

    def __repr__(self) -> str:
        extra = (f", zipf={self.zipf!r}" if self.zipf is not None else "") + \
            (f", noise={self.noise!r}" if self.noise else "")
        return (f"SparseRHM(v={self.v}, m={self.m}, s={self.s}, L={self.L}, s0={self.s0}, "
                f"n_classes={self.n_classes}, rules={self.rule_sampler!r}, seed={self.seed}{extra})")

    def __eq__(self, other) -> bool:
        return (isinstance(other, SparseRHM) and self.s0 == other.s0 and self.noise == other.noise
                and self.base == other.base)

    __hash__ = None

    # ------------------------------------------------------------------------------------- rendering
    def _render(self, tree, positions, start: int = 0, top_index=None):
        """Sparse layouts of levels start..L from the RHM tree (levels start..L) and the drawn positions.

        positions[l] (n, s**l) in [0, s0] for l > start; top_index (n, s**start): layout index of the level-start
        informative nodes (0 for the root). Returns the list of layouts, level start first.
        """
        s, s0, P = self.s, self.s0, self.patch
        n = len(tree[0])
        idx = np.zeros((n, 1), dtype=np.int64) if top_index is None else top_index.astype(np.int64)
        offs = (np.arange(s) * (s0 + 1)).astype(np.int64)
        out = []
        for lv in range(start, self.L + 1):
            if lv > start:
                idx = (idx[:, :, None] * P + offs + positions[lv].reshape(n, -1, s)).reshape(n, -1)
            sym = np.asarray(tree[lv - start]).reshape(n, -1)
            layout = np.full((n, P**lv), self.blank, dtype=self.token_dtype)
            np.put_along_axis(layout, idx, sym.astype(self.token_dtype), axis=1)
            out.append(layout)
        return out, idx

    def _draw_positions(self, rng, n: int, start: int = 0) -> dict:
        from .sampling import _draw_choices
        return {lv: _draw_choices(rng, self.s0 + 1, (n, self.s**lv)) for lv in range(start + 1, self.L + 1)}

    def filtered(self, k):
        """The level-k filtered model (:class:`rhm.filtering.FilteredGrammar`): its draws and exact inference."""
        from .filtering import FilteredGrammar
        return FilteredGrammar(self, k)

    def sample(self, n, seed=None, replace=True, return_tree=False, filter_level=0):
        """Draw n inputs (n, d) and labels; with return_tree the L+1 sparse layouts (tree[0] = y).

        filter_level=k >= 1: hierarchical filtering (:mod:`rhm.filtering`), drawn through the tree PCFG (whose
        levels the tree then holds).

        i.i.d.: the RHM derivation, then one uniform position per informative node, then the noise.
        replace=False: n distinct inputs, uniform over all num_inputs (not defined with zipf or noise).
        """
        if filter_level:
            return _filtered_sample(self, n, seed, replace, return_tree, filter_level)
        from . import sampling

        n = sampling._check_n(n)
        limits.check_sample(self, n, tree=True, replace=replace)  # every layout is built: refuse what cannot fit
        rng = sampling._rng(seed)
        sampling._check_replace_defined(self, replace)
        if replace:
            _, y, tree = self.base.sample(n, seed=rng, return_tree=True)
            positions = self._draw_positions(rng, n)
        else:
            y, tree, positions = self._distinct(n, rng)
        layouts, _ = self._render(tree, positions)
        layouts[0] = y
        x = sampling._finish(self, layouts[-1], layouts, rng)
        return (x, y, layouts) if return_tree else (x, y)

    def _distinct(self, n: int, rng):
        from . import sampling

        if limits.exceeds_num_inputs(self, n):
            raise ValueError(f"n={n} exceeds num_inputs={self.num_inputs}: cannot draw that many distinct inputs")
        k, radix = self.num_informative, self.s0 + 1
        if not limits.more_inputs_than(self, 2**62):
            idx = rng.choice(self.num_inputs, size=n, replace=False) if n else np.empty(0, np.int64)
            base_idx, pos_code = np.divmod(idx, radix**k)
            _, y, tree = sampling.from_codes(self.base, base_idx, return_tree=True)
            digits = np.empty((n, k), dtype=np.int64)
            for j in range(k - 1, -1, -1):
                pos_code, digits[:, j] = np.divmod(pos_code, radix)
            bounds = np.cumsum([0] + [self.s**lv for lv in range(1, self.L + 1)])
            positions = {lv: digits[:, bounds[lv - 1]:bounds[lv]] for lv in range(1, self.L + 1)}
            return y, tree, positions
        # huge: i.i.d. draws, first occurrences kept (a uniform sample without replacement)
        ys, trees, poss, keys = [], [], [], np.empty((0, self.d), dtype=self.token_dtype)
        while len(keys) < n:
            extra = n - len(keys) + (n - len(keys)) // 8 + 16
            _, y, tree = self.base.sample(extra, seed=rng, return_tree=True)
            pos = self._draw_positions(rng, extra)
            ys.append(y), trees.append(tree), poss.append(pos)
            layouts, _ = self._render(tree, pos)
            both = np.concatenate([keys, layouts[-1]])
            _, first = np.unique(both, axis=0, return_index=True)
            keep = np.sort(first)
            keys = both[keep]
            y_all = np.concatenate(ys)[keep]
            tree_all = [np.concatenate([t[lv] for t in trees])[keep] for lv in range(self.L + 1)]
            pos_all = {lv: np.concatenate([p[lv] for p in poss])[keep] for lv in range(1, self.L + 1)}
            ys, trees, poss = [y_all], [tree_all], [pos_all]
        return ys[0][:n], [t[:n] for t in trees[0]], {lv: p[:n] for lv, p in poss[0].items()}

    def resample_below(self, tree, level, seed=None, return_tree=False):
        """Keep the level-`level` layout of `tree` (symbols and positions), redraw everything below it."""
        from . import sampling

        level = check_int("level", level, 0, self.L)
        if not isinstance(tree, (list, tuple)) or len(tree) <= level:
            raise ValueError(f"tree must be the list of levels from sample(return_tree=True), with index {level}")
        top = np.asarray(tree[level])
        top = top.reshape(-1, 1) if level == 0 and top.ndim == 1 else top
        if top.ndim != 2 or top.shape[1] != self.patch**level:
            raise ValueError(f"tree[{level}] has shape {np.shape(tree[level])}, expected (n, {self.patch ** level})")
        n = len(top)
        informative = top != self.blank if level else np.ones_like(top, dtype=bool)
        if not (informative.sum(axis=1) == self.s**level).all():
            raise ValueError(f"tree[{level}] must hold exactly s**level={self.s ** level} informative symbols per row")
        idx = np.nonzero(informative)[1].reshape(n, -1)
        sym = np.take_along_axis(top, idx, axis=1)
        if sym.size and (sym.min() < 0 or sym.max() >= self.base.symbols(level)):
            raise ValueError(f"tree[{level}] must hold symbols in [0, {self.base.symbols(level)}) or the blank")
        rng = sampling._rng(seed)
        base_tree = [None] * level + [sym[:, 0] if level == 0 else sym]
        _, sub = self.base.resample_below(base_tree, level, seed=rng, return_tree=True)
        positions = self._draw_positions(rng, n, start=level)
        layouts, _ = self._render(sub[level:], positions, start=level, top_index=idx)
        clean = layouts[-1]
        new = [np.array(t, copy=True) for t in tree[:level]] + layouts
        if level == 0:
            new[0] = sym[:, 0].astype(self.token_dtype)
        x = sampling._finish(self, clean, new, rng)
        return (x, new) if return_tree else x

    def stream(self, batch_size, seed=None, n_batches=None):
        from . import sampling
        return sampling.stream(self, batch_size, seed=seed, n_batches=n_batches)

    # ------------------------------------------------------------------------------------------ parse
    def parse(self, x, return_tree: bool = False):
        """Exact bottom-up parse: labels (n,), -1 where no derivation (symbols and positions) produces x.

        Each block of s0+1 must hold at most one non-blank; a patch of s blocks is either all blank (a blank
        parent) or s informative symbols that a rule produces.
        """
        from . import oracle

        x = check_tokens(x, self.d, self.vocab_size, vocab_label="v+1")  # the blank is token v
        n, blank, inv = len(x), self.blank, oracle._inverses(self.base)
        sym = x.astype(np.int64)
        tree = [sym]
        for lv in range(self.L - 1, -1, -1):
            blocks = sym.reshape(n, -1, self.s, self.s0 + 1)
            filled = blocks != blank
            count = filled.sum(axis=3)
            token = np.where(count == 1, np.where(filled, blocks, -2).max(axis=3), blank)
            token = np.where(count > 1, -1, token)  # two informative tokens in one block
            is_blank = (token == blank).all(axis=2)
            full = (token >= 0).all(axis=2) & (token != blank).all(axis=2)
            parent = inv[lv](np.where((token >= 0) & (token != blank), token, 0))
            sym = np.where(full, parent, np.where(is_blank & (lv > 0), blank, -1))
            sym = np.where(full & (parent < 0), -1, sym)
            tree.append(sym)
        y = np.where(sym[:, 0] == blank, -1, sym[:, 0]).astype(np.int64)
        if not return_tree:
            return y
        tree = tree[::-1]
        tree[0] = y
        return y, tree

    # -------------------------------------------------------------------------------------- inference
    def tree_pcfg(self):
        """The sparse RHM as a tree PCFG: v+1 symbols below the root, s(s0+1) children, m (s0+1)**s rules.

        Rule (k, p_1..p_s) of an informative symbol puts child c of RHM rule k at slot c(s0+1)+p_c, blanks
        elsewhere, with probability rule_probs[k] / (s0+1)**s; the blank has m (s0+1)**s all-blank rules of equal
        probability (so its inside value is the product of its children's).
        """
        from .treepcfg import TreePCFG

        cache = self.__dict__.get("_tree_pcfg")
        if cache is not None:
            return cache
        s, r = self.s, self.s0 + 1
        pcodes = np.stack(np.unravel_index(np.arange(r**s), (r,) * s), axis=1)  # (r**s, s)
        slots = np.arange(s) * r + pcodes  # (r**s, s): slot of child c
        children, probs = [], []
        for lv in range(self.L):
            table, p = self.base.rules[lv], self.base.rule_probs[lv]
            n_inf, m = table.shape[:2]
            out = np.full((n_inf, m, r**s, self.patch), self.blank, dtype=np.int64)
            rows = np.arange(n_inf)[:, None, None, None]
            ks = np.arange(m)[None, :, None, None]
            ps = np.arange(r**s)[None, None, :, None]
            out[rows, ks, ps, slots[None, None]] = table[:, :, None, :]
            out = out.reshape(n_inf, m * r**s, self.patch)
            prob = np.repeat(np.asarray(p, dtype=np.float64), r**s, axis=1) / r**s
            if lv > 0:  # the blank symbol
                out = np.concatenate([out, np.full((1, m * r**s, self.patch), self.blank)])
                prob = np.concatenate([prob, np.full((1, m * r**s), 1.0 / (m * r**s))])
            children.append(out)
            probs.append(prob)
        cache = TreePCFG(children=tuple(children), probs=tuple(probs),
                         prior=np.full(self.n_classes, 1.0 / self.n_classes), V=self.vocab_size, noise=self.noise)
        self.__dict__["_tree_pcfg"] = cache
        return cache

    # ------------------------------------------------------------------------------------- save/load
    def to_dict(self) -> dict:
        base = self.base.to_dict()
        return {"format": SPARSE_FORMAT, "version": 1, "s0": self.s0, "noise": self.noise, "base": base}

    def save(self, path) -> None:
        """Write the sparse grammar as JSON (atomically)."""
        save_json(self.to_dict(), path)

    @classmethod
    def from_dict(cls, data) -> "SparseRHM":
        check_header(data, SPARSE_FORMAT, "sparse RHM", ("s0", "base"))
        return cls.from_base(RHM.from_dict(data["base"]), data["s0"], noise=data.get("noise", 0.0))

    @classmethod
    def load(cls, path) -> "SparseRHM":
        """Read a sparse grammar written by :meth:`save`; any malformed file raises ValueError."""
        return load_json(path, cls.from_dict, "sparse grammar")


@register_builder("sparse")
def _build(spec) -> SparseRHM:
    return SparseRHM(spec.v, spec.m, spec.s, spec.L, s0=spec.s0, n_classes=spec.n_classes, rules=spec.rules,
                     seed=spec.seed, zipf=spec.zipf, noise=spec.noise)
