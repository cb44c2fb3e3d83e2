"""Sweeps: a grid of runs defined in TOML or Python, expanded into keyed, self-contained run configurations.

A sweep is grammars × learners (× hyperparameter grid) × training sizes × seeds. ``Sweep.expand()`` turns it
into :class:`RunConfig` objects; each has a deterministic ``key`` (SHA-256 of its canonical JSON: grammar,
task, learner with *every* constructor hyperparameter resolved, sizes, seed, extras). The same key always gives
the same result: the grammar, the data draw and the learner are all seeded from the configuration.

Tasks: ``train`` (fit a learner on P distinct inputs, score on a disjoint test set, optionally measure
synonymic sensitivities), ``parse`` (exact counts, label determinism, parse recovery: R1) and ``gaps`` (exact
signal gaps rho^(l): R2). :func:`execute` runs one configuration and returns a JSON-able result; it is what
every executor calls (in a worker process or a Ray task).

TOML schema (every field but ``name`` and the grammar is optional; lists make a grid)::

    name = "cnn-scaling"            # sweep name (rows are tagged with it)
    task = "train"                  # train | parse | gaps
    seeds = [0, 1, 2]               # data + learner seeds (one run per seed)
    test_size = "auto"              # int, or "auto" = min(P_max // 5, 20000); capped at P_max // 2
    imports = ["mypkg.learners"]    # modules imported first (e.g. to register extra learners)

    [[grammars]]                    # one or more grids; values are scalars or lists (cartesian product)
    v = [4, 6, 8]
    m = "v"                         # "v" ties m (or n_classes) to v within each grid point
    n_classes = "v"                 # default: v
    s = 2
    L = 2
    rules = "uniform"               # uniform | balanced
    seed = 0                        # grammar (rules) seed(s)

    [[learners]]                    # task = "train" only
    name = "cnn"
    label = "cnn"                   # optional display name
    params = {lr = 0.1}             # fixed constructor hyperparameters
    grid = {width = [64, 128]}      # hyperparameters to sweep (cartesian product)

    [sizes]                         # training sizes, in `unit`s
    unit = "ncmL"                   # samples | ncmL (multiples of n_c*m^L) | pmax (fractions of P_max)
    values = [0.5, 1, 2]            # explicit list, or:
    logspace = {start = 0.1, stop = 10, num = 9}

    [adaptive]                      # optional: bracket and bisect P* instead of running the whole size grid
    start = 1.0                     # first size, in sizes.unit
    factor = 4.0                    # bracketing step
    rel_tol = 0.3                   # stop when hi/lo <= 1 + rel_tol
    max_steps = 10

    [extras]                        # task-specific options
    sensitivity_levels = [1, 2]     # train: also measure rhm.sensitivity at these levels ("all": 0..L-1)
    sensitivity_n = 512
    parse_n = 20000                 # parse: sample size for the recovery check
    enumerate_max = 200000          # parse: enumerate every input when P_max <= this
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import itertools
import json
import math
import numbers
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

TASKS = ("train", "parse", "gaps", "boolean")
UNITS = ("samples", "ncmL", "pmax")
GRAMMAR_FIELDS = ("v", "m", "s", "L", "n_classes", "rules", "seed")
KEY_LENGTH = 24
AUTO_TEST_CAP = 20000


class SweepError(ValueError):
    """A bad sweep definition; the message names the field (e.g. ``learners[1].name``)."""


# --------------------------------------------------------------------------------------------- helpers
def canonical_json(obj) -> str:
    """Deterministic JSON (sorted keys, no whitespace) used for keys and storage."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default, allow_nan=False)


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)


