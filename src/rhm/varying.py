"""The varying-tree Random Hierarchy Model of Parley, Cagnetta, Wyart, "Deep networks learn to parse uniform-depth
context-free languages from local statistics" (arXiv 2602.06065): binary and ternary productions, so the tree
topology varies from sample to sample and strings have variable length, every leaf at depth L.

Definitions used (symbols of the paper; section numbers could not be checked, see the note at the end):

- Levels 0 (the root, ``n_classes`` symbols, default v) .. L (the tokens); every level below the root has the
  vocabulary v. Every symbol of levels 0 .. L-1 has ``m2`` binary rules a -> (b, c) and ``m3`` ternary rules
  a -> (b, c, d). The rules of each level are drawn independently: the ``n_par * m2`` right-hand pairs are
  distinct pairs of the v**2 (drawn without replacement), the ``n_par * m3`` triples distinct triples of the
  v**3, so no right-hand side of a given arity has two parents.
- The ambiguity fraction f: m2 = f v and m3 = f v**2, i.e. the fraction f of all pairs and of all triples that
  are right-hand sides (the authors' code, ``fraction_rules``: ``m_2 = int(f * v)``, ``m_3 = int(f * v**2)``).
  ``VaryingRHM(v, L=L, f=f)`` sets m2, m3 that way (rounded); m2, m3 can also be given directly. Ambiguity is not
  in the rules of one arity but in the segmentation: a string may split into pairs and triples in several ways
  that are all valid, and the larger f the more of them are.
- Arity per **node**: each node independently rewrites with a binary rule with probability p2 (uniform among its
  m2 binary rules) and a ternary one with probability 1 - p2 (uniform among its m3). The authors' sampler draws
  the rule from m2 + m3 cells with probabilities 1/(2 m2), 1/(2 m3), i.e. p2 = 1/2, the default here.
- The root (class) is uniform. Every leaf is at depth L, so lengths range over 2**L .. 3**L.

Data format of :meth:`VaryingRHM.sample` (:class:`VaryingSample`): ``x`` (n, 3**L) tokens in ``g.token_dtype``,
the string's tokens left-aligned and the rest of the row filled with ``g.pad_token`` = v (one past the
vocabulary, so token values are 0 .. v-1 and v is padding); ``y`` (n,) root classes; ``lengths`` (n,) int64,
the number of real tokens per row (= ``(x != g.pad_token).sum(1)``). The result is a tuple ``(x, y)``
(``x, y = g.sample(n, seed=0)`` works) with the attributes ``.x``, ``.y``, ``.lengths``; with
``return_tree=True`` it is ``(x, y, tree)`` and also has ``.arities``: ``tree[0]`` is y, ``tree[l]`` (n, 3**l) the
level-l symbols left-aligned and padded with ``pad_token``, ``arities[l]`` (n, 3**l) the arity (2 or 3; 0 on
padding) of each level-l node for l < L, so the derivation tree is tree[l][i] -> the next arities[l][i] symbols
of tree[l+1] in order.

Note: the paper's model section could not be read here (only its abstract, via the stored pages); the
definitions above follow the authors' public code (jackparley/Mixed_RHM, datasets/random_hierarchy_model.py,
``MixedRandomHierarchyModel_varying_tree`` and ``sample_padded_rules``, read for understanding). Where the paper
might differ (p2 per symbol rather than per node, or shared tuples across arities), the simplest reading is taken.
"""

from __future__ import annotations

import numpy as np

from ._io import check_header, load_json, save_json
from .filtering import register_format
from .sampling import _raw_bytes
from .spec import GrammarSpec, check_varying, register_builder
from .validation import check_float, check_int

__all__ = ["VaryingRHM", "VaryingSample", "length_distribution"]

VARYING_FORMAT = "rhm-varying-grammar"


class VaryingSample(tuple):
    """``(x, y)`` (or ``(x, y, tree)`` with return_tree) with the attributes x, y, lengths (and tree, arities)."""

    def __new__(cls, x, y, lengths, tree=None, arities=None):
        self = super().__new__(cls, (x, y) if tree is None else (x, y, tree))
        self.x, self.y, self.lengths, self.tree, self.arities = x, y, lengths, tree, arities
        return self


def length_distribution(p2: float, L: int) -> np.ndarray:
    """Exact P(length = N) for N = 0 .. 3**L (a node is binary w.p. p2, independently): (3**L + 1,) float64."""
    p = np.zeros(2)
    p[1] = 1.0
    for _ in range(L):
        two = np.convolve(p, p)
        three = np.convolve(two, p)
        q = np.zeros(len(three))
        q[: len(two)] += p2 * two
        q += (1.0 - p2) * three
        p = q
    return p


