"""Command line: ``rhm info | sample | train``. Thin: parse options, call the library, print.

Errors from bad input print one line ``error: ...`` on stderr and exit with status 1, writing nothing.
``--json`` prints exactly one JSON object on stdout; human-readable output goes to stderr.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import List, Optional

import numpy as np
import typer

from ._io import atomic_path
from .grammar import RHM, RULE_SAMPLERS

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Random Hierarchy Models: grammars, samples and learners (levels: 0 = root, L = input).")


class CliError(Exception):
    """A user error: printed as one line, exit status 1."""


def _fail(msg: str):
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code=1)


def _run(fn):
    """Call fn(), turning ValueError/CliError into one clean error line."""
    try:
        return fn()
    except (ValueError, CliError) as err:
        _fail(str(err))


def _finite(x):
    """JSON has no inf/nan: map them to None."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _emit(obj: dict, as_json: bool, human: str):
    if as_json:
        typer.echo(json.dumps(obj, default=_json_default))
    else:
        typer.echo(human, err=False)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return _finite(float(o))
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# ------------------------------------------------------------------------------------------ grammar options
V_OPT = typer.Option(..., "--v", help="vocabulary size v (symbols per level below the root)")
M_OPT = typer.Option(..., "--m", help="synonymous rules per symbol m")
S_OPT = typer.Option(2, "--s", help="branching factor s (patch size); d = s**L")
L_OPT = typer.Option(..., "--L", help="depth L (input length d = s**L)")
NC_OPT = typer.Option(None, "--n-classes", help="number of classes (default: v)")
RULES_OPT = typer.Option("uniform", "--rules", help=f"rule sampler: {' | '.join(RULE_SAMPLERS)}")
GSEED_OPT = typer.Option(0, "--seed", help="seed of the grammar's rules")
GRAMMAR_OPT = typer.Option(None, "--grammar", help="load the grammar from this JSON file instead")
ZIPF_OPT = typer.Option(None, "--zipf", help="Zipf rule probabilities: rule k of each symbol has probability "
                        "proportional to k^-(1+a) (default: uniform)")
NOISE_OPT = typer.Option(0.0, "--noise", help="probability that each input token is replaced by a uniform token")
S0_OPT = typer.Option(None, "--s0", help="sparse RHM: s0 blank positions per informative token, "
                      "d = (s(s0+1))**L (default: the plain RHM)")
JSON_OPT = typer.Option(False, "--json", help="print one JSON object on stdout")


def _grammar(v, m, s, L, n_classes, rules, seed, grammar_file, zipf=None, noise=0.0, s0=None):
    if grammar_file is not None:
        return RHM.load(grammar_file)
    if s0 is not None:
        from .sparse import SparseRHM
        return SparseRHM(v, m, s, L, s0=s0, n_classes=n_classes, rules=rules, seed=seed, zipf=zipf, noise=noise)
    return RHM(v, m, s, L, n_classes=n_classes, rules=rules, seed=seed, zipf=zipf, noise=noise)


def grammar_info(g: RHM, gaps=None) -> dict:
    from . import oracle

    gaps = gaps or oracle.signal_gaps(g)
    return {
        **g.params(), "d": g.d, "num_inputs": str(g.num_inputs), "num_inputs_float": float(g.num_inputs),
        "nc_m_L": g.n_classes * g.m**g.L,
        "rho": {str(k): _finite(v) for k, v in gaps.rho.items()},
        "m_pow_minus_l_half": {str(k): g.m ** (-k / 2) for k in gaps.rho},
        "kappa": _finite(gaps.kappa), "K_rho_max": _finite(gaps.K_rho(g.m)),
        "producible_first_patch_fraction": {str(k): v for k, v in gaps.producible.items()},
    }


