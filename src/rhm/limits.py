"""Memory estimates of a request, checked before anything is allocated.

A grammar's rule tables, a sample of n inputs of length d and a learner's inputs can each be far larger than the
machine (an RHM with L = 40 has inputs of 2**40 tokens; its number of distinct inputs has 2**40 * log2(m) bits).
The checks here estimate the bytes a request needs from the parameters alone (never building the tables or
computing ``m ** num_nodes``) and raise :class:`ResourceLimitError` (a ValueError and a MemoryError) naming the
parameter, the estimate and the limit when it does not fit in the available memory.

The limit is the memory available now: ``MemAvailable`` of /proc/meminfo, capped by a cgroup v2 ``memory.max``;
elsewhere ``os.sysconf`` (available physical pages); failing both, 4 GiB. ``RHM_MEMORY_LIMIT`` (bytes, or with a
suffix K, M, G, T: ``RHM_MEMORY_LIMIT=2G``) replaces it, e.g. to refuse early on a shared machine.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

FALLBACK_BYTES = 4 * 2**30
# Requests up to this size are not checked against the available memory (reading it costs ~50 us).
_SURELY_FITS = 64 * 2**20
# Exact integers with more bits than this are reported in log form (str() of a larger int is slow or refused).
EXACT_BITS = 4096
_SUFFIX = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


class ResourceLimitError(ValueError, MemoryError):
    """A request whose estimated memory exceeds the available memory (raised before allocating anything)."""


def _parse_bytes(text: str) -> int:
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = t[-1:] if t[-1:] in _SUFFIX and t[-1:] else ""
    try:
        value = float(t[:-1] if unit else t)
    except ValueError:
        raise ValueError(f"RHM_MEMORY_LIMIT={text!r} must be a number of bytes, optionally with K, M, G or T") \
            from None
    if not value > 0 or not math.isfinite(value):
        raise ValueError(f"RHM_MEMORY_LIMIT={text!r} must be > 0")
    return int(value * _SUFFIX[unit])


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room() -> int | None:
    """memory.max - memory.current of this process's cgroup (v2), None when unlimited or unknown."""
    try:
        rel = next(line[3:] for line in Path("/proc/self/cgroup").read_text().splitlines() if line.startswith("0::"))
        base = Path("/sys/fs/cgroup") / rel.strip().lstrip("/")
        top = (base / "memory.max").read_text().strip()
        if top == "max":
            return None
        return max(0, int(top) - int((base / "memory.current").read_text().strip()))
    except (OSError, ValueError, StopIteration):
        return None


def _sysconf_available() -> int | None:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def available_memory() -> int:
    """Bytes a request may use now (see the module docstring for the sources, in order)."""
    env = os.environ.get("RHM_MEMORY_LIMIT")
    if env:
        return _parse_bytes(env)
    free = _meminfo_available()
    if free is None:
        free = _sysconf_available()
    if free is None:
        free = FALLBACK_BYTES
    room = _cgroup_room()
    return free if room is None else min(free, room)


def fmt_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'; astronomically large counts in powers of two."""
    if not math.isfinite(n):
        return "more than 2^1000 bytes"
    if n >= 2**80:
        return f"2^{math.log2(n):.4g} bytes"
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} bytes"


def check_bytes(param: str, what: str, nbytes: float, limit: int | None = None) -> None:
    """ResourceLimitError when `nbytes` (the estimate of `what`, set by `param`) exceeds the available memory."""
    if limit is None and nbytes <= _SURELY_FITS and "RHM_MEMORY_LIMIT" not in os.environ:
        return  # small requests (every batch of a stream) skip reading /proc
    limit = available_memory() if limit is None else limit
    if nbytes > limit:
        raise ResourceLimitError(f"{param}: too large: {what} would need {'about ' if math.isfinite(nbytes) else ''}"
                                 f"{fmt_bytes(nbytes)}, above the "
                                 f"{fmt_bytes(limit)} of available memory (RHM_MEMORY_LIMIT overrides the limit)")


# ------------------------------------------------------------------------------------------ sizes from parameters
def _log2_int(k: int) -> float:
    return math.log2(k) if k > 0 else -math.inf


def log2_input_length(s: int, L: int, s0: int = 0) -> float:
    """log2 of d = (s (s0+1))**L, without computing d."""
    return L * math.log2(s * (s0 + 1))


def input_length(s: int, L: int, s0: int = 0):
    """d = (s (s0+1))**L as an exact int when it has at most EXACT_BITS bits, else None."""
    return (s * (s0 + 1)) ** L if log2_input_length(s, L, s0) <= EXACT_BITS else None


