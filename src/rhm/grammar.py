"""The Random Hierarchy Model: parameters, validation, rule samplers and JSON save/load.

Levels follow the paper (Ren et al. 2026, §1): level 0 is the root (the class label), level L the input.
``rules[l]`` rewrites a level-l symbol into an s-tuple of level-(l+1) symbols:

    rules[0].shape == (n_classes, m, s)      # class -> m synonymous s-tuples of level-1 symbols
    rules[l].shape == (v, m, s), 1 <= l < L  # level-l symbol -> m s-tuples of level-(l+1) symbols

Every grammar built here is non-ambiguous: within a level no s-tuple has two parents, so the label is a
deterministic function of the clean input and ``parse`` inverts ``sample`` exactly.

Variants (docs/variants.md): ``zipf=a`` gives the m rules of every symbol the probabilities
f_k = k^-(1+a) / sum_j j^-(1+a), k = 1..m, the rule stored at ``rules[l][sym, k-1]`` having rank k (the stored
order is itself a uniformly random order, so ranks are assigned at random, as in Cagnetta, Kang, Wyart
arXiv 2505.07067); ``noise=eps`` replaces each input token independently, with probability eps, by a token
drawn uniformly from all v (P(x_i = a | clean c) = (1 - eps)[a = c] + eps/v). Neither draws anything when the
grammar is built, so the rules of a given seed are the same bytes as the plain RHM's.
"""

from __future__ import annotations

import numpy as np

from . import limits
from .filtering import register_format
from ._io import MAX_JSON_BYTES, atomic_path, load_json, read_json, save_json  # noqa: F401 (their old home)
from .patches import digits, fits_codes, patch_ids
from .spec import RULE_SAMPLERS, check_params, check_variant, check_zipf_levels, register_builder, spec_of
from .validation import check_int

__all__ = ["RHM", "RULE_SAMPLERS", "check_params", "check_variant", "check_zipf_levels", "check_rules", "zipf_probs"]

FORMAT_NAME = "rhm-grammar"
FORMAT_VERSION = 1
# Version 2 adds the fields zipf and noise; files of plain grammars are still written as version 1.
FORMAT_VERSIONS = (1, 2)


def zipf_probs(m: int, a: float | None) -> np.ndarray:
    """Rule probabilities (m,): uniform 1/m for a=None, else f_k proportional to k^-(1+a), k = 1..m."""
    if a is None:
        return np.full(m, 1.0 / m)
    f = np.arange(1, m + 1, dtype=np.float64) ** -(1.0 + a)
    return f / f.sum()


def _distinct_tuples(rng: np.random.Generator, v: int, s: int, count: int) -> np.ndarray:
    """``count`` distinct s-tuples over [0, v), uniformly without replacement: shape (count, s)."""
    if fits_codes(v, s):
        return digits(rng.choice(v**s, size=count, replace=False), v, s)
    # Huge tuple space: draw i.i.d. tuples and keep first occurrences until `count` are distinct. The first
    # occurrences of i.i.d. uniform draws are a uniform sample without replacement.
    out = np.empty((0, s), dtype=np.int64)
    while len(out) < count:
        more = rng.integers(0, v, size=(2 * (count - len(out)), s))
        both = np.concatenate([out, more])
        _, first = np.unique(both, axis=0, return_index=True)
        out = both[np.sort(first)]
    return out[:count]


def _uniform_rules(rng, v, m, s, L, n_classes):
    """Cagnetta et al.: per level, n_sym*m distinct s-tuples drawn without replacement from all v**s."""
    sizes = [n_classes] + [v] * (L - 1)
    return tuple(_distinct_tuples(rng, v, s, n * m).reshape(n, m, s) for n in sizes)


