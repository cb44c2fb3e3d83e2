"""Commands on learners: ``rhm train`` (fit one learner on one draw, report test accuracy) and ``rhm learners``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .. import limits
from ..validation import check_int
from ._common import (BETA_OPT, FILTER_OPT, GRAMMAR_OPT, GRAMMAR_SEED_OPT, JSON_OPT, L_OPT_OR_FILE, M_OPT_OR_FILE,
                      NC_OPT, NOISE_OPT, RULES_OPT, S0_OPT, S_OPT, V_OPT_OR_FILE, ZIPF_OPT, CliError, _emit, _grammar,
                      _run, app, check_request)


def _coerce(value: str, default):
    """Parse a --hp value with the type of the constructor default (bool, int, float, str, None)."""
    low = value.lower()
    if isinstance(default, bool):
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected a boolean, got {value!r}")
    if low in ("none", "null"):
        return None
    if isinstance(default, (tuple, list)):
        try:
            return tuple(float(t) for t in value.split(",") if t.strip())
        except ValueError:
            raise ValueError(f"expected comma-separated numbers, got {value!r}") from None
    if isinstance(default, int):
        try:
            return int(value)
        except ValueError:
            pass
    if isinstance(default, (int, float)) or default is None:
        try:
            return float(value) if any(c in low for c in ".e") or isinstance(default, float) else int(value)
        except ValueError:
            if isinstance(default, (int, float)):
                raise ValueError(f"expected a number, got {value!r}") from None
    return value


def learner_kwargs(cls, hp: list[str], named: dict) -> dict:
    """Constructor kwargs from ``--hp key=value`` strings plus named options (None = not given)."""
    defaults = cls.settable()  # torch learners: the class-level fit options (remask, ...) too
    kwargs = {}
    for item in hp:
        if "=" not in item:
            raise CliError(f"--hp {item!r} must look like KEY=VALUE")
        key, value = item.split("=", 1)
        key = key.strip().replace("-", "_")
        if key not in defaults:
            raise CliError(f"--hp {key}: learner {cls.name!r} has no hyperparameter {key!r}; "
                           f"it has: {', '.join(sorted(defaults))}")
        try:
            kwargs[key] = _coerce(value.strip(), defaults[key])
        except ValueError as err:
            raise CliError(f"--hp {key}={value}: {err}") from None
    for key, value in named.items():
        if value is None:
            continue
        if key not in defaults:
            raise CliError(f"--{key.replace('_', '-')} does not apply to learner {cls.name!r}")
        kwargs[key] = value
    return kwargs


def _set_threads(n: int) -> None:
    """Every CPU thread pool of this process (torch's intra-op pool, numpy's BLAS) to n threads."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    threadpool_limits(n)