@app.command()
def info(v: int = V_OPT, m: int = M_OPT, s: int = S_OPT, L: int = L_OPT, n_classes: Optional[int] = NC_OPT,
         rules: str = RULES_OPT, seed: int = GSEED_OPT, as_json: bool = JSON_OPT,
         K_rho: Optional[float] = typer.Option(None, "--K-rho", help="check Assumption 6 for this K_rho "
                                               "(default: the largest K_rho the grammar meets)"),
         zipf: Optional[float] = ZIPF_OPT, noise: float = NOISE_OPT, s0: Optional[int] = S0_OPT):
    """Sizes, signal gaps rho^(l), kappa and the Assumption-6 check of one grammar (of its informative RHM
    for --s0; the gaps assume uniform rule probabilities)."""
    from . import oracle

    def go():
        full = _grammar(v, m, s, L, n_classes, rules, seed, None, zipf, noise, s0)
        g = getattr(full, "base", full)
        gaps = oracle.signal_gaps(g)
        out = grammar_info(g, gaps)
        out.update(full.params(), d=full.d, num_inputs=str(full.num_inputs),
                   num_inputs_float=float(full.num_inputs))
        k = K_rho if K_rho is not None else gaps.K_rho(g.m)
        if not (isinstance(k, float) and math.isfinite(k)) and K_rho is None:
            k = 1.0
        rep = oracle.assumption6(g, k, gaps)
        out["assumption6"] = {"K_rho": rep.K_rho, "satisfied": rep.satisfied,
                              "holds": {str(a): b for a, b in rep.holds.items()}}
        try:
            from . import theory
        except ImportError:  # theory schedule lands with the chaining learner
            theory = None
        if theory is not None and math.isfinite(gaps.kappa) and g.n_classes == g.v:
            out["theorem7"] = theory.schedule(g.v, g.m, g.s, g.L, kappa=gaps.kappa, K_rho=rep.K_rho).to_dict()
        human = "\n".join([
            repr(full), f"d = {full.d}, num_inputs = {full.num_inputs} (~{float(full.num_inputs):.3g}), "
            f"n_c*m^L = {out['nc_m_L']}",
            "rho^(l): " + ", ".join(f"l={a}: {b:.4g} (m^(-l/2)={g.m ** (-a / 2):.4g})" for a, b in gaps.rho.items()),
            f"kappa = {gaps.kappa:.4g}", str(rep)])
        _emit(out, as_json, human)

    _run(go)


def _atomic_savez(path: Path, **arrays):
    """np.savez to a temp file beside `path`, then rename: a failure leaves nothing behind."""
    with atomic_path(path, suffix=".tmp.npz") as tmp:
        np.savez_compressed(tmp, **arrays)


@app.command()
def sample(v: int = V_OPT, m: int = M_OPT, s: int = S_OPT, L: int = L_OPT, n_classes: Optional[int] = NC_OPT,
           rules: str = RULES_OPT, seed: int = GSEED_OPT,
           n: int = typer.Option(..., "--n", help="number of inputs"),
           out: Path = typer.Option(..., "--out", help="output .npz file (x, y, grammar JSON[, tree_l])"),
           data_seed: int = typer.Option(1, "--data-seed", help="seed of the draw"),
           no_replace: bool = typer.Option(False, "--no-replace", help="n distinct inputs (uniform)"),
           tree: bool = typer.Option(False, "--tree", help="also store the symbols of every level"),
           zipf: Optional[float] = ZIPF_OPT, noise: float = NOISE_OPT, s0: Optional[int] = S0_OPT):
    """Draw a sample and write it to an .npz file (tokens as small unsigned ints, never one-hot)."""

    def go():
        if out.suffix != ".npz":
            raise CliError(f"--out={out} must end with .npz")
        if not out.parent.exists():
            raise CliError(f"--out={out}: directory {out.parent} does not exist")
        g = _grammar(v, m, s, L, n_classes, rules, seed, None, zipf, noise, s0)
        res = g.sample(n, seed=data_seed, replace=not no_replace, return_tree=tree)
        arrays = {"x": res[0], "y": res[1], "grammar": np.array(json.dumps(g.to_dict()))}
        if tree:
            arrays.update({f"tree_{lv}": t for lv, t in enumerate(res[2][1:-1], start=1)})
            if g.noise:  # the clean tokens under the noise
                arrays[f"tree_{g.L}"] = res[2][-1]
        _atomic_savez(out, **arrays)
        typer.echo(f"wrote {n} samples (d={g.d}) to {out}", err=True)

    _run(go)