def _balanced_rules(rng, v, m, s, L):
    """Paper App. B: each first token gets m distinct suffixes (so the first-token marginal stays uniform);
    the v*m candidates are then dealt at random to the v parents, m each."""
    out = []
    for _ in range(L):
        suffixes = np.stack([_distinct_tuples(rng, v, s - 1, m) for _ in range(v)])  # (v, m, s-1)
        first = np.broadcast_to(np.arange(v)[:, None, None], (v, m, 1))
        candidates = np.concatenate([first, suffixes], axis=2).reshape(v * m, s)
        out.append(candidates[rng.permutation(v * m)].reshape(v, m, s))
    return tuple(out)


def check_rules(rules, v: int, m: int, s: int, L: int, n_classes: int) -> tuple[np.ndarray, ...]:
    """Validate a rule set's shapes, ranges and non-ambiguity; return it as read-only int64 arrays."""
    if not isinstance(rules, (list, tuple)) or len(rules) != L:
        raise ValueError(f"rules must be a list of L={L} arrays, got {type(rules).__name__}"
                         + (f" of length {len(rules)}" if isinstance(rules, (list, tuple)) else ""))
    out = []
    for level, table in enumerate(rules):
        n_sym = n_classes if level == 0 else v
        try:
            arr = np.asarray(table)
        except (ValueError, TypeError) as err:  # ragged nested lists
            raise ValueError(f"rules[{level}] is not a rectangular array: {err}") from None
        if arr.shape != (n_sym, m, s):
            raise ValueError(f"rules[{level}] has shape {arr.shape}, expected {(n_sym, m, s)}")
        if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"rules[{level}] must hold integers, got dtype {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() >= v):
            raise ValueError(f"rules[{level}] has symbols outside [0, v={v})")
        arr = arr.astype(np.int64)
        flat = arr.reshape(n_sym * m, s)
        n_distinct = len(patch_ids(flat, v)[0])
        if n_distinct != n_sym * m:
            raise ValueError(
                f"rules[{level}] is ambiguous: {n_sym * m - n_distinct} s-tuple(s) repeated "
                "(each tuple must have exactly one parent and each symbol m distinct rules)"
            )
        arr.setflags(write=False)
        out.append(arr)
    return tuple(out)


