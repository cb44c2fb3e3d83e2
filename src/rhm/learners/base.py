"""What every learner shares: input validation, the fit/predict/score contract, the patch-size rule, devices and
seeds.

Learners take integer tokens x (n, d) and integer labels y (n,) — never one-hot — and one-hot encode per batch
internally. Subclasses implement ``_fit(x, y)`` and ``_predict(x)`` on validated numpy arrays and declare their
hyperparameters as constructor arguments, stored unchanged as attributes and validated in fit: the learners are
scikit-learn estimators (:class:`sklearn.base.BaseEstimator`: get_params(deep), set_params, clone).
"""

from __future__ import annotations

import inspect
import math
import numbers

import numpy as np
import torch
from sklearn.base import BaseEstimator

from ..lm_tasks import MASKED_INPUT, PER_INPUT, check_task, unsupported, vocab
from ..patches import patch_ids
from ..validation import check_choice, check_int, check_tokens


def resolve_device(device) -> torch.device:
    """'auto' -> cuda if available else cpu; anything else must name an available torch device."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device={device!r} is not a torch device: {err}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} requested but CUDA is not available")
    return dev


def resolve_dtype(dtype) -> torch.dtype:
    table = {"float32": torch.float32, "float64": torch.float64, torch.float32: torch.float32,
             torch.float64: torch.float64}
    return table[check_choice("dtype", dtype, ("float32", "float64", torch.float32, torch.float64))]


def check_seed(seed) -> int:
    """A learner's seed: an integer >= 0."""
    return check_int("seed", seed, 0)