def log2_num_nodes(s: int, L: int) -> float:
    """log2 of (s**L - 1)/(s - 1), the rule choices per input."""
    return L * math.log2(s) - math.log2(s - 1) if L * math.log2(s) > 60 else math.log2((s**L - 1) // (s - 1))


def log10_num_inputs(v: int, m: int, s: int, L: int, n_classes: int | None = None, s0: int = 0) -> float:
    """log10 of n_c * m**K * (s0+1)**(s K), K = (s**L - 1)/(s - 1) (the sparse RHM's count for s0 > 0)."""
    n_classes = v if n_classes is None else n_classes
    per_node = math.log10(m) + s * math.log10(s0 + 1)
    if per_node == 0:  # m = 1 and no blanks: one input per class
        return math.log10(n_classes)
    log2_k = log2_num_nodes(s, L)
    return math.log10(n_classes) + (2.0**log2_k * per_node if log2_k < 1000 else math.inf)


def num_inputs(v: int, m: int, s: int, L: int, n_classes: int | None = None, s0: int = 0):
    """The exact number of distinct inputs when it has at most EXACT_BITS bits (a Python int), else None."""
    if log10_num_inputs(v, m, s, L, n_classes, s0) * math.log2(10) > EXACT_BITS:
        return None
    K = (s**L - 1) // (s - 1)
    return (v if n_classes is None else n_classes) * m**K * (s0 + 1) ** (s * K)


def _compare_num_inputs(g, n: int) -> int:
    """sign(g.num_inputs - n), from logs when num_inputs is far above n (never computing it then)."""
    lg = log10_num_inputs(g.v, g.m, g.s, g.L, g.n_classes, getattr(g, "s0", 0))
    if lg > 30 and math.log10(max(n, 1)) < lg - 1:
        return 1
    total = g.num_inputs
    return (total > n) - (total < n)


def exceeds_num_inputs(g, n: int) -> bool:
    """n > g.num_inputs (more distinct inputs asked than the grammar has), in O(1) for astronomical grammars."""
    return _compare_num_inputs(g, n) < 0


def more_inputs_than(g, n: int) -> bool:
    """g.num_inputs > n, in O(1) for astronomical grammars."""
    return _compare_num_inputs(g, n) > 0


def token_bytes(v: int, n_classes: int | None = None, blank: bool = False) -> int:
    """Bytes of one token in the grammar's smallest unsigned dtype."""
    top = max(v + (1 if blank else 0), v if n_classes is None else n_classes) - 1
    return 1 if top < 2**8 else 2 if top < 2**16 else 4 if top < 2**32 else 8


def grammar_bytes(v: int, m: int, s: int, L: int, n_classes: int | None = None) -> int:
    """Rule tables: int64 (n_c + (L-1) v, m, s), plus the sampler's lookup copies and per-level probabilities."""
    n_classes = v if n_classes is None else n_classes
    entries = (n_classes + (L - 1) * v) * m
    return entries * s * 8 * 2 + entries * 8


def sample_bytes(v: int, m: int, s: int, L: int, n: int, n_classes: int | None = None, s0: int = 0,
                 tree: bool = False, replace: bool = True) -> float:
    """x (n, d) in the token dtype, the levels above it with `tree`, the rule choices of every node without
    replacement (n, num_nodes); a float, as d may be astronomically large."""
    if n == 0:
        return 0.0
    tb = token_bytes(v, n_classes, blank=s0 > 0)
    log2_d = log2_input_length(s, L, s0)
    d = 2.0**log2_d if log2_d < 1000 else math.inf
    total = n * d * tb
    if tree:  # levels 1..L-1 (sparse: the same layouts), about d / (s - 1) tokens more
        total += n * d * tb / (s * (s0 + 1) - 1)
    if not replace:
        log2_k = log2_num_nodes(s, L)
        total += n * (2.0**log2_k if log2_k < 1000 else math.inf) * (1 if m <= 256 else 2 if m <= 65536 else 4)
    return total


def _d_text(s: int, L: int, s0: int = 0) -> str:
    """'d=4096', or 'd=2^1000' when d has more than 15 digits."""
    log2_d = log2_input_length(s, L, s0)
    return f"d={(s * (s0 + 1)) ** L}" if log2_d < 50 else f"d=2^{log2_d:.6g}"


def _params(g) -> tuple:
    return g.v, g.m, g.s, g.L, g.n_classes, getattr(g, "s0", 0)


# ---------------------------------------------------------------------------------------------------- checks
def check_grammar(v: int, m: int, s: int, L: int, n_classes: int | None = None) -> None:
    """Refuse a grammar whose rule tables cannot fit in memory (called before the tables are drawn)."""
    check_bytes(f"v={v}, m={m}, s={s}, L={L}", f"the rule tables ({L} levels of {v} x {m} rules of {s} symbols)",
                grammar_bytes(v, m, s, L, n_classes))


def check_sample(g, n: int, tree: bool = False, replace: bool = True, param: str = "n") -> None:
    """Refuse drawing `n` inputs of `g` when x (and its tree, or the rule choices) cannot fit in memory."""
    check_sample_params(*_params(g), n, tree=tree, replace=replace, param=param)


def check_sample_params(v: int, m: int, s: int, L: int, n_c: int | None, s0: int, n: int, tree: bool = False,
                        replace: bool = True, param: str = "n") -> None:
    """:func:`check_sample` from the grammar's parameters (before the grammar is built)."""
    nbytes = sample_bytes(v, m, s, L, n, n_c, s0, tree=tree, replace=replace)
    size = _d_text(s, L, s0)
    check_bytes(f"{param}={n}" if n > 1 else f"L={L}", f"{n} input(s) of {size} tokens"
                + (" with their trees" if tree else ""), nbytes)


def check_train(g, train_size: int, test_size: int, batch: int = 256) -> None:
    """Refuse a training request whose data (train + test inputs) or one batch of one-hot inputs (float32,
    ``batch`` rows of d x vocabulary) cannot fit in memory."""
    check_train_params(*_params(g), train_size, test_size, batch)


def check_train_params(v: int, m: int, s: int, L: int, n_c: int | None, s0: int, train_size: int, test_size: int,
                       batch: int = 256) -> None:
    """:func:`check_train` from the grammar's parameters (before the grammar is built)."""
    data = sample_bytes(v, m, s, L, train_size + test_size, n_c, s0)
    log2_d = log2_input_length(s, L, s0)
    onehot = min(batch, train_size) * (2.0**log2_d if log2_d < 1000 else math.inf) * (v + (s0 > 0)) * 4
    size = _d_text(s, L, s0)
    check_bytes(f"--train-size={train_size} + --test-size={test_size}",
                f"the inputs ({size} tokens each) plus one one-hot batch of {min(batch, train_size)}",
                data + onehot)


def describe(v: int, m: int, s: int, L: int, n_classes: int | None = None, s0: int = 0) -> dict:
    """What can be said of a grammar from its parameters alone, in seconds for any size: d and num_inputs exact
    when they have at most EXACT_BITS bits (else None) with their logs, n_c * m^L, the table memory."""
    n_classes = v if n_classes is None else n_classes
    lg = log10_num_inputs(v, m, s, L, n_classes, s0)
    exact = num_inputs(v, m, s, L, n_classes, s0)
    nc_m_L = n_classes * m**L if L * math.log2(max(m, 2)) <= EXACT_BITS else None
    return {"d": input_length(s, L, s0), "log2_d": log2_input_length(s, L, s0),
            "num_inputs": None if exact is None else str(exact), "log10_num_inputs": lg,
            "num_inputs_float": float(exact) if exact is not None and lg < 308 else None,
            "nc_m_L": nc_m_L, "log10_nc_m_L": math.log10(n_classes) + L * math.log10(m),
            "table_bytes": grammar_bytes(v, m, s, L, n_classes),
            "one_input_bytes": sample_bytes(v, m, s, L, 1, n_classes, s0)}


# ------------------------------------------------------------------------------------------ boolean functions
# A DeepQuadratic instance holds about d supports entries per level as Python ints while it is validated
# (~48 bytes each); a sample of n inputs is int8 (n, d) with ~3 temporaries of that size while drawn and
# evaluated (the products of each level are int8 (n, terms) too).
_BOOLEAN_TERM_BYTES = 48
_BOOLEAN_SAMPLE_FACTOR = 4


def check_boolean_instance(d: int, levels: int) -> None:
    """Refuse a random deep quadratic function on {±1}^d with `levels` levels whose terms cannot fit."""
    check_bytes(f"d={d}, levels={levels}", "the terms of the function", levels * d * _BOOLEAN_TERM_BYTES)


def check_boolean_sample(n: int, d: int, param: str = "n") -> None:
    """Refuse drawing and evaluating `n` inputs of {±1}^d when they cannot fit in memory."""
    check_bytes(f"{param}={n}", f"{n} inputs of d={d} coordinates and their evaluation",
                n * d * _BOOLEAN_SAMPLE_FACTOR)


# ------------------------------------------------------------------------------------------------ sweeps
# The experiment engine computes P_max = num_inputs exactly (to cap train sizes and to store it); above this many
# bits that costs seconds per call and grows as bits^1.6, so a sweep refuses such a grammar up front.
MAX_P_MAX_BITS = 2**20


def check_sweep_grammar(point: dict) -> None:
    """Refuse a sweep's grammar point (a dict with v, m, s, L, n_classes[, s0]) whose single training input and
    one-hot row cannot fit in memory, or whose exact P_max is too large to compute (see MAX_P_MAX_BITS)."""
    v, m, s, L = (int(point[k]) for k in ("v", "m", "s", "L"))
    n_c, s0 = int(point.get("n_classes") or v), int(point.get("s0", 0))
    log2_d = log2_input_length(s, L, s0)
    one = (2.0**log2_d if log2_d < 1000 else math.inf) * (token_bytes(v, n_c, s0 > 0) + (v + (s0 > 0)) * 4)
    check_bytes(f"L={L} (v={v}, m={m}, s={s})", f"one input of {_d_text(s, L, s0)} tokens and its one-hot row", one)
    bits = log10_num_inputs(v, m, s, L, n_c, s0) * math.log2(10)
    if bits > MAX_P_MAX_BITS:
        raise ResourceLimitError(f"L={L} (v={v}, m={m}, s={s}): too large: the exact number of distinct inputs "
                                 f"P_max, which a sweep computes, has about 2^{math.log2(bits):.3g} bits (the limit "
                                 f"is 2^{math.log2(MAX_P_MAX_BITS):g})")