@register_format(FORMAT_NAME)
class RHM:
    """A Random Hierarchy Model instance: a random, non-ambiguous context-free grammar of depth L.

    Parameters
    ----------
    v: vocabulary size at every level below the root.
    m: number of synonymous rules (s-tuples) per symbol.
    s: branching factor (patch size); the input has d = s**L tokens.
    L: depth (number of rewriting levels).
    n_classes: number of labels (root symbols); defaults to v.
    rules: "uniform" (Cagnetta et al.: m distinct s-tuples per symbol, all tuples of a level drawn without
        replacement from the v**s possible ones) or "balanced" (paper App. B: first-token marginal uniform,
        each parent gets exactly m patches; needs n_classes == v).
    seed: seed of the rule sampler (an int or a numpy Generator).
    zipf: None (uniform rule probabilities 1/m) or a >= 0: rule k of every symbol (k = 1..m, the stored order)
        has probability proportional to k^-(1+a) (Cagnetta, Kang, Wyart 2025); a = 0 is 1/k, not uniform.
    noise: eps in [0, 1]: each input token is independently replaced, with probability eps, by a token drawn
        uniformly from all v. The label is then not a function of x; ``parse`` still reports -1 only for
        strings that no derivation produces.
    """

    def __init__(self, v, m, s, L, n_classes=None, rules="uniform", seed=0, zipf=None, noise=0.0,
                 zipf_levels=None):
        self.v, self.m, self.s, self.L, self.n_classes, self.rule_sampler = check_params(
            v, m, s, L, n_classes, rules)
        limits.check_grammar(self.v, self.m, self.s, self.L, self.n_classes)  # before any table: refuse what cannot fit
        self.zipf, self.noise = check_variant(zipf, noise)
        self.zipf_levels = check_zipf_levels(zipf_levels, self.zipf, self.L)
        if isinstance(seed, np.random.Generator):
            rng, self.seed = seed, None
        else:
            self.seed = check_int("seed", seed, 0)
            rng = np.random.default_rng(self.seed)
        if self.rule_sampler == "uniform":
            table = _uniform_rules(rng, self.v, self.m, self.s, self.L, self.n_classes)
        else:
            table = _balanced_rules(rng, self.v, self.m, self.s, self.L)
        self.rules = check_rules(table, self.v, self.m, self.s, self.L, self.n_classes)

    @classmethod
    def from_rules(cls, rules, v, n_classes=None, rule_sampler="custom", seed=None, zipf=None,
                   noise=0.0, zipf_levels=None) -> "RHM":
        """Build a grammar from explicit rule tables (validated; see module docstring for shapes)."""
        zipf, noise = check_variant(zipf, noise)
        if not isinstance(rules, (list, tuple)) or not rules:
            raise ValueError("rules must be a non-empty list of (n_sym, m, s) integer arrays")
        shape = np.shape(rules[0])
        if len(shape) != 3:
            raise ValueError(f"rules[0] has shape {shape}, expected (n_classes, m, s)")
        n_c, m, s = shape
        L = len(rules)
        v_, m_, s_, L_, n_c_, _ = check_params(v, m, s, L, n_c if n_classes is None else n_classes)
        limits.check_grammar(v_, m_, s_, L_, n_c_)
        self = cls.__new__(cls)
        self.v, self.m, self.s, self.L, self.n_classes = v_, m_, s_, L_, n_c_
        self.rule_sampler, self.seed = rule_sampler, seed
        self.zipf, self.noise = zipf, noise
        self.zipf_levels = check_zipf_levels(zipf_levels, zipf, L_)
        self.rules = check_rules(rules, v_, m_, s_, L_, n_c_)
        return self

    # ----------------------------------------------------------------------------------------- sizes
    @property
    def d(self) -> int:
        """Input length s**L."""
        return self.s**self.L

    @property
    def vocab_size(self) -> int:
        """Input vocabulary (v; the sparse RHM adds a blank)."""
        return self.v

    @property
    def num_nodes(self) -> int:
        """Internal nodes of the tree (root included), i.e. rule choices per input: (s**L - 1)/(s - 1)."""
        return (self.s**self.L - 1) // (self.s - 1)

    @property
    def num_inputs(self) -> int:
        """Exact number of distinct inputs n_c * m**((s**L - 1)/(s - 1)) (a Python int, may exceed 2**64)."""
        return self.n_classes * self.m**self.num_nodes

    @property
    def token_dtype(self) -> np.dtype:
        """Smallest unsigned dtype that holds a token (and a label)."""
        top = max(self.v, self.n_classes) - 1
        for dt in (np.uint8, np.uint16, np.uint32):
            if top <= np.iinfo(dt).max:
                return np.dtype(dt)
        return np.dtype(np.uint64)

    def symbols(self, level: int) -> int:
        """Number of symbols at `level` (n_classes at the root, v below)."""
        return self.n_classes if level == 0 else self.v

    @property
    def rule_probs(self) -> tuple[np.ndarray, ...]:
        """Rule probabilities, top level first: (n_classes, m), then (v, m) per level; rows sum to 1."""
        cache = self.__dict__.get("_rule_probs")
        if cache is None:
            cache = tuple(np.broadcast_to(self.level_probs(lv), (self.symbols(lv), self.m)) for lv in range(self.L))
            self.__dict__["_rule_probs"] = cache
        return cache

    def level_probs(self, level: int) -> np.ndarray:
        """The rule probabilities (m,) shared by every symbol of `level` (Zipf where it applies, else 1/m)."""
        on = self.zipf is not None and (self.zipf_levels is None or level in self.zipf_levels)
        return zipf_probs(self.m, self.zipf if on else None)

    @property
    def is_plain(self) -> bool:
        """True for the classic RHM: uniform rule probabilities and no noise."""
        return self.zipf is None and self.noise == 0.0

    @property
    def spec(self):
        """Its :class:`rhm.GrammarSpec` (rules 'custom' for explicit rule tables)."""
        cache = self.__dict__.get("_spec")
        if cache is None:
            cache = self.__dict__["_spec"] = spec_of(self)
        return cache

    def params(self) -> dict:
        return dict(v=self.v, m=self.m, s=self.s, L=self.L, n_classes=self.n_classes,
                    rules=self.rule_sampler, seed=self.seed, zipf=self.zipf, noise=self.noise,
                    zipf_levels=self.zipf_levels)

    def __repr__(self) -> str:
        extra = (f", zipf={self.zipf!r}" if self.zipf is not None else "") + \
            (f", zipf_levels={self.zipf_levels!r}" if self.zipf_levels is not None else "") + \
            (f", noise={self.noise!r}" if self.noise else "")
        return (f"RHM(v={self.v}, m={self.m}, s={self.s}, L={self.L}, n_classes={self.n_classes}, "
                f"rules={self.rule_sampler!r}, seed={self.seed}{extra})")

    def __eq__(self, other) -> bool:
        return (isinstance(other, RHM) and (self.v, self.m, self.s, self.L, self.n_classes)
                == (other.v, other.m, other.s, other.L, other.n_classes)
                and (self.zipf, self.noise, self.zipf_levels) == (other.zipf, other.noise, other.zipf_levels)
                and all(np.array_equal(a, b) for a, b in zip(self.rules, other.rules)))

    __hash__ = None  # mutable-looking container semantics; compare with ==

    # ----------------------------------------------------------------------------- sampling / parsing
    # Thin methods so that `g.sample(...)` reads naturally; the work lives in sampling.py / oracle.py.
    def sample(self, n, seed=None, replace=True, return_tree=False, filter_level=0):
        """Draw n inputs and labels; see :func:`rhm.sampling.sample`. filter_level=k >= 1: hierarchical
        filtering at level k (:mod:`rhm.filtering`; Garnier-Brun et al., ICML 2025)."""
        if filter_level:
            return _filtered_sample(self, n, seed, replace, return_tree, filter_level)
        from . import sampling
        return sampling.sample(self, n, seed=seed, replace=replace, return_tree=return_tree)

    def filtered(self, k):
        """The level-k filtered model (:class:`rhm.filtering.FilteredGrammar`): its draws and exact inference."""
        from .filtering import FilteredGrammar
        return FilteredGrammar(self, k)

    def resample_below(self, tree, level, seed=None, return_tree=False):
        """Keep the level-`level` symbols of `tree`, redraw every derivation below; see sampling.py."""
        from . import sampling
        return sampling.resample_below(self, tree, level, seed=seed, return_tree=return_tree)

    def stream(self, batch_size, seed=None, n_batches=None):
        """Iterator over i.i.d. batches (x, y); see :func:`rhm.sampling.stream`."""
        from . import sampling
        return sampling.stream(self, batch_size, seed=seed, n_batches=n_batches)

    def parse(self, x, return_tree=False):
        """Exact bottom-up parse; see :func:`rhm.oracle.parse`."""
        from . import oracle
        return oracle.parse(self, x, return_tree=return_tree)

    # ------------------------------------------------------------------------------------- save/load
    def to_dict(self) -> dict:
        out = {
            "format": FORMAT_NAME, "version": FORMAT_VERSION,
            "v": self.v, "m": self.m, "s": self.s, "L": self.L, "n_classes": self.n_classes,
            "rule_sampler": self.rule_sampler, "seed": self.seed,
            "rules": [r.tolist() for r in self.rules],
        }
        if not self.is_plain:  # version 2: an older reader refuses the file instead of dropping the variant
            out.update(version=2, zipf=self.zipf, noise=self.noise)
            if self.zipf_levels is not None:
                out["zipf_levels"] = list(self.zipf_levels)
        return out

    def save(self, path) -> None:
        """Write the grammar as JSON (atomically: a failed write leaves no partial file)."""
        save_json(self.to_dict(), path)

    @classmethod
    def from_dict(cls, data) -> "RHM":
        """Rebuild a grammar from :meth:`to_dict` output, validating everything; ValueError otherwise."""
        if not isinstance(data, dict):
            raise ValueError(f"grammar JSON must be an object, got {type(data).__name__}")
        if data.get("format") != FORMAT_NAME:
            raise ValueError(f"not an rhm grammar file: format={data.get('format')!r}, expected {FORMAT_NAME!r}")
        if data.get("version") not in FORMAT_VERSIONS or isinstance(data.get("version"), bool):
            raise ValueError(f"unsupported grammar format version {data.get('version')!r}; "
                             f"this rhm reads versions {FORMAT_VERSIONS}")
        zipf, noise = check_variant(data.get("zipf"), data.get("noise", 0.0))
        zipf_levels = data.get("zipf_levels")
        missing = [k for k in ("v", "m", "s", "L", "n_classes", "rules") if k not in data]
        if missing:
            raise ValueError(f"grammar JSON lacks field(s) {missing}")
        sampler = data.get("rule_sampler", "custom")
        if not isinstance(sampler, str) or len(sampler) > 64:
            raise ValueError("grammar JSON field rule_sampler must be a short string")
        seed = data.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"grammar JSON field seed must be an integer or null, got {seed!r}")
        v, m, s, L, n_c, _ = check_params(data["v"], data["m"], data["s"], data["L"], data["n_classes"])
        # Refuse absurd sizes before materialising arrays from untrusted nested lists.
        if (n_c + (L - 1) * v) * m * s > 10**8:
            raise ValueError(f"grammar too large to load: {(n_c + (L - 1) * v) * m * s} rule entries")
        rules = data["rules"]
        if not isinstance(rules, list) or len(rules) != L:
            raise ValueError(f"grammar JSON field rules must be a list of L={L} tables")
        for level, table in enumerate(rules):  # only plain ints may reach numpy (no floats, bools, strings)
            flat = _flatten3(table, f"rules[{level}]")
            if any(isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < v for t in flat):
                raise ValueError(f"rules[{level}] must contain only integer symbols in [0, v={v})")
        g = cls.from_rules([np.asarray(r, dtype=np.int64) for r in rules], v=v, n_classes=n_c,
                           rule_sampler=sampler, seed=seed, zipf=zipf, noise=noise, zipf_levels=zipf_levels)
        if (g.m, g.s) != (m, s):
            raise ValueError(f"rules have (m, s)=({g.m}, {g.s}) but the header says ({m}, {s})")
        if sampler == "balanced":
            first = np.stack([np.bincount(r[..., 0].ravel(), minlength=v) for r in g.rules])
            if not (first == m).all():
                raise ValueError("rule_sampler='balanced' but the first-token counts are not all m")
        return g

    @classmethod
    def load(cls, path) -> "RHM":
        """Read a grammar written by :meth:`save`. Any malformed or hostile file raises ValueError."""
        return load_json(path, cls.from_dict, "grammar")