# nodes of the deepest level of one chunk of the sampler (cache sized)
_CHUNK_NODES = 1 << 18


def _fill(out, values, counts):
    """Write the rows of a flat row-after-row array (counts[i] values for row i) left-aligned into out (n, width),
    whose other cells already hold the padding: one boolean mask in row-major order does it."""
    out[np.arange(out.shape[1])[None, :] < counts[:, None]] = values


# the widest rows written from windows (_pad_rows): its (width + 1, width) table stays small
_WINDOW_MAX_WIDTH = 3**5


def _pad_rows(out, ext, ends, floor):
    """Write a flat row-after-row byte array (row i: ext[ends[i-1]: ends[i]], then at least a row's width of
    padding) left-aligned into out (n, width), padded: row i is the window ext[start_i: start_i + width], and
    floor[count_i] (0 on the row's values, the padding after them) raises the cells past the row's end to the
    padding, which is above every token. The windows are the elements of a 1-D view of ext with a `width`-byte
    void dtype and a stride of 1 byte, so each row is one element copy (~2.5x faster than gathering the rows of a
    2-D strided view)."""
    width = out.shape[1]
    row = np.dtype((np.void, width))
    counts = np.diff(ends, prepend=0)
    win = np.ndarray(shape=(len(ext) - width + 1,), dtype=row, buffer=ext, strides=(1,))
    np.maximum(win[ends - counts].view(np.uint8).reshape(-1, width),
               floor.view(row).reshape(-1)[counts].view(np.uint8).reshape(-1, width), out=out)