# ------------------------------------------------------------------------------------------------- train
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
    defaults = cls.defaults()
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


@app.command()
def train(learner: str = typer.Option("chaining", "--learner", help="learner name (see `rhm learners`)"),
          v: int = V_OPT, m: int = M_OPT, s: int = S_OPT, L: int = L_OPT, n_classes: Optional[int] = NC_OPT,
          rules: str = RULES_OPT, grammar_seed: int = typer.Option(0, "--grammar-seed", help="seed of the rules"),
          train_size: int = typer.Option(..., "--train-size", help="number of training samples P"),
          test_size: int = typer.Option(10000, "--test-size", help="number of test samples (disjoint from train)"),
          seed: int = typer.Option(0, "--seed", help="seed of the data draw and of the learner"),
          device: Optional[str] = typer.Option(None, "--device", help="torch device: cpu | cuda | auto"),
          solver: Optional[str] = typer.Option(None, "--solver", help="chaining: gd | closed"),
          samples: Optional[str] = typer.Option(None, "--samples", help="chaining: fresh | reuse"),
          sigma: Optional[str] = typer.Option(None, "--sigma", help="chaining: data | oracle | theory | validate"),
          width: Optional[int] = typer.Option(None, "--width", help="width (random-feature pairs M, or hidden units)"),
          hp: List[str] = typer.Option([], "--hp", help="any other hyperparameter, KEY=VALUE (repeatable)"),
          as_json: bool = JSON_OPT):
    """Train a learner on a fresh sample of a grammar and report test accuracy and what the fit recorded."""
    from . import learners

    def go():
        cls = learners.get(learner)
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
        g = RHM(v, m, s, L, n_classes=n_classes, rules=rules, seed=grammar_seed)
        for name, val in (("--train-size", train_size), ("--test-size", test_size)):
            if val < 1:
                raise CliError(f"{name}={val} must be >= 1")
        if train_size + test_size > g.num_inputs:
            raise CliError(f"--train-size + --test-size = {train_size + test_size} exceeds the "
                           f"{g.num_inputs} distinct inputs of this grammar")
        x, y = g.sample(train_size + test_size, seed=seed, replace=False)
        model = cls(**kwargs)
        t0 = time.perf_counter()
        model.fit(x[:train_size], y[:train_size], grammar=g)
        fit_seconds = time.perf_counter() - t0
        acc = model.score(x[train_size:], y[train_size:])
        out = {"learner": learner, "grammar": g.params(), "train_size": train_size, "test_size": test_size,
               "seed": seed, "test_accuracy": acc, "test_error": 1 - acc, "fit_seconds": fit_seconds,
               "params": {k: (list(val) if isinstance(val, (tuple, list)) else val if isinstance(
                   val, (int, float, str, bool, type(None))) else str(val)) for k, val in model.get_params().items()},
               **getattr(model, "info_", {})}
        human = (f"{learner} on {g!r}: test accuracy {acc:.4f} with P={train_size} "
                 f"(fit {fit_seconds:.2f} s)")
        _emit(out, as_json, human)

    _run(go)


@app.command(name="learners")
def list_learners():
    """List the registered learners and their hyperparameters with defaults."""
    from . import learners

    for name in learners.names():
        cls = learners.get(name)
        defaults = ", ".join(f"{k}={v!r}" for k, v in cls.defaults().items())
        typer.echo(f"{name}: {defaults}")


# Commands that live in their own modules register themselves on `app` when imported.
from . import cli_boolean, cli_experiments  # noqa: E402,F401


def main():  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