def _filtered_sample(g, n, seed, replace, return_tree, filter_level):
    """g.sample(..., filter_level=k) of any grammar: the level-k filtered draw through its tree PCFG."""
    from .filtering import check_filter_level, sample_pcfg
    k = check_filter_level(filter_level, g.L)
    if not replace:
        raise ValueError(f"replace=False is not defined for filter_level={k}: filtered inputs are not equally "
                         "likely; sample with replacement")
    return sample_pcfg(g, n, seed, filter_level=k, return_tree=return_tree)


@register_builder("rhm")
def _build(spec) -> RHM:
    return RHM(spec.v, spec.m, spec.s, spec.L, n_classes=spec.n_classes, rules=spec.rules, seed=spec.seed,
               zipf=spec.zipf, noise=spec.noise, zipf_levels=spec.zipf_levels)


def _flatten3(table, name):
    """Flatten a 3-deep nested list, refusing anything that is not lists of lists of lists."""
    if not isinstance(table, list):
        raise ValueError(f"{name} must be a nested list")
    out = []
    for a in table:
        if not isinstance(a, list):
            raise ValueError(f"{name} must be a 3-deep nested list")
        for b in a:
            if not isinstance(b, list):
                raise ValueError(f"{name} must be a 3-deep nested list")
            out.extend(b)
    return out
