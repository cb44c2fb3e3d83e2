"""Sweeps: a grid of runs defined in TOML or Python, expanded into keyed, self-contained run configurations.

A sweep is grammars × learners (× hyperparameter grid) × training sizes × seeds. ``Sweep.expand()`` turns it
into :class:`RunConfig` objects; each has a deterministic ``key`` (SHA-256 of its canonical JSON: grammar,
task, learner with *every* constructor hyperparameter resolved, sizes, seed, extras). The same key always gives
the same result: the grammar, the data draw and the learner are all seeded from the configuration.

Tasks (run by :mod:`rhm.experiments.tasks`): ``train``, ``parse`` (R1), ``gaps`` (R2), ``boolean`` (R8). The run
configuration itself lives in :mod:`rhm.experiments.config`.

TOML schema (every field but ``name`` and the grammar is optional; lists make a grid)::

    name = "cnn-scaling"            # sweep name (rows are tagged with it)
    task = "train"                  # train | parse | gaps
    seeds = [0, 1, 2]               # data + learner seeds (one run per seed)
    test_size = "auto"              # int, or "auto" = min(P_max // 5, 20000); capped at P_max // 2 for
                                    # distinct test inputs (not for online runs or i.i.d.-tested grammars)
    sampling = "distinct"           # distinct (P distinct inputs, the P* protocol) | iid (P i.i.d. draws)
    objective = "classify"          # train: classify | next-token | next-token-all | masked (rhm.lm_tasks);
                                    # extras.mask_rate sets the masked task's rate (default 0.15),
                                    # extras.train_mask_rate the training masks' (default: mask_rate);
                                    # extras.mask_draws = K shows each streamed string with K masks;
                                    # extras.online = true trains on a stream of P fresh samples (fit_stream)
    imports = ["mypkg.learners"]    # modules imported first (e.g. to register extra learners)

    [[grammars]]                    # one or more grids; values are scalars or lists (cartesian product)
    v = [4, 6, 8]
    m = "v"                         # "v" ties m (or n_classes) to v within each grid point
    n_classes = "v"                 # default: v
    s = 2
    L = 2
    rules = "uniform"               # uniform | balanced
    seed = 0                        # grammar (rules) seed(s)
    zipf = 1.0                      # variants (docs/variants.md), all optional: Zipf exponent a (default none),
    zipf_levels = [0]               #   the levels it applies to (one list, not a grid; default all),
    noise = 0.1                     #   token noise eps (default 0), s0 = 1 for the sparse RHM (default 0 = RHM).
    s0 = 0                          #   Zipf / noise need sampling = "iid" (test set: i.i.d. draws).

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
import importlib
import itertools
import numbers
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import learners, limits
from ..lm_tasks import TASKS as LM_TASKS
from ..lm_tasks import check_mask_rate, unsupported
from ..spec import GrammarSpec
from .config import DEFAULT_OBJECTIVE, DEFAULT_SAMPLING, SAMPLING, TASKS, RunConfig
from .config import jsonable as _jsonable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

UNITS = ("samples", "ncmL", "pmax")
AUTO_TEST_CAP = 20000
#: the size cap where sizes have no upper bound (i.i.d. or streamed training sets)
NO_CAP = 10**12


class SweepError(ValueError):
    """A bad sweep definition; the message names the field (e.g. ``learners[1].name``)."""


# --------------------------------------------------------------------------------------------- helpers
def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def import_modules(imports) -> None:
    for mod in imports or ():
        importlib.import_module(mod)


# ------------------------------------------------------------------------------------------- sweep parts
class GrammarGrid:
    """A grid of grammar specs: each :class:`rhm.GrammarSpec` field a scalar or a list (cartesian product), except
    zipf_levels (one set of levels, not a grid); m / n_classes may be "v" (tied to v). Every grid point is
    validated by building its spec, so the fields and their rules are the spec's own."""

    def __init__(self, **fields):
        known = GrammarSpec.field_names()
        bad = sorted(set(fields) - set(known))
        if bad:
            raise SweepError(f"unknown grammar field(s) {bad}; known: {list(known)}")
        missing = [k for k in ("v", "m", "L") if k not in fields]
        if missing:
            raise SweepError(f"missing grammar field(s) {missing}")
        self.fields = fields

    def __getattr__(self, name):
        fields = self.__dict__.get("fields", {})
        if name in GrammarSpec.field_names():
            return fields.get(name, GrammarSpec.defaults().get(name))
        raise AttributeError(name)

    def __repr__(self) -> str:
        return "GrammarGrid(" + ", ".join(f"{k}={v!r}" for k, v in self.fields.items()) + ")"

    def points(self, where: str) -> list[GrammarSpec]:
        fields = {f: ([val] if f == "zipf_levels" else _as_list(val)) for f, val in self.fields.items()}
        for f, vals in fields.items():
            if not vals:
                raise SweepError(f"{where}.{f}: empty list")
        out = []
        for combo in itertools.product(*fields.values()):
            g = dict(zip(fields, combo))
            for tied in ("m", "n_classes"):
                if g.get(tied) == "v":
                    g[tied] = g["v"]
            try:
                point = GrammarSpec(**g)
            except (ValueError, TypeError) as err:
                raise SweepError(f"{where}: {err}") from None
            try:  # refuse a point that cannot run here (memory, or an exact P_max too large to compute)
                limits.check_sweep_grammar(point.to_dict())
            except ValueError as err:
                raise SweepError(f"{where}: {err}") from None
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
        defaults, settable = cls.defaults(), cls.settable()
        for part in ("params", "grid"):
            for k in getattr(self, part):
                if k not in settable:
                    raise SweepError(f"{where}.{part}.{k}: learner {self.name!r} has no hyperparameter {k!r}; "
                                     f"it has: {', '.join(sorted(settable))}")
        for k, vals in self.grid.items():
            if not isinstance(vals, (list, tuple)) or not vals:
                raise SweepError(f"{where}.grid.{k} must be a non-empty list of values, got {vals!r}")
        out = []
        keys = list(self.grid)
        for combo in itertools.product(*(self.grid[k] for k in keys)):
            explicit = {**self.params, **dict(zip(keys, combo))}
            full = {k: _jsonable(explicit.get(k, d)) for k, d in defaults.items()}
            # a fit option given by name (remask, ...) is recorded too; left out when not given, so that the
            # resolved params (and the run keys) of every existing sweep stay as they were
            full.update({k: _jsonable(v) for k, v in explicit.items() if k not in defaults})
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

    def unit_size(self, grammar) -> float:
        spec = GrammarSpec.from_dict(grammar)
        return {"samples": 1.0, "ncmL": float(spec.nc_m_L), "pmax": float(spec.num_inputs)}[self.unit]

    def in_units(self) -> list[float]:
        if self.values is not None:
            return [float(x) for x in _as_list(self.values)]
        a, b, n = self.logspace
        return [float(x) for x in np.geomspace(a, b, int(n))]

    def resolve(self, grammar, cap: int = NO_CAP) -> list[int]:
        """Integer sizes for one grammar: rounded, >= 1, at most `cap` (:meth:`Sweep.size_cap`), deduplicated,
        sorted."""
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
    sampling: str = DEFAULT_SAMPLING
    objective: str = DEFAULT_OBJECTIVE

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
                try:
                    g = GrammarGrid(**g)
                except SweepError as err:
                    raise SweepError(f"grammars[{i}]: {err}") from None
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
        if self.objective not in LM_TASKS:
            raise SweepError(f"objective={self.objective!r} must be one of {LM_TASKS}")
        if self.objective != DEFAULT_OBJECTIVE and self.task != "train":
            raise SweepError(f"objective={self.objective!r}: only for task 'train'")
        if self.sampling not in SAMPLING:
            raise SweepError(f"sampling={self.sampling!r} must be one of {SAMPLING}")
        if self.task == "train" and self.sampling == DEFAULT_SAMPLING and any(
                not g.is_plain for g in self.grammar_points()):
            raise SweepError("sampling='distinct' draws distinct inputs uniformly, which is not the distribution "
                             "of a Zipf or noisy grammar: set sampling = \"iid\" for these grammars")
        if self.task != "train" and not all(g.is_classic for g in self.grammar_points()):
            raise SweepError(f"task={self.task!r} runs on the plain RHM only; the other grammar fields (zipf, "
                             "zipf_levels, noise, s0, ...) are for task 'train'")
        if not isinstance(self.extras, dict):
            raise SweepError("extras must be a table")
        online = self.extras.get("online", False)
        if not isinstance(online, bool) or (online and self.task != "train"):
            raise SweepError(f"extras.online={online!r} must be true or false (true: task 'train' only)")
        for key in ("mask_rate", "train_mask_rate"):  # checked here, not when the first run fails
            if key in self.extras:
                if self.objective != "masked":
                    raise SweepError(f"extras.{key}: only for objective 'masked', not {self.objective!r}")
                try:
                    check_mask_rate(self.extras[key], f"extras.{key}")
                except ValueError as err:
                    raise SweepError(str(err)) from None
        if "mask_draws" in self.extras:
            k = self.extras["mask_draws"]
            if not (isinstance(k, int) and not isinstance(k, bool) and k >= 1):
                raise SweepError(f"extras.mask_draws={k!r} must be an integer >= 1")
            if k > 1 and (self.objective != "masked" or not online):
                raise SweepError(f"extras.mask_draws={k}: only for objective 'masked' with extras.online = true "
                                 "(an offline fit re-draws each string's mask every epoch)")
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
                tasks = learners.get(spec.name).tasks
                if self.objective not in tasks:  # refused before any run starts
                    raise SweepError(f"learners[{i}]: {unsupported(spec.name, self.objective, tasks)}")
                if online:
                    try:
                        learners.check_online(spec.name)
                    except ValueError as err:
                        raise SweepError(f"learners[{i}]: {err}") from None
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
    def grammar_points(self) -> list[GrammarSpec]:
        out = []
        for i, grid in enumerate(self.grammars):
            for p in grid.points(f"grammars[{i}]"):
                if p not in out:
                    out.append(p)
        return out

    def resolved_test_size(self, grammar) -> int:
        spec = GrammarSpec.from_dict(grammar)
        pm = spec.num_inputs
        if self.test_size == "auto":
            return max(1, min(pm // 5, AUTO_TEST_CAP))
        if not spec.is_plain or self.extras.get("online", False):
            # i.i.d. test draws (Zipf, noise, and every online run: T fresh strings): no distinct-input cap
            return int(self.test_size)
        return max(1, min(int(self.test_size), pm // 2))

    def size_cap(self, grammar) -> int:
        """The largest training size of a grammar, the one cap of the size grid, the adaptive search and the dry
        run: P_max minus the test set for distinct inputs, none (NO_CAP) for i.i.d. or streamed (extras.online)
        training sets."""
        if self.sampling != DEFAULT_SAMPLING or self.extras.get("online", False):
            return NO_CAP
        return GrammarSpec.from_dict(grammar).num_inputs - self.resolved_test_size(grammar)

    def run_for(self, grammar, variant, train_size: int, seed: int) -> RunConfig:
        """The RunConfig of one (grammar, learner variant, P, seed) point of this sweep."""
        name, label, explicit, full = variant
        explicit, full = dict(explicit), dict(full)
        if "seed" in full and "seed" not in explicit:
            explicit["seed"] = int(seed)
            full["seed"] = int(seed)
        return RunConfig(task="train", grammar=GrammarSpec.from_dict(grammar).to_dict(), learner=name,
                         params=explicit, resolved=full,
                         train_size=int(train_size), test_size=self.resolved_test_size(grammar), seed=int(seed),
                         extras=_jsonable(self.extras), sweep=self.name, label=label, sampling=self.sampling,
                         objective=self.objective)

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
            return [RunConfig(task=self.task, grammar=g.to_dict(), seed=int(s), extras=_jsonable(self.extras),
                              sweep=self.name, label=self.task)
                    for g in self.grammar_points() for s in self.seeds]
        if self.adaptive is not None:
            raise SweepError("adaptive sweeps choose their sizes while running: use run_sweep")
        runs = []
        variants = self.variants()
        for g in self.grammar_points():
            for var in variants:
                for P in self.sizes.resolve(g, self.size_cap(g)):
                    for s in self.seeds:
                        runs.append(self.run_for(g, var, P, s))
        return runs