@register_format(VARYING_FORMAT)
class VaryingRHM:
    """The varying-tree RHM (Parley, Cagnetta, Wyart 2026): binary and ternary rules, variable length.

    Parameters
    ----------
    v: symbols per level below the root (tokens 0 .. v-1; ``pad_token`` = v pads the strings).
    m2, m3: binary and ternary rules per symbol (or give f instead: m2 = round(f v), m3 = round(f v**2)).
    p2: probability that a node rewrites with a binary rule (default 1/2, the authors' choice).
    L: depth; lengths range over 2**L .. 3**L.
    f: the ambiguity fraction (the fraction of all pairs and triples that are right-hand sides); with f, m2 and
        m3 must be left out.
    n_classes: root symbols (default v). seed: an int; the same seed gives the same grammar.
    """

    varying = True  # what rhm.inference and the learners test to tell this grammar apart
    s = 3  # the widest arity (d = 3**L); the topology is not fixed
    zipf = None
    zipf_levels = None
    noise = 0.0
    rule_sampler = "uniform"

    def __init__(self, v, m2=None, m3=None, p2=0.5, L=None, f=None, n_classes=None, seed=0):
        if L is None:
            raise ValueError("L (the depth) is required")
        if f is not None:
            if m2 is not None or m3 is not None:
                raise ValueError(f"give either f={f!r} or m2, m3, not both (f sets m2 = f v, m3 = f v**2)")
            f = check_float("f", f, 0.0, strict=True)
            if f > 1.0:
                raise ValueError(f"f={f!r} must be in (0, 1]: the fraction of pairs and triples used as rules")
            vv = check_int("v", v, 2)
            m2, m3 = max(1, round(f * vv)), max(1, round(f * vv**2))
        elif m2 is None or m3 is None:
            raise ValueError("give m2 and m3 (rules per symbol of each arity), or the ambiguity fraction f")
        self.v, self.m2, self.m3, self.p2, self.L, self.n_classes = check_varying(v, m2, m3, p2, L, n_classes)
        self.seed = check_int("seed", seed, 0)
        self.m = self.m2
        rng = np.random.default_rng(self.seed)
        bins, ters = [], []
        for level in range(self.L):
            n_par = self.symbols(level)
            b = rng.choice(self.v**2, size=n_par * self.m2, replace=False).reshape(n_par, self.m2)
            t = rng.choice(self.v**3, size=n_par * self.m3, replace=False).reshape(n_par, self.m3)
            b = np.stack([b // self.v, b % self.v], axis=-1)
            t = np.stack([t // self.v**2, (t // self.v) % self.v, t % self.v], axis=-1)
            for a in (b, t):
                a.setflags(write=False)
            bins.append(b)
            ters.append(t)
        self.binary_rules, self.ternary_rules = tuple(bins), tuple(ters)
        # one table per level: (n_par, m2 + m3, 3) right-hand sides, binary ones padded with pad_token
        self._table = []
        for b, t in zip(bins, ters):
            pad = np.full(b.shape[:2] + (1,), self.pad_token)
            self._table.append(np.concatenate([np.concatenate([b, pad], -1), t], 1).astype(np.int64))

    # ----------------------------------------------------------------------------------------- sizes
    @property
    def pad_token(self) -> int:
        return self.v

    @property
    def d(self) -> int:
        """The padded width: the longest string, 3**L."""
        return 3**self.L

    @property
    def min_length(self) -> int:
        return 2**self.L

    @property
    def vocab_size(self) -> int:
        """Input vocabulary v + 1: the tokens 0 .. v-1 and the padding token v (as the sparse RHM's blank)."""
        return self.v + 1

    @property
    def f(self) -> float:
        """The ambiguity fraction of the rules: m2 / v (= m3 / v**2 when built from f)."""
        return self.m2 / self.v

    @property
    def token_dtype(self) -> np.dtype:
        top = max(self.v + 1, self.n_classes) - 1
        return np.dtype(np.uint8 if top < 256 else np.uint16 if top < 65536 else np.uint32)

    def symbols(self, level: int) -> int:
        level = check_int("level", level, 0, self.L)
        return self.n_classes if level == 0 else self.v

    @property
    def is_plain(self) -> bool:
        """False: inputs are not equally likely (drawn i.i.d.; no distinct-input protocol)."""
        return False

    def length_distribution(self) -> np.ndarray:
        """Exact P(length = N), N = 0 .. 3**L."""
        return length_distribution(self.p2, self.L)

    @property
    def spec(self) -> GrammarSpec:
        return GrammarSpec(v=self.v, m=self.m2, s=2, L=self.L, n_classes=self.n_classes, seed=self.seed,
                           m3=self.m3, p2=self.p2)

    def __repr__(self) -> str:
        return (f"VaryingRHM(v={self.v}, m2={self.m2}, m3={self.m3}, p2={self.p2!r}, L={self.L}, "
                f"n_classes={self.n_classes}, seed={self.seed})")

    def __eq__(self, other) -> bool:
        return isinstance(other, VaryingRHM) and (self.v, self.m2, self.m3, self.p2, self.L, self.n_classes,
                                                  self.seed) == (other.v, other.m2, other.m3, other.p2, other.L,
                                                                 other.n_classes, other.seed)

    __hash__ = None

    # -------------------------------------------------------------------------------------- sampling
    def sample(self, n, seed=None, replace=True, return_tree=False) -> VaryingSample:
        """n i.i.d. strings: ``(x, y)`` padded (n, 3**L), with ``.lengths``; see the module docstring.

        Vectorised, in cache-sized chunks of strings: each level is one flat array of the chunk's nodes, row after
        row; one categorical draw per node (arity and rule at once, P = p2/m2 for each binary rule, (1 - p2)/m3
        for each ternary one; see :meth:`_byte_tables`) indexes one table of right-hand sides, and the binary
        rules' padding slot is dropped with a mask (no loop over samples or nodes). The rows' ends follow from a
        cumulative sum of the ternary flags; byte rows are written padded from windows of the flat last level
        (:func:`_pad_rows`). x, y do not depend on return_tree."""
        from . import limits, sampling

        n = sampling._check_n(n)
        if not replace:
            raise ValueError("replace=False is not defined for VaryingRHM: inputs are not equally likely; "
                             "sample with replacement")
        limits.check_bytes("n", f"VaryingRHM.sample of n={n} strings of width {self.d}",
                           n * self.d * (2 + (8 if return_tree else 0)) + n * 16)
        rng = sampling._rng(seed)
        pad, dt = self.pad_token, self.token_dtype
        # byte tokens: rows are written whole from windows of the flat level (_pad_rows), no padding beforehand
        windows = dt == np.uint8 and self.d <= _WINDOW_MAX_WIDTH
        alloc = np.empty if windows else lambda shape, dtype: np.full(shape, pad, dtype=dtype)
        y = rng.integers(0, self.n_classes, size=n, dtype=dt)
        x = alloc((n, self.d), dtype=dt)
        lengths = np.empty(n, dtype=np.int64)
        tree = [y] + [alloc((n, 3**lv), dtype=dt) for lv in range(1, self.L)] + [x] if return_tree else None
        arities = [np.zeros((n, 3**lv), dtype=np.uint8) for lv in range(self.L)] if return_tree else None
        cats, flat = self._samplers()
        step = max(1, _CHUNK_NODES // 3**self.L)
        idt = np.int32 if step * 3**self.L < 2**31 else np.int64
        for a in range(0, n, step):
            sym = y[a: a + step]  # every node of the current level of this chunk, row after row
            ends = np.arange(1, len(sym) + 1, dtype=idt)  # per row: the nodes of the level up to its end
            for level in range(self.L):
                children = self._draw_children(rng, level, sym, cats, flat)  # (nodes, 3 or 4) tokens
                keep = children != pad  # the third slot of a binary rule (and a packed 4th byte) is padding
                ternary = keep[:, 2]
                if return_tree:
                    _fill(arities[level][a: a + step], ternary.view(np.uint8) + np.uint8(2), np.diff(ends, prepend=0))
                # each node has 2 children, 1 more if ternary: the next level's row ends from one cumulative sum
                # (~3x faster than summing each row's arities with np.add.reduceat)
                ends = 2 * ends + np.cumsum(ternary, dtype=idt)[ends - 1]
                out = x if level == self.L - 1 else tree[level + 1] if return_tree else None
                if out is None or not windows:
                    sym = np.compress(keep.reshape(-1), children.reshape(-1))  # ~6x faster than children[keep]
                    if out is not None:
                        _fill(out[a: a + step], sym, np.diff(ends, prepend=0))
                    continue
                width, total = out.shape[1], int(ends[-1])
                ext = np.empty(total + width, dtype=np.uint8)  # the flat level and a row of padding after it
                ext[total:] = pad
                sym = np.compress(keep.reshape(-1), children.reshape(-1), out=ext[:total])
                _pad_rows(out[a: a + step], ext, ends, self._floor(width))
            lengths[a: a + step] = np.diff(ends, prepend=0)
        return VaryingSample(x, y, lengths, tree, arities)

    def _floor(self, width):
        """(width + 1, width) uint8: row k is k zeros then pad_token (the mask of _pad_rows), cached."""
        floors = self.__dict__.setdefault("_floors", {})
        if width not in floors:
            floors[width] = np.where(np.arange(width)[None, :] < np.arange(width + 1)[:, None], 0,
                                     self.pad_token).astype(np.uint8)
        return floors[width]

    def _draw_children(self, rng, level, sym, cats, flat):
        """The right-hand sides of one rule draw per node: (nodes, 4) bytes [b, c, d or pad, pad] when tokens fit
        a byte (the cell key ``symbol << bits | random bits`` maps straight to the packed right-hand side: one
        lookup per node), else (nodes, 3) through the drawn rule's flat index."""
        if self.token_dtype != np.uint8:
            return np.take(flat[level], cats[level].draw_flat(rng, sym), axis=0)  # faster than fancy indexing
        packed, table, bits, kd, cat = self._byte_tables()[level]
        key = sym.astype(kd)
        key <<= kd.type(bits)
        if bits <= 8:
            key |= _raw_bytes(rng, key.size) >> np.uint8(8 - bits)
        else:
            key |= _raw_bytes(rng, 2 * key.size).view("<u2") >> np.uint16(16 - bits)
        out = np.take(table, key)
        if cat is not None:  # cells that straddle two rules map to 0xFFFFFFFF: resolved exactly
            bad = np.flatnonzero(out == np.uint32(0xFFFFFFFF))
            if bad.size:
                out[bad] = packed[cat.resolve(rng, key[bad])]
        return out.view(np.uint8).reshape(-1, 4)

    def _byte_tables(self):
        """Per level (packed, table, bits, key dtype, categorical or None) of the byte-token sampler (cached).

        packed (n_par * (m2 + m3),) uint32: each rule's right-hand side [b, c, d or pad, pad] in one word. Every
        parent has the same rule probabilities w (p2/m2 each binary rule, (1 - p2)/m3 each ternary one). When
        every w * 2**bits is an integer for some bits <= 16 (p2 = 1/2 with m2, m3 powers of two, say), the 2**bits
        equal cells of [0, 1) each lie inside one rule: table[a << bits | cell] is the packed right-hand side and
        no draw needs refining, from a table small enough for the L1 cache and 1 random byte per node when bits
        <= 8. Otherwise the cells of :class:`rhm.filtering.Categorical` are used, straddling ones marked."""
        cache = self.__dict__.get("_byte_cache")
        if cache is None:
            cats, flat = self._samplers()
            M = self.m2 + self.m3
            w = np.concatenate([np.full(self.m2, self.p2 / self.m2), np.full(self.m3, (1 - self.p2) / self.m3)])
            # w * 2**b exact integers (float64 holds them exactly) that add up to 2**b: cell counts of the rules
            aligned = next((b for b in range(1, 17) if np.array_equal(w * 2**b, np.round(w * 2**b))
                            and np.round(w * 2**b).sum() == 2**b), None)
            cache = []
            for cat, f in zip(cats, flat):
                packed = (f.astype(np.uint32) * np.array([1, 1 << 8, 1 << 16], dtype=np.uint32)).sum(
                    1, dtype=np.uint32) | np.uint32(self.pad_token << 24)
                if aligned is not None:
                    column = np.repeat(np.arange(M), np.round(w * 2**aligned).astype(np.int64))  # cell -> rule
                    table, bits, straddle = packed.reshape(-1, M)[:, column].reshape(-1), aligned, None
                else:
                    # a straddling cell maps to 0xFFFFFFFF, which no right-hand side packs to (b, c < v = pad)
                    table = np.where(cat.table >= 0, packed[np.maximum(cat.table, 0)], np.uint32(0xFFFFFFFF))
                    table, bits, straddle = table.astype(np.uint32), cat.bits, cat
                kd = np.dtype(np.uint16 if table.size <= 1 << 16 else np.uint32)
                cache.append((packed, table, bits, kd, straddle))
            self.__dict__["_byte_cache"] = cache
        return cache

    def _samplers(self):
        """Per level the categorical rule sampler (rows: parents) and the table (n_par * (m2 + m3), 3) of
        right-hand sides in token_dtype, row a * (m2 + m3) + k (cached)."""
        cache = self.__dict__.get("_sampler_cache")
        if cache is None:
            from .filtering import Categorical

            M = self.m2 + self.m3
            w = np.concatenate([np.full(self.m2, self.p2 / self.m2), np.full(self.m3, (1 - self.p2) / self.m3)])
            cats = [Categorical(np.broadcast_to(w, (self.symbols(lv), M))) for lv in range(self.L)]
            flat = [t.reshape(-1, 3).astype(self.token_dtype) for t in self._table]
            cache = self.__dict__["_sampler_cache"] = (cats, flat)
        return cache

    def stream(self, batch_size, seed=None, n_batches=None):
        """Iterator over i.i.d. batches (VaryingSample), all from one seeded stream."""
        from . import sampling

        return sampling.stream(self, batch_size, seed=seed, n_batches=n_batches)

    # ------------------------------------------------------------------------------------- save/load
    def to_dict(self) -> dict:
        return {"format": VARYING_FORMAT, "version": 1, "v": self.v, "m2": self.m2, "m3": self.m3, "p2": self.p2,
                "L": self.L, "n_classes": self.n_classes, "seed": self.seed,
                "binary_rules": [r.tolist() for r in self.binary_rules],
                "ternary_rules": [r.tolist() for r in self.ternary_rules]}

    def save(self, path) -> None:
        """Write the grammar as JSON (atomically)."""
        save_json(self.to_dict(), path)

    @classmethod
    def from_dict(cls, data) -> "VaryingRHM":
        """Rebuild from :meth:`to_dict` output: the parameters rebuild it, the stored tables must match them."""
        check_header(data, VARYING_FORMAT, "varying grammar", ("v", "m2", "m3", "p2", "L", "seed"))
        g = cls(data["v"], data["m2"], data["m3"], data["p2"], data["L"], n_classes=data.get("n_classes"),
                seed=data["seed"])
        for key, mine in (("binary_rules", g.binary_rules), ("ternary_rules", g.ternary_rules)):
            if key in data:
                try:
                    same = len(data[key]) == len(mine) and all(
                        np.array_equal(np.asarray(t), a) for t, a in zip(data[key], mine))
                except (ValueError, TypeError):
                    same = False
                if not same:
                    raise ValueError(f"varying grammar JSON field {key} does not match the grammar of its parameters "
                                     "(v, m2, m3, p2, L, seed): the file was edited or comes from another version")
        return g

    @classmethod
    def load(cls, path) -> "VaryingRHM":
        """Read a grammar written by :meth:`save`; any malformed file raises ValueError."""
        return load_json(path, cls.from_dict, "varying grammar")


def is_varying(g) -> bool:
    """True for a grammar whose tree topology varies between samples (a :class:`VaryingRHM`)."""
    return getattr(g, "varying", False) is True


@register_builder("varying")
def _build(spec) -> VaryingRHM:
    return VaryingRHM(spec.v, spec.m, spec.m3, spec.p2 if spec.p2 is not None else 0.5, spec.L,
                      n_classes=spec.n_classes, seed=spec.seed)
