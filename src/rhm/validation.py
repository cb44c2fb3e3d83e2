"""Parameter checks shared by the grammar, the learners and the boolean experiments.

Every check raises ValueError naming the parameter, its value and the rule it breaks ("width=0 must be >= 1"),
and returns the value converted to a plain Python type. Booleans are never accepted as numbers.
"""

from __future__ import annotations

import math
import numbers

import numpy as np


def check_int(name: str, value, minimum: int | None = None, maximum: int | None = None, *,
              none_ok: bool = False) -> int | None:
    """`value` as an int in [minimum, maximum] (either bound optional); None passes when `none_ok`."""
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}={value!r} must be an integer")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        rule = f">= {minimum}" if maximum is None else f"<= {maximum}" if minimum is None else \
            f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name}={value!r} must be {rule}")
    return value


def check_float(name: str, value, minimum: float = 0.0, *, strict: bool = False,
                maximum: float | None = None) -> float:
    """`value` as a finite float >= minimum (> with `strict`) and < maximum when given."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name}={value!r} must be a finite real number")
    if (value <= minimum if strict else value < minimum) or (maximum is not None and value >= maximum):
        rule = (f"> {minimum}" if strict else f">= {minimum}") + (f" and < {maximum}" if maximum is not None else "")
        raise ValueError(f"{name}={value!r} must be {rule}")
    return float(value)


def check_choice(name: str, value, choices):
    """`value` if it is one of `choices`."""
    if value not in choices:
        raise ValueError(f"{name}={value!r} must be one of {choices}")
    return value


def check_bool(name: str, value) -> bool:
    """`value` if it is True or False (not 0/1, not None)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name}={value!r} must be True or False")
    return value


def check_tokens(x, d: int | None = None, vocab: int | None = None, *, name: str = "x", vocab_label: str = "v",
                 nonempty: bool = False, values: bool = True, allow_torch: bool = False):
    """A batch of inputs: a 2-D (n, d) array of integer tokens in [0, vocab). The one token check of the grammar,
    the oracle, inference and the learners.

    x: anything numpy turns into an array (a CPU torch tensor included); with allow_torch a torch tensor is
    checked and returned as is (torch is never imported here).
    d: the required input length (None: any). vocab: the number of token ids (None: only tokens >= 0 are
    required); vocab_label names it in the error ("v", "V", "v+1"). nonempty: n, d >= 1 required.
    values: False checks shape and dtype only (inference checks the range after its mask replaced hidden tokens).
    Returns x as an ndarray (or the tensor, with allow_torch). Errors name `name`: "x has shape (3,), expected
    (n, d=4)" (or "x must have shape (n, d) with n, d >= 1, got (3,)" without d),
    "x must hold integer tokens (not one-hot), got dtype float64", "x has negative tokens",
    "x has tokens outside the vocabulary [0, v=4)".
    """
    torch_like = allow_torch and type(x).__module__.split(".")[0] == "torch"
    if torch_like:
        bad_dtype = x.dtype.is_floating_point or x.dtype.is_complex or str(x.dtype) == "torch.bool"
    else:
        try:
            x = np.asarray(x)
        except (ValueError, TypeError) as err:
            raise ValueError(f"{name} is not a rectangular array: {err}") from None
        bad_dtype = x.dtype == bool or not np.issubdtype(x.dtype, np.integer)
    shape = tuple(x.shape)
    if d is None and (len(shape) != 2 or (nonempty and 0 in shape)):
        rule = " with n, d >= 1" if nonempty else ""
        raise ValueError(f"{name} must have shape (n, d){rule}, got {shape}")
    if d is not None and (len(shape) != 2 or shape[1] != d or (nonempty and shape[0] == 0)):
        raise ValueError(f"{name} has shape {shape}, expected (n, d={d})" + (" with n >= 1" if nonempty else ""))
    if bad_dtype:
        raise ValueError(f"{name} must hold integer tokens (not one-hot), got dtype {x.dtype}")
    if values and (x.numel() if torch_like else x.size):
        if int(x.min()) < 0:
            raise ValueError(f"{name} has negative tokens" if vocab is None
                             else f"{name} has tokens outside the vocabulary [0, {vocab_label}={vocab})")
        if vocab is not None and int(x.max()) >= vocab:
            raise ValueError(f"{name} has tokens outside the vocabulary [0, {vocab_label}={vocab})")
    return x


class MissingDependencyError(ImportError, RuntimeError):
    """An optional dependency is not installed; the message ends with the command that installs it."""


def require(module: str, what: str, extra: str):
    """Import and return `module`, or raise MissingDependencyError saying that `what` needs it and how to get it
    (``pip install 'rhm[extra]'``)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(f"{what} needs {module}, which is not installed: pip install 'rhm[{extra}]' "
                                     f"(or pip install {module})") from None