def _jsonable(value):
    """A JSON-representable version of a hyperparameter value (non-JSON objects become their str)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        f = float(value)
        return f if math.isfinite(f) else str(f)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def nc_m_L(grammar: dict) -> int:
    """n_c * m**L of a grammar dict (the deep sample-complexity scale)."""
    n_c = grammar["n_classes"] if grammar.get("n_classes") is not None else grammar["v"]
    return int(n_c) * int(grammar["m"]) ** int(grammar["L"])


def p_max(grammar: dict) -> int:
    """Number of distinct inputs n_c * m**((s**L - 1)/(s - 1)) of a grammar dict (a Python int)."""
    n_c = grammar["n_classes"] if grammar.get("n_classes") is not None else grammar["v"]
    s, L = int(grammar["s"]), int(grammar["L"])
    return int(n_c) * int(grammar["m"]) ** ((s**L - 1) // (s - 1))


def import_modules(imports) -> None:
    for mod in imports or ():
        importlib.import_module(mod)


# ------------------------------------------------------------------------------------------- sweep parts
@dataclass
class GrammarGrid:
    """A grid of RHM parameters: each field a scalar or a list; m / n_classes may be "v" (tied to v)."""

    v: Any
    m: Any
    L: Any
    s: Any = 2
    n_classes: Any = None
    rules: Any = "uniform"
    seed: Any = 0

    def points(self, where: str) -> list[dict]:
        from ..grammar import check_params

        fields = {f: _as_list(getattr(self, f)) for f in GRAMMAR_FIELDS}
        for f, vals in fields.items():
            if not vals:
                raise SweepError(f"{where}.{f}: empty list")
        out = []
        for combo in itertools.product(*fields.values()):
            g = dict(zip(fields, combo))
            for tied in ("m", "n_classes"):
                if g[tied] == "v":
                    g[tied] = g["v"]
            if g["n_classes"] is None:
                g["n_classes"] = g["v"]
            try:
                v, m, s, L, n_c, rules = check_params(g["v"], g["m"], g["s"], g["L"], g["n_classes"], g["rules"])
            except ValueError as err:
                raise SweepError(f"{where}: {err}") from None
            seed = g["seed"]
            if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
                raise SweepError(f"{where}.seed={seed!r} must be a non-negative integer")
            point = dict(v=v, m=m, s=s, L=L, n_classes=n_c, rules=rules, seed=int(seed))
            if point not in out:
                out.append(point)
        return out


@dataclass
class LearnerSpec:
    """A learner from the registry with fixed hyperparameters (params) and a grid over others (grid)."""

    name: str
    params: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)
    label: str | None = None

    def variants(self, where: str) -> list[tuple[str, dict, dict]]:
        """[(label, explicit params, full resolved params)] for every grid point; validates names."""
        from .. import learners

        try:
            cls = learners.get(self.name)
        except ValueError as err:
            raise SweepError(f"{where}.name: {err}") from None
        defaults = cls.defaults()
        for part in ("params", "grid"):
            for k in getattr(self, part):
                if k not in defaults:
                    raise SweepError(f"{where}.{part}.{k}: learner {self.name!r} has no hyperparameter {k!r}; "
                                     f"it has: {', '.join(sorted(defaults))}")
        for k, vals in self.grid.items():
            if not isinstance(vals, (list, tuple)) or not vals:
                raise SweepError(f"{where}.grid.{k} must be a non-empty list of values, got {vals!r}")
        out = []
        keys = list(self.grid)
        for combo in itertools.product(*(self.grid[k] for k in keys)):
            explicit = {**self.params, **dict(zip(keys, combo))}
            full = {k: _jsonable(explicit.get(k, d)) for k, d in defaults.items()}
            label = self.label or self.name
            if keys:
                label += "[" + ",".join(f"{k}={v}" for k, v in zip(keys, combo)) + "]"
            out.append((label, _jsonable(explicit), full))
        return out


@dataclass
class Sizes:
    """Training sizes: explicit ``values`` or ``logspace=(start, stop, num)``, in units of ``unit``."""

    unit: str = "samples"
    values: list | None = None
    logspace: tuple | None = None

    def check(self, where: str = "sizes") -> None:
        if self.unit not in UNITS:
            raise SweepError(f"{where}.unit={self.unit!r} must be one of {UNITS}")
        if (self.values is None) == (self.logspace is None):
            raise SweepError(f"{where}: give exactly one of values or logspace")
        if self.values is not None:
            vals = _as_list(self.values)
            if not vals or any(isinstance(x, bool) or not isinstance(x, numbers.Real) or not x > 0 for x in vals):
                raise SweepError(f"{where}.values={self.values!r} must be a non-empty list of positive numbers")
        else:
            ls = self.logspace
            if isinstance(ls, dict):
                try:
                    ls = (ls["start"], ls["stop"], ls["num"])
                except KeyError as err:
                    raise SweepError(f"{where}.logspace lacks field {err.args[0]!r} (needs start, stop, num)") from None
                self.logspace = ls
            if (not isinstance(ls, (list, tuple)) or len(ls) != 3 or not all(isinstance(x, numbers.Real) for x in ls)
                    or not (ls[0] > 0 and ls[1] >= ls[0]) or not (isinstance(ls[2], numbers.Integral) and ls[2] >= 1)):
                raise SweepError(f"{where}.logspace={self.logspace!r} must be (start > 0, stop >= start, num >= 1)")

    def unit_size(self, grammar: dict) -> float:
        return {"samples": 1.0, "ncmL": float(nc_m_L(grammar)), "pmax": float(p_max(grammar))}[self.unit]

    def in_units(self) -> list[float]:
        if self.values is not None:
            return [float(x) for x in _as_list(self.values)]
        a, b, n = self.logspace
        return [float(x) for x in np.geomspace(a, b, int(n))]

    def resolve(self, grammar: dict, test_size: int) -> list[int]:
        """Integer sizes for one grammar: rounded, >= 1, capped at P_max - test_size, deduplicated, sorted."""
        cap = p_max(grammar) - test_size
        u = self.unit_size(grammar)
        out = sorted({min(max(1, int(round(x * u))), cap) for x in self.in_units()})
        return [p for p in out if p >= 1]


@dataclass
class Adaptive:
    """Bracket-and-bisect P* (see :class:`rhm.experiments.complexity.AdaptiveSearch`)."""

    start: float = 1.0
    factor: float = 4.0
    rel_tol: float = 0.3
    max_steps: int = 10

    def check(self, where="adaptive"):
        if not (isinstance(self.start, numbers.Real) and self.start > 0):
            raise SweepError(f"{where}.start={self.start!r} must be > 0")
        if not (isinstance(self.factor, numbers.Real) and self.factor > 1):
            raise SweepError(f"{where}.factor={self.factor!r} must be > 1")
        if not (isinstance(self.rel_tol, numbers.Real) and self.rel_tol > 0):
            raise SweepError(f"{where}.rel_tol={self.rel_tol!r} must be > 0")
        if isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int) or self.max_steps < 2:
            raise SweepError(f"{where}.max_steps={self.max_steps!r} must be an integer >= 2")


# ----------------------------------------------------------------------------------------------- runs
@dataclass(frozen=True)
class RunConfig:
    """One run, fully specified. ``key`` hashes everything but ``sweep`` and ``label`` (display only)."""

    task: str
    grammar: dict
    learner: str | None = None
    params: dict = field(default_factory=dict)        # explicit constructor kwargs (what is passed)
    resolved: dict = field(default_factory=dict)      # every hyperparameter with defaults filled (what is hashed)
    train_size: int = 0
    test_size: int = 0
    seed: int = 0
    extras: dict = field(default_factory=dict)
    sweep: str = ""
    label: str = ""

    def identity(self) -> dict:
        return {"task": self.task, "grammar": self.grammar, "learner": self.learner, "hyperparameters": self.resolved,
                "train_size": self.train_size, "test_size": self.test_size, "seed": self.seed, "extras": self.extras}

    @property
    def key(self) -> str:
        return hashlib.sha256(canonical_json(self.identity()).encode()).hexdigest()[:KEY_LENGTH]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})


@dataclass
class Sweep:
    """A sweep definition (the Python twin of the TOML schema in this module's docstring)."""

    name: str
    grammars: list = field(default_factory=list)          # GrammarGrid (or dicts)
    learners: list = field(default_factory=list)          # LearnerSpec (or dicts)
    sizes: Sizes | dict | None = None
    seeds: list = field(default_factory=lambda: [0])
    test_size: int | str = "auto"
    task: str = "train"
    extras: dict = field(default_factory=dict)
    adaptive: Adaptive | dict | None = None
    imports: list = field(default_factory=list)

    # ------------------------------------------------------------------ construction and validation
    @classmethod
    def from_toml(cls, path) -> "Sweep":
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as err:
            raise SweepError(f"cannot read sweep file {str(path)!r}: {err.strerror}") from None
        return cls.from_toml_string(text, source=str(path))

    @classmethod
    def from_toml_string(cls, text: str, source: str = "<string>") -> "Sweep":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise SweepError(f"{source}: invalid TOML: {err}") from None
        try:
            return cls.from_dict(data)
        except SweepError as err:
            raise SweepError(f"{source}: {err}") from None

    @classmethod
    def from_dict(cls, data: dict) -> "Sweep":
        if not isinstance(data, dict):
            raise SweepError("a sweep must be a table")
        known = {f.name for f in dataclasses.fields(cls)} | {"grammar", "learner"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SweepError(f"unknown field(s) {unknown}; known: {sorted(known - {'grammar', 'learner'})}")
        d = dict(data)
        if "name" not in d:
            raise SweepError("name: missing (every sweep needs a name)")
        grammars = d.pop("grammars", [])
        if "grammar" in d:
            grammars = _as_list(d.pop("grammar")) + list(grammars)
        learners_ = d.pop("learners", [])
        if "learner" in d:
            learners_ = _as_list(d.pop("learner")) + list(learners_)
        d["grammars"], d["learners"] = grammars, learners_
        sweep = cls(**d)
        sweep.validate()
        return sweep

    def validate(self) -> "Sweep":
        if not isinstance(self.name, str) or not self.name.strip():
            raise SweepError(f"name={self.name!r} must be a non-empty string")
        if self.task not in TASKS:
            raise SweepError(f"task={self.task!r} must be one of {TASKS}")
        if not isinstance(self.imports, list) or not all(isinstance(m, str) for m in self.imports):
            raise SweepError(f"imports={self.imports!r} must be a list of module names")
        for mod in self.imports:
            try:
                importlib.import_module(mod)
            except ImportError as err:
                raise SweepError(f"imports: cannot import {mod!r}: {err}") from None
        if not self.grammars:
            raise SweepError("grammars: at least one [[grammars]] table is needed")
        grids = []
        for i, g in enumerate(self.grammars):
            if isinstance(g, dict):
                bad = sorted(set(g) - set(GRAMMAR_FIELDS))
                if bad:
                    raise SweepError(f"grammars[{i}]: unknown field(s) {bad}; known: {list(GRAMMAR_FIELDS)}")
                missing = [k for k in ("v", "m", "L") if k not in g]
                if missing:
                    raise SweepError(f"grammars[{i}]: missing field(s) {missing}")
                g = GrammarGrid(**g)
            elif not isinstance(g, GrammarGrid):
                raise SweepError(f"grammars[{i}] must be a table, got {type(g).__name__}")
            grids.append(g)
        self.grammars = grids
        self.grammar_points()  # validates every grid point (names the grid and the broken rule)
        if not isinstance(self.seeds, (list, tuple)) or not self.seeds or any(
                isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0 for s in self.seeds):
            raise SweepError(f"seeds={self.seeds!r} must be a non-empty list of non-negative integers")
        if not (self.test_size == "auto" or (isinstance(self.test_size, int) and not isinstance(self.test_size, bool)
                                             and self.test_size >= 1)):
            raise SweepError(f"test_size={self.test_size!r} must be a positive integer or \"auto\"")
        if not isinstance(self.extras, dict):
            raise SweepError("extras must be a table")
        specs = []
        if self.task == "train":
            if not self.learners:
                raise SweepError("learners: task 'train' needs at least one [[learners]] table")
            for i, spec in enumerate(self.learners):
                if isinstance(spec, str):
                    spec = LearnerSpec(spec)
                elif isinstance(spec, dict):
                    bad = sorted(set(spec) - {"name", "params", "grid", "label"})
                    if bad:
                        raise SweepError(f"learners[{i}]: unknown field(s) {bad}; known: name, params, grid, label")
                    if "name" not in spec:
                        raise SweepError(f"learners[{i}].name: missing")
                    spec = LearnerSpec(**spec)
                if not isinstance(spec, LearnerSpec):
                    raise SweepError(f"learners[{i}] must be a table")
                if not isinstance(spec.name, str):
                    raise SweepError(f"learners[{i}].name={spec.name!r} must be a string")
                for part in ("params", "grid"):
                    if not isinstance(getattr(spec, part), dict):
                        raise SweepError(f"learners[{i}].{part} must be a table")
                spec.variants(f"learners[{i}]")  # validates the name and hyperparameters
                specs.append(spec)
            if self.sizes is None:
                raise SweepError("sizes: task 'train' needs a [sizes] table")
            if isinstance(self.sizes, dict):
                bad = sorted(set(self.sizes) - {"unit", "values", "logspace"})
                if bad:
                    raise SweepError(f"sizes: unknown field(s) {bad}; known: unit, values, logspace")
                self.sizes = Sizes(**self.sizes)
            self.sizes.check()
        self.learners = specs
        if isinstance(self.adaptive, dict):
            bad = sorted(set(self.adaptive) - {"start", "factor", "rel_tol", "max_steps"})
            if bad:
                raise SweepError(f"adaptive: unknown field(s) {bad}; known: start, factor, rel_tol, max_steps")
            self.adaptive = Adaptive(**self.adaptive)
        if self.adaptive is not None:
            if self.task != "train":
                raise SweepError("adaptive: only for task 'train'")
            self.adaptive.check()
        return self

    # ------------------------------------------------------------------------------------ expansion
    def grammar_points(self) -> list[dict]:
        out = []
        for i, grid in enumerate(self.grammars):
            for p in grid.points(f"grammars[{i}]"):
                if p not in out:
                    out.append(p)
        return out

    def resolved_test_size(self, grammar: dict) -> int:
        pm = p_max(grammar)
        if self.test_size == "auto":
            return max(1, min(pm // 5, AUTO_TEST_CAP))
        return max(1, min(int(self.test_size), pm // 2))

    def run_for(self, grammar: dict, variant, train_size: int, seed: int) -> RunConfig:
        """The RunConfig of one (grammar, learner variant, P, seed) point of this sweep."""
        name, label, explicit, full = variant
        explicit, full = dict(explicit), dict(full)
        if "seed" in full and "seed" not in explicit:
            explicit["seed"] = int(seed)
            full["seed"] = int(seed)
        return RunConfig(task="train", grammar=grammar, learner=name, params=explicit, resolved=full,
                         train_size=int(train_size), test_size=self.resolved_test_size(grammar), seed=int(seed),
                         extras=_jsonable(self.extras), sweep=self.name, label=label)

    def variants(self) -> list[tuple[str, str, dict, dict]]:
        """[(learner name, label, explicit params, resolved params)] over every learner and grid point."""
        out = []
        for i, spec in enumerate(self.learners):
            out.extend((spec.name, *var) for var in spec.variants(f"learners[{i}]"))
        labels = [v[1] for v in out]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise SweepError(f"learners: duplicate label(s) {dup}; give each [[learners]] a distinct label")
        return out

    def expand(self) -> list[RunConfig]:
        """Every run of the (non-adaptive) grid, in a deterministic order."""
        if self.task != "train":
            return [RunConfig(task=self.task, grammar=g, seed=int(s), extras=_jsonable(self.extras),
                              sweep=self.name, label=self.task)
                    for g in self.grammar_points() for s in self.seeds]
        if self.adaptive is not None:
            raise SweepError("adaptive sweeps choose their sizes while running: use run_sweep")
        runs = []
        variants = self.variants()
        for g in self.grammar_points():
            test = self.resolved_test_size(g)
            for var in variants:
                for P in self.sizes.resolve(g, test):
                    for s in self.seeds:
                        runs.append(self.run_for(g, var, P, s))
        return runs


# --------------------------------------------------------------------------------------------- execution
def execute(config: dict) -> dict:
    """Run one configuration (a RunConfig dict) and return its result (JSON-able).

    Result: {"test_accuracy", "test_error", "fit_seconds", "wall_seconds", "metrics": {...}, "info": {...}}.
    """
    cfg = RunConfig.from_dict(config)
    t0 = time.perf_counter()
    if cfg.task == "train":
        out = _execute_train(cfg)
    elif cfg.task == "parse":
        out = _execute_parse(cfg)
    elif cfg.task == "gaps":
        out = _execute_gaps(cfg)
    elif cfg.task == "boolean":
        out = _execute_boolean(cfg)
    else:
        raise ValueError(f"task={cfg.task!r} must be one of {TASKS}")
    out["wall_seconds"] = time.perf_counter() - t0
    return _jsonable(out)


def _grammar(cfg: RunConfig):
    from ..grammar import RHM

    g = cfg.grammar
    return RHM(g["v"], g["m"], g["s"], g["L"], n_classes=g["n_classes"], rules=g["rules"], seed=g["seed"])


def _execute_train(cfg: RunConfig) -> dict:
    from .. import learners

    g = _grammar(cfg)
    P, T = cfg.train_size, cfg.test_size
    x, y = g.sample(P + T, seed=cfg.seed, replace=False)
    model = learners.get(cfg.learner)(**cfg.params)
    t0 = time.perf_counter()
    model.fit(x[:P], y[:P], grammar=g)
    fit_seconds = time.perf_counter() - t0
    acc = float(model.score(x[P:], y[P:]))
    metrics = {"chance_error": 1 - 1 / g.n_classes, "nc_m_L": nc_m_L(cfg.grammar)}
    levels = cfg.extras.get("sensitivity_levels")
    if levels == "all":  # every level whose synonyms can be exchanged: 0 (root) .. L-1
        levels = list(range(g.L))
    if levels:
        metrics["sensitivity"] = _sensitivities(model, g, levels, int(cfg.extras.get("sensitivity_n", 512)),
                                                cfg.seed)
    return {"test_accuracy": acc, "test_error": 1 - acc, "fit_seconds": fit_seconds, "metrics": metrics,
            "info": dict(getattr(model, "info_", {}) or {})}


def _sensitivities(model, g, levels, n, seed) -> dict:
    """{level: per-layer synonymic sensitivities} from rhm.sensitivity (absent: recorded as missing)."""
    import rhm

    fn = getattr(rhm, "sensitivity", None)
    if fn is None:
        return {"missing": "rhm.sensitivity is not available in this version"}
    out = {}
    for lv in levels:
        try:
            res = fn(model, g, int(lv), n, seed)
        except ValueError as err:  # e.g. a learner without hidden layers (kmeans, kernel)
            return {"missing": str(err)}
        if hasattr(res, "tolist"):
            res = res.tolist()
        elif isinstance(res, dict):
            res = {str(k): (v.tolist() if hasattr(v, "tolist") else v) for k, v in res.items()}
        elif isinstance(res, (list, tuple)):
            res = [float(r) for r in res]
        out[str(lv)] = res
    return out


def _execute_parse(cfg: RunConfig) -> dict:
    """R1: exact input count, label determinism and parse recovery."""
    g = _grammar(cfg)
    total = g.num_inputs
    n = int(cfg.extras.get("parse_n", 20000))
    enum_max = int(cfg.extras.get("enumerate_max", 200000))
    metrics = {"num_inputs_formula": str(total), "num_inputs_float": float(total), "d": g.d,
               "v_pow_d": float(g.v) ** g.d}
    if total <= enum_max:
        x, y = g.sample(total, seed=cfg.seed, replace=False)
        distinct = len(np.unique(x, axis=0))
        metrics["enumerated_distinct"] = int(distinct)
        metrics["count_matches"] = bool(distinct == total)
        # every valid string: an i.i.d. uniform random string is valid with probability P_max / v^d
        rng = np.random.default_rng(cfg.seed)
        rnd = rng.integers(0, g.v, size=(min(n, 50000), g.d))
        metrics["random_valid_fraction"] = float((g.parse(rnd) >= 0).mean())
        metrics["random_valid_expected"] = float(total) / float(g.v) ** g.d
    else:
        x, y = g.sample(n, seed=cfg.seed, replace=False)
        metrics["enumerated_distinct"] = None
        metrics["count_matches"] = None
    recovered = g.parse(x) == y
    metrics["parse_n"] = int(len(x))
    metrics["parse_recovery"] = float(recovered.mean())
    # label determinism: an i.i.d. sample (with repeats) never shows one input with two labels
    xi, yi = g.sample(n, seed=cfg.seed + 1)
    uniq, inv = np.unique(xi, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    lab_min = np.full(len(uniq), np.iinfo(np.int64).max)
    lab_max = np.full(len(uniq), -1)
    np.minimum.at(lab_min, inv, yi.astype(np.int64))
    np.maximum.at(lab_max, inv, yi.astype(np.int64))
    metrics["iid_n"] = int(n)
    metrics["iid_distinct"] = int(len(uniq))
    metrics["conflicting_labels"] = int((lab_min != lab_max).sum())
    return {"test_accuracy": None, "test_error": None, "fit_seconds": None, "metrics": metrics, "info": {}}


def _execute_gaps(cfg: RunConfig) -> dict:
    """R2: exact signal gaps rho^(l) (oracle) against m^(-l/2)."""
    from .. import oracle

    g = _grammar(cfg)
    gaps = oracle.signal_gaps(g)
    rho = {str(k): (float(v) if math.isfinite(v) else None) for k, v in gaps.rho.items()}
    ref = {str(k): g.m ** (-k / 2) for k in gaps.rho}
    metrics = {"rho": rho, "m_pow_minus_l_half": ref,
               "kappa": float(gaps.kappa) if math.isfinite(gaps.kappa) else None,
               "K_rho": float(gaps.K_rho(g.m)) if math.isfinite(gaps.K_rho(g.m)) else None}
    return {"test_accuracy": None, "test_error": None, "fit_seconds": None, "metrics": metrics, "info": {}}


def _execute_boolean(cfg: RunConfig) -> dict:
    """R8: samples a learner needs on a deep quadratic boolean function (rhm.boolean.samples_needed).

    extras: {"learner": "layerwise" | "shallow" | "mlp", "d": int, "levels": int, "threshold": float}."""
    from .. import boolean

    e = cfg.extras
    res = boolean.samples_needed(e["learner"], int(e["d"]), levels=int(e.get("levels", 2)),
                                 threshold=float(e.get("threshold", 1e-3)), seed=cfg.seed,
                                 n_max=int(e.get("n_max", 50_000)), test_size=int(e.get("test_size", 2000)))
    return {"test_accuracy": None, "test_error": None, "fit_seconds": res.get("seconds"), "metrics": res,
            "info": {}}
