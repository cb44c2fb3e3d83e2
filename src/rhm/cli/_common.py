"""What every command module shares: the typer app, error handling, JSON output, the grammar options.

Errors from bad input print one line ``error: ...`` on stderr and exit with status 1, writing nothing.
``--json`` prints exactly one JSON object on stdout; human-readable output goes to stderr.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import typer

from .._io import atomic_path
from ..grammar import RHM, RULE_SAMPLERS
from ..spec import GrammarSpec

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
GRAMMAR_SEED_OPT = typer.Option(None, "--grammar-seed", help="seed of the grammar's rules (default 0)")
GRAMMAR_OPT = typer.Option(None, "--grammar", help="a saved grammar (JSON from RHM.save) instead of --v/--m/--s/"
                           "--L/--n-classes/--rules/--grammar-seed")
V_OPT_OR_FILE = typer.Option(None, "--v", help="vocabulary size v (required unless --grammar FILE)")
M_OPT_OR_FILE = typer.Option(None, "--m", help="synonymous rules per symbol m (required unless --grammar FILE)")
L_OPT_OR_FILE = typer.Option(None, "--L", help="depth L, d = s**L (required unless --grammar FILE)")
JSON_OPT = typer.Option(False, "--json", help="print one JSON object on stdout")
ZIPF_OPT = typer.Option(None, "--zipf", help="Zipf rule probabilities: rule k of each symbol has probability "
                        "proportional to k^-(1+a) (default: uniform)")
NOISE_OPT = typer.Option(0.0, "--noise", help="probability that each input token is replaced by a uniform token")
S0_OPT = typer.Option(None, "--s0", help="sparse RHM: s0 blank positions per informative token, "
                      "d = (s(s0+1))**L (default: the plain RHM)")
BETA_OPT = typer.Option(None, "--beta", help="the soft grammar of Garnier-Brun et al. (2025) at this inverse "
                        "temperature (--m defaults to v**(s-1))")
FILTER_OPT = typer.Option(0, "--filter-level", help="hierarchical filtering at level k in 1..L (default 0: none)")


def _grammar(v, m, s, L, n_classes, rules, seed, grammar_file=None, zipf=None, noise=0.0, s0=None, beta=None,
             filter_level=0):
    """The grammar of the options: loaded from `grammar_file` when given (then v, m, L must not be), else built
    from its :class:`rhm.GrammarSpec` (a SparseRHM when `s0` >= 1, an RHM otherwise; `seed` None: 0)."""
    if grammar_file is not None:
        given = [name for name, val in (("--v", v), ("--m", m), ("--L", L), ("--n-classes", n_classes),
                                        ("--zipf", zipf), ("--s0", s0), ("--grammar-seed", seed),
                                        ("--beta", beta)) if val is not None]
        given += ["--filter-level"] if filter_level else []
        given += ["--noise"] if noise else []
        if given:
            raise CliError(f"--grammar {grammar_file} replaces {', '.join(given)}: give one or the other")
        if not Path(grammar_file).exists():
            raise CliError(f"--grammar {grammar_file} does not exist")
        return RHM.load(grammar_file)
    if beta is not None and m is None and v is not None:  # the paper's m: every tuple has one parent
        m = v**s // max(v, n_classes or v)
    missing = [name for name, val in (("--v", v), ("--m", m), ("--L", L)) if val is None]
    if missing:
        raise CliError(f"{', '.join(missing)} required (or --grammar FILE)")
    spec = GrammarSpec(v=v, m=m, s=s, L=L, n_classes=n_classes, rules=rules, seed=0 if seed is None else seed,
                       zipf=zipf, noise=noise, s0=0 if s0 is None else s0, beta=beta, filter_level=filter_level)
    return spec.build()  # a SparseRHM when s0 >= 1, a SoftGrammar with beta, g.filtered(k) with filter_level


def _deprecated(old: str, new: str) -> None:
    """One stderr line for an old option spelling, accepted for one release."""
    typer.echo(f"warning: {old} is deprecated and goes in the next release: use {new}", err=True)


def _atomic_savez(path: Path, **arrays):
    """np.savez to a temp file beside `path`, then rename: a failure leaves nothing behind."""
    with atomic_path(path, suffix=".tmp.npz") as tmp:
        np.savez_compressed(tmp, **arrays)
