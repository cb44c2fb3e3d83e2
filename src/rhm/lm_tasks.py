"""Language-model tasks on RHM data: what is predicted from what, the Bayes-optimal predictor, and the metrics.

Tasks (one name each; a learner declares the ones it serves in ``Learner.tasks``):

* ``"classify"``: the root label from the whole input (inputs x (n, d), targets y (n,));
* ``"next-token"``: the last token x_{d-1} from x_{<d-1}, as in Cagnetta & Wyart (NeurIPS 2024). Inputs are x
  with the last position replaced by the MASK token (id ``V``, the input vocabulary size), targets x[:, -1] (n,);
* ``"next-token-all"``: every token x_t from x_{<t} (t = 0: from nothing). Inputs x, targets x (n, d); a model
  must be causal (the transformer's decoder shifts its input right internally);
* ``"masked"``: each position hidden independently with probability ``mask_rate`` (replaced by MASK), or with
  ``mask_rate="one"`` exactly one uniformly drawn position per row (Garnier-Brun et al.'s MLM); targets (n, d) hold
  the hidden tokens and -1 (``IGNORE``) where nothing is predicted.

Metrics, over the target positions only (targets >= 0): accuracy, cross-entropy (nats), and the excess
cross-entropy over the Bayes-optimal predictor on the *same* test inputs (exact posteriors from
:mod:`rhm.inference`: class_posterior, token_posterior, next_token). numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .validation import check_choice, check_float

TASKS = ("classify", "next-token", "next-token-all", "masked")
#: tasks whose inputs carry the MASK token (id = input vocabulary size V)
MASKED_INPUT = ("next-token", "masked")
#: tasks whose targets are one token per input (n,) rather than per position (n, d)
PER_INPUT = ("classify", "next-token")
IGNORE = -1
#: mask_rate value that hides exactly one uniformly drawn position per row
ONE_PER_ROW = "one"
_EPS = 1e-12


def check_mask_rate(mask_rate, name: str = "mask_rate"):
    """A probability in (0, 1), or "one" (one hidden token per row); `name` is the parameter an error names."""
    if mask_rate == ONE_PER_ROW:
        return ONE_PER_ROW
    if isinstance(mask_rate, str):
        raise ValueError(f"{name}={mask_rate!r} must be a probability in (0, 1) or {ONE_PER_ROW!r}")
    return check_float(name, mask_rate, 0.0, strict=True, maximum=1.0)


def check_task(task) -> str:
    return check_choice("task", task, TASKS)


def vocab(g) -> int:
    """V: the size of the token alphabet of g's inputs (v; v + 1 for the sparse RHM's blank)."""
    return int(g.vocab_size)


def unsupported(learner: str, task: str, supported) -> ValueError:
    """The one refusal error of a learner asked for a task it does not serve."""
    return ValueError(f"learner {learner!r} does not support task={task!r}; it supports: {', '.join(supported)}")


@dataclass
class TaskData:
    """Inputs ``x`` (n, d) token ids (MASK = ``mask_id`` where hidden), targets ``y`` ((n,) or (n, d), -1 =
    nothing to predict) and the task."""

    x: np.ndarray
    y: np.ndarray
    task: str
    mask_id: int


def make(g, task: str, x, labels=None, *, mask_rate: float = 0.15, seed=0) -> TaskData:
    """The task's (inputs, targets) from sampled inputs x (n, d) and their labels (classify only).

    The masked task draws its mask with `seed` (numpy Generator or int); the other tasks are deterministic.
    """
    task = check_task(task)
    x = np.asarray(x)
    V = vocab(g)
    if task == "classify":
        if labels is None:
            raise ValueError("labels: task 'classify' needs the labels of x")
        return TaskData(x, np.asarray(labels), task, V)
    if task == "next-token":
        xi = x.copy()
        xi[:, -1] = V
        return TaskData(xi, x[:, -1].astype(np.int64), task, V)
    if task == "next-token-all":
        return TaskData(x, x.astype(np.int64), task, V)
    rate = check_mask_rate(mask_rate)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if rate == ONE_PER_ROW:
        mask = np.zeros(x.shape, bool)
        mask[np.arange(len(x)), rng.integers(0, x.shape[1], len(x))] = True
    else:
        mask = rng.random(x.shape) < rate
    return TaskData(np.where(mask, V, x), np.where(mask, x.astype(np.int64), IGNORE), task, V)


def sample(g, task: str, n: int, *, seed=0, mask_rate: float = 0.15, replace: bool = True) -> TaskData:
    """n inputs drawn from g (the fast sampler) turned into the task's data; one seed for inputs and mask."""
    if isinstance(seed, np.random.Generator):
        seed = int(seed.integers(2**63))
    s_data, s_mask = np.random.SeedSequence(seed).spawn(2)
    x, y = g.sample(n, seed=np.random.default_rng(s_data), replace=replace)
    return make(g, task, x, y, mask_rate=mask_rate, seed=np.random.default_rng(s_mask))


def bayes_proba(g, data: TaskData) -> np.ndarray:
    """The Bayes-optimal predictive of every target: (n, n_classes) for classify, (n, V) for next-token,
    (n, d, V) for next-token-all and masked (rows of untargeted positions are whatever inference returns)."""
    from . import inference

    x = data.x
    if data.task == "classify":
        return inference.class_posterior(g, x)
    if data.task == "next-token-all":
        return inference.next_token(g, x)
    mask = x == data.mask_id
    post = inference.token_posterior(g, x, mask)
    return post[:, -1] if data.task == "next-token" else post


def _target_probs(proba: np.ndarray, y: np.ndarray):
    """(probability given to the true target, argmax hit) at every target position, flattened."""
    proba = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y)
    if y.ndim == 1:
        if proba.shape[:1] != y.shape or proba.ndim != 2:
            raise ValueError(f"proba must have shape (n, classes) for targets {y.shape}, got {proba.shape}")
        p, hit = proba[np.arange(len(y)), y], proba.argmax(1) == y
        return p, hit
    if proba.shape[:2] != y.shape or proba.ndim != 3:
        raise ValueError(f"proba must have shape (n, d, V) for targets {y.shape}, got {proba.shape}")
    keep = y >= 0
    rows, cols = np.nonzero(keep)
    t = y[keep]
    return proba[rows, cols, t], proba[rows, cols].argmax(-1) == t


def metrics(proba, y) -> dict:
    """{"accuracy", "cross_entropy" (nats, mean over targets), "n_targets"} of a predictive on targets y."""
    p, hit = _target_probs(proba, y)
    if len(p) == 0:
        return {"accuracy": float("nan"), "cross_entropy": float("nan"), "n_targets": 0}
    return {"accuracy": float(hit.mean()), "cross_entropy": float(-np.log(np.maximum(p, _EPS)).mean()),
            "n_targets": int(len(p))}


def evaluate(g, data: TaskData, proba) -> dict:
    """The model's metrics plus the Bayes predictor's on the same inputs and the excess cross-entropy
    (model minus Bayes, nats per target; >= 0 up to sampling noise)."""
    out = metrics(proba, data.y)
    bayes = metrics(bayes_proba(g, data), data.y)
    out.update({"bayes_accuracy": bayes["accuracy"], "bayes_cross_entropy": bayes["cross_entropy"],
                "excess_cross_entropy": out["cross_entropy"] - bayes["cross_entropy"]})
    return out
