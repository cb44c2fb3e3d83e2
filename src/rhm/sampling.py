"""Drawing inputs from an RHM: i.i.d., without replacement, with latent trees, synonym resampling, streams.

An input is determined by its label and one rule choice in [0, m) per internal node of the tree; the nodes are
numbered breadth first (root = 0, then level 1 left to right, ...), so level l owns the node slice
``_level_slice(s, l)``. All draws take a ``seed`` (int, SeedSequence or numpy Generator); nothing touches
global random state, and the same seed gives identical bytes.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator

import numpy as np

from . import limits

# Rows per chunk are chosen so that one chunk of the widest level stays around this many bytes (cache sized).
# The chunk size is a function of the grammar only, so the random stream (and the output) never depends on
# the machine.
_CHUNK_BYTES = 1 << 19


def _rng(seed) -> np.random.Generator:
    if seed is None:
        raise ValueError("seed is required (an int, SeedSequence or numpy Generator): rhm never draws unseeded")
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (numbers.Integral, np.random.SeedSequence)):
        raise ValueError(f"seed={seed!r} must be an int, SeedSequence or numpy Generator")
    if isinstance(seed, numbers.Integral) and seed < 0:
        raise ValueError(f"seed={seed} must be >= 0")
    return np.random.default_rng(seed)


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise ValueError(f"n={n!r} must be an integer")
    if n < 0:
        raise ValueError(f"n={n} must be >= 0")
    return int(n)


def _level_slice(s: int, level: int) -> slice:
    """Breadth-first node indices of level `level` (s**level nodes)."""
    start = (s**level - 1) // (s - 1)
    return slice(start, start + s**level)


def _choice_dtype(m: int) -> np.dtype:
    return np.dtype(np.uint8 if m <= 256 else np.uint16 if m <= 65536 else np.uint32)


def _draw_choices(rng: np.random.Generator, m: int, shape) -> np.ndarray:
    """Uniform rule choices in [0, m), in the smallest dtype. For m | 256 masked random bytes are exact and
    ~4x faster than bounded integer generation."""
    if m <= 256 and 256 % m == 0:
        count = int(np.prod(shape))
        return (np.frombuffer(rng.bytes(count), dtype=np.uint8) & np.uint8(m - 1)).reshape(shape)
    return rng.integers(0, m, size=shape, dtype=_choice_dtype(m))


class _ZipfChoices:
    """Exact draws from rule probabilities f (m,) shared by every symbol, at about one random byte per draw.

    A random byte u picks the cell [u, u+1)/256 of [0, 1). Cells inside one segment of the cumulative
    distribution map straight to their rule through a table; the at most m-1 cells that straddle a boundary
    (marked by a sentinel) draw a second byte that picks a sub-cell of 1/65536 the same way, and the rare
    sub-cells that still straddle a boundary are refined with a uniform float, so rule k has exactly
    probability f_k. (16-bit cells and float refinement when m >= 255.)
    """

    def __init__(self, f: np.ndarray):
        self.cdf = np.cumsum(f)
        self.cdf[-1] = 1.0
        self.m = len(f)
        self.bits = 8 if self.m < 255 else 16
        cells = 1 << self.bits
        self.sentinel = cells - 1 if self.bits == 8 else np.iinfo(np.uint32).max
        self.table = self._table(np.arange(cells), cells, np.uint8 if self.bits == 8 else np.uint32)
        self.trans = self.table.tobytes() if self.bits == 8 else None
        if self.bits == 8:  # second level: the 256 sub-cells of every straddling cell
            impure = np.flatnonzero(self.table == self.sentinel)
            self.row = np.zeros(256, dtype=np.int64)
            self.row[impure] = np.arange(len(impure))
            sub = (impure[:, None] * 256 + np.arange(256)).ravel()
            self.table2 = self._table(sub, 1 << 16, np.uint8).reshape(len(impure), 256)

    def _table(self, cells: np.ndarray, size: int, dtype) -> np.ndarray:
        """Rule of each cell [c, c+1)/size, or the sentinel where a boundary of the cdf lies strictly inside."""
        out = np.minimum(np.searchsorted(self.cdf, cells / size, side="right"), self.m - 1).astype(dtype)
        scaled = self.cdf[:-1] * size
        inner = np.floor(scaled[scaled != np.floor(scaled)]).astype(np.int64)
        out[np.isin(cells, inner)] = self.sentinel
        return out

    def __call__(self, rng: np.random.Generator, shape) -> np.ndarray:
        count = int(np.prod(shape))
        if self.bits == 8:  # bytes.translate is a 256-entry table lookup at memcpy-like speed
            u = _raw_bytes(rng, count)
            out = np.frombuffer(bytearray(u.tobytes().translate(self.trans)), dtype=np.uint8)
            idx = np.flatnonzero(out == self.sentinel)
            if idx.size:
                u2 = _raw_bytes(rng, idx.size)
                out[idx] = self.table2[self.row[u[idx]], u2]
                again = np.flatnonzero(out[idx] == self.sentinel)
                idx, cell = idx[again], u[idx[again]].astype(np.int64) * 256 + u2[again]
                scale = 1 << 16
        else:
            u = _raw_bytes(rng, 2 * count).view("<u2")
            out = self.table[u]
            idx = np.flatnonzero(out == self.sentinel)
            cell, scale = u[idx], 1 << 16
        if idx.size:
            fine = (cell + rng.random(idx.size)) / scale
            out[idx] = np.minimum(np.searchsorted(self.cdf, fine, side="right"), self.m - 1)
        return out.astype(_choice_dtype(self.m), copy=False).reshape(shape)


def _choice_sampler(g):
    """``draw(rng, shape, level)`` of the rule choices of g: uniform masked bytes, or exact Zipf draws."""
    uniform = lambda rng, shape, level: _draw_choices(rng, g.m, shape)  # noqa: E731
    spec = g.spec
    if spec.zipf is None:
        return uniform
    zipf_at = [spec.zipf_levels is None or lv in spec.zipf_levels for lv in range(g.L)]
    per_level = [_ZipfChoices(g.level_probs(lv)) if on else None for lv, on in enumerate(zipf_at)]
    return lambda rng, shape, level: (uniform(rng, shape, level) if per_level[level] is None
                                      else per_level[level](rng, shape))


def _raw_bytes(rng: np.random.Generator, count: int) -> np.ndarray:
    """`count` random bytes from the bit generator's raw 64-bit outputs (little-endian on every platform)."""
    words = rng.bit_generator.random_raw((count + 7) // 8)
    return words.astype("<u8", copy=False).view(np.uint8)[:count]


def _uniform_tokens(rng: np.random.Generator, v: int, n: int) -> np.ndarray:
    """n exact uniform draws in [0, v): masked bytes when v divides 256, else 16-bit multiply-shift with the
    rare biased draws (probability < v/65536) redrawn (Lemire's method)."""
    if 256 % v == 0:
        return _raw_bytes(rng, n) & np.uint8(v - 1)
    if v > 1 << 16:
        return rng.integers(0, v, size=n)
    prod = _raw_bytes(rng, 2 * n).view("<u2").astype(np.uint32) * np.uint32(v)
    out = (prod >> np.uint32(16)).astype(np.uint16 if v > 256 else np.uint8)
    bad = np.flatnonzero((prod & np.uint32(0xFFFF)) < np.uint32((65536 - v) % v))
    if bad.size:
        out[bad] = rng.integers(0, v, size=bad.size)
    return out


def apply_noise(x: np.ndarray, eps: float, v: int, rng: np.random.Generator) -> np.ndarray:
    """Replace each token of x (in place, x contiguous) with probability eps by a uniform token in [0, v).

    Exact Bernoulli(eps) per token at one random byte: u < floor(256 eps) replaces, and the tokens whose u
    equals that boundary (1 in 256) are refined with a uniform float. When v divides 256 a fresh token is drawn
    for every position and blended in with a bit mask (branch-free, no position list); otherwise the new
    tokens are drawn for the replaced positions only.
    """
    if eps <= 0.0 or x.size == 0:
        return x
    flat = x.reshape(-1)
    if not np.shares_memory(flat, x):
        raise ValueError("apply_noise needs a contiguous array")
    n = flat.size
    u = _raw_bytes(rng, n)
    cut = int(np.floor(eps * 256.0))
    hit = u < cut if eps < 1.0 else np.ones(n, dtype=bool)
    if eps < 1.0 and eps * 256.0 != cut:
        edge = np.flatnonzero(u == cut)
        if edge.size:
            hit[edge] = rng.random(edge.size) < eps * 256.0 - cut
    if 256 % v:  # exact uniform draws cost more than a position list: draw them for the replaced tokens only
        pos = np.flatnonzero(hit)
        flat[pos] = _uniform_tokens(rng, v, pos.size)
        return x
    new = _uniform_tokens(rng, v, n).astype(x.dtype, copy=False)
    mask = hit.view(np.uint8) if x.dtype == np.uint8 else hit.astype(x.dtype)
    np.negative(mask, out=mask)  # all ones where hit (unsigned wrap-around)
    np.bitwise_xor(new, flat, out=new)
    np.bitwise_and(new, mask, out=new)
    np.bitwise_xor(flat, new, out=flat)  # flat = new where hit, unchanged elsewhere
    return x


def _check_replace_defined(g, replace: bool) -> None:
    if replace:
        return
    if g.spec.zipf is not None:
        raise ValueError(f"replace=False is not defined for zipf={g.spec.zipf}: distinct inputs are drawn uniformly, "
                         "which is not the Zipf distribution; sample with replacement")
    if g.spec.noise:
        raise ValueError(f"replace=False is not defined for noise={g.spec.noise}: noisy inputs may coincide; sample "
                         "with replacement")


def _noise_hook(g, rng):
    """The in-place chunk corrupter of a noisy grammar (None without noise)."""
    eps = g.spec.noise
    if not eps:
        return None
    return lambda chunk: apply_noise(chunk, eps, g.vocab_size, rng)


def _finish(g, x, tree, rng):
    """Apply the noise of g to x; with a tree, tree[L] keeps the clean tokens and x is a noisy copy."""
    if not g.spec.noise:
        return x
    if tree is not None:  # tree[-1] is x itself: keep it clean, noise a copy
        x = x.copy()
    rows = max(1, _CHUNK_BYTES // max(1, x.shape[1] * x.itemsize))
    for a in range(0, len(x), rows):  # cache-sized chunks
        apply_noise(x[a:a + rows], g.noise, g.vocab_size, rng)
    return x


class _Expander:
    """Top-down rewriting with per-level lookup tables, written chunk by chunk into preallocated outputs.

    For level l the table maps ``symbol * m + choice`` to the s children. When the s children of a token
    dtype fill exactly 2, 4 or 8 bytes they are stored packed in one integer, so one gather per node writes
    all children and a zero-copy view unpacks them (little-endian byte order is handled explicitly).
    """

    def __init__(self, g):
        self.g = g
        self.dtype = g.token_dtype
        width = self.dtype.itemsize * g.s
        self.packed_dtype = {2: np.uint16, 4: np.uint32, 8: np.uint64}.get(width)
        self.tables = []
        for table in g.rules:
            flat = np.ascontiguousarray(table.reshape(-1, g.s).astype(self.dtype))  # (n_sym*m, s)
            if self.packed_dtype is not None:
                flat = flat.view(np.dtype(self.packed_dtype).newbyteorder("=")).reshape(-1)
            self.tables.append(flat)
        # smallest integer type that holds symbol*m + choice
        top = max(g.n_classes, g.v) * g.m
        self.index_dtype = np.dtype(np.uint16 if top <= 2**16 else np.uint32 if top <= 2**32 else np.intp)

    def chunk_rows(self, start_level: int) -> int:
        widest = self.g.s**self.g.L * self.dtype.itemsize
        return max(1, min(1 << 16, _CHUNK_BYTES // widest)) if start_level < self.g.L else 1 << 16

    def step(self, level: int, sym: np.ndarray, choice: np.ndarray) -> np.ndarray:
        """Children of `sym` (rows, s**level) given `choice`: (rows, s**(level+1)) in the token dtype."""
        idx = sym.astype(self.index_dtype) * self.index_dtype.type(self.g.m) + choice
        if self.packed_dtype is not None:
            return np.take(self.tables[level], idx).view(self.dtype).reshape(len(sym), -1)
        return np.take(self.tables[level], idx, axis=0).reshape(len(sym), -1)

    def run(self, top: np.ndarray, start_level: int, choices, want_tree: bool, noise=None):
        """Expand level-`start_level` symbols `top` (n, s**start_level) down to the input.

        ``choices(level, rows)`` returns the rule choices of that level for the row slice, shape
        (len(rows), s**level). ``noise(chunk)``, if given, corrupts each finished chunk of x in place while it
        is in cache; the tree then keeps the clean tokens as its last level. Returns x (n, d) and, if asked,
        the list of levels start_level..L.
        """
        g, n = self.g, len(top)
        x = np.empty((n, g.d), dtype=self.dtype)
        clean = np.empty_like(x) if (want_tree and noise is not None) else x
        tree = [np.empty((n, g.s**lv), dtype=self.dtype) for lv in range(start_level + 1, g.L)] if want_tree else []
        rows_per = self.chunk_rows(start_level)
        for a in range(0, n, rows_per):
            rows = slice(a, min(n, a + rows_per))
            sym = top[rows]
            if start_level == g.L:
                x[rows] = sym
            for lv in range(start_level, g.L):
                sym = self.step(lv, sym, choices(lv, rows))
                if lv + 1 < g.L:
                    if want_tree:
                        tree[lv - start_level][rows] = sym
                else:
                    x[rows] = sym
            if noise is not None:
                if clean is not x:
                    clean[rows] = x[rows]
                noise(x[rows])
        if start_level == g.L:
            return x, ([clean] if want_tree else None)
        return x, ([top] + tree + [clean] if want_tree else None)


def sample(g, n, seed=None, replace=True, return_tree=False):
    """Draw n inputs of grammar `g`.

    replace=True: i.i.d. (uniform label, a rule at every node drawn from ``g.rule_probs``, then the token noise
    of ``g``), vectorised and chunked so that peak memory stays within ~2x the output. replace=False: n
    **distinct** inputs, a uniform random n-subset of all ``g.num_inputs`` inputs (in random order), exact for
    any size; ValueError if n > g.num_inputs, and for Zipf or noisy grammars (where it is not defined).
    With noise, ``tree[L]`` holds the clean tokens and x their noisy copy.

    Returns x (n, d) tokens in ``g.token_dtype``, y (n,) labels, and with ``return_tree`` the list ``tree``
    of the L+1 levels: tree[0] is y (n,), tree[l] (n, s**l) the level-l symbols, tree[L] is x.
    """
    n = _check_n(n)
    limits.check_sample(g, n, tree=return_tree, replace=replace)  # refuse what cannot fit before allocating
    rng = _rng(seed)
    _check_replace_defined(g, replace)
    if not replace:
        if limits.exceeds_num_inputs(g, n):
            raise ValueError(f"n={n} exceeds num_inputs={g.num_inputs}: cannot draw that many distinct inputs")
        y, digits = _distinct_codes(g, n, rng)
        choices = lambda level, rows: digits[rows, _level_slice(g.s, level)]  # noqa: E731
    else:
        y = rng.integers(0, g.n_classes, size=n, dtype=g.token_dtype)
        draw = _choice_sampler(g)
        choices = lambda level, rows: draw(rng, (rows.stop - rows.start, g.s**level), level)  # noqa: E731
    x, tree = _Expander(g).run(y[:, None], 0, choices, return_tree, noise=_noise_hook(g, rng))
    if return_tree:
        tree[0] = y
        return x, y, tree
    return x, y


def _distinct_codes(g, n: int, rng: np.random.Generator):
    """Labels (n,) and rule choices (n, num_nodes) of n distinct inputs, uniformly without replacement.

    Inputs are in bijection with (label, choices) because the grammar is non-ambiguous, i.e. with the integers
    ``label * m**K + sum_j choice_j m**(K-1-j)`` (K = num_nodes). If that range fits in int64 we draw the
    integers with numpy's exact sampler and decode them; otherwise we draw i.i.d. codes and keep first
    occurrences until n are distinct (the first occurrences of i.i.d. uniform draws are a uniform sample
    without replacement), comparing codes exactly via their base-m limbs.
    """
    K, m, dt = g.num_nodes, g.m, _choice_dtype(g.m)
    if not limits.more_inputs_than(g, 2**62):  # num_inputs <= 2**62, never computed when astronomical
        idx = rng.choice(g.num_inputs, size=n, replace=False) if n else np.empty(0, np.int64)
        return _decode(g, idx)
    y = np.empty(0, dtype=g.token_dtype)
    digits = np.empty((0, K), dtype=dt)
    while len(y) < n:
        need = n - len(y)
        extra = need + need // 8 + 16  # a few spares: collisions are rare when num_inputs > 2**62
        y = np.concatenate([y, rng.integers(0, g.n_classes, size=extra, dtype=g.token_dtype)])
        digits = np.concatenate([digits, _draw_choices(rng, m, (extra, K))])
        _, first = np.unique(_exact_keys(y, digits, m), axis=0, return_index=True)
        keep = np.sort(first)  # first occurrences, in draw order
        y, digits = y[keep], digits[keep]
    return y[:n], digits[:n]


def _decode(g, idx: np.ndarray):
    """Labels (n,) and rule choices (n, num_nodes) of input codes idx in [0, num_inputs) (num_inputs <= 2**62)."""
    K, m = g.num_nodes, g.m
    digits = np.empty((len(idx), K), dtype=_choice_dtype(m))
    rest = np.asarray(idx, dtype=np.int64)
    for j in range(K - 1, -1, -1):  # least significant digit = last node
        rest, digits[:, j] = np.divmod(rest, m)
    return rest.astype(g.token_dtype), digits


def from_codes(g, idx, return_tree=False):
    """The inputs of codes idx (n,) in [0, num_inputs) (num_inputs <= 2**62): the bijection used by
    ``sample(replace=False)``, code = label * m**K + sum_j choice_j m**(K-1-j). Returns x, y (and tree)."""
    y, digits = _decode(g, idx)
    choices = lambda level, rows: digits[rows, _level_slice(g.s, level)]  # noqa: E731
    x, tree = _Expander(g).run(y[:, None], 0, choices, return_tree)
    if return_tree:
        tree[0] = y
        return x, y, tree
    return x, y


def _exact_keys(y: np.ndarray, digits: np.ndarray, m: int) -> np.ndarray:
    """Injective integer keys of (label, choices) rows: (n, 1 + #limbs) uint64, each limb a base-m number."""
    per_limb = 1
    while m ** (per_limb + 1) < 2**64:
        per_limb += 1
    n, K = digits.shape
    cols = [y.astype(np.uint64)]
    for a in range(0, K, per_limb):
        limb = np.zeros(n, dtype=np.uint64)
        for j in range(a, min(K, a + per_limb)):
            limb = limb * np.uint64(m) + digits[:, j].astype(np.uint64)
        cols.append(limb)
    return np.stack(cols, axis=1)


def resample_below(g, tree, level, seed=None, return_tree=False):
    """Keep the level-`level` symbols of `tree` (hence the label) and redraw every derivation below them.

    `tree` is the list returned by ``sample(..., return_tree=True)`` (only tree[level] is read). level is in
    0..L; level=L returns a copy of the input. Returns x2 (n, d) and, with return_tree, its tree (the levels
    above `level` are copied from `tree`).
    """
    if isinstance(level, bool) or not isinstance(level, numbers.Integral) or not 0 <= level <= g.L:
        raise ValueError(f"level={level!r} must be an integer in [0, L={g.L}]")
    level = int(level)
    if not isinstance(tree, (list, tuple)) or len(tree) <= level:
        raise ValueError(f"tree must be the list of levels from sample(return_tree=True), with index {level}")
    top = np.asarray(tree[level])
    if level == 0:
        top = top.reshape(-1, 1) if top.ndim == 1 else top
    n_sym = g.symbols(level)
    if top.ndim != 2 or top.shape[1] != g.s**level:
        raise ValueError(f"tree[{level}] has shape {np.shape(tree[level])}, expected (n, {g.s**level})")
    if not np.issubdtype(top.dtype, np.integer) or (top.size and (top.min() < 0 or top.max() >= n_sym)):
        raise ValueError(f"tree[{level}] must hold integer symbols in [0, {n_sym})")
    rng = _rng(seed)
    top = top.astype(g.token_dtype)
    draw = _choice_sampler(g)
    choices = lambda lv, rows: draw(rng, (rows.stop - rows.start, g.s**lv), lv)  # noqa: E731
    x, new = _Expander(g).run(top, level, choices, return_tree, noise=_noise_hook(g, rng))
    if not return_tree:
        return x
    above = [np.array(t, copy=True) for t in tree[:level]]
    new[0] = top[:, 0] if level == 0 else top
    return x, above + new


def stream(g, batch_size, seed=None, n_batches=None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Endless (or `n_batches`-long) iterator of i.i.d. batches (x, y), all drawn from one seeded stream."""
    batch_size = _check_n(batch_size)
    if batch_size == 0:
        raise ValueError("batch_size must be >= 1")
    if n_batches is not None:
        n_batches = _check_n(n_batches)
    rng = _rng(seed)

    def gen():
        k = 0
        while n_batches is None or k < n_batches:
            yield g.sample(batch_size, seed=rng)
            k += 1

    return gen()