@app.command()
def train(learner: str = typer.Option("chaining", "--learner", help="learner name (see `rhm learners`)"),
          v: Optional[int] = V_OPT_OR_FILE, m: Optional[int] = M_OPT_OR_FILE, s: int = S_OPT,
          L: Optional[int] = L_OPT_OR_FILE, n_classes: Optional[int] = NC_OPT, rules: str = RULES_OPT,
          grammar_seed: Optional[int] = GRAMMAR_SEED_OPT,
          grammar_file: Optional[Path] = GRAMMAR_OPT,
          train_size: int = typer.Option(..., "--train-size", help="number of training samples P"),
          test_size: int = typer.Option(10000, "--test-size", help="number of test samples (disjoint from train)"),
          seed: int = typer.Option(0, "--seed", help="seed of the data draw and of the learner"),
          sampling: Optional[str] = typer.Option(None, "--sampling", help="distinct (P distinct training inputs, "
                                                 "the P* protocol; the default) | iid (P i.i.d. draws, the paper's; "
                                                 "P may exceed P_max; the default and the only choice with "
                                                 "--zipf or --noise, whose test set is i.i.d. too)"),
          zipf: Optional[float] = ZIPF_OPT, noise: float = NOISE_OPT, s0: Optional[int] = S0_OPT,
          beta: Optional[float] = BETA_OPT, filter_level: int = FILTER_OPT,
          task: str = typer.Option("classify", "--task", help="classify | next-token (the last token) | "
                                   "next-token-all (every position) | masked (see docs/lm_tasks.md)"),
          mask_rate: float = typer.Option(0.15, "--mask-rate", help="masked task: probability of hiding a token"),
          train_mask_rate: Optional[str] = typer.Option(None, "--train-mask-rate", help="masked task: the rate of "
                                                        "the training masks only (a probability, or 'one'; "
                                                        "default --mask-rate, which the test keeps): the Bayes "
                                                        "predictor is the same at every rate, and 0.3 gives twice "
                                                        "the targets per sample (docs/lm_tasks.md)"),
          mask_draws: int = typer.Option(1, "--mask-draws", help="masked task with --online: show each fresh "
                                         "training string with this many independently drawn masks (more "
                                         "targets, the same samples seen; docs/lm_tasks.md)"),
          online: bool = typer.Option(False, "--online", help="torch learners: train on a stream of P fresh "
                                      "samples (ceil(P / batch_size) batches, never stored), test on fresh draws"),
          device: Optional[str] = typer.Option(None, "--device", help="torch device: cpu | cuda | auto"),
          solver: Optional[str] = typer.Option(None, "--solver", help="chaining: gd | closed"),
          samples: Optional[str] = typer.Option(None, "--samples", help="chaining: fresh | reuse"),
          sigma: Optional[str] = typer.Option(None, "--sigma", help="chaining: data | oracle | theory | validate"),
          width: Optional[int] = typer.Option(None, "--width", help="width (random-feature pairs M, or hidden units)"),
          hp: List[str] = typer.Option([], "--hp", help="any other hyperparameter, KEY=VALUE (repeatable)"),
          threads: int = typer.Option(1, "--threads", help="CPU threads for torch and BLAS (default 1: the small "
                                      "minibatches of these networks run several times faster on one thread than "
                                      "on two, much more so on a busy machine; see docs/baselines.md)"),
          protocol: Optional[str] = typer.Option(None, "--protocol", help="an anchor paper's LM protocol: "
                                                 "cagnetta-wyart-2024 (next-token) | garnier-brun-2025 (masked, "
                                                 "one token per row); sets learner, task and hyperparameters "
                                                 "(explicit --hp win; see rhm.protocols)"),
          as_json: bool = JSON_OPT):
    """Train a learner on a fresh sample of a grammar and report test accuracy and what the fit recorded."""
    from .. import learners
    from ..experiments.config import jsonable
    from ..experiments.tasks import train_once

    def go():
        check_int("--train-size", train_size, 1)  # the cheap checks first: learners.get imports torch (seconds)
        check_int("--test-size", test_size, 1)
        stored = min(train_size, 1024) if online else train_size  # --online keeps one batch, not P inputs
        check_request(v, m, s, L, n_classes, s0, grammar_file, train_size=stored, test_size=test_size)
        check_int("--threads", threads, 1)
        _set_threads(threads)
        learner_, task_, mask_rate_, proto = learner, task, mask_rate, None
        if protocol is not None:
            from .. import protocols

            try:
                proto = protocols.get(protocol)
            except ValueError as err:
                raise CliError(f"--protocol: {err}") from None
            if learner not in ("chaining", proto.learner):  # "chaining" is --learner's default: not given
                raise CliError(f"--learner {learner} conflicts with --protocol {protocol}, whose learner is "
                               f"{proto.learner}")
            if task not in ("classify", proto.task):
                raise CliError(f"--task {task} conflicts with --protocol {protocol}, whose task is {proto.task}")
            learner_, task_, mask_rate_ = proto.learner, proto.task, proto.mask_rate
        train_rate = train_mask_rate
        if train_rate is not None:
            if task_ != "masked":
                raise CliError(f"--train-mask-rate applies to --task masked only, not {task_}")
            if train_rate != "one":
                try:
                    train_rate = float(train_rate)
                except ValueError:
                    raise CliError(f"--train-mask-rate {train_mask_rate}: must be a probability in (0, 1) or "
                                   "'one'") from None
        check_int("--mask-draws", mask_draws, 1)
        if mask_draws > 1 and (task_ != "masked" or not online):
            raise CliError(f"--mask-draws {mask_draws} applies to --task masked with --online only (an offline "
                           "fit re-draws each string's mask every epoch)")
        cls = learners.get(learner_)
        sig = sigma
        if sig is not None:
            try:
                sig = float(sig)  # a fixed bandwidth
            except ValueError:
                pass
        named = {"device": device, "solver": solver, "samples": samples, "sigma": sig, "width": width}
        kwargs = learner_kwargs(cls, hp, named)
        if "seed" in cls.defaults():
            kwargs.setdefault("seed", seed)
        if "progress" in cls.defaults():  # epochs and loss on stderr (stdout keeps --json's one object)
            kwargs.setdefault("progress", True)
        g = _grammar(v, m, s, L, n_classes, rules, grammar_seed, grammar_file, zipf, noise, s0, beta, filter_level)
        limits.check_train(g, stored, test_size)  # a loaded --grammar FILE: checked once known
        sampling_ = sampling if sampling is not None else ("distinct" if g.spec.is_plain else "iid")
        # the same draw, fit and score as a sweep's train task (rhm.experiments.tasks)
        if proto is not None:  # the protocol's hyperparameters under the user's explicit ones
            kwargs = {**proto.learner_params(g.L), **kwargs}
        model, res = train_once(g, learner_, kwargs, train_size, test_size, seed, sampling_, task_, mask_rate_,
                                online=online, train_mask_rate=train_rate, mask_draws=mask_draws)
        acc, fit_seconds = res["test_accuracy"], res["fit_seconds"]
        out = {"learner": learner_, "grammar": g.spec.to_dict(), "train_size": train_size, "test_size": test_size,
               "seed": seed, "sampling": sampling_, "test_accuracy": acc, "test_error": 1 - acc,
               "fit_seconds": fit_seconds,
               "params": {k: (list(val) if isinstance(val, (tuple, list)) else val if isinstance(
                   val, (int, float, str, bool, type(None))) else str(val)) for k, val in model.get_params().items()},
               **jsonable(res["info"])}
        if online:  # info_ says online: True; the P samples were a stream, the test set fresh draws
            out["sampling"] = "stream"
        elif sampling_ != "distinct":
            out["n_distinct_train"] = res["n_distinct_train"]
        if proto is not None:
            out["protocol"] = proto.describe()
        if task_ != "classify":
            out.update({"task": task_, **res["lm"]})
        if train_rate is not None:
            out["train_mask_rate"] = train_rate
        human = (f"{learner_} on {g!r}: test accuracy {acc:.4f} with P={train_size} "
                 f"(fit {fit_seconds:.2f} s)")
        if "bayes_test_error" in res:  # noisy grammar: the Bayes classifier on the same test set
            out["bayes_test_error"] = res["bayes_test_error"]
            out["bayes_error_expected"] = res["bayes_error_expected"]
            human += f"; Bayes error on this test set {res['bayes_test_error']:.4f}"
        if task_ != "classify":
            lm = res["lm"]
            human += (f"\n{task_}: cross-entropy {lm['cross_entropy']:.4f} nats, "
                      f"Bayes {lm['bayes_cross_entropy']:.4f}, excess {lm['excess_cross_entropy']:.4f}")
        _emit(out, as_json, human)

    _run(go)


@app.command(name="learners")
def list_learners():
    """List the registered learners and their hyperparameters with defaults."""
    from .. import learners

    for name in learners.names():
        cls = learners.get(name)
        defaults = ", ".join(f"{k}={v!r}" for k, v in cls.defaults().items())
        typer.echo(f"{name}: {defaults}")