class Learner(BaseEstimator):
    """Base class: ``fit(x, y)`` -> self, ``predict(x)`` -> labels, ``score(x, y)`` -> accuracy.

    Subclasses set the class attributes ``name`` and implement ``_fit`` / ``_predict``. After fit, ``v_``,
    ``d_`` and ``n_classes_`` hold the vocabulary, input length and number of classes, and ``info_`` a dict of
    what the fit recorded (sample counts, diagnostics, seconds) for reports.
    """

    name = "base"
    #: the tasks of rhm.lm_tasks this learner serves; fit(..., task=t) refuses any other
    tasks = ("classify",)
    #: class-level options (not constructor arguments) that --hp and a sweep's params may set by name
    FIT_OPTIONS: tuple = ()

    # ------------------------------------------- hyperparameters (get_params / set_params: BaseEstimator's)
    @classmethod
    def param_names(cls) -> list[str]:
        return list(cls.defaults())

    @classmethod
    def defaults(cls) -> dict:
        """Every constructor hyperparameter with its default."""
        sig = inspect.signature(cls.__init__)
        return {k: p.default for k, p in sig.parameters.items() if k != "self" and p.default is not p.empty}

    @classmethod
    def settable(cls) -> dict:
        """What a user may set by name (``--hp``, a sweep's params): the constructor's hyperparameters plus the
        class-level fit options a learner declares in ``FIT_OPTIONS`` (torch learners: remask, ...), with
        their defaults."""
        out = cls.defaults()
        out.update({k: getattr(cls, k) for k in cls.FIT_OPTIONS if k not in out})
        return out

    # ------------------------------------------------------------------------------------ validation
    def _check_xy(self, x, y=None, *, fitting: bool):
        """Validate tokens x (n, d) ints >= 0 and labels y (n,) ints >= 0; in predict, also the fitted shapes."""
        x = check_tokens(x, nonempty=True)  # the vocabulary is checked against the fit's below
        if not fitting:
            self._check_fitted()
            if x.shape[1] != self.d_:
                raise ValueError(f"x has d={x.shape[1]} tokens per input, the model was fit on d={self.d_}")
            masked = getattr(self, "task_", "classify") in MASKED_INPUT  # the MASK token v is allowed
            if x.max() >= self.v_ + masked:
                raise ValueError(f"x has tokens >= v={self.v_}{' (other than the MASK token v)' if masked else ''}"
                                 ", outside the vocabulary seen in fit")
        if y is None:
            return x
        y = np.asarray(y)
        per_position = getattr(self, "task_", "classify") not in PER_INPUT
        want = x.shape if per_position else (x.shape[0],)
        if y.shape != want:
            form = f"(n, d)={want} for task={self.task_!r}" if per_position else f"(n,)=({x.shape[0]},)"
            raise ValueError(f"y must have shape {form}, got {y.shape}")
        if y.dtype == bool or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"y must hold integer labels, got dtype {y.dtype}")
        if y.min() < (-1 if per_position else 0):  # -1: no target at that position
            raise ValueError("y has negative labels")
        if not fitting and y.max() >= self.n_classes_:
            raise ValueError(f"y has labels >= n_classes={self.n_classes_} seen in fit")
        return x, y

    def _tree_shape(self, s, d: int) -> tuple[int, int]:
        """(s, L) for inputs of length d: `s` as given, else the grammar's; never guessed from d (d = 16 is both
        2**4 and 4**2). The one patch-size rule of every learner that needs s."""
        g = self.grammar_
        if getattr(g, "varying", False) is True:  # every fixed-topology learner asks for its shape here
            raise ValueError(f"{type(self).__name__} needs a fixed tree topology (patches of s tokens at fixed "
                             f"positions), but {g!r} has a varying topology (binary and ternary nodes, padded "
                             "strings of variable length): use a learner on sequences (transformer, fcn)")
        # a sparse RHM's rules own s (s0+1) positions (its `patch`); every other grammar's own s
        if s is None and g is not None:
            s = g.spec.s * (g.spec.s0 + 1)
        if s is None:
            raise ValueError(f"s (the patch size) is unknown: pass {type(self).__name__}(s=...) "
                             "or fit(x, y, grammar=g)")
        if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 2:
            raise ValueError(f"s={s!r} must be an integer >= 2")
        L = max(1, round(math.log(d, s)))
        if s**L != d:
            raise ValueError(f"x has d={d} tokens, not a power of s={s}")
        return int(s), L

    def _check_fitted(self):
        if not hasattr(self, "d_"):
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet: call fit(x, y) first")

    # ------------------------------------------------------------------------------------ public API
    def fit(self, x, y, v: int | None = None, n_classes: int | None = None, grammar=None, task: str = "classify"):
        """Fit on tokens x (n, d) and targets y of `task` (rhm.lm_tasks: labels (n,) for classify).

        v / n_classes default to the grammar's when `grammar` is given (v: its input vocabulary
        ``grammar.vocab_size``, v + 1 for a sparse RHM whose blank is token v), else to max+1 of the data. Every
        variant (Zipf, noise, sparse) is accepted: the learners see tokens and labels only. The grammar
        is never used to fit: only for oracle diagnostics and for options that say they use it (e.g. the
        chaining learner's sigma="oracle"). For the language-model tasks v is the token alphabet, the targets'
        classes are the v tokens, and the inputs may hold the MASK token v.
        """
        if check_task(task) not in self.tasks:
            raise unsupported(self.name, task, self.tasks)
        self.task_ = task
        x, y = self._check_xy(x, y, fitting=True)
        lm = task != "classify"
        if grammar is not None:
            if x.shape[1] != grammar.d:
                raise ValueError(f"x has d={x.shape[1]} tokens per input but the grammar has d={grammar.d}")
            v = vocab(grammar) if v is None else v
            n_classes = grammar.n_classes if n_classes is None and not lm else n_classes
        if lm:  # the MASK token (= v) may appear in x; the classes are the tokens
            tok = y[y >= 0]
            if v is None:  # no grammar: the MASK token is the largest input id of a masked-input task
                v = int(x.max()) if task in MASKED_INPUT else int(max(x.max(), tok.max(initial=0))) + 1
            v = check_int("v", v, 2)
            seen = int(max(x[x < v].max(initial=0), tok.max(initial=0)))
            if x.max() > v or (x.max() == v and task not in MASKED_INPUT):
                raise ValueError(f"x holds the token {int(x.max())}, outside 0..{v - 1} and the MASK token")
            self.v_ = self._size("v", v, seen + 1, seen)
            self.n_classes_ = self.v_
        else:
            self.v_ = self._size("v", v, int(x.max()) + 1, int(x.max()))
            self.n_classes_ = self._size("n_classes", n_classes, max(2, int(y.max()) + 1), int(y.max()))
        self.d_ = x.shape[1]
        self.grammar_ = grammar
        self.info_ = {}
        self._fit(x, y)
        return self

    def _setup(self, grammar, task: str):
        """The fitted shapes from a grammar alone (online training, no data array): task_, v_ (the grammar's
        input vocabulary), n_classes_ (its classes for classify, else the tokens), d_, grammar_, info_."""
        if check_task(task) not in self.tasks:
            raise unsupported(self.name, task, self.tasks)
        self.task_, self.grammar_, self.info_ = task, grammar, {}
        self.v_ = vocab(grammar)
        self.n_classes_ = int(grammar.n_classes) if task == "classify" else self.v_
        self.d_ = int(grammar.d)

    @staticmethod
    def _size(name, given, default, seen_max):
        if given is None:
            return default
        given = check_int(name, given, 2)
        if seen_max >= given:
            raise ValueError(f"{name}={given} but the data contain the value {seen_max} (must be < {name})")
        return int(given)

    def predict(self, x) -> np.ndarray:
        """Predicted labels (n,) int64 for tokens x (n, d)."""
        x = self._check_xy(x, fitting=False)
        return np.asarray(self._predict(x), dtype=np.int64)

    def score(self, x, y) -> float:
        """Test accuracy on (x, y): over the target positions (y >= 0) for the language-model tasks."""
        x, y = self._check_xy(x, y, fitting=False)
        pred = np.asarray(self._predict(x))
        keep = y >= 0
        return float((pred[keep] == y[keep]).mean())

    def _fit(self, x, y):  # pragma: no cover - abstract
        raise NotImplementedError

    def _predict(self, x):  # pragma: no cover - abstract
        raise NotImplementedError


def distinct_patches(x: np.ndarray, s: int, v: int) -> tuple[int, float]:
    """(|P|, m_hat): the number of distinct input s-patches over all positions (Vm once every rule has been
    seen) and the rules-per-symbol estimate |P| / v that the layerwise learners use in place of m."""
    n_patches = len(patch_ids(x.reshape(-1, s), v)[0])
    return n_patches, max(1.0, n_patches / v)


def fresh_stage_sizes(n: int, m_hat: float, L: int, name: str) -> dict:
    """The paper's disjoint stage sets: N^(l) ∝ m^l for l = 1..L, summing to n; {level: size}.

    `name` is the option that asked for the split (named in the error when a stage would be empty).
    """
    w = np.array([m_hat**lv for lv in range(1, L + 1)])
    sizes = np.floor(n * w / w.sum()).astype(int)
    sizes[-1] += n - sizes.sum()
    if (sizes < 1).any():
        raise ValueError(f"{name} needs at least one sample per stage; got P={n} for L={L}")
    return {lv: int(sizes[lv - 1]) for lv in range(1, L + 1)}
