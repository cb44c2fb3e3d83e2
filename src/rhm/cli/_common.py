"""What every command module shares: the typer app, error handling, JSON output, the grammar options.

Errors from bad input print one line ``error: ...`` on stderr and exit with status 1, writing nothing.
``--json`` prints exactly one JSON object on stdout; human-readable output goes to stderr.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import typer

from .._io import atomic_path
from ..filtering import load_grammar
from ..grammar import RULE_SAMPLERS
from ..spec import GrammarSpec
from ..validation import MissingDependencyError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Random Hierarchy Models: grammars, samples and learners (levels: 0 = root, L = input).")


class CliError(Exception):
    """A user error: printed as one line, exit status 1."""


def _fail(msg: str):
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code=1)


def _run(fn):
    """Call fn(), turning bad input (ValueError, CliError; rhm.limits' refusals are ValueErrors), a missing
    optional dependency, an allocation that failed anyway and an OS error on a path into one clean error line."""
    try:
        return fn()
    except (ValueError, CliError, MissingDependencyError) as err:
        _fail(str(err))
    except MemoryError as err:
        _fail(f"out of memory{': ' + str(err) if str(err) else ''} (a smaller request, or RHM_MEMORY_LIMIT to "
              "refuse it up front)")
    except RuntimeError as err:  # torch reports a failed allocation (CPU or CUDA) as a RuntimeError subclass
        text = str(err)
        if "can't allocate memory" not in text and "out of memory" not in text.lower():
            raise
        _fail("out of memory: " + text.splitlines()[0][:300] + " (a smaller model or request)")
    except OSError as err:
        where = f" {err.filename}" if getattr(err, "filename", None) else ""
        _fail(f"{err.strerror or err}:{where}" if err.strerror else str(err))


# ------------------------------------------------------------------------------------------ output paths
def _probe_dir(directory: Path, option: str, target: Path) -> None:
    """CliError unless a file can be created in `directory` (tried for real: permissions alone mislead root)."""
    if not directory.is_dir():
        raise CliError(f"{option} {target}: {directory} is not a directory")
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".rhm-write-check-")
    except OSError as err:
        raise CliError(f"{option} {target}: cannot write in {directory} ({err.strerror or err})") from None
    os.close(fd)
    os.unlink(tmp)


def check_out_file(path: Path, option: str, suffixes: tuple[str, ...] = ()) -> None:
    """Before any work: `path` can be written as a file (its directory exists and is writable, it is not a
    directory) and ends with one of `suffixes` when given; one CliError naming the option otherwise."""
    path = Path(path)
    if suffixes and path.suffix not in suffixes:
        raise CliError(f"{option}={path} must end with {' or '.join(suffixes)}")
    if path.is_dir():
        raise CliError(f"{option} {path} is a directory, expected a file")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        up = next((p for p in parent.parents if p.exists()), None)
        if up is not None and not up.is_dir():
            raise CliError(f"{option} {path}: {up} is a file, not a directory")
        raise CliError(f"{option} {path}: directory {parent} does not exist")
    _probe_dir(parent, option, path)
    if path.exists() and not os.access(path, os.W_OK):
        raise CliError(f"{option} {path}: the existing file is not writable")


def check_store_path(path: Path, option: str = "--store", readonly: bool = False) -> None:
    """Before any work: a results store at `path` can be opened (read-only: an existing rhm store) or written
    (an rhm store, a missing file or an empty one, in a writable directory); one CliError otherwise. Nothing is
    written to the file here."""
    from ..experiments.store import check_store_file

    path = Path(path)
    if readonly and not path.exists():
        raise CliError(f"{option} {path} does not exist")
    if not readonly:
        check_out_file(path, option)
    try:
        is_store = check_store_file(path)
    except ValueError as err:
        raise CliError(str(err).replace(f"store={str(path)!r}", f"{option} {path}")) from None
    if readonly and not is_store:
        raise CliError(f"{option} {path} is an empty file, not an rhm results store")


def check_optional(module: str, what: str, extra: str) -> None:
    """Before any work: the optional dependency `module` is importable (MissingDependencyError otherwise)."""
    from ..validation import require

    require(module, what, extra)


def check_out_dir(path: Path, option: str) -> None:
    """Before any work: `path` is a writable directory or can be created as one (its first existing ancestor
    is a writable directory); one CliError naming the option otherwise."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise CliError(f"{option} {path} exists and is not a directory")
        _probe_dir(path, option, path)
        return
    up = next((p for p in path.parents if p.exists()), Path("."))
    if not up.is_dir():
        raise CliError(f"{option} {path}: {up} is a file, not a directory")
    _probe_dir(up, option, path)


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
M3_OPT = typer.Option(None, "--m3", help="the varying-tree RHM (Parley et al. 2026): m3 ternary rules per symbol "
                      "(--m is then its m2 binary rules); strings padded to 3**L with the token v")
P2_OPT = typer.Option(None, "--p2", help="varying-tree RHM: probability that a node is binary (default 0.5)")


def check_request(v, m, s, L, n_classes, s0, grammar_file=None, *, n=None, tree=False, replace=True,
                  train_size=None, test_size=None):
    """Before the grammar is built: refuse (rhm.limits) a sample of `n` inputs, or a training run on train_size +
    test_size inputs, that cannot fit in memory. Skipped with --grammar FILE (checked once loaded) or when a
    size option is missing or invalid (the grammar's own validation then names it)."""
    from .. import limits

    params = (v, m, s, L)
    if grammar_file is not None or any(isinstance(p, bool) or not isinstance(p, int) for p in params) \
            or min(params) < 1 or s < 2:
        return
    n_c = n_classes if isinstance(n_classes, int) and n_classes >= 2 else v
    s0 = s0 if isinstance(s0, int) and s0 >= 0 else 0
    if n is not None:
        limits.check_sample_params(v, m, s, L, n_c, s0, n, tree=tree, replace=replace, param="--n")
    if train_size is not None:
        limits.check_train_params(v, m, s, L, n_c, s0, train_size, test_size)


def _grammar(v, m, s, L, n_classes, rules, seed, grammar_file=None, zipf=None, noise=0.0, s0=None, beta=None,
             filter_level=0, m3=None, p2=None):
    """The grammar of the options: loaded from `grammar_file` when given (then v, m, L must not be), else built
    from its :class:`rhm.GrammarSpec` (a SparseRHM when `s0` >= 1, an RHM otherwise; `seed` None: 0)."""
    if grammar_file is not None:
        given = [name for name, val in (("--v", v), ("--m", m), ("--L", L), ("--n-classes", n_classes),
                                        ("--zipf", zipf), ("--s0", s0), ("--grammar-seed", seed),
                                        ("--beta", beta), ("--m3", m3), ("--p2", p2)) if val is not None]
        given += ["--filter-level"] if filter_level else []
        given += ["--noise"] if noise else []
        if given:
            raise CliError(f"--grammar {grammar_file} replaces {', '.join(given)}: give one or the other")
        if not Path(grammar_file).exists():
            raise CliError(f"--grammar {grammar_file} does not exist")
        return load_grammar(grammar_file)  # any kind rhm saves: RHM, SparseRHM, SoftGrammar, filtered
    if beta is not None and m is None and v is not None:  # SoftGrammar's defaults: with rules="overlap" every
        # tuple under every parent (m = v**s), else the paper's m, every tuple has one parent
        m = v**s if rules == "overlap" else v**s // max(v, n_classes or v)
    missing = [name for name, val in (("--v", v), ("--m", m), ("--L", L)) if val is None]
    if missing:
        raise CliError(f"{', '.join(missing)} required (or --grammar FILE)")
    spec = GrammarSpec(v=v, m=m, s=s, L=L, n_classes=n_classes, rules=rules, seed=0 if seed is None else seed,
                       zipf=zipf, noise=noise, s0=0 if s0 is None else s0, beta=beta, filter_level=filter_level,
                       m3=0 if m3 is None else m3, p2=p2)
    # a SparseRHM when s0 >= 1, a SoftGrammar with beta, a VaryingRHM with m3, g.filtered(k) with filter_level
    return spec.build()


def _deprecated(old: str, new: str) -> None:
    """One stderr line for an old option spelling, accepted for one release."""
    typer.echo(f"warning: {old} is deprecated and goes in the next release: use {new}", err=True)


def _atomic_savez(path: Path, **arrays):
    """np.savez to a temp file beside `path`, then rename: a failure leaves nothing behind."""
    with atomic_path(path, suffix=".tmp.npz") as tmp:
        np.savez_compressed(tmp, **arrays)
