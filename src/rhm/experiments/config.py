"""The run configuration the store needs: :class:`RunConfig` (one fully specified run) and its key.

``RunConfig.key`` is the SHA-256 of the canonical JSON of everything that determines the result (grammar, task,
learner with every hyperparameter resolved, sizes, seed, sampling protocol, extras); the sweep name and the
display label are not part of it. The default sampling protocol ("distinct") is left out of the hashed identity,
so the keys of runs stored before the field existed are unchanged.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TASKS = ("train", "parse", "gaps", "boolean", "diffusion", "ambiguity")
#: training-set protocols: "distinct" = P distinct inputs (the literature's P* protocol); "iid" = P i.i.d. draws
#: (the paper's), repeats allowed; in both the test inputs are distinct and disjoint from the training inputs
SAMPLING = ("distinct", "iid")
DEFAULT_SAMPLING = "distinct"
DEFAULT_OBJECTIVE = "classify"
KEY_LENGTH = 24


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


def jsonable(value):
    """A JSON-representable version of a value (dict keys become str, non-JSON objects their str)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        f = float(value)
        return f if math.isfinite(f) else str(f)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return str(value)


def grammar_key(r):
    """The :class:`rhm.GrammarSpec` of a store row (from its config's grammar, every field: a sweep over zipf or
    noise on one grammar gives one key per grammar); hashable, so rows group by it."""
    from ..spec import GrammarSpec

    cfg = r["config"] if "config" in r else None
    if isinstance(cfg, dict) and cfg.get("grammar"):
        return _spec_of_json(canonical_json(cfg["grammar"]))
    return GrammarSpec(v=int(r["v"]), m=int(r["m"]), s=int(r["s"]), L=int(r["L"]), n_classes=int(r["n_classes"]),
                       rules=str(r["rules"]), seed=int(r["grammar_seed"]))


@functools.lru_cache(maxsize=4096)
def _spec_of_json(text: str):
    """The spec of a grammar dict's canonical JSON (cached: a report groups thousands of rows of a few grammars)."""
    from ..spec import GrammarSpec

    return GrammarSpec.from_dict(json.loads(text))


def by_grammar(df):
    """[(spec, rows)] of a frame grouped by the full grammar spec, in spec order."""
    specs = df.apply(grammar_key, axis=1)
    keys = specs.map(lambda sp: sp.key)
    first = dict(zip(keys, specs))
    return sorted(((first[k], sub) for k, sub in df.groupby(keys, sort=False)), key=lambda t: t[0].sort_key())


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
    sampling: str = DEFAULT_SAMPLING
    #: what a "train" run predicts (rhm.lm_tasks.TASKS); the mask rate of "masked" is extras["mask_rate"]
    objective: str = DEFAULT_OBJECTIVE

    @property
    def spec(self):
        """The :class:`rhm.GrammarSpec` of ``grammar`` (a spec's ``to_dict``; what the key hashes)."""
        from ..spec import GrammarSpec

        return GrammarSpec.from_dict(self.grammar)

    def identity(self) -> dict:
        ident = {"task": self.task, "grammar": self.grammar, "learner": self.learner,
                 "hyperparameters": self.resolved, "train_size": self.train_size, "test_size": self.test_size,
                 "seed": self.seed, "extras": self.extras}
        if self.sampling != DEFAULT_SAMPLING:  # keeps the keys of runs stored before the field existed
            ident["sampling"] = self.sampling
        if self.objective != DEFAULT_OBJECTIVE:  # likewise: classify runs keep their keys
            ident["objective"] = self.objective
        return ident

    @property
    def key(self) -> str:
        return hashlib.sha256(canonical_json(self.identity()).encode()).hexdigest()[:KEY_LENGTH]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})
