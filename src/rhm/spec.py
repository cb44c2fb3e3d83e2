"""One description of a grammar: :class:`GrammarSpec`, and the :class:`Grammar` protocol every grammar object follows.

A ``GrammarSpec`` is what the command line, sweep grids, run configurations, the results store, analysis and
figures pass around instead of loose dicts or attribute guesses; ``spec.build()`` makes the grammar object, and
every grammar object gives its spec back as ``g.spec``.

Adding a field: declare it below with its default, validate it in ``__post_init__`` and use it where it acts
(the grammar class that reads it, a CLI option that sets it). Nothing else changes: ``to_dict``, ``key``,
``label``, the sweep grids' TOML fields, the results store's columns (added to old stores on opening) and the
P* / figure grouping all follow the field list. A field left at its default is left out of ``to_dict`` and of
``key``, so the keys of runs stored before the field existed stay valid.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import numbers
import sys
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .validation import check_float, check_int

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

RULE_SAMPLERS = ("uniform", "balanced")
#: the fields every spec dict carries, whatever their value (the run keys of the plain RHM hash exactly these)
BASE_FIELDS = ("v", "m", "s", "L", "n_classes", "rules", "seed")
#: ``rules`` of a grammar built from explicit rule tables (RHM.from_rules, a hand-written file): describable,
#: not rebuildable
CUSTOM_RULES = "custom"
#: ``rules`` of the soft grammar's overlapping (ambiguous) variant: each symbol draws its m tuples independently
#: of the others, so a tuple may have several parents (m up to v**s; beta must be set)
OVERLAP_RULES = "overlap"


def check_params(v, m, s, L, n_classes=None, rules="uniform") -> tuple[int, int, int, int, int, str]:
    """Validate RHM parameters; return them as ints (n_classes defaulting to v) and the sampler name."""
    v = check_int("v", v, 2)
    m = check_int("m", m, 1)
    s = check_int("s", s, 2)
    L = check_int("L", L, 1)
    n_classes = v if n_classes is None else check_int("n_classes", n_classes, 2)
    if rules not in RULE_SAMPLERS:
        raise ValueError(f"rules={rules!r} is not a rule sampler; choose one of {RULE_SAMPLERS}")
    if L >= 2 and m * v > v**s:
        raise ValueError(
            f"m={m} exceeds v**(s-1)={v ** (s - 1)}: m*v={m * v} > v**s={v**s}, "
            "not enough distinct s-tuples for unambiguous rules"
        )
    if m * n_classes > v**s:
        raise ValueError(
            f"m*n_classes={m * n_classes} exceeds v**s={v**s}: "
            "not enough distinct s-tuples for unambiguous top-level rules"
        )
    if rules == "balanced":
        if n_classes != v:
            raise ValueError(
                f"rules='balanced' requires n_classes == v (paper App. B), got n_classes={n_classes}, v={v}"
            )
        if m > v ** (s - 1):
            raise ValueError(f"m={m} exceeds v**(s-1)={v ** (s - 1)}, required by rules='balanced'")
    return v, m, s, L, n_classes, rules


def check_variant(zipf=None, noise=0.0) -> tuple[float | None, float]:
    """Validate the variant parameters: zipf None or a finite a >= 0, noise a probability in [0, 1]."""
    if zipf is not None:
        zipf = check_float("zipf", zipf, 0.0)
    noise = check_float("noise", noise, 0.0)
    if noise > 1.0:
        raise ValueError(f"noise={noise!r} must be a probability in [0, 1]")
    return zipf, noise


def check_zipf_levels(levels, zipf, L: int):
    """None (Zipf at every level) or a non-empty set of levels in [0, L) as a sorted tuple; needs zipf."""
    if levels is None:
        return None
    if zipf is None:
        raise ValueError(f"zipf_levels={levels!r} needs zipf=a (the levels to which the Zipf law applies)")
    if isinstance(levels, (int, np.integer)) and not isinstance(levels, bool):
        levels = (levels,)
    if not isinstance(levels, (list, tuple)) or not levels:
        raise ValueError(f"zipf_levels={levels!r} must be None or a non-empty list of levels in [0, L={L})")
    out = tuple(sorted({check_int("zipf_levels", lv, 0, L - 1) for lv in levels}))
    return None if out == tuple(range(L)) else out


def _check_p2(p2) -> float:
    p2 = check_float("p2", p2, 0.0)
    if p2 > 1.0:
        raise ValueError(f"p2={p2!r} must be a probability in [0, 1] (the probability that a node is binary)")
    return p2


def check_varying(v, m2, m3, p2, L, n_classes):
    """Validate the parameters of the varying-tree RHM (:class:`rhm.VaryingRHM`): ValueError naming the parameter
    and the rule; return them normalised."""
    v = check_int("v", v, 2)
    L = check_int("L", L, 1)
    n_c = v if n_classes is None else check_int("n_classes", n_classes, 2)
    p2 = _check_p2(p2)
    m2 = check_int("m2", m2, 1)
    m3 = check_int("m3", m3, 1)
    n_par = max(v, n_c) if L >= 2 else n_c
    if n_par * m2 > v**2:
        raise ValueError(f"m2={m2} is too large: {n_par} parents x m2 = {n_par * m2} > v**2 = {v**2} distinct pairs "
                         "(each binary right-hand side has one parent)")
    if n_par * m3 > v**3:
        raise ValueError(f"m3={m3} is too large: {n_par} parents x m3 = {n_par * m3} > v**3 = {v**3} distinct "
                         "triples (each ternary right-hand side has one parent)")
    return v, m2, m3, p2, L, n_c


#: kind -> the function that builds a grammar of that kind from its spec; each grammar module registers its own
#: (rhm.grammar: "rhm", rhm.sparse: "sparse"), so this module imports none of them
_BUILDERS: dict = {}


def register_builder(kind: str):
    """Decorator: ``fn(spec) -> grammar`` builds the grammars of `kind` (see :meth:`GrammarSpec.kind`)."""
    def deco(fn):
        _BUILDERS[kind] = fn
        return fn
    return deco


@dataclass(frozen=True, kw_only=True)
class GrammarSpec:
    """A frozen, validated description of one grammar (keyword arguments only).

    v, m, s, L, n_classes (None: v), rules ("uniform" | "balanced"; "overlap": the soft grammar's ambiguous
    variant), seed: the RHM (:class:`rhm.RHM`);
    zipf, zipf_levels, noise: its variants (docs/variants.md); s0 >= 1: the sparse RHM (:class:`rhm.SparseRHM`);
    beta >= 0: the soft grammar (:class:`rhm.SoftGrammar`, inverse temperature of its rule probabilities);
    filter_level k >= 1: hierarchical filtering at level k (``build()`` returns ``g.filtered(k)``);
    m3 >= 1: the varying-tree RHM (:class:`rhm.VaryingRHM`; m is its m2, p2 its binary probability, default 1/2).
    Every bad value raises ValueError naming the field and the rule (the grammar classes' own checks).
    """

    v: int
    m: int
    s: int = 2
    L: int
    n_classes: int | None = None
    rules: str = "uniform"
    seed: int | None = 0
    zipf: float | None = None
    zipf_levels: tuple | None = None
    noise: float = 0.0
    s0: int = 0
    beta: float | None = None
    filter_level: int = 0
    m3: int = 0
    p2: float | None = None

    def __post_init__(self):
        custom = self.rules == CUSTOM_RULES
        if self.rules == OVERLAP_RULES:  # ambiguous rules: only the tuples' range bounds m
            if self.beta is None:
                raise ValueError("rules='overlap' (tuples under several parents) is the soft grammar's variant: "
                                 "set beta")
            v, _, s, L, n_c, _ = check_params(self.v, 1, self.s, self.L, self.n_classes)
            m = check_int("m", self.m, 1, v**s)
            rules = OVERLAP_RULES
        else:
            v, m, s, L, n_c, rules = check_params(self.v, self.m, self.s, self.L, self.n_classes,
                                                  "uniform" if custom else self.rules)
        zipf, noise = check_variant(self.zipf, self.noise)
        levels = check_zipf_levels(list(self.zipf_levels) if isinstance(self.zipf_levels, (tuple, np.ndarray))
                                   else self.zipf_levels, zipf, L)
        s0 = check_int("s0", self.s0, 0)
        if s0 and levels is not None:
            raise ValueError(f"zipf_levels={list(levels)} is not available for the sparse RHM (s0={s0} >= 1): "
                             "its Zipf law applies at every level")
        seed = check_int("seed", self.seed, 0, none_ok=custom)
        beta = None if self.beta is None else check_float("beta", self.beta, 0.0)
        if beta is not None and (zipf is not None or s0 or rules == "balanced"):
            raise ValueError(f"beta={beta} (the soft grammar) cannot be combined with zipf, s0 or rules='balanced': "
                             "its rule probabilities are the softmax of Gaussian scores")
        filter_level = check_int("filter_level", self.filter_level, 0, L)
        m3 = check_int("m3", self.m3, 0)
        p2 = None if self.p2 is None else check_float("p2", self.p2, 0.0)
        if p2 is not None and not m3:
            raise ValueError(f"p2={p2} needs m3 >= 1 (p2 is the binary probability of the varying-tree RHM)")
        if m3:  # p2 always written for the varying grammar (default 1/2), so one grammar has one key
            p2 = 0.5 if p2 is None else p2
            check_varying(v, m, m3, p2, L, n_c)
            if s != 2 or zipf is not None or noise or s0 or beta is not None or filter_level or rules != "uniform":
                raise ValueError(f"m3={m3} (the varying-tree RHM) takes v, m (= m2), m3, p2, L, n_classes, seed "
                                 "only: s must be 2 and zipf, noise, s0, beta, filter_level, rules left at their "
                                 "defaults")
        for name, val in dict(v=v, m=m, s=s, L=L, n_classes=n_c, rules=CUSTOM_RULES if custom else rules,
                              seed=seed, zipf=zipf, zipf_levels=levels, noise=noise, s0=s0, beta=beta,
                              filter_level=filter_level, m3=m3, p2=p2).items():
            object.__setattr__(self, name, val)

    # ------------------------------------------------------------------------------------ conversions
    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def defaults(cls) -> dict:
        """{field: default} of the optional fields."""
        return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}

    def to_dict(self) -> dict:
        """The canonical dict: the base fields always, every other field only where it is not its default
        (zipf_levels as a list); the run configurations and their keys are built from it."""
        defaults = self.defaults()
        out = {}
        for name in self.field_names():
            val = getattr(self, name)
            if name in BASE_FIELDS or val != defaults[name]:
                out[name] = list(val) if isinstance(val, tuple) else val
        return out

    @classmethod
    def from_dict(cls, data: dict, where: str = "grammar") -> "GrammarSpec":
        """A spec from a dict of fields (``to_dict`` output, a store row's config grammar, ``RHM.params()``);
        None stands for a field's default. Unknown fields raise ValueError naming them."""
        if isinstance(data, GrammarSpec):
            return data
        if not isinstance(data, dict):
            raise ValueError(f"{where} must be a table of grammar fields, got {type(data).__name__}")
        known = cls.field_names()
        bad = sorted(set(data) - set(known))
        if bad:
            raise ValueError(f"{where}: unknown field(s) {bad}; known: {list(known)}")
        missing = [k for k in ("v", "m", "L") if data.get(k) is None]
        if missing:
            raise ValueError(f"{where}: missing field(s) {missing}")
        defaults = cls.defaults()
        return cls(**{k: (defaults[k] if val is None and k in defaults and k != "seed" else val)
                      for k, val in data.items()})

    def replace(self, **changes) -> "GrammarSpec":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_toml(self) -> str:
        """``field = value`` lines of ``to_dict`` (TOML has no null: a default is simply absent)."""
        def val(x):
            if isinstance(x, str):
                return json.dumps(x)
            if isinstance(x, list):
                return "[" + ", ".join(str(int(i)) for i in x) + "]"
            return repr(x)
        return "".join(f"{k} = {val(x)}\n" for k, x in self.to_dict().items() if x is not None)

    @classmethod
    def from_toml(cls, text: str) -> "GrammarSpec":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"grammar spec: invalid TOML: {err}") from None
        return cls.from_dict(data)

    # ----------------------------------------------------------------------------------- derived values
    @functools.cached_property  # a frozen spec's key never changes (cached_property writes __dict__ directly)
    def key(self) -> str:
        """A short stable hash of ``to_dict`` (defaults left out): equal specs, equal keys, across versions."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        """A short name for tables and figures: "v=8 m=4 s=2 L=3 n_c=8", then the non-default fields."""
        out = f"v={self.v} m={self.m} s={self.s} L={self.L} n_c={self.n_classes}"
        out += "" if self.rules == "uniform" else f" {self.rules}"
        out += "" if self.seed == 0 else f" seed={self.seed}"
        extra = self.to_dict()
        for name in self.field_names():
            if name not in BASE_FIELDS and name in extra:
                val = extra[name]
                out += f" {name}=" + (",".join(map(str, val)) if isinstance(val, list) else f"{val:g}"
                                      if isinstance(val, float) else str(val))
        return out

    def sort_key(self) -> tuple:
        """An ordering of specs (tables list grammars by v, m, s, L, n_c, rules, seed, then the rest)."""
        return tuple(getattr(self, k) for k in BASE_FIELDS[:-1]) + (self.seed if self.seed is not None else -1,
                                                                   json.dumps(self.to_dict(), sort_keys=True))

    @property
    def is_plain(self) -> bool:
        """True when every input of the support is equally likely (no Zipf weights, no noise): the distinct-input
        (P*) protocol and exact input counts apply. The sparse RHM (s0) is plain in this sense; the soft grammar
        (beta set, even 0) and filtered models are not (they are sampled i.i.d.)."""
        return self.zipf is None and self.noise == 0.0 and self.beta is None and not self.filter_level \
            and not self.m3

    @property
    def is_classic(self) -> bool:
        """True for the RHM of the base fields alone (every other field at its default)."""
        return set(self.to_dict()) == set(BASE_FIELDS)

    @property
    def num_nodes(self) -> int:
        """Rule choices per input: (s**L - 1)/(s - 1)."""
        return (self.s**self.L - 1) // (self.s - 1)

    @property
    def num_inputs(self) -> int:
        """Exact number of distinct inputs (a Python int): n_c m^((s^L-1)/(s-1)), times (s0+1)^(s (s^L-1)/(s-1))
        for the sparse RHM (one drawn position per informative node below the root). A filtered model
        (filter_level >= 1) has more, since its level-k symbols are drawn independently: its count comes from
        the built grammar's support (built once per spec). The varying-tree RHM (m3 >= 1) and the ambiguous soft
        grammar (rules="overlap") count derivations instead, an upper bound on distinct strings (two derivations
        may give one string): for the varying one n_c D_0, D_L = 1, D_l = m2 D_{l+1}^2 + m3 D_{l+1}^3."""
        if self.filter_level:
            return _filtered_num_inputs(self)
        if self.m3:
            D = 1
            for _ in range(self.L):
                D = self.m * D**2 + self.m3 * D**3
            return self.n_classes * D
        return self.n_classes * self.m**self.num_nodes * (self.s0 + 1) ** (self.s * self.num_nodes)

    @property
    def nc_m_L(self) -> int:
        """n_c * m**L, the deep learners' sample-complexity scale."""
        return self.n_classes * self.m**self.L

    @property
    def d(self) -> int:
        """Input length: s**L, (s(s0+1))**L for the sparse RHM, the padded width 3**L for the varying RHM."""
        if self.m3:
            return 3**self.L
        return (self.s * (self.s0 + 1)) ** self.L

    # ------------------------------------------------------------------------------------------- build
    def build(self):
        """The grammar object: a :class:`rhm.SparseRHM` when s0 >= 1, else a :class:`rhm.RHM`."""
        if self.rules == CUSTOM_RULES:
            raise ValueError("rules='custom' describes explicit rule tables: load the grammar file instead of "
                             "building it from its spec")
        g = _BUILDERS[self.kind](self.replace(filter_level=0) if self.filter_level else self)
        return g.filtered(self.filter_level) if self.filter_level else g

    @property
    def kind(self) -> str:
        """Which grammar class builds this spec: "sparse" (s0 >= 1), "soft" (beta set), "varying" (m3 >= 1) or
        "rhm"."""
        return "sparse" if self.s0 else "soft" if self.beta is not None else "varying" if self.m3 else "rhm"


@functools.lru_cache(maxsize=256)
def _filtered_num_inputs(spec: GrammarSpec) -> int:
    return spec.build().num_inputs


def spec_columns() -> list[tuple[str, str, Any]]:
    """[(field, SQL type, default)] of the fields beyond the base ones, for the results store's columns (the base
    fields have their own, older columns): INTEGER / REAL by the annotation, TEXT (a JSON list) otherwise; the
    default is None where the field's default is None or a tuple."""
    out = []
    for f in dataclasses.fields(GrammarSpec):
        if f.name in BASE_FIELDS:
            continue
        kind = str(f.type)
        sql = "REAL" if kind.startswith("float") else "INTEGER" if kind.startswith("int") else "TEXT"
        out.append((f.name, sql, f.default if isinstance(f.default, (int, float, str)) else None))
    return out


def spec_of(g, s0: int = 0) -> GrammarSpec:
    """The spec of a grammar object's parameters (what ``g.spec`` returns; rules 'custom' for explicit tables
    or a grammar seeded from a Generator)."""
    seed = g.seed
    rules = g.rule_sampler if g.rule_sampler in RULE_SAMPLERS and isinstance(seed, numbers.Integral) \
        else CUSTOM_RULES
    return GrammarSpec(v=g.v, m=g.m, s=g.s, L=g.L, n_classes=g.n_classes, rules=rules,
                       seed=seed if isinstance(seed, numbers.Integral) else None, zipf=g.zipf,
                       zipf_levels=g.zipf_levels, noise=g.noise, s0=s0)


@runtime_checkable
class Grammar(Protocol):
    """What any grammar gives samplers, inference and learners (rhm.RHM and rhm.SparseRHM follow it).

    - sizes: ``v`` (symbols per level below the root), ``m``, ``s``, ``L``, ``n_classes``, ``d`` (input
      length), ``vocab_size`` (input tokens: v, or v + 1 with the sparse blank), ``num_inputs`` (exact int),
      ``token_dtype``, ``symbols(level)``;
    - the tables inference needs: ``rules`` (top level first) and ``rule_probs``;
    - draws: ``sample(n, seed, replace, return_tree)``, ``resample_below(tree, level, seed)``, ``stream``;
      the oracle: ``parse(x)``;
    - ``spec``: its :class:`GrammarSpec`, the one place to ask what kind of grammar it is (``spec.zipf``,
      ``spec.noise``, ``spec.s0``, ``spec.is_plain``) instead of probing attributes;
    - ``to_dict`` / ``save``: JSON.
    """

    v: int
    m: int
    s: int
    L: int
    n_classes: int

    @property
    def d(self) -> int: ...

    @property
    def vocab_size(self) -> int: ...

    @property
    def num_inputs(self) -> int: ...

    @property
    def spec(self) -> GrammarSpec: ...

    @property
    def rules(self) -> Any: ...

    def symbols(self, level: int) -> int: ...

    def sample(self, n, seed=None, replace=True, return_tree=False): ...

    def resample_below(self, tree, level, seed=None, return_tree=False): ...

    def parse(self, x, return_tree=False): ...

    def to_dict(self) -> dict: ...
